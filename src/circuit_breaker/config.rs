//! The breaker's builder, its defaults and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::CircuitBreaker;
use super::observe::{Listener, OnStateChange};
use super::transition::StateChange;
use super::window::SlidingWindow;
use super::word::{MAX_FAILURES, MAX_PROBES};
use crate::clock::Clock;
use crate::error::ConfigError;

/// Largest accepted `half_open_max_calls` (16,383: the probe counters are packed into 14 bits
/// of the state word each, so that the generation can have 32).
pub const MAX_HALF_OPEN_CALLS: u32 = MAX_PROBES;

/// Largest accepted `failure_threshold` below `u32::MAX` (536,870,911: the consecutive-failure
/// count has 29 bits of the state word). `u32::MAX` is accepted too, and means "never trip on
/// consecutive failures".
pub const MAX_FAILURE_THRESHOLD: u32 = MAX_FAILURES;

/// Shortest span of one time-window bucket: the window counts time in whole nanoseconds.
const MIN_BUCKET_NANOS: u64 = 1;

/// The validated settings of a breaker.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) failure_threshold: u32,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) minimum_calls: u32,
    /// Whether `minimum_calls` was set by the user (else it follows a small count window).
    pub(crate) minimum_calls_set: bool,
    pub(crate) window: SlidingWindow,
    pub(crate) wait_in_open: Duration,
    pub(crate) wait_in_open_multiplier: f64,
    pub(crate) max_wait_in_open: Duration,
    pub(crate) wait_in_open_jitter: f64,
    pub(crate) jitter_seed: Option<u64>,
    pub(crate) half_open_max_calls: u32,
    pub(crate) listeners: Vec<Arc<dyn Listener>>,
    pub(crate) clock: Option<Clock>,
}

impl Config {
    /// Whether a sliding window must be kept (a rate condition is configured).
    pub(crate) fn needs_window(&self) -> bool {
        self.failure_rate.is_some() || self.slow_call_rate.is_some()
    }

    /// The open period after `trips` consecutive trips (1 for the first).
    pub(crate) fn open_period(&self, trips: u32) -> Duration {
        if trips <= 1 || self.wait_in_open_multiplier <= 1.0 {
            return self.wait_in_open;
        }
        crate::backoff::exponential(
            self.wait_in_open,
            self.wait_in_open_multiplier,
            trips,
            self.max_wait_in_open,
        )
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("failure_threshold", &self.failure_threshold)
            .field("failure_rate", &self.failure_rate)
            .field("slow_call_rate", &self.slow_call_rate)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("minimum_calls", &self.minimum_calls)
            .field("window", &self.window)
            .field("wait_in_open", &self.wait_in_open)
            .field("wait_in_open_multiplier", &self.wait_in_open_multiplier)
            .field("max_wait_in_open", &self.max_wait_in_open)
            .field("wait_in_open_jitter", &self.wait_in_open_jitter)
            .field("half_open_max_calls", &self.half_open_max_calls)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Builds a [`CircuitBreaker`]. Every setting has a default; `build()` validates them all.
///
/// | setting | default |
/// |---|---|
/// | [`failure_threshold`](Self::failure_threshold) | 5 consecutive failures |
/// | [`failure_rate`](Self::failure_rate) | off |
/// | [`slow_call_rate`](Self::slow_call_rate) / [`slow_call_duration`](Self::slow_call_duration) | off |
/// | [`minimum_calls`](Self::minimum_calls) | 10 |
/// | [`sliding_window`](Self::sliding_window) | last 100 calls |
/// | [`wait_in_open`](Self::wait_in_open) | 30 s |
/// | [`wait_in_open_multiplier`](Self::wait_in_open_multiplier) | 1.0 (no growth) |
/// | [`max_wait_in_open`](Self::max_wait_in_open) | 5 min |
/// | [`wait_in_open_jitter`](Self::wait_in_open_jitter) | 0.0 (none) |
/// | [`half_open_max_calls`](Self::half_open_max_calls) | 3 |
/// | [`clock`](Self::clock) | tokio's clock |
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config {
                name: None,
                failure_threshold: 5,
                failure_rate: None,
                slow_call_rate: None,
                slow_call_duration: None,
                minimum_calls: 10,
                minimum_calls_set: false,
                window: SlidingWindow::default(),
                wait_in_open: Duration::from_secs(30),
                wait_in_open_multiplier: 1.0,
                max_wait_in_open: Duration::from_secs(300),
                wait_in_open_jitter: 0.0,
                jitter_seed: None,
                half_open_max_calls: 3,
                listeners: Vec::new(),
                clock: None,
            },
        }
    }
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A name, carried by tracing events and the `Debug` output.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Trip after this many consecutive failures (default 5). Within
    /// `1..=`[`MAX_FAILURE_THRESHOLD`], or `u32::MAX` to trip only on rates.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.config.failure_threshold = n;
        self
    }

    /// Trip when at least `percent` % of the calls in the sliding window failed, once the
    /// window holds [`minimum_calls`](Self::minimum_calls). Within `(0, 100]`. Off by default.
    pub fn failure_rate(mut self, percent: f64) -> Self {
        self.config.failure_rate = Some(percent);
        self
    }

    /// Trip when at least `percent` % of the calls in the sliding window were slow (took at
    /// least [`slow_call_duration`](Self::slow_call_duration)). Within `(0, 100]`. Off by
    /// default; needs `slow_call_duration`. Measuring a call reads the clock twice.
    pub fn slow_call_rate(mut self, percent: f64) -> Self {
        self.config.slow_call_rate = Some(percent);
        self
    }

    /// A call taking at least this long is slow. Must be non-zero. Slow calls are measured
    /// (two clock reads per call) only when a rate condition keeps a window to count them in.
    pub fn slow_call_duration(mut self, d: Duration) -> Self {
        self.config.slow_call_duration = Some(d);
        self
    }

    /// Rates are evaluated only once the window holds this many calls (default 10, or the
    /// count window's size if smaller), so one failure out of one call does not trip. At
    /// least 1, and at most a count window's size.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self.config.minimum_calls_set = true;
        self
    }

    /// The sliding window rates are computed over (default: the last 100 calls).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.window = window;
        self
    }

    /// Shorthand for a count window of the last `n` calls.
    pub fn count_window(self, n: u32) -> Self {
        self.sliding_window(SlidingWindow::Count(n))
    }

    /// Shorthand for a time window of the last `duration`, in 10 buckets.
    pub fn time_window(self, duration: Duration) -> Self {
        self.sliding_window(SlidingWindow::Time {
            duration,
            buckets: 10,
        })
    }

    /// How long the circuit stays open before letting probes through (default 30 s).
    pub fn wait_in_open(mut self, d: Duration) -> Self {
        self.config.wait_in_open = d;
        self
    }

    /// Growth of the open period on each consecutive re-trip (a failed probe): the n-th
    /// consecutive open lasts `wait_in_open * multiplier^(n-1)`, capped by
    /// [`max_wait_in_open`](Self::max_wait_in_open). At least 1.0 (default: 1.0, no growth).
    pub fn wait_in_open_multiplier(mut self, multiplier: f64) -> Self {
        self.config.wait_in_open_multiplier = multiplier;
        self
    }

    /// Cap of the growing open period (default 5 min). At least `wait_in_open`.
    pub fn max_wait_in_open(mut self, d: Duration) -> Self {
        self.config.max_wait_in_open = d;
        self
    }

    /// Shortens each open period by a random fraction of up to `fraction` (within `0..=0.9`;
    /// default 0): with 0.2, a 30 s wait lasts between 24 s and 30 s. Spreads the probes of
    /// many clients whose breakers tripped together, so they do not all probe at once.
    pub fn wait_in_open_jitter(mut self, fraction: f64) -> Self {
        self.config.wait_in_open_jitter = fraction;
        self
    }

    /// Seeds the jitter's random numbers, for reproducible tests (default: a per-breaker seed
    /// from std's random hasher keys).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.config.jitter_seed = Some(seed);
        self
    }

    /// Probes allowed in flight at once when half-open, and successes needed to close
    /// (default 3). Within `1..=`[`MAX_HALF_OPEN_CALLS`].
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.config.half_open_max_calls = n;
        self
    }

    /// Called on every state change, after it took effect, outside any lock, with the
    /// breaker it happened to (so the callback need not capture the breaker, which would keep
    /// it alive forever). Under concurrent transitions two callbacks may run at once; each
    /// [`StateChange`] carries its generation so they can be ordered. Sugar for a
    /// [`listener`](Self::listener) that only looks at state changes; each call adds one.
    pub fn on_state_change(
        self,
        f: impl Fn(&CircuitBreaker, &StateChange) + Send + Sync + 'static,
    ) -> Self {
        self.listener(OnStateChange(f))
    }

    /// Adds a [`Listener`]: it receives every state change, rejection and recorded outcome
    /// (see [`Event`](super::Event)). Listeners run in the order they were added, and each sees
    /// every event even if one before it panics (the first panic resumes after them all; see
    /// [`Listener`]). Without any, a closed call pays nothing for observation.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.config.listeners.push(Arc::new(listener));
        self
    }

    /// The clock to read time from (default: tokio's, created at `build()`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = Some(clock);
        self
    }

    pub(crate) fn into_config(self) -> Config {
        self.config
    }

    /// Validates the settings and builds the breaker.
    pub fn build(mut self) -> Result<CircuitBreaker, ConfigError> {
        if let (false, SlidingWindow::Count(n)) =
            (self.config.minimum_calls_set, self.config.window)
        {
            self.config.minimum_calls = self.config.minimum_calls.min(n.max(1));
        }
        let c = &self.config;
        if c.failure_threshold == 0 {
            return Err(ConfigError::Zero {
                field: "failure_threshold",
            });
        }
        if c.failure_threshold > MAX_FAILURE_THRESHOLD && c.failure_threshold != u32::MAX {
            // The count saturates at the maximum: a larger threshold would never be reached
            // without saying so.
            ConfigError::check_within(
                "failure_threshold",
                f64::from(c.failure_threshold),
                1.0,
                f64::from(MAX_FAILURE_THRESHOLD),
            )?;
        }
        check_rate("failure_rate", c.failure_rate)?;
        check_rate("slow_call_rate", c.slow_call_rate)?;
        if c.slow_call_duration == Some(Duration::ZERO) {
            return Err(ConfigError::Zero {
                field: "slow_call_duration",
            });
        }
        if c.slow_call_rate.is_some() && c.slow_call_duration.is_none() {
            return Err(ConfigError::Conflict {
                field: "slow_call_rate",
                reason: "needs `slow_call_duration` to tell which calls are slow".into(),
            });
        }
        if c.minimum_calls == 0 {
            return Err(ConfigError::Zero {
                field: "minimum_calls",
            });
        }
        match c.window {
            SlidingWindow::Count(0) => {
                return Err(ConfigError::Zero {
                    field: "sliding_window",
                })
            }
            SlidingWindow::Count(n) if c.minimum_calls > n => {
                return Err(ConfigError::Conflict {
                    field: "minimum_calls",
                    reason: format!(
                    "{} exceeds the count window of {n} calls, so rates would never be evaluated",
                    c.minimum_calls
                ),
                })
            }
            SlidingWindow::Count(n) if n > 1 << 24 => {
                return Err(ConfigError::OutOfRange {
                    field: "sliding_window",
                    value: f64::from(n),
                    min: 1.0,
                    max: f64::from(1u32 << 24),
                })
            }
            SlidingWindow::Time { duration, .. } if duration.is_zero() => {
                return Err(ConfigError::Zero {
                    field: "sliding_window",
                })
            }
            SlidingWindow::Time { buckets: 0, .. } => {
                return Err(ConfigError::Zero {
                    field: "sliding_window.buckets",
                })
            }
            SlidingWindow::Time { buckets, .. } if buckets > 4096 => {
                return Err(ConfigError::OutOfRange {
                    field: "sliding_window.buckets",
                    value: f64::from(buckets),
                    min: 1.0,
                    max: 4096.0,
                })
            }
            SlidingWindow::Time { duration, buckets }
                if duration.as_nanos() < u128::from(buckets) * u128::from(MIN_BUCKET_NANOS) =>
            {
                // The window counts time in whole nanoseconds: a bucket narrower than one
                // would hold no time at all (and bucket indices would outgrow 64 bits).
                return Err(ConfigError::Conflict {
                    field: "sliding_window",
                    reason: format!(
                        "a time window of {duration:?} cannot be cut into {buckets} buckets of \
                         at least 1ns each; use fewer buckets or a longer duration"
                    ),
                });
            }
            _ => {}
        }
        if c.wait_in_open.is_zero() {
            return Err(ConfigError::Zero {
                field: "wait_in_open",
            });
        }
        ConfigError::check_at_least("wait_in_open_multiplier", c.wait_in_open_multiplier, 1.0)?;
        if c.max_wait_in_open < c.wait_in_open {
            return Err(ConfigError::Conflict {
                field: "max_wait_in_open",
                reason: format!(
                    "{:?} is shorter than `wait_in_open` ({:?})",
                    c.max_wait_in_open, c.wait_in_open
                ),
            });
        }
        ConfigError::check_within("wait_in_open_jitter", c.wait_in_open_jitter, 0.0, 0.9)?;
        if c.half_open_max_calls == 0 {
            return Err(ConfigError::Zero {
                field: "half_open_max_calls",
            });
        }
        ConfigError::check_within(
            "half_open_max_calls",
            f64::from(c.half_open_max_calls),
            1.0,
            f64::from(MAX_HALF_OPEN_CALLS),
        )?;
        Ok(CircuitBreaker::from_config(self.config))
    }
}

fn check_rate(field: &'static str, rate: Option<f64>) -> Result<(), ConfigError> {
    match rate {
        None => Ok(()),
        Some(0.0) => Err(ConfigError::Zero { field }),
        Some(r) => ConfigError::check_within(field, r, 0.0, 100.0),
    }
}
