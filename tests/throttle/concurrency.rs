//! Many threads at once through one throttle: no verdict is lost or counted twice, every
//! rejection is published before the next decision once its caller returned, and the accepts
//! never outrun the requests. Bounded: a fixed number of calls per thread.

use crate::prelude::*;
use std::sync::Barrier;
use std::thread;

const THREADS: usize = 6;
const CALLS: usize = 20_000;

/// Every thread's tally: (requests it caused, accepts it recorded).
fn hammer(t: &AdaptiveThrottle, fail_every: usize) -> (u64, u64) {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let (t, barrier) = (t.clone(), &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let (mut requests, mut accepts) = (0, 0);
                    for i in 0..CALLS {
                        requests += 1;
                        match t.try_acquire() {
                            Ok(permit) if (i + n) % fail_every == 0 => {
                                permit.record(Outcome::Failure);
                            }
                            Ok(permit) => {
                                permit.record(Outcome::Success);
                                accepts += 1;
                            }
                            Err(throttled) => {
                                assert!(throttled.accepts() <= throttled.requests());
                                assert!(throttled.probability() > 0.0);
                            }
                        }
                    }
                    (requests, accepts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(r, a), (r2, a2)| (r + r2, a + a2))
    })
}

#[test]
fn many_threads_lose_no_verdict_and_count_none_twice() {
    for fail_every in [2, 3, 1_000] {
        let time = ManualClock::new();
        let t = throttle(&time, 2.0);
        let (requests, accepts) = hammer(&t, fail_every);
        let s = t.snapshot();
        assert_eq!(
            (s.requests, s.accepts),
            (requests, accepts),
            "fail_every {fail_every}"
        );
        assert_eq!(s.probability, rejection_probability(requests, accepts, 2.0));
    }
}

#[test]
fn the_first_decision_after_concurrent_rejections_counts_them_all() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            let (t, barrier) = (&t, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..200 {
                    // `record` sheds or counts a rejection: one request either way.
                    t.record(Outcome::Failure);
                }
            });
        }
    });
    // Every rejection was folded by its caller, by the caller settling at that moment, or
    // (if that one had settled for others too often in a row) is announced for the next
    // settlement, which the next admission makes before it draws.
    let n = (THREADS * 200) as u64;
    let published = t.probability();
    assert!(published <= rejection_probability(n, 0, 2.0));
    match t.try_acquire() {
        Ok(permit) => {
            assert_eq!(t.probability(), rejection_probability(n, 0, 2.0));
            drop(permit); // counts nothing
        }
        Err(throttled) => {
            assert_eq!(throttled.requests(), n + 1);
            assert_eq!(throttled.probability(), rejection_probability(n, 0, 2.0));
        }
    }
}

#[test]
fn the_window_moves_under_concurrent_calls_without_counting_more_than_was_made() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (requests, accepts) = thread::scope(|s| {
        // Time moves while the callers run: buckets roll under them.
        let mover = s.spawn(|| {
            for _ in 0..200 {
                if stop.load(SeqCst) {
                    break;
                }
                time.advance(Duration::from_millis(50));
                let snap = t.snapshot();
                assert!(snap.accepts <= snap.requests);
                thread::yield_now();
            }
        });
        let totals = hammer(&t, 3);
        stop.store(true, SeqCst);
        mover.join().unwrap();
        totals
    });
    let s = t.snapshot();
    assert!(s.requests <= requests && s.accepts <= accepts);
    assert!(s.accepts <= s.requests);
}
