//! Cancellation at every point: a layered future is polled 0, 1, ..., n times and dropped.
//! Afterwards no permit is held, and the breaker is in exactly the state of a twin breaker
//! that never saw the dropped call: the next calls behave as if it never happened.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::circuit_breaker::{Builder, CircuitBreaker, Snapshot, State};
use seawall::clock::{Clock, ManualClock};
use seawall::{BoxError, Outcome};
use tower::{Service, ServiceBuilder, ServiceExt};

/// Polls `fut` up to `n` times with a no-op waker, then drops it. Returns whether it finished.
fn poll_n_then_drop<F: Future>(fut: F, n: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    (0..n).any(|_| fut.as_mut().poll(&mut cx).is_ready())
}

/// A call that stays pending for `steps` polls (waking itself), then fails.
struct Steps {
    left: usize,
}

impl Future for Steps {
    type Output = Result<(), BoxError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.left == 0 {
            return Poll::Ready(Err("the dependency failed".into()));
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

const STEPS: usize = 3;

fn inner() -> impl Service<(), Response = (), Error = BoxError, Future = Steps> + Clone {
    tower::service_fn(|()| Steps { left: STEPS })
}

/// Two breakers built alike: `a` will see the cancelled call, `b` will not.
fn twins(builder: impl Fn() -> Builder) -> (CircuitBreaker, CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let a = builder().clock(Clock::from(clock.clone())).build().unwrap();
    let b = builder().clock(Clock::from(clock.clone())).build().unwrap();
    (a, b, clock)
}

/// The fields that must match. An open breaker whose wait is over moves to half-open lazily,
/// on its next call: admitting the dropped call did that on one twin, the next call will on
/// the other, so the two read the same.
fn comparable(s: Snapshot) -> (State, u32, u32, u32, u32, u32) {
    let state = match (s.state, s.retry_in) {
        (State::Open, Some(d)) if d.is_zero() => State::HalfOpen,
        (state, _) => state,
    };
    (
        state,
        s.consecutive_failures,
        s.calls,
        s.failures,
        s.probes_in_flight,
        s.probe_successes,
    )
}

/// Drives both twins through the same outcomes and checks they never differ.
fn assert_same_future(a: &CircuitBreaker, b: &CircuitBreaker, clock: &ManualClock) {
    assert_eq!(comparable(a.snapshot()), comparable(b.snapshot()));
    let script = [
        Outcome::Failure,
        Outcome::Success,
        Outcome::Failure,
        Outcome::Failure,
        Outcome::Success,
        Outcome::Success,
    ];
    for (i, outcome) in script.into_iter().enumerate() {
        let (pa, pb) = (a.try_acquire(), b.try_acquire());
        assert_eq!(pa.is_ok(), pb.is_ok(), "admission differs at step {i}");
        if let (Ok(pa), Ok(pb)) = (pa, pb) {
            assert_eq!(pa.is_probe(), pb.is_probe(), "probe differs at step {i}");
            pa.record(outcome);
            pb.record(outcome);
        }
        assert_eq!(
            comparable(a.snapshot()),
            comparable(b.snapshot()),
            "state differs after step {i}"
        );
        clock.advance(Duration::from_millis(700));
    }
}

/// Puts a breaker in half-open: trip it, wait, and leave the probe slots free.
fn to_half_open(breaker: &CircuitBreaker, clock: &ManualClock) {
    breaker.force_open();
    breaker.reset();
    for _ in 0..2 {
        breaker.record(Outcome::Failure);
    }
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(1));
}

fn config() -> Builder {
    CircuitBreaker::builder()
        .failure_threshold(2)
        .failure_rate(50.0)
        .count_window(4)
        .wait_in_open(Duration::from_secs(1))
        .half_open_max_calls(2)
}

#[test]
fn a_cancelled_closed_call_is_as_if_it_never_happened() {
    for polls in 0..=STEPS {
        let (a, b, clock) = twins(config);
        let mut svc = ServiceBuilder::new().layer(a.layer()).service(inner());
        let fut = futures::executor::block_on(svc.ready()).unwrap().call(());
        assert!(
            !poll_n_then_drop(fut, polls),
            "finished after {polls} polls"
        );
        assert_same_future(&a, &b, &clock);
    }
}

#[test]
fn a_cancelled_probe_is_as_if_it_never_happened() {
    for polls in 0..=STEPS {
        let (a, b, clock) = twins(config);
        to_half_open(&a, &clock);
        to_half_open(&b, &clock);
        // Move both to half-open with one probe that succeeds, so the dropped one is the 2nd.
        a.try_acquire().unwrap().record(Outcome::Success);
        b.try_acquire().unwrap().record(Outcome::Success);
        assert_eq!(a.state(), State::HalfOpen);

        let mut svc = ServiceBuilder::new().layer(a.layer()).service(inner());
        let fut = futures::executor::block_on(svc.ready()).unwrap().call(());
        assert!(!poll_n_then_drop(fut, polls));
        assert_eq!(
            a.snapshot().probes_in_flight,
            0,
            "slot freed after {polls} polls"
        );
        assert_same_future(&a, &b, &clock);
    }
}

#[test]
fn a_cancelled_bare_call_is_as_if_it_never_happened() {
    for polls in 0..=STEPS {
        let (a, b, clock) = twins(config);
        to_half_open(&a, &clock);
        to_half_open(&b, &clock);
        let fut = a.call(|| Steps { left: STEPS });
        // The closure runs on the first poll, which also polls its future once.
        assert!(!poll_n_then_drop(fut, polls));
        assert_eq!(a.snapshot().probes_in_flight, 0);
        assert_same_future(&a, &b, &clock);
    }
}

#[test]
fn a_cancelled_call_through_a_full_stack_is_as_if_it_never_happened() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        for polls in 0..=STEPS {
            for half_open in [false, true] {
                let (a, b, clock) = twins(config);
                if half_open {
                    to_half_open(&a, &clock);
                    to_half_open(&b, &clock);
                }
                let mut svc = ServiceBuilder::new()
                    .timeout(Duration::from_secs(10))
                    .layer(a.layer())
                    .timeout(Duration::from_secs(1))
                    .service(inner());
                let fut = svc.ready().await.unwrap().call(());
                assert!(!poll_n_then_drop(fut, polls));
                assert_eq!(a.snapshot().probes_in_flight, 0);
                assert_same_future(&a, &b, &clock);
            }
        }
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 0, "no task left behind");
    });
}

// ===== retry: the retry layer, the full stack and the bare call =====
//
// A retrying call is dropped after 0, 1, 2, ... polls, with tokio's paused clock moved on by
// `STEP` between polls, so the drop lands in the first attempt, in a backoff sleep and in a
// later attempt. Its twin never sees the call; instead, the parts of the call that did
// happen (an attempt the breaker recorded, a retry the budget paid for) are mirrored on the
// twin at the same instant, through the public API. After the drop both twins must agree:
// the same budget balance (the cancelled call's deposit is taken back), the same breaker
// counts, no probe slot held, no task alive, and the same outcomes for the next calls.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use seawall::retry::{Backoff, Jitter, Retry, RetryBudget, RetryError};
use seawall::ErrorKind;
use tower::util::BoxCloneService;

/// `(fail, latency in ms)`: the dependency answers after `latency`, with an error if `fail`.
type Req = (bool, u64);

/// Time moved on between two polls.
const STEP: Duration = Duration::from_millis(5);
/// The latency of an attempt that fails quickly.
const FAST: u64 = 10;
/// The latency of an attempt that hangs past the per-attempt timeout.
const HANG: u64 = 1_000;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(25);
const BACKOFF: Duration = Duration::from_millis(20);
const MAX_RETRIES: u32 = 2;
const WAIT_IN_OPEN: Duration = Duration::from_millis(200);

/// What one twin's dependency and retry hook saw.
#[derive(Default)]
struct Counts {
    /// Attempts that reached the dependency.
    started: AtomicU32,
    /// Attempts whose result reached the breaker (an answer, or the per-attempt timeout).
    completed: AtomicU32,
    /// Retries the budget paid for (the `on_retry` hook runs after the withdrawal).
    retries: AtomicU32,
}

impl Counts {
    fn get(&self) -> (u32, u32, u32) {
        (
            self.started.load(Relaxed),
            self.completed.load(Relaxed),
            self.retries.load(Relaxed),
        )
    }
}

/// Where a dropped call was when it was dropped, from its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    FirstAttempt,
    Backoff,
    LaterAttempt,
    /// Between two attempts without a sleep: rejected by the open breaker, say.
    Other,
}

fn phase(started: u32, finished: u32, retries: u32) -> Phase {
    match (started, finished, retries) {
        (1, 0, _) => Phase::FirstAttempt,
        (s, f, _) if s > f => Phase::LaterAttempt,
        (_, f, r) if r == f && f > 0 => Phase::Backoff,
        _ => Phase::Other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stack {
    /// `RetryLayer` (with the policy's own per-attempt timeout) over the dependency.
    RetryOnly,
    /// tower timeout (overall) > `RetryLayer` > breaker > tower timeout (per attempt) >
    /// dependency.
    Full { overall: Duration },
}

struct Twin {
    svc: BoxCloneService<Req, (), BoxError>,
    budget: RetryBudget,
    breaker: Option<CircuitBreaker>,
    counts: Arc<Counts>,
}

fn budget() -> RetryBudget {
    // One retry per success, no floor, and a long period: the balance moves only with
    // deposits, refunds and withdrawals, so any difference between twins is a whole token.
    let budget = RetryBudget::builder()
        .ratio(1.0)
        .min_per_sec(0)
        .period(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..3 {
        budget.deposit();
    }
    budget
}

fn stack_breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(3)
        .failure_rate(50.0)
        .count_window(6)
        .wait_in_open(WAIT_IN_OPEN)
        .half_open_max_calls(1)
        .build()
        .unwrap()
}

fn policy(budget: &RetryBudget, counts: &Arc<Counts>, attempt_timeout: bool) -> Retry {
    let hook = counts.clone();
    let builder = Retry::builder()
        .max_retries(MAX_RETRIES)
        .backoff(Backoff::constant(BACKOFF).jitter(Jitter::None))
        .budget(budget.clone())
        .seed(7)
        .on_retry(move |_| {
            hook.retries.fetch_add(1, Relaxed);
        });
    let builder = if attempt_timeout {
        builder.attempt_timeout(ATTEMPT_TIMEOUT)
    } else {
        builder
    };
    builder.build().unwrap()
}

/// One twin, built at the current (paused) instant.
fn twin(stack: Stack) -> Twin {
    let counts = Arc::new(Counts::default());
    let budget = budget();
    let started = counts.clone();
    let dependency = tower::service_fn(move |(fail, latency): Req| {
        started.started.fetch_add(1, Relaxed);
        async move {
            tokio::time::sleep(Duration::from_millis(latency)).await;
            if fail {
                Err::<(), BoxError>("the dependency failed".into())
            } else {
                Ok(())
            }
        }
    });
    let completed = counts.clone();
    let count = move |r: Result<(), BoxError>| {
        completed.completed.fetch_add(1, Relaxed);
        r
    };
    match stack {
        Stack::RetryOnly => {
            let retry = policy(&budget, &counts, true);
            let svc = ServiceBuilder::new()
                .layer(retry.layer())
                .map_result(count)
                .service(dependency);
            Twin {
                svc: BoxCloneService::new(svc),
                budget,
                breaker: None,
                counts,
            }
        }
        Stack::Full { overall } => {
            let retry = policy(&budget, &counts, false);
            let breaker = stack_breaker();
            let svc = ServiceBuilder::new()
                .timeout(overall)
                .layer(retry.layer())
                .layer(breaker.layer())
                // Transparent: counts the results the breaker records, in the same poll.
                .map_result(count)
                .timeout(ATTEMPT_TIMEOUT)
                .service(dependency);
            Twin {
                svc: BoxCloneService::new(svc),
                budget,
                breaker: Some(breaker),
                counts,
            }
        }
    }
}

/// Trips a breaker and waits out its open period: the next call is a probe.
async fn trip_to_half_open(breakers: [&CircuitBreaker; 2]) {
    for breaker in breakers {
        for _ in 0..3 {
            breaker.record(Outcome::Failure);
        }
        assert_eq!(breaker.state(), State::Open);
    }
    tokio::time::advance(WAIT_IN_OPEN).await;
}

/// Replays on `b` what happened on `a` since the last mirror: each completed attempt is a
/// failure recorded by the breaker, each retry a withdrawal. `done` is what was mirrored.
fn mirror(a: &Twin, b: &Twin, done: &mut (u32, u32)) {
    let (_, completed, retries) = a.counts.get();
    for _ in done.0..completed {
        if let Some(breaker) = &b.breaker {
            let permit = breaker
                .try_acquire()
                .expect("the twin admits the attempt too");
            permit.record(Outcome::Failure);
        }
    }
    for _ in done.1..retries {
        assert!(
            b.budget.withdraw(),
            "the twin's budget pays for the retry too"
        );
    }
    *done = (completed, retries);
}

/// Both twins read the same: budget balance, breaker counts; and `a` holds no probe slot and
/// no task is alive.
fn assert_agree(a: &Twin, b: &Twin, context: &str) {
    let (ba, bb) = (a.budget.balance(), b.budget.balance());
    assert!(
        (ba - bb).abs() < 1e-3,
        "budget balance {ba} vs twin's {bb}: {context}"
    );
    if let (Some(ca), Some(cb)) = (&a.breaker, &b.breaker) {
        assert_eq!(
            ca.snapshot().probes_in_flight,
            0,
            "probe slot held: {context}"
        );
        assert_eq!(
            comparable(ca.snapshot()),
            comparable(cb.snapshot()),
            "breakers differ: {context}"
        );
    }
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert_eq!(alive, 0, "a task outlived the call: {context}");
}

fn kind(r: &Result<(), BoxError>) -> Option<ErrorKind> {
    r.as_ref().err().map(|e| ErrorKind::of(&**e))
}

async fn call(svc: &mut BoxCloneService<Req, (), BoxError>, req: Req) -> Result<(), BoxError> {
    svc.ready().await?.call(req).await
}

/// Failures, successes, a hang, enough to empty the budget, trip the breaker and close it
/// again.
const SCRIPT: [Req; 12] = [
    (true, FAST),
    (false, FAST),
    (true, HANG),
    (true, FAST),
    (true, FAST),
    (false, FAST),
    (true, FAST),
    (true, FAST),
    (false, FAST),
    (false, FAST),
    (false, FAST),
    (true, FAST),
];

/// The next calls: run side by side, at the same instants, on both twins.
async fn assert_same_next_calls(a: &mut Twin, b: &mut Twin, context: &str) {
    for (i, req) in SCRIPT.into_iter().enumerate() {
        let (sa, sb) = (a.counts.get().0, b.counts.get().0);
        let (ra, rb) = tokio::join!(call(&mut a.svc, req), call(&mut b.svc, req));
        assert_eq!(kind(&ra), kind(&rb), "outcome of next call {i}: {context}");
        assert_eq!(
            a.counts.get().0 - sa,
            b.counts.get().0 - sb,
            "attempts of next call {i}: {context}"
        );
        assert_agree(a, b, &format!("after next call {i}: {context}"));
        tokio::time::advance(Duration::from_millis(150)).await;
    }
}

/// Polls `fut` up to `n` times, moving paused time on by `STEP` after each pending poll and
/// mirroring `a` on `b` after each poll, then drops it. Returns its output if it finished.
async fn poll_n_mirrored<F: Future>(
    fut: F,
    n: usize,
    a: &Twin,
    b: &Twin,
    done: &mut (u32, u32),
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    for _ in 0..n {
        let polled = fut.as_mut().poll(&mut cx);
        mirror(a, b, done);
        if let Poll::Ready(out) = polled {
            return Some(out);
        }
        tokio::time::advance(STEP).await;
    }
    None
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Drops a failing call through `stack` at every poll count until it finishes; returns the
/// phases the drops landed in and the number of drops.
async fn cancel_at_every_poll(stack: Stack, req: Req, half_open: bool) -> Vec<Phase> {
    let mut phases = Vec::new();
    for polls in 0..=500 {
        let context = format!("{stack:?}, request {req:?}, half-open {half_open}, {polls} polls");
        let (mut a, mut b) = (twin(stack), twin(stack));
        if half_open {
            trip_to_half_open([a.breaker.as_ref().unwrap(), b.breaker.as_ref().unwrap()]).await;
        }
        let mut done = (0, 0);
        let fut = a.svc.ready().await.unwrap().call(req);
        let finished = poll_n_mirrored(fut, polls, &a, &b, &mut done).await;
        mirror(&a, &b, &mut done);
        let (started, completed, retries) = a.counts.get();
        assert!(retries <= MAX_RETRIES, "{context}");
        let last = match finished {
            None => false,
            // An overall timeout that fires is a cancellation too: the retry future inside
            // it was dropped. Checked like the others, then there is nothing more to drop.
            Some(Err(e)) if ErrorKind::of(&*e) == ErrorKind::Timeout && started > completed => true,
            // Any other end: every drop point before it was covered.
            Some(_) => return phases,
        };
        // An attempt cut by the policy's own timeout never reaches `completed`; a retry
        // means its attempt ended.
        phases.push(phase(started, completed.max(retries), retries));
        assert_agree(&a, &b, &context);
        assert_same_next_calls(&mut a, &mut b, &context).await;
        if last {
            return phases;
        }
        assert!(polls < 500, "the call never finished: {context}");
    }
    unreachable!()
}

fn assert_covers(phases: &[Phase], wanted: &[Phase]) {
    for w in wanted {
        assert!(phases.contains(w), "no drop in {w:?}: {phases:?}");
    }
}

#[test]
fn a_retry_layer_call_cancelled_at_any_poll_leaves_the_budget_as_if_it_never_happened() {
    paused_runtime().block_on(async {
        for req in [(true, FAST), (true, HANG)] {
            let phases = cancel_at_every_poll(Stack::RetryOnly, req, false).await;
            assert_covers(
                &phases,
                &[Phase::FirstAttempt, Phase::Backoff, Phase::LaterAttempt],
            );
        }
    });
}

#[test]
fn a_full_stack_call_cancelled_at_any_poll_is_as_if_it_never_happened() {
    paused_runtime().block_on(async {
        for req in [(true, FAST), (true, HANG)] {
            let overall = Duration::from_secs(10);
            let phases = cancel_at_every_poll(Stack::Full { overall }, req, false).await;
            assert_covers(
                &phases,
                &[Phase::FirstAttempt, Phase::Backoff, Phase::LaterAttempt],
            );
        }
    });
}

#[test]
fn a_full_stack_probe_cancelled_at_any_poll_frees_its_slot_and_is_as_if_it_never_happened() {
    paused_runtime().block_on(async {
        for req in [(true, FAST), (true, HANG)] {
            let overall = Duration::from_secs(10);
            let phases = cancel_at_every_poll(Stack::Full { overall }, req, true).await;
            // The failed probe reopens the breaker: the retry after the backoff is rejected.
            assert_covers(&phases, &[Phase::FirstAttempt, Phase::Backoff]);
        }
    });
}

#[test]
fn a_full_stack_call_cut_by_the_overall_timeout_in_a_retry_is_as_if_it_never_happened() {
    paused_runtime().block_on(async {
        // Hanging attempts: 25 ms, 20 ms sleep, 25 ms, 20 ms sleep, then the third attempt
        // is cut at 100 ms by the overall timeout.
        let overall = Duration::from_millis(100);
        let phases = cancel_at_every_poll(Stack::Full { overall }, (true, HANG), false).await;
        assert_covers(
            &phases,
            &[Phase::FirstAttempt, Phase::Backoff, Phase::LaterAttempt],
        );
    });
}

#[test]
fn a_bare_retry_call_cancelled_at_any_poll_leaves_the_budget_as_if_it_never_happened() {
    paused_runtime().block_on(async {
        for (latency, attempt_timeout) in [(FAST, false), (HANG, true)] {
            let mut phases = Vec::new();
            for polls in 0..500 {
                let context = format!("latency {latency} ms, {polls} polls");
                let (a, b) = (twin(Stack::RetryOnly), twin(Stack::RetryOnly));
                let retry_a = policy(&a.budget, &a.counts, attempt_timeout);
                let retry_b = policy(&b.budget, &b.counts, attempt_timeout);
                let attempt = |counts: Arc<Counts>, fail: bool, latency: u64| {
                    counts.started.fetch_add(1, Relaxed);
                    async move {
                        tokio::time::sleep(Duration::from_millis(latency)).await;
                        counts.completed.fetch_add(1, Relaxed);
                        if fail {
                            Err("the dependency failed")
                        } else {
                            Ok(())
                        }
                    }
                };
                let mut done = (0, 0);
                let fut = retry_a.call(|| attempt(a.counts.clone(), true, latency));
                if poll_n_mirrored(fut, polls, &a, &b, &mut done)
                    .await
                    .is_some()
                {
                    break;
                }
                mirror(&a, &b, &mut done);
                let (started, _, retries) = a.counts.get();
                // A timed-out attempt never completes: place the drop by the retries alone.
                phases.push(phase(started, retries, retries));
                assert_agree(&a, &b, &context);
                // The next calls: the same outcomes, attempts and balances.
                for (i, (fail, latency)) in SCRIPT.into_iter().enumerate() {
                    let (sa, sb) = (a.counts.get().0, b.counts.get().0);
                    let (ra, rb): (Result<(), RetryError<&str>>, _) = tokio::join!(
                        retry_a.call(|| attempt(a.counts.clone(), fail, latency)),
                        retry_b.call(|| attempt(b.counts.clone(), fail, latency)),
                    );
                    assert_eq!(ra, rb, "outcome of next call {i}: {context}");
                    assert_eq!(a.counts.get().0 - sa, b.counts.get().0 - sb, "{context}");
                    assert_agree(&a, &b, &format!("after next call {i}: {context}"));
                }
            }
            assert_covers(
                &phases,
                &[Phase::FirstAttempt, Phase::Backoff, Phase::LaterAttempt],
            );
        }
    });
}
