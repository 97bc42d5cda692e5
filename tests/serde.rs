//! The `serde` feature: snapshots serialise for a health endpoint, with the documented field
//! names, state names and units.
#![cfg(feature = "serde")]

use std::time::Duration;

use seawall::bulkhead::Bulkhead;
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::ManualClock;
use seawall::Outcome;
use serde_json::json;

#[test]
fn a_breaker_snapshot_serialises_with_its_state_name_and_seconds() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .wait_in_open(Duration::from_millis(12_500))
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let closed = serde_json::to_value(breaker.snapshot()).unwrap();
    assert_eq!(closed["state"], json!("closed"));
    assert_eq!(closed["retry_in"], json!(null));
    assert_eq!(closed["failure_rate"], json!(null));

    breaker.record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        serde_json::to_value(breaker.snapshot()).unwrap(),
        json!({
            "state": "open",
            "consecutive_failures": 0,
            "calls": 0,
            "failures": 0,
            "slow_calls": 0,
            "failure_rate": null,
            "slow_call_rate": null,
            "probes_in_flight": 0,
            "probe_successes": 0,
            "retry_in": 12.5,
        })
    );
    assert_eq!(
        serde_json::to_value(State::HalfOpen).unwrap(),
        json!("half_open")
    );
    assert_eq!(
        serde_json::to_value(State::ForcedOpen).unwrap(),
        json!("forced_open")
    );
}

#[test]
fn a_bulkhead_snapshot_serialises_its_slots() {
    let bulkhead = Bulkhead::builder().max_concurrent(3).build().unwrap();
    let _permit = bulkhead.try_acquire().unwrap();
    assert_eq!(
        serde_json::to_value(bulkhead.snapshot()).unwrap(),
        json!({"max_concurrent": 3, "available": 2, "in_flight": 1, "waiting": 0})
    );
}
