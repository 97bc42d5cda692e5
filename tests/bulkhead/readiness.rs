//! tower's readiness contract: `poll_ready` takes no slot, and a call that waits for a slot
//! calls a service that was made ready.

use crate::prelude::*;
use tower_test::mock;

#[tokio::test(start_paused = true)]
async fn readiness_takes_no_slot() {
    let b = bulkhead(1, Duration::ZERO);
    let gauge = Gauge::default();
    let mut readied: Vec<_> = (0..5).map(|_| b.layer().layer(gauge.service())).collect();
    for svc in &mut readied {
        svc.ready().await.unwrap(); // ready, and never called
    }
    assert_eq!(b.snapshot().available, 1);
    // Unlike tower's `ConcurrencyLimit`, whose readied clones would each hold a slot.
    assert!(b.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_calls_the_service_it_was_readied_on() {
    let b = bulkhead(1, Duration::from_secs(1));
    let (inner, mut handle) = mock::pair::<u64, u64>();
    let mut svc = b.layer().layer(inner);
    let held = b.try_acquire().unwrap();

    // The mock panics when called without `poll_ready` first (its readiness is per clone).
    let waiter = tokio::spawn(svc.ready().await.unwrap().call(7));
    tokio::task::yield_now().await;
    assert_eq!(b.snapshot().waiting, 1);
    drop(held);
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, 7);
    respond.send_response(70);
    assert_eq!(waiter.await.unwrap().unwrap(), 70);

    // The clone left behind is readied before the next call, as usual.
    let next = tokio::spawn(svc.ready().await.unwrap().call(8));
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, 8);
    respond.send_response(80);
    assert_eq!(next.await.unwrap().unwrap(), 80);
}

#[tokio::test(start_paused = true)]
async fn an_inner_service_that_is_not_ready_makes_the_bulkhead_not_ready() {
    let b = bulkhead(1, Duration::ZERO);
    let (inner, mut handle) = mock::pair::<u64, u64>();
    let mut svc = b.layer().layer(inner);
    handle.allow(0);
    assert!(poll!(svc.ready()).is_pending());
    assert_eq!(
        b.snapshot().available,
        1,
        "a not-ready inner service holds no slot"
    );
    handle.allow(1);
    svc.ready().await.unwrap();
}
