//! Fault injection through tower and the bare call: seeded rates, latency on paused time,
//! the three kinds of fault, the run-time switch, and a rehearsal: a stack with retry and a
//! breaker in front of a dependency that chaos makes flaky.
#![cfg(feature = "chaos")]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::chaos::{Chaos, InjectedFault};
use seawall::circuit_breaker::CircuitBreaker;
use seawall::retry::{Backoff, Jitter, Retry};
use seawall::{BoxError, ErrorKind};
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn counting() -> (
    impl Service<
            u32,
            Response = u32,
            Error = BoxError,
            Future = impl std::future::Future<Output = Result<u32, BoxError>> + Send,
        > + Clone,
    Arc<AtomicU32>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let svc = service_fn(move |x: u32| {
        c.fetch_add(1, Ordering::Relaxed);
        async move { Ok::<u32, BoxError>(x) }
    });
    (svc, calls)
}

#[tokio::test(start_paused = true)]
async fn a_fault_never_reaches_the_dependency_and_the_rate_holds_for_a_seed() {
    let chaos = Chaos::builder().fault_rate(0.2).seed(11).build().unwrap();
    let (inner, calls) = counting();
    let mut svc = ServiceBuilder::new().layer(chaos.layer()).service(inner);
    let mut faults = 0;
    for i in 0..5_000 {
        match svc.ready().await.unwrap().call(i).await {
            Ok(v) => assert_eq!(v, i),
            Err(e) => {
                assert!(e.is::<InjectedFault>());
                assert_eq!(ErrorKind::of(&*e), ErrorKind::Inner);
                faults += 1;
            }
        }
    }
    assert!(
        (900..1_100).contains(&faults),
        "{faults} faults in 5000 at 20 %"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 5_000 - faults);

    // The same seed, the same faults, call for call.
    let again = Chaos::builder().fault_rate(0.2).seed(11).build().unwrap();
    let (inner, _) = counting();
    let mut svc = ServiceBuilder::new().layer(again.layer()).service(inner);
    let mut faults_again = 0;
    for i in 0..5_000 {
        faults_again += u32::from(svc.ready().await.unwrap().call(i).await.is_err());
    }
    assert_eq!(faults_again, faults);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_by_exactly_the_configured_time() {
    let chaos = Chaos::builder()
        .latency(1.0, Duration::from_millis(250))
        .build()
        .unwrap();
    let (inner, _) = counting();
    let svc = ServiceBuilder::new().layer(chaos.layer()).service(inner);
    let start = Instant::now();
    assert_eq!(svc.oneshot(3).await.unwrap(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn faults_can_be_an_error_of_your_own_or_a_response() {
    let chaos = Chaos::builder().fault_rate(1.0).build().unwrap();
    let (inner, calls) = counting();
    let reset = ServiceBuilder::new()
        .layer(
            chaos
                .layer()
                .error_with(|| io::Error::from(io::ErrorKind::ConnectionReset).into()),
        )
        .service(inner.clone());
    let err = reset.oneshot(1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionReset)
    );
    let unavailable = ServiceBuilder::new()
        .layer(chaos.layer().respond_with(|| 503u32))
        .service(inner);
    assert_eq!(unavailable.oneshot(1).await.unwrap(), 503);
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn switching_off_at_run_time_stops_every_clone_at_once() {
    let chaos = Chaos::builder().fault_rate(1.0).build().unwrap();
    let (inner, _) = counting();
    let svc = ServiceBuilder::new().layer(chaos.layer()).service(inner);
    let other = svc.clone();
    assert!(svc.clone().oneshot(1).await.is_err());
    chaos.set_enabled(false);
    assert_eq!(svc.oneshot(1).await.unwrap(), 1);
    assert_eq!(other.oneshot(2).await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_decides_like_the_layer() {
    let chaos = Chaos::builder().fault_rate(0.5).seed(3).build().unwrap();
    let twin = Chaos::builder().fault_rate(0.5).seed(3).build().unwrap();
    let (inner, _) = counting();
    let mut svc = ServiceBuilder::new().layer(twin.layer()).service(inner);
    for i in 0..200 {
        let bare = chaos.call(|| async move { Ok::<_, BoxError>(i) }).await;
        let layered = svc.ready().await.unwrap().call(i).await;
        assert_eq!(bare.is_ok(), layered.is_ok(), "call {i}");
    }
}

/// A rehearsal: chaos makes 30 % of calls fail; retry recovers almost all of them, and the
/// breaker (threshold 5 in a row) stays closed. Then chaos fails everything: the breaker
/// opens and calls fail fast, never reaching chaos's dependency.
#[tokio::test(start_paused = true)]
async fn a_rehearsal_through_retry_and_a_breaker() {
    let chaos = Chaos::builder().fault_rate(0.3).seed(5).build().unwrap();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(5)
        .build()
        .unwrap();
    let retry = Retry::builder()
        .no_budget()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .build()
        .unwrap();
    let (inner, calls) = counting();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(breaker.layer())
        .layer(chaos.layer())
        .service(inner);
    let mut ok = 0;
    for i in 0..300 {
        ok += u32::from(svc.ready().await.unwrap().call(i).await.is_ok());
    }
    // 1 - 0.3^4 of the calls succeed: about 297 of 300.
    assert!(ok >= 290, "{ok}");

    let chaos_all = Chaos::builder().fault_rate(1.0).build().unwrap();
    let (inner, calls_all) = counting();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(5)
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(breaker.layer())
        .layer(chaos_all.layer())
        .service(inner);
    for i in 0..10 {
        let err = svc.ready().await.unwrap().call(i).await.unwrap_err();
        if i >= 2 {
            assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen, "call {i}");
        }
    }
    assert_eq!(calls_all.load(Ordering::Relaxed), 0);
    assert!(calls.load(Ordering::Relaxed) > 0);
}
