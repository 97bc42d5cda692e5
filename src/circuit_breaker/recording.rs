//! Recording: what an ended call's outcome does to the breaker.
//!
//! Closed: a failure adds one to the consecutive-failure count, a success clears it, and a
//! rate condition looks at the sliding window; either condition trips the breaker. Half-open:
//! one failed probe re-opens it, `half_open_max_calls` successful probes close it. Disabled:
//! outcomes reach the counts (for metrics), never a transition. An outcome from an ended
//! generation counts for nothing (see [`word`](super::word)).

use std::sync::PoisonError;

use super::admission::{Kind, Token};
use super::breaker::{Circuit, CircuitBreaker};
use super::observe::{resume, Event, Recorded};
use super::transition::{State, StateChange};
use super::window::Counts;
use super::word::{count_outcome, finish_probe, Uncounted, Word};
use crate::classify::Outcome;

impl CircuitBreaker {
    #[inline(always)]
    pub(super) fn record_token(&self, token: &Token, outcome: Outcome) {
        let circuit: &Circuit = &self.lane;
        if circuit.plain && token.kind == Kind::Closed && outcome == Outcome::Success {
            // The happy path of the default breaker, small enough to inline into the caller:
            // one load, one comparison, no write. Anything else (failures to clear, or a
            // generation that ended) is sorted out out of line.
            if circuit.word.load() != Word::closed_clean(token.generation) {
                self.clear_failures(token.generation);
            }
            return;
        }
        self.record_outcome(token, outcome);
    }

    #[cold]
    #[inline(never)]
    fn clear_failures(&self, generation: u32) {
        // Stops harmlessly if there is nothing to clear or the word moved on (a new
        // generation starts at zero anyway).
        let _ = self
            .lane
            .word
            .update(|w| count_outcome(w, State::Closed, generation, Outcome::Success));
    }

    #[inline(never)]
    fn record_outcome(&self, token: &Token, outcome: Outcome) {
        let circuit: &Circuit = &self.lane;
        let now = if circuit.needs_end_time {
            circuit.clock.now_nanos()
        } else {
            0
        };
        let slow = match (circuit.slow_nanos, outcome) {
            (Some(limit), Outcome::Success | Outcome::Failure) => {
                now.saturating_sub(token.start) >= limit
            }
            _ => false,
        };
        let change = match token.kind {
            Kind::Closed => self.record_closed(token.generation, outcome, slow, now),
            Kind::Probe => self.record_probe(token.generation, outcome, slow),
            Kind::Disabled => {
                self.record_disabled(token.generation, outcome, slow, now);
                None
            }
        };
        // Every effect is in place before a listener runs: one that panics cannot leave a
        // probe slot taken or a transition half made. And the state change is announced
        // whatever a listener did with the outcome: a panic resumes only after both events
        // reached every listener.
        let panic = if circuit.config.listeners.is_empty() {
            None
        } else {
            self.emit_caught(&Event::Recorded(Recorded {
                outcome,
                slow,
                probe: token.kind == Kind::Probe,
            }))
        };
        let later = change.and_then(|change| self.emit_caught(&Event::StateChange(change)));
        resume(panic.or(later));
    }

    fn record_closed(
        &self,
        generation: u32,
        outcome: Outcome,
        slow: bool,
        now: u64,
    ) -> Option<StateChange> {
        let circuit: &Circuit = &self.lane;
        if outcome == Outcome::Ignored {
            return None;
        }
        // The count lives in the word: the exchange that updates it also checks state and
        // generation, so an outcome from an ended generation never touches the current count.
        let w = match circuit
            .word
            .update(|w| count_outcome(w, State::Closed, generation, outcome))
        {
            Ok(written) => written,
            Err(Uncounted::Unchanged(current)) => current,
            Err(Uncounted::Stale) => return None, // says nothing about this generation
        };
        let mut trip = w.failures() >= circuit.failure_threshold;
        if circuit.window.is_some() {
            trip |= circuit.record_window(generation, now, outcome == Outcome::Failure, slow);
        }
        if !trip {
            return None;
        }
        let now = if circuit.needs_end_time {
            now
        } else {
            circuit.clock.now_nanos()
        };
        self.transition(w, State::Open, now)
            .and_then(|(_, change)| change)
    }

    fn record_probe(&self, generation: u32, outcome: Outcome, slow: bool) -> Option<StateChange> {
        let circuit: &Circuit = &self.lane;
        let failed = outcome == Outcome::Failure
            || (outcome == Outcome::Success && slow && circuit.config.slow_call_rate.is_some());
        if failed {
            // One failed probe re-opens the breaker.
            let w = circuit.word.load();
            if w.state() != State::HalfOpen || w.generation() != generation {
                return None; // the probe's generation is over; its slot went with it
            }
            return self
                .transition(w, State::Open, circuit.clock.now_nanos())
                .and_then(|(_, change)| change);
        }
        let success = outcome == Outcome::Success;
        let w = circuit
            .word
            .update(|w| finish_probe(w, generation, success))
            .ok()?;
        if w.successes() < circuit.config.half_open_max_calls {
            return None;
        }
        // `half_open_max_calls` successful probes close it (closing needs no time).
        self.transition(w, State::Closed, 0)
            .and_then(|(_, change)| change)
    }

    /// Disabled: the outcome reaches the counts (for metrics), never a transition.
    fn record_disabled(&self, generation: u32, outcome: Outcome, slow: bool, now: u64) {
        let circuit: &Circuit = &self.lane;
        if outcome == Outcome::Ignored {
            return;
        }
        let counted = circuit
            .word
            .update(|w| count_outcome(w, State::Disabled, generation, outcome));
        if counted != Err(Uncounted::Stale) && circuit.window.is_some() {
            circuit.record_window(generation, now, outcome == Outcome::Failure, slow);
        }
    }
}

// ===== the sliding window =====

impl Circuit {
    /// Forgets the window's outcomes and hands it to `generation`. Called by transitions,
    /// under the transition lock, before the new word is published.
    pub(super) fn clear_window(&self, generation: u32) {
        if let Some(window) = &self.window {
            let mut ws = window.lock().unwrap_or_else(PoisonError::into_inner);
            ws.generation = generation;
            ws.window.clear();
        }
    }

    /// Records into the sliding window; returns whether a rate condition now holds.
    fn record_window(&self, generation: u32, now: u64, failure: bool, slow: bool) -> bool {
        let Some(window) = &self.window else {
            return false;
        };
        let mut ws = window.lock().unwrap_or_else(PoisonError::into_inner);
        if ws.generation != generation {
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
}
