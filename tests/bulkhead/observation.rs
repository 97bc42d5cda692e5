//! Events (admissions, rejections) and snapshots (available, in flight, waiting).

use crate::prelude::*;

#[tokio::test(start_paused = true)]
async fn every_admission_and_rejection_reaches_the_listener_with_its_bulkhead() {
    let seen_by = Arc::new(Mutex::new(Vec::new()));
    let s = seen_by.clone();
    let events = Events::default();
    let b = events
        .listen(Bulkhead::builder().name("db").max_concurrent(1).listener(
            move |b: &Bulkhead, _: &Event| s.lock().unwrap().push(b.name().map(str::to_owned)),
        ))
        .build()
        .unwrap();
    let permit = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    let gauge = Gauge::default();
    assert!(b.layer().layer(gauge.service()).oneshot(1).await.is_err());
    drop(permit);
    assert!(b.call(|| gauge.run(1)).await.is_ok());
    assert_eq!(
        events.take(),
        [
            Event::Admitted {
                waited: Duration::ZERO
            },
            Event::Rejected(BulkheadFull::new(1, Duration::ZERO)),
            Event::Rejected(BulkheadFull::new(1, Duration::ZERO)),
            Event::Admitted {
                waited: Duration::ZERO
            },
        ]
    );
    assert_eq!(
        seen_by.lock().unwrap().as_slice(),
        vec![Some("db".to_owned()); 4]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_emits_nothing() {
    let events = Events::default();
    let b = events
        .listen(Bulkhead::builder().max_concurrent(1).max_wait(ms(100)))
        .build()
        .unwrap();
    let _held = b.try_acquire().unwrap();
    events.take();
    let mut waiter = Box::pin(b.acquire());
    assert!(poll!(waiter.as_mut()).is_pending());
    drop(waiter);
    assert_eq!(events.take(), []);
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_free_busy_and_waiting_slots() {
    let b = bulkhead(2, ms(100));
    let s = b.snapshot();
    assert_eq!(
        s,
        Snapshot {
            max_concurrent: 2,
            available: 2,
            in_flight: 0,
            waiting: 0
        }
    );
    let _a = b.try_acquire().unwrap();
    let _b = b.try_acquire().unwrap();
    let mut w1 = Box::pin(b.acquire());
    let mut w2 = Box::pin(b.acquire());
    assert!(poll!(w1.as_mut()).is_pending());
    assert!(poll!(w2.as_mut()).is_pending());
    let s = b.snapshot();
    assert_eq!((s.available, s.in_flight, s.waiting), (0, 2, 2));
    drop(w1);
    assert_eq!(b.snapshot().waiting, 1);
    // Running out of time leaves the queue too.
    assert!(w2.await.is_err());
    assert_eq!(b.snapshot().waiting, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_listener_loses_no_slot() {
    let b = Bulkhead::builder()
        .max_concurrent(1)
        .listener(|_: &Bulkhead, e: &Event| {
            if matches!(e, Event::Admitted { .. }) {
                panic!("listener bug");
            }
        })
        .build()
        .unwrap();
    let b2 = b.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        b2.try_acquire().map(drop)
    }));
    assert!(r.is_err());
    assert_eq!(
        b.snapshot().available,
        1,
        "the unwinding permit gave its slot back"
    );
}

#[test]
fn debug_output_names_the_bulkhead_and_its_slots() {
    let b = Bulkhead::builder()
        .name("db")
        .max_concurrent(3)
        .build()
        .unwrap();
    let text = format!("{b:?}");
    assert!(
        text.contains("\"db\"") && text.contains("max_concurrent: 3"),
        "{text}"
    );
    assert!(format!("{:?}", b.layer()).contains("BulkheadLayer"));
}
