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
