//! The deadline bounds every wait of a call, the wait for the inner service's readiness
//! included: no attempt starts at or past it, and the call returns by then with the last
//! error. Paused time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::retry::{Backoff, Event, GiveUpReason, Jitter, Retry};
use seawall::BoxError;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(deadline: Duration) -> Retry {
    Retry::builder()
        .max_retries(3)
        .no_budget()
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .deadline(deadline)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_retry_waiting_for_a_held_permit_gives_up_at_the_deadline() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    // Request `true` holds the only permit for 10 s; `false` fails at once.
    let svc = ServiceBuilder::new()
        .layer(policy(Duration::from_secs(1)).layer())
        .concurrency_limit(1)
        .service(service_fn(move |hold: bool| {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                if hold {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(())
                } else {
                    Err::<(), BoxError>("failed".into())
                }
            }
        }));
    let start = Instant::now();
    let mut a = svc.clone();
    let mut b = svc.clone();
    // `b` readies first and fails; then `a` takes the permit for 10 s, so `b`'s retry waits.
    let b_ready = b.ready().await.unwrap();
    let failing = b_ready.call(false);
    let holder = tokio::spawn(async move { a.ready().await.unwrap().call(true).await });
    let err = failing.await.unwrap_err();
    assert_eq!(err.to_string(), "failed", "the last error is returned");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "returned by the deadline"
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "no attempt after the deadline"
    );
    holder.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_service_that_never_becomes_ready_again_cannot_hang_the_call() {
    let gave_up = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = gave_up.clone();
    let retry = Retry::builder()
        .no_budget()
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .listener(move |e: &Event<'_>| {
            if let Event::GiveUp(g2) = e {
                g.lock().unwrap().push((g2.attempt, g2.reason));
            }
        })
        .build()
        .unwrap();
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .map_err(|e: BoxError| e)
        .service(mock);
    handle.allow(1);
    svc.ready().await.unwrap();
    let call = tokio::spawn(svc.call(5));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error("boom");
    // No more permits: the mock never becomes ready again.
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("hung past the deadline")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.to_string(), "boom");
    assert!(start.elapsed() <= Duration::from_secs(1));
    assert_eq!(*gave_up.lock().unwrap(), [(1, GiveUpReason::Deadline)]);
}
