//! A call cancelled at any poll counts nothing: dropping the response future (or the bare
//! call's future) before the backend answered leaves the window as it was, and frees what
//! the call held.

use crate::prelude::*;

/// A backend whose answer takes `polls` polls.
fn slow(
    polls: usize,
    accept: bool,
) -> impl Service<
    u32,
    Response = u32,
    Error = Overloaded,
    Future = PendingFor<Result<u32, Overloaded>>,
> + Clone {
    tower::service_fn(move |x: u32| PendingFor {
        polls,
        result: Some(if accept { Ok(x) } else { Err(Overloaded) }),
    })
}

#[test]
fn a_layered_call_dropped_at_any_poll_counts_nothing() {
    for accept in [true, false] {
        for dropped_after in 0..4 {
            let time = ManualClock::new();
            let t = throttle(&time, 2.0);
            t.record(Outcome::Failure); // a settled window to compare with
            let before = t.snapshot();
            let mut svc = t.layer().layer(slow(3, accept));
            {
                let mut fut = Box::pin(svc.call(1));
                for _ in 0..dropped_after {
                    assert!(poll_once(fut.as_mut()).is_pending());
                }
            }
            assert_eq!(
                t.snapshot(),
                before,
                "accept {accept}, dropped after {dropped_after}"
            );
            // The same call, not dropped, counts once.
            let mut fut = Box::pin(svc.call(1));
            let mut polls = 0;
            while poll_once(fut.as_mut()).is_pending() {
                polls += 1;
                assert!(polls < 10);
            }
            let after = t.snapshot();
            assert_eq!(after.requests, before.requests + 1);
            assert_eq!(after.accepts, before.accepts + u64::from(accept));
        }
    }
}

#[test]
fn a_bare_call_dropped_at_any_poll_counts_nothing_and_a_dropped_permit_neither() {
    for dropped_after in 0..4 {
        let time = ManualClock::new();
        let t = throttle(&time, 2.0);
        t.record(Outcome::Failure);
        let before = t.snapshot();
        {
            let mut fut = Box::pin(t.call(|| PendingFor {
                polls: 3,
                result: Some(Err::<u32, _>(Overloaded)),
            }));
            for _ in 0..dropped_after {
                assert!(poll_once(fut.as_mut()).is_pending());
            }
        }
        assert_eq!(t.snapshot(), before, "dropped after {dropped_after}");
    }
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    for _ in 0..10 {
        if let Ok(permit) = t.try_acquire() {
            drop(permit);
        }
    }
    assert_eq!(t.snapshot().requests, 0);
}

#[test]
fn a_call_in_flight_keeps_its_throttle_and_counts_after_every_handle_is_gone() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let observer = t.clone();
    let mut svc = t.layer().layer(slow(2, false));
    drop(t);
    let mut fut = Box::pin(svc.call(1));
    drop(svc);
    assert!(poll_once(fut.as_mut()).is_pending());
    assert!(poll_once(fut.as_mut()).is_pending());
    assert!(matches!(poll_once(fut.as_mut()), Poll::Ready(Err(_))));
    assert_eq!(observer.snapshot().requests, 1);
}
