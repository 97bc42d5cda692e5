//! The throttle's builder, its defaults and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::ledger::AdaptiveThrottle;
use super::observe::Listener;
use crate::clock::Clock;
use crate::error::ConfigError;

/// The shortest accepted `window`: ten buckets of 100 µs.
pub const MIN_WINDOW: Duration = Duration::from_millis(1);

/// The validated settings of a throttle.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) k: f64,
    pub(crate) window: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) clock: Option<Clock>,
    pub(crate) listeners: Vec<Arc<dyn Listener>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("k", &self.k)
            .field("window", &self.window)
            .field("seed", &self.seed)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Builds an [`AdaptiveThrottle`]. Every setting has a default; `build()` validates them all.
///
/// | setting | default |
/// |---|---|
/// | [`k`](Self::k) | 2.0: the backend sees about twice the requests it accepts (the SRE book's value) |
/// | [`window`](Self::window) | 2 minutes (the SRE book's), kept in 10 buckets of 12 s |
/// | [`seed`](Self::seed) | none: each thread draws from its own generator, seeded per process |
/// | [`clock`](Self::clock) | tokio's ([`Clock::tokio`]) |
/// | [`name`](Self::name) | none |
/// | [`listener`](Self::listener) | none |
///
/// ```
/// use seawall::throttle::AdaptiveThrottle;
/// use seawall::ConfigError;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let throttle = AdaptiveThrottle::builder()
///     .k(1.5)
///     .window(Duration::from_secs(60))
///     .build()
///     .expect("valid configuration");
/// assert_eq!(throttle.k(), 1.5);
///
/// let err = AdaptiveThrottle::builder().k(0.5).build().unwrap_err();
/// assert_eq!(err.field(), "k");
/// # }
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
                k: 2.0,
                window: Duration::from_secs(120),
                seed: None,
                clock: None,
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

    /// The multiplier `K` (default 2.0): calls start being shed once the window's requests
    /// exceed `k` times its accepts. Lower is more aggressive (1.0 sheds as soon as any
    /// request fails); higher lets more requests through to a struggling backend (the SRE
    /// book suggests 2, and 1.1 for backends where wasted requests cost a lot). Finite and at
    /// least 1 (`build()` refuses anything else, naming `k`).
    pub fn k(mut self, k: f64) -> Self {
        self.config.k = k;
        self
    }

    /// How far back requests and accepts count (default 2 minutes). Kept in 10 buckets of a
    /// tenth each: an outcome is forgotten between 0.9 × and 1 × `window` after it was
    /// counted. At least [`MIN_WINDOW`].
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// Draws from one sequence seeded with `seed`, shared by every thread: with a
    /// [`ManualClock`](crate::clock::ManualClock) and calls made in a fixed order, every
    /// decision is reproducible (tests, simulations). Costs a shared counter per draw (draws
    /// are made only while calls are shed). Without a seed, each thread draws from a
    /// generator of its own.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// The time source (default: tokio's clock, which follows `tokio::time::pause`).
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.config.clock = Some(clock.into());
        self
    }

    /// Adds a [`Listener`]: it receives every local rejection and every start and end of
    /// shedding (see [`Event`](super::Event)), in the order listeners were added. Without
    /// any, a call pays nothing for observation.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.config.listeners.push(Arc::new(listener));
        self
    }

    /// Validates the settings and builds the throttle.
    pub fn build(self) -> Result<AdaptiveThrottle, ConfigError> {
        let c = &self.config;
        ConfigError::check_at_least("k", c.k, 1.0)?;
        if c.window.is_zero() {
            return Err(ConfigError::Zero { field: "window" });
        }
        if c.window < MIN_WINDOW {
            return Err(ConfigError::TooSmall {
                field: "window",
                value: c.window.as_secs_f64(),
                min: MIN_WINDOW.as_secs_f64(),
            });
        }
        Ok(AdaptiveThrottle::from_config(self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_sre_books() {
        let t = Builder::new()
            .clock(crate::clock::ManualClock::new())
            .build()
            .unwrap();
        assert_eq!(t.k(), 2.0);
        assert_eq!(t.window(), Duration::from_secs(120));
        assert_eq!(t.name(), None);
    }

    #[test]
    fn invalid_k_and_window_are_refused_naming_the_field() {
        let b = || Builder::new().clock(crate::clock::ManualClock::new());
        for k in [0.0, 0.999, -1.0] {
            assert!(matches!(
                b().k(k).build().unwrap_err(),
                ConfigError::TooSmall { field: "k", .. }
            ));
        }
        for k in [f64::NAN, f64::INFINITY] {
            assert_eq!(
                b().k(k).build().unwrap_err(),
                ConfigError::NotFinite { field: "k" }
            );
        }
        assert!(b().k(1.0).build().is_ok());
        assert_eq!(
            b().window(Duration::ZERO).build().unwrap_err(),
            ConfigError::Zero { field: "window" }
        );
        assert!(matches!(
            b().window(Duration::from_micros(999)).build().unwrap_err(),
            ConfigError::TooSmall {
                field: "window",
                ..
            }
        ));
        assert!(b().window(MIN_WINDOW).build().is_ok());
        assert!(b().window(Duration::MAX).build().is_ok());
    }
}
