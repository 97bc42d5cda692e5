//! A bulkhead without a wait refuses at once, with `BulkheadFull`, without calling the
//! dependency.

use crate::prelude::*;

#[tokio::test(start_paused = true)]
async fn zero_wait_refuses_at_once_with_bulkhead_full() {
    let b = bulkhead(2, Duration::ZERO);
    let gauge = Gauge::default();
    let mut svc = b.layer().layer(gauge.service());
    let _a = b.try_acquire().unwrap();
    let _b = b.try_acquire().unwrap();

    let start = Instant::now();
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "a zero wait waited");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::BulkheadFull);
    let refusal = full(&err);
    assert_eq!(refusal, BulkheadFull::new(2, Duration::ZERO));
    assert_eq!(err.to_string(), "bulkhead full; all 2 slots busy");
    assert_eq!(gauge.calls(), 0, "a refused call reached the dependency");
}

#[tokio::test(start_paused = true)]
async fn the_refusal_is_decided_in_call_and_its_future_is_ready_at_once() {
    let b = bulkhead(1, Duration::ZERO);
    let mut svc = b.layer().layer(Gauge::default().service());
    let _held = b.try_acquire().unwrap();
    let mut fut = pin!(svc.ready().await.unwrap().call(1));
    match poll!(fut.as_mut()) {
        std::task::Poll::Ready(Err(err)) => assert_eq!(full(&err).max_concurrent(), 1),
        other => panic!(
            "not refused on the first poll: {:?}",
            other.map(|r| r.is_ok())
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn a_slot_freed_by_an_ended_call_is_taken_by_the_next() {
    let b = bulkhead(1, Duration::ZERO);
    let gauge = Gauge::default();
    let mut svc = b.layer().layer(gauge.service());
    for _ in 0..3 {
        assert_eq!(svc.ready().await.unwrap().call(10).await.unwrap(), 10);
    }
    assert_eq!(gauge.calls(), 3);
    // The slot goes back when the answer is ready, before the future is dropped.
    let mut fut = pin!(svc.ready().await.unwrap().call(5));
    assert!(poll!(fut.as_mut()).is_pending());
    assert_eq!(b.snapshot().available, 0);
    tokio::time::advance(ms(5)).await;
    assert!(matches!(poll!(fut.as_mut()), std::task::Poll::Ready(Ok(5))));
    assert_eq!(b.snapshot().available, 1, "the slot outlived the answer");
}
