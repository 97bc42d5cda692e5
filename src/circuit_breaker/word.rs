//! The state word: the breaker's whole admission state in one `AtomicU64`, and the pure
//! functions that compute its transitions.
//!
//! Reading the state is one load; every change is one compare-exchange made by
//! [`StateWord::update`], the only compare-exchange loop of the breaker. The functions below
//! ([`admit`], [`count_outcome`], [`finish_probe`], [`release_probe`], [`enter`]) take a word
//! and return the next one (or why there is none); they touch no atomics, so they are tested
//! one by one beside their definitions, and the atomics only store and publish their results.
//!
//! # Layout
//!
//! | bits    | field        | width | meaning                                                   |
//! |---------|--------------|-------|-----------------------------------------------------------|
//! | 0..3    | `TAG`        | 3     | the [`State`]: closed, open, half-open, forced open, disabled |
//! | 3..35   | `GENERATION` | 32    | grows by one on every transition, wrapping at 2^32        |
//! | 35..64  | payload      | 29    | depends on the state, below                               |
//!
//! | state              | payload                                                           |
//! |--------------------|-------------------------------------------------------------------|
//! | closed, disabled   | consecutive failures (bits 35..64), saturating at 2^29 - 1        |
//! | half-open          | probes in flight (bits 35..49), probe successes (bits 49..63)     |
//! | open, forced open  | zero                                                              |
//!
//! Every permit carries the generation it was admitted in, and every update checks it, so an
//! outcome from an ended generation never touches the current one. Aliasing a current
//! generation needs a permit held across exactly a multiple of 2^32 transitions; a transition
//! takes a lock and at least a failed probe or a manual override, so that is years of
//! flapping under one call.

use crate::classify::Outcome;
use crate::sync::{AtomicU64, Ordering};

use super::transition::State;

// ===== the layout =====

const TAG_SHIFT: u32 = 0;
const TAG_BITS: u32 = 3;
const GENERATION_SHIFT: u32 = TAG_SHIFT + TAG_BITS;
const GENERATION_BITS: u32 = 32;
const PAYLOAD_SHIFT: u32 = GENERATION_SHIFT + GENERATION_BITS;
const PAYLOAD_BITS: u32 = 64 - PAYLOAD_SHIFT;
/// Half-open: probes in flight, then probe successes, each in `PROBE_BITS`.
const IN_FLIGHT_SHIFT: u32 = PAYLOAD_SHIFT;
const PROBE_BITS: u32 = 14;
const SUCCESSES_SHIFT: u32 = IN_FLIGHT_SHIFT + PROBE_BITS;

const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const PROBE_MASK: u64 = (1 << PROBE_BITS) - 1;

/// Largest consecutive-failure count the word holds (the count saturates there).
pub(crate) const MAX_FAILURES: u32 = (1 << PAYLOAD_BITS) - 1;
/// Largest `half_open_max_calls`: the probe counters are `PROBE_BITS` wide.
pub(crate) const MAX_PROBES: u32 = (1 << PROBE_BITS) - 1;

const _: () = {
    // Five states fit the tag.
    assert!(State::Disabled.tag() <= TAG_MASK);
    // The whole generation of `StateChange::generation` (a u32) is kept.
    assert!(GENERATION_BITS == u32::BITS);
    // Both probe counters fit the payload, side by side.
    assert!(SUCCESSES_SHIFT + PROBE_BITS <= 64);
    // A wrap needs at least 2^29 transitions (issue 11).
    assert!(GENERATION_BITS >= 29);
    assert!(MAX_FAILURES as u64 == (1u64 << PAYLOAD_BITS) - 1);
};

/// One value of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(u64);

impl Word {
    /// A closed breaker in generation 0 with no failure counted.
    pub(crate) const INITIAL: Word = Word(0);

    #[inline]
    fn new(state: State, generation: u32, payload: u64) -> Word {
        Word(
            (state.tag() << TAG_SHIFT)
                | (u64::from(generation) << GENERATION_SHIFT)
                | (payload << PAYLOAD_SHIFT),
        )
    }

    fn half_open(generation: u32, in_flight: u32, successes: u32) -> Word {
        let payload = (u64::from(in_flight) & PROBE_MASK)
            | ((u64::from(successes) & PROBE_MASK) << PROBE_BITS);
        Word::new(State::HalfOpen, generation, payload)
    }

    pub(crate) fn state(self) -> State {
        State::from_tag((self.0 >> TAG_SHIFT) & TAG_MASK)
    }

    pub(crate) fn generation(self) -> u32 {
        // Truncation keeps exactly the 32 generation bits.
        (self.0 >> GENERATION_SHIFT) as u32
    }

    /// Consecutive failures (closed and disabled; zero otherwise).
    pub(crate) fn failures(self) -> u32 {
        match self.state() {
            // The payload is 29 bits wide: it fits.
            State::Closed | State::Disabled => (self.0 >> PAYLOAD_SHIFT) as u32,
            _ => 0,
        }
    }

    /// Probes in flight (half-open; zero otherwise).
    pub(crate) fn in_flight(self) -> u32 {
        match self.state() {
            State::HalfOpen => ((self.0 >> IN_FLIGHT_SHIFT) & PROBE_MASK) as u32,
            _ => 0,
        }
    }

    /// Successful probes (half-open; zero otherwise).
    pub(crate) fn successes(self) -> u32 {
        match self.state() {
            State::HalfOpen => ((self.0 >> SUCCESSES_SHIFT) & PROBE_MASK) as u32,
            _ => 0,
        }
    }

    /// Closed, whatever the generation and count: one mask, for the admission fast path.
    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        (self.0 >> TAG_SHIFT) & TAG_MASK == State::Closed.tag()
    }

    /// Closed in `generation` with no failure counted: what a closed success finds on the
    /// happy path, compared in one instruction.
    #[inline]
    pub(crate) fn closed_clean(generation: u32) -> Word {
        Word::new(State::Closed, generation, 0)
    }

    fn is(self, state: State, generation: u32) -> bool {
        self.state() == state && self.generation() == generation
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("failures", &self.failures())
            .field("in_flight", &self.in_flight())
            .field("successes", &self.successes())
            .finish()
    }
}

// ===== the pure transitions =====

/// The generation a permit was admitted in has ended: its outcome counts for nothing, and a
/// probe's slot went with its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stale;

/// What [`admit`] decides for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Admitted as an ordinary call; nothing to write.
    Closed,
    /// Admitted and recorded for the metrics only; nothing to write.
    Disabled,
    /// Admitted as a probe if this word is written (one more probe in flight).
    Probe(Word),
    /// Open: admitted as the first probe only if the wait is over (the caller reads the clock).
    Open,
    /// Half-open with every probe slot taken.
    Full,
    /// Forced open.
    ForcedOpen,
}

/// Admission of one call at `w`, with at most `max` probes at once when half-open.
pub(crate) fn admit(w: Word, max: u32) -> Admission {
    match w.state() {
        State::Closed => Admission::Closed,
        State::Disabled => Admission::Disabled,
        State::Open => Admission::Open,
        State::ForcedOpen => Admission::ForcedOpen,
        // `successes` counts towards the limit: after `max` successes the breaker closes, so
        // admitting more probes than that would only admit calls that cannot count.
        State::HalfOpen if w.in_flight() + w.successes() >= max => Admission::Full,
        State::HalfOpen => Admission::Probe(Word::half_open(
            w.generation(),
            w.in_flight() + 1,
            w.successes(),
        )),
    }
}

/// Why [`count_outcome`] wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uncounted {
    /// The permit's generation is over.
    Stale,
    /// Nothing changes (a success with no failure counted, or an ignored outcome); carries
    /// the current word.
    Unchanged(Word),
}

/// Counts an outcome of a closed or disabled call admitted in (`state`, `generation`) into the
/// consecutive-failure count: a failure adds one (saturating at [`MAX_FAILURES`]), a success
/// clears it.
pub(crate) fn count_outcome(
    w: Word,
    state: State,
    generation: u32,
    outcome: Outcome,
) -> Result<Word, Uncounted> {
    if !w.is(state, generation) {
        return Err(Uncounted::Stale);
    }
    match outcome {
        Outcome::Failure => Ok(Word::new(
            state,
            generation,
            u64::from(w.failures().saturating_add(1).min(MAX_FAILURES)),
        )),
        Outcome::Success if w.failures() != 0 => Ok(Word::new(state, generation, 0)),
        _ => Err(Uncounted::Unchanged(w)),
    }
}

/// A probe of `generation` ended without failing: its slot frees, and a success counts.
/// (A failed probe does not come here: it re-opens the breaker.)
pub(crate) fn finish_probe(w: Word, generation: u32, success: bool) -> Result<Word, Stale> {
    if !w.is(State::HalfOpen, generation) {
        return Err(Stale);
    }
    Ok(Word::half_open(
        generation,
        w.in_flight().saturating_sub(1),
        w.successes() + u32::from(success),
    ))
}

/// A probe of `generation` was dropped without an outcome: its slot frees, nothing counts.
pub(crate) fn release_probe(w: Word, generation: u32) -> Result<Word, Stale> {
    if !w.is(State::HalfOpen, generation) {
        return Err(Stale);
    }
    Ok(Word::half_open(
        generation,
        w.in_flight().saturating_sub(1),
        w.successes(),
    ))
}

/// The word a transition from `w` to `to` publishes: the next generation, counts cleared. The
/// caller of a move to half-open holds the first probe, so it starts with one in flight.
pub(crate) fn enter(w: Word, to: State) -> Word {
    let generation = w.generation().wrapping_add(1);
    match to {
        State::HalfOpen => Word::half_open(generation, 1, 0),
        _ => Word::new(to, generation, 0),
    }
}

// ===== the atomic =====

/// The atomic holding the [`Word`], alone on its cache line(s): the reference counts written
/// on every call sit elsewhere, so reading the word stays a hit in every core's cache. 128
/// bytes because some x86 cores prefetch cache lines in pairs.
#[repr(align(128))]
pub(crate) struct StateWord {
    word: AtomicU64,
}

impl StateWord {
    pub(crate) fn new() -> StateWord {
        StateWord {
            word: AtomicU64::new(Word::INITIAL.0),
        }
    }

    /// The current word. Acquire pairs with the Release half of every update, so whoever sees
    /// a word also sees what was written before it was published (the end of an open period,
    /// a cleared window).
    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// Applies `f` until its result is written: `f` gets the current word and returns the
    /// next one, or `Err` to stop without writing (the error is returned). Returns the word
    /// written. `f` may run several times (on contention) and must be pure.
    #[inline]
    pub(crate) fn update<E>(&self, mut f: impl FnMut(Word) -> Result<Word, E>) -> Result<Word, E> {
        let mut current = self.load();
        loop {
            let next = f(current)?;
            // AcqRel: the Release half publishes what the writer did before (see `load`);
            // the Acquire half (and the Acquire failure load) lets the retry see the same.
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(next),
                Err(actual) => current = Word(actual),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(generation: u32, failures: u32) -> Word {
        Word::new(State::Closed, generation, u64::from(failures))
    }

    #[test]
    fn fields_round_trip_at_their_limits() {
        for state in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            let w = Word::new(state, u32::MAX, 0);
            assert_eq!((w.state(), w.generation()), (state, u32::MAX));
        }
        let w = closed(u32::MAX, MAX_FAILURES);
        assert_eq!((w.failures(), w.generation()), (MAX_FAILURES, u32::MAX));
        let w = Word::half_open(7, MAX_PROBES, MAX_PROBES);
        assert_eq!(
            (w.state(), w.generation(), w.in_flight(), w.successes()),
            (State::HalfOpen, 7, MAX_PROBES, MAX_PROBES)
        );
        assert_eq!(Word::INITIAL, closed(0, 0));
    }

    #[test]
    fn admit_lets_probes_in_up_to_the_limit_counting_successes() {
        assert_eq!(admit(closed(3, 2), 2), Admission::Closed);
        assert_eq!(
            admit(Word::new(State::Disabled, 3, 0), 2),
            Admission::Disabled
        );
        assert_eq!(admit(Word::new(State::Open, 3, 0), 2), Admission::Open);
        assert_eq!(
            admit(Word::new(State::ForcedOpen, 3, 0), 2),
            Admission::ForcedOpen
        );
        let w = Word::half_open(3, 0, 0);
        let Admission::Probe(w) = admit(w, 2) else {
            panic!("a free slot")
        };
        assert_eq!((w.generation(), w.in_flight(), w.successes()), (3, 1, 0));
        assert_eq!(admit(Word::half_open(3, 1, 1), 2), Admission::Full);
        assert_eq!(admit(Word::half_open(3, 2, 0), 2), Admission::Full);
        let max = MAX_PROBES;
        assert_eq!(admit(Word::half_open(3, max, 0), max), Admission::Full);
    }

    #[test]
    fn count_outcome_counts_failures_clears_on_success_and_ignores_stale() {
        let w = count_outcome(closed(4, 0), State::Closed, 4, Outcome::Failure).unwrap();
        assert_eq!((w.failures(), w.generation()), (1, 4));
        assert_eq!(
            count_outcome(closed(4, 3), State::Closed, 4, Outcome::Success),
            Ok(closed(4, 0))
        );
        assert_eq!(
            count_outcome(closed(4, 0), State::Closed, 4, Outcome::Success),
            Err(Uncounted::Unchanged(closed(4, 0)))
        );
        assert_eq!(
            count_outcome(closed(4, 3), State::Closed, 4, Outcome::Ignored),
            Err(Uncounted::Unchanged(closed(4, 3)))
        );
        assert_eq!(
            count_outcome(closed(5, 3), State::Closed, 4, Outcome::Failure),
            Err(Uncounted::Stale),
            "an older generation"
        );
        assert_eq!(
            count_outcome(closed(4, 3), State::Disabled, 4, Outcome::Failure),
            Err(Uncounted::Stale),
            "another state"
        );
        let full = closed(4, MAX_FAILURES);
        assert_eq!(
            count_outcome(full, State::Closed, 4, Outcome::Failure),
            Ok(full),
            "saturates"
        );
    }

    #[test]
    fn a_generation_2_to_the_21_transitions_old_is_still_stale() {
        // The old layout kept 21 bits: this permit would have been taken for a current one.
        let mut w = closed(0, 0);
        for _ in 0..(1u32 << 21) {
            w = enter(w, State::Closed);
        }
        assert_eq!(w.generation(), 1 << 21);
        assert_eq!(
            count_outcome(w, State::Closed, 0, Outcome::Failure),
            Err(Uncounted::Stale)
        );
        let half = enter(Word::new(State::Open, (1 << 21) - 1, 0), State::HalfOpen);
        assert_eq!(release_probe(half, 0), Err(Stale));
        assert_eq!(finish_probe(half, 0, true), Err(Stale));
    }

    #[test]
    fn the_generation_wraps_at_2_to_the_32() {
        let w = enter(Word::new(State::Open, u32::MAX, 0), State::Closed);
        assert_eq!(
            (w.state(), w.generation(), w.failures()),
            (State::Closed, 0, 0)
        );
    }

    #[test]
    fn probes_finish_and_release_their_own_slot_only() {
        let w = Word::half_open(9, 2, 1);
        let done = finish_probe(w, 9, true).unwrap();
        assert_eq!((done.in_flight(), done.successes()), (1, 2));
        let ignored = finish_probe(w, 9, false).unwrap();
        assert_eq!((ignored.in_flight(), ignored.successes()), (1, 1));
        let released = release_probe(w, 9).unwrap();
        assert_eq!((released.in_flight(), released.successes()), (1, 1));
        assert_eq!(release_probe(w, 8), Err(Stale));
        assert_eq!(finish_probe(closed(9, 0), 9, true), Err(Stale));
    }

    #[test]
    fn enter_starts_a_generation_with_clean_counts() {
        let w = enter(closed(1, 4), State::Open);
        assert_eq!(
            (w.state(), w.generation(), w.failures()),
            (State::Open, 2, 0)
        );
        let w = enter(w, State::HalfOpen);
        assert_eq!(
            (w.state(), w.generation(), w.in_flight(), w.successes()),
            (State::HalfOpen, 3, 1, 0),
            "the caller holds the first probe"
        );
        let w = enter(w, State::Closed);
        assert_eq!(
            (w.state(), w.generation(), w.failures()),
            (State::Closed, 4, 0)
        );
    }
}
