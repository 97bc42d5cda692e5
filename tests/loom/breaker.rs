//! Model checking of the breaker's state machine with loom: every interleaving (up to a
//! preemption bound) of a few threads admitting, recording and cancelling.
//!
//! Run: `RUSTFLAGS="--cfg seawall_loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom breaker`
//! (`LOOM_MAX_PREEMPTIONS` overrides the bound of 3 used here, 2 for the largest model.)
//!
//! The breaker's `Arc` is loom's under `--cfg seawall_loom`: every model also checks that the
//! breaker is freed at the end of every execution (loom fails a model that leaks one).
#![cfg(seawall_loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::{Clock, ManualClock};
use seawall::Outcome;

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_with_bound(3, f);
}

/// `model` with another default bound (`LOOM_MAX_PREEMPTIONS` still overrides it).
fn model_with_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(f);
}

/// A breaker whose open period is over: the next call finds it ready to go half-open.
fn ready_to_probe(max: u32) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .wait_in_open(Duration::from_secs(1))
        .half_open_max_calls(max)
        .clock(Clock::from(clock.clone()))
        .build()
        .unwrap();
    breaker.record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(1));
    (breaker, clock)
}

/// Bound 2 by default: with the breaker's memory modelled (loom's `Arc`), each admitted call
/// adds three scheduling points (a handle cloned for the thread, the permit's count taken and
/// given back), which takes this three-thread model from 25 s to about 170 s at bound 3 on
/// two cores; at bound 2 it takes about 14 s. Run it at bound 3 with
/// `LOOM_MAX_PREEMPTIONS=3` (it passes; done for every change to admission or recording).
#[test]
fn probes_in_flight_never_exceed_the_limit_and_successes_close() {
    model_with_bound(2, || {
        let (breaker, _clock) = ready_to_probe(2);
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                let inside = inside.clone();
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        if permit.is_probe() {
                            let now = inside.fetch_add(1, SeqCst) + 1;
                            assert!(now <= 2, "{now} probes in flight, limit 2");
                            inside.fetch_sub(1, SeqCst);
                        }
                        permit.record(Outcome::Success);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whoever was admitted succeeded, and two successes are always reached: closed.
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.snapshot().probes_in_flight, 0);
    });
}

#[test]
fn a_cancelled_probe_frees_its_slot_for_the_next_call() {
    model(|| {
        let (breaker, _clock) = ready_to_probe(1);
        let cancelling = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    drop(permit); // cancelled: records nothing
                }
            })
        };
        let probing = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record(Outcome::Success);
                }
            })
        };
        cancelling.join().unwrap();
        probing.join().unwrap();
        assert_eq!(breaker.snapshot().probes_in_flight, 0, "no slot leaked");
        if breaker.state() != State::Closed {
            // Not wedged: the next call is admitted as a probe at once, and closes it.
            let permit = breaker.try_acquire().expect("the slot is free");
            assert!(permit.is_probe());
            permit.record(Outcome::Success);
        }
        assert_eq!(breaker.state(), State::Closed);
    });
}

#[test]
fn concurrent_failures_trip_exactly_once() {
    model(|| {
        let trips = Arc::new(AtomicUsize::new(0));
        let breaker = {
            let trips = trips.clone();
            CircuitBreaker::builder()
                .failure_threshold(2)
                .clock(Clock::from(ManualClock::new()))
                .on_state_change(move |_, c| {
                    if c.from == State::Closed && c.to == State::Open {
                        trips.fetch_add(1, SeqCst);
                    }
                })
                .build()
                .unwrap()
        };
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.record(Outcome::Failure);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(trips.load(SeqCst), 1);
    });
}

#[test]
fn a_failed_probe_reopens_whatever_the_interleaving_and_never_wedges() {
    model(|| {
        let (breaker, clock) = ready_to_probe(2);
        let ok = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record(Outcome::Success);
                }
            })
        };
        let failing = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record(Outcome::Failure);
                }
            })
        };
        ok.join().unwrap();
        failing.join().unwrap();
        // The failing call is always admitted (two slots, at most one other probe), so the
        // breaker always ends open...
        assert_eq!(breaker.state(), State::Open);
        // ...and comes back: after the wait, two successful probes close it.
        clock.advance(Duration::from_secs(1));
        for _ in 0..2 {
            breaker
                .try_acquire()
                .expect("a probe after the wait")
                .record(Outcome::Success);
        }
        assert_eq!(breaker.state(), State::Closed);
    });
}

#[test]
fn reset_racing_probes_leaves_a_consistent_breaker() {
    model(|| {
        let (breaker, _clock) = ready_to_probe(1);
        let probing = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    permit.record(Outcome::Failure);
                }
            })
        };
        let resetting = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.reset())
        };
        probing.join().unwrap();
        resetting.join().unwrap();
        let s = breaker.snapshot();
        assert_eq!(s.probes_in_flight, 0);
        // The probe's failure is ignored if the reset came first (its generation is over);
        // the call is open only if it was admitted after the reset as an ordinary closed
        // call, whose failure meets the threshold of 1.
        assert!(
            matches!(s.state, State::Closed | State::Open),
            "{:?}",
            s.state
        );
    });
}

// ===== the consecutive-failure count against transitions (found in review) =====

/// A closed breaker tripping after `threshold` consecutive failures.
fn closed(threshold: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(threshold)
        .wait_in_open(Duration::from_secs(1))
        .clock(Clock::from(ManualClock::new()))
        .build()
        .unwrap()
}

/// A failure admitted before a reset must not erase the failures counted after it.
#[test]
fn stale_failure_does_not_erase_the_current_generations_count() {
    model(|| {
        let breaker = closed(2);
        let stale = breaker.try_acquire().unwrap(); // closed, generation 0
        let t = thread::spawn(move || stale.record(Outcome::Failure));
        breaker.reset(); // generation 1: forget everything before
        for _ in 0..2 {
            breaker.try_acquire().unwrap().record(Outcome::Failure);
        }
        t.join().unwrap();
        assert_eq!(
            breaker.state(),
            State::Open,
            "two failures in a row after the reset must trip (threshold 2)"
        );
    });
}

/// Same, with a stale success: it must not reset the new generation's count.
#[test]
fn stale_success_does_not_erase_the_current_generations_count() {
    model(|| {
        let breaker = closed(2);
        let stale = breaker.try_acquire().unwrap();
        let t = thread::spawn(move || stale.record(Outcome::Success));
        breaker.reset();
        for _ in 0..2 {
            breaker.try_acquire().unwrap().record(Outcome::Failure);
        }
        t.join().unwrap();
        assert_eq!(breaker.state(), State::Open);
    });
}

/// A failure admitted in the new generation, recorded between the transition's
/// compare-exchange and its `consecutive.store(gen, 0)`, must not be wiped by that store.
#[test]
fn failure_recorded_during_a_transition_is_not_wiped() {
    model(|| {
        let breaker = closed(2);
        let r = {
            let b = breaker.clone();
            thread::spawn(move || b.reset())
        };
        let p1 = breaker.try_acquire().unwrap();
        let g1 = format!("{p1:?}");
        p1.record(Outcome::Failure);
        let p2 = breaker.try_acquire().unwrap();
        let g2 = format!("{p2:?}");
        p2.record(Outcome::Failure);
        r.join().unwrap();
        if g1.contains("generation: 1") && g2.contains("generation: 1") {
            assert_eq!(
                breaker.state(),
                State::Open,
                "both failures were in generation 1"
            );
        }
    });
}

// ===== memory: a call in flight keeps its breaker; the last holder frees it =====
//
// The breaker's `Arc` is loom's under `--cfg seawall_loom`, so loom also fails a model whose
// execution ends with the breaker still allocated, in any interleaving.

/// Sets its flag when dropped (it lives in the breaker's listener, so: when the breaker is).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// A breaker tripping on one failure, counting its trips, and a flag set when it is freed.
fn watched(
    max_probes: u32,
) -> (
    CircuitBreaker,
    ManualClock,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
) {
    let clock = ManualClock::new();
    let trips = Arc::new(AtomicUsize::new(0));
    let freed = Arc::new(AtomicBool::new(false));
    let breaker = {
        let (trips, flag) = (trips.clone(), DropFlag(freed.clone()));
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(Duration::from_secs(1))
            .half_open_max_calls(max_probes)
            .clock(Clock::from(clock.clone()))
            .on_state_change(move |_, c| {
                let _owned = &flag;
                if c.to == State::Open {
                    trips.fetch_add(1, SeqCst);
                }
            })
            .build()
            .unwrap()
    };
    (breaker, clock, trips, freed)
}

#[test]
fn a_permit_recording_while_the_last_handle_drops_still_trips_and_frees_the_breaker() {
    model(|| {
        let (breaker, _clock, trips, freed) = watched(1);
        let permit = breaker.try_acquire().unwrap();
        let call = thread::spawn(move || permit.record(Outcome::Failure));
        drop(breaker); // the last handle, racing the recording
        call.join().unwrap();
        assert_eq!(trips.load(SeqCst), 1, "the outcome was recorded");
        assert!(freed.load(SeqCst), "the last holder freed the breaker");
    });
}

#[test]
fn a_cancelled_probe_racing_the_last_handle_and_a_new_probe_frees_everything() {
    model(|| {
        let (breaker, clock, _trips, freed) = watched(1);
        breaker.record(Outcome::Failure);
        clock.advance(Duration::from_secs(1));
        let probe = breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        let cancelling = thread::spawn(move || drop(probe)); // cancelled: frees its slot
        let other = {
            let breaker = breaker.clone();
            thread::spawn(move || {
                // Admitted only once the slot is free; recorded after the last handle drops.
                breaker.try_acquire().ok()
            })
        };
        drop(breaker);
        cancelling.join().unwrap();
        if let Some(permit) = other.join().unwrap() {
            assert!(permit.is_probe());
            assert!(!freed.load(SeqCst), "a permit keeps its breaker alive");
            permit.record(Outcome::Success);
        }
        assert!(freed.load(SeqCst), "the last holder freed the breaker");
    });
}
