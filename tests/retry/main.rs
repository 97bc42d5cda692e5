//! Retry, one module per behaviour: the policy's attempts, delays and budget; the deadline;
//! errors and their kinds; the observation seam; what a call owns; life without a timer;
//! seawall's refusals; the budget under stress. Paused time and seeded rngs throughout.

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

mod budget;
mod deadline;
mod errors;
mod events;
mod lifetime;
mod no_timer;
mod policy;
mod refusals;
mod review;
