//! The limiters' builders, their defaults and their validation.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use super::keyed::KeyedRateLimiter;
use super::limiter::{Policy, RateLimiter};
use super::observe::Listener;
use crate::clock::{duration_to_nanos, Clock};
use crate::error::ConfigError;

/// Longest accepted `max_wait` (one hour). A call held longer than that is sitting in a
/// queue, not being rate limited; a bounded queue (or a refusal and a client retry) is the
/// tool for that.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// Longest `per` or `idle_timeout` a limiter can count: `u64::MAX` nanoseconds (584 years).
const LONGEST_SPAN: Duration = Duration::from_nanos(u64::MAX);

/// Builds a [`RateLimiter`]: `rate` calls per `per`, bursts of up to `burst`. `build()`
/// validates every setting.
///
/// | setting | default |
/// |---|---|
/// | [`rate`](Self::rate) | none: must be set (0 is refused) |
/// | [`per`](Self::per) | 1 s |
/// | [`burst`](Self::burst) | `rate` |
/// | [`max_wait`](Self::max_wait) | 0: refuse at once |
/// | [`clock`](Self::clock) | tokio's clock |
/// | [`name`](Self::name) | none |
#[derive(Clone)]
#[must_use]
pub struct Builder {
    rate: u32,
    per: Duration,
    burst: Option<u32>,
    max_wait: Duration,
    listeners: Vec<Arc<dyn Listener>>,
    clock: Option<Clock>,
    name: Option<Arc<str>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            rate: 0,
            per: Duration::from_secs(1),
            burst: None,
            max_wait: Duration::ZERO,
            listeners: Vec::new(),
            clock: None,
            name: None,
        }
    }
}

impl Builder {
    /// Calls admitted per [`per`](Self::per), on average. One slot frees every `per / rate`
    /// (in whole nanoseconds, rounded down, so a rate of 3 per second frees a slot every
    /// 333,333,333 ns). Required; 0 is refused.
    pub fn rate(mut self, calls: u32) -> Self {
        self.rate = calls;
        self
    }

    /// The span `rate` is counted over. Default 1 s; zero is refused.
    pub fn per(mut self, per: Duration) -> Self {
        self.per = per;
        self
    }

    /// Calls admitted at once after a quiet spell. Default: `rate`. A burst of 200 at 100
    /// per second admits 200 calls at once, then one every 10 ms; the full burst is back after
    /// 2 s of quiet. Zero is refused.
    pub fn burst(mut self, calls: u32) -> Self {
        self.burst = Some(calls);
        self
    }

    /// How long a call may wait for a slot before it is refused. Default 0: a call that finds
    /// no free slot is refused at once. With a wait, a call whose slot frees within `max_wait`
    /// sleeps (on tokio's timer) until then and is checked again; it is refused if the slot is
    /// gone by then and the next one is past `max_wait`. At most [`LONGEST_WAIT`].
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Adds a listener for the limiter's [`Event`](super::Event)s.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// The clock slots are counted on (default: tokio's, which follows paused time). A
    /// [`ManualClock`](crate::clock::ManualClock) drives `check` deterministically (and is
    /// refused with a `max_wait`, whose sleep tokio's timer would never end); waiting
    /// (`max_wait`) sleeps on tokio's timer, so test it with paused tokio time instead.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = Some(clock.into());
        self
    }

    /// A name, carried by `tracing` events and the `Debug` output.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A keyed limiter with these settings: one limit per key.
    pub fn keyed<K>(self) -> KeyedBuilder<K> {
        KeyedBuilder {
            limit: self,
            max_keys: 10_000,
            idle_timeout: Duration::from_secs(60),
            key: PhantomData,
        }
    }

    /// Validates the settings and builds the limiter.
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        let (quota, policy) = self.validate()?;
        Ok(RateLimiter::new(quota, policy))
    }

    /// The governor quota and the rest of the settings, once valid.
    pub(crate) fn validate(self) -> Result<(Quota, Policy), ConfigError> {
        let rate = NonZeroU32::new(self.rate).ok_or(ConfigError::Zero { field: "rate" })?;
        if self.per.is_zero() {
            return Err(ConfigError::Zero { field: "per" });
        }
        if self.per > LONGEST_SPAN {
            return Err(out_of_range("per", self.per, LONGEST_SPAN));
        }
        let burst = match self.burst {
            Some(b) => NonZeroU32::new(b).ok_or(ConfigError::Zero { field: "burst" })?,
            None => rate,
        };
        let interval = duration_to_nanos(self.per) / u64::from(rate.get());
        if interval == 0 {
            return Err(ConfigError::Conflict {
                field: "rate",
                reason: format!(
                    "{} calls per {:?} is more than one per nanosecond; lower `rate` or raise `per`",
                    rate, self.per
                ),
            });
        }
        // governor counts the burst's tolerance as `interval * (burst - 1)` nanoseconds and
        // adds it, unchecked, to times since the limiter's clock started: keep a quarter of
        // `u64` (about 146 years) for those.
        if interval
            .checked_mul(u64::from(burst.get()))
            .is_none_or(|span| span > u64::MAX / 4)
        {
            return Err(ConfigError::Conflict {
                field: "burst",
                reason: format!(
                    "a burst of {burst} at one call per {:?} takes longer than 146 years to refill",
                    Duration::from_nanos(interval)
                ),
            });
        }
        if self.max_wait > LONGEST_WAIT {
            return Err(out_of_range("max_wait", self.max_wait, LONGEST_WAIT));
        }
        if !self.max_wait.is_zero() && self.clock.as_ref().is_some_and(Clock::is_manual) {
            // The limit would be measured on the manual clock while the wait sleeps on
            // tokio's timer: the deadline would never come.
            return Err(ConfigError::Conflict {
                field: "max_wait",
                reason: "a wait sleeps on tokio's timer, which a `ManualClock` does not move; \
                         use tokio's clock (and paused time in tests), or no wait"
                    .into(),
            });
        }
        let quota = Quota::with_period(Duration::from_nanos(interval))
            .ok_or(ConfigError::Zero { field: "per" })?
            .allow_burst(burst);
        let policy = Policy {
            clock: self.clock.unwrap_or_default(),
            max_wait: self.max_wait,
            listeners: self.listeners.into(),
            name: self.name,
        };
        Ok((quota, policy))
    }
}

fn out_of_range(field: &'static str, value: Duration, max: Duration) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: value.as_secs_f64(),
        min: 0.0,
        max: max.as_secs_f64(),
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("per", &self.per)
            .field("burst", &self.burst)
            .field("max_wait", &self.max_wait)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Builds a [`KeyedRateLimiter`]: one limit per key, every key with the same settings, at
/// most `max_keys` keys remembered. Made by [`KeyedRateLimiter::builder`] or
/// [`Builder::keyed`].
///
/// | setting | default |
/// |---|---|
/// | [`rate`](Self::rate), [`per`](Self::per), [`burst`](Self::burst), [`max_wait`](Self::max_wait), [`clock`](Self::clock) | as [`Builder`] |
/// | [`max_keys`](Self::max_keys) | 10,000 |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s |
#[must_use]
pub struct KeyedBuilder<K> {
    limit: Builder,
    max_keys: usize,
    idle_timeout: Duration,
    key: PhantomData<fn(K)>,
}

impl<K> Clone for KeyedBuilder<K> {
    fn clone(&self) -> Self {
        KeyedBuilder {
            limit: self.limit.clone(),
            max_keys: self.max_keys,
            idle_timeout: self.idle_timeout,
            key: PhantomData,
        }
    }
}

impl<K> Default for KeyedBuilder<K> {
    fn default() -> Self {
        Builder::default().keyed()
    }
}

impl<K> KeyedBuilder<K> {
    /// Calls admitted per `per` for each key; see [`Builder::rate`].
    pub fn rate(mut self, calls: u32) -> Self {
        self.limit = self.limit.rate(calls);
        self
    }

    /// The span `rate` is counted over; see [`Builder::per`].
    pub fn per(mut self, per: Duration) -> Self {
        self.limit = self.limit.per(per);
        self
    }

    /// Calls admitted at once for each key; see [`Builder::burst`].
    pub fn burst(mut self, calls: u32) -> Self {
        self.limit = self.limit.burst(calls);
        self
    }

    /// How long a call may wait for its key's slot; see [`Builder::max_wait`].
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.limit = self.limit.max_wait(max_wait);
        self
    }

    /// Adds a listener; see [`Builder::listener`].
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.limit = self.limit.listener(listener);
        self
    }

    /// The clock; see [`Builder::clock`].
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.limit = self.limit.clock(clock);
        self
    }

    /// A name; see [`Builder::name`].
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.limit = self.limit.name(name);
        self
    }

    /// Most keys remembered at once (default 10,000; zero is refused). Never exceeded: a new
    /// key that finds no room first drops the keys that are idle, then, if every key still
    /// owes time, forgets the ones that owe least (see [`KeyedRateLimiter`]).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How often idle keys (whose whole burst is back, so that forgetting them changes no
    /// decision) are swept out, lazily, by the next new key. Default 60 s; zero is refused.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Validates the settings and builds the limiter.
    pub fn build(self) -> Result<KeyedRateLimiter<K>, ConfigError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        let (quota, policy) = self.limit.validate()?;
        if self.max_keys == 0 {
            return Err(ConfigError::Zero { field: "max_keys" });
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::Zero {
                field: "idle_timeout",
            });
        }
        if self.idle_timeout > LONGEST_SPAN {
            return Err(out_of_range(
                "idle_timeout",
                self.idle_timeout,
                LONGEST_SPAN,
            ));
        }
        Ok(KeyedRateLimiter::new(
            quota,
            policy,
            self.max_keys,
            duration_to_nanos(self.idle_timeout),
        ))
    }
}

impl<K> fmt::Debug for KeyedBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("limit", &self.limit)
            .field("max_keys", &self.max_keys)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(b: Builder) -> &'static str {
        b.build().map(|_| ()).unwrap_err().field()
    }

    #[test]
    fn every_bad_setting_is_refused_naming_its_field() {
        let ok = || Builder::default().rate(100);
        assert!(ok().build().is_ok());
        assert_eq!(field(Builder::default()), "rate");
        assert_eq!(field(ok().per(Duration::ZERO)), "per");
        assert_eq!(field(ok().per(Duration::MAX)), "per");
        assert_eq!(field(ok().burst(0)), "burst");
        assert_eq!(field(ok().per(Duration::from_nanos(99))), "rate");
        assert_eq!(
            field(Builder::default().rate(1).per(LONGEST_SPAN).burst(2)),
            "burst"
        );
        assert_eq!(
            field(ok().max_wait(LONGEST_WAIT + Duration::from_nanos(1))),
            "max_wait"
        );
        assert!(ok().max_wait(LONGEST_WAIT).build().is_ok());
    }

    #[test]
    fn burst_defaults_to_rate() {
        let (quota, _) = Builder::default().rate(100).validate().unwrap();
        assert_eq!(quota.burst_size().get(), 100);
        assert_eq!(quota.replenish_interval(), Duration::from_millis(10));
    }
}
