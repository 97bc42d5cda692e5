//! HTTP integration tests (feature `http`): every test starts real servers on 127.0.0.1
//! (ephemeral ports) and calls them through a hyper-util client behind a seawall stack.
//! Retry backoffs are a millisecond of real time; the two `Retry-After` tests that wait a
//! second measure the gap the server observed. Every test body is bounded (20 s).

#[path = "../common/mod.rs"]
mod common;

mod support;

mod bodies;
mod breaker;
mod flaky;
mod headers;
mod idempotency;
mod regressions;
mod retry_after;
mod server_side;
mod standard;
mod timeouts;
mod transport;
