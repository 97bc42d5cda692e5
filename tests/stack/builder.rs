//! The stack builder: the order it builds, the compositions it refuses (one test per refusal,
//! asserting the exact variant), and the measured misbehaviour its main check prevents.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::bulkhead::Bulkhead;
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::fallback::{fallback_fn, FallbackLayer};
use seawall::hedge::{Event, Hedge};
use seawall::retry::{
    Backoff, ByClone, CloneRequest, Idempotent, Jitter, KnowsIdempotency, LongRetryAfter, Retry,
    RetryBudget,
};
use seawall::stack::{Part, Stack, StackError};
use seawall::{BoxError, ConfigError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// A retry with a budget generous enough never to refuse in these tests, and fixed delays.
fn retry(max_retries: u32) -> Retry {
    Retry::builder()
        .max_retries(max_retries)
        .backoff(Backoff::constant(10 * MS).jitter(Jitter::None))
        // Ample: these tests are about the stack's order, not the budget (no failure streak
        // limit, or their calls that never succeed would run out after three draws).
        .budget(
            RetryBudget::builder()
                .min_per_sec(1000)
                .failure_streak(u32::MAX)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn breaker(threshold: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(threshold)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// An inner service that sleeps `ms` milliseconds and answers it, counting calls.
fn sleeper(
    calls: Arc<AtomicU32>,
) -> impl Service<
    u64,
    Response = u64,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<u64, BoxError>> + Send,
> + Clone
       + Send {
    service_fn(move |ms: u64| {
        calls.fetch_add(1, Ordering::Relaxed);
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, BoxError>(ms)
        }
    })
}

/// A hedge after `delay` drawing from `retry`'s budget, counting the hedges it sends.
fn shared_hedge(retry: &Retry, delay: Duration, sent: Arc<AtomicU32>) -> Hedge {
    Hedge::builder()
        .delay(delay)
        .budget(retry.budget().cloned().expect("a retry with a budget"))
        .listener(move |e: &Event| {
            if let Event::Sent(_) = e {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap()
}

/// An inner service whose `n`th call (from 0) sleeps `ms(n)` milliseconds, then answers
/// `Ok(n)`, or an error if `fails(n)`.
fn scripted(
    calls: Arc<AtomicU32>,
    ms: fn(u32) -> u64,
    fails: fn(u32) -> bool,
) -> impl Service<
    u64,
    Response = u32,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<u32, BoxError>> + Send,
> + Clone
       + Send {
    service_fn(move |_: u64| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            tokio::time::sleep(Duration::from_millis(ms(n))).await;
            if fails(n) {
                Err::<u32, BoxError>(format!("attempt {n} failed").into())
            } else {
                Ok(n)
            }
        }
    })
}

fn assert_box_error<S: Service<u64, Error = BoxError>>(_: &S) {}

// ===== the good compositions =====

#[tokio::test(start_paused = true)]
async fn the_default_composition_builds_and_serves() {
    let calls = Arc::new(AtomicU32::new(0));
    let stack = Stack::builder()
        .timeout(10 * SEC)
        .fallback(
            FallbackLayer::new(fallback_fn(|_: u64, _: BoxError| async {
                Ok::<_, BoxError>(0)
            }))
            .on(ErrorKind::BulkheadFull),
        )
        .retry(Retry::default())
        .breaker(CircuitBreaker::default())
        .bulkhead(Bulkhead::builder().build().unwrap())
        .attempt_timeout(SEC)
        .build()
        .expect("the recommended composition with every default is accepted");
    let mut svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(calls.clone()));
    assert_box_error(&svc);
    assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn an_empty_builder_builds_the_inner_service_itself() {
    let stack = Stack::builder().build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(Arc::default()));
    assert_eq!(svc.oneshot(7).await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_built_stack_can_be_spawned() {
    let stack = Stack::builder()
        .timeout(10 * SEC)
        .retry(retry(2))
        .breaker(breaker(5))
        .bulkhead(Bulkhead::builder().build().unwrap())
        .attempt_timeout(SEC)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(Arc::default()));
    let handle = tokio::spawn(async move { svc.oneshot(3).await });
    assert_eq!(handle.await.unwrap().unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_order_does_not_depend_on_the_order_of_calls() {
    // Set innermost first: the attempt timeout still sits inside the breaker, so hung
    // attempts count, and the open circuit ends the call without a third attempt.
    let calls = Arc::new(AtomicU32::new(0));
    let b = breaker(2);
    let stack = Stack::builder()
        .attempt_timeout(100 * MS)
        .breaker(b.clone())
        .retry(retry(4))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(calls.clone()));
    let err = svc.oneshot(3_600_000).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_sits_outside_retry_and_breaker() {
    let b = breaker(1);
    b.force_open();
    let stack = Stack::builder()
        .retry(retry(3))
        .breaker(b)
        .fallback(
            FallbackLayer::new(fallback_fn(|req: u64, err: BoxError| async move {
                assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
                Ok::<_, BoxError>(req + 1000)
            }))
            .on(ErrorKind::CircuitOpen),
        )
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(Arc::default()));
    assert_eq!(svc.oneshot(1).await.unwrap(), 1001);
}

#[cfg(feature = "rate-limit")]
#[tokio::test(start_paused = true)]
async fn the_rate_limit_is_outermost_and_refuses_before_anything_else() {
    use seawall::rate_limit::RateLimiter;
    let calls = Arc::new(AtomicU32::new(0));
    let limiter = RateLimiter::builder()
        .rate(1)
        .per(SEC)
        .burst(1)
        .build()
        .unwrap();
    let stack = Stack::builder()
        .rate_limit(limiter)
        .timeout(10 * SEC)
        .retry(retry(2))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(calls.clone()));
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
    let err = svc.oneshot(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

// ===== hedging =====

#[tokio::test(start_paused = true)]
async fn a_slow_call_is_hedged_inside_retry_and_the_first_answer_wins() {
    let calls = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU32::new(0));
    let r = retry(2);
    let stack = Stack::builder()
        .breaker(breaker(5))
        .hedge(shared_hedge(&r, 50 * MS, sent.clone()))
        .retry(r)
        .timeout(10 * SEC)
        .attempt_timeout(2 * SEC)
        .build()
        .expect("retry and hedge sharing one budget");
    // The primary is slow (1 s), the hedge fast (10 ms): answered at 60 ms by the hedge.
    let mut svc = ServiceBuilder::new().layer(stack).service(scripted(
        calls.clone(),
        |n| if n == 0 { 1_000 } else { 10 },
        |_| false,
    ));
    assert_box_error(&svc);
    let start = tokio::time::Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(0).await.unwrap(), 1);
    assert_eq!(start.elapsed(), 60 * MS);
    assert_eq!(sent.load(Ordering::Relaxed), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_sees_one_attempt_per_hedged_call_and_the_breaker_every_attempt() {
    // Every attempt fails after 100 ms; a hedge is sent at 50 ms. Retry (2 retries) retries
    // a hedged attempt only once both of its attempts have failed, and each retry is hedged
    // again: 3 attempts of retry's, 6 calls of the inner service.
    let calls = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU32::new(0));
    let r = retry(2);
    let stack = Stack::builder()
        .retry(r.clone())
        .hedge(shared_hedge(&r, 50 * MS, sent.clone()))
        .breaker(breaker(100))
        .build()
        .unwrap();
    let svc =
        ServiceBuilder::new()
            .layer(stack)
            .service(scripted(calls.clone(), |_| 100, |_| true));
    let err = svc.oneshot(0).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
    assert_eq!(
        sent.load(Ordering::Relaxed),
        3,
        "one hedge per retry attempt"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 6);

    // The breaker sits inside the hedge: it records the hedge too. With a threshold of 2,
    // the first hedged attempt (primary and hedge failed) opens it, and retry's next attempt
    // is refused without reaching the service.
    calls.store(0, Ordering::Relaxed);
    sent.store(0, Ordering::Relaxed);
    let b = breaker(2);
    let stack = Stack::builder()
        .retry(r.clone())
        .hedge(shared_hedge(&r, 50 * MS, sent.clone()))
        .breaker(b.clone())
        .build()
        .unwrap();
    let svc =
        ServiceBuilder::new()
            .layer(stack)
            .service(scripted(calls.clone(), |_| 100, |_| true));
    let err = svc.oneshot(0).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn hedges_and_retries_draw_from_one_budget() {
    // A budget of a floor of 1 a second and no earned credit: one retry or one hedge a
    // second, together.
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    let r = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(10 * MS).jitter(Jitter::None))
        .budget(budget.clone())
        .build()
        .unwrap();
    let sent = Arc::new(AtomicU32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let stack = Stack::builder()
        .retry(r.clone())
        .hedge(shared_hedge(&r, 50 * MS, sent.clone()))
        .build()
        .unwrap();
    // Every attempt fails after 100 ms. The hedge at 50 ms takes the one token: the retry
    // finds the budget empty, and the call ends after one hedged attempt.
    let svc =
        ServiceBuilder::new()
            .layer(stack)
            .service(scripted(calls.clone(), |_| 100, |_| true));
    let err = svc.oneshot(0).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::BudgetExhausted);
    assert_eq!(sent.load(Ordering::Relaxed), 1);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "one hedge, no retry: one token"
    );
}

/// Hedges only the requests it calls idempotent: here, the even ones.
#[derive(Clone, Debug)]
struct EvenOnly;

impl CloneRequest<u64> for EvenOnly {
    fn clone_request(&self, req: &u64) -> Option<u64> {
        Some(*req)
    }
    fn is_idempotent(&self, req: &u64) -> bool {
        req & 1 == 0
    }
}

impl KnowsIdempotency for EvenOnly {
    fn knows_idempotency(&self) -> bool {
        true
    }
}

/// A hedge whose copier takes every request as safe (`ByClone`) is refused: a hedge sends
/// requests twice by design. `hedge(..)` (every request declared safe, `Idempotent`) and a
/// copier that decides are accepted.
#[test]
fn a_hedge_with_a_copier_that_does_not_decide_idempotency_is_refused() {
    let hedge = Hedge::builder().delay(10 * MS).no_budget().build().unwrap();
    let refused = Stack::builder().hedge_layer(hedge.layer()).build();
    assert!(
        matches!(refused, Err(StackError::HedgeOfAnyRequest)),
        "{refused:?}"
    );
    let err = Stack::builder()
        .hedge_layer(hedge.layer())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Idempotent(ByClone)"), "{err}");
    assert!(Stack::builder().hedge(hedge.clone()).build().is_ok());
    assert!(Stack::builder()
        .hedge_layer(hedge.layer().clone_request(Idempotent(ByClone)))
        .build()
        .is_ok());
    assert!(Stack::builder()
        .hedge_layer(hedge.layer().clone_request(EvenOnly))
        .build()
        .is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_request_the_copier_calls_not_idempotent_is_never_hedged() {
    let r = retry(0);
    let sent = Arc::new(AtomicU32::new(0));
    let hedge = Hedge::builder()
        .delay(10 * MS)
        .budget(r.budget().cloned().unwrap())
        .listener({
            let sent = sent.clone();
            move |e: &Event| {
                if let Event::Sent(_) = e {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build()
        .unwrap();
    let stack = Stack::builder()
        .retry(r)
        .hedge_layer(hedge.layer().clone_request(EvenOnly))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(calls.clone()));
    // 101 ms is odd: not idempotent, sent once though slow.
    assert_eq!(svc.ready().await.unwrap().call(101).await.unwrap(), 101);
    assert_eq!(
        (sent.load(Ordering::Relaxed), calls.load(Ordering::Relaxed)),
        (0, 1)
    );
    // 100 ms is even: hedged at 10 ms.
    assert_eq!(svc.ready().await.unwrap().call(100).await.unwrap(), 100);
    assert_eq!(
        (sent.load(Ordering::Relaxed), calls.load(Ordering::Relaxed)),
        (1, 3)
    );
}

// ===== the refusals =====

#[test]
fn a_hedge_not_drawing_from_the_retrys_budget_is_refused() {
    let r = retry(2);
    // The default hedge makes a budget of its own.
    let err = Stack::builder()
        .retry(r.clone())
        .hedge(Hedge::builder().delay(50 * MS).build().unwrap())
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::HedgeBudgetNotShared {
            hedge_has_budget: true
        }
    );
    assert!(
        err.to_string()
            .contains("`.budget(retry.budget().cloned().unwrap())`"),
        "{err}"
    );
    // A budget with the same settings is still another budget.
    let twin = Hedge::builder()
        .delay(50 * MS)
        .budget(RetryBudget::builder().min_per_sec(1000).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        Stack::builder()
            .retry(r.clone())
            .hedge(twin)
            .build()
            .unwrap_err(),
        StackError::HedgeBudgetNotShared {
            hedge_has_budget: true
        }
    );
    // No budget at all: nothing bounds the hedges.
    let none = Hedge::builder().delay(50 * MS).no_budget().build().unwrap();
    assert_eq!(
        Stack::builder().retry(r).hedge(none).build().unwrap_err(),
        StackError::HedgeBudgetNotShared {
            hedge_has_budget: false
        }
    );
}

#[test]
fn a_hedge_depositing_into_the_retrys_budget_too_is_refused() {
    let r = retry(2);
    let twice = Hedge::builder()
        .delay(50 * MS)
        .budget(r.budget().cloned().unwrap())
        .deposit_successes(true)
        .build()
        .unwrap();
    let err = Stack::builder().retry(r).hedge(twice).build().unwrap_err();
    assert_eq!(err, StackError::HedgeDepositsTwice);
}

#[test]
fn a_hedge_without_budget_outside_a_breaker_is_refused() {
    let none = Hedge::builder().delay(50 * MS).no_budget().build().unwrap();
    let err = Stack::builder()
        .hedge(none.clone())
        .breaker(breaker(5))
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::HedgeWithoutBudget { max_hedges: 1 });
    assert!(err.to_string().contains("give the hedge a budget"), "{err}");
    // Without a breaker it multiplies nothing a breaker counts: accepted, as for retry.
    assert!(Stack::builder().hedge(none).build().is_ok());
}

#[test]
fn a_hedge_delay_not_shorter_than_a_timeout_is_refused() {
    let r = retry(2);
    let sent = Arc::new(AtomicU32::new(0));
    let err = Stack::builder()
        .retry(r.clone())
        .hedge(shared_hedge(&r, SEC, sent.clone()))
        .breaker(breaker(5))
        .attempt_timeout(SEC)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::HedgeDelayNotShorter {
            delay: SEC,
            timeout: SEC
        }
    );
    assert!(Stack::builder()
        .retry(r.clone())
        .hedge(shared_hedge(&r, 200 * MS, sent))
        .breaker(breaker(5))
        .attempt_timeout(SEC)
        .build()
        .is_ok());
}

#[test]
fn a_hand_made_hedge_outside_retry_or_around_a_fallback_is_refused() {
    let r = retry(2);
    let h = shared_hedge(&r, 50 * MS, Arc::default());
    assert_eq!(
        Stack::check(&[Part::Hedge(&h), Part::Retry(&r), Part::Breaker]),
        Err(StackError::HedgeOutsideRetry)
    );
    assert_eq!(
        Stack::check(&[Part::Hedge(&h), Part::Fallback, Part::Breaker]),
        Err(StackError::FallbackInside { layer: "hedge" })
    );
    let layer = h.layer();
    assert_eq!(
        Stack::check(&[Part::Retry(&r), Part::Hedge(layer.hedge()), Part::Breaker]),
        Ok(())
    );
}

// ===== the other refusals =====

#[test]
fn a_retry_without_budget_outside_a_breaker_is_refused() {
    let no_budget = Retry::builder().no_budget().build().unwrap();
    let err = Stack::builder()
        .retry(no_budget.clone())
        .breaker(breaker(5))
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::RetryWithoutBudget { max_retries: 3 });
    assert!(err.to_string().contains("give the retry a budget"), "{err}");
    // Without a breaker, or without retries, nothing multiplies the breaker's count.
    assert!(Stack::builder().retry(no_budget).build().is_ok());
    let none = Retry::builder().max_retries(0).no_budget().build().unwrap();
    assert!(Stack::builder()
        .retry(none)
        .breaker(breaker(5))
        .build()
        .is_ok());
}

#[test]
fn an_overall_timeout_with_a_breaker_and_no_attempt_timeout_is_refused() {
    let err = Stack::builder()
        .timeout(10 * SEC)
        .retry(retry(3))
        .breaker(breaker(5))
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::TimeoutOutsideBreaker { timeout: 10 * SEC });
    assert!(
        err.to_string()
            .contains("hung calls never count as failures"),
        "{err}"
    );
}

#[test]
fn retrys_own_attempt_timeout_is_outside_the_breaker_and_refused() {
    let with_timeout = Retry::builder().attempt_timeout(SEC).build().unwrap();
    let err = Stack::builder()
        .retry(with_timeout.clone())
        .breaker(breaker(5))
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::TimeoutOutsideBreaker { timeout: SEC });
    // A shorter attempt timeout inside the breaker cuts first: accepted.
    assert!(Stack::builder()
        .retry(with_timeout)
        .breaker(breaker(5))
        .attempt_timeout(500 * MS)
        .build()
        .is_ok());
}

#[test]
fn an_attempt_timeout_not_shorter_than_the_overall_one_is_refused() {
    let err = Stack::builder()
        .timeout(SEC)
        .breaker(breaker(5))
        .attempt_timeout(SEC)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::AttemptTimeoutNotShorter {
            attempt: SEC,
            overall: SEC
        }
    );
    // Without a breaker too: the attempt is never cut on its own, so never retried.
    let err = Stack::builder()
        .timeout(SEC)
        .retry(retry(3))
        .attempt_timeout(2 * SEC)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::AttemptTimeoutNotShorter {
            attempt: 2 * SEC,
            overall: SEC
        }
    );
}

#[test]
fn a_deadline_not_longer_than_the_first_backoff_is_refused() {
    let r = Retry::builder()
        .backoff(Backoff::constant(100 * MS))
        .deadline(100 * MS)
        .build()
        .unwrap();
    let err = Stack::builder().retry(r).build().unwrap_err();
    assert_eq!(
        err,
        StackError::DeadlineBeforeFirstBackoff {
            deadline: 100 * MS,
            first_backoff: 100 * MS
        }
    );
    // The overall timeout outside the retry is a deadline too.
    let r = Retry::builder()
        .backoff(Backoff::exponential(100 * MS))
        .build()
        .unwrap();
    let err = Stack::builder()
        .timeout(50 * MS)
        .retry(r)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::DeadlineBeforeFirstBackoff {
            deadline: 50 * MS,
            first_backoff: 100 * MS
        }
    );
}

#[test]
fn a_retry_after_cap_not_shorter_than_the_deadline_is_refused() {
    let policy = |long: LongRetryAfter| {
        Retry::builder()
            .backoff(Backoff::exponential(100 * MS).max_delay(5 * SEC))
            .deadline(2 * SEC)
            .long_retry_after(long)
            .build()
            .unwrap()
    };
    let err = Stack::builder()
        .retry(policy(LongRetryAfter::Cap))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::RetryAfterCapPastDeadline {
            max_delay: 5 * SEC,
            deadline: 2 * SEC
        }
    );
    // Giving up on a long wait needs no cap: accepted.
    assert!(Stack::builder()
        .retry(policy(LongRetryAfter::GiveUp))
        .build()
        .is_ok());
}

#[test]
fn a_deadline_longer_than_the_overall_timeout_is_refused() {
    let r = Retry::builder().deadline(20 * SEC).build().unwrap();
    let err = Stack::builder()
        .timeout(10 * SEC)
        .retry(r)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::DeadlineAfterTimeout {
            deadline: 20 * SEC,
            timeout: 10 * SEC
        }
    );
    let r = Retry::builder().deadline(10 * SEC).build().unwrap();
    assert!(Stack::builder().timeout(10 * SEC).retry(r).build().is_ok());
}

#[test]
fn a_bulkhead_wait_not_shorter_than_the_overall_timeout_is_refused() {
    let waits = |d| Bulkhead::builder().max_wait(d).build().unwrap();
    let err = Stack::builder()
        .timeout(SEC)
        .bulkhead(waits(SEC))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::BulkheadWaitOutlastsTimeout {
            max_wait: SEC,
            timeout: SEC
        }
    );
    assert!(Stack::builder()
        .timeout(SEC)
        .bulkhead(waits(100 * MS))
        .build()
        .is_ok());
}

#[test]
fn a_zero_timeout_is_refused_naming_the_field() {
    let err = Stack::builder()
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::Config(ConfigError::Zero { field: "timeout" })
    );
    let err = Stack::builder()
        .attempt_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::Config(ConfigError::Zero {
            field: "attempt_timeout"
        })
    );
}

#[test]
fn hand_made_orders_are_checked_with_the_same_rules() {
    let r = retry(3);
    let recommended = [
        Part::RateLimit,
        Part::Timeout(10 * SEC),
        Part::Fallback,
        Part::Retry(&r),
        Part::Breaker,
        Part::Timeout(SEC),
    ];
    assert_eq!(Stack::check(&recommended), Ok(()));
    assert_eq!(
        Stack::check(&[Part::Retry(&r), Part::Fallback, Part::Breaker]),
        Err(StackError::FallbackInside { layer: "retry" })
    );
}

// ===== the measured misbehaviour =====

#[tokio::test(start_paused = true)]
async fn attempts_timed_out_outside_the_breaker_never_open_it_the_builders_order_does() {
    let calls = Arc::new(AtomicU32::new(0));
    let policy = retry(4); // five attempts per call
    let hang: u64 = 3_600_000;

    // By hand, the per-attempt timeout between retry and breaker.
    let outside = breaker(2);
    let mut svc = ServiceBuilder::new()
        .layer(policy.layer())
        .timeout(100 * MS)
        .layer(outside.layer())
        .service(sleeper(calls.clone()));
    for _ in 0..3 {
        let err = svc.ready().await.unwrap().call(hang).await.unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 15);
    assert_eq!(
        outside.state(),
        State::Closed,
        "15 hung attempts, none counted"
    );
    // The check names it.
    assert_eq!(
        Stack::check(&[Part::Retry(&policy), Part::Timeout(100 * MS), Part::Breaker]),
        Err(StackError::TimeoutOutsideBreaker { timeout: 100 * MS })
    );

    // The builder's order: the same parts, the timeout inside the breaker.
    calls.store(0, Ordering::Relaxed);
    let inside = breaker(2);
    let stack = Stack::builder()
        .retry(policy)
        .breaker(inside.clone())
        .attempt_timeout(100 * MS)
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(stack)
        .service(sleeper(calls.clone()));
    let err = svc.ready().await.unwrap().call(hang).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "two hung attempts opened it"
    );
    assert_eq!(inside.state(), State::Open);
}
