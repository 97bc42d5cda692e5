//! Exact rejection probabilities on scripted verdicts: after every verdict, the probability
//! the next call is drawn against is the SRE formula over the window's counts, and the
//! draws shed calls at that rate (reproducibly, with a seed).

use crate::prelude::*;

/// Records `n` verdicts through permits (never shed: each is asked while the probability is
/// checked to be what the script expects, and only `record` is timed against it).
fn record(t: &AdaptiveThrottle, outcome: Outcome, n: usize) {
    for _ in 0..n {
        t.record(outcome);
    }
}

#[test]
fn probability_is_the_sre_formula_after_every_verdict() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    // 10 accepts, then rejections one by one: nothing is shed while requests <= 2 × accepts.
    for _ in 0..10 {
        t.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(t.probability(), 0.0);
    for i in 1..=30u64 {
        // Permits are taken through `try_acquire` only while nothing is shed; afterwards
        // the draw could shed the call, which would count one request more than scripted.
        match t.try_acquire() {
            Ok(permit) => permit.record(Outcome::Failure),
            Err(_) => panic!("shed at a probability of {}", t.probability()),
        }
        let (r, a) = (10 + i, 10);
        assert_eq!(
            t.probability(),
            rejection_probability(r, a, 2.0),
            "after {i}"
        );
        let s = t.snapshot();
        assert_eq!((s.requests, s.accepts), (r, a));
        if i <= 10 {
            assert_eq!(t.probability(), 0.0, "{r} requests <= 2 × {a} accepts");
        }
        if t.probability() > 0.0 {
            break;
        }
    }
    // The first rejection past 2 × accepts: 21 requests, 10 accepts.
    assert_eq!(t.probability(), 1.0 / 22.0);
}

#[test]
fn accepts_while_shedding_lower_the_probability_at_once() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    record(&t, Outcome::Failure, 3); // p = 3 / 4
    assert_eq!(t.probability(), 0.75);
    // A permit taken before: its accept is counted, and settled at once.
    let mut accepted = 0;
    for _ in 0..1_000 {
        if let Ok(permit) = t.try_acquire() {
            permit.record(Outcome::Success);
            accepted += 1;
            break;
        }
    }
    assert_eq!(
        accepted, 1,
        "a call went through within 1000 draws at p < 1"
    );
    let s = t.snapshot();
    assert_eq!(s.accepts, 1);
    assert_eq!(
        t.probability(),
        rejection_probability(s.requests, 1, 2.0),
        "the accept was settled with the sheds before it"
    );
}

#[test]
fn k_of_one_sheds_as_soon_as_a_request_fails() {
    let time = ManualClock::new();
    let t = throttle(&time, 1.0);
    record(&t, Outcome::Success, 5);
    t.record(Outcome::Failure);
    assert_eq!(t.probability(), rejection_probability(6, 5, 1.0));
    assert_eq!(t.probability(), 1.0 / 7.0);
    // Ignored is an accept for the throttle: the backend answered.
    let u = throttle(&time, 1.0);
    u.record(Outcome::Ignored);
    u.record(Outcome::Failure);
    assert_eq!(u.snapshot().accepts, 1);
}

#[test]
fn a_healthy_window_never_sheds_and_never_draws() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    // One rejection in three: requests = 1.5 × accepts < 2 × accepts.
    for i in 0..30_000u32 {
        let permit = t
            .try_acquire()
            .expect("never shed while requests <= k × accepts");
        permit.record(if i % 3 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        });
        if i % 1_000 == 0 {
            time.advance(Duration::from_millis(300));
        }
    }
    assert_eq!(t.probability(), 0.0);
}

#[test]
fn draws_shed_at_the_published_rate_and_repeat_with_the_seed() {
    let run = || {
        let time = ManualClock::new();
        let t = throttle(&time, 2.0);
        record(&t, Outcome::Failure, 3);
        // p = 3/4, then each shed raises it: (n) / (n + 1) after n requests, none accepted.
        let mut decisions = Vec::new();
        for _ in 0..200 {
            let p = t.probability();
            let before = t.snapshot().requests;
            match t.try_acquire() {
                Ok(permit) => {
                    decisions.push(false);
                    permit.record(Outcome::Failure);
                }
                Err(throttled) => {
                    decisions.push(true);
                    assert_eq!(throttled.probability(), p, "drawn against the published p");
                    assert_eq!(throttled.requests(), before + 1, "the shed call counts");
                    assert_eq!(throttled.accepts(), 0);
                }
            }
            let n = before + 1;
            assert_eq!(t.probability(), rejection_probability(n, 0, 2.0));
        }
        decisions
    };
    let a = run();
    assert_eq!(a, run(), "the same seed gives the same decisions");
    let shed = a.iter().filter(|s| **s).count();
    // p runs from 0.75 to 0.995: about 195 of 200 are shed; bounds far from chance.
    assert!((170..200).contains(&shed), "{shed} shed");
}
