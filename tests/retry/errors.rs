//! Every error the retry creates has its kind and prints each message once, and both paths
//! report the same thing when the budget refuses after a timed-out attempt. Paused time.

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::retry::{Backoff, BudgetExhausted, Jitter, Retry, RetryBudget, RetryError};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

use crate::common::chain;

fn io(msg: &str) -> std::io::Error {
    std::io::Error::other(msg.to_string())
}

#[test]
fn the_bare_error_has_its_kind_through_every_door() {
    let refused: RetryError<std::io::Error> = RetryError::BudgetExhausted(Some(io("flaky")));
    assert_eq!(refused.kind(), ErrorKind::BudgetExhausted);
    assert_eq!(ErrorKind::of(&refused), ErrorKind::BudgetExhausted);
    let timeout: RetryError<std::io::Error> = RetryError::Timeout;
    assert_eq!(timeout.kind(), ErrorKind::Timeout);
    assert_eq!(ErrorKind::of(&timeout), ErrorKind::Timeout);
    let inner: RetryError<std::io::Error> = RetryError::Inner(io("boom"));
    assert_eq!(ErrorKind::of(&inner), ErrorKind::Inner);
    // Boxed by an outer layer.
    let boxed: BoxError = Box::new(RetryError::<std::io::Error>::BudgetExhausted(None));
    assert_eq!(ErrorKind::of(&*boxed), ErrorKind::BudgetExhausted);
}

#[tokio::test(start_paused = true)]
async fn the_bare_error_is_seen_by_of_any_as_made_by_the_call() {
    let retry = Retry::builder()
        .new_budget(RetryBudget::builder().ratio(0.0).min_per_sec(1))
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap();
    let r: Result<(), RetryError<&str>> = retry.call(|| async { Err("flaky") }).await;
    let err = r.unwrap_err();
    assert_eq!(err, RetryError::BudgetExhausted(Some("flaky")));
    // `&str` is not an `Error`: `of_any` sees the kind all the same (an outer retry's refusal
    // check does exactly this).
    assert_eq!(ErrorKind::of_any(&err), ErrorKind::BudgetExhausted);
    assert!(ErrorKind::of_any(&err).is_refusal());
}

#[test]
fn no_message_is_printed_twice() {
    let refused: RetryError<std::io::Error> = RetryError::BudgetExhausted(Some(io("flaky")));
    assert_eq!(
        chain(&refused),
        ["retry budget exhausted; not retrying", "flaky"]
    );
    let inner: RetryError<std::io::Error> = RetryError::Inner(io("boom"));
    assert_eq!(chain(&inner), ["boom"]);
    let layered = BudgetExhausted::new(io("flaky"));
    assert_eq!(
        chain(&layered),
        ["retry budget exhausted; not retrying", "flaky"]
    );
}

fn refusing_budget() -> RetryBudget {
    // The floor pays for one retry, then nothing.
    RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap()
}

fn timed_policy(budget: RetryBudget) -> Retry {
    Retry::builder()
        .budget(budget)
        .attempt_timeout(Duration::from_millis(100))
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_budget_refusal_after_a_timed_out_attempt_is_budget_exhausted_on_both_paths() {
    let retry = timed_policy(refusing_budget());
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |()| {
            c.fetch_add(1, Ordering::Relaxed);
            async { pending::<Result<(), BoxError>>().await }
        }));
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(ErrorKind::of(&*err), ErrorKind::BudgetExhausted);
    assert!(err.is::<BudgetExhausted>());

    let retry = timed_policy(refusing_budget());
    let calls = AtomicU32::new(0);
    let r: Result<(), RetryError<BoxError>> = retry
        .call(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            pending()
        })
        .await;
    let err = r.unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(err.kind(), ErrorKind::BudgetExhausted);
    assert!(matches!(err, RetryError::BudgetExhausted(None)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "retry budget exhausted; not retrying a timed-out attempt"
    );
}
