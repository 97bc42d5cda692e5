//! seawall's retry does not retry a bulkhead's refusal (it is one of seawall's refusals),
//! through the layers and through the bare calls alike, unless told to.

use crate::prelude::*;
use seawall::retry::{Backoff, Jitter, Retry, RetryError};
use std::sync::atomic::AtomicU32;

fn policy(retry_refusals: bool) -> Retry {
    Retry::builder()
        .max_retries(3)
        .no_budget()
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .retry_refusals(retry_refusals)
        .build()
        .unwrap()
}

/// retry > (count attempts) > bulkhead > dependency, with the bulkhead's one slot held
/// elsewhere. Returns (attempts that reached the bulkhead, calls that reached the
/// dependency, the error).
async fn layered(retry: &Retry, max_wait: Duration) -> (u32, usize, BoxError) {
    let b = bulkhead(1, max_wait);
    let _held = b.try_acquire().unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let counted = tower::layer::layer_fn(move |inner| {
        let a = a.clone();
        tower::util::MapRequest::new(inner, move |req: u64| {
            a.fetch_add(1, SeqCst);
            req
        })
    });
    let gauge = Gauge::default();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(counted)
        .layer(b.layer())
        .service(gauge.service());
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    (attempts.load(SeqCst), gauge.calls(), err)
}

#[tokio::test(start_paused = true)]
async fn retry_does_not_retry_a_full_bulkhead() {
    for max_wait in [Duration::ZERO, ms(20)] {
        let start = Instant::now();
        let (attempts, calls, err) = layered(&policy(false), max_wait).await;
        assert_eq!(attempts, 1, "a refusal was retried (max_wait {max_wait:?})");
        assert_eq!(calls, 0);
        assert_eq!(full(&err).waited(), max_wait);
        assert_eq!(start.elapsed(), max_wait, "no backoff was slept");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_retries_a_full_bulkhead_only_when_told_to() {
    let (attempts, calls, err) = layered(&policy(true), Duration::ZERO).await;
    assert_eq!(attempts, 4, "the counter sees retries when there are some");
    assert_eq!(calls, 0);
    assert_eq!(ErrorKind::of(&*err), ErrorKind::BulkheadFull);
}

#[tokio::test(start_paused = true)]
async fn the_bare_retry_does_not_retry_a_full_bulkhead() {
    for (retry_refusals, expected) in [(false, 1), (true, 4)] {
        let b = bulkhead(1, Duration::ZERO);
        let _held = b.try_acquire().unwrap();
        let gauge = Gauge::default();
        let attempts = AtomicU32::new(0);
        let err: RetryError<CallError<BoxError>> = policy(retry_refusals)
            .call(|| {
                attempts.fetch_add(1, SeqCst);
                b.call(|| gauge.run(1))
            })
            .await
            .unwrap_err();
        assert_eq!(attempts.load(SeqCst), expected);
        assert_eq!(gauge.calls(), 0);
        assert_eq!(err.kind(), ErrorKind::BulkheadFull);
        assert!(matches!(err, RetryError::Inner(CallError::Rejected(_))));
    }
}
