//! Chaos at its edges: a latency too long for an `Instant`, and which side of the call
//! latency delays.
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

/// Injected latency delays the answer, as the module docs say: the inner service's `call`
/// runs at once (a `Buffer` enqueues then), its future is polled after the latency.
#[tokio::test(start_paused = true)]
async fn injected_latency_delays_the_answer_not_the_inner_call() {
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
        0,
        "the inner call runs at once"
    );
}
