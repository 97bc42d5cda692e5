//! seawall's retry does not retry a local rejection (it is one of seawall's refusals),
//! through the layers and through the bare calls alike, unless told to.

use crate::prelude::*;
use seawall::retry::{Backoff, Jitter, Retry, RetryError};
use std::sync::atomic::AtomicU32;

fn policy(retry_refusals: bool) -> Retry {
    Retry::builder()
        .max_retries(3)
        .no_budget()
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .retry_refusals(retry_refusals)
        .build()
        .unwrap()
}

/// A throttle that sheds nearly every call: 1000 rejections, no accept (p = 1000/1001).
fn shedding() -> AdaptiveThrottle {
    let t = throttle(&ManualClock::new(), 2.0);
    for _ in 0..1_000 {
        t.record(Outcome::Failure);
    }
    t
}

#[tokio::test(start_paused = true)]
async fn retry_does_not_retry_a_local_rejection() {
    let t = shedding();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let counted = tower::layer::layer_fn(move |inner| {
        let a = a.clone();
        tower::util::MapRequest::new(inner, move |req: bool| {
            a.fetch_add(1, SeqCst);
            req
        })
    });
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(policy(false).layer())
        .layer(counted)
        .layer(t.layer())
        .service(backend.service());
    // Calls until one is shed on its first attempt (almost every call is, at p ≈ 0.999).
    for _ in 0..100 {
        let before = attempts.load(SeqCst);
        let calls = backend.calls();
        let err = svc.ready().await.unwrap().call(true).await.unwrap_err();
        if ErrorKind::of(&*err) == ErrorKind::Throttled && backend.calls() == calls {
            assert_eq!(
                attempts.load(SeqCst),
                before + 1,
                "a local rejection was retried"
            );
            assert!(err.downcast_ref::<Throttled>().is_some());
            return;
        }
    }
    panic!("no call was shed in 100 at p ≈ 0.999");
}

#[tokio::test(start_paused = true)]
async fn retry_retries_a_local_rejection_only_when_told_to() {
    let t = shedding();
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(policy(true).layer())
        .layer(t.layer())
        .service(backend.service());
    let before = t.snapshot().requests;
    let err = svc.ready().await.unwrap().call(false).await.unwrap_err();
    assert!(matches!(
        ErrorKind::of(&*err),
        ErrorKind::Throttled | ErrorKind::Inner
    ));
    assert_eq!(
        t.snapshot().requests,
        before + 4,
        "4 attempts, each counted once"
    );
}

#[tokio::test(start_paused = true)]
async fn the_bare_retry_does_not_retry_a_local_rejection() {
    for (retry_refusals, expected) in [(false, 1), (true, 4)] {
        let t = shedding();
        let backend = Backend::default();
        // Find a call shed on its first attempt, then check how many attempts it made.
        let mut checked = false;
        for _ in 0..100 {
            let attempts = AtomicU32::new(0);
            let first_shed = std::sync::atomic::AtomicBool::new(false);
            let r: Result<u32, RetryError<CallError<Overloaded>>> = policy(retry_refusals)
                .call(|| {
                    let n = attempts.fetch_add(1, SeqCst);
                    let fut = t.call(|| backend.run(false));
                    let first = &first_shed;
                    async move {
                        let r = fut.await;
                        if n == 0 {
                            first.store(matches!(r, Err(CallError::Rejected(_))), SeqCst);
                        }
                        r
                    }
                })
                .await;
            if !first_shed.load(SeqCst) {
                continue;
            }
            let err = r.unwrap_err();
            assert_eq!(
                attempts.load(SeqCst),
                expected,
                "retry_refusals {retry_refusals}"
            );
            if !retry_refusals {
                assert_eq!(err.kind(), ErrorKind::Throttled);
                assert!(matches!(err, RetryError::Inner(CallError::Rejected(_))));
            }
            checked = true;
            break;
        }
        assert!(checked, "no call was shed on its first attempt");
    }
}
