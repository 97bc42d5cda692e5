//! Retry: call again after a retryable failure, with backoff and jitter, within a budget
//! and a deadline.
//!
//! A [`Retry`] policy makes up to `max_retries` retries (default 3) of the calls its
//! classifier calls retryable (default: errors). seawall's own refusals (an open circuit, an
//! inner budget's refusal: [`ErrorKind::is_refusal`](crate::ErrorKind::is_refusal)) are never
//! retried, whatever the classifier says, unless [`Builder::retry_refusals`] says so. Before
//! each retry it waits a [`Backoff`] delay (default exponential from 500 ms:
//! 0.5 s, 1 s, 2 s, with full jitter, capped by `max_delay`), or the server's `Retry-After`
//! when the classifier gives one (capped the same way). It never sleeps past its optional
//! deadline (which bounds the wait for the inner service's readiness too), and every retry
//! draws from a shared [`RetryBudget`] (default: 50 % of recent
//! successes plus 10 a second, and at most 3 retries until a success comes back), so that a
//! dependency that falls over sees its load, not 4 times it, while one that fails some calls
//! still gets the retries that pay. An empty budget returns the last error at once, wrapped in [`BudgetExhausted`].
//! The token is taken when the retry is decided and its wait armed, as the last test: a
//! retry that then never starts (its call is cancelled during the backoff, or the deadline
//! passes while the inner service is not ready) has spent it, which makes the budget
//! stricter, never looser.
//!
//! Every retry and every retryable failure that is not retried (and why) is an [`Event`],
//! sent to the policy's listeners ([`Builder::listener`], [`Builder::on_retry`]) and to
//! `tracing` (feature `tracing`): a response classified as a failure that was not retried
//! (say, a 503 the budget refused to retry) is still returned as `Ok`, and its
//! [`GiveUpEvent`] is the sign of it. Listeners are also told of the end of every attempt
//! and every call ([`Event::Attempt`], [`Event::Finished`]), with their durations: what
//! [`RetryMetrics`](crate::metrics) (feature `metrics`) exports.
//!
//! With `tracing`, every call runs in a span, `retry` at `DEBUG`, with the policy's
//! [`name`](Builder::name) and, once it ends, the `attempts` it made: the retry's events
//! (`retrying` and `not retrying` at `DEBUG`) and those of the layers inside it (a breaker's
//! rejection) are grouped per call. To put a whole stack's call in a span of your own,
//! compose tower's `ServiceExt::map_future` with `tracing::Instrument` (see
//! [the stack's docs](crate::stack#tracing-a-whole-stack)).
//!
//! [`Backoff`] and [`RetryBudget`] know nothing of tower and are usable alone. The policy
//! retries any async call with [`Retry::call`], or a tower service with [`RetryLayer`]; both
//! run the same attempts (the closure is wrapped as an always-ready service) and decide the
//! same way, with the same events. The layer's inner service must be `Clone`, and its
//! requests are copied for each attempt with `Clone` or a [`CloneRequest`] of your own; a
//! request that cannot be copied is sent once.
//!
//! # Example
//!
//! ```
//! use seawall::retry::{Backoff, BudgetExhausted, Jitter, Retry, RetryBudget};
//! use seawall::{BoxError, ErrorKind};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let retry = Retry::builder()
//!     .max_retries(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::None))
//!     .budget(RetryBudget::builder().ratio(0.2).min_per_sec(2).build().expect("valid budget"))
//!     .build()
//!     .expect("valid policy");
//!
//! // Fails twice, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = calls.clone();
//! let mut svc = ServiceBuilder::new()
//!     .layer(retry.layer())
//!     .service(service_fn(move |req: &'static str| {
//!         let n = counter.fetch_add(1, Ordering::Relaxed);
//!         async move { if n < 2 { Err::<_, BoxError>("flaky".into()) } else { Ok(req) } }
//!     }));
//!
//! let start = tokio::time::Instant::now();
//! assert_eq!(svc.ready().await.unwrap().call("ping").await.unwrap(), "ping");
//! assert_eq!(calls.load(Ordering::Relaxed), 3);
//! assert_eq!(start.elapsed(), Duration::from_millis(100 + 200));
//!
//! // The two retries emptied the budget's floor (2 a second): the next failure is not retried.
//! calls.store(0, Ordering::Relaxed);
//! let err = svc.ready().await.unwrap().call("ping").await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::BudgetExhausted);
//! assert_eq!(err.downcast_ref::<BudgetExhausted>().unwrap().last_error().to_string(), "flaky");
//! assert_eq!(calls.load(Ordering::Relaxed), 1);
//! # }
//! ```
//!
//! # Cost
//!
//! The success path (no retry) is designed against a bare `service_fn` and measured in
//! `benches/retry.rs` (timings) and `benches/instructions.sh` (instruction counts; the README
//! has the figures): no allocation (a test counts them), no lock, no clock read. Per call the
//! service adds:
//!
//! - a clone of the inner service: the readied one makes the call and the retries, as tower
//!   requires (free for `service_fn`; the cost of `Clone` for others);
//! - a copy of the request, kept for the retries ([`CloneRequest`]); the last possible
//!   attempt sends the original, so `max_retries(0)` copies nothing;
//! - one budget deposit when the call succeeds: no lock and no clock read (see
//!   [`RetryBudget`]);
//! - one reference to the policy, held by the call until it ends (two atomic
//!   read-modify-writes: the increment now, the decrement then), counted on its thread's
//!   lane (one thread-local read picks it) rather than on one count shared by every core
//!   (see [Memory](#memory)); calls on
//!   several cores through one layer then write different cache lines, and cost about what
//!   they cost alone;
//! - the classifier, and a small response future.
//!
//! Opt-ins cost more: a deadline reads the clock at every call; a per-attempt timeout
//! allocates one timer per call, at its start, and re-arms it for every attempt. A call that
//! retries allocates once (a seeded rng, the last result, one timer reused by every wait);
//! each retry draws from the budget (see [`RetryBudget`] for what a withdrawal costs) and,
//! with a deadline, reads the clock twice (deciding the retry, starting its attempt; once
//! more if the inner service is not ready). The layer boxes each failed attempt's error (it
//! returns a `BoxError` anyway); the bare call keeps the error's own type.
//!
//! # Memory
//!
//! Nothing is leaked. A policy is one reference-counted allocation (configuration, budget,
//! listeners), freed when the last [`Retry`], layer, service and call in flight are gone. A
//! call in flight holds the policy (its response future owns a reference), so it still
//! retries, deposits into the budget and reaches its listeners when the last handle to its
//! stack is dropped while it runs (`oneshot`, a config reload). [`Retry::call`] borrows the
//! policy and takes no reference.
//!
//! **Lanes.** A count written by every call is a cache line every core writes: two cores
//! calling through one policy at once would spend most of a call moving that line between
//! them. So a call does not take the policy's own count: a [`RetryLayer`] (and
//! [`RetryService::new`]) makes one *lane* per core (rounded up to a power of two, at most 8) once, when it is built: a small
//! allocation of its own (128-byte aligned, 256 bytes with its counts) holding one reference
//! to the policy. Each call clones the lane of its thread. The lanes only multiply the count:
//! the policy and its budget stay one, shared. The circuit breaker holds its circuit the same
//! way (the same primitive). Cloning a layer or a service, and building a service with a
//! layer, allocates nothing: the lanes are shared through one `Arc` (one more count, written
//! per clone, not per call).
//!
//! # Without a timer
//!
//! Waits (a backoff, a per-attempt timeout, the deadline while the inner service is not
//! ready) use tokio's timer. A call that needs no wait needs no timer, and runs under any
//! executor. One that needs a wait where there is no timer fails with [`TimerUnavailable`]
//! (the bare call: with [`RetryError::TimerUnavailable`]), carrying the last error, and
//! never unwinds into your code:
//!
//! - outside a tokio runtime (another executor, or none), seawall asks tokio and nothing
//!   panics;
//! - in a tokio runtime built without `enable_time`, tokio 1.x offers no way to ask whether
//!   its time driver is on, so seawall catches the panic of tokio's `sleep_until`. The panic
//!   hook still runs for it (the default hook prints it to stderr), once for each call that
//!   needs a wait there, and a build with `panic = "abort"` aborts. Enable the time driver
//!   (`enable_time` or `enable_all` on the runtime builder; `#[tokio::main]` does) in
//!   such builds.
//!
//! # Layer order
//!
//! Put retry outside the circuit breaker and a per-attempt timeout inside it (see the crate
//! docs): every attempt is then admitted and recorded by the breaker on its own, an open
//! circuit is not retried (a [`CircuitOpen`](crate::circuit_breaker::CircuitOpen) is a
//! refusal), and a timed-out attempt counts as a failure. With the breaker outside, one
//! breaker call would cover all the attempts, and a dependency's failures would reach the
//! breaker only once retries are used up.

mod attempt;
mod attempts;
pub mod budget;
mod error;
mod future;
mod layer;
mod observe;
mod policy;
mod service;

pub use crate::backoff::{Backoff, BackoffBuilder, Delays, Growth, Jitter};
pub use budget::{BudgetBuilder, RetryBudget, STRIPES};
pub use error::{
    BudgetExhausted, RequestNotCopied, RetryAfterTooLong, RetryError, TimerUnavailable,
};
pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use observe::{
    AttemptEvent, CallOutcome, Event, FinishedEvent, GiveUpEvent, GiveUpReason, RetryEvent,
    RetryListener, RetryReason,
};
pub use policy::{
    Builder, ByClone, CloneRequest, DefaultRetryClassifier, Idempotent, KnowsIdempotency,
    LongRetryAfter, Retry,
};
pub use service::RetryService;
