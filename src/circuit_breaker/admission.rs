//! Admission: whether a call may go through, and the [`Permit`] that proves it did.
//!
//! A closed breaker admits with one load of the state word. An open one reads the clock to
//! see whether its wait is over; the first call after the wait moves it to half-open and is
//! its first probe. A half-open breaker admits a probe with one compare-exchange while a probe
//! slot is free. A permit is released by `Drop` (the shape of tower's `ConcurrencyLimit`
//! permits), so a cancelled probe frees its slot whatever cancelled it.

use std::fmt;
use std::time::Duration;

use super::breaker::{Circuit, CircuitBreaker};
use super::error::CircuitOpen;
use super::observe::Event;
use super::transition::{State, StateChange};
use super::word::{admit, release_probe, Admission};
use crate::classify::Outcome;
use crate::sync::{Arc, Lane, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Closed,
    Probe,
    Disabled,
}

/// What a permit remembers of its admission: the kind, the generation, the start time (read
/// only when slow calls are measured).
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) generation: u32,
    pub(super) start: u64,
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Report the call's outcome with [`Permit::record`]. A permit dropped without recording (the
/// call was cancelled) records nothing and, if it was a half-open probe, frees its probe slot
/// at once, so a cancelled probe can never wedge the breaker.
///
/// A permit keeps its breaker alive: if every handle to the breaker is dropped while the call
/// runs, the outcome is still recorded (and can still trip or close the breaker, and reach
/// its listeners).
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit {
    breaker: CircuitBreaker,
    token: Token,
}

impl Permit {
    /// Records the call's outcome and consumes the permit.
    #[inline(always)]
    pub fn record(mut self, outcome: Outcome) {
        if self.token.kind == Kind::Probe {
            // Settle a probe first: if recording unwinds (a listener panics), `Drop` must
            // not free its slot a second time.
            let token = self.token;
            self.token.kind = Kind::Closed;
            return self.breaker.record_token(&token, outcome);
        }
        // Anything else releases nothing on `Drop`: record in place, without a copy of the
        // token (the copy and the store cost the hot path more than the rest of it).
        self.breaker.record_token(&self.token, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.token.kind == Kind::Probe
    }

    /// The breaker that admitted this call.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if self.token.kind == Kind::Probe {
            self.breaker.release_probe(self.token.generation);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("kind", &self.token.kind)
            .field("generation", &self.token.generation)
            .finish()
    }
}

impl CircuitBreaker {
    /// Asks for permission to make one call. Rejects with [`CircuitOpen`] when open, forced
    /// open, or half-open with every probe slot taken.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        match Self::admit_closed(&self.lane) {
            Some(permit) => Ok(permit),
            None => self.acquire_slow(),
        }
    }

    /// The happy path, small enough to inline into the caller: one load, one reference
    /// count. A permit holding the circuit by `lane` (a layered service's calls pass the lane
    /// of their thread, see [`Lanes`](crate::sync::Lanes)) if the breaker is closed and
    /// measures no slow calls; `None` when the slow path must decide.
    #[inline(always)]
    pub(super) fn admit_closed(lane: &Arc<Lane<Circuit>>) -> Option<Permit> {
        let w = lane.word.load();
        if w.is_closed() && lane.slow_nanos.is_none() {
            return Some(Permit {
                breaker: CircuitBreaker { lane: lane.clone() },
                token: Token {
                    kind: Kind::Closed,
                    generation: w.generation(),
                    start: 0,
                },
            });
        }
        None
    }

    #[inline(never)]
    fn acquire_slow(&self) -> Result<Permit, CircuitOpen> {
        self.acquire_slow_by(&self.lane)
    }

    /// Admission outside the closed fast path, with a permit that holds the circuit by `lane`,
    /// a lane on this breaker's circuit; the events go through `self`. Inlined into the two
    /// out-of-line slow paths (the handle's and a layered service's).
    #[inline]
    pub(super) fn acquire_slow_by(&self, lane: &Arc<Lane<Circuit>>) -> Result<Permit, CircuitOpen> {
        match self.admit() {
            Ok((token, change)) => {
                let permit = Permit {
                    breaker: CircuitBreaker { lane: lane.clone() },
                    token,
                };
                // After the permit exists: if the listener panics, unwinding drops the
                // permit, which frees the probe slot instead of leaking it.
                self.announce(change);
                Ok(permit)
            }
            Err(open) => {
                self.emit(&Event::Rejected(open));
                Err(open)
            }
        }
    }

    fn token(&self, kind: Kind, generation: u32, now: Option<u64>) -> Token {
        let start = match self.lane.slow_nanos {
            // Only slow-call measurement needs the start time: the default path reads no clock.
            Some(_) => now.unwrap_or_else(|| self.lane.clock.now_nanos()),
            None => 0,
        };
        Token {
            kind,
            generation,
            start,
        }
    }

    /// Admission outside the closed fast path. Returns the token and, when this call moved the
    /// breaker to half-open, the change to announce once the probe's permit exists.
    fn admit(&self) -> Result<(Token, Option<StateChange>), CircuitOpen> {
        let circuit: &Circuit = &self.lane;
        let max = circuit.config.half_open_max_calls;
        loop {
            let probe = circuit.word.update(|w| match admit(w, max) {
                Admission::Probe(next) => Ok(next),
                other => Err((w, other)),
            });
            let (w, admission) = match probe {
                Ok(next) => return Ok((self.token(Kind::Probe, next.generation(), None), None)),
                Err(decided) => decided,
            };
            match admission {
                Admission::Closed => {
                    return Ok((self.token(Kind::Closed, w.generation(), None), None))
                }
                Admission::Disabled => {
                    return Ok((self.token(Kind::Disabled, w.generation(), None), None))
                }
                Admission::Probe(_) | Admission::Full => {
                    return Err(CircuitOpen::with_state(Duration::ZERO, State::HalfOpen))
                }
                Admission::ForcedOpen => {
                    return Err(CircuitOpen::with_state(Duration::ZERO, State::ForcedOpen))
                }
                Admission::Open => {
                    let now = circuit.clock.now_nanos();
                    let until = circuit.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(CircuitOpen::new(Duration::from_nanos(until - now)));
                    }
                    // The wait is over: the caller that wins the transition is the first probe.
                    if let Some((next, change)) = self.transition(w, State::HalfOpen, now) {
                        return Ok((
                            self.token(Kind::Probe, next.generation(), Some(now)),
                            change,
                        ));
                    }
                    // Another call moved first: decide again on the new word.
                }
            }
        }
    }

    /// A dropped probe: frees its slot, records nothing.
    #[inline(never)]
    fn release_probe(&self, generation: u32) {
        // A stale probe's slot went with its generation: nothing to free.
        let _ = self.lane.word.update(|w| release_probe(w, generation));
    }
}
