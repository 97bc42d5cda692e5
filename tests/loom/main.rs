//! Model checking with loom: every interleaving (up to a preemption bound) of a few threads
//! running the real code, for the breaker's state word and memory scheme and for the retry
//! budget's accounting.
//!
//! Run: `RUSTFLAGS="--cfg seawall_loom" CARGO_TARGET_DIR=target/loom cargo test --release
//! --test loom` (each module's docs say what it checks and at which bound).
#![cfg(seawall_loom)]

mod breaker;
mod budget;
mod throttle;
