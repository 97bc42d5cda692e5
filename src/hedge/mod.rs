//! Hedged requests: when a call has not answered after a delay, send the same request again
//! (a *hedge*) without cancelling the first; the first acceptable answer wins and the other
//! attempts are dropped (cancelled) at once. Only requests that are safe to repeat are
//! hedged, and every hedge withdraws from a [`RetryBudget`]: give it the retry's
//! ([`Builder::budget`]`(retry.budget().cloned())`), so hedges and retries together cannot
//! multiply the load on a dependency that is slow for everyone (`seawall::stack`'s builder
//! refuses a hedge and a retry on two budgets). Built without one, a hedge has a budget of
//! its own.
//!
//! Over HTTP, give the hedge [`HttpRetryClassifier`](crate::http::HttpRetryClassifier) as
//! its classifier (`.classifier(..)` on the layer) and `HttpRequests` as its request copier:
//! the default classifier accepts any response, so a fast 503 from a hedge would beat the
//! primary's slower 200.
//!
//! The delay is fixed ([`Builder::delay`]) or a latency percentile of recent attempts
//! ([`Builder::latency_percentile`], with [`min_data_points`](Builder::min_data_points) and
//! [`period`](Builder::period), as tower's `hedge` does). Use it as a tower layer
//! ([`Hedge::layer`]) or around any async call ([`Hedge::call`]); both run on the same
//! attempts and decide alike.
//!
//! ```
//! use seawall::hedge::{Event, Hedge};
//! use seawall::retry::RetryBudget;
//! use seawall::BoxError;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let sent = Arc::new(AtomicU32::new(0));
//! let s = sent.clone();
//! let hedge = Hedge::builder()
//!     .delay(Duration::from_millis(50))
//!     .budget(RetryBudget::builder().min_per_sec(1).build().expect("valid budget"))
//!     .listener(move |event: &Event| {
//!         if let Event::Sent(_) = event {
//!             s.fetch_add(1, Ordering::Relaxed);
//!         }
//!     })
//!     .build()
//!     .expect("valid policy");
//!
//! // The first attempt of every call is slow (1 s), any later one fast (10 ms).
//! let attempts = Arc::new(AtomicU32::new(0));
//! let a = attempts.clone();
//! let mut svc = ServiceBuilder::new()
//!     .layer(hedge.layer())
//!     .service(service_fn(move |req: u32| {
//!         let n = a.fetch_add(1, Ordering::Relaxed);
//!         async move {
//!             let ms = if n % 2 == 0 { 1_000 } else { 10 };
//!             tokio::time::sleep(Duration::from_millis(ms)).await;
//!             Ok::<_, BoxError>((req, ms))
//!         }
//!     }));
//!
//! let start = tokio::time::Instant::now();
//! // The hedge, sent at 50 ms, answers at 60 ms; the slow primary is cancelled.
//! assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), (7, 10));
//! assert_eq!(start.elapsed(), Duration::from_millis(60));
//! assert_eq!(sent.load(Ordering::Relaxed), 1);
//!
//! // The budget's floor (1 a second) is spent: the next slow call is not hedged.
//! attempts.store(0, Ordering::Relaxed);
//! assert_eq!(svc.ready().await.unwrap().call(8).await.unwrap(), (8, 1_000));
//! assert_eq!(sent.load(Ordering::Relaxed), 1);
//! # }
//! ```
//!
//! # Who wins
//!
//! The first answer the classifier accepts (by default any `Ok`; [`Outcome::Success`] or
//! [`Outcome::Ignored`] with [`HedgeLayer::classifier`]), as in Polly v8's hedging, where
//! the first *acceptable* result wins. A failure ([`Outcome::Failure`]) ends the call only
//! when no other attempt is in flight; while one is, the call waits for it (and keeps
//! sending the hedges the timer calls for), so a fast failure of the primary does not beat a
//! hedge that is about to succeed. When every attempt has failed, the last failure to arrive
//! is the answer. A failure never sends a hedge early: making new attempts out of failures
//! is the retry's job, with its backoff (put [`Retry`](crate::retry::Retry) outside). tower's
//! `hedge` instead returns whichever attempt completes first, a failure included.
//!
//! The attempts that lose are dropped before the answer is returned: their futures (and
//! whatever they hold: a connection, a permit) are released at once. Dropping the response
//! future drops every attempt.
//!
//! # What is hedged
//!
//! A request is hedged only if its [`CloneRequest`] calls it idempotent
//! ([`is_idempotent`](crate::retry::CloneRequest::is_idempotent), asked once per call) and can copy it
//! ([`ByClone`] by default; with the `http` feature, `seawall::http::HttpRequests`, which
//! hedges only RFC 9110's idempotent methods or requests carrying an `Idempotency-Key`).
//! The primary is sent a copy and the original is kept; the last hedge sends the original.
//! Any other request is sent once, as it is, with no timer.
//!
//! # The budget, and who deposits
//!
//! Each hedge withdraws one token from the budget when its delay passes; a refusal sends an
//! [`Event::BudgetExhausted`], and the call sends no more hedges (its primary's answer is
//! still returned). A budget counts successful *calls*, one deposit each, whoever makes it:
//!
//! - with a budget it made itself (the default), the hedge deposits each call whose answer
//!   the classifier calls a success;
//! - with a budget given to [`Builder::budget`], the hedge only withdraws: the retry that
//!   shares the budget deposits each call's success. With retry outside the hedge (the
//!   recommended order), a call that retry sees succeed is one deposit, not two. A given
//!   budget that no retry deposits into should be given
//!   [`deposit_successes(true)`](Builder::deposit_successes).
//!
//! A budget cannot tell who deposited, so two depositors per call (retry, and a hedge told
//! to deposit, on one budget) would double what retries and hedges may add. The default errs
//! the other way: a hedge with a given budget and no retry depositing gets at most
//! `failure_streak` hedges (3 by default) until something deposits, ever: no success is
//! deposited, so the budget's failure streak never ends, whatever its floor.
//!
//! # Why not tower's `hedge`
//!
//! seawall's design says not to re-implement a tower middleware that fits. tower's `Hedge`
//! (a `Policy` with `clone_request` and `can_retry`, a rotating latency histogram) was
//! weighed, with a `tower::hedge::Policy` over [`CloneRequest`] and [`RetryBudget`] (its
//! `can_retry` a withdrawal). It does not fit:
//!
//! - it returns whichever attempt completes first, so a fast failure of the primary beats a
//!   hedge in flight: the opposite of what hedging is for (and of Polly's semantics);
//! - it sends exactly one hedge (a `Select` of two services): no `max_hedges`;
//! - it has only the percentile mode: no fixed delay;
//! - its success path locks a mutex and reads the clock twice per call (every call records
//!   its latency, and the delay is read from the histogram at every call), while seawall's
//!   fixed mode reads no clock and arms no timer for a call that answers at once;
//! - its `Policy` has no hook for a success (the budget's deposit) nor for a refusal (the
//!   listener's event), and a hedge the policy refuses is a `future::pending` that the
//!   caller cannot observe.
//!
//! Its percentile mode is kept: the same rotating histogram of two halves (one `period`
//! read, one written), the same `min_data_points` of the last full period before any hedge.
//! The histogram is seawall's own (`latency.rs`): tower's is private and built on
//! `hdrhistogram`, which seawall does not depend on.
//!
//! # Cost
//!
//! Per call, on the success path (the primary answers first, no hedge): a clone of the inner
//! service (the readied one makes the call, as for retry), a copy of the request (kept for
//! the hedges; a non-idempotent request is not copied), one reference to the policy on its
//! thread's lane, the classifier, and one budget deposit (only as the budget's depositor).
//! In the fixed mode nothing else: no clock read, no allocation, no lock. The percentile mode
//! reads the clock when the call begins and when it ends and records the latency under a
//! short lock. `benches/hedge.rs` measures it against a bare `service_fn`.
//!
//! A call that does not answer at its first poll reads the clock, arms one timer and boxes
//! its slow-path state once (in the percentile mode, it also reads the percentile under the
//! lock); each hedge boxes its future and withdraws from the budget.
//!
//! # The percentile mode
//!
//! Every attempt that ends records its latency; an attempt cancelled because another won
//! records the time it ran (a lower bound of its latency), so slow attempts that a hedge beat
//! still push the percentile up. The delay is the percentile of the last full period, read
//! when a call does not answer at once, and rounded up to its histogram bucket (at most 1/16
//! above the exact value: a hedge is sent a little late, never early). No hedge is sent
//! during the first period, nor while the last one holds fewer than `min_data_points`.
//!
//! # Without a timer
//!
//! With no tokio timer (another executor, or a runtime without `enable_time`), the call is
//! simply not hedged: its primary attempt is its answer. See [`crate::clock`].
//!
//! # Layer order
//!
//! Outermost first: overall timeout, retry (with the budget), hedge (drawing from the same
//! budget), circuit breaker, per-attempt timeout, the service. Inside retry, the hedges of
//! one attempt are that attempt: a call retried after all its attempts failed is hedged
//! again, and retry deposits the call's success once. Inside the hedge, the breaker admits
//! and records every attempt, hedges included, and an open circuit refuses a hedge as it
//! would any call (that failure waits for the attempts in flight).
//!
//! [`Outcome::Success`]: crate::Outcome::Success
//! [`Outcome::Ignored`]: crate::Outcome::Ignored
//! [`Outcome::Failure`]: crate::Outcome::Failure
//! [`CloneRequest`]: crate::retry::CloneRequest
//! [`ByClone`]: crate::retry::ByClone
//! [`RetryBudget`]: crate::retry::RetryBudget

mod attempts;
mod future;
mod latency;
mod layer;
mod observe;
mod policy;
mod service;

pub use future::ResponseFuture;
pub use layer::HedgeLayer;
pub use observe::{Event, HedgeEvent, HedgeListener};
pub use policy::{Builder, DefaultHedgeClassifier, Hedge, MAX_HEDGES};
pub use service::HedgeService;
