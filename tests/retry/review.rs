//! Found by an adversarial review of the rebuilt retry: budget tokens, classification once,
//! every announced retry ending in an event, the deadline and refusals. Paused time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::clock::{Clock, ManualClock};
use seawall::retry::{Backoff, Event, Retry, RetryBudget, RetryError};
use seawall::{BoxError, Outcome};

fn budget(time: &ManualClock) -> RetryBudget {
    RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(10)
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap()
}

/// Without a timer, a retry that needs a backoff is never made (`TimerUnavailable`), and it
/// takes no budget token: a burst of such calls cannot drain the budget shared with healthy
/// callers (it used to).
#[test]
fn a_retry_that_cannot_wait_for_want_of_a_timer_costs_no_token() {
    let time = ManualClock::new();
    let budget = budget(&time);
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .budget(budget.clone())
        .build()
        .unwrap();
    let before = budget.balance();
    let r: Result<(), RetryError<BoxError>> =
        futures::executor::block_on(retry.call(|| async { Err::<(), BoxError>("boom".into()) }));
    assert!(matches!(r, Err(RetryError::TimerUnavailable(Some(_)))));
    assert_eq!(
        budget.balance(),
        before,
        "no retry was made, yet a budget token was spent"
    );
}

/// A retry decided and armed has taken its token; if it then never starts (the deadline
/// passes while the inner service is not ready) the token stays spent: stricter, never
/// looser, as the module docs say (the same as a call cancelled during its backoff).
#[tokio::test(start_paused = true)]
async fn a_retry_that_never_starts_for_the_deadline_has_spent_its_token() {
    use tower::{Service, ServiceExt};
    let time = ManualClock::new();
    let budget = budget(&time);
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::ZERO))
        .deadline(Duration::from_secs(1))
        .budget(budget.clone())
        .build()
        .unwrap();
    // Ready for the first call only, never again.
    let calls = Arc::new(AtomicU32::new(0));
    let svc = ServiceOnce {
        calls: calls.clone(),
    };
    let mut svc = tower::ServiceBuilder::new()
        .layer(retry.layer())
        .service(svc);
    let before = budget.balance();
    let r = svc.ready().await.unwrap().call(()).await;
    assert!(r.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        budget.balance(),
        before - 1.0,
        "the token of the retry decided"
    );
}

#[derive(Clone)]
struct ServiceOnce {
    calls: Arc<AtomicU32>,
}

impl tower::Service<()> for ServiceOnce {
    type Response = ();
    type Error = BoxError;
    type Future = std::future::Ready<Result<(), BoxError>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        if self.calls.load(Ordering::SeqCst) == 0 {
            std::task::Poll::Ready(Ok(()))
        } else {
            std::task::Poll::Pending
        }
    }
    fn call(&mut self, _: ()) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err("boom".into()))
    }
}

/// A retryable `Ok` response (say a 503) is classified once, though the inlined success path
/// looks at it first: a classifier with side effects (counting 5xx) sees each response once.
#[tokio::test(start_paused = true)]
async fn a_retryable_response_is_classified_once() {
    let classified = Arc::new(AtomicU32::new(0));
    let c = classified.clone();
    let retry = Retry::builder().max_retries(0).no_budget().build().unwrap();
    let classifier = move |r: &Result<u16, BoxError>| {
        c.fetch_add(1, Ordering::SeqCst);
        match r {
            Ok(503) | Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        }
    };
    let r = retry
        .call_with(&classifier, || async { Ok::<u16, BoxError>(503) })
        .await;
    assert_eq!(r.unwrap(), 503);
    assert_eq!(
        classified.load(Ordering::SeqCst),
        1,
        "one response, one classification"
    );
}

/// A retry was announced (`Event::Retry`), then the inner service's `poll_ready` failed: a
/// `GiveUp` with `NotReady` closes the story, so a listener counting retries and give-ups
/// never sees a retry that neither happened nor was given up.
#[tokio::test(start_paused = true)]
async fn a_retry_ended_by_a_poll_ready_error_is_reported_as_a_give_up() {
    use tower::{Service, ServiceExt};
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let e = events.clone();
    let retry = Retry::builder()
        .max_retries(3)
        .no_budget()
        .backoff(Backoff::constant(Duration::ZERO))
        .listener(move |ev: &Event<'_>| {
            e.lock().unwrap().push(match ev {
                Event::Retry(_) => "retry".to_string(),
                Event::GiveUp(g) => format!("give_up:{:?}", g.reason),
                Event::Attempt(a) => format!("attempt:{}", a.attempt),
                Event::Finished(f) => format!("finished:{:?}", f.outcome),
                _ => "other".into(),
            })
        })
        .build()
        .unwrap();
    #[derive(Clone)]
    struct FailReadyAfterOne(Arc<AtomicU32>);
    impl tower::Service<()> for FailReadyAfterOne {
        type Response = ();
        type Error = BoxError;
        type Future = std::future::Ready<Result<(), BoxError>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), BoxError>> {
            if self.0.load(Ordering::SeqCst) == 0 {
                std::task::Poll::Ready(Ok(()))
            } else {
                std::task::Poll::Ready(Err("gone".into()))
            }
        }
        fn call(&mut self, _: ()) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err("boom".into()))
        }
    }
    let mut svc = tower::ServiceBuilder::new()
        .layer(retry.layer())
        .service(FailReadyAfterOne(Arc::new(AtomicU32::new(0))));
    let r = svc.ready().await.unwrap().call(()).await;
    assert_eq!(r.unwrap_err().to_string(), "gone");
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "attempt:1",
            "retry",
            "give_up:NotReady",
            "finished:GaveUp(NotReady)"
        ]
    );
}

// ----- attacks that held -----

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_backoff_and_retry_after() {
    let retry = Retry::builder()
        .max_retries(10)
        .no_budget()
        .backoff(Backoff::constant(Duration::from_millis(400)).jitter(seawall::Jitter::None))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let r: Result<(), _> = retry
        .call(|| {
            s.lock().unwrap().push(start.elapsed());
            async { Err::<(), BoxError>("boom".into()) }
        })
        .await;
    assert!(matches!(r, Err(RetryError::Inner(_))));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(starts
        .lock()
        .unwrap()
        .iter()
        .all(|t| *t < Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_is_not_retried_by_a_custom_classifier_in_nested_bare_calls() {
    use seawall::circuit_breaker::CircuitBreaker;
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .build()
        .unwrap();
    breaker.force_open();
    let outer = Retry::builder().no_budget().build().unwrap();
    let inner = Retry::builder().no_budget().build().unwrap();
    let calls = AtomicU32::new(0);
    let always_in = |_: &Result<(), _>| Outcome::Failure;
    let always_out = |_: &Result<(), _>| Outcome::Failure;
    let r = outer
        .call_with(&always_out, || async {
            inner
                .call_with(&always_in, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    breaker.call(|| async { Ok::<(), BoxError>(()) }).await
                })
                .await
        })
        .await;
    assert!(r.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
