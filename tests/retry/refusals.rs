//! seawall's own refusals (an open circuit, an inner budget's refusal) are never retried
//! unless the policy is told to, whatever the classifier says, and the bare call decides
//! exactly like the layer. Paused time throughout.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::circuit_breaker::{CallError, CircuitBreaker};
use seawall::classify::Outcome;
use seawall::retry::{Backoff, Jitter, Retry, RetryError};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn policy(retry_refusals: bool) -> Retry {
    Retry::builder()
        .max_retries(3)
        .no_budget()
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .retry_refusals(retry_refusals)
        .build()
        .unwrap()
}

fn open_breaker() -> CircuitBreaker {
    let breaker = CircuitBreaker::builder()
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap();
    breaker.force_open();
    breaker
}

/// Every HTTP user writes one: everything but a success is retryable.
fn custom<T>(r: &Result<T, BoxError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// A stack retry > breaker > a dependency that counts its calls; returns how many attempts
/// reached the breaker (the dependency is never called: the circuit is open).
async fn layered(retry: &Retry, with_custom_classifier: bool) -> (u32, BoxError) {
    let breaker = open_breaker();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let counted = tower::layer::layer_fn(move |inner| {
        let a = a.clone();
        tower::util::MapRequest::new(inner, move |req: ()| {
            a.fetch_add(1, Ordering::Relaxed);
            req
        })
    });
    let dependency = service_fn(|()| async { Ok::<u32, BoxError>(1) });
    let err = if with_custom_classifier {
        let mut svc = ServiceBuilder::new()
            .layer(retry.layer().classifier(custom::<u32>))
            .layer(counted)
            .layer(breaker.layer())
            .service(dependency);
        svc.ready().await.unwrap().call(()).await.unwrap_err()
    } else {
        let mut svc = ServiceBuilder::new()
            .layer(retry.layer())
            .layer(counted)
            .layer(breaker.layer())
            .service(dependency);
        svc.ready().await.unwrap().call(()).await.unwrap_err()
    };
    (attempts.load(Ordering::Relaxed), err)
}

/// The same call through the bare APIs: `retry.call(|| breaker.call(..))`.
async fn bare(retry: &Retry) -> (u32, RetryError<CallError<BoxError>>) {
    let breaker = open_breaker();
    let attempts = AtomicU32::new(0);
    let err = retry
        .call(|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            breaker.call(|| async { Ok::<u32, BoxError>(1) })
        })
        .await
        .unwrap_err();
    (attempts.load(Ordering::Relaxed), err)
}

#[tokio::test(start_paused = true)]
async fn a_custom_classifier_does_not_retry_an_open_circuit() {
    let (attempts, err) = layered(&policy(false), true).await;
    assert_eq!(attempts, 1, "an open circuit was retried");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_does_not_retry_an_open_circuit() {
    let (attempts, err) = bare(&policy(false)).await;
    assert_eq!(attempts, 1, "an open circuit was retried");
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(matches!(err, RetryError::Inner(CallError::Rejected(_))));
}

#[tokio::test(start_paused = true)]
async fn refusals_are_retried_only_when_asked() {
    let (attempts, err) = layered(&policy(true), true).await;
    assert_eq!(attempts, 4);
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    let (attempts, _) = layered(&policy(true), false).await;
    assert_eq!(
        attempts, 4,
        "the default classifier retries them too when asked"
    );
    let (attempts, err) = bare(&policy(true)).await;
    assert_eq!(attempts, 4);
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
}

/// One scripted dependency: each attempt's answer, in order.
#[derive(Clone, Copy, Debug)]
enum Step {
    Fail,
    Open,
    Ok,
    /// Never answers: cut by the per-attempt timeout.
    Hang,
}

async fn answer(step: Step) -> Result<u32, BoxError> {
    match step {
        Step::Hang => std::future::pending().await,
        Step::Fail => Err("flaky".into()),
        Step::Open => Err(Box::new(seawall::circuit_breaker::CircuitOpen::new(
            Duration::from_secs(1),
        ))),
        Step::Ok => Ok(7),
    }
}

/// (attempts made, the result's kind or `None` for `Ok`, time taken)
type Run = (u32, Option<ErrorKind>, Duration);

async fn through_the_layer(retry: &Retry, script: &[Step]) -> Run {
    let n = Arc::new(AtomicU32::new(0));
    let c = n.clone();
    let script: Vec<Step> = script.to_vec();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer().classifier(custom::<u32>))
        .service(service_fn(move |()| {
            let i = c.fetch_add(1, Ordering::Relaxed) as usize;
            let step = script.get(i).copied().unwrap_or(Step::Ok);
            answer(step)
        }));
    let start = tokio::time::Instant::now();
    let r = svc.ready().await.unwrap().call(()).await;
    let kind = r.err().map(|e| ErrorKind::of(&*e));
    (n.load(Ordering::Relaxed), kind, start.elapsed())
}

async fn through_the_bare_call(retry: &Retry, script: &[Step]) -> Run {
    let n = AtomicU32::new(0);
    let start = tokio::time::Instant::now();
    let r = retry
        .call_with(&custom::<u32>, || {
            let i = n.fetch_add(1, Ordering::Relaxed) as usize;
            let step = script.get(i).copied().unwrap_or(Step::Ok);
            answer(step)
        })
        .await;
    let kind = r.err().map(|e| e.kind());
    (n.load(Ordering::Relaxed), kind, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_and_the_layer_decide_the_same_way() {
    use Step::*;
    let scripts: &[&[Step]] = &[
        &[Ok],
        &[Fail, Ok],
        &[Fail, Fail, Fail, Fail],
        &[Open],
        &[Fail, Open, Ok],
        &[Fail, Fail, Open],
    ];
    for retry_refusals in [false, true] {
        for script in scripts {
            let layer = through_the_layer(&policy(retry_refusals), script).await;
            let bare = through_the_bare_call(&policy(retry_refusals), script).await;
            assert_eq!(layer, bare, "{script:?}, retry_refusals {retry_refusals}");
        }
    }
    // With per-attempt timeouts and a budget that pays for one retry only.
    let timed = || {
        Retry::builder()
            .new_budget(seawall::RetryBudget::builder().ratio(0.0).min_per_sec(1))
            .attempt_timeout(Duration::from_millis(100))
            .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
            .build()
            .unwrap()
    };
    let scripts: &[&[Step]] = &[&[Hang, Ok], &[Hang, Hang], &[Fail, Hang], &[Hang, Fail]];
    for script in scripts {
        let layer = through_the_layer(&timed(), script).await;
        let bare = through_the_bare_call(&timed(), script).await;
        assert_eq!(layer, bare, "{script:?}, timed");
    }
}
