//! The breaker: [`CircuitBreaker`], a handle to one shared [`Circuit`], and its public
//! operations. Admission, recording, transitions and observation live in their own files and
//! add their methods to [`CircuitBreaker`].

use std::future::Future;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::config::{Builder, Config};
use super::error::CallError;
use super::transition::State;
use super::window::{SlidingWindow, Window};
use super::word::StateWord;
use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::clock::{duration_to_nanos, Clock};
use crate::sync::{Arc, AtomicU32, AtomicU64, Lane, Mutex};

/// A circuit breaker: the state machine, shared by every clone.
///
/// Cloning is cheap (a reference count) and clones share one state; every service built by
/// one [`CircuitBreakerLayer`](super::CircuitBreakerLayer) shares it too. Build a second
/// breaker for a second, independent circuit.
///
/// # Memory
///
/// A breaker is its circuit (one allocation; a window, a name and listeners add their own)
/// reached through the handle's lane (a small allocation of its own), all freed when the last
/// handle *and* the last [`Permit`] are dropped: a call in flight keeps its breaker alive and still records its outcome (and can
/// still trip or close it) after every handle is gone. Listeners are handed the breaker
/// (see [`Listener`](super::Listener)), so they need not capture it, which would keep it
/// alive forever. See the [module docs](super#memory) for the cost.
///
/// [`Permit`]: super::Permit
#[derive(Clone)]
pub struct CircuitBreaker {
    /// The circuit, held through a lane: the reference count this handle, its clones and
    /// the permits they hand out share (a layered service's calls hold the lane of their
    /// thread instead; see [`Lanes`](crate::sync::Lanes)).
    pub(super) lane: Arc<Lane<Circuit>>,
}

/// What every handle and every permit of one breaker share.
pub(crate) struct Circuit {
    /// The admission state, alone on its cache line (see [`StateWord`]).
    pub(super) word: StateWord,
    /// End of the current open period, in nanoseconds on `clock`. Written under the
    /// transition lock before the exchange that publishes `Open`, so whoever loads an `Open`
    /// word (Acquire) sees the matching value.
    pub(super) open_until: AtomicU64,
    pub(super) failure_threshold: u32,
    /// The slow-call limit, when slow calls are measured (only with a window to count them).
    pub(super) slow_nanos: Option<u64>,
    /// A time window or slow-call measurement needs the time when a call ends.
    pub(super) needs_end_time: bool,
    /// No window and no listener: a closed success is one load, nothing else.
    pub(super) plain: bool,
    pub(super) clock: Clock,
    /// Consecutive opens without a close; written only under `transitions`.
    pub(super) trips: AtomicU32,
    /// Serialises transitions; holds the jitter rng, only ever used by a transition.
    pub(super) transitions: Mutex<SmallRng>,
    pub(super) window: Option<Mutex<WindowState>>,
    pub(super) config: Config,
}

/// The sliding window and the generation it belongs to.
pub(super) struct WindowState {
    pub(super) generation: u32,
    pub(super) window: Window,
}

impl Default for CircuitBreaker {
    /// A breaker with every default (see [`Builder`]).
    fn default() -> Self {
        CircuitBreaker::from_config(Builder::default().into_config())
    }
}

impl CircuitBreaker {
    /// A builder with the defaults: trip after 5 consecutive failures, stay open 30 s, then
    /// let 3 probes through.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let clock = config.clock.clone().unwrap_or_default();
        let window = config.needs_window().then(|| {
            Mutex::new(WindowState {
                generation: 0,
                window: Window::new(config.window),
            })
        });
        let time_window = matches!(config.window, SlidingWindow::Time { .. }) && window.is_some();
        // Slow calls are measured only when a window can record them.
        let slow_nanos = config
            .slow_call_duration
            .filter(|_| window.is_some())
            .map(duration_to_nanos);
        let circuit = Circuit {
            word: StateWord::new(),
            open_until: AtomicU64::new(0),
            failure_threshold: config.failure_threshold,
            slow_nanos,
            needs_end_time: time_window || slow_nanos.is_some(),
            plain: window.is_none() && config.listeners.is_empty(),
            clock,
            trips: AtomicU32::new(0),
            transitions: Mutex::new(SmallRng::seed_from_u64(
                config.jitter_seed.unwrap_or_else(process_seed),
            )),
            window,
            config,
        };
        CircuitBreaker {
            lane: Lane::new(Arc::new(circuit)),
        }
    }

    /// The current state: one atomic load. An open breaker whose wait is over reports `Open`
    /// until a call arrives and is admitted as a probe.
    #[inline]
    pub fn state(&self) -> State {
        self.lane.word.load().state()
    }

    /// The breaker's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.lane.config.name.as_deref()
    }

    /// Whether two handles share one circuit.
    pub fn same_circuit(&self, other: &CircuitBreaker) -> bool {
        Arc::ptr_eq(self.lane.target(), other.lane.target())
    }

    /// Runs `f` behind the breaker, with the default classification (`Ok` is a success, `Err`
    /// a failure). A rejected call does not run `f`. Dropping the returned future before it
    /// completes records nothing and frees a probe slot.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use seawall::circuit_breaker::{CallError, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::default();
    /// let r: Result<u32, CallError<&str>> = breaker.call(|| async { Ok(7) }).await;
    /// assert_eq!(r, Ok(7));
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.call_with(&DefaultClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier that decides what counts as a failure.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let permit = self.try_acquire().map_err(CallError::rejected)?;
        let result = f().await;
        permit.record(crate::classify::outcome_of(classifier, &result));
        result.map_err(CallError::inner)
    }

    /// Records an outcome without a permit, as if a call admitted now had ended with it (a
    /// rejected call records nothing). For callers that do their own admission; prefer
    /// [`try_acquire`](Self::try_acquire).
    pub fn record(&self, outcome: Outcome) {
        if let Ok(permit) = self.try_acquire() {
            permit.record(outcome);
        }
    }

    /// Rejects every call until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.override_to(State::ForcedOpen);
    }

    /// Admits every call and never trips (outcomes still reach the metrics) until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.override_to(State::Disabled);
    }

    /// Closes the breaker and forgets every count, from any state (also ends an override).
    pub fn reset(&self) {
        self.override_to(State::Closed);
    }

    /// A layer that puts this breaker in front of a service. See
    /// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
    pub fn layer(&self) -> super::CircuitBreakerLayer {
        super::CircuitBreakerLayer::new(self.clone())
    }
}

/// A seed that differs between breakers and processes without a system call (and so cannot
/// fail): std's per-process random hasher keys, mixed with a counter.
fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.finish()
}
