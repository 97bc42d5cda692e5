//! The retry policy: its builder, defaults and validation, and the bare async API. The
//! decision after each attempt lives in `attempt.rs`, the attempts themselves in
//! `attempts.rs`.

use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::attempts::{Attempts, Ending, Last, Typed};
use super::budget::{BudgetBuilder, RetryBudget};
use super::error::RetryError;
use super::observe::{Event, Observers, RetryEvent, RetryListener};
use crate::backoff::{Backoff, BackoffBuilder};
use crate::classify::{Classify, Outcome};
use crate::clock::{duration_to_nanos, Clock};
use crate::error::ConfigError;

/// The default retry classifier: a success is final, an error is retryable.
///
/// seawall's own refusals (an open circuit, an inner budget's refusal, a local throttle's
/// [`Throttled`](crate::throttle::Throttled)) are not retried whatever the classifier says:
/// the policy sets them aside before it asks any classifier, unless told otherwise with
/// [`Builder::retry_refusals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultRetryClassifier;

impl<T, E> Classify<T, E> for DefaultRetryClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// How a request is copied for the next attempt, and whether it may be sent again at all.
///
/// Implemented by [`ByClone`] (the default, for `Req: Clone`), by every closure
/// `Fn(&Req) -> Option<Req>`, and (feature `http`) by `seawall::http::HttpRequests`, which
/// retries only idempotent requests and replays their bodies.
///
/// A request is copied before its first attempt (the copy is sent, the original kept) and
/// again before each retry, from the kept original.
pub trait CloneRequest<Req> {
    /// A copy of `req` for another attempt, or `None` if it cannot be copied (now or any
    /// more: a streamed body that outgrew its replay buffer). Without a copy the call is not
    /// retried ([`GiveUpReason::RequestNotCopied`](super::GiveUpReason::RequestNotCopied)).
    fn clone_request(&self, req: &Req) -> Option<Req>;

    /// Whether `req` may be sent more than once (default: yes). Asked once, before the first
    /// attempt; a request that may not is neither copied nor retried, and its result is
    /// returned as it is ([`GiveUpReason::NotIdempotent`](super::GiveUpReason::NotIdempotent)).
    fn is_idempotent(&self, req: &Req) -> bool {
        let _ = req;
        true
    }
}

/// Copies requests with their `Clone` implementation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByClone;

impl<Req: Clone> CloneRequest<Req> for ByClone {
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// Whether a request copier decides which requests may be sent twice
/// ([`CloneRequest::is_idempotent`]), as opposed to taking every request as safe: asked by
/// `seawall::stack`'s builder, which refuses to hedge with a copier that does not (a hedge
/// sends a request twice by design).
///
/// `true` for the `http` feature's `HttpRequests` and the `grpc` feature's `GrpcRequests`,
/// and for [`Idempotent`], which declares every request safe; `false` for [`ByClone`].
pub trait KnowsIdempotency {
    /// Whether this copier's `is_idempotent` is a decision, not a default.
    fn knows_idempotency(&self) -> bool;
}

impl KnowsIdempotency for ByClone {
    fn knows_idempotency(&self) -> bool {
        false
    }
}

/// A request copier that declares every request safe to send twice: `R` copies them (by
/// default with `Clone`). Say so where it is true (reads, or writes the server
/// deduplicates), so that a hedge may be built with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Idempotent<R = ByClone>(pub R);

impl<Req, R: CloneRequest<Req>> CloneRequest<Req> for Idempotent<R> {
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        self.0.clone_request(req)
    }

    fn is_idempotent(&self, _: &Req) -> bool {
        true
    }
}

impl<R> KnowsIdempotency for Idempotent<R> {
    fn knows_idempotency(&self) -> bool {
        true
    }
}

impl<F, Req> CloneRequest<Req> for F
where
    F: Fn(&Req) -> Option<Req>,
{
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        self(req)
    }
}

/// What to do when the server asks for a wait (`Retry-After`, gRPC pushback) longer than
/// the policy allows: its backoff's `max_delay`, or what is left before the deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LongRetryAfter {
    /// Give up at once, with [`RetryAfterTooLong`](super::RetryAfterTooLong) (the bare call:
    /// [`RetryError::RetryAfterTooLong`]): retrying earlier would go against the server's
    /// wish, and waiting longer than allowed against the caller's. The default.
    #[default]
    GiveUp,
    /// Wait what the policy allows (`max_delay`) and retry then; past the deadline, give up
    /// with the last result as with any backoff.
    Cap,
    /// Give up at once, and return the last result as it is: the server's own 429 or 503
    /// (with its `Retry-After` and body) stays the answer, for a caller that passes it on. A
    /// [`GiveUp`](super::Event::GiveUp) event says why
    /// ([`GiveUpReason::RetryAfterTooLong`](super::GiveUpReason::RetryAfterTooLong)).
    Return,
}

/// The validated policy, shared by every clone of a [`Retry`], the services it builds and
/// their calls in flight (each response future holds it through a lane, see
/// [`Lanes`](crate::sync::Lanes), so a call outlives its stack).
pub(crate) struct Policy {
    pub(crate) max_retries: u32,
    pub(crate) retry_refusals: bool,
    pub(crate) long_retry_after: LongRetryAfter,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) observers: Observers,
    pub(crate) clock: Clock,
    pub(crate) seed: u64,
    pub(crate) rngs: AtomicU64,
}

impl Policy {
    /// The deadline of a call starting now, in the policy clock's nanoseconds (`u64::MAX`
    /// without a deadline). Reads the clock only when a deadline is configured.
    #[inline(never)]
    pub(crate) fn deadline_from_now(&self) -> u64 {
        match self.deadline {
            Some(d) => self
                .clock
                .now_nanos()
                .saturating_add(duration_to_nanos(d))
                .min(u64::MAX - 1),
            None => u64::MAX,
        }
    }
}

// ===== Retry =====

/// A retry policy: how many retries, how long to wait, what the budget allows.
///
/// Cloning is cheap (an `Arc`); clones, the layers they make and the services those build
/// share one policy and one [`RetryBudget`]. Use it as a tower middleware with
/// [`layer`](Self::layer), or around any async call with [`call`](Self::call).
///
/// [`call`](Self::call) borrows the policy; each [`layer`](Self::layer) allocates a few small
/// handles its calls hold the policy by (see [`RetryLayer`](super::RetryLayer)).
#[derive(Clone)]
pub struct Retry {
    /// `crate::sync`'s `Arc` (loom's under `--cfg seawall_loom`), as lanes hold it.
    pub(crate) policy: crate::sync::Arc<Policy>,
}

impl Default for Retry {
    /// A policy with every default (see [`Builder`]).
    fn default() -> Self {
        Builder::default().build_unchecked()
    }
}

impl Retry {
    /// A builder with the defaults: 3 retries, exponential backoff from 500 ms with full
    /// jitter, a budget of 50 % of recent successes plus 10 retries a second, at most 3 until
    /// a success comes back.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A layer that retries through this policy, with the default classifier, requests
    /// copied with `Clone`.
    pub fn layer(&self) -> super::RetryLayer {
        super::RetryLayer::new(self.clone())
    }

    /// The most retries per call (so `max_retries() + 1` attempts).
    pub fn max_retries(&self) -> u32 {
        self.policy.max_retries
    }

    /// The backoff schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.policy.backoff
    }

    /// The budget retries draw from, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.policy.budget.as_ref()
    }

    /// The overall deadline per call, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.policy.deadline
    }

    /// The timeout of each attempt, if any.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.policy.attempt_timeout
    }

    /// The policy's name, if it was given one ([`Builder::name`]).
    pub fn name(&self) -> Option<&str> {
        self.policy.observers.name()
    }

    /// What a `Retry-After` longer than allowed does.
    pub fn long_retry_after(&self) -> LongRetryAfter {
        self.policy.long_retry_after
    }

    /// This policy, or, if it has no deadline, a copy of it with `deadline` (sharing its
    /// budget and listeners): for a stack whose overall timeout should also bound the waits
    /// retry decides on (a `Retry-After` that would outlast the call gives up at once).
    #[cfg(feature = "http")]
    pub(crate) fn with_deadline_if_none(&self, deadline: Duration) -> Retry {
        if self.policy.deadline.is_some() {
            return self.clone();
        }
        let p = &*self.policy;
        Retry {
            policy: crate::sync::Arc::new(Policy {
                max_retries: p.max_retries,
                retry_refusals: p.retry_refusals,
                long_retry_after: p.long_retry_after,
                backoff: p.backoff,
                budget: p.budget.clone(),
                deadline: Some(deadline),
                attempt_timeout: p.attempt_timeout,
                observers: p.observers.clone(),
                clock: p.clock.clone(),
                seed: p.seed,
                rngs: AtomicU64::new(0),
            }),
        }
    }

    /// Runs `f` until it succeeds or retries end, with the default classifier (errors are
    /// retryable, except an open circuit and an exhausted inner budget).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use seawall::retry::{Retry, RetryError};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let retry = Retry::builder().no_budget().build().expect("valid policy");
    /// let calls = AtomicU32::new(0);
    /// let r: Result<u32, RetryError<&str>> = retry
    ///     .call(|| async {
    ///         match calls.fetch_add(1, Ordering::Relaxed) {
    ///             0 | 1 => Err("flaky"),
    ///             n => Ok(n),
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(r, Ok(2));
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.call_with(&DefaultRetryClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier deciding what is retryable and giving
    /// `Retry-After` hints. seawall's own refusals are not retried whatever it says (see
    /// [`Builder::retry_refusals`]).
    ///
    /// The bare call runs on the same attempts as the layer (the closure is wrapped as an
    /// always-ready service), so both decide the same way, with the same events.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, RetryError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let attempts: Attempts<_, _, _, _, _, Typed<E>, _, _> =
            Attempts::new(Closure(f), (), &*self.policy, ByRef(classifier), ByClone);
        let finished = attempts.await;
        let error = match finished.last {
            // A value the classifier called retryable is the answer, as in the layer, unless
            // the server asked for a wait the policy does not allow.
            Last::Response(response) => match finished.ending {
                Ending::RetryAfterTooLong { .. } => None,
                _ => return Ok(response),
            },
            Last::Error(Typed(e)) => Some(e),
            Last::TimedOut | Last::NotMade | Last::Released => None,
        };
        Err(match (finished.ending, error) {
            (Ending::AsIs, Some(e)) => RetryError::Inner(e),
            (Ending::AsIs, None) => RetryError::Timeout,
            (Ending::BudgetExhausted, e) => RetryError::BudgetExhausted(e),
            (Ending::NoTimer, e) => RetryError::TimerUnavailable(e),
            (Ending::RetryAfterTooLong { retry_after, .. }, last) => {
                RetryError::RetryAfterTooLong { retry_after, last }
            }
            // The bare call copies no request (the closure makes each attempt's).
            (Ending::NotCopied, Some(e)) => RetryError::Inner(e),
            (Ending::NotCopied, None) => RetryError::Timeout,
        }
        .registered())
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.policy;
        f.debug_struct("Retry")
            .field("max_retries", &s.max_retries)
            .field("backoff", &s.backoff)
            .field("budget", &s.budget)
            .field("deadline", &s.deadline)
            .field("attempt_timeout", &s.attempt_timeout)
            .field("observers", &s.observers)
            .finish_non_exhaustive()
    }
}

// ===== the bare call's adapters =====

/// A closure as a service that is always ready: the bare call runs on the same attempts.
struct Closure<F>(F);

impl<F, Fut, T, E> Service<()> for Closure<F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    #[inline]
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, (): ()) -> Fut {
        (self.0)()
    }
}

/// A borrowed classifier.
struct ByRef<'a, C: ?Sized>(&'a C);

impl<C, T, E> Classify<T, E> for ByRef<'_, C>
where
    C: Classify<T, E> + ?Sized,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self.0.classify(result)
    }
    fn retry_after(&self, result: &Result<T, E>) -> Option<Duration> {
        self.0.retry_after(result)
    }
    fn is_unsent(&self, result: &Result<T, E>) -> bool {
        self.0.is_unsent(result)
    }
}

// ===== Builder =====

enum BudgetSetting {
    Default,
    Off,
    Given(RetryBudget),
    Build(BudgetBuilder),
}

/// Builds a [`Retry`] policy. Every setting has a default; `build()` validates them all.
///
/// | setting | default |
/// |---|---|
/// | [`max_retries`](Self::max_retries) | 3 (so up to 4 attempts) |
/// | [`backoff`](Self::backoff) | exponential, 500 ms x2 (0.5 s, 1 s, 2 s), max 30 s, full jitter |
/// | [`budget`](Self::budget) / [`new_budget`](Self::new_budget) | on: 50 % of recent successes + 10/s, 3 per failure streak (see [`RetryBudget`]) |
/// | [`deadline`](Self::deadline) | none |
/// | [`attempt_timeout`](Self::attempt_timeout) | none |
/// | [`on_retry`](Self::on_retry) / [`listener`](Self::listener) | none |
/// | [`name`](Self::name) | none |
/// | [`retry_refusals`](Self::retry_refusals) | `false`: an open circuit or an inner budget's refusal is not retried |
/// | [`long_retry_after`](Self::long_retry_after) | [`LongRetryAfter::GiveUp`]: a `Retry-After` over `max_delay` or past the deadline ends the call |
/// | [`seed`](Self::seed) | from the OS |
/// | [`clock`](Self::clock) | tokio's clock |
#[must_use]
pub struct Builder {
    max_retries: u32,
    backoff: BackoffBuilder,
    budget: BudgetSetting,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
    observers: Observers,
    retry_refusals: bool,
    long_retry_after: LongRetryAfter,
    seed: Option<u64>,
    clock: Option<Clock>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            max_retries: 3,
            backoff: BackoffBuilder::default(),
            budget: BudgetSetting::Default,
            deadline: None,
            attempt_timeout: None,
            observers: Observers::default(),
            retry_refusals: false,
            long_retry_after: LongRetryAfter::GiveUp,
            seed: None,
            clock: None,
        }
    }
}

impl Builder {
    /// At most this many retries per call (default 3). Zero turns retrying off.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The backoff schedule, validated by `build()`, e.g.
    /// `Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(5))`.
    pub fn backoff(mut self, backoff: BackoffBuilder) -> Self {
        self.backoff = backoff;
        self
    }

    /// The budget retries draw from (default: a budget of its own with
    /// [`RetryBudget::builder`]'s defaults). Share one budget between the layers in front of
    /// one dependency.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = BudgetSetting::Given(budget);
        self
    }

    /// A budget of this policy's own, with these settings, validated by `build()` (the
    /// builder's clock is replaced by [`clock`](Self::clock)'s when one is set).
    pub fn new_budget(mut self, budget: BudgetBuilder) -> Self {
        self.budget = BudgetSetting::Build(budget);
        self
    }

    /// No budget: every retryable failure is retried, up to `max_retries`. Beware of retry
    /// storms: with 3 retries, a dependency that falls over sees 4 times its load.
    pub fn no_budget(mut self) -> Self {
        self.budget = BudgetSetting::Off;
        self
    }

    /// An overall deadline per call, from its start: no attempt starts at or past it, neither
    /// after a backoff that would reach it nor after waiting for the inner service's
    /// readiness (the wait for readiness is cut at the deadline); the last result is
    /// returned then. An attempt in flight is not cut short: put a `Timeout` outside the
    /// retry layer for that. Reads the clock at every call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// A timeout for each attempt; an attempt that runs past it is retryable, and if it is
    /// the last, the call fails with `tower::timeout::error::Elapsed` (the bare call: with
    /// [`RetryError::Timeout`]). Every attempt is timed, so it needs a tokio runtime with
    /// `enable_time`: without one the first attempt's future is never polled (the inner
    /// service's `call` has run, and may have acted: tower's `Buffer` sends there) and the
    /// call fails with
    /// [`TimerUnavailable`](super::TimerUnavailable) (see
    /// [Without a timer](super#without-a-timer)).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Called before every retry waits, for logging or metrics: sugar for a
    /// [`listener`](Self::listener) of [`Event::Retry`]. Runs on the calling task: keep it
    /// short. Each call adds a hook.
    pub fn on_retry(self, f: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.listener(move |event: &Event<'_>| {
            if let Event::Retry(retry) = event {
                f(retry)
            }
        })
    }

    /// Adds a listener of every [`Event`]: each retry, each retryable failure that is not
    /// retried and why (see [`GiveUpReason`](super::GiveUpReason)), and the end of each
    /// attempt and each call with its duration. Runs on the calling task: keep it short.
    ///
    /// With a listener, every call reads the policy's clock when it starts and when each
    /// attempt ends (to time them); without one, the success path reads no clock.
    pub fn listener(mut self, listener: impl RetryListener) -> Self {
        self.observers.push(Arc::new(listener));
        self
    }

    /// Names the policy: the name appears in its `tracing` events and spans (feature
    /// `tracing`), and [`with_metrics`](crate::metrics::WithMetrics::with_metrics) sets it
    /// to the metrics' `name` label. Default: none.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.observers.set_name(name.into());
        self
    }

    /// Whether seawall's own refusals ([`ErrorKind::is_refusal`](crate::ErrorKind::is_refusal): an open circuit, an inner
    /// budget's refusal, a throttle's local rejection) are retried like any other error (default `false`). Off, they are
    /// returned at once, before any classifier is asked: the dependency was not called, and
    /// retrying would only hammer the layer that refused (or multiply nested retries).
    pub fn retry_refusals(mut self, retry: bool) -> Self {
        self.retry_refusals = retry;
        self
    }

    /// What to do when the server asks for a wait longer than allowed (default
    /// [`LongRetryAfter::GiveUp`]). The wait comes from the classifier's
    /// [`retry_after`](crate::Classify::retry_after): with the `http` feature, a 429's or
    /// 503's `Retry-After` (RFC 9110, section 10.2.3); with `grpc`, `grpc-retry-pushback-ms`.
    pub fn long_retry_after(mut self, long: LongRetryAfter) -> Self {
        self.long_retry_after = long;
        self
    }

    /// Seeds the jitter, for reproducible delays: the `n`-th call to retry (from 0) draws its
    /// delays from `SmallRng::seed_from_u64(seed + n)`. Default: a seed from the OS.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The clock deadlines are read from (default: tokio's, created at `build()`). Backoff
    /// sleeps and attempt timeouts always use tokio's timer, so with a `ManualClock` the
    /// deadline and the sleeps run on different time bases: use tokio's clock (and
    /// `tokio::time::pause` in tests) when a deadline is set.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings and builds the policy.
    pub fn build(mut self) -> Result<Retry, ConfigError> {
        self.backoff.build()?;
        if let BudgetSetting::Build(b) = &self.budget {
            let b = match &self.clock {
                Some(clock) => b.clone().clock(clock.clone()),
                None => b.clone(),
            };
            self.budget = BudgetSetting::Given(b.build()?);
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(ConfigError::Zero { field: "deadline" });
        }
        if self.attempt_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Zero {
                field: "attempt_timeout",
            });
        }
        Ok(self.build_unchecked())
    }

    fn build_unchecked(self) -> Retry {
        let backoff = self.backoff.build().unwrap_or_default();
        let budget = match self.budget {
            BudgetSetting::Off => None,
            BudgetSetting::Given(b) => Some(b),
            BudgetSetting::Build(b) => b.build().ok(),
            BudgetSetting::Default => RetryBudget::builder()
                .clock(self.clock.clone().unwrap_or_default())
                .build()
                .ok(),
        };
        let seed = self.seed.unwrap_or_else(os_seed);
        let policy = crate::sync::Arc::new(Policy {
            max_retries: self.max_retries,
            retry_refusals: self.retry_refusals,
            long_retry_after: self.long_retry_after,
            backoff,
            budget,
            deadline: self.deadline,
            attempt_timeout: self.attempt_timeout,
            observers: self.observers,
            clock: self.clock.unwrap_or_default(),
            seed,
            rngs: AtomicU64::new(0),
        });
        Retry { policy }
    }
}

fn os_seed() -> u64 {
    use rand::TryRngCore;
    rand::rngs::OsRng.try_next_u64().unwrap_or_else(|_| {
        // No OS entropy: the time of day still decorrelates processes started apart.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}
