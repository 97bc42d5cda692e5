//! Fault injection (feature `chaos`): errors and latency injected at configured rates,
//! seeded for reproducible tests, switchable at run time, for tests and outage rehearsals.
//!
//! A [`Chaos`] decides, call by call, whether to inject a fault (the call fails without
//! reaching the inner service) and whether to add latency. Through the layer, latency delays
//! the answer: the inner service's `call` runs at once (what it does there, such as a
//! `Buffer`'s enqueue, is not delayed) and its future is polled once the latency is over, so
//! the caller sees a slow dependency; the bare [`Chaos::call`] waits before it starts the
//! call. Its
//! decisions come from a seeded sequence, so a test with one task sees the same faults on
//! every run; they are drawn lock-free from one counter shared by every clone. While
//! [`disabled`](Chaos::set_enabled), a call costs one atomic load and draws nothing.
//!
//! The fault is an [`InjectedFault`] error by default ([`ErrorKind::Inner`]: it stands for
//! the dependency's own failure, so breakers count it and retries retry it), or what the
//! layer is told: [`ChaosLayer::error_with`] for an error of your own, or
//! [`ChaosLayer::respond_with`] for a fixed response (an HTTP 503, say).
//!
//! Off unless built in: the feature is not on by default, and nothing is injected unless a
//! layer or a bare call goes through a `Chaos`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use seawall::chaos::Chaos;
//! use seawall::BoxError;
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! let chaos = Chaos::builder()
//!     .fault_rate(0.5)
//!     .latency(0.1, Duration::from_millis(200))
//!     .seed(7)
//!     .build()
//!     .expect("valid rates");
//! let svc = ServiceBuilder::new()
//!     .layer(chaos.layer())
//!     .service(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
//! let mut failed = 0;
//! for i in 0..1000 {
//!     failed += u32::from(svc.clone().oneshot(i).await.is_err());
//! }
//! assert!((400..600).contains(&failed), "{failed}"); // half, within a seeded tolerance
//!
//! chaos.set_enabled(false); // the rehearsal is over
//! assert_eq!(svc.oneshot(1).await.unwrap(), 1);
//! # }
//! ```
//!
//! [`ErrorKind::Inner`]: crate::ErrorKind::Inner

mod future;
mod layer;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{BoxError, ConfigError};

pub use future::ChaosFuture;
pub use layer::{ChaosLayer, ChaosService, Inject, InjectError, InjectErrorWith, RespondWith};

/// What a [`Chaos`] decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Fail the call without reaching the inner service.
    pub fault: bool,
    /// Wait this long first (zero: no latency).
    pub latency: Duration,
}

impl Decision {
    /// Nothing injected.
    pub const NONE: Decision = Decision {
        fault: false,
        latency: Duration::ZERO,
    };
}

/// A fault injector: rates, a seed, and a switch. Cheap to clone; clones share the switch and
/// the sequence of decisions.
#[derive(Clone)]
pub struct Chaos {
    state: Arc<State>,
}

struct State {
    enabled: AtomicBool,
    fault_rate: f64,
    latency_rate: f64,
    latency: Duration,
    seed: u64,
    draws: AtomicU64,
}

impl Chaos {
    /// A builder: no faults, no latency, enabled, seed 0.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Turns injection on or off, for every clone and every layer made from this `Chaos`.
    pub fn set_enabled(&self, enabled: bool) {
        // Relaxed: a switch, not a synchronisation point; calls already decided keep their
        // decision.
        self.state.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.state.enabled.load(Ordering::Relaxed)
    }

    /// The decision for the next call: the `n`-th call (from 0, counted across clones) draws
    /// two numbers from the seeded sequence, one for the fault and one for the latency.
    #[inline]
    pub fn decide(&self) -> Decision {
        let s = &*self.state;
        if !s.enabled.load(Ordering::Relaxed) {
            return Decision::NONE;
        }
        let n = s.draws.fetch_add(1, Ordering::Relaxed);
        let fault = unit(s.seed, 2 * n) < s.fault_rate;
        let latency = if unit(s.seed, 2 * n + 1) < s.latency_rate {
            s.latency
        } else {
            Duration::ZERO
        };
        Decision { fault, latency }
    }

    /// A layer injecting this `Chaos`'s faults as [`InjectedFault`] errors.
    pub fn layer(&self) -> ChaosLayer {
        ChaosLayer::new(self.clone())
    }

    /// Runs `f` under this `Chaos`, as the layer would: waits the injected latency, then
    /// fails with [`InjectedFault`] (without running `f`) or runs `f`. Latency needs a tokio
    /// timer: without one it is skipped.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, BoxError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        let decision = self.decide();
        if let Some(sleep) = future::delay(decision.latency) {
            sleep.await;
        }
        if decision.fault {
            return Err(Box::new(InjectedFault::new()));
        }
        f().await.map_err(Into::into)
    }
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.state;
        f.debug_struct("Chaos")
            .field("enabled", &self.is_enabled())
            .field("fault_rate", &s.fault_rate)
            .field("latency_rate", &s.latency_rate)
            .field("latency", &s.latency)
            .field("seed", &s.seed)
            .finish()
    }
}

/// A number in `[0, 1)` from the seeded sequence: splitmix64 of `seed + index`, top 53 bits.
fn unit(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // 53 bits fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let top = (z >> 11) as f64;
    top / (1u64 << 53) as f64
}

// ===== Builder =====

/// Builds a [`Chaos`]; `build()` validates the rates.
///
/// | setting | default |
/// |---|---|
/// | [`fault_rate`](Self::fault_rate) | 0: no faults |
/// | [`latency`](Self::latency) | rate 0: no latency |
/// | [`seed`](Self::seed) | 0 |
/// | [`enabled`](Self::enabled) | `true` |
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    fault_rate: f64,
    latency_rate: f64,
    latency: Duration,
    seed: u64,
    enabled: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            fault_rate: 0.0,
            latency_rate: 0.0,
            latency: Duration::ZERO,
            seed: 0,
            enabled: true,
        }
    }
}

impl Builder {
    /// The share of calls that fail without reaching the inner service, in `0.0..=1.0`.
    pub fn fault_rate(mut self, rate: f64) -> Self {
        self.fault_rate = rate;
        self
    }

    /// The share of calls (in `0.0..=1.0`) that wait `latency` first.
    pub fn latency(mut self, rate: f64, latency: Duration) -> Self {
        self.latency_rate = rate;
        self.latency = latency;
        self
    }

    /// The seed of the sequence of decisions: the same seed, the same decisions in the same
    /// call order.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether injection starts on (default `true`); see [`Chaos::set_enabled`].
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Validates the rates (each in `0.0..=1.0`, finite) and the latency (a latency rate
    /// above zero needs a latency above zero).
    pub fn build(self) -> Result<Chaos, ConfigError> {
        ConfigError::check_within("fault_rate", self.fault_rate, 0.0, 1.0)?;
        ConfigError::check_within("latency_rate", self.latency_rate, 0.0, 1.0)?;
        if self.latency_rate > 0.0 && self.latency.is_zero() {
            return Err(ConfigError::Zero { field: "latency" });
        }
        Ok(Chaos {
            state: Arc::new(State {
                enabled: AtomicBool::new(self.enabled),
                fault_rate: self.fault_rate,
                latency_rate: self.latency_rate,
                latency: self.latency,
                seed: self.seed,
                draws: AtomicU64::new(0),
            }),
        })
    }
}

// ===== InjectedFault =====

/// The error a [`Chaos`] injects by default. Its kind is [`ErrorKind::Inner`](crate::ErrorKind::Inner): it stands for
/// the dependency's own failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InjectedFault {
    _priv: (),
}

impl InjectedFault {
    /// The injected error.
    pub const fn new() -> Self {
        InjectedFault { _priv: () }
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected fault (chaos)")
    }
}

impl Error for InjectedFault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_uniform_enough_and_seeded() {
        let a: Vec<f64> = (0..10_000).map(|i| unit(1, i)).collect();
        assert!(a.iter().all(|u| (0.0..1.0).contains(u)));
        let below = a.iter().filter(|u| **u < 0.25).count();
        assert!((2_300..2_700).contains(&below), "{below}");
        assert_eq!(unit(1, 5), unit(1, 5));
        assert_ne!(unit(1, 5), unit(2, 5));
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused_by_name() {
        let field = |b: Builder| match b.build() {
            Err(e) => e.to_string(),
            Ok(_) => "built".into(),
        };
        assert!(field(Chaos::builder().fault_rate(1.5)).contains("`fault_rate`"));
        assert!(field(Chaos::builder().fault_rate(f64::NAN)).contains("`fault_rate`"));
        assert!(
            field(Chaos::builder().latency(-0.1, Duration::from_millis(1)))
                .contains("`latency_rate`")
        );
        assert!(field(Chaos::builder().latency(0.5, Duration::ZERO)).contains("`latency`"));
        assert_eq!(field(Chaos::builder().fault_rate(1.0)), "built");
    }

    #[test]
    fn a_disabled_chaos_draws_nothing() {
        let chaos = Chaos::builder()
            .fault_rate(1.0)
            .enabled(false)
            .build()
            .unwrap();
        assert_eq!(chaos.decide(), Decision::NONE);
        chaos.set_enabled(true);
        assert!(chaos.decide().fault);
        assert_eq!(chaos.state.draws.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let make = || {
            Chaos::builder()
                .fault_rate(0.3)
                .latency(0.2, Duration::from_millis(5))
                .seed(42)
                .build()
                .unwrap()
        };
        let (a, b) = (make(), make());
        let da: Vec<Decision> = (0..500).map(|_| a.decide()).collect();
        let db: Vec<Decision> = (0..500).map(|_| b.decide()).collect();
        assert_eq!(da, db);
        let faults = da.iter().filter(|d| d.fault).count();
        let slow = da.iter().filter(|d| !d.latency.is_zero()).count();
        assert!((120..180).contains(&faults), "{faults}");
        assert!((70..130).contains(&slow), "{slow}");
    }
}
