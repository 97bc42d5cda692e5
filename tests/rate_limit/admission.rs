//! Exact admission counts, shared limits, and the bare API making the layer's decisions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::clock::ManualClock;
use seawall::rate_limit::{CallError, Event, RateLimited, RateLimiter};
use seawall::retry::{Backoff, Retry};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn counting_service(
    calls: Arc<AtomicU64>,
) -> impl Service<u32, Response = u32, Error = BoxError, Future = impl Send> + Clone {
    service_fn(move |x: u32| {
        calls.fetch_add(1, Ordering::Relaxed);
        async move { Ok::<_, BoxError>(x) }
    })
}

#[tokio::test(start_paused = true)]
async fn admits_exactly_the_burst_at_once_then_one_per_interval() {
    let limiter = RateLimiter::builder()
        .rate(100)
        .per(Duration::from_secs(1))
        .burst(200)
        .build()
        .unwrap();
    let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
    assert_eq!(admitted, 200);
    // One second later: 100 more slots, no more (the rate), and no burst carried over.
    tokio::time::advance(Duration::from_secs(1)).await;
    let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
    assert_eq!(admitted, 100);
    // After a quiet spell of 2 s, the whole burst is back, and only the burst.
    tokio::time::advance(Duration::from_secs(5)).await;
    let admitted = (0..1000).filter(|_| limiter.check().is_ok()).count();
    assert_eq!(admitted, 200);
}

#[tokio::test(start_paused = true)]
async fn a_steady_rate_at_the_limit_is_never_refused() {
    let limiter = RateLimiter::builder().rate(100).burst(1).build().unwrap();
    for _ in 0..500 {
        assert!(limiter.check().is_ok());
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    // Twice the rate: every other call is refused.
    let mut refused = 0;
    for _ in 0..500 {
        refused += usize::from(limiter.check().is_err());
        tokio::time::advance(Duration::from_millis(5)).await;
    }
    assert_eq!(refused, 250);
}

#[test]
fn a_manual_clock_drives_the_limit_without_a_runtime() {
    let manual = ManualClock::new();
    let limiter = RateLimiter::builder()
        .rate(2)
        .per(Duration::from_secs(1))
        .clock(manual.clone())
        .build()
        .unwrap();
    assert!(limiter.check().is_ok());
    assert!(limiter.check().is_ok());
    assert_eq!(
        limiter.check(),
        Err(RateLimited::new(Duration::from_millis(500)))
    );
    manual.advance(Duration::from_millis(499));
    assert_eq!(
        limiter.check(),
        Err(RateLimited::new(Duration::from_millis(1)))
    );
    manual.advance(Duration::from_millis(1));
    assert!(limiter.check().is_ok());
}

#[tokio::test(start_paused = true)]
async fn clones_of_a_service_share_one_limit_as_per_connection_clones_do() {
    let limiter = RateLimiter::builder().rate(10).burst(10).build().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(counting_service(calls.clone()));
    // axum clones the service for each connection; 50 "connections" of 3 calls each.
    let mut ok = 0;
    for _ in 0..50 {
        let mut conn = svc.clone();
        for i in 0..3 {
            let r = conn.ready().await.unwrap().call(i).await;
            ok += usize::from(r.is_ok());
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(calls.load(Ordering::Relaxed), 10);
    // A second layer from the same limiter shares the limit too.
    let other = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(counting_service(calls.clone()));
    let err = other.oneshot(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_never_reaches_the_inner_service_and_says_when_to_come_back() {
    let limiter = RateLimiter::builder().rate(4).burst(1).build().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(counting_service(calls.clone()));
    svc.clone().oneshot(1).await.unwrap();
    tokio::time::advance(Duration::from_millis(100)).await;
    let err = svc.clone().oneshot(2).await.unwrap_err();
    let limited = err.downcast_ref::<RateLimited>().unwrap();
    assert_eq!(limited.retry_after(), Duration::from_millis(150));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn the_bare_api_and_the_layer_make_the_same_decisions() {
    let bare = RateLimiter::builder().rate(10).burst(3).build().unwrap();
    let layered = RateLimiter::builder().rate(10).burst(3).build().unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(layered.layer())
        .service(service_fn(|_: ()| async { Ok::<_, BoxError>(()) }));
    // An irregular schedule of calls, in ms since the start.
    let schedule = [
        0u64, 0, 0, 0, 30, 99, 100, 150, 199, 200, 201, 450, 450, 450, 450,
    ];
    let mut now = 0;
    for at in schedule {
        tokio::time::advance(Duration::from_millis(at - now)).await;
        now = at;
        let b: Result<(), CallError<BoxError>> = bare.call(|| async { Ok(()) }).await;
        let l = svc.ready().await.unwrap().call(()).await;
        let b_wait = b.err().map(|e| match e {
            CallError::RateLimited(r) => r.retry_after(),
            CallError::Inner(_) => unreachable!(),
        });
        let l_wait = l
            .err()
            .map(|e| e.downcast_ref::<RateLimited>().unwrap().retry_after());
        assert_eq!(b_wait, l_wait, "at {at} ms");
    }
}

#[tokio::test(start_paused = true)]
async fn seawalls_retry_does_not_retry_a_rate_limit_refusal() {
    let refusals = Arc::new(AtomicU64::new(0));
    let counter = refusals.clone();
    let limiter = RateLimiter::builder()
        .rate(1)
        .listener(move |e: &Event| {
            if matches!(e, Event::RateLimited(_)) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(limiter.layer())
        .service(counting_service(calls.clone()));
    svc.clone().oneshot(1).await.unwrap();
    let err = svc.oneshot(2).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
    assert_eq!(refusals.load(Ordering::Relaxed), 1, "one refusal: no retry");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}
