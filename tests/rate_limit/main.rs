//! Rate limiter integration tests (feature `rate-limit`; the gateway tests also need `http`).
//! Deterministic: paused tokio time or a `ManualClock`; no real sockets (the `gateway`
//! example runs the same router on 127.0.0.1).

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

mod admission;
mod configuration;
#[cfg(feature = "http")]
mod gateway;
mod keyed;
mod waiting;
