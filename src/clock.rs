//! One time source for every pattern.
//!
//! Every time-dependent piece of seawall reads time through a [`Clock`]. The default clock is
//! tokio's ([`tokio::time::Instant::now`]), so `tokio::time::pause` and `tokio::time::advance`
//! drive breakers, budgets and deadlines in tests without sleeping in real time. A
//! [`ManualClock`] can be injected instead, for the synchronous cores (a breaker used without a
//! runtime) or for tests that want to move time by hand.
//!
//! Time is handed out as integer nanoseconds since the clock's creation, so it fits in an
//! atomic; reading it costs one `Instant::now()` (several times a whole closed-breaker call), which
//! is why the cores read it only in the modes that need it.
//!
//! ```
//! use seawall::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let manual = ManualClock::new();
//! let clock = Clock::from(manual.clone());
//! assert_eq!(clock.now_nanos(), 0);
//! manual.advance(Duration::from_millis(1500));
//! assert_eq!(clock.now_nanos(), 1_500_000_000);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A time source: tokio's clock (the default) or a [`ManualClock`].
///
/// Cloning is cheap; clones read the same time.
#[derive(Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Tokio { epoch: tokio::time::Instant },
    Manual(ManualClock),
}

impl Clock {
    /// tokio's clock, starting now. Follows `tokio::time::pause`/`advance` in tests.
    pub fn tokio() -> Self {
        Clock {
            kind: Kind::Tokio {
                epoch: tokio::time::Instant::now(),
            },
        }
    }

    /// Whether this is a [`ManualClock`], which tokio's timer does not follow.
    #[cfg(feature = "rate-limit")]
    pub(crate) fn is_manual(&self) -> bool {
        matches!(self.kind, Kind::Manual(_))
    }

    /// Nanoseconds elapsed since this clock was created (saturating at `u64::MAX`).
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        match &self.kind {
            Kind::Tokio { epoch } => {
                duration_to_nanos(tokio::time::Instant::now().duration_since(*epoch))
            }
            Kind::Manual(m) => m.now_nanos(),
        }
    }

    /// Time elapsed since this clock was created.
    #[inline]
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::tokio()
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Clock {
            kind: Kind::Manual(manual),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Tokio { .. } => f.write_str("Clock::Tokio"),
            Kind::Manual(m) => write!(f, "Clock::Manual({:?})", m.elapsed()),
        }
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Nanoseconds since the clock's creation.
    pub fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }

    /// Time since the clock's creation.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

/// A `Duration` as nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A tokio timer, or `None` where there is none (reached only where a wait is needed: a
/// retry's first wait, an injected latency).
///
/// - No tokio runtime (another executor, or none): asked with `Handle::try_current`, no panic.
/// - A runtime built without `enable_time`: tokio 1.x has no public query for its time
///   driver (`Handle` and its `metrics()` do not tell; tokio-rs/tokio#8361 asks for one), and
///   `sleep_until` panics there, so that one panic is caught. The panic hook still runs (the
///   default hook prints the message), once per call that needs a wait on such a runtime; with
///   `panic = "abort"` the process aborts, as it would at any tokio timer there.
#[cold]
pub(crate) fn sleep_until(at: tokio::time::Instant) -> Option<tokio::time::Sleep> {
    tokio::runtime::Handle::try_current().ok()?;
    std::panic::catch_unwind(|| tokio::time::sleep_until(at)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        assert_eq!(clock.now_nanos(), 0);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn manual_clock_saturates() {
        let m = ManualClock::new();
        m.advance(Duration::MAX);
        m.advance(Duration::from_secs(1));
        assert_eq!(m.now_nanos(), u64::MAX);
    }
}
