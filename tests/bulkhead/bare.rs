//! The bare API (`call`, `try_acquire`, `acquire`) makes the same decisions as the layer.

use crate::prelude::*;

/// One call of a script: starts at `at` ms, lasts `lasts` ms.
#[derive(Debug, Clone, Copy)]
struct Call {
    at: u64,
    lasts: u64,
}

/// What became of a call: its answer (or the refusal's wait) and when it ended, in ms.
type Ending = (Result<u64, Duration>, u64);

async fn through_the_layer(b: &Bulkhead, script: &[Call]) -> (Vec<Ending>, usize) {
    let gauge = Gauge::default();
    let svc = b.layer().layer(gauge.service());
    let start = Instant::now();
    let endings = join_all(script.iter().map(|c| {
        let svc = svc.clone();
        async move {
            tokio::time::sleep(ms(c.at)).await;
            let r = svc.oneshot(c.lasts).await.map_err(|e| full(&e).waited());
            (r, start.elapsed().as_millis() as u64)
        }
    }))
    .await;
    (endings, gauge.max())
}

async fn through_the_bare_call(b: &Bulkhead, script: &[Call]) -> (Vec<Ending>, usize) {
    let gauge = Gauge::default();
    let start = Instant::now();
    let endings = join_all(script.iter().map(|c| {
        let gauge = gauge.clone();
        async move {
            tokio::time::sleep(ms(c.at)).await;
            let r = b.call(|| gauge.run(c.lasts)).await.map_err(|e| match e {
                CallError::Rejected(full) => {
                    assert_eq!(
                        CallError::<BoxError>::Rejected(full).kind(),
                        ErrorKind::BulkheadFull
                    );
                    full.waited()
                }
                CallError::Inner(e) => panic!("the dependency failed: {e}"),
            });
            (r, start.elapsed().as_millis() as u64)
        }
    }))
    .await;
    (endings, gauge.max())
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_and_the_layer_decide_the_same_way() {
    let c = |at, lasts| Call { at, lasts };
    // Two slots; calls pile up, some wait and get in, some run out of time.
    let script = [
        c(0, 100),
        c(0, 30),
        c(10, 50), // waits until 30 (when the second call ends), runs until 80
        c(10, 10), // next slot frees at 80: with a 50 ms wait, refused at 60
        c(20, 10), // refused at 70 with a 50 ms wait
        c(200, 5), // all free again
    ];
    for max_wait in [Duration::ZERO, ms(50), ms(100)] {
        let layer = through_the_layer(&bulkhead(2, max_wait), &script).await;
        let bare = through_the_bare_call(&bulkhead(2, max_wait), &script).await;
        assert_eq!(layer, bare, "max_wait {max_wait:?}");
        assert_eq!(layer.1, 2, "the bound, as the dependency saw it");
        if max_wait == ms(50) {
            let expected: Vec<Ending> = vec![
                (Ok(100), 100),
                (Ok(30), 30),
                (Ok(50), 80),
                (Err(ms(50)), 60),
                (Err(ms(50)), 70),
                (Ok(5), 205),
            ];
            assert_eq!(layer.0, expected);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn try_acquire_holds_a_slot_until_the_permit_is_dropped() {
    let b = bulkhead(2, ms(100));
    let first: Permit = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert!(first.bulkhead().same_bulkhead(&b));
    // `try_acquire` never waits, whatever `max_wait` says.
    assert_eq!(
        b.try_acquire().unwrap_err(),
        BulkheadFull::new(2, Duration::ZERO)
    );
    // The layer agrees that the bulkhead is full: its call waits, then is refused.
    let gauge = Gauge::default();
    let err = b
        .layer()
        .layer(gauge.service())
        .oneshot(1)
        .await
        .unwrap_err();
    assert_eq!(full(&err).waited(), ms(100));
    drop(first);
    assert_eq!(b.snapshot().available, 1);
    assert_eq!(
        b.layer().layer(gauge.service()).oneshot(1).await.unwrap(),
        1
    );
    drop(second);
    assert_eq!(b.snapshot().available, 2);
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_like_the_layer() {
    let b = bulkhead(1, ms(100));
    let held = b.try_acquire().unwrap();
    let start = Instant::now();
    assert_eq!(
        b.acquire().await.unwrap_err(),
        BulkheadFull::new(1, ms(100))
    );
    assert_eq!(start.elapsed(), ms(100));
    let release = async {
        tokio::time::sleep(ms(40)).await;
        drop(held);
    };
    let (permit, ()) = futures::join!(b.acquire(), release);
    assert!(permit.is_ok());
    assert_eq!(start.elapsed(), ms(140));
}

#[tokio::test(start_paused = true)]
async fn clones_and_layers_share_one_bulkhead() {
    let b = bulkhead(1, Duration::ZERO);
    let clone = b.clone();
    let layer = b.layer();
    assert!(layer.bulkhead().same_bulkhead(&clone));
    let svc = layer.layer(Gauge::default().service());
    assert!(svc.bulkhead().same_bulkhead(&b));
    let _held = clone.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    assert!(svc.clone().oneshot(1).await.is_err());
    assert!(!b.same_bulkhead(&bulkhead(1, Duration::ZERO)));
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_passes_the_calls_own_error_through() {
    let b = bulkhead(1, Duration::ZERO);
    let r: Result<u32, CallError<std::io::Error>> = b
        .call(|| async { Err(std::io::Error::other("boom")) })
        .await;
    let err = r.unwrap_err();
    assert!(!err.is_rejected());
    assert_eq!(err.kind(), ErrorKind::Inner);
    assert_eq!(err.to_string(), "boom");
    assert_eq!(b.snapshot().available, 1);
}
