//! A cancelled call frees its slot at every point it can be dropped: before its first poll,
//! while waiting, once a slot was handed to it but before it noticed, and while the
//! dependency works. A dropped waiter leaves the queue and takes no slot.

use crate::prelude::*;

/// Drops a call that found a slot free after `polls` polls (the dependency takes 1 s).
#[tokio::test(start_paused = true)]
async fn a_running_call_dropped_after_any_number_of_polls_frees_its_slot() {
    for polls in 0..4 {
        let b = bulkhead(1, Duration::ZERO);
        let gauge = Gauge::default();
        let mut svc = b.layer().layer(gauge.service());
        let mut fut = Box::pin(svc.ready().await.unwrap().call(1_000));
        assert_eq!(b.snapshot().in_flight, 1, "the slot is taken in `call`");
        for _ in 0..polls {
            assert!(poll!(fut.as_mut()).is_pending());
            tokio::time::advance(ms(10)).await;
        }
        drop(fut);
        assert_eq!(b.snapshot().in_flight, 0, "after {polls} polls");
        assert_eq!(gauge.inside(), 0);
        assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), 1);
    }
}

/// Where a waiting call is dropped.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Waiting, polled this many times (0: never polled, so never queued).
    Waiting(usize),
    /// The holder ended and handed its slot to this call, which has not been polled since.
    Handed,
    /// Admitted and calling the dependency, polled this many times since.
    Running(usize),
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_dropped_at_any_stage_leaves_no_slot_taken() {
    let stages = [
        Stage::Waiting(0),
        Stage::Waiting(1),
        Stage::Waiting(2),
        Stage::Handed,
        Stage::Running(1),
        Stage::Running(2),
    ];
    for stage in stages {
        let b = bulkhead(1, Duration::from_secs(10));
        let gauge = Gauge::default();
        let mut svc = b.layer().layer(gauge.service());
        let held = b.try_acquire().unwrap();
        let mut waiter = Box::pin(svc.ready().await.unwrap().call(1_000));
        match stage {
            Stage::Waiting(polls) => {
                for _ in 0..polls {
                    assert!(poll!(waiter.as_mut()).is_pending());
                    tokio::time::advance(ms(10)).await;
                }
                assert_eq!(b.snapshot().waiting, usize::from(polls > 0));
                drop(held);
            }
            Stage::Handed => {
                assert!(poll!(waiter.as_mut()).is_pending());
                drop(held);
                // The slot is the waiter's now, not free.
                assert_eq!(b.snapshot().available, 0);
                assert!(b.try_acquire().is_err());
            }
            Stage::Running(polls) => {
                assert!(poll!(waiter.as_mut()).is_pending());
                drop(held);
                for _ in 0..polls {
                    assert!(poll!(waiter.as_mut()).is_pending());
                }
                assert_eq!(gauge.inside(), 1, "admitted and running");
            }
        }
        drop(waiter);
        let s = b.snapshot();
        assert_eq!(
            (s.available, s.in_flight, s.waiting),
            (1, 0, 0),
            "{stage:?}"
        );
        assert_eq!(gauge.inside(), 0);
        assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_bare_call_dropped_mid_flight_frees_its_slot() {
    let b = bulkhead(1, Duration::ZERO);
    let gauge = Gauge::default();
    for polls in 0..3 {
        let mut fut = Box::pin(b.call(|| gauge.run(1_000)));
        for _ in 0..polls {
            assert!(poll!(fut.as_mut()).is_pending());
        }
        drop(fut);
        assert_eq!(b.snapshot().in_flight, 0, "after {polls} polls");
        assert_eq!(gauge.inside(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn an_outer_timeout_frees_the_slot() {
    let b = bulkhead(1, Duration::ZERO);
    let gauge = Gauge::default();
    let mut svc = ServiceBuilder::new()
        .timeout(ms(50))
        .layer(b.layer())
        .service(gauge.service());
    let err = svc.ready().await.unwrap().call(1_000).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    assert_eq!(b.snapshot().in_flight, 0);
    assert_eq!(svc.ready().await.unwrap().call(10).await.unwrap(), 10);
}
