//! Model checking of the adaptive throttle's accounting with loom: every interleaving (up to
//! a preemption bound) of two or three threads recording verdicts, so settlements race one
//! another and the counts left on the stripes for a busy settler.
//!
//! Run: `RUSTFLAGS="--cfg seawall_loom" cargo test --release --test loom throttle --
//! --nocapture` (`LOOM_MAX_PREEMPTIONS` overrides the bound of 2 used here).
//!
//! Time never moves (a `ManualClock` nobody advances), so the window holds every verdict and
//! the counts are exact. Under loom the throttle has 2 stripes and a settling caller settles
//! for others at most once more before it leaves the rest to the next call, so the models
//! reach that hand-over too. Draws are seeded (a loom atomic counter).
#![cfg(seawall_loom)]

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::Relaxed as StdRelaxed;

use loom::thread;
use seawall::clock::ManualClock;
use seawall::throttle::{rejection_probability, AdaptiveThrottle};
use seawall::Outcome;

/// Checks `f` under loom and prints how many interleavings were explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    static RUNS: StdAtomicUsize = StdAtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let before = RUNS.load(StdRelaxed);
    let started = std::time::Instant::now();
    builder.check(move || {
        RUNS.fetch_add(1, StdRelaxed);
        f();
    });
    eprintln!(
        "{name}: {} interleavings in {:.1?}",
        RUNS.load(StdRelaxed) - before,
        started.elapsed()
    );
}

fn throttle() -> AdaptiveThrottle {
    AdaptiveThrottle::builder()
        .clock(ManualClock::new())
        .seed(1)
        .build()
        .unwrap()
}

/// Two rejections at once: when both callers have returned, the published probability
/// counts both, with no settlement after them (whoever settled last folded the other's).
#[test]
fn two_concurrent_rejections_are_both_published_when_they_return() {
    model("two rejections", || {
        let t = throttle();
        let other = t.clone();
        let h = thread::spawn(move || other.record(Outcome::Failure));
        // `record` sheds or counts a rejection: one request either way.
        t.record(Outcome::Failure);
        h.join().unwrap();
        assert_eq!(t.probability(), rejection_probability(2, 0, 2.0));
    });
}

/// Three rejections at once, where a settling caller may leave counts for the next
/// settlement: the first decision after they return counts all three.
#[test]
fn the_next_decision_counts_rejections_a_busy_settler_left_behind() {
    model("three rejections, then a decision", || {
        let t = throttle();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let t = t.clone();
                thread::spawn(move || t.record(Outcome::Failure))
            })
            .collect();
        t.record(Outcome::Failure);
        for h in hs {
            h.join().unwrap();
        }
        match t.try_acquire() {
            Ok(permit) => {
                assert_eq!(t.probability(), rejection_probability(3, 0, 2.0));
                drop(permit);
            }
            Err(throttled) => {
                assert_eq!(throttled.requests(), 4);
                assert_eq!(throttled.probability(), rejection_probability(3, 0, 2.0));
            }
        }
    });
}

/// An accept (on its stripe, no settlement: nothing is shed yet) racing a rejection (a
/// settlement): each is counted exactly once, and an accept never without its request.
#[test]
fn an_accept_racing_a_settlement_is_counted_exactly_once() {
    model("accept and rejection", || {
        let t = throttle();
        let other = t.clone();
        let h = thread::spawn(move || {
            let s = other.snapshot();
            assert!(s.accepts <= s.requests);
            other.try_acquire().unwrap().record(Outcome::Success);
        });
        t.try_acquire().unwrap().record(Outcome::Failure);
        h.join().unwrap();
        let s = t.snapshot();
        assert_eq!((s.requests, s.accepts), (2, 1));
        assert_eq!(s.probability, 0.0);
    });
}
