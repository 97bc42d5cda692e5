//! Adversarial review: circuit breaker.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, State, MAX_HALF_OPEN_CALLS};
use seawall::clock::{Clock, ManualClock};
use seawall::Outcome;

// ----- pieces expected to hold up -----

#[test]
fn review_permit_outlives_every_handle_and_still_trips_and_notifies() {
    let seen = Arc::new(AtomicU32::new(0));
    let s = seen.clone();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .on_state_change(move |b, change| {
            if s.fetch_add(1, Ordering::SeqCst) != 0 {
                return;
            }
            // Re-enter from inside the callback.
            assert_eq!(change.to, State::Open);
            assert!(b.try_acquire().is_err());
            b.force_open();
            b.reset();
            let _ = b.snapshot();
        })
        .clock(Clock::from(ManualClock::new()))
        .build()
        .unwrap();
    let weak_probe = breaker.clone();
    let permit = breaker.try_acquire().unwrap();
    drop(breaker);
    drop(weak_probe);
    permit.record(Outcome::Failure);
    // Open, then ForcedOpen and Closed from inside the callback.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[test]
fn review_half_open_max_calls_at_its_maximum() {
    let time = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .half_open_max_calls(MAX_HALF_OPEN_CALLS)
        .wait_in_open(Duration::from_secs(1))
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap();
    breaker.record(Outcome::Failure);
    time.advance(Duration::from_secs(1));
    let permits: Vec<_> = (0..MAX_HALF_OPEN_CALLS)
        .map(|_| breaker.try_acquire().expect("a probe slot"))
        .collect();
    assert!(breaker.try_acquire().is_err(), "every slot taken");
    assert_eq!(breaker.snapshot().probes_in_flight, MAX_HALF_OPEN_CALLS);
    for p in permits {
        p.record(Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn review_stale_probe_across_many_transitions_is_ignored() {
    let time = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .half_open_max_calls(1)
        .wait_in_open(Duration::from_secs(1))
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap();
    breaker.record(Outcome::Failure);
    time.advance(Duration::from_secs(1));
    let old = breaker.try_acquire().unwrap();
    for _ in 0..100_000 {
        breaker.force_open();
        breaker.disable();
        breaker.reset();
    }
    breaker.record(Outcome::Failure);
    time.advance(Duration::from_secs(1));
    let current = breaker.try_acquire().unwrap();
    assert!(current.is_probe());
    drop(old);
    assert!(
        breaker.try_acquire().is_err(),
        "the stale drop freed nothing"
    );
    current.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}
