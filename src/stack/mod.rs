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
//! 5. *hedging*, when seawall has it (see [Hedging](#hedging));
//! 6. **circuit breaker**: admits and records each attempt on its own; an open circuit ends
//!    the call at once (retry does not retry seawall's refusals);
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
//! | [`Config`](StackError::Config): a zero timeout | every call would time out |
//!
//! The checks compare settings, not behaviour: the backoff's first delay is compared before
//! jitter, and a retry with `max_retries(0)` never counts as retrying. A bulkhead's wait is
//! not compared with the attempt timeout: in this order the attempt timeout sits inside the
//! bulkhead and bounds how long a slot is held, not the wait for one.
//!
//! # Hand-made orders
//!
//! The builder is the checked path. A stack assembled by hand with `ServiceBuilder` can be
//! described to [`Stack::check`], outermost part first, which applies the same rules and
//! catches what only a hand-made order can get wrong: a timeout between retry and breaker,
//! a fallback inside retry or the breaker ([`FallbackInside`](StackError::FallbackInside)).
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
//! Hedging is not in seawall yet. Its place is between retry and the circuit breaker (each
//! hedged attempt admitted and recorded by the breaker, hedges and retries drawing from one
//! budget); when it lands, the builder gains a `hedge` part there and a refusal of hedging
//! for requests that are not idempotent. [`StackError`] and [`Part`] are `non_exhaustive`
//! for that.

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
