//! A stack builder that checks itself: one builder that puts the layers in the recommended
//! order and refuses, at [`build`](Builder::build), compositions known to misbehave, with a
//! [`StackError`] naming the problem and saying how to fix it.
//!
//! # Example
//!
//! ```
//! use seawall::bulkhead::Bulkhead;
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::retry::{Backoff, Retry};
//! use seawall::stack::{Stack, StackError};
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let retry = Retry::builder()
//!     .max_retries(2)
//!     .backoff(Backoff::constant(Duration::from_millis(100)))
//!     .build() // with the default budget
//!     .expect("valid policy");
//! let breaker = CircuitBreaker::builder().failure_threshold(3).build().expect("valid");
//! let bulkhead = Bulkhead::builder().max_concurrent(64).build().expect("valid");
//!
//! // Any order of calls: the stack is always built in the recommended one.
//! let stack = Stack::builder()
//!     .attempt_timeout(Duration::from_secs(1))
//!     .breaker(breaker.clone())
//!     .retry(retry.clone())
//!     .bulkhead(bulkhead)
//!     .timeout(Duration::from_secs(10))
//!     .build()
//!     .expect("a composition that works");
//!
//! let mut svc = ServiceBuilder::new().layer(stack).service(service_fn(|ms: u64| async move {
//!     tokio::time::sleep(Duration::from_millis(ms)).await;
//!     Ok::<_, BoxError>(ms)
//! }));
//! assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
//! // Three attempts hang: each is cut by the attempt timeout, inside the breaker, and counts.
//! let err = svc.ready().await.unwrap().call(60_000).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
//! assert_eq!(breaker.state(), seawall::circuit_breaker::State::Open);
//!
//! // An overall timeout with a breaker but no attempt timeout: hung calls would be cut
//! // outside the breaker and never count. Refused.
//! let refused = Stack::builder()
//!     .timeout(Duration::from_secs(10))
//!     .retry(retry)
//!     .breaker(breaker)
//!     .build()
//!     .unwrap_err();
//! assert_eq!(refused, StackError::TimeoutOutsideBreaker { timeout: Duration::from_secs(10) });
//! # }
//! ```
//!
//! # The order
//!
//! Outermost first, whatever order the builder's methods are called in:
//!
//! 1. **rate limit** (feature `rate-limit`): a refused call costs nothing further down;
//! 2. **overall timeout** (tower's `Timeout`): bounds the whole call, retries and waits
//!    included;
//! 3. **fallback**: answers what retry and the breaker give up on;
//! 4. **retry**, with a budget: every attempt goes through everything below;
//! 5. **hedging**, drawing from the retry's budget: the hedges of one attempt are that
//!    attempt, so retry sees one attempt per hedged call (see [Hedging](#hedging));
//! 6. **circuit breaker**: admits and records each attempt on its own, hedges included; an
//!    open circuit ends the call at once (retry does not retry seawall's refusals);
//! 7. **bulkhead**: its refusal never counts against the dependency, and an open circuit
//!    refuses a call before it takes a slot;
//! 8. **per-attempt timeout** (tower's `Timeout`): inside the breaker, so a hung attempt
//!    counts as a failure; inside the bulkhead, so it bounds how long a slot is held.
//!
//! The [`StackLayer`] builds exactly the service `ServiceBuilder` would build from the same
//! layers in that order: no wrapper, no boxing, no cost of its own. Its error is `BoxError`
//! once any part is set, and [`ErrorKind::of`](crate::ErrorKind::of) tells the kinds apart.
//! A breaker's or retry's classifier sees the inner service's response as it is; its error
//! is boxed when a bulkhead or an attempt timeout sits between (downcast it).
//!
//! # The checks
//!
//! [`build`](Builder::build) refuses, with one [`StackError`] variant each:
//!
//! | refusal | why |
//! |---|---|
//! | [`RetryWithoutBudget`](StackError::RetryWithoutBudget): a retry without a budget outside a breaker | every failed call makes up to `max_retries + 1` failures: the breaker opens on a fraction of the failing calls it should, and until it opens the dependency takes that many times its load |
//! | [`TimeoutOutsideBreaker`](StackError::TimeoutOutsideBreaker): a timeout outside the breaker and none inside | a hung call is dropped outside the breaker, which records nothing: hung calls never count (measured: 15 timed-out attempts left a breaker with threshold 2 closed). Retry's own `attempt_timeout` is outside the breaker too: use the stack's |
//! | [`AttemptTimeoutNotShorter`](StackError::AttemptTimeoutNotShorter): the attempt timeout is not shorter than the overall one | the overall timeout cuts a hung attempt first, so it is never retried, and the breaker never records it |
//! | [`DeadlineBeforeFirstBackoff`](StackError::DeadlineBeforeFirstBackoff): the retry's deadline (or the overall timeout, if shorter) is not longer than the first backoff delay | no retry can start in time: the retry never retries |
//! | [`RetryAfterCapPastDeadline`](StackError::RetryAfterCapPastDeadline): [`LongRetryAfter::Cap`](crate::retry::LongRetryAfter::Cap) with a `max_delay` not shorter than that time | a capped wait always runs past the deadline: the cap is never honoured |
//! | [`DeadlineAfterTimeout`](StackError::DeadlineAfterTimeout): the retry's deadline is longer than the overall timeout | the timeout cuts first, with a bare timeout instead of the last attempt's error; the deadline is never reached |
//! | [`BulkheadWaitOutlastsTimeout`](StackError::BulkheadWaitOutlastsTimeout): the bulkhead's `max_wait` is not shorter than the overall timeout | a waiting call is cut by the timeout first: a full bulkhead shows up as a timeout, never as `BulkheadFull` |
//! | [`HedgeBudgetNotShared`](StackError::HedgeBudgetNotShared): a hedge and a retry with a budget (and `max_retries` above 0) that do not draw from one budget (the hedge has a budget of its own, the default, or none) | hedges and retries drawing from two budgets can together multiply the load on a dependency slow or failing for everyone; build the hedge with `.budget(retry.budget().cloned().unwrap())` |
//! | [`HedgeDepositsTwice`](StackError::HedgeDepositsTwice): they share one budget, and the hedge was built with `deposit_successes(true)` | the retry deposits each call's success too: every success counts twice, and the budget allows twice its ratio |
//! | [`HedgeWithoutBudget`](StackError::HedgeWithoutBudget): a hedge without a budget outside a breaker | as for a retry: when the dependency is slow for everyone every call is hedged, up to `max_hedges + 1` times the load, and the breaker counts every slow attempt that fails |
//! | [`HedgeDelayNotShorter`](StackError::HedgeDelayNotShorter): a hedge's fixed delay not shorter than a timeout in the stack | every attempt is cut before its hedge is due (a failure never sends a hedge): no hedge is ever sent |
//! | [`Config`](StackError::Config): a zero timeout | every call would time out |
//!
//! The checks compare settings, not behaviour: the backoff's first delay is compared before
//! jitter, and a retry with `max_retries(0)` never counts as retrying. A bulkhead's wait is
//! not compared with the attempt timeout: in this order the attempt timeout sits inside the
//! bulkhead and bounds how long a slot is held, not the wait for one.
//!
//! # Tracing a whole stack
//!
//! With the `tracing` feature, each layer emits its own events (a breaker's state changes at
//! `INFO`, rejections at `DEBUG`) and a retry runs each call in a `retry` span. For one span
//! per call around the whole stack, no seawall layer is needed: tower's
//! `ServiceExt::map_future` instruments each call's future, and everything the stack does
//! for that call happens in the span.
//!
//! ```
//! # #[cfg(feature = "tracing")]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use seawall::retry::Retry;
//! use seawall::stack::Stack;
//! use seawall::BoxError;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tracing::Instrument;
//!
//! let stack = Stack::builder().retry(Retry::default()).build().expect("a valid stack");
//! let mut svc = ServiceBuilder::new()
//!     .layer(stack)
//!     .service(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }))
//!     .map_future(|call| call.instrument(tracing::info_span!("payments")));
//! assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
//! # }
//! # #[cfg(not(feature = "tracing"))]
//! # fn main() {}
//! ```
//!
//! # Hand-made orders
//!
//! The builder is the checked path. A stack assembled by hand with `ServiceBuilder` can be
//! described to [`Stack::check`], outermost part first, which applies the same rules and
//! catches what only a hand-made order can get wrong: a timeout between retry and breaker,
//! a fallback inside retry, a hedge or the breaker
//! ([`FallbackInside`](StackError::FallbackInside)), a hedge outside retry
//! ([`HedgeOutsideRetry`](StackError::HedgeOutsideRetry)). A hedge layer is described by its
//! policy: `Part::Hedge(layer.hedge())`.
//!
//! ```
//! use seawall::retry::Retry;
//! use seawall::stack::{Part, Stack, StackError};
//! use std::time::Duration;
//!
//! let retry = Retry::default();
//! // ServiceBuilder::new().layer(retry.layer()).timeout(1 s).layer(breaker.layer())
//! let parts = [Part::Retry(&retry), Part::Timeout(Duration::from_secs(1)), Part::Breaker];
//! assert_eq!(
//!     Stack::check(&parts),
//!     Err(StackError::TimeoutOutsideBreaker { timeout: Duration::from_secs(1) }),
//! );
//! ```
//!
//! # Hedging
//!
//! [`hedge`](Builder::hedge) and [`hedge_layer`](Builder::hedge_layer) put a
//! [`Hedge`](crate::hedge::Hedge) between retry and the circuit breaker: the breaker admits
//! and records every attempt, hedges included (an open circuit refuses a hedge as it would
//! any call), and retry sees one attempt per hedged call, which it retries only once every
//! hedged attempt has failed. Hedges and retries draw from the retry's one budget, and only
//! the retry deposits (the checks above refuse anything else), so together they add at most
//! what that budget allows.
//!
//! ```
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::hedge::Hedge;
//! use seawall::retry::{Retry, RetryBudget};
//! use seawall::stack::{Stack, StackError};
//! use std::time::Duration;
//!
//! let budget = RetryBudget::builder().build().expect("valid budget");
//! let retry = Retry::builder().budget(budget.clone()).build().expect("valid policy");
//! let shared = Hedge::builder()
//!     .delay(Duration::from_millis(50))
//!     .budget(budget) // the retry's: hedges and retries draw from one budget
//!     .build()
//!     .expect("valid policy");
//! assert!(Stack::builder()
//!     .retry(retry.clone())
//!     .hedge(shared)
//!     .breaker(CircuitBreaker::default())
//!     .attempt_timeout(Duration::from_secs(1))
//!     .build()
//!     .is_ok());
//!
//! // The default hedge makes a budget of its own: refused.
//! let own = Hedge::builder().delay(Duration::from_millis(50)).build().expect("valid");
//! let refused = Stack::builder().retry(retry).hedge(own).build().unwrap_err();
//! assert_eq!(refused, StackError::HedgeBudgetNotShared { hedge_has_budget: true });
//! ```
//!
//! ## Requests that are not safe to repeat
//!
//! Whether a request may be sent twice is a property of each request (an HTTP `GET` may, a
//! `POST` without an `Idempotency-Key` may not); the hedge layer asks its request copier
//! ([`is_idempotent`](crate::retry::CloneRequest::is_idempotent)) for every request and
//! never hedges one it rejects or cannot copy. What [`build`](Builder::build) refuses is a
//! hedge whose copier does not decide at all
//! ([`StackError::HedgeOfAnyRequest`]): a [`HedgeLayer`](crate::hedge::HedgeLayer) left
//! with [`ByClone`](crate::retry::ByClone), which takes every request as safe. Accepted:
//!
//! - a copier that decides ([`KnowsIdempotency`](crate::retry::KnowsIdempotency)): the
//!   `http` feature's `HttpRequests` (RFC 9110's idempotent methods, or an
//!   `Idempotency-Key`), the `grpc` feature's `GrpcRequests` (the methods it names);
//! - [`hedge`](Builder::hedge), or [`Idempotent`](crate::retry::Idempotent)`(ByClone)`: a
//!   declaration that every request of the type is safe to send twice (reads, idempotent
//!   RPCs), made where it can be read.
//!
//! The builder cannot compare two copiers: a retry given `HttpRequests` with a hedge declared
//! `Idempotent` passes. Give the hedge the same request copier as the retry.
//!
//! A request is repeated by a hedge only if it would be by the retry with the same copier:
//! both ask `is_idempotent` once per call, before the first attempt.

mod builder;
mod check;
mod error;

pub use builder::{Builder, StackLayer};
pub use check::Part;
pub use error::StackError;

/// The entry point: [`Stack::builder`] for a checked stack, [`Stack::check`] for a hand-made
/// one.
#[derive(Debug)]
pub enum Stack {}

impl Stack {
    /// A builder with no part set (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Checks a hand-made stack, described outermost part first, with the rules
    /// [`Builder::build`] applies (see [the checks](self#the-checks)).
    pub fn check(parts: &[Part<'_>]) -> Result<(), StackError> {
        check::check(parts)
    }
}
