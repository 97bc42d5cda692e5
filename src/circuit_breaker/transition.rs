//! The breaker's states and the moves between them: trip to open, probe (half-open), close,
//! and the manual overrides.
//!
//! A transition is one compare-exchange of the state word, made under a mutex that only
//! transitions take, so that their side effects (the end of the open period, the trip count,
//! the cleared window) are written before the new word is published and never interleave.
//! The next word itself is [`word::enter`](super::word::enter), a pure function.

use std::fmt;
use std::sync::PoisonError;
use std::time::Duration;

use rand::Rng;

use super::breaker::{Circuit, CircuitBreaker};
use super::observe::Event;
use super::word::{enter, Stale, Word};
use crate::clock::duration_to_nanos;
use crate::sync::Ordering;

/// The state of a circuit breaker. With the `serde` feature it serialises as its
/// [`as_str`](Self::as_str) name (`"half_open"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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
    /// The state's tag in the state word.
    pub(crate) const fn tag(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    /// The inverse of [`tag`](Self::tag) (tags the word never holds read as `Disabled`).
    pub(crate) const fn from_tag(tag: u64) -> State {
        match tag {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            _ => State::Disabled,
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

/// A state change, as given to listeners ([`Event::StateChange`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StateChange {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// The generation entered: grows by one on every transition (a reset of a closed breaker
    /// included), wrapping at 2^32, so that changes announced concurrently can be ordered.
    pub generation: u32,
}

impl CircuitBreaker {
    /// Moves from `expected`'s state and generation to `to`, reading the time (for the end of
    /// an open period) as `now`. Returns the new word and the change to announce, or `None`
    /// if another thread moved first (the caller re-reads and decides again).
    ///
    /// The caller announces the change with [`announce`](Self::announce) once its own state
    /// is safe: a listener that panics must not leak a probe slot.
    #[must_use]
    pub(super) fn transition(
        &self,
        expected: Word,
        to: State,
        now: u64,
    ) -> Option<(Word, Option<StateChange>)> {
        let circuit: &Circuit = &self.lane;
        let from = expected.state();
        let mut rng = circuit
            .transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the lock nobody else changes state or generation (only payloads move: probes
        // admitted or released, failures counted), so this check holds until the exchange.
        let current = circuit.word.load();
        if current.state() != from || current.generation() != expected.generation() {
            return None;
        }
        let next = enter(current, to);
        // Only transitions write `trips`, and they hold the lock: Relaxed is enough.
        let trips = match (from, to) {
            (State::HalfOpen, State::Open) => {
                circuit.trips.load(Ordering::Relaxed).saturating_add(1)
            }
            (_, State::Open) => 1,
            (_, State::HalfOpen) => circuit.trips.load(Ordering::Relaxed),
            _ => 0,
        };
        if to == State::Open {
            let mut period = circuit.config.open_period(trips);
            if circuit.config.wait_in_open_jitter > 0.0 {
                // Spread the probes of many breakers that tripped together.
                let keep = 1.0 - circuit.config.wait_in_open_jitter * rng.random::<f64>();
                period = Duration::try_from_secs_f64(period.as_secs_f64() * keep).unwrap_or(period);
            }
            // Published by the Release half of the exchange below.
            circuit.open_until.store(
                now.saturating_add(duration_to_nanos(period)),
                Ordering::Relaxed,
            );
        }
        // Clear the window *before* publishing the new word: a call admitted in the new
        // generation records into it as soon as the word is out, and clearing after that
        // would drop its outcome.
        if matches!(to, State::Closed | State::Open | State::Disabled) {
            circuit.clear_window(next.generation());
        }
        let published = circuit.word.update(|w| {
            // Payload changes (a probe admitted or released meanwhile) only retry.
            if w.state() == from && w.generation() == expected.generation() {
                Ok(next)
            } else {
                Err(Stale)
            }
        });
        if published.is_err() {
            return None; // unreachable under the lock; kept so a bug cannot corrupt the word
        }
        circuit.trips.store(trips, Ordering::Relaxed);
        drop(rng);
        if from == to {
            return Some((next, None)); // a reset of a closed breaker: nothing to tell
        }
        let change = StateChange {
            from,
            to,
            generation: next.generation(),
        };
        Some((next, Some(change)))
    }

    /// Tells the listeners (and tracing) about a change, if there is one.
    pub(super) fn announce(&self, change: Option<StateChange>) {
        if let Some(change) = change {
            self.emit(&Event::StateChange(change));
        }
    }

    /// Moves to `to` from whatever state the breaker is in (the manual overrides and reset).
    pub(super) fn override_to(&self, to: State) {
        loop {
            let w = self.lane.word.load();
            if w.state() == to && to != State::Closed {
                return;
            }
            // Overrides never enter `Open`, the one state that needs the time.
            if let Some((_, change)) = self.transition(w, to, 0) {
                self.announce(change);
                return;
            }
        }
    }
}
