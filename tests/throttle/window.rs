//! The window: verdicts older than the window are forgotten (between 0.9 × and 1 × the
//! window after they were counted), on a manual clock and on paused tokio time alike.

use crate::prelude::*;

#[test]
fn verdicts_leave_the_window_bucket_by_bucket() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0); // window 10 s, buckets of 1 s
    t.record(Outcome::Failure); // t = 0
    time.advance(Duration::from_millis(4_500));
    t.record(Outcome::Failure); // t = 4.5 s
    t.record(Outcome::Failure);
    assert_eq!(t.snapshot().requests, 3);
    assert_eq!(t.probability(), 0.75);

    time.advance(Duration::from_millis(5_499)); // t = 9.999 s: still in bucket 9
    assert_eq!(t.snapshot().requests, 3);
    time.advance(Duration::from_millis(1)); // t = 10 s: bucket 0 leaves
    let s = t.snapshot();
    assert_eq!((s.requests, s.probability), (2, 2.0 / 3.0));
    time.advance(Duration::from_secs(5)); // t = 15 s: bucket 4 left too
    let s = t.snapshot();
    assert_eq!((s.requests, s.accepts, s.probability), (0, 0, 0.0));
    // Nothing is shed any more.
    for _ in 0..100 {
        t.try_acquire()
            .expect("an empty window sheds nothing")
            .record(Outcome::Success);
    }
}

#[test]
fn an_admission_moves_the_window_without_a_snapshot() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    for _ in 0..50 {
        t.record(Outcome::Failure);
    }
    assert!(t.probability() > 0.9);
    time.advance(Duration::from_secs(10));
    // The first call of the new bucket settles: the old rejections are gone before it draws.
    t.try_acquire()
        .expect("the window is empty by now")
        .record(Outcome::Success);
    assert_eq!(t.probability(), 0.0);
}

#[test]
fn accepts_of_a_long_healthy_spell_do_not_hide_an_outage() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    for _ in 0..1_000 {
        t.record(Outcome::Success);
    }
    // An hour without a single call, then the backend rejects everything.
    time.advance(Duration::from_secs(3_600));
    t.record(Outcome::Failure);
    t.record(Outcome::Failure);
    let s = t.snapshot();
    assert_eq!(
        (s.requests, s.accepts),
        (2, 0),
        "the old accepts are forgotten"
    );
    assert_eq!(s.probability, 2.0 / 3.0);
}

#[tokio::test(start_paused = true)]
async fn old_rejections_are_forgotten_after_the_window_on_paused_time() {
    let t = AdaptiveThrottle::builder()
        .window(Duration::from_secs(120))
        .seed(1)
        .build()
        .unwrap();
    for _ in 0..100 {
        t.record(Outcome::Failure);
    }
    // The first call was counted, the others shed or counted: 100 requests either way.
    assert_eq!(t.snapshot().requests, 100);
    assert!(t.probability() > 0.9);
    tokio::time::advance(Duration::from_secs(107)).await; // 0.9 × window: still counted
    assert_eq!(t.snapshot().requests, 100);
    tokio::time::advance(Duration::from_secs(13)).await; // the whole window
    assert_eq!(
        t.snapshot(),
        Snapshot {
            requests: 0,
            accepts: 0,
            probability: 0.0,
            k: 2.0,
            window: Duration::from_secs(120),
        }
    );
    let r = t.call(|| async { Ok::<_, Overloaded>(1) }).await;
    assert_eq!(r, Ok(1));
}
