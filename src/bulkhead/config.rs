//! The bulkhead's builder, its defaults and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::observe::Listener;
use super::slots::Bulkhead;
use crate::error::ConfigError;

/// Largest accepted `max_concurrent`: the most permits a tokio semaphore holds
/// (`usize::MAX >> 3`).
pub const MAX_CONCURRENT: usize = Semaphore::MAX_PERMITS;

/// Shortest non-zero `max_wait`: tokio's timer counts whole milliseconds, so a shorter wait
/// would last a millisecond anyway, longer than asked.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// The validated settings of a bulkhead.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) max_concurrent: usize,
    pub(crate) max_wait: Duration,
    pub(crate) listeners: Vec<Arc<dyn Listener>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_wait", &self.max_wait)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Builds a [`Bulkhead`]. Every setting has a default; `build()` validates them all.
///
/// | setting | default |
/// |---|---|
/// | [`max_concurrent`](Self::max_concurrent) | 25 calls (resilience4j's `maxConcurrentCalls`) |
/// | [`max_wait`](Self::max_wait) | zero: a call that finds every slot busy is refused at once (resilience4j's `maxWaitDuration` of 0 ms) |
/// | [`name`](Self::name) | none |
/// | [`listener`](Self::listener) | none |
///
/// ```
/// use seawall::bulkhead::Bulkhead;
/// use seawall::ConfigError;
/// use std::time::Duration;
///
/// let bulkhead = Bulkhead::builder()
///     .max_concurrent(10)
///     .max_wait(Duration::from_millis(50))
///     .build()
///     .expect("valid configuration");
/// assert_eq!(bulkhead.max_concurrent(), 10);
///
/// let err = Bulkhead::builder().max_concurrent(0).build().unwrap_err();
/// assert_eq!(err, ConfigError::Zero { field: "max_concurrent" });
/// ```
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
                max_concurrent: 25,
                max_wait: Duration::ZERO,
                listeners: Vec::new(),
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

    /// How many calls may run at once (default 25). Within `1..=`[`MAX_CONCURRENT`].
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.config.max_concurrent = n;
        self
    }

    /// How long a call that finds every slot busy waits for one before it is refused with
    /// [`BulkheadFull`](super::BulkheadFull) (default zero: refused at once). Zero, or at
    /// least 1 ms (tokio's timer counts whole milliseconds; `build()` refuses a shorter
    /// non-zero wait with [`ConfigError::TooSmall`], in seconds, rather than wait longer than
    /// asked). Waiting calls are admitted in the order they started to wait (the first poll
    /// of their future).
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.config.max_wait = d;
        self
    }

    /// Adds a [`Listener`]: it receives every admission and every rejection (see
    /// [`Event`](super::Event)), in the order listeners were added. Without any, a call pays
    /// nothing for observation.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.config.listeners.push(Arc::new(listener));
        self
    }

    /// Validates the settings and builds the bulkhead.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        let c = &self.config;
        if c.max_concurrent == 0 {
            return Err(ConfigError::Zero {
                field: "max_concurrent",
            });
        }
        if c.max_concurrent > MAX_CONCURRENT {
            // tokio's semaphore would panic on more permits than it can count.
            return Err(ConfigError::OutOfRange {
                field: "max_concurrent",
                // Precision does not matter here: the value is only reported.
                value: c.max_concurrent as f64,
                min: 1.0,
                max: MAX_CONCURRENT as f64,
            });
        }
        if !c.max_wait.is_zero() && c.max_wait < MIN_WAIT {
            return Err(ConfigError::TooSmall {
                field: "max_wait",
                value: c.max_wait.as_secs_f64(),
                min: MIN_WAIT.as_secs_f64(),
            });
        }
        Ok(Bulkhead::from_config(self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_twenty_five_slots_and_no_wait() {
        let b = Builder::new().build().unwrap();
        assert_eq!(b.max_concurrent(), 25);
        assert_eq!(b.max_wait(), Duration::ZERO);
        assert_eq!(b.name(), None);
    }

    #[test]
    fn zero_and_oversized_concurrency_are_refused_naming_the_field() {
        let e = Builder::new().max_concurrent(0).build().unwrap_err();
        assert_eq!(
            e,
            ConfigError::Zero {
                field: "max_concurrent"
            }
        );
        let e = Builder::new()
            .max_concurrent(MAX_CONCURRENT + 1)
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::OutOfRange {
                field: "max_concurrent",
                ..
            }
        ));
        assert!(Builder::new()
            .max_concurrent(MAX_CONCURRENT)
            .build()
            .is_ok());
        assert!(Builder::new().max_concurrent(1).build().is_ok());
    }

    #[test]
    fn sub_millisecond_waits_are_refused_not_stretched() {
        for wait in [Duration::from_nanos(1), Duration::from_micros(999)] {
            let e = Builder::new().max_wait(wait).build().unwrap_err();
            assert_eq!(
                e,
                ConfigError::TooSmall {
                    field: "max_wait",
                    value: wait.as_secs_f64(),
                    min: 0.001
                }
            );
        }
        for wait in [Duration::ZERO, Duration::from_millis(1), Duration::MAX] {
            assert!(Builder::new().max_wait(wait).build().is_ok());
        }
    }
}
