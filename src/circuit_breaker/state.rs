//! The breaker's state machine: admission, recording, transitions. No tower, no async.
//!
//! # How the state is kept
//!
//! The whole admission state is one `AtomicU64`, the *word*: the state tag, a generation that
//! grows on every transition (21 bits, wrapping), and a payload (the consecutive-failure count
//! when closed or disabled; probes in flight and probe successes when half-open). The end of
//! the open period has an atomic of its own. Reading the state is one load; admitting a
//! probe is one compare-exchange; a transition is one compare-exchange made under a mutex that
//! only transitions take, so their side effects (the trip count, the listener) are ordered.
//!
//! Every permit carries the generation it was admitted in. An outcome from an older generation
//! (a call admitted while closed that ends after the breaker opened) is ignored, and a probe
//! permit only ever releases the slot of its own generation. The consecutive-failure count
//! lives in the word, so every update checks state and generation in the same
//! compare-exchange; the sliding window is tagged with the generation, and a transition
//! clears it before publishing the new word. That is how "entering Closed or Open resets the
//! counts" holds under concurrency.
//!
//! The closed success path of the default breaker (consecutive failures only) is two loads and
//! no write when nothing failed before: no clock read, no lock, no allocation.
//!
//! The generation wraps after 2^21 transitions: a permit held across exactly a multiple of
//! that many transitions would be taken for a current one. Transitions take at least a probe
//! each (or a manual override), so this needs a call held for millions of trips.

use crate::sync::{Anchor, AtomicU32, AtomicU64, Mutex, Ordering};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::{Builder, Config};
use super::error::{CallError, CircuitOpen};
use super::window::{Counts, SlidingWindow, Window};
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

    fn in_flight(self) -> u32 {
        (self.payload() & PROBE_MASK) as u32
    }

    fn successes(self) -> u32 {
        ((self.payload() >> PROBE_BITS) & PROBE_MASK) as u32
    }
}

/// Consecutive failures of a Closed or Disabled word (its payload).
fn failures_of(w: Word) -> u32 {
    u32::try_from(w.payload()).unwrap_or(u32::MAX)
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
///
/// A permit does not keep the breaker alive: if every handle to the breaker is dropped while
/// the call runs, its outcome is dropped too.
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit {
    hot: &'static Hot,
    token: Token,
}

impl Permit {
    /// Records the call's outcome and consumes the permit.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let (hot, token) = (self.hot, self.token);
        // Recorded, so not released: skip `Drop` (the permit owns nothing to free).
        std::mem::forget(self);
        hot.record(&token, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.token.kind == Kind::Probe
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.hot.release(&self.token);
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
///
/// # Memory
///
/// So that a call needs no reference counting (an atomic read-modify-write costs 10-25 ns
/// here, several times the whole budget of a closed breaker), the few words a call touches
/// (the state word, the failure counter, the clock) live in a small block (under 100 bytes)
/// that is deliberately never freed; everything else is freed with the last handle. Build
/// breakers once per dependency, not per request.
#[derive(Clone)]
pub struct CircuitBreaker {
    /// The same block as `inner.hot`, one indirection closer.
    hot: &'static Hot,
    inner: Arc<Inner>,
}

struct WindowState {
    gen: u32,
    window: Window,
}

/// What every call touches: leaked on purpose (see "Memory" above), so permits can hold a
/// `&'static` to it instead of an `Arc`.
struct Hot {
    word: AtomicU64,
    /// End of the current open period, in nanoseconds on `clock`. Written under the
    /// transition lock before the compare-exchange that publishes `Open`, so whoever loads an
    /// `Open` word (Acquire) sees the matching value.
    open_until: AtomicU64,
    failure_threshold: u32,
    slow_nanos: Option<u64>,
    /// A time window or slow-call measurement needs the time when a call ends.
    needs_end_time: bool,
    has_window: bool,
    clock: Clock,
    /// The rest of the breaker, for the slow paths (transitions, windows). Upgrading is a
    /// read-modify-write, so the success path of a closed breaker never does it.
    inner: Anchor<Inner>,
}

struct Inner {
    hot: &'static Hot,
    /// Consecutive opens without a close; written only under `transitions`.
    trips: AtomicU32,
    /// Serialises transitions; holds the jitter rng, only ever used by a transition.
    transitions: Mutex<SmallRng>,
    window: Option<Mutex<WindowState>>,
    config: Config,
}

/// A point-in-time view of a breaker, for metrics and health endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
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
        let window = config.needs_window().then(|| {
            Mutex::new(WindowState {
                gen: 0,
                window: Window::new(config.window),
            })
        });
        let time_window = matches!(config.window, SlidingWindow::Time { .. }) && window.is_some();
        let slow_nanos = config
            .slow_call_duration
            .filter(|_| window.is_some())
            .map(duration_to_nanos);
        let inner = Arc::new_cyclic(|weak| {
            let hot: &'static Hot = Box::leak(Box::new(Hot {
                word: AtomicU64::new(Word::new(State::Closed, 0, 0).0),
                open_until: AtomicU64::new(0),
                failure_threshold: config.failure_threshold,
                // Slow calls are measured only when a window can record them.
                slow_nanos,
                needs_end_time: time_window || slow_nanos.is_some(),
                has_window: window.is_some(),
                clock,
                inner: Anchor::new(weak.clone()),
            }));
            Inner {
                hot,
                trips: AtomicU32::new(0),
                transitions: Mutex::new(SmallRng::seed_from_u64(
                    config.jitter_seed.unwrap_or_else(process_seed),
                )),
                window,
                config,
            }
        });
        CircuitBreaker {
            hot: inner.hot,
            inner,
        }
    }

    /// The current state: one atomic load. An open breaker whose wait is over reports `Open`
    /// until a call arrives and is admitted as a probe.
    #[inline]
    pub fn state(&self) -> State {
        Word(self.hot.word.load(Ordering::Acquire)).state()
    }

    /// The breaker's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.inner.config.name.as_deref()
    }

    /// Asks for permission to make one call. Rejects with [`CircuitOpen`] when open, forced
    /// open, or half-open with every probe slot taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        let w = Word(self.hot.word.load(Ordering::Acquire));
        if w.state() == State::Closed && self.hot.slow_nanos.is_none() {
            // The happy path, small enough to inline into the caller.
            let token = Token {
                kind: Kind::Closed,
                gen: w.gen(),
                start: 0,
            };
            return Ok(Permit {
                hot: self.hot,
                token,
            });
        }
        let (token, change) = self.inner.acquire(w)?;
        let permit = Permit {
            hot: self.hot,
            token,
        };
        // After the permit exists: if the listener panics, unwinding drops the permit, which
        // frees the probe slot instead of leaking it.
        self.inner.announce(change);
        Ok(permit)
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
        permit.record(classifier.classify(&result));
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

/// A seed that differs between breakers and processes without a system call (and so cannot
/// fail): std's per-process random hasher keys, mixed with a counter.
fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.finish()
}

// ===== the hot path: what a permit does =====

impl Hot {
    /// The rest of the breaker, if any handle to it is still alive.
    fn upgrade(&self) -> Option<Arc<Inner>> {
        self.inner.upgrade()
    }

    #[inline]
    fn record(&self, token: &Token, outcome: Outcome) {
        // No window (hence no slow-call measurement either): a closed success needs nothing
        // but two loads.
        if !self.has_window && token.kind == Kind::Closed && outcome == Outcome::Success {
            // The happy path, kept small enough to inline into the caller.
            let w = Word(self.word.load(Ordering::Acquire));
            if w.state() == State::Closed && w.gen() == token.gen && w.payload() != 0 {
                self.reset_consecutive(w);
            }
            return;
        }
        self.record_slow(token, outcome);
    }

    #[cold]
    #[inline(never)]
    fn reset_consecutive(&self, seen: Word) {
        // Fails harmlessly if the word moved on: a new generation starts at zero anyway.
        let _ = self.word.compare_exchange(
            seen.0,
            Word::new(seen.state(), seen.gen(), 0).0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    #[inline(never)]
    fn record_slow(&self, token: &Token, outcome: Outcome) {
        let now = if self.needs_end_time {
            self.clock.now_nanos()
        } else {
            0
        };
        let slow = match (self.slow_nanos, outcome) {
            (Some(limit), Outcome::Success | Outcome::Failure) => {
                now.saturating_sub(token.start) >= limit
            }
            _ => false,
        };
        match token.kind {
            Kind::Closed => self.record_closed(token.gen, outcome, slow, now),
            Kind::Probe => self.record_probe(token.gen, outcome, slow),
            Kind::Disabled => self.record_disabled(token.gen, outcome, slow, now),
        }
    }

    fn record_closed(&self, gen: u32, outcome: Outcome, slow: bool, now: u64) {
        let w = Word(self.word.load(Ordering::Acquire));
        if w.state() != State::Closed || w.gen() != gen {
            return; // admitted in an earlier generation: says nothing about this one
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let Some((w, count)) = self.count_consecutive(State::Closed, gen, outcome) else {
            return; // the generation ended meanwhile
        };
        let mut trip = count >= self.failure_threshold;
        if !trip && !self.has_window {
            return; // the default success path ends here: two loads, no write
        }
        let Some(inner) = self.upgrade() else {
            return; // the breaker is gone
        };
        if self.has_window {
            trip |= inner.record_window(gen, now, outcome == Outcome::Failure, slow);
        }
        if trip {
            let now = if self.needs_end_time {
                now
            } else {
                self.clock.now_nanos()
            };
            if let Some((_, change)) = inner.transition(w, State::Open, now) {
                inner.announce(change);
            }
        }
    }

    /// Disabled: the outcome reaches the counts (for metrics), never a transition.
    fn record_disabled(&self, gen: u32, outcome: Outcome, slow: bool, now: u64) {
        let w = Word(self.word.load(Ordering::Acquire));
        if w.state() != State::Disabled || w.gen() != gen || outcome == Outcome::Ignored {
            return;
        }
        let _ = self.count_consecutive(State::Disabled, gen, outcome);
        if self.has_window {
            if let Some(inner) = self.upgrade() {
                inner.record_window(gen, now, outcome == Outcome::Failure, slow);
            }
        }
    }

    /// Updates the consecutive-failure count kept in the word's payload, with a
    /// compare-exchange that also checks state and generation, so an outcome from an ended
    /// generation can never touch the count of the current one. Returns the word written (or
    /// read) and the count, or `None` if the generation is over.
    fn count_consecutive(&self, state: State, gen: u32, outcome: Outcome) -> Option<(Word, u32)> {
        let mut w = Word(self.word.load(Ordering::Acquire));
        loop {
            if w.state() != state || w.gen() != gen {
                return None;
            }
            let next = match outcome {
                Outcome::Failure => Word::new(state, gen, w.payload().saturating_add(1)),
                Outcome::Success if w.payload() != 0 => Word::new(state, gen, 0),
                _ => return Some((w, failures_of(w))),
            };
            match self
                .word
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((next, failures_of(next))),
                Err(current) => w = Word(current),
            }
        }
    }

    fn record_probe(&self, gen: u32, outcome: Outcome, slow: bool) {
        let Some(inner) = self.upgrade() else {
            return;
        };
        let failed = outcome == Outcome::Failure
            || (outcome == Outcome::Success && slow && inner.config.slow_call_rate.is_some());
        let mut w = Word(self.word.load(Ordering::Acquire));
        loop {
            if w.state() != State::HalfOpen || w.gen() != gen {
                return; // the probe's generation is over; its slot went with it
            }
            if failed {
                if let Some((_, change)) = inner.transition(w, State::Open, self.clock.now_nanos())
                {
                    inner.announce(change);
                }
                return;
            }
            let successes = w.successes() + u32::from(outcome == Outcome::Success);
            let next = Word::half_open(gen, w.in_flight().saturating_sub(1), successes);
            match self
                .word
                .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if successes >= inner.config.half_open_max_calls {
                        let now = if inner.window.is_some() {
                            self.clock.now_nanos()
                        } else {
                            0
                        };
                        if let Some((_, change)) = inner.transition(next, State::Closed, now) {
                            inner.announce(change);
                        }
                    }
                    return;
                }
                Err(current) => w = Word(current),
            }
        }
    }

    /// A dropped permit: frees its probe slot, records nothing.
    #[inline]
    fn release(&self, token: &Token) {
        if token.kind == Kind::Probe {
            self.release_probe(token);
        }
    }

    #[inline(never)]
    fn release_probe(&self, token: &Token) {
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
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Release the leaked block's `Weak`, so that `Inner`'s allocation is freed too.
        self.hot.inner.clear();
    }
}

// ===== admission, transitions, windows =====

impl Inner {
    #[inline]
    fn token(&self, kind: Kind, gen: u32, now: Option<u64>) -> Token {
        let start = match self.hot.slow_nanos {
            // Only slow-call measurement needs the start time: the default path reads no clock.
            Some(_) => now.unwrap_or_else(|| self.hot.clock.now_nanos()),
            None => 0,
        };
        Token { kind, gen, start }
    }

    /// Admission outside the closed fast path. Returns the token and, when this call moved the
    /// breaker to half-open, the change to announce once the probe's permit exists.
    #[inline(never)]
    fn acquire(&self, mut w: Word) -> Result<(Token, Option<StateChange>), CircuitOpen> {
        // Acquire pairs with the Release half of every transition's compare-exchange, so a
        // permit's generation is never older than the state it was admitted in.
        loop {
            match w.state() {
                State::Closed => return Ok((self.token(Kind::Closed, w.gen(), None), None)),
                State::Disabled => return Ok((self.token(Kind::Disabled, w.gen(), None), None)),
                State::ForcedOpen => {
                    return Err(
                        self.reject(CircuitOpen::with_state(Duration::ZERO, State::ForcedOpen))
                    )
                }
                State::Open => {
                    let now = self.hot.clock.now_nanos();
                    let until = self.hot.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(
                            self.reject(CircuitOpen::new(Duration::from_nanos(until - now)))
                        );
                    }
                    // The wait is over: the caller that wins the transition is the first probe.
                    match self.transition(w, State::HalfOpen, now) {
                        Some((next, change)) => {
                            return Ok((self.token(Kind::Probe, next.gen(), Some(now)), change))
                        }
                        None => w = Word(self.hot.word.load(Ordering::Acquire)),
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
                    match self.hot.word.compare_exchange_weak(
                        w.0,
                        next.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok((self.token(Kind::Probe, w.gen(), None), None)),
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

    /// Records into the sliding window; returns whether a rate condition now holds.
    fn record_window(&self, gen: u32, now: u64, failure: bool, slow: bool) -> bool {
        let Some(window) = &self.window else {
            return false;
        };
        let mut ws = window.lock().unwrap_or_else(PoisonError::into_inner);
        if ws.gen != gen {
            // Transitions clear the window under this lock; a permit whose generation is not
            // the window's is from an older one and must not touch it.
            return false;
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

    /// Moves from `expected`'s state and generation to `to`. Returns the new word and the
    /// change to announce, or `None` if another thread moved first (the caller re-reads and
    /// decides again). The caller announces the change with [`Inner::announce`] once its own
    /// state is safe: a listener that panics must not leak a probe slot.
    #[must_use]
    fn transition(
        &self,
        expected: Word,
        to: State,
        now: u64,
    ) -> Option<(Word, Option<StateChange>)> {
        let from = expected.state();
        let mut guard = self
            .transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let gen = expected.gen().wrapping_add(1) & GEN_MASK;
        let mut current = Word(self.hot.word.load(Ordering::Acquire));
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
                    let mut period = self.config.open_period(trips);
                    if self.config.wait_in_open_jitter > 0.0 {
                        // Spread the probes of many breakers that tripped together.
                        let keep = 1.0 - self.config.wait_in_open_jitter * guard.random::<f64>();
                        period = Duration::try_from_secs_f64(period.as_secs_f64() * keep)
                            .unwrap_or(period);
                    }
                    let period = duration_to_nanos(period);
                    // Published by the Release half of the compare-exchange below.
                    self.hot
                        .open_until
                        .store(now.saturating_add(period), Ordering::Relaxed);
                    (Word::new(State::Open, gen, 0), trips)
                }
                // The caller of an Open -> HalfOpen transition holds the first probe.
                State::HalfOpen => (Word::half_open(gen, 1, 0), trips),
                State::Closed => (Word::new(State::Closed, gen, 0), 0),
                State::ForcedOpen | State::Disabled => (Word::new(to, gen, 0), 0),
            };
            // Reset the window *before* publishing the new word: we hold the transition lock
            // and the state and generation match, so the exchange below can only fail on a
            // payload change and will succeed on a retry. Resetting after it would drop the
            // outcomes the new generation records in between.
            if matches!(to, State::Closed | State::Open | State::Disabled) {
                if let Some(window) = &self.window {
                    let mut ws = window.lock().unwrap_or_else(PoisonError::into_inner);
                    ws.gen = gen;
                    ws.window.clear();
                }
            }
            match self.hot.word.compare_exchange(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.trips.store(trips, Ordering::Relaxed);
                    break next;
                }
                // A probe was admitted or released meanwhile: same state, try again.
                Err(actual) => current = Word(actual),
            }
        };
        drop(guard);
        if from == to {
            return Some((next, None)); // a reset of a closed breaker: nothing to tell
        }
        let change = StateChange {
            from,
            to,
            generation: gen,
        };
        #[cfg(feature = "tracing")]
        tracing::info!(
            breaker = self.config.name.as_deref().unwrap_or(""),
            from = from.as_str(),
            to = to.as_str(),
            generation = gen,
            "circuit breaker state change"
        );
        Some((next, Some(change)))
    }

    /// Runs the state-change listener, if any.
    fn announce(&self, change: Option<StateChange>) {
        if let (Some(listener), Some(change)) = (&self.config.listener, change) {
            listener(&change);
        }
    }

    fn override_to(&self, to: State) {
        loop {
            let w = Word(self.hot.word.load(Ordering::Acquire));
            if w.state() == to && to != State::Closed {
                return;
            }
            if let Some((_, change)) = self.transition(w, to, 0) {
                self.announce(change);
                return;
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let w = Word(self.hot.word.load(Ordering::Acquire));
        let now = self.hot.clock.now_nanos();
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
            consecutive_failures: match w.state() {
                State::Closed | State::Disabled => failures_of(w),
                _ => 0,
            },
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            probes_in_flight: if half_open { w.in_flight() } else { 0 },
            probe_successes: if half_open { w.successes() } else { 0 },
            retry_in: (w.state() == State::Open).then(|| {
                let until = self.hot.open_until.load(Ordering::Acquire);
                Duration::from_nanos(until.saturating_sub(now))
            }),
        }
    }
}
