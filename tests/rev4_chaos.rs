//! Review 4: chaos findings.
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::chaos::Chaos;
use seawall::BoxError;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Finding 5: `latency(rate, Duration::MAX)` passes `build()` (only zero is checked) and the
/// first call that draws the latency panics: `Instant::now() + latency` overflows
/// (src/chaos/future.rs:559, src/chaos/mod.rs:148).
#[tokio::test(start_paused = true)]
#[ignore = "finding 5: a huge chaos latency is accepted by build() and panics at the call"]
async fn a_huge_latency_is_refused_or_clamped_not_a_panic() {
    let built = Chaos::builder().latency(1.0, Duration::MAX).build();
    let Ok(chaos) = built else { return }; // refused with a ConfigError: fine
    let svc = ServiceBuilder::new()
        .layer(chaos.layer())
        .service(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;
    let layered = AssertUnwindSafe(tokio::time::timeout(
        Duration::from_millis(1),
        svc.oneshot(1),
    ))
    .catch_unwind()
    .await;
    assert!(layered.is_ok(), "the layered call panicked");
    let bare = AssertUnwindSafe(tokio::time::timeout(
        Duration::from_millis(1),
        chaos.call(|| async { Ok::<_, BoxError>(1) }),
    ))
    .catch_unwind()
    .await;
    assert!(bare.is_ok(), "the bare call panicked");
}

/// Finding 6: the docs say a call with injected latency "waits first"; the layer calls the
/// inner service at once and only delays polling its future, so whatever the inner service
/// does in `call` (a `Buffer` enqueues, a `service_fn` closure runs, a hyper client that
/// dispatches in `call`) happens before the latency: the request reaches the dependency
/// early and only the answer is delayed.
#[tokio::test(start_paused = true)]
#[ignore = "finding 6: chaos latency is applied after the inner call(), not before the request"]
async fn injected_latency_comes_before_the_inner_call() {
    let chaos = Chaos::builder()
        .latency(1.0, Duration::from_millis(200))
        .build()
        .unwrap();
    let start = Instant::now();
    let called_at = Arc::new(AtomicU32::new(u32::MAX));
    let c = called_at.clone();
    let svc = ServiceBuilder::new()
        .layer(chaos.layer())
        .service(service_fn(move |x: u32| {
            // Work done in `call`, as a `Buffer` or many clients do.
            c.store(start.elapsed().as_millis() as u32, Ordering::SeqCst);
            async move { Ok::<_, BoxError>(x) }
        }));
    svc.oneshot(1).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(
        called_at.load(Ordering::SeqCst),
        200,
        "the inner service was called at once, before the injected latency"
    );
}
