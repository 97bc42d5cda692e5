//! The bounded wait: a call that finds every slot busy waits up to `max_wait`, is admitted
//! the moment a slot frees within it, and is refused when it runs out, at exactly
//! `max_wait`. Waiting calls are admitted in arrival order.

use crate::prelude::*;

#[tokio::test(start_paused = true)]
async fn a_waiting_call_is_admitted_the_moment_a_slot_frees() {
    let events = Events::default();
    let b = events
        .listen(Bulkhead::builder().max_concurrent(1).max_wait(ms(100)))
        .build()
        .unwrap();
    let gauge = Gauge::default();
    let svc = b.layer().layer(gauge.service());
    let start = Instant::now();

    let holder = svc.clone().oneshot(30);
    let waiter = async {
        let r = svc.clone().oneshot(20).await;
        (r.unwrap(), start.elapsed())
    };
    let (held, (waited, at)) = futures::join!(holder, waiter);
    assert_eq!(held.unwrap(), 30);
    assert_eq!(waited, 20);
    assert_eq!(at, ms(30 + 20), "admitted at 30 ms, answered 20 ms later");
    assert_eq!(gauge.max(), 1);
    assert_eq!(
        events.take(),
        [
            Event::Admitted {
                waited: Duration::ZERO
            },
            Event::Admitted { waited: ms(30) },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_is_refused_at_exactly_max_wait() {
    let events = Events::default();
    let b = events
        .listen(Bulkhead::builder().max_concurrent(1).max_wait(ms(100)))
        .build()
        .unwrap();
    let gauge = Gauge::default();
    let svc = b.layer().layer(gauge.service());
    let start = Instant::now();

    let holder = svc.clone().oneshot(1_000);
    let waiter = async {
        let err = svc.clone().oneshot(5).await.unwrap_err();
        (err, start.elapsed())
    };
    let (held, (err, at)) = futures::join!(holder, waiter);
    assert_eq!(held.unwrap(), 1_000);
    assert_eq!(at, ms(100));
    assert_eq!(full(&err), BulkheadFull::new(1, ms(100)));
    assert_eq!(err.to_string(), "bulkhead full; all 1 slots busy for 100ms");
    assert_eq!(gauge.calls(), 1, "the refused call reached the dependency");
    assert_eq!(
        events.take()[1..],
        [Event::Rejected(BulkheadFull::new(1, ms(100)))]
    );
    assert_eq!(b.snapshot().waiting, 0);
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_measured_from_call_not_from_the_first_poll() {
    let b = bulkhead(1, ms(100));
    let mut svc = b.layer().layer(Gauge::default().service());
    let _held = b.try_acquire().unwrap();
    let start = Instant::now();
    let fut = svc.ready().await.unwrap().call(1);
    tokio::time::advance(ms(60)).await;
    let err = fut.await.unwrap_err();
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(full(&err).waited(), ms(100));
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_are_admitted_in_arrival_order_and_newcomers_do_not_overtake() {
    let b = bulkhead(1, Duration::from_secs(10));
    let gauge = Gauge::default();
    let svc = b.layer().layer(gauge.service());
    let held = b.try_acquire().unwrap();
    // Three waiters, queued in order 11, 12, 13 (each polled once, so queued).
    let mut waiters: Vec<_> = [11, 12, 13]
        .into_iter()
        .map(|req| Box::pin(svc.clone().oneshot(req)))
        .collect();
    for w in &mut waiters {
        assert!(poll!(w.as_mut()).is_pending());
    }
    assert_eq!(b.snapshot().waiting, 3);
    drop(held);
    // A newcomer that does not wait finds no slot: the freed one is owed to the first waiter.
    assert!(b.try_acquire().is_err());
    let results = join_all(waiters).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(gauge.order(), [11, 12, 13]);
    assert_eq!(gauge.max(), 1);
}

#[test]
fn no_timer_means_no_wait() {
    // Outside a tokio runtime there is no timer to bound a wait: refused at once.
    let b = bulkhead(1, ms(100));
    let _held = b.try_acquire().unwrap();
    let r = std::thread::spawn(move || futures::executor::block_on(b.acquire()))
        .join()
        .unwrap();
    assert_eq!(r.unwrap_err(), BulkheadFull::new(1, Duration::ZERO));
}
