//! Backoff: how long to wait before each retry, and how the breaker's open period grows.
//! Pure functions of the attempt number and an rng; no tower, no clock.

use std::time::Duration;

use rand::Rng;

use crate::error::ConfigError;

/// How the un-jittered delay grows with the attempt number `n` (1 for the first retry).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// `base` every time.
    Constant,
    /// `base * n`.
    Linear,
    /// `base * factor^(n-1)`.
    Exponential {
        /// The multiplier between two consecutive delays (at least 1).
        factor: f64,
    },
}

/// How the computed delay is randomised, so that clients failing together do not retry in
/// lockstep.
///
/// With `d` the computed delay (capped by `max_delay`):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]`: spreads clients best in AWS's published comparison (the default).
    #[default]
    Full,
    /// Uniform in `[d/2, d]`: never retries much earlier than computed.
    Equal,
    /// Uniform in `[base, 3 * previous delay]`, capped by `max_delay`: each delay depends on the
    /// previous one rather than on the attempt number (AWS's "decorrelated jitter").
    Decorrelated,
}

/// A validated backoff schedule. Build one with [`Backoff::exponential`],
/// [`Backoff::linear`] or [`Backoff::constant`], then [`BackoffBuilder::build`].
///
/// Delays are a pure function of the attempt number, the previous delay (for decorrelated
/// jitter) and an rng, so a seeded rng gives a reproducible sequence:
///
/// ```
/// use rand::{rngs::SmallRng, SeedableRng};
/// use seawall::retry::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::exponential(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(30))
///     .jitter(Jitter::None)
///     .build()
///     .expect("valid backoff");
/// let delays: Vec<_> = backoff.delays(SmallRng::seed_from_u64(7)).take(3).collect();
/// assert_eq!(delays, [500, 1000, 2000].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    growth: Growth,
    base: Duration,
    max_delay: Duration,
    jitter: Jitter,
}

impl Default for Backoff {
    /// Exponential from 500 ms, factor 2, capped at 30 s, full jitter.
    fn default() -> Self {
        Backoff {
            growth: Growth::Exponential { factor: 2.0 },
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Full,
        }
    }
}

impl Backoff {
    /// Exponential backoff from `base`, factor 2 (change it with [`BackoffBuilder::factor`]).
    pub fn exponential(base: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Growth::Exponential { factor: 2.0 }, base)
    }

    /// Linear backoff: `base`, `2 * base`, `3 * base`...
    pub fn linear(base: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Growth::Linear, base)
    }

    /// The same delay every time.
    pub fn constant(delay: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Growth::Constant, delay)
    }

    /// The growth rule.
    pub const fn growth(&self) -> Growth {
        self.growth
    }

    /// The first delay, before jitter.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The cap of every delay, jittered or not.
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The un-jittered delay before retry `attempt` (1 for the first retry), capped by
    /// `max_delay`. Attempt 0 is treated as 1.
    pub fn computed(&self, attempt: u32) -> Duration {
        let n = attempt.max(1);
        let d = match self.growth {
            Growth::Constant => Some(self.base),
            Growth::Linear => self.base.checked_mul(n),
            Growth::Exponential { factor } => {
                Some(exponential(self.base, factor, n, self.max_delay))
            }
        };
        d.map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// The jittered delay before retry `attempt`. `previous` is the delay used before the
    /// previous retry (ignored except by [`Jitter::Decorrelated`]; pass `Duration::ZERO` before
    /// the first retry). Always within `[0, max_delay]`.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        previous: Duration,
        rng: &mut R,
    ) -> Duration {
        let d = self.computed(attempt);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => Duration::from_nanos(rng.random_range(0..=nanos(d))),
            Jitter::Equal => {
                let half = nanos(d) / 2;
                Duration::from_nanos(half + rng.random_range(0..=nanos(d) - half))
            }
            Jitter::Decorrelated => {
                // AWS's decorrelated jitter: sleep = random(base, previous * 3), starting from
                // previous = base, so even the first retry is spread over [base, 3 * base].
                let low = nanos(self.base);
                let previous = if previous.is_zero() {
                    low
                } else {
                    nanos(previous)
                };
                let high = previous.saturating_mul(3).max(low);
                Duration::from_nanos(rng.random_range(low..=high)).min(self.max_delay)
            }
        }
    }

    /// The infinite sequence of delays for retries 1, 2, 3... drawn from `rng`.
    pub fn delays<R: Rng>(&self, rng: R) -> Delays<R> {
        Delays {
            backoff: *self,
            rng,
            attempt: 0,
            previous: Duration::ZERO,
        }
    }
}

/// The delays of a [`Backoff`], as an iterator. Never ends; `take` what you need.
#[derive(Debug, Clone)]
pub struct Delays<R> {
    backoff: Backoff,
    rng: R,
    attempt: u32,
    previous: Duration,
}

impl<R: Rng> Iterator for Delays<R> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        let d = self
            .backoff
            .delay(self.attempt, self.previous, &mut self.rng);
        self.previous = d;
        Some(d)
    }
}

/// Builds a [`Backoff`]; `build()` validates it.
///
/// | setting | default |
/// |---|---|
/// | [`factor`](Self::factor) (exponential only) | 2.0 |
/// | [`max_delay`](Self::max_delay) | 30 s |
/// | [`jitter`](Self::jitter) | [`Jitter::Full`] |
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[must_use]
pub struct BackoffBuilder {
    backoff: Backoff,
}

impl BackoffBuilder {
    fn new(growth: Growth, base: Duration) -> Self {
        BackoffBuilder {
            backoff: Backoff {
                growth,
                base,
                ..Backoff::default()
            },
        }
    }

    /// The multiplier of exponential backoff (default 2). At least 1; ignored by the others.
    pub fn factor(mut self, factor: f64) -> Self {
        if let Growth::Exponential { factor: f } = &mut self.backoff.growth {
            *f = factor;
        }
        self
    }

    /// The cap of every delay (default 30 s). At least the base delay.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.backoff.max_delay = max_delay;
        self
    }

    /// The jitter (default [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// Validates the settings: a finite `factor` of at least 1, `max_delay >= base`.
    pub fn build(self) -> Result<Backoff, ConfigError> {
        let b = self.backoff;
        if let Growth::Exponential { factor } = b.growth {
            if factor == 0.0 {
                return Err(ConfigError::Zero { field: "factor" });
            }
            ConfigError::check_at_least("factor", factor, 1.0)?;
        }
        if b.max_delay < b.base {
            return Err(ConfigError::Conflict {
                field: "max_delay",
                reason: format!(
                    "{:?} is shorter than the base delay ({:?})",
                    b.max_delay, b.base
                ),
            });
        }
        Ok(b)
    }
}

/// `base * factor^(n-1)`, capped by `cap` (also past `f64`'s range): the growth shared by
/// exponential backoff and the circuit breaker's growing open period.
pub(crate) fn exponential(base: Duration, factor: f64, n: u32, cap: Duration) -> Duration {
    let exp = i32::try_from(n.max(1) - 1).unwrap_or(i32::MAX);
    let secs = base.as_secs_f64() * factor.powi(exp);
    if secs.is_finite() && secs < cap.as_secs_f64() {
        Duration::from_secs_f64(secs)
    } else {
        cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_default_doubles_from_half_a_second() {
        let b = Backoff::exponential(ms(500))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let d: Vec<_> = b.delays(SmallRng::seed_from_u64(0)).take(4).collect();
        assert_eq!(d, [ms(500), ms(1000), ms(2000), ms(4000)]);
    }

    #[test]
    fn linear_and_constant_grow_as_named() {
        let lin = Backoff::linear(ms(100))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        assert_eq!(lin.computed(3), ms(300));
        let c = Backoff::constant(ms(100))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        assert_eq!(c.computed(3), ms(100));
    }

    #[test]
    fn huge_attempts_saturate_at_the_cap() {
        let b = Backoff::exponential(ms(500))
            .max_delay(ms(8000))
            .build()
            .unwrap();
        assert_eq!(b.computed(u32::MAX), ms(8000));
        let lin = Backoff::linear(Duration::MAX)
            .max_delay(Duration::MAX)
            .build()
            .unwrap();
        assert_eq!(lin.computed(u32::MAX), Duration::MAX);
    }

    #[test]
    fn bad_backoff_settings_are_refused() {
        let e = Backoff::exponential(ms(1)).factor(0.0).build().unwrap_err();
        assert_eq!(e, ConfigError::Zero { field: "factor" });
        let e = Backoff::exponential(ms(1))
            .factor(f64::NAN)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "factor");
        let e = Backoff::exponential(ms(1)).factor(0.5).build().unwrap_err();
        assert!(matches!(
            e,
            ConfigError::TooSmall {
                field: "factor",
                ..
            }
        ));
        let e = Backoff::constant(ms(10))
            .max_delay(ms(5))
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Conflict {
                field: "max_delay",
                ..
            }
        ));
    }

    #[test]
    fn decorrelated_jitters_the_first_retry_and_stays_within_base_and_the_cap() {
        let b = Backoff::exponential(ms(100))
            .max_delay(ms(1000))
            .jitter(Jitter::Decorrelated)
            .build()
            .unwrap();
        let d: Vec<_> = b.delays(SmallRng::seed_from_u64(3)).take(50).collect();
        assert!(d[0] >= ms(100) && d[0] <= ms(300), "{:?}", d[0]);
        assert!(d.iter().all(|d| *d >= ms(100) && *d <= ms(1000)));
        // Clients failing together do not retry in lockstep, even the first time.
        let firsts: std::collections::HashSet<_> = (0..100)
            .filter_map(|seed| b.delays(SmallRng::seed_from_u64(seed)).next())
            .collect();
        assert!(firsts.len() > 50, "{} distinct first delays", firsts.len());
    }
}
