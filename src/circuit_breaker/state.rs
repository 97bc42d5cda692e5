//! The breaker's state machine: admission, recording, transitions. No tower, no async.
//!
//! # How the state is kept
//!
//! The whole admission state is one `AtomicU64`, the *word*: the state tag, a generation that
//! grows on every transition, and a payload (the end of the open period when open; probes in
//! flight and probe successes when half-open). Reading the state is one load; admitting a
//! probe is one compare-exchange; a transition is one compare-exchange made under a mutex that
//! only transitions take, so their side effects (the trip count, the listener) are ordered.
//!
//! Every permit carries the generation it was admitted in. An outcome from an older generation
//! (a call admitted while closed that ends after the breaker opened) is ignored, and a probe
//! permit only ever releases the slot of its own generation. The consecutive-failure counter and
//! the sliding window are tagged with the generation too, which is how "entering Closed or Open
//! resets the counts" happens without a stop-the-world reset.
//!
//! The closed success path of the default breaker (consecutive failures only) is two loads and
//! no write when nothing failed before: no clock read, no lock, no allocation.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::config::{Builder, Config};
use super::error::{CallError, CircuitOpen};
use super::window::{Counts, Window};
use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::clock::{duration_to_nanos, Clock};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Every call is admitted and its outcome recorded.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// A bounded number of probes are admitted; the rest are rejected.
    HalfOpen,
    /// Manual override: every call is rejected until [`CircuitBreaker::reset`].
    ForcedOpen,
    /// Manual override: every call is admitted and recorded in the metrics, and the breaker
    /// never trips, until [`CircuitBreaker::reset`].
    Disabled,
}

impl State {
    const fn tag(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    /// The state's name in lower snake case, as used in metrics labels and tracing fields.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, as given to the [`on_state_change`](Builder::on_state_change) callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// The generation entered (grows by one on every transition, wrapping at 2^21), to order
    /// callbacks that ran concurrently.
    pub generation: u32,
}

// ===== the packed state word =====

const TAG_BITS: u32 = 3;
const GEN_BITS: u32 = 21;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
const PAYLOAD_SHIFT: u32 = TAG_BITS + GEN_BITS;
const PAYLOAD_MAX: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
const PROBE_BITS: u32 = 20;
const PROBE_MASK: u64 = (1 << PROBE_BITS) - 1;
const NANOS_PER_MILLI: u64 = 1_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    fn new(state: State, gen: u32, payload: u64) -> Word {
        Word(
            state.tag()
                | (u64::from(gen & GEN_MASK) << TAG_BITS)
                | (payload.min(PAYLOAD_MAX) << PAYLOAD_SHIFT),
        )
    }

    fn half_open(gen: u32, in_flight: u32, successes: u32) -> Word {
        let payload = (u64::from(in_flight) & PROBE_MASK)
            | ((u64::from(successes) & PROBE_MASK) << PROBE_BITS);
        Word::new(State::HalfOpen, gen, payload)
    }

    fn state(self) -> State {
        match self.0 & ((1 << TAG_BITS) - 1) {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            _ => State::Disabled,
        }
    }

    fn gen(self) -> u32 {
        ((self.0 >> TAG_BITS) as u32) & GEN_MASK
    }

    fn payload(self) -> u64 {
        self.0 >> PAYLOAD_SHIFT
    }

    /// End of the open period, in nanoseconds since the clock's epoch (millisecond precision).
    fn open_until(self) -> u64 {
        self.payload().saturating_mul(NANOS_PER_MILLI)
    }

    fn in_flight(self) -> u32 {
        (self.payload() & PROBE_MASK) as u32
    }

    fn successes(self) -> u32 {
        ((self.payload() >> PROBE_BITS) & PROBE_MASK) as u32
    }
}

// ===== the consecutive-failure counter: generation (high 32 bits) | count (low 32) =====

fn pack_count(gen: u32, count: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(count)
}

fn count_of(packed: u64, gen: u32) -> u32 {
    if (packed >> 32) as u32 == gen {
        packed as u32
    } else {
        0
    }
}

// ===== permits =====

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Closed,
    Probe,
    Disabled,
}

/// What a permit remembers of its admission: the kind, the generation, the start time (read
/// only when slow calls are measured).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    kind: Kind,
    gen: u32,
    start: u64,
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Report the call's outcome with [`Permit::record`]. A permit dropped without recording (the
/// call was cancelled) records nothing and, if it was a half-open probe, frees its probe slot
/// at once, so a cancelled probe can never wedge the breaker.
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit {
    inner: Arc<Inner>,
    token: Token,
    recorded: bool,
}

impl Permit {
    /// Records the call's outcome and consumes the permit.
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.inner.record(&self.token, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.token.kind == Kind::Probe
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            self.inner.release(&self.token);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("kind", &self.token.kind)
            .field("generation", &self.token.gen)
            .finish()
    }
}

// ===== the breaker =====

/// A circuit breaker: the state machine, shared by every clone.
///
/// Cloning is cheap (an `Arc`) and clones share one state; every service built by one
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer) shares it too. Build a second breaker
/// for a second, independent circuit.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct WindowState {
    gen: u32,
    window: Window,
}

struct Inner {
    word: AtomicU64,
    consecutive: AtomicU64,
    /// Consecutive opens without a close; written only under `transitions`.
    trips: AtomicU32,
    transitions: Mutex<()>,
    window: Option<Mutex<WindowState>>,
    slow_nanos: Option<u64>,
    clock: Clock,
    config: Config,
}

/// A point-in-time view of a breaker, for metrics and health endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The current state (an open breaker whose wait is over stays `Open` until the next call).
    pub state: State,
    /// Failures in a row since the last success (closed state).
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
    pub retry_in: Option<Duration>,
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
        let window = if config.needs_window() {
            Some(Mutex::new(WindowState {
                gen: 0,
                window: Window::new(config.window),
            }))
        } else {
            None
        };
        CircuitBreaker {
            inner: Arc::new(Inner {
                word: AtomicU64::new(Word::new(State::Closed, 0, 0).0),
                consecutive: AtomicU64::new(0),
                trips: AtomicU32::new(0),
                transitions: Mutex::new(()),
                window,
                slow_nanos: config.slow_call_duration.map(duration_to_nanos),
                clock,
                config,
            }),
        }
    }

    /// The current state: one atomic load. An open breaker whose wait is over reports `Open`
    /// until a call arrives and is admitted as a probe.
    #[inline]
    pub fn state(&self) -> State {
        Word(self.inner.word.load(Ordering::Acquire)).state()
    }

    /// The breaker's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.inner.config.name.as_deref()
    }

    /// Asks for permission to make one call. Rejects with [`CircuitOpen`] when open, forced
    /// open, or half-open with every probe slot taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        let token = self.inner.acquire()?;
        Ok(Permit {
            inner: Arc::clone(&self.inner),
            token,
            recorded: false,
        })
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
    {
        self.call_with(&DefaultClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier that decides what counts as a failure.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f().await;
        permit.record(classifier.classify(&result));
        result.map_err(CallError::Inner)
    }

    /// Records an outcome without a permit, as if a call admitted now had ended with it. For
    /// callers that do their own admission; prefer [`try_acquire`](Self::try_acquire).
    pub fn record(&self, outcome: Outcome) {
        if let Ok(permit) = self.try_acquire() {
            permit.record(outcome);
        }
    }

    /// Rejects every call until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.inner.override_to(State::ForcedOpen);
    }

    /// Admits every call and never trips (outcomes still reach the metrics) until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.inner.override_to(State::Disabled);
    }

    /// Closes the breaker and forgets every count, from any state (also ends an override).
    pub fn reset(&self) {
        self.inner.override_to(State::Closed);
    }

    /// A point-in-time view of the state and counts.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.snapshot()
    }

    /// A layer that puts this breaker in front of a service. See
    /// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
    pub fn layer(&self) -> super::CircuitBreakerLayer {
        super::CircuitBreakerLayer::new(self.clone())
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.config.name)
            .field("state", &self.state())
            .finish()
    }
}

impl Inner {
    #[inline]
    fn token(&self, kind: Kind, gen: u32, now: Option<u64>) -> Token {
        let start = match self.slow_nanos {
            // Only slow-call measurement needs the start time: the default path reads no clock.
            Some(_) => now.unwrap_or_else(|| self.clock.now_nanos()),
            None => 0,
        };
        Token { kind, gen, start }
    }

    #[inline]
    fn acquire(&self) -> Result<Token, CircuitOpen> {
        // Acquire pairs with the Release half of every transition's compare-exchange, so a
        // permit's generation is never older than the state it was admitted in.
        let mut w = Word(self.word.load(Ordering::Acquire));
        loop {
            match w.state() {
                State::Closed => return Ok(self.token(Kind::Closed, w.gen(), None)),
                State::Disabled => return Ok(self.token(Kind::Disabled, w.gen(), None)),
                State::ForcedOpen => {
                    return Err(
                        self.reject(CircuitOpen::with_state(Duration::ZERO, State::ForcedOpen))
                    )
                }
                State::Open => {
                    let now = self.clock.now_nanos();
                    let until = w.open_until();
                    if now < until {
                        return Err(
                            self.reject(CircuitOpen::new(Duration::from_nanos(until - now)))
                        );
                    }
                    // The wait is over: the caller that wins the transition is the first probe.
                    match self.transition(w, State::HalfOpen, now) {
                        Some(next) => return Ok(self.token(Kind::Probe, next.gen(), Some(now))),
                        None => w = Word(self.word.load(Ordering::Acquire)),
                    }
                }
                State::HalfOpen => {
                    let max = self.config.half_open_max_calls;
                    if w.in_flight() + w.successes() >= max {
                        return Err(
                            self.reject(CircuitOpen::with_state(Duration::ZERO, State::HalfOpen))
                        );
                    }
                    let next = Word::half_open(w.gen(), w.in_flight() + 1, w.successes());
                    match self.word.compare_exchange_weak(
                        w.0,
                        next.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(self.token(Kind::Probe, w.gen(), None)),
                        Err(current) => w = Word(current),
                    }
                }
            }
        }
    }

    #[inline]
    fn reject(&self, open: CircuitOpen) -> CircuitOpen {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            breaker = self.config.name.as_deref().unwrap_or(""),
            state = open.state().as_str(),
            retry_in_ms = u64::try_from(open.retry_in().as_millis()).unwrap_or(u64::MAX),
            "circuit breaker rejected a call"
        );
        open
    }

    fn now_if(&self, needed: bool) -> u64 {
        if needed {
            self.clock.now_nanos()
        } else {
            0
        }
    }

    fn record(&self, token: &Token, outcome: Outcome) {
        let time_window = matches!(
            self.config.window,
            super::window::SlidingWindow::Time { .. }
        ) && self.window.is_some();
        let now = self.now_if(self.slow_nanos.is_some() || time_window);
        let slow = match (self.slow_nanos, outcome) {
            (Some(limit), Outcome::Success | Outcome::Failure) => {
                now.saturating_sub(token.start) >= limit
            }
            _ => false,
        };
        match token.kind {
            Kind::Disabled => {
                if outcome != Outcome::Ignored {
                    self.record_window(token.gen, now, outcome == Outcome::Failure, slow);
                }
            }
            Kind::Closed => self.record_closed(token.gen, outcome, slow, now),
            Kind::Probe => self.record_probe(token.gen, outcome, slow),
        }
    }

    fn record_closed(&self, gen: u32, outcome: Outcome, slow: bool, now: u64) {
        let w = Word(self.word.load(Ordering::Acquire));
        if w.state() != State::Closed || w.gen() != gen {
            return; // admitted in an earlier generation: says nothing about this one
        }
        let mut trip = false;
        match outcome {
            Outcome::Ignored => return,
            Outcome::Success => {
                // A load that finds nothing to reset writes nothing: no cache-line ping-pong
                // between cores on the happy path. Relaxed: the counter is a heuristic input,
                // ordered with transitions by its generation tag, not by memory ordering.
                let c = self.consecutive.load(Ordering::Relaxed);
                if c as u32 != 0 {
                    let _ = self.consecutive.compare_exchange(
                        c,
                        pack_count(gen, 0),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
            Outcome::Failure => {
                let prev = self
                    .consecutive
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                        Some(pack_count(gen, count_of(c, gen).saturating_add(1)))
                    })
                    .unwrap_or_else(|c| c);
                let count = count_of(prev, gen).saturating_add(1);
                trip = count >= self.config.failure_threshold;
            }
        }
        if self.window.is_some() {
            trip |= self.record_window(gen, now, outcome == Outcome::Failure, slow);
        }
        if trip {
            let now = if now == 0 {
                self.clock.now_nanos()
            } else {
                now
            };
            self.transition(w, State::Open, now);
        }
    }

    /// Records into the sliding window; returns whether a rate condition now holds.
    fn record_window(&self, gen: u32, now: u64, failure: bool, slow: bool) -> bool {
        let Some(window) = &self.window else {
            return false;
        };
        let mut ws = window.lock().unwrap_or_else(PoisonError::into_inner);
        if ws.gen != gen {
            ws.gen = gen;
            ws.window.clear();
        }
        ws.window.record(now, failure, slow);
        let counts = ws.window.counts(now);
        drop(ws);
        self.rates_exceeded(counts)
    }

    fn rates_exceeded(&self, counts: Counts) -> bool {
        if counts.calls < self.config.minimum_calls || counts.calls == 0 {
            return false;
        }
        let calls = f64::from(counts.calls);
        let over = |threshold: Option<f64>, n: u32| {
            threshold.is_some_and(|t| f64::from(n) * 100.0 >= t * calls)
        };
        over(self.config.failure_rate, counts.failures)
            || over(self.config.slow_call_rate, counts.slow)
    }

    fn record_probe(&self, gen: u32, outcome: Outcome, slow: bool) {
        let failed = outcome == Outcome::Failure
            || (outcome == Outcome::Success && slow && self.config.slow_call_rate.is_some());
        let mut w = Word(self.word.load(Ordering::Acquire));
        loop {
            if w.state() != State::HalfOpen || w.gen() != gen {
                return; // the probe's generation is over; its slot went with it
            }
            if failed {
                let now = self.clock.now_nanos();
                self.transition(w, State::Open, now);
                return;
            }
            let successes = w.successes() + u32::from(outcome == Outcome::Success);
            let next = Word::half_open(gen, w.in_flight().saturating_sub(1), successes);
            match self
                .word
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if successes >= self.config.half_open_max_calls {
                        let now = self.now_if(self.window.is_some());
                        self.transition(next, State::Closed, now);
                    }
                    return;
                }
                Err(current) => w = Word(current),
            }
        }
    }

    /// A dropped permit: frees its probe slot, records nothing.
    fn release(&self, token: &Token) {
        if token.kind != Kind::Probe {
            return;
        }
        let mut w = Word(self.word.load(Ordering::Acquire));
        loop {
            if w.state() != State::HalfOpen || w.gen() != token.gen {
                return;
            }
            let next = Word::half_open(w.gen(), w.in_flight().saturating_sub(1), w.successes());
            match self
                .word
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) => w = Word(current),
            }
        }
    }

    /// Moves from `expected`'s state and generation to `to`. Returns the new word, or `None`
    /// if another thread moved first (the caller re-reads and decides again).
    fn transition(&self, expected: Word, to: State, now: u64) -> Option<Word> {
        let from = expected.state();
        let guard = self
            .transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let gen = expected.gen().wrapping_add(1) & GEN_MASK;
        let mut current = Word(self.word.load(Ordering::Acquire));
        let next = loop {
            if current.state() != from || current.gen() != expected.gen() {
                return None;
            }
            // Only transitions write `trips`, and they hold the lock: Relaxed is enough.
            let trips = self.trips.load(Ordering::Relaxed);
            let (next, trips) = match to {
                State::Open => {
                    let trips = if from == State::HalfOpen {
                        trips.saturating_add(1)
                    } else {
                        1
                    };
                    let period = duration_to_nanos(self.config.open_period(trips));
                    let until = now.saturating_add(period).div_ceil(NANOS_PER_MILLI);
                    (Word::new(State::Open, gen, until), trips)
                }
                // The caller of an Open -> HalfOpen transition holds the first probe.
                State::HalfOpen => (Word::half_open(gen, 1, 0), trips),
                State::Closed => (Word::new(State::Closed, gen, 0), 0),
                State::ForcedOpen | State::Disabled => (Word::new(to, gen, 0), 0),
            };
            match self
                .word
                .compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.trips.store(trips, Ordering::Relaxed);
                    break next;
                }
                // A probe was admitted or released meanwhile: same state, try again.
                Err(actual) => current = Word(actual),
            }
        };
        drop(guard);
        let change = StateChange {
            from,
            to,
            generation: gen,
        };
        if from == to {
            return Some(next); // a reset of a closed breaker: counts cleared, nothing to tell
        }
        #[cfg(feature = "tracing")]
        tracing::info!(
            breaker = self.config.name.as_deref().unwrap_or(""),
            from = from.as_str(),
            to = to.as_str(),
            generation = gen,
            "circuit breaker state change"
        );
        if let Some(listener) = &self.config.listener {
            listener(&change);
        }
        Some(next)
    }

    fn override_to(&self, to: State) {
        loop {
            let w = Word(self.word.load(Ordering::Acquire));
            if w.state() == to && to != State::Closed {
                return;
            }
            let now = self.now_if(to == State::Open);
            if self.transition(w, to, now).is_some() {
                return;
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let w = Word(self.word.load(Ordering::Acquire));
        let now = self.clock.now_nanos();
        let counts = match &self.window {
            Some(window) => {
                let ws = window.lock().unwrap_or_else(PoisonError::into_inner);
                if ws.gen == w.gen() {
                    ws.window.counts(now)
                } else {
                    Counts::default()
                }
            }
            None => Counts::default(),
        };
        let enough = counts.calls > 0 && counts.calls >= self.config.minimum_calls;
        let rate = |n: u32| enough.then(|| f64::from(n) * 100.0 / f64::from(counts.calls));
        let half_open = w.state() == State::HalfOpen;
        Snapshot {
            state: w.state(),
            consecutive_failures: count_of(self.consecutive.load(Ordering::Relaxed), w.gen()),
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            probes_in_flight: if half_open { w.in_flight() } else { 0 },
            probe_successes: if half_open { w.successes() } else { 0 },
            retry_in: (w.state() == State::Open)
                .then(|| Duration::from_nanos(w.open_until().saturating_sub(now))),
        }
    }
}
