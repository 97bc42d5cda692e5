//! The limiter's core: governor's GCRA over seawall's clock, and the one decision every path
//! (the bare API, the layer, keyed or not) makes: admit, wait, or refuse.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota};

use super::config::Builder;
use super::error::{CallError, RateLimited};
use super::layer::RateLimitLayer;
use super::observe::{Event, Listeners};
use crate::clock::{duration_to_nanos, Clock};

// ===== the clock bridge =====

/// seawall's [`Clock`] as a governor clock: an instant is nanoseconds since the clock's epoch.
/// So governor follows paused tokio time, or a [`ManualClock`](crate::clock::ManualClock),
/// like every other seawall pattern, and tests are deterministic.
#[derive(Clone, Debug)]
pub(crate) struct GovernorClock(pub(crate) Clock);

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        Nanos::new(self.0.now_nanos())
    }
}

/// The time until the refused cell could conform, measured from now.
pub(crate) fn wait_of(not_until: &NotUntil<Nanos>, clock: &GovernorClock) -> Duration {
    not_until.wait_time_from(clock.now())
}

// ===== the decision =====

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A slot was taken: run the call.
    Admit,
    /// No slot now; the next frees in `wait`, before `deadline` (clock nanoseconds): sleep,
    /// then check again.
    Wait { wait: Duration, deadline: u64 },
    /// No slot within the wait allowed.
    Refuse(RateLimited),
}

/// The settings every path shares, besides the quota.
pub(crate) struct Policy {
    pub(crate) clock: Clock,
    pub(crate) max_wait: Duration,
    pub(crate) listeners: Listeners,
    pub(crate) name: Option<Arc<str>>,
}

impl Policy {
    /// The first decision on a call: a refused check (`Err(wait)`) waits if the slot frees
    /// within `max_wait`.
    #[inline]
    pub(crate) fn first(&self, check: Result<(), Duration>) -> Decision {
        match check {
            Ok(()) => Decision::Admit,
            Err(wait) => {
                let deadline = self
                    .clock
                    .now_nanos()
                    .saturating_add(duration_to_nanos(self.max_wait));
                self.after_wait(Err(wait), deadline, true)
            }
        }
    }

    /// A decision on a call that may wait until `deadline` (clock nanoseconds).
    pub(crate) fn after_wait(
        &self,
        check: Result<(), Duration>,
        deadline: u64,
        first: bool,
    ) -> Decision {
        let wait = match check {
            Ok(()) => return Decision::Admit,
            Err(wait) => wait,
        };
        let decision = decide(self.clock.now_nanos(), wait, deadline);
        match decision {
            Decision::Refuse(limited) => self.emit(Event::RateLimited(limited)),
            Decision::Wait { wait, .. } if first => self.emit(Event::Delayed(wait)),
            _ => {}
        }
        decision
    }

    /// A check that never waits (the bare `check`).
    #[inline]
    pub(crate) fn now_or_never(&self, check: Result<(), Duration>) -> Result<(), RateLimited> {
        check.map_err(|wait| {
            let limited = RateLimited::new(wait);
            self.emit(Event::RateLimited(limited));
            limited
        })
    }

    /// Checks with `check` until a slot is taken or the wait is over, sleeping on tokio's
    /// timer in between: the bare API's `acquire`, making the layer's decisions.
    pub(crate) async fn acquire(
        &self,
        check: impl Fn() -> Result<(), Duration>,
    ) -> Result<(), RateLimited> {
        let mut decision = self.first(check());
        loop {
            match decision {
                Decision::Admit => return Ok(()),
                Decision::Refuse(limited) => return Err(limited),
                Decision::Wait { wait, deadline } => {
                    // No tokio timer to wait on: refused, as the layer refuses.
                    let Some(sleep) = crate::clock::sleep_until(tokio::time::Instant::now() + wait)
                    else {
                        return Err(RateLimited::new(wait));
                    };
                    sleep.await;
                    decision = self.after_wait(check(), deadline, false);
                }
            }
        }
    }

    /// Runs `f` once a slot is taken (the bare API's `call`).
    pub(crate) async fn call<F, Fut, T, E>(
        &self,
        check: impl Fn() -> Result<(), Duration>,
        f: F,
    ) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.acquire(check).await.map_err(CallError::rate_limited)?;
        f().await.map_err(CallError::inner)
    }
}

/// The pure rule: a call refused now, whose slot frees in `wait`, waits for it if it frees by
/// `deadline`; otherwise it is refused, told to come back in `wait`.
pub(crate) fn decide(now: u64, wait: Duration, deadline: u64) -> Decision {
    if now.saturating_add(duration_to_nanos(wait)) <= deadline {
        Decision::Wait { wait, deadline }
    } else {
        Decision::Refuse(RateLimited::new(wait))
    }
}

// ===== the limiter =====

type Direct = governor::RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Nanos>>;

pub(crate) struct Limit {
    governor: Direct,
    quota: Quota,
    pub(crate) policy: Policy,
}

/// A rate limiter (GCRA): `rate` calls per `per`, in bursts of up to `burst`, refusing calls
/// over the limit with [`RateLimited`], at once or after waiting up to `max_wait`.
///
/// One limiter is one limit. Cloning is cheap (one reference count) and every clone, every
/// [`RateLimitLayer`] made from it and every service those build, and all their clones,
/// share that one limit. See the [module docs](super) for an example.
#[derive(Clone)]
pub struct RateLimiter {
    limit: Arc<Limit>,
}

impl RateLimiter {
    /// A builder, with the defaults in its table.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn new(quota: Quota, policy: Policy) -> Self {
        let governor =
            governor::RateLimiter::direct_with_clock(quota, GovernorClock(policy.clock.clone()));
        RateLimiter {
            limit: Arc::new(Limit {
                governor,
                quota,
                policy,
            }),
        }
    }

    /// Takes a slot if one is free now; never waits, whatever `max_wait` says.
    #[inline]
    pub fn check(&self) -> Result<(), RateLimited> {
        self.limit.policy.now_or_never(self.limit.check_slot())
    }

    /// Takes a slot, waiting up to `max_wait` for one (on tokio's timer): the decision the
    /// layer makes.
    pub async fn acquire(&self) -> Result<(), RateLimited> {
        self.limit.policy.acquire(|| self.limit.check_slot()).await
    }

    /// Runs `f` once a slot is taken (waiting up to `max_wait`); a refused call never runs
    /// `f`. The same decisions as the layer.
    ///
    /// ```
    /// use seawall::rate_limit::{CallError, RateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let limiter = RateLimiter::builder().rate(1).build().expect("valid configuration");
    /// let first: Result<u32, CallError<&str>> = limiter.call(|| async { Ok(7) }).await;
    /// assert_eq!(first, Ok(7));
    /// let second: Result<u32, CallError<&str>> = limiter.call(|| async { Ok(8) }).await;
    /// assert!(second.unwrap_err().is_rate_limited());
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.limit.policy.call(|| self.limit.check_slot(), f).await
    }

    /// A layer that puts this limiter in front of a service.
    pub fn layer(&self) -> RateLimitLayer {
        RateLimitLayer::new(self.clone())
    }

    /// Calls admitted at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.limit.quota.burst_size().get()
    }

    /// Time between two slots (`per / rate`).
    pub fn interval(&self) -> Duration {
        self.limit.quota.replenish_interval()
    }

    /// How long a call may wait for a slot.
    pub fn max_wait(&self) -> Duration {
        self.limit.policy.max_wait
    }

    /// The limiter's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.limit.policy.name.as_deref()
    }

    /// The first decision on a call (the layer's `call`).
    #[inline]
    pub(crate) fn decide(&self) -> Decision {
        self.limit.policy.first(self.limit.check_slot())
    }

    /// The decision after a wait.
    pub(crate) fn decide_after_wait(&self, deadline: u64) -> Decision {
        self.limit
            .policy
            .after_wait(self.limit.check_slot(), deadline, false)
    }
}

impl Limit {
    /// governor's check: one clock read and one compare-exchange on the shared state.
    #[inline]
    fn check_slot(&self) -> Result<(), Duration> {
        self.governor
            .check()
            .map_err(|not_until| wait_of(&not_until, self.governor.clock()))
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name())
            .field("interval", &self.interval())
            .field("burst", &self.burst())
            .field("max_wait", &self.max_wait())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_wait_that_ends_by_the_deadline_waits_else_is_refused() {
        let ms = Duration::from_millis;
        assert_eq!(
            decide(0, ms(10), 10 * MS),
            Decision::Wait {
                wait: ms(10),
                deadline: 10 * MS
            }
        );
        assert_eq!(
            decide(MS, ms(10), 10 * MS),
            Decision::Refuse(RateLimited::new(ms(10)))
        );
        // No wait allowed: refused at once, told how long.
        assert_eq!(
            decide(0, ms(3), 0),
            Decision::Refuse(RateLimited::new(ms(3)))
        );
    }

    #[test]
    fn admits_the_burst_then_one_per_interval_on_a_manual_clock() {
        let manual = ManualClock::new();
        let limiter = RateLimiter::builder()
            .rate(10)
            .burst(3)
            .clock(manual.clone())
            .build()
            .unwrap();
        for _ in 0..3 {
            assert!(limiter.check().is_ok());
        }
        let refused = limiter.check().unwrap_err();
        assert_eq!(refused.retry_after(), Duration::from_millis(100));
        manual.advance(Duration::from_millis(60));
        assert_eq!(
            limiter.check().unwrap_err().retry_after(),
            Duration::from_millis(40)
        );
        manual.advance(Duration::from_millis(40));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }
}
