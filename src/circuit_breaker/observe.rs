//! Observation: every state change, rejection and recorded outcome of a breaker flows through
//! one place, [`CircuitBreaker::emit`], where user [`Listener`]s and the `tracing` events
//! (feature `tracing`) attach; and [`Snapshot`], a point-in-time view for metrics and health
//! endpoints.
//!
//! See [`Listener`] for an example.
//!
//! Listeners run on the thread that caused the event, after it took effect and outside every
//! lock, so a listener may call back into its breaker (it is handed one: capturing a clone of
//! the breaker in the listener would keep it alive forever).
//!
//! A listener that panics hides nothing from the others: each listener runs under
//! [`catch_unwind`](std::panic::catch_unwind), so every listener (and `tracing`) sees every
//! event, a state change that an outcome caused is announced even when a listener panicked on
//! that outcome, and only then does the first panic resume into the caller (`try_acquire`,
//! [`Permit::record`](super::Permit::record), the response future); later panics of the same
//! call are dropped. The breaker stays consistent: the state word is always updated before
//! any listener runs, and a permit being unwound frees its probe slot.
//!
//! # Cost
//!
//! Without a listener, a closed success emits nothing: no dynamic call, no branch beyond one
//! flag read on the path that already reads the state word. With a listener, every recorded
//! outcome is one dynamic call. The `tracing` events are a state change (`INFO`) and a
//! rejection (`DEBUG`); outcomes are not traced (one event per call would drown a log).

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::PoisonError;
use std::time::Duration;

use super::breaker::{Circuit, CircuitBreaker};
use super::error::CircuitOpen;
use super::transition::{State, StateChange};
use super::window::Counts;
use crate::classify::Outcome;
use crate::sync::Ordering;

/// Something that happened to a breaker, as given to a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The breaker moved from one state to another.
    StateChange(StateChange),
    /// A call was rejected without being run.
    Rejected(CircuitOpen),
    /// The outcome of an admitted call was recorded (also when it came from an ended
    /// generation and so counted for nothing).
    Recorded(Recorded),
}

/// A recorded outcome ([`Event::Recorded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// What the classifier said.
    pub outcome: Outcome,
    /// The call took at least `slow_call_duration` (measured only when `slow_call_duration`
    /// is set and a rate condition keeps a window; otherwise always `false`).
    pub slow: bool,
    /// The call was a half-open probe.
    pub probe: bool,
}

/// Receives every [`Event`] of a breaker. Implemented for every
/// `Fn(&CircuitBreaker, &Event) + Send + Sync`.
///
/// Register with [`Builder::listener`](super::Builder::listener), or, for state changes only,
/// [`Builder::on_state_change`](super::Builder::on_state_change). Listeners run on the thread
/// that caused the event, after it took effect and outside every lock, so a listener may call
/// back into the breaker it is handed (capturing a clone of the breaker instead would keep it
/// alive forever). A listener that panics does not stop the others: they all still see the
/// event (and the state change it caused, if any), then the first panic resumes into the
/// caller (`try_acquire`, `record`, the response future); the breaker stays consistent.
///
/// ```
/// use seawall::circuit_breaker::{CircuitBreaker, Event, Listener, State};
/// use seawall::Outcome;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// /// Counts failed calls and rejections, as a metrics exporter would.
/// #[derive(Clone, Default)]
/// struct Exporter {
///     failures: Arc<AtomicU64>,
///     rejections: Arc<AtomicU64>,
/// }
///
/// impl Listener for Exporter {
///     fn on_event(&self, _breaker: &CircuitBreaker, event: &Event) {
///         match event {
///             Event::Recorded(r) if r.outcome == Outcome::Failure => {
///                 self.failures.fetch_add(1, Ordering::Relaxed);
///             }
///             Event::Rejected(_) => {
///                 self.rejections.fetch_add(1, Ordering::Relaxed);
///             }
///             _ => {}
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let exporter = Exporter::default();
/// let breaker = CircuitBreaker::builder()
///     .failure_threshold(1)
///     .listener(exporter.clone())
///     .build()
///     .expect("valid configuration");
/// breaker.record(Outcome::Failure); // trips
/// assert!(breaker.try_acquire().is_err());
/// assert_eq!(breaker.state(), State::Open);
/// assert_eq!(exporter.failures.load(Ordering::Relaxed), 1);
/// assert_eq!(exporter.rejections.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event, on the thread that caused it, outside every lock. `breaker` is
    /// the breaker the event happened to.
    fn on_event(&self, breaker: &CircuitBreaker, event: &Event);
}

impl<F> Listener for F
where
    F: Fn(&CircuitBreaker, &Event) + Send + Sync + 'static,
{
    fn on_event(&self, breaker: &CircuitBreaker, event: &Event) {
        self(breaker, event)
    }
}

/// The listener behind [`Builder::on_state_change`](super::Builder::on_state_change).
pub(crate) struct OnStateChange<F>(pub(crate) F);

impl<F> Listener for OnStateChange<F>
where
    F: Fn(&CircuitBreaker, &StateChange) + Send + Sync + 'static,
{
    fn on_event(&self, breaker: &CircuitBreaker, event: &Event) {
        if let Event::StateChange(change) = event {
            (self.0)(breaker, change);
        }
    }
}

impl CircuitBreaker {
    /// The one place every event goes through: every listener sees it, whatever the others
    /// do; then the first panic, if one panicked, resumes.
    pub(super) fn emit(&self, event: &Event) {
        resume(self.emit_caught(event));
    }

    /// Gives `event` to `tracing` and to every listener, each under `catch_unwind` so that
    /// one panicking cannot hide the event from the others. Returns the first panic, for the
    /// caller to resume once everything it must announce is announced (see [`resume`]).
    #[must_use]
    pub(super) fn emit_caught(&self, event: &Event) -> Option<Panic> {
        let mut first = None;
        #[cfg(feature = "tracing")]
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.trace(event))) {
            first = Some(panic); // a subscriber is user code too
        }
        for listener in self.lane.config.listeners.iter() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| listener.on_event(self, event))) {
                // Only the first panic resumes; a later one is dropped here.
                first.get_or_insert(panic);
            }
        }
        first
    }

    #[cfg(feature = "tracing")]
    fn trace(&self, event: &Event) {
        let name = self.lane.config.name.as_deref().unwrap_or("");
        match event {
            Event::StateChange(change) => tracing::info!(
                breaker = name,
                from = change.from.as_str(),
                to = change.to.as_str(),
                generation = change.generation,
                "circuit breaker state change"
            ),
            Event::Rejected(open) => tracing::debug!(
                breaker = name,
                state = open.state().as_str(),
                retry_in_ms = u64::try_from(open.retry_in().as_millis()).unwrap_or(u64::MAX),
                "circuit breaker rejected a call"
            ),
            Event::Recorded(_) => {}
        }
    }
}

/// The payload of a listener's panic, held until every listener has seen the event.
pub(super) type Panic = Box<dyn Any + Send + 'static>;

/// Resumes the panic a listener raised, if one did.
pub(super) fn resume(panic: Option<Panic>) {
    if let Some(panic) = panic {
        resume_unwind(panic);
    }
}

// ===== snapshots =====

/// A point-in-time view of a breaker, for metrics and health endpoints.
///
/// With the `serde` feature it serialises with these field names, the state as its name
/// (`"half_open"`), an absent rate as `null` and `retry_in` in seconds (a float), e.g.
/// `{"state":"open",...,"failure_rate":null,...,"retry_in":12.5}`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Snapshot {
    /// The current state (an open breaker whose wait is over stays `Open` until the next call).
    pub state: State,
    /// Failures in a row since the last success (closed and disabled states).
    pub consecutive_failures: u32,
    /// Calls in the sliding window (zero when no rate condition is configured).
    pub calls: u32,
    /// Failed calls in the sliding window.
    pub failures: u32,
    /// Slow calls in the sliding window.
    pub slow_calls: u32,
    /// `failures / calls` in percent, once the window holds `minimum_calls`.
    pub failure_rate: Option<f64>,
    /// `slow_calls / calls` in percent, once the window holds `minimum_calls`.
    pub slow_call_rate: Option<f64>,
    /// Probes in flight (half-open state).
    pub probes_in_flight: u32,
    /// Successful probes so far (half-open state).
    pub probe_successes: u32,
    /// Time until the next probe is admitted (open state).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::seconds"))]
    pub retry_in: Option<Duration>,
}

impl CircuitBreaker {
    /// A point-in-time view of the state and counts.
    pub fn snapshot(&self) -> Snapshot {
        let circuit: &Circuit = &self.lane;
        let w = circuit.word.load();
        let now = circuit.clock.now_nanos();
        let counts = match &circuit.window {
            Some(window) => {
                let ws = window.lock().unwrap_or_else(PoisonError::into_inner);
                if ws.generation == w.generation() {
                    ws.window.counts(now)
                } else {
                    Counts::default()
                }
            }
            None => Counts::default(),
        };
        let enough = counts.calls > 0 && counts.calls >= circuit.config.minimum_calls;
        let rate = |n: u32| enough.then(|| f64::from(n) * 100.0 / f64::from(counts.calls));
        Snapshot {
            state: w.state(),
            consecutive_failures: w.failures(),
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            probes_in_flight: w.in_flight(),
            probe_successes: w.successes(),
            retry_in: (w.state() == State::Open).then(|| {
                let until = circuit.open_until.load(Ordering::Acquire);
                Duration::from_nanos(until.saturating_sub(now))
            }),
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.lane.config.name)
            .field("state", &self.state())
            .finish()
    }
}
