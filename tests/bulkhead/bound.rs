//! The bound: never more than `max_concurrent` calls inside the dependency, as the
//! dependency itself measures it, under 100 callers at once.

use crate::prelude::*;

/// 100 callers at once through clones of one layered service, each call lasting 1..=7 ms.
async fn hundred_callers(bulkhead: &Bulkhead, gauge: &Gauge) -> Vec<Result<u64, BoxError>> {
    let svc = bulkhead.layer().layer(gauge.service());
    join_all((0..100u64).map(|i| svc.clone().oneshot(i % 7 + 1))).await
}

#[tokio::test(start_paused = true)]
async fn waiting_callers_all_get_through_but_never_more_than_max_concurrent_at_once() {
    for n in [1, 3, 8] {
        let b = bulkhead(n, Duration::from_secs(60));
        let gauge = Gauge::default();
        let results = hundred_callers(&b, &gauge).await;
        assert!(results.iter().all(Result::is_ok), "n = {n}");
        assert_eq!(gauge.calls(), 100);
        assert_eq!(gauge.max(), n, "the bound was broken or never reached");
        assert_eq!(gauge.inside(), 0);
        let s = b.snapshot();
        assert_eq!((s.available, s.in_flight, s.waiting), (n, 0, 0));
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_wait_exactly_max_concurrent_of_a_burst_get_in_and_the_rest_are_refused() {
    let n = 5;
    let b = bulkhead(n, Duration::ZERO);
    let gauge = Gauge::default();
    let start = Instant::now();
    let results = hundred_callers(&b, &gauge).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, n);
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(full(err).waited(), Duration::ZERO);
    }
    assert_eq!(gauge.calls(), n, "a refused call reached the dependency");
    assert_eq!(gauge.max(), n);
    // The admitted calls lasted 1..=5 ms; nobody waited.
    assert_eq!(start.elapsed(), ms(5));
}

#[test]
fn the_bound_holds_across_threads() {
    // A real multi-thread runtime (paused time needs the current-thread one, so this one
    // runs on the real clock, with short calls): the bound is the semaphore's, not luck.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = bulkhead(4, Duration::from_secs(60));
    let gauge = Gauge::default();
    let svc = b.layer().layer(gauge.service());
    let results = std::thread::spawn(move || {
        rt.block_on(async {
            let handles: Vec<_> = (0..100)
                .map(|_| tokio::spawn(svc.clone().oneshot(1)))
                .collect();
            join_all(handles).await
        })
    })
    .join()
    .unwrap();
    assert!(results.into_iter().all(|r| r.unwrap().is_ok()));
    assert_eq!(gauge.calls(), 100);
    assert!(gauge.max() <= 4, "max inside was {}", gauge.max());
    assert_eq!(b.snapshot().available, 4);
}
