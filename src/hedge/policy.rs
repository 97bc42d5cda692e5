//! The hedge policy: its builder, defaults and validation, what a call asks of it (the delay,
//! the budget, the latencies), and the bare async API.

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use super::attempts::{Attempter, Attempts};
use super::latency::RotatingHistogram;
use super::observe::{Event, HedgeEvent, HedgeListener, Observers};
use crate::classify::{Classify, Outcome};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::retry::{ByClone, RetryBudget};

/// The most hedges per call [`Builder::max_hedges`] accepts (Polly's bound on hedged
/// attempts).
pub const MAX_HEDGES: u32 = 10;

/// The default hedge classifier: an `Ok` is an acceptable answer, an `Err` is not.
///
/// The hedge returns the first *acceptable* answer ([`Outcome::Success`] or
/// [`Outcome::Ignored`]); a [`Outcome::Failure`] waits for the attempts still in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultHedgeClassifier;

impl<T, E> Classify<T, E> for DefaultHedgeClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// How long a call waits before each hedge.
pub(crate) enum Delay {
    Fixed(Duration),
    Percentile(Percentile),
}

/// The percentile mode: the latencies seen, and what to read from them.
pub(crate) struct Percentile {
    percentile: f64,
    min_data_points: u64,
    period: Duration,
    /// A short lock per attempt that ends and per call that waits for a hedge; never held
    /// across an await, nothing inside it waits.
    histogram: Mutex<RotatingHistogram>,
    clock: Clock,
}

/// The validated policy, shared by every clone of a [`Hedge`], the services it builds and
/// their calls in flight (each call holds it through a lane, see `crate::sync::Lanes`).
pub(crate) struct Policy {
    pub(crate) delay: Delay,
    pub(crate) max_hedges: u32,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) deposits: bool,
    pub(crate) observers: Observers,
}

impl Policy {
    /// The time a call begins, in the percentile mode (which records latencies); 0 without
    /// reading a clock in the fixed mode.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match &self.delay {
            Delay::Fixed(_) => 0,
            Delay::Percentile(p) => p.clock.now_nanos(),
        }
    }

    /// The delay before each hedge of a call that has not answered at once: the fixed delay,
    /// or the latency percentile, if the last full period holds enough data points.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match &self.delay {
            Delay::Fixed(d) => Some(*d),
            Delay::Percentile(p) => {
                let now = p.clock.now_nanos();
                p.histogram
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .percentile(now, p.percentile, p.min_data_points)
            }
        }
    }

    /// Whether calls record their latencies (the percentile mode).
    #[inline]
    pub(crate) fn records(&self) -> bool {
        matches!(self.delay, Delay::Percentile(_))
    }

    /// Records, in the percentile mode, the latencies of attempts that began at `starts`
    /// and end (or are cancelled: a lower bound of their latency) now.
    pub(crate) fn record(&self, starts: impl IntoIterator<Item = u64>) {
        if let Delay::Percentile(p) = &self.delay {
            let now = p.clock.now_nanos();
            let mut h = p.histogram.lock().unwrap_or_else(PoisonError::into_inner);
            for start in starts {
                h.record(now, now.saturating_sub(start));
            }
        }
    }

    /// Asks the budget for hedge number `hedge`; says so to the listeners either way.
    pub(crate) fn withdraw(&self, hedge: u32, delay: Duration) -> bool {
        let granted = self.budget.as_ref().is_none_or(RetryBudget::withdraw);
        let event = HedgeEvent { hedge, delay };
        self.observers.emit(&if granted {
            Event::Sent(event)
        } else {
            Event::BudgetExhausted(event)
        });
        granted
    }

    /// A call's answer was a success: deposit it, if this policy is the budget's depositor.
    #[inline]
    pub(crate) fn deposit(&self) {
        if self.deposits {
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
        }
    }
}

// ===== Hedge =====

/// A hedging policy: how long to wait before each hedge, how many, what the budget allows.
///
/// Cloning is cheap (an `Arc`); clones, the layers they make and the services those build
/// share one policy, one latency histogram and one budget. Use it as a tower middleware with
/// [`layer`](Self::layer), or around any async call with [`call`](Self::call).
#[derive(Clone)]
pub struct Hedge {
    /// `crate::sync`'s `Arc`, as lanes hold it.
    pub(crate) policy: crate::sync::Arc<Policy>,
}

impl Default for Hedge {
    /// A policy with every default (see [`Builder`]).
    fn default() -> Self {
        Hedge {
            policy: crate::sync::Arc::new(Policy {
                delay: Delay::Fixed(DEFAULT_DELAY),
                max_hedges: 1,
                budget: RetryBudget::builder().build().ok(),
                deposits: true,
                observers: Observers::default(),
            }),
        }
    }
}

impl Hedge {
    /// A builder with the defaults: one hedge after a fixed 2 s, drawing from a budget of
    /// its own (50 % of recent successes + 10 a second, 3 per failure streak).
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A layer that hedges through this policy, with the default classifier, requests
    /// copied with `Clone`.
    pub fn layer(&self) -> super::HedgeLayer {
        super::HedgeLayer::new(self.clone())
    }

    /// The most hedges per call (so `max_hedges() + 1` attempts at most).
    pub fn max_hedges(&self) -> u32 {
        self.policy.max_hedges
    }

    /// The fixed delay before each hedge; `None` in the percentile mode.
    pub fn delay(&self) -> Option<Duration> {
        match &self.policy.delay {
            Delay::Fixed(d) => Some(*d),
            Delay::Percentile(_) => None,
        }
    }

    /// The latency percentile hedges wait for, in `(0, 100]`; `None` in the fixed mode.
    pub fn latency_percentile(&self) -> Option<f64> {
        match &self.policy.delay {
            Delay::Fixed(_) => None,
            Delay::Percentile(p) => Some(p.percentile),
        }
    }

    /// The policy's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.policy.observers.name.as_deref()
    }

    /// The budget hedges draw from, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.policy.budget.as_ref()
    }

    /// Whether this policy deposits its calls' successes into its budget (see
    /// [`Builder::deposit_successes`]).
    pub fn deposits_successes(&self) -> bool {
        self.policy.deposits && self.policy.budget.is_some()
    }

    /// Runs `f` once, and again (a hedge) each time the delay passes without an acceptable
    /// answer, up to `max_hedges` times; returns the first `Ok`, or the last `Err` once no
    /// attempt is left in flight. The attempts still running when one answers are dropped.
    ///
    /// The closure makes each attempt: calling it is the caller's word that the call may be
    /// made more than once (the layer asks [`CloneRequest::is_idempotent`](crate::retry::CloneRequest::is_idempotent)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use seawall::hedge::Hedge;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let hedge = Hedge::builder()
    ///     .delay(Duration::from_millis(10))
    ///     .build()
    ///     .expect("valid policy");
    /// let attempts = AtomicU32::new(0);
    /// let answer: Result<&str, ()> = hedge
    ///     .call(|| async {
    ///         match attempts.fetch_add(1, Ordering::Relaxed) {
    ///             0 => {
    ///                 tokio::time::sleep(Duration::from_secs(1)).await; // the slow primary
    ///                 Ok("primary")
    ///             }
    ///             _ => Ok("hedge"),
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(answer, Ok("hedge"));
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&DefaultHedgeClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier deciding which answers are acceptable
    /// ([`Outcome::Failure`] is not: the call waits for the other attempts in flight).
    ///
    /// The bare call runs on the same attempts as the layer, so both decide the same way,
    /// with the same events.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, mut f: F) -> Result<T, E>
    where
        C: Classify<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy: &Policy = &self.policy;
        let start = policy.now();
        let primary = f();
        Attempts::new(
            primary,
            Some(()),
            start,
            Closure(f),
            policy,
            ByRef(classifier),
            ByClone,
        )
        .await
    }
}

impl fmt::Debug for Hedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &*self.policy;
        let mut d = f.debug_struct("Hedge");
        d.field("name", &self.name());
        match &p.delay {
            Delay::Fixed(delay) => d.field("delay", delay),
            Delay::Percentile(l) => d
                .field("latency_percentile", &l.percentile)
                .field("min_data_points", &l.min_data_points)
                .field("period", &l.period),
        };
        d.field("max_hedges", &p.max_hedges)
            .field("budget", &p.budget)
            .field("deposits", &p.deposits)
            .finish_non_exhaustive()
    }
}

// ===== the bare call's adapters =====

/// A closure as the source of every attempt: always ready.
struct Closure<F>(F);

impl<F, Fut, T, E> Attempter<()> for Closure<F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Response = T;
    type Error = E;
    type Future = Fut;
    type Fresh = ();

    #[inline]
    fn fresh(&self) {}

    #[inline]
    fn poll_ready(_: &mut (), _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, (): (), (): ()) -> Fut {
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
}

// ===== Builder =====

const DEFAULT_DELAY: Duration = Duration::from_secs(2);
const DEFAULT_MIN_DATA_POINTS: u64 = 100;
const DEFAULT_PERIOD: Duration = Duration::from_secs(10);
/// The shortest `period` the builder accepts (as for the retry budget's).
const MIN_PERIOD: Duration = Duration::from_millis(1);

enum BudgetSetting {
    Own,
    Off,
    Given(RetryBudget),
}

/// Builds a [`Hedge`] policy. Every setting has a default; `build()` validates them all, and
/// refuses a setting that would be ignored (say, `min_data_points` in the fixed mode).
///
/// | setting | default |
/// |---|---|
/// | [`delay`](Self::delay) / [`latency_percentile`](Self::latency_percentile) | fixed, 2 s (Polly's default) |
/// | [`min_data_points`](Self::min_data_points) (percentile mode) | 100 in the last full period |
/// | [`period`](Self::period) (percentile mode) | 10 s |
/// | [`max_hedges`](Self::max_hedges) | 1 (so at most 2 attempts); at most [`MAX_HEDGES`] |
/// | [`budget`](Self::budget) / [`no_budget`](Self::no_budget) | a budget of its own: 50 % of recent successes + 10/s, 3 per failure streak (see [`RetryBudget`]) |
/// | [`deposit_successes`](Self::deposit_successes) | on with a budget of its own, off with a given one |
/// | [`listener`](Self::listener) | none |
/// | [`name`](Self::name) | none |
/// | [`clock`](Self::clock) (percentile mode) | tokio's clock |
#[must_use]
pub struct Builder {
    delay: Option<Duration>,
    percentile: Option<f64>,
    min_data_points: Option<u64>,
    period: Option<Duration>,
    max_hedges: u32,
    budget: BudgetSetting,
    deposits: Option<bool>,
    observers: Observers,
    clock: Option<Clock>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            delay: None,
            percentile: None,
            min_data_points: None,
            period: None,
            max_hedges: 1,
            budget: BudgetSetting::Own,
            deposits: None,
            observers: Observers::default(),
            clock: None,
        }
    }
}

impl Builder {
    /// Hedge after a fixed delay: a hedge is sent each time `delay` passes without an
    /// acceptable answer. Zero sends the hedges as soon as the primary does not answer at
    /// its first poll (Polly's parallel mode); the budget still bounds them. Conflicts with
    /// [`latency_percentile`](Self::latency_percentile).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Hedge after a latency percentile, in percent (`95.0` is p95, in `(0, 100]`), of the
    /// attempts of the last full [`period`](Self::period), as tower's `hedge` does; no hedge
    /// until that period holds [`min_data_points`](Self::min_data_points). Conflicts with
    /// [`delay`](Self::delay).
    pub fn latency_percentile(mut self, percentile: f64) -> Self {
        self.percentile = Some(percentile);
        self
    }

    /// The percentile mode: the fewest latencies the last full period must hold before a
    /// hedge is sent (default 100; at least 1).
    pub fn min_data_points(mut self, n: u64) -> Self {
        self.min_data_points = Some(n);
        self
    }

    /// The percentile mode: how long each half of the latency histogram covers (default
    /// 10 s; at least 1 ms). The percentile is read from the last full period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// The most hedges per call (default 1; 1 to [`MAX_HEDGES`]).
    pub fn max_hedges(mut self, n: u32) -> Self {
        self.max_hedges = n;
        self
    }

    /// Draw hedges from `budget`, shared with a retry policy in front of the same
    /// dependency (give both the same [`RetryBudget`]): hedges and retries together then add
    /// at most what the budget allows. By default the hedge does not deposit into a budget it
    /// is given: the retry that shares it deposits each call's success, and two deposits per
    /// call would double what retries and hedges may add. See
    /// [`deposit_successes`](Self::deposit_successes). A hedge counts in the budget's failure
    /// streak like a retry: while no call succeeds, hedges and retries together get at most
    /// [`failure_streak`](crate::retry::BudgetBuilder::failure_streak) draws.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = BudgetSetting::Given(budget);
        self
    }

    /// Hedge without a budget: every call that is slow enough is hedged, up to
    /// `max_hedges` times. Under an outage that makes every call slow, that multiplies the
    /// load by `max_hedges + 1`.
    pub fn no_budget(mut self) -> Self {
        self.budget = BudgetSetting::Off;
        self
    }

    /// Whether each call whose answer the classifier calls a success deposits into the
    /// budget (default: yes with the budget the hedge makes itself, no with one given to
    /// [`budget`](Self::budget)). Turn it on for a given budget no retry deposits into.
    pub fn deposit_successes(mut self, deposit: bool) -> Self {
        self.deposits = Some(deposit);
        self
    }

    /// Adds a listener for every [`Event`] (hedges sent, hedges the budget refused).
    pub fn listener(mut self, listener: impl HedgeListener) -> Self {
        self.observers.push(std::sync::Arc::new(listener));
        self
    }

    /// A name, carried by `tracing` events and the `Debug` output.
    pub fn name(mut self, name: impl Into<std::sync::Arc<str>>) -> Self {
        self.observers.name = Some(name.into());
        self
    }

    /// The clock the percentile mode times attempts by, and a budget of the hedge's own
    /// counts on (default tokio's, so paused time drives it in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings; the error names the first field at fault.
    pub fn build(self) -> Result<Hedge, ConfigError> {
        if self.max_hedges == 0 {
            return Err(ConfigError::Zero {
                field: "max_hedges",
            });
        }
        if self.max_hedges > MAX_HEDGES {
            return Err(ConfigError::OutOfRange {
                field: "max_hedges",
                value: f64::from(self.max_hedges),
                min: 1.0,
                max: f64::from(MAX_HEDGES),
            });
        }
        let delay = match (self.delay, self.percentile) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    field: "latency_percentile",
                    reason: "set either `delay` or `latency_percentile`, not both".into(),
                })
            }
            (delay, None) => {
                for (field, set) in [
                    ("min_data_points", self.min_data_points.is_some()),
                    ("period", self.period.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::Conflict {
                            field,
                            reason: "only the percentile mode (`latency_percentile`) uses it"
                                .into(),
                        });
                    }
                }
                Delay::Fixed(delay.unwrap_or(DEFAULT_DELAY))
            }
            (None, Some(percentile)) => {
                if percentile == 0.0 {
                    return Err(ConfigError::Zero {
                        field: "latency_percentile",
                    });
                }
                ConfigError::check_within("latency_percentile", percentile, 0.0, 100.0)?;
                let min_data_points = self.min_data_points.unwrap_or(DEFAULT_MIN_DATA_POINTS);
                if min_data_points == 0 {
                    return Err(ConfigError::Zero {
                        field: "min_data_points",
                    });
                }
                let period = self.period.unwrap_or(DEFAULT_PERIOD);
                if period.is_zero() {
                    return Err(ConfigError::Zero { field: "period" });
                }
                if period < MIN_PERIOD {
                    return Err(ConfigError::TooSmall {
                        field: "period",
                        value: period.as_secs_f64(),
                        min: MIN_PERIOD.as_secs_f64(),
                    });
                }
                let clock = self.clock.clone().unwrap_or_default();
                let histogram = Mutex::new(RotatingHistogram::new(period, clock.now_nanos()));
                Delay::Percentile(Percentile {
                    percentile,
                    min_data_points,
                    period,
                    histogram,
                    clock,
                })
            }
        };
        let (budget, deposits) = match self.budget {
            // A budget of its own counts time on the hedge's clock, as retry's does on its.
            BudgetSetting::Own => (
                Some(
                    RetryBudget::builder()
                        .clock(self.clock.unwrap_or_default())
                        .build()?,
                ),
                true,
            ),
            BudgetSetting::Given(b) => (Some(b), false),
            BudgetSetting::Off => {
                if self.deposits == Some(true) {
                    return Err(ConfigError::Conflict {
                        field: "deposit_successes",
                        reason: "there is no budget to deposit into (`no_budget`)".into(),
                    });
                }
                (None, false)
            }
        };
        Ok(Hedge {
            policy: crate::sync::Arc::new(Policy {
                delay,
                max_hedges: self.max_hedges,
                budget,
                deposits: self.deposits.unwrap_or(deposits),
                observers: self.observers,
            }),
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("delay", &self.delay)
            .field("latency_percentile", &self.percentile)
            .field("min_data_points", &self.min_data_points)
            .field("period", &self.period)
            .field("max_hedges", &self.max_hedges)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: Builder) -> ConfigError {
        b.build().unwrap_err()
    }

    #[test]
    fn nonsense_settings_are_refused_naming_the_field() {
        let h = Hedge::builder;
        assert_eq!(
            err(h().max_hedges(0)),
            ConfigError::Zero {
                field: "max_hedges"
            }
        );
        assert_eq!(err(h().max_hedges(11)).field(), "max_hedges");
        assert_eq!(
            err(h().latency_percentile(0.0)),
            ConfigError::Zero {
                field: "latency_percentile"
            }
        );
        for p in [-1.0, -0.0001, 100.0001, 1000.0] {
            assert!(matches!(
                err(h().latency_percentile(p)),
                ConfigError::OutOfRange {
                    field: "latency_percentile",
                    ..
                }
            ));
        }
        for p in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                err(h().latency_percentile(p)),
                ConfigError::NotFinite {
                    field: "latency_percentile"
                }
            );
        }
        assert_eq!(
            err(h().latency_percentile(95.0).min_data_points(0)),
            ConfigError::Zero {
                field: "min_data_points"
            }
        );
        assert_eq!(
            err(h().latency_percentile(95.0).period(Duration::ZERO)),
            ConfigError::Zero { field: "period" }
        );
        assert_eq!(
            err(h()
                .latency_percentile(95.0)
                .period(Duration::from_micros(999)))
            .field(),
            "period"
        );
        assert_eq!(
            err(h().delay(Duration::from_millis(5)).latency_percentile(95.0)).field(),
            "latency_percentile"
        );
        assert_eq!(err(h().min_data_points(10)).field(), "min_data_points");
        assert_eq!(
            err(h().delay(Duration::ZERO).period(Duration::from_secs(1))).field(),
            "period"
        );
        assert_eq!(
            err(h().no_budget().deposit_successes(true)).field(),
            "deposit_successes"
        );
    }

    #[test]
    fn sensible_edges_are_accepted() {
        let h = Hedge::builder;
        assert!(h().latency_percentile(100.0).build().is_ok());
        assert!(h()
            .latency_percentile(0.1)
            .min_data_points(1)
            .build()
            .is_ok());
        assert!(h().max_hedges(MAX_HEDGES).build().is_ok());
        assert!(h().delay(Duration::ZERO).build().is_ok());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let d = Hedge::builder().build().unwrap();
        assert_eq!(d.delay(), Some(Duration::from_secs(2)));
        assert_eq!(d.latency_percentile(), None);
        assert_eq!(d.max_hedges(), 1);
        assert!(d.budget().is_some() && d.deposits_successes());
        let dflt = Hedge::default();
        assert_eq!(format!("{dflt:?}"), format!("{d:?}"));
        let shared = RetryBudget::builder().build().unwrap();
        let given = Hedge::builder().budget(shared).build().unwrap();
        assert!(
            !given.deposits_successes(),
            "a given budget is the retry's to fill"
        );
        let p = Hedge::builder().latency_percentile(95.0).build().unwrap();
        assert_eq!((p.delay(), p.latency_percentile()), (None, Some(95.0)));
        assert!(format!("{p:?}").contains("min_data_points: 100"));
    }
}
