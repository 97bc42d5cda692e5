//! seawall: resilience middleware for [tower]: a circuit breaker that fails fast while a
//! dependency is sick, retries with backoff and a budget, and one error model, one clock and
//! one classifier shape for every layer.
//!
//! Every pattern is a plain state machine (usable without tower, around any async call) plus
//! a thin tower `Layer` + `Service` + future, so it drops into `ServiceBuilder`, axum, hyper,
//! tonic and any tower stack.
//!
//! - [`circuit_breaker`]: closed, open and half-open; trips on consecutive failures, failure
//!   rate and slow-call rate; bounded probes; cancellation-safe permits.
//! - [`retry`]: retries with backoff and jitter, a shared retry budget, a deadline and
//!   `Retry-After`; fresh readiness for every attempt.
//! - [`classify`]: one classifier shape for every layer (`Success` / `Failure` / `Ignored`).
//! - [`error`]: one error model in tower's convention ([`BoxError`] + small rejection types +
//!   [`ErrorKind::of`]); configuration errors are [`ConfigError`].
//! - [`backoff`]: exponential, linear or constant growth with jitter: retry's delays and the
//!   breaker's growing open period share it.
//! - [`clock`]: one time source, tokio's by default, so paused time drives every test.
//! - [`fallback`]: answer from a fallback service when a call is refused or times out (the
//!   outcomes you select); the fallback sees the request and the error.
//! - [`bulkhead`]: a bound on the calls in flight to one dependency; refusals are
//!   `BulkheadFull`.
//! - `rate_limit` (feature `rate-limit`): GCRA rate limits shared by every clone, keyed or
//!   not; refusals are `RateLimited`, carrying the wait.
//! - `chaos` (feature `chaos`): seeded, switchable fault and latency injection.
//! - [`hedge`]: hedged requests (a second attempt after a delay, the first acceptable
//!   answer wins), idempotent requests only, withdrawing from a retry budget.
//! - `metrics` (feature `metrics`): the breaker's and retry's events as metrics on the
//!   `metrics` facade, named as resilience4j's dashboards expect (mapped in the module docs).
//! - [`throttle`]: Google SRE's client-side adaptive throttling: sheds calls (first
//!   attempts too) locally while the dependency rejects most of them; refusals are
//!   `Throttled`.
//! - [`stack`]: the layers above in the recommended order, with `build()` refusing
//!   compositions known to misbehave.
//! - `http` (feature `http`): response classifiers, idempotent-only retries, `Retry-After`,
//!   replayable request bodies, rejections answered as responses, a standard client stack.
//! - `grpc` (feature `grpc`): `grpc-status` and pushback classifiers (gRPC A6), rejections
//!   answered as UNAVAILABLE with a pushback.
//!
//! # A stack
//!
//! The recommended order, outermost first: overall timeout, retry (with budget), circuit
//! breaker, per-attempt timeout, the inner service. The breaker sits inside retry so that every
//! attempt is admitted and recorded on its own, and an open circuit stops retries at once; the
//! per-attempt timeout sits inside the breaker so that a timeout counts as a failure.
//! seawall uses tower's own `Timeout` (its `Elapsed` error is recognised by [`ErrorKind::of`]).
//!
//! ```
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::retry::{Backoff, Retry};
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let breaker = CircuitBreaker::builder()
//!     .failure_threshold(3)
//!     .build()
//!     .expect("valid configuration");
//! let retry = Retry::builder()
//!     .max_retries(1)
//!     .backoff(Backoff::constant(Duration::from_millis(100)))
//!     .build()
//!     .expect("valid configuration");
//!
//! let mut svc = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(10)) // overall
//!     .layer(retry.layer())
//!     .layer(breaker.layer())
//!     .timeout(Duration::from_secs(1)) // per attempt: counts as a failure for the breaker
//!     .service(service_fn(|ms: u64| async move {
//!         tokio::time::sleep(Duration::from_millis(ms)).await;
//!         Ok::<_, BoxError>(ms)
//!     }));
//!
//! assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
//! // Two attempts time out: the breaker has seen two failures.
//! let err = svc.ready().await.unwrap().call(5_000).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
//! // The first attempt of the next call is the third timeout: the breaker opens, and the
//! // retry is rejected at once, without waiting; an open circuit is not retried.
//! let err = svc.ready().await.unwrap().call(5_000).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
//! # }
//! ```
//!
//! # Timeouts
//!
//! seawall has no timeout layer of its own: tower's `Timeout` fits. Its error,
//! `tower::timeout::error::Elapsed`, is [`ErrorKind::Timeout`] for [`ErrorKind::of`], so
//! breakers count it, retries retry it, fallbacks select it and `http`'s
//! `rejection_response` answers it 504, with nothing to register. A typed error carrying the
//! duration would tell a caller little the stack does not already know, and would cost a
//! layer that duplicates tower's. Use two: an overall timeout outside retry (retry's own
//! [`deadline`](retry::Builder::deadline) also keeps its waits inside it) and a per-attempt
//! timeout inside the breaker, so a hung call counts as a failure; retry's
//! [`attempt_timeout`](retry::Builder::attempt_timeout) is the per-attempt timeout when no
//! breaker sits between.
//!
//! [tower]: https://docs.rs/tower

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod backoff;
pub mod bulkhead;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod circuit_breaker;
pub mod classify;
pub mod clock;
pub mod error;
pub mod fallback;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod hedge;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "rate-limit")]
pub mod rate_limit;
pub mod retry;
#[cfg(feature = "serde")]
mod serialize;
pub mod stack;
mod sync;
pub mod throttle;

pub use bulkhead::{Bulkhead, BulkheadLayer};
pub use circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
pub use classify::{Classify, Outcome};
pub use error::{BoxError, ConfigError, ErrorKind};
pub use fallback::{Fallback, FallbackLayer};
#[cfg(feature = "rate-limit")]
pub use rate_limit::{RateLimitLayer, RateLimiter};
pub use retry::{Backoff, BudgetExhausted, Jitter, Retry, RetryBudget, RetryLayer};
pub use throttle::{AdaptiveThrottle, ThrottleLayer};

// The README's examples are compiled and run as doc tests (they need the `http`,
// `rate-limit` and `metrics` features: CI runs them with `--all-features`).
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "http", feature = "rate-limit", feature = "metrics"))]
pub struct ReadmeDoctests;
