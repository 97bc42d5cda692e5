//! The synchronisation primitives the state machines use: std's, or loom's under
//! `--cfg seawall_loom`, so the model checker explores every interleaving of the real code.
//!
//! (A crate-specific cfg rather than plain `--cfg loom`: tokio reads `cfg(loom)` too and does
//! not build with it outside its own test suite.)
//!
//! Also the per-thread index ([`thread_index`]) and the [`Lanes`] built on it: how a pattern
//! keeps cores from writing one reference count.

mod lanes;

pub(crate) use lanes::{Lane, Lanes};

#[cfg(seawall_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(seawall_loom)]
pub(crate) use loom::sync::{Arc, Mutex};

#[cfg(not(seawall_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(seawall_loom))]
pub(crate) use std::sync::{Arc, Mutex};

use std::cell::Cell;

/// This thread's number, handed out round-robin the first time a thread asks: how threads
/// spread over the budget's deposit stripes and over [`Lanes`], so that threads running
/// at once (on different cores, most of the time) write different cache lines. Any number is
/// correct; distinct ones are only faster. A thread being torn down gets 0.
#[inline]
pub(crate) fn thread_index() -> usize {
    THREAD_INDEX
        .try_with(|cell| {
            let i = cell.get();
            if i != usize::MAX {
                return i;
            }
            // Relaxed: nothing is published through the number.
            let i = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed);
            cell.set(i);
            i
        })
        .unwrap_or(0)
}

#[cfg(not(seawall_loom))]
thread_local! {
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}
#[cfg(not(seawall_loom))]
static NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);

// Under loom: the same round-robin with loom's thread-locals and a lazily created counter
// (loom's atomics have no `const fn new`), both reset for every execution of a model, so the
// threads of one model take numbers 0, 1, 2, ... in the order they first ask.
#[cfg(seawall_loom)]
loom::thread_local! {
    static THREAD_INDEX: Cell<usize> = Cell::new(usize::MAX);
}
#[cfg(seawall_loom)]
loom::lazy_static! {
    static ref NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);
}
