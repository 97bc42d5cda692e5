//! Across patterns: whole stacks of seawall's and tower's layers, the error model every layer
//! shares, cancellation at every poll, and memory (nothing allocated per call, nothing left
//! once the last handle and the last call are gone).

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

mod builder;
mod cancellation;
mod errors;
mod layers;
mod memory;
