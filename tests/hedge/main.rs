//! Hedged requests: who wins, what is cancelled, what is hedged, the budget, the percentile
//! mode, cancellation, and the bare API against the layer. Paused tokio time throughout.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::CircuitBreaker;
use seawall::hedge::{Event, Hedge};
use seawall::retry::{Backoff, CloneRequest, Retry, RetryBudget};
use seawall::{BoxError, ErrorKind};
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);

// ===== a scripted dependency =====

/// One attempt's behaviour: its latency and its answer.
#[derive(Clone, Copy, Debug)]
enum Step {
    Ok(u64, &'static str),
    Err(u64, &'static str),
}

/// Hands out the steps in order, one per attempt (then `Ok(10, "default")`), and counts the
/// attempts made and those still alive (a drop guard in each attempt's future).
#[derive(Clone, Default)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    made: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
}

struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Script {
    fn new(steps: &[Step]) -> Script {
        let s = Script::default();
        s.steps.lock().unwrap().extend(steps.iter().copied());
        s
    }

    fn push(&self, steps: &[Step]) {
        self.steps.lock().unwrap().extend(steps.iter().copied());
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// One attempt: its guard is made now, so a future dropped unpolled is counted too.
    fn attempt(&self) -> impl Future<Output = Result<&'static str, BoxError>> + Send + 'static {
        let step = self
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Ok(10, "default"));
        self.made.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        let alive = Alive(self.live.clone());
        async move {
            let _alive = alive;
            let (ms, answer) = match step {
                Step::Ok(ms, v) => (ms, Ok(v)),
                Step::Err(ms, e) => (ms, Err(e.into())),
            };
            tokio::time::sleep(MS * ms as u32).await;
            answer
        }
    }

    fn service(
        &self,
    ) -> impl Service<u32, Response = &'static str, Error = BoxError, Future = impl Send> + Clone
    {
        let s = self.clone();
        service_fn(move |_req: u32| s.attempt())
    }
}

/// A listener that keeps every event.
fn recorder() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    (events, move |event: &Event| e.lock().unwrap().push(*event))
}

/// Every event as (sent?, hedge, delay).
fn log(events: &Mutex<Vec<Event>>) -> Vec<(bool, u32, Duration)> {
    events
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            Event::Sent(h) => (true, h.hedge, h.delay),
            Event::BudgetExhausted(h) => (false, h.hedge, h.delay),
            _ => unreachable!("no other events"),
        })
        .collect()
}

fn sent(events: &Mutex<Vec<Event>>) -> Vec<u32> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Sent(h) => Some(h.hedge),
            _ => None,
        })
        .collect()
}

fn fixed(delay_ms: u64, max_hedges: u32) -> (Hedge, Arc<Mutex<Vec<Event>>>) {
    let (events, listener) = recorder();
    let hedge = Hedge::builder()
        .delay(MS * delay_ms as u32)
        .max_hedges(max_hedges)
        .no_budget()
        .listener(listener)
        .build()
        .unwrap();
    (hedge, events)
}

async fn call_layer(hedge: &Hedge, script: &Script, req: u32) -> Result<&'static str, BoxError> {
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer())
        .service(script.service());
    svc.ready().await?.call(req).await
}

// ===== who wins =====

#[tokio::test(start_paused = true)]
async fn a_slow_primary_loses_to_a_fast_hedge_and_is_dropped_at_once() {
    let (hedge, events) = fixed(20, 1);
    let script = Script::new(&[Step::Ok(1_000, "primary"), Step::Ok(10, "hedge")]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "hedge");
    assert_eq!(
        start.elapsed(),
        MS * 30,
        "the hedge, sent at 20 ms, answered 10 ms later"
    );
    assert_eq!(script.made(), 2);
    assert_eq!(
        script.live(),
        0,
        "the primary's future was dropped with the answer"
    );
    assert_eq!(log(&events), [(true, 1, MS * 20)]);
}

#[tokio::test(start_paused = true)]
async fn the_loser_is_dropped_before_the_answer_is_returned() {
    // Polled by hand: the answer is out while the response future is still held, and the
    // primary is already gone.
    let (hedge, _) = fixed(20, 1);
    let script = Script::new(&[Step::Ok(1_000, "primary"), Step::Ok(10, "hedge")]);
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer())
        .service(script.service());
    let mut call = std::pin::pin!(svc.ready().await.unwrap().call(1));
    let answer = loop {
        match futures::poll!(call.as_mut()) {
            std::task::Poll::Ready(answer) => break answer,
            std::task::Poll::Pending => tokio::time::advance(MS).await,
        }
    };
    assert_eq!(answer.unwrap(), "hedge");
    assert_eq!(script.live(), 0, "the loser outlived the answer");
}

#[tokio::test(start_paused = true)]
async fn a_fast_primary_sends_no_hedge_and_the_delay_never_fires() {
    let (hedge, events) = fixed(20, 1);
    let script = Script::new(&[Step::Ok(5, "primary")]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "primary");
    assert_eq!(start.elapsed(), MS * 5);
    tokio::time::sleep(MS * 100).await;
    assert_eq!(script.made(), 1, "a hedge went out after the answer");
    assert!(events.lock().unwrap().is_empty());
    // One that answers at its first poll arms no timer at all: nothing for time to fire.
    let script = Script::new(&[Step::Ok(0, "at once")]);
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "at once");
    tokio::time::sleep(MS * 100).await;
    assert_eq!(script.made(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_fast_failure_of_the_primary_does_not_beat_a_hedge_in_flight() {
    let (hedge, _) = fixed(10, 1);
    // The primary fails at 30 ms; the hedge, sent at 10 ms, answers at 50 ms.
    let script = Script::new(&[Step::Err(30, "primary failed"), Step::Ok(40, "hedge")]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "hedge");
    assert_eq!(start.elapsed(), MS * 50);
}

#[tokio::test(start_paused = true)]
async fn a_failure_before_the_delay_ends_the_call_without_a_hedge() {
    let (hedge, events) = fixed(20, 1);
    let script = Script::new(&[Step::Err(5, "refused")]);
    let start = Instant::now();
    let err = call_layer(&hedge, &script, 1).await.unwrap_err();
    assert_eq!(err.to_string(), "refused");
    assert_eq!(
        start.elapsed(),
        MS * 5,
        "a failure is retry's to repeat, not the hedge's"
    );
    tokio::time::sleep(MS * 100).await;
    assert_eq!(script.made(), 1);
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_last_failure_is_the_answer() {
    let (hedge, _) = fixed(10, 2);
    // Sent at 0, 10 and 20 ms; they fail at 50, 40 and 30 ms.
    let script = Script::new(&[
        Step::Err(50, "primary"),
        Step::Err(30, "hedge 1"),
        Step::Err(10, "hedge 2"),
    ]);
    let start = Instant::now();
    let err = call_layer(&hedge, &script, 1).await.unwrap_err();
    assert_eq!(err.to_string(), "primary");
    assert_eq!(start.elapsed(), MS * 50);
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
}

#[tokio::test(start_paused = true)]
async fn a_classifier_decides_which_answers_are_acceptable() {
    use seawall::Outcome;
    let (hedge, _) = fixed(10, 1);
    let script = Script::new(&[Step::Ok(20, "503"), Step::Ok(30, "200")]);
    let mut svc = ServiceBuilder::new()
        .layer(
            hedge
                .layer()
                .classifier(|r: &Result<&'static str, BoxError>| match r {
                    Ok("503") | Err(_) => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                }),
        )
        .service(script.service());
    let start = Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "200");
    assert_eq!(
        start.elapsed(),
        MS * 40,
        "the 503 at 20 ms waited for the hedge"
    );
}

// ===== what is hedged =====

/// Only even requests may be sent twice.
#[derive(Clone)]
struct EvenOnly;

impl CloneRequest<u32> for EvenOnly {
    fn clone_request(&self, req: &u32) -> Option<u32> {
        Some(*req)
    }
    fn is_idempotent(&self, req: &u32) -> bool {
        req.is_multiple_of(2)
    }
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_requests_are_never_hedged() {
    let (hedge, events) = fixed(10, 3);
    let script = Script::new(&[Step::Ok(1_000, "odd, once"), Step::Ok(1_000, "even")]);
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer().clone_request(EvenOnly))
        .service(script.service());
    assert_eq!(
        svc.ready().await.unwrap().call(1).await.unwrap(),
        "odd, once"
    );
    assert_eq!(script.made(), 1, "a non-idempotent request was sent twice");
    assert!(events.lock().unwrap().is_empty());
    // The same layer hedges an idempotent one.
    script.push(&[Step::Ok(5, "hedge")]);
    assert_eq!(svc.ready().await.unwrap().call(2).await.unwrap(), "hedge");
    assert_eq!(sent(&events), [1]);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_is_sent_once() {
    let (hedge, events) = fixed(10, 1);
    let script = Script::new(&[Step::Ok(100, "once")]);
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer().clone_request(|_: &u32| None::<u32>))
        .service(script.service());
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "once");
    assert_eq!(script.made(), 1);
    assert!(events.lock().unwrap().is_empty());
}

#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn http_requests_hedge_only_idempotent_methods() {
    use http::{Method, Request};
    use seawall::http::HttpRequests;
    let (hedge, events) = fixed(10, 1);
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer().clone_request(HttpRequests::default()))
        .service(service_fn(move |req: Request<String>| {
            let n = m.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(MS * if n.is_multiple_of(2) { 100 } else { 5 }).await;
                Ok::<_, BoxError>(format!("{} {n}", req.method()))
            }
        }));
    let req = |method| {
        Request::builder()
            .method(method)
            .body(String::new())
            .unwrap()
    };
    let post = svc
        .ready()
        .await
        .unwrap()
        .call(req(Method::POST))
        .await
        .unwrap();
    assert_eq!(post, "POST 0", "a POST was hedged");
    assert!(events.lock().unwrap().is_empty());
    made.store(0, Ordering::SeqCst);
    let get = svc
        .ready()
        .await
        .unwrap()
        .call(req(Method::GET))
        .await
        .unwrap();
    assert_eq!(get, "GET 1", "the GET's hedge answers first");
    assert_eq!(sent(&events), [1]);
}

// ===== the budget =====

fn drained_budget() -> RetryBudget {
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    while budget.withdraw() {}
    budget
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_refuses_the_hedge_and_the_primary_still_answers() {
    let (events, listener) = recorder();
    let hedge = Hedge::builder()
        .delay(MS * 10)
        .budget(drained_budget())
        .listener(listener)
        .build()
        .unwrap();
    let script = Script::new(&[Step::Ok(100, "primary")]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "primary");
    assert_eq!(start.elapsed(), MS * 100);
    assert_eq!(script.made(), 1);
    assert_eq!(
        log(&events),
        [(false, 1, MS * 10)],
        "the refusal is reported"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_hedge_ends_the_hedging_of_that_call() {
    // One token: the first hedge goes, the second is refused, no third is asked for.
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    let (events, listener) = recorder();
    let hedge = Hedge::builder()
        .delay(MS * 10)
        .max_hedges(3)
        .budget(budget)
        .listener(listener)
        .build()
        .unwrap();
    let script = Script::new(&[Step::Ok(100, "primary"), Step::Ok(1_000, "hedge")]);
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "primary");
    assert_eq!(script.made(), 2);
    assert_eq!(log(&events), [(true, 1, MS * 10), (false, 2, MS * 10)]);
}

#[tokio::test(start_paused = true)]
async fn a_call_deposits_once_with_retry_and_hedge_on_one_budget() {
    // Ratio 1, no floor, no streak limit (the balance is capped by the streak's withdrawals
    // left): the balance is the successes deposited.
    let budget = || {
        RetryBudget::builder()
            .ratio(1.0)
            .min_per_sec(0)
            .failure_streak(u32::MAX)
            .build()
            .unwrap()
    };
    let shared = budget();
    let retry = Retry::builder().budget(shared.clone()).build().unwrap();
    let hedge = Hedge::builder()
        .delay(MS * 10)
        .budget(shared.clone())
        .build()
        .unwrap();
    let script = Script::default();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(hedge.layer())
        .service(script.service());
    for _ in 0..5 {
        svc.ready().await.unwrap().call(1).await.unwrap();
    }
    assert_eq!(
        shared.balance(),
        5.0,
        "five successful calls, five deposits"
    );

    // A hedge alone deposits into a budget of its own, or when told to.
    let own = Hedge::builder().delay(MS * 10).build().unwrap();
    assert!(own.deposits_successes());
    let alone = budget();
    let told = Hedge::builder()
        .delay(MS * 10)
        .budget(alone.clone())
        .deposit_successes(true)
        .build()
        .unwrap();
    for _ in 0..3 {
        call_layer(&told, &script, 1).await.unwrap();
    }
    assert_eq!(alone.balance(), 3.0);
}

#[tokio::test(start_paused = true)]
async fn hedges_spend_the_budget_retries_draw_from() {
    // One token, shared: the hedge spends it, so the retry of the failed call is refused.
    let shared = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(MS))
        .budget(shared.clone())
        .build()
        .unwrap();
    let hedge = Hedge::builder()
        .delay(MS * 10)
        .budget(shared)
        .build()
        .unwrap();
    let script = Script::new(&[
        Step::Err(50, "slow failure"),
        Step::Err(50, "hedge failure"),
    ]);
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .layer(hedge.layer())
        .service(script.service());
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::BudgetExhausted);
    assert_eq!(script.made(), 2, "one primary and one hedge, no retry");
}

// ===== max_hedges =====

#[tokio::test(start_paused = true)]
async fn max_hedges_bounds_the_attempts() {
    let (hedge, events) = fixed(10, 3);
    let script = Script::new(&[Step::Ok(1_000, "primary"); 10]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "primary");
    assert_eq!(
        start.elapsed(),
        MS * 1_000,
        "every attempt slow: the primary wins at 1 s"
    );
    assert_eq!(script.made(), 4, "1 primary + 3 hedges");
    assert_eq!(
        log(&events),
        [(true, 1, MS * 10), (true, 2, MS * 10), (true, 3, MS * 10)]
    );
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn hedges_go_out_one_delay_apart() {
    let (hedge, _) = fixed(10, 3);
    // The third hedge (sent at 30 ms) is the fast one.
    let script = Script::new(&[
        Step::Ok(1_000, "primary"),
        Step::Ok(1_000, "hedge 1"),
        Step::Ok(1_000, "hedge 2"),
        Step::Ok(5, "hedge 3"),
    ]);
    let start = Instant::now();
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "hedge 3");
    assert_eq!(start.elapsed(), MS * 35);
    assert_eq!(script.live(), 0, "three losers dropped");
}

// ===== the percentile mode =====

#[tokio::test(start_paused = true)]
async fn percentile_mode_hedges_after_the_observed_percentile_once_it_has_enough_data() {
    let (events, listener) = recorder();
    let hedge = Hedge::builder()
        .latency_percentile(90.0)
        .min_data_points(20)
        .period(Duration::from_secs(1))
        .no_budget()
        .listener(listener)
        .build()
        .unwrap();
    let script = Script::default(); // every attempt 10 ms unless told otherwise
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer())
        .service(script.service());

    // 30 calls of 10 ms in the first period: no full period yet, so a slow call is not hedged.
    for _ in 0..30 {
        svc.ready().await.unwrap().call(1).await.unwrap();
    }
    script.push(&[Step::Ok(200, "slow, unhedged")]);
    assert_eq!(
        svc.ready().await.unwrap().call(1).await.unwrap(),
        "slow, unhedged"
    );
    assert!(events.lock().unwrap().is_empty());

    // Into the second period: the first one's 31 latencies (p90: 10 ms) are read.
    tokio::time::sleep_until(Instant::now() + Duration::from_millis(500)).await;
    script.push(&[Step::Ok(1_000, "slow primary"), Step::Ok(10, "hedge")]);
    let start = Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "hedge");
    let took = start.elapsed();
    // Sent at the p90 rounded up to its bucket (10.24 ms) and to tokio's millisecond timer.
    assert!(took >= MS * 20 && took <= MS * 22, "{took:?}");
    let delay = log(&events)[0].2;
    assert!(delay >= MS * 10 && delay <= MS * 10 * 17 / 16, "{delay:?}");
}

#[tokio::test(start_paused = true)]
async fn percentile_mode_sends_nothing_below_min_data_points() {
    let (events, listener) = recorder();
    let hedge = Hedge::builder()
        .latency_percentile(50.0)
        .min_data_points(50)
        .period(Duration::from_secs(1))
        .no_budget()
        .listener(listener)
        .build()
        .unwrap();
    let script = Script::default();
    for _ in 0..10 {
        call_layer(&hedge, &script, 1).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    script.push(&[Step::Ok(500, "slow")]);
    assert_eq!(call_layer(&hedge, &script, 1).await.unwrap(), "slow");
    assert!(
        events.lock().unwrap().is_empty(),
        "10 data points are not 50"
    );
}

// ===== readiness and cancellation =====

#[tokio::test(start_paused = true)]
async fn each_hedge_waits_for_its_own_readiness() {
    // A concurrency limit of 1 under the hedge: the hedge's clone gets no permit while the
    // primary holds it, so the hedge is never made (tower's limit would panic if called
    // unready).
    let (hedge, events) = fixed(10, 1);
    let script = Script::new(&[Step::Ok(100, "primary")]);
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer())
        .concurrency_limit(1)
        .service(script.service());
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "primary");
    assert_eq!(script.made(), 1);
    assert_eq!(
        sent(&events),
        [1],
        "granted, but not ready before the primary answered"
    );
    // With two permits it goes out.
    let mut svc = ServiceBuilder::new()
        .layer(hedge.layer())
        .concurrency_limit(2)
        .service(script.service());
    script.push(&[Step::Ok(100, "primary"), Step::Ok(5, "hedge")]);
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "hedge");
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_call_at_any_poll_drops_every_attempt() {
    for polls in 0..12u32 {
        let (hedge, _) = fixed(10, 3);
        let script = Script::new(&[Step::Ok(1_000, "slow"); 4]);
        let mut svc = ServiceBuilder::new()
            .layer(hedge.layer())
            .service(script.service());
        let mut call = Box::pin(svc.ready().await.unwrap().call(1));
        for _ in 0..polls {
            assert!(futures::poll!(call.as_mut()).is_pending());
            tokio::time::advance(MS * 5).await;
        }
        let made = script.made();
        drop(call);
        assert_eq!(
            script.live(),
            0,
            "after {polls} polls, {made} attempts made"
        );
        assert_eq!(made, 1 + (polls.saturating_sub(1) / 2).min(3) as usize);
    }
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_cancels_its_attempts_too() {
    let (hedge, _) = fixed(10, 2);
    let script = Script::new(&[Step::Ok(1_000, "slow"); 3]);
    let call = hedge.call(|| script.attempt());
    assert!(tokio::time::timeout(MS * 25, call).await.is_err());
    assert_eq!(script.made(), 3);
    assert_eq!(script.live(), 0);
}

// ===== the bare API agrees with the layer =====

#[tokio::test(start_paused = true)]
async fn the_bare_call_decides_as_the_layer_does() {
    let scenarios: &[&[Step]] = &[
        &[Step::Ok(5, "fast primary")],
        &[Step::Ok(1_000, "slow primary"), Step::Ok(10, "hedge")],
        &[Step::Err(5, "fast failure")],
        &[Step::Err(30, "failed primary"), Step::Ok(40, "hedge")],
        &[Step::Err(50, "a"), Step::Err(30, "b"), Step::Err(10, "c")],
        &[Step::Ok(1_000, "a"), Step::Ok(1_000, "b"), Step::Ok(5, "c")],
    ];
    for steps in scenarios {
        let mut seen = Vec::new();
        for bare in [false, true] {
            let (hedge, events) = fixed(10, 2);
            let script = Script::new(steps);
            let start = Instant::now();
            let answer = if bare {
                hedge.call(|| script.attempt()).await
            } else {
                call_layer(&hedge, &script, 1).await
            };
            seen.push((
                answer.map_err(|e| e.to_string()),
                start.elapsed(),
                script.made(),
                script.live(),
                log(&events),
            ));
        }
        assert_eq!(seen[0], seen[1], "{steps:?}: layer, then bare");
    }
}

// ===== composition =====

#[tokio::test(start_paused = true)]
async fn composes_in_one_service_builder_with_box_error() {
    let budget = RetryBudget::builder().build().unwrap();
    let retry = Retry::builder()
        .max_retries(1)
        .backoff(Backoff::constant(MS))
        .budget(budget.clone())
        .build()
        .unwrap();
    let hedge = Hedge::builder()
        .delay(MS * 20)
        .budget(budget)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::builder().build().unwrap();
    let script = Script::new(&[Step::Ok(1_000, "slow"), Step::Ok(5, "hedge")]);
    let mut svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(retry.layer())
        .layer(hedge.layer())
        .layer(breaker.layer())
        .timeout(Duration::from_secs(1))
        .service(script.service());
    let answer: Result<&str, BoxError> = svc.ready().await.unwrap().call(1).await;
    assert_eq!(answer.unwrap(), "hedge");
    // A service of the whole stack is a plain `Service<u32, Error = BoxError>`.
    fn boxed<S: Service<u32, Error = BoxError>>(_: &S) {}
    boxed(&svc);
}
