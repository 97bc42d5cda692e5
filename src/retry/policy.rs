//! The retry policy: its builder, defaults and validation, the decision taken after each
//! failed attempt, and the bare async API. No tower here.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::budget::{BudgetBuilder, RetryBudget};
use super::error::RetryError;
use crate::backoff::{Backoff, BackoffBuilder};
use crate::classify::{Classify, Outcome};
use crate::clock::{duration_to_nanos, Clock};
use crate::error::{BoxError, ConfigError, ErrorKind};

/// What a retry hook is told, just before the retry sleeps.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The attempt that just failed, from 1; the retry will be attempt `attempt + 1`.
    pub attempt: u32,
    /// How long the retry waits first (the backoff, or the server's `Retry-After`).
    pub delay: Duration,
    /// Whether `delay` came from the classifier's [`retry_after`](Classify::retry_after).
    pub retry_after: bool,
    /// The failed attempt's error; `None` when a response was classified as retryable.
    pub error: Option<&'a (dyn Error + 'static)>,
}

pub(crate) type Hook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// The default retry classifier: a success is final; an error is retryable, except a
/// rejection by an open circuit breaker (retrying it would only hammer the breaker) and a
/// refusal by an inner retry budget (nested retries must not multiply).
///
/// Both are recognised with [`ErrorKind::of_any`], so they are found inside a [`BoxError`]
/// coming from an inner seawall layer. Such errors are classified [`Outcome::Ignored`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultRetryClassifier;

impl<T, E: 'static> Classify<T, E> for DefaultRetryClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => match ErrorKind::of_any(e) {
                ErrorKind::CircuitOpen | ErrorKind::BudgetExhausted => Outcome::Ignored,
                _ => Outcome::Failure,
            },
        }
    }
}

/// How a request is copied for the next attempt. `None` means it cannot be: it is sent once,
/// and its result returned as is.
///
/// Implemented by [`ByClone`] (the default, for `Req: Clone`) and by every closure
/// `Fn(&Req) -> Option<Req>`.
pub trait CloneRequest<Req> {
    /// A copy of `req` for another attempt, or `None` if it cannot be copied.
    fn clone_request(&self, req: &Req) -> Option<Req>;
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

impl<F, Req> CloneRequest<Req> for F
where
    F: Fn(&Req) -> Option<Req>,
{
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        self(req)
    }
}

/// The validated policy, shared by every clone of a [`Retry`], the services it builds and
/// their calls in flight (each response future holds an `Arc` of it, so a call outlives its
/// stack).
///
/// Aligned to two cache lines so that the `Arc`'s reference counts, which every call writes
/// (a clone and a drop), sit on a line of their own, apart from the fields every call reads:
/// under contention the counts' line moves between cores, the fields' line stays shared.
#[repr(align(128))]
pub(crate) struct Shared {
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) on_retry: Option<Hook>,
    pub(crate) clock: Clock,
    seed: u64,
    rngs: AtomicU64,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Retry after this delay; `true` when it is the server's `Retry-After`.
    Retry(Duration, bool),
    /// Give up: retries used up, or the next attempt would start past the deadline.
    Stop,
    /// Give up: the budget refused the retry.
    Refused,
}

/// What a call that retries keeps between attempts: created at its first failure only.
pub(crate) struct RetryState {
    pub(crate) shared: Arc<Shared>,
    rng: SmallRng,
    previous: Duration,
}

impl RetryState {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        // Relaxed: only makes each retrying call draw a different sequence.
        let n = shared.rngs.fetch_add(1, Ordering::Relaxed);
        let rng = SmallRng::seed_from_u64(shared.seed.wrapping_add(n));
        RetryState {
            shared,
            rng,
            previous: Duration::ZERO,
        }
    }

    /// The decision after attempt `attempt` (from 1) failed, with the classifier's hint.
    /// `deadline` is in the policy clock's nanoseconds.
    pub(crate) fn decide(
        &mut self,
        attempt: u32,
        hint: Option<Duration>,
        deadline: Option<u64>,
    ) -> Decision {
        let shared = &*self.shared;
        if attempt > shared.max_retries {
            return Decision::Stop;
        }
        let (delay, from_hint) = match hint {
            Some(d) => (d.min(shared.backoff.max_delay()), true),
            None => (
                shared.backoff.delay(attempt, self.previous, &mut self.rng),
                false,
            ),
        };
        if let Some(deadline) = deadline {
            // Never sleep past the deadline: an attempt starting at it has no time left.
            let wake = shared
                .clock
                .now_nanos()
                .saturating_add(duration_to_nanos(delay));
            if wake >= deadline {
                return Decision::Stop;
            }
        }
        // The budget is asked last, so a retry refused for another reason costs no token (a
        // call cancelled during its backoff has spent one: stricter, never looser).
        if let Some(budget) = &shared.budget {
            if !budget.withdraw() {
                return Decision::Refused;
            }
        }
        self.previous = delay;
        Decision::Retry(delay, from_hint)
    }

    pub(crate) fn notify(&self, event: &RetryEvent<'_>) {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            attempt = event.attempt,
            delay_ms = u64::try_from(event.delay.as_millis()).unwrap_or(u64::MAX),
            retry_after = event.retry_after,
            error = event.error.map(tracing::field::display),
            "retrying"
        );
        if let Some(hook) = &self.shared.on_retry {
            hook(event);
        }
    }
}

// ===== Retry =====

/// A retry policy: how many retries, how long to wait, what the budget allows.
///
/// Cloning is cheap (an `Arc`); clones, the layers they make and the services those build
/// share one policy and one [`RetryBudget`]. Use it as a tower middleware with
/// [`layer`](Self::layer), or around any async call with [`call`](Self::call).
#[derive(Clone)]
pub struct Retry {
    pub(crate) shared: Arc<Shared>,
}

impl Default for Retry {
    /// A policy with every default (see [`Builder`]).
    fn default() -> Self {
        Builder::default().build_unchecked()
    }
}

impl Retry {
    /// A builder with the defaults: 3 retries, exponential backoff from 500 ms with full
    /// jitter, a budget of 20 % of recent successes plus 10 retries a second.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A layer that retries through this policy, with the default classifier and `Clone`.
    pub fn layer(&self) -> super::RetryLayer {
        super::RetryLayer::new(self.clone())
    }

    /// The most retries per call (so `max_retries() + 1` attempts).
    pub fn max_retries(&self) -> u32 {
        self.shared.max_retries
    }

    /// The backoff schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.shared.backoff
    }

    /// The budget retries draw from, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.shared.budget.as_ref()
    }

    /// The deadline of a call starting now, in the policy clock's nanoseconds (`u64::MAX`
    /// without a deadline). Reads the clock only when a deadline is configured.
    #[inline(never)]
    pub(crate) fn deadline_from_now(&self) -> u64 {
        match self.shared.deadline {
            Some(d) => self
                .shared
                .clock
                .now_nanos()
                .saturating_add(duration_to_nanos(d))
                .min(u64::MAX - 1),
            None => u64::MAX,
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
        E: Into<BoxError> + 'static,
    {
        self.call_with(&DefaultRetryClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier deciding what is retryable and giving
    /// `Retry-After` hints.
    pub async fn call_with<C, F, Fut, T, E>(
        &self,
        classifier: &C,
        mut f: F,
    ) -> Result<T, RetryError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        let deadline = Some(self.deadline_from_now()).filter(|_| self.shared.deadline.is_some());
        let mut state: Option<RetryState> = None;
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let result = match self.shared.attempt_timeout {
                Some(t) => tokio::time::timeout(t, f()).await.ok(),
                None => Some(f().await),
            };
            let (outcome, hint) = match &result {
                Some(r) => (classifier.classify(r), None),
                None => (Outcome::Failure, None),
            };
            if outcome != Outcome::Failure {
                if outcome == Outcome::Success {
                    if let Some(budget) = &self.shared.budget {
                        budget.deposit();
                    }
                }
                return finish(result, false);
            }
            let hint = hint.or_else(|| result.as_ref().and_then(|r| classifier.retry_after(r)));
            let st = state.get_or_insert_with(|| RetryState::new(Arc::clone(&self.shared)));
            match st.decide(attempt, hint, deadline) {
                Decision::Stop => return finish(result, false),
                Decision::Refused => return finish(result, true),
                Decision::Retry(delay, retry_after) => {
                    if st.shared.on_retry.is_some() || cfg!(feature = "tracing") {
                        let error: Option<BoxError> = match result {
                            Some(Err(e)) => Some(e.into()),
                            Some(Ok(_)) => None,
                            None => Some(Box::new(tower::timeout::error::Elapsed::new())),
                        };
                        st.notify(&RetryEvent {
                            attempt,
                            delay,
                            retry_after,
                            error: error.as_deref().map(|e| e as &(dyn Error + 'static)),
                        });
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// The bare API's final result: `None` is a timed-out attempt.
fn finish<T, E>(result: Option<Result<T, E>>, refused: bool) -> Result<T, RetryError<E>> {
    match result {
        Some(Ok(t)) => Ok(t),
        Some(Err(e)) if refused => Err(RetryError::BudgetExhausted(e)),
        Some(Err(e)) => Err(RetryError::Inner(e)),
        None => Err(RetryError::Timeout),
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.shared;
        f.debug_struct("Retry")
            .field("max_retries", &s.max_retries)
            .field("backoff", &s.backoff)
            .field("budget", &s.budget)
            .field("deadline", &s.deadline)
            .field("attempt_timeout", &s.attempt_timeout)
            .finish_non_exhaustive()
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
/// | [`budget`](Self::budget) / [`new_budget`](Self::new_budget) | on: 20 % of recent successes + 10/s (see [`RetryBudget`]) |
/// | [`deadline`](Self::deadline) | none |
/// | [`attempt_timeout`](Self::attempt_timeout) | none |
/// | [`on_retry`](Self::on_retry) | none |
/// | [`seed`](Self::seed) | from the OS |
/// | [`clock`](Self::clock) | tokio's clock |
#[must_use]
pub struct Builder {
    max_retries: u32,
    backoff: BackoffBuilder,
    budget: BudgetSetting,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
    on_retry: Option<Hook>,
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
            on_retry: None,
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

    /// An overall deadline per call, from its start: a retry that would start at or past it
    /// is not made, and the last result is returned. An attempt in flight is not cut short:
    /// put a `Timeout` outside the retry layer for that. Reads the clock at every call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// A timeout for each attempt; an attempt that runs past it is retryable, and if it is
    /// the last, the call fails with `tower::timeout::error::Elapsed`. Arms a timer per
    /// attempt.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Called before every retry sleeps, for logging or metrics. Runs on the calling task:
    /// keep it short.
    pub fn on_retry(mut self, f: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(f));
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
        let shared = Arc::new(Shared {
            max_retries: self.max_retries,
            backoff,
            budget,
            deadline: self.deadline,
            attempt_timeout: self.attempt_timeout,
            on_retry: self.on_retry,
            clock: self.clock.unwrap_or_default(),
            seed,
            rngs: AtomicU64::new(0),
        });
        Retry { shared }
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
