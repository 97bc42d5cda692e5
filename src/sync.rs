//! The synchronisation primitives the state machines use: std's, or loom's under
//! `--cfg seawall_loom`, so the model checker explores every interleaving of the real code.
//!
//! (A crate-specific cfg rather than plain `--cfg loom`: tokio reads `cfg(loom)` too and does
//! not build with it outside its own test suite.)

#[cfg(seawall_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(seawall_loom)]
pub(crate) use loom::sync::{Arc, Mutex};

#[cfg(not(seawall_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(seawall_loom))]
pub(crate) use std::sync::{Arc, Mutex};

/// A weak pointer behind a lock, kept in a block that response futures reach through a
/// `&'static` reference: how a future finds the state of its layer on a slow path (a
/// failure, a cancellation) without holding an `Arc`, whose clone and drop per call (two
/// atomic read-modify-writes, 18-25 ns here) would cost several times the whole happy path.
///
/// The block holding an `Anchor` is leaked on purpose (a few dozen bytes per breaker or retry
/// policy built, never per call); the owner clears the anchor when it is dropped, so the
/// `Weak` does not keep the owner's allocation alive either.
pub(crate) struct Anchor<T> {
    target: Mutex<std::sync::Weak<T>>,
}

impl<T> Anchor<T> {
    pub(crate) fn new(target: std::sync::Weak<T>) -> Self {
        Anchor {
            target: Mutex::new(target),
        }
    }

    /// A block that lives for the rest of the program: see the type's docs.
    pub(crate) fn leak(target: std::sync::Weak<T>) -> &'static Self {
        Box::leak(Box::new(Anchor::new(target)))
    }

    /// The owner, if any handle to it is alive. One uncontended lock and one increment.
    pub(crate) fn upgrade(&self) -> Option<std::sync::Arc<T>> {
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .upgrade()
    }

    /// Lets go of the owner; called from the owner's `Drop`.
    pub(crate) fn clear(&self) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Weak::new();
    }
}

impl<T> std::fmt::Debug for Anchor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Anchor")
    }
}
