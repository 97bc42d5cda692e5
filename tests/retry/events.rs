//! The observation seam: every retry and every give-up, with its reason, reaches the
//! listeners, from the layer and the bare call alike; a response classified as a failure
//! that the budget refused to retry (an HTTP 503) does not pass silently. Paused time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::classify::Outcome;
use seawall::retry::{Backoff, Event, GiveUpReason, Jitter, Retry, RetryBudget, RetryError};
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Retry(u32, Duration, Option<String>),
    GiveUp(u32, GiveUpReason, bool, Option<String>),
}

fn recorder() -> (
    Arc<Mutex<Vec<Seen>>>,
    impl Fn(&Event<'_>) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = move |event: &Event<'_>| {
        let e = match event {
            Event::Retry(r) => Seen::Retry(r.attempt, r.delay, r.error.map(|e| e.to_string())),
            Event::GiveUp(g) => Seen::GiveUp(
                g.attempt,
                g.reason,
                g.response,
                g.error.map(|e| e.to_string()),
            ),
            _ => return,
        };
        s.lock().unwrap().push(e);
    };
    (seen, listener)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_503_the_budget_refused_to_retry_is_reported() {
    let (seen, listener) = recorder();
    let retry = Retry::builder()
        .new_budget(RetryBudget::builder().ratio(0.0).min_per_sec(1))
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .listener(listener)
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(
            retry
                .layer()
                .classifier(|r: &Result<u16, BoxError>| match r {
                    Ok(503) | Err(_) => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                }),
        )
        .service(service_fn(|()| async { Ok::<u16, BoxError>(503) }));
    // Still the answer: the 503 comes back as `Ok`...
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 503);
    // ...and the listener was told the budget refused to retry it.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Seen::Retry(1, ms(10), None),
            Seen::GiveUp(2, GiveUpReason::BudgetExhausted, true, None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_used_up_and_the_errors_reach_the_listener_from_both_paths() {
    let (seen, listener) = recorder();
    let retry = Retry::builder()
        .max_retries(1)
        .no_budget()
        .backoff(Backoff::constant(ms(5)).jitter(Jitter::None))
        .listener(listener)
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |()| {
            let n = c.fetch_add(1, Ordering::Relaxed) + 1;
            async move { Err::<(), BoxError>(format!("failure {n}").into()) }
        }));
    let _ = svc.ready().await.unwrap().call(()).await;
    let layered = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        layered,
        [
            Seen::Retry(1, ms(5), Some("failure 1".into())),
            Seen::GiveUp(
                2,
                GiveUpReason::RetriesUsedUp,
                false,
                Some("failure 2".into())
            ),
        ]
    );

    let n = AtomicU32::new(0);
    let r: Result<(), RetryError<BoxError>> = retry
        .call(|| {
            let n = n.fetch_add(1, Ordering::Relaxed) + 1;
            async move { Err::<(), BoxError>(format!("failure {n}").into()) }
        })
        .await;
    assert!(r.is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        layered,
        "the bare call tells the same story"
    );
}

#[tokio::test(start_paused = true)]
async fn on_retry_is_sugar_over_the_listener() {
    let retries = Arc::new(AtomicU32::new(0));
    let r = retries.clone();
    let (seen, listener) = recorder();
    let retry = Retry::builder()
        .max_retries(2)
        .no_budget()
        .backoff(Backoff::constant(Duration::ZERO))
        .on_retry(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .listener(listener)
        .build()
        .unwrap();
    let _: Result<(), RetryError<&str>> = retry.call(|| async { Err("no") }).await;
    assert_eq!(retries.load(Ordering::Relaxed), 2);
    assert_eq!(seen.lock().unwrap().len(), 3, "two retries and a give-up");
}

/// Every event, as a line, from both paths (`Attempt` and `Finished` included).
fn all_events() -> (
    Arc<Mutex<Vec<String>>>,
    impl Fn(&Event<'_>) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = move |event: &Event<'_>| {
        let line = match event {
            Event::Retry(r) => format!("retry {} {:?} {:?}", r.attempt, r.reason, r.delay),
            Event::GiveUp(g) => format!("give_up {} {:?}", g.attempt, g.reason),
            Event::Attempt(a) => format!(
                "attempt {} {:?} {:?} timed_out={}",
                a.attempt, a.outcome, a.duration, a.timed_out
            ),
            Event::Finished(f) => format!(
                "finished {} {:?} {:?} budget={}",
                f.attempts,
                f.outcome,
                f.duration,
                f.budget.is_some()
            ),
            _ => "unknown".into(),
        };
        s.lock().unwrap().push(line);
    };
    (seen, listener)
}

#[tokio::test(start_paused = true)]
async fn attempts_and_calls_end_with_the_same_events_from_the_layer_and_the_bare_call() {
    let (seen, listener) = all_events();
    let retry = Retry::builder()
        .max_retries(2)
        .no_budget()
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .listener(listener)
        .build()
        .unwrap();
    // Each attempt takes 5 ms; the first two fail.
    let answers = Arc::new(AtomicU32::new(0));
    let a = answers.clone();
    let attempt = move || {
        let n = a.fetch_add(1, Ordering::Relaxed);
        async move {
            tokio::time::sleep(ms(5)).await;
            if n % 3 < 2 {
                Err::<u32, BoxError>("flaky".into())
            } else {
                Ok(n)
            }
        }
    };
    let bare = {
        let attempt = attempt.clone();
        retry.call(attempt).await.unwrap()
    };
    assert_eq!(bare, 2);
    let bare_events = std::mem::take(&mut *seen.lock().unwrap());
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |()| attempt()));
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 5);
    let layer_events = std::mem::take(&mut *seen.lock().unwrap());
    let expected = [
        "attempt 1 Failure 5ms timed_out=false",
        "retry 1 Error 10ms",
        "attempt 2 Failure 5ms timed_out=false",
        "retry 2 Error 10ms",
        "attempt 3 Success 5ms timed_out=false",
        "finished 3 Success 35ms budget=false",
    ];
    assert_eq!(bare_events, expected);
    assert_eq!(layer_events, expected);
}

#[tokio::test(start_paused = true)]
async fn a_response_retry_has_its_reason_and_a_dropped_call_never_finishes() {
    let (seen, listener) = all_events();
    let retry = Retry::builder()
        .max_retries(1)
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None))
        .listener(listener)
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(
            retry
                .layer()
                .classifier(|r: &Result<u16, BoxError>| match r {
                    Ok(503) | Err(_) => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                }),
        )
        .service(service_fn(|()| async { Ok::<u16, BoxError>(503) }));
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 503);
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [
            "attempt 1 Failure 0ns timed_out=false",
            "retry 1 Response 10ms",
            "attempt 2 Failure 0ns timed_out=false",
            "give_up 2 RetriesUsedUp",
            "finished 2 GaveUp(RetriesUsedUp) 10ms budget=true",
        ]
    );
    // Dropped while waiting for its backoff: its first attempt ended, the call did not.
    let call = svc.ready().await.unwrap().call(());
    let mut call = Box::pin(call);
    assert!(futures::poll!(call.as_mut()).is_pending());
    drop(call);
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [
            "attempt 1 Failure 0ns timed_out=false",
            "retry 1 Response 10ms"
        ]
    );
}
