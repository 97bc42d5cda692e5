//! Deterministic, adversarial integration tests of seawall's circuit breaker.
//!
//! Time is either tokio's paused clock (`start_paused = true` + `tokio::time::advance`) or a
//! `ManualClock` (synchronous tests and multi-thread runtimes). No test sleeps in real time to
//! wait for a state change.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use seawall::circuit_breaker::{
    Builder, CallError, CircuitBreaker, CircuitOpen, Event, Listener, Recorded, SlidingWindow,
    State, StateChange, MAX_HALF_OPEN_CALLS,
};
use seawall::clock::{Clock, ManualClock};
use seawall::{BoxError, ConfigError, ErrorKind, Outcome};
use tokio::sync::oneshot;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

// ===== test doubles =====

type Reply = Result<&'static str, io::Error>;

/// What the inner service should do with a request.
#[derive(Debug, Clone, Copy)]
enum Req {
    /// Succeed at once.
    Ok,
    /// Fail at once with an `io::Error` of kind `Other`.
    Fail,
    /// Fail at once with an `io::Error` of kind `NotFound`.
    NotFound,
    /// Succeed after sleeping this many milliseconds (tokio time).
    SleepOk(u64),
    /// Wait until the test releases the call with [`Backend::release`].
    Gated,
}

/// An inner service that counts its calls and can hold calls open until the test releases them.
#[derive(Clone, Default)]
struct Backend {
    calls: Arc<AtomicUsize>,
    gates: Arc<Mutex<VecDeque<oneshot::Sender<Reply>>>>,
}

impl Backend {
    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    fn waiting(&self) -> usize {
        self.gates.lock().unwrap().len()
    }

    /// Completes the oldest gated call with `reply` (a no-op if that call was dropped).
    fn release(&self, reply: Reply) {
        let tx = self
            .gates
            .lock()
            .unwrap()
            .pop_front()
            .expect("a gated call is waiting");
        let _ = tx.send(reply);
    }
}

impl Service<Req> for Backend {
    type Response = &'static str;
    type Error = io::Error;
    type Future = BoxFuture<'static, Reply>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.calls.fetch_add(1, SeqCst);
        match req {
            Req::Ok => Box::pin(async { Ok("ok") }),
            Req::Fail => Box::pin(async { Err(io::Error::other("boom")) }),
            Req::NotFound => Box::pin(async { Err(io::Error::from(io::ErrorKind::NotFound)) }),
            Req::SleepOk(ms) => Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok("slow")
            }),
            Req::Gated => {
                let (tx, rx) = oneshot::channel();
                self.gates.lock().unwrap().push_back(tx);
                Box::pin(async move {
                    rx.await
                        .unwrap_or_else(|_| Err(io::Error::other("gate dropped")))
                })
            }
        }
    }
}

/// One call through a service: `ready` then `call`.
async fn send<S>(svc: &mut S, req: Req) -> Result<&'static str, BoxError>
where
    S: Service<Req, Response = &'static str, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

/// Asserts that `result` is a boxed [`CircuitOpen`] rejection and returns it.
#[track_caller]
fn rejection<T: std::fmt::Debug>(result: Result<T, BoxError>) -> CircuitOpen {
    let err = result.expect_err("expected a circuit-open rejection");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen, "got: {err}");
    *err.downcast_ref::<CircuitOpen>()
        .expect("the rejection is a boxed CircuitOpen")
}

/// Asserts that `result` is the inner service's own error, not a rejection.
#[track_caller]
fn inner_error<T: std::fmt::Debug>(result: Result<T, BoxError>) -> BoxError {
    let err = result.expect_err("expected the inner service's error");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner, "got: {err}");
    err
}

fn build(builder: Builder) -> CircuitBreaker {
    builder.build().expect("valid configuration")
}

/// A breaker driven by a manual clock.
fn manual(builder: Builder) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = build(builder.clock(Clock::from(clock.clone())));
    (breaker, clock)
}

#[track_caller]
fn record(breaker: &CircuitBreaker, outcome: Outcome) {
    breaker
        .try_acquire()
        .expect("the breaker admits the call")
        .record(outcome);
}

const SEC: Duration = Duration::from_secs(1);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ===== Closed -> Open: consecutive failures =====

#[tokio::test(start_paused = true)]
async fn trips_after_five_consecutive_failures_by_default() {
    let breaker = CircuitBreaker::default();
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    for i in 1..=4 {
        inner_error(send(&mut svc, Req::Fail).await);
        assert_eq!(breaker.state(), State::Closed, "after {i} failures");
        assert_eq!(breaker.snapshot().consecutive_failures, i);
    }
    // The fifth failure is still the inner service's own error, and it trips the breaker.
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(backend.calls(), 5);

    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.state(), State::Open);
    assert_eq!(
        backend.calls(),
        5,
        "an open breaker must not call the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn success_between_failures_resets_the_consecutive_count() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(3));
    let mut svc = breaker.layer().layer(Backend::default());

    for _ in 0..2 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 2);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    for _ in 0..2 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "F F S F F is not 3 in a row"
    );
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

// ===== Closed -> Open: failure rate =====

#[tokio::test(start_paused = true)]
async fn failure_rate_trips_at_exactly_the_threshold() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(4)
            .minimum_calls(4),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    send(&mut svc, Req::Ok).await.unwrap();
    inner_error(send(&mut svc, Req::Fail).await);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 2 of 4 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_count_window_forgets_evicted_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(60.0)
            .count_window(5)
            .minimum_calls(5),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    let script = [
        Req::Fail,
        Req::Fail,
        Req::Ok,
        Req::Ok,
        Req::Ok, // 2/5 = 40 %
        Req::Ok,
        Req::Ok,
        Req::Ok, // both failures evicted: 0/5
        Req::Fail,
        Req::Fail, // 2/5 = 40 % (4/10 = 40 % if nothing were evicted)
    ];
    for (i, req) in script.into_iter().enumerate() {
        let _ = send(&mut svc, req).await;
        assert_eq!(breaker.state(), State::Closed, "after call {i}");
        if i == 4 {
            let snap = breaker.snapshot();
            assert_eq!((snap.calls, snap.failures), (5, 2));
            assert_eq!(snap.failure_rate, Some(40.0));
        }
        if i == 7 {
            let snap = breaker.snapshot();
            assert_eq!(
                (snap.calls, snap.failures),
                (5, 0),
                "the window holds 5 calls"
            );
        }
    }
    // 3/5 = 60 % over the window; 5/11 = 45 % if the window kept everything.
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_does_not_trip_below_minimum_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(5),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    for i in 1..=4 {
        inner_error(send(&mut svc, Req::Fail).await);
        assert_eq!(
            breaker.state(),
            State::Closed,
            "{i} of {i} failed, but fewer than minimum_calls"
        );
        let snap = breaker.snapshot();
        assert_eq!(snap.calls, i);
        assert_eq!(snap.failure_rate, None, "no rate below minimum_calls");
    }
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_time_window_counts_calls_within_the_span() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(4)
            .time_window(secs(10)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(9)).await; // still inside the 10 s window
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.snapshot().calls, 3);
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap(); // 2 of 4 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_time_window_ages_out_old_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(4)
            .time_window(secs(10)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.snapshot().calls, 2);
    tokio::time::advance(secs(10)).await; // the two failures leave the window
    assert_eq!(breaker.snapshot().calls, 0);

    for _ in 0..3 {
        send(&mut svc, Req::Ok).await.unwrap();
    }
    inner_error(send(&mut svc, Req::Fail).await); // 1/4 (3/6 = 50 % without ageing)
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 2/5
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 3/6 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

// ===== Closed -> Open: slow-call rate =====

#[tokio::test(start_paused = true)]
async fn slow_call_rate_trips_on_calls_taking_at_least_slow_call_duration() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .slow_call_rate(50.0)
            .slow_call_duration(SEC)
            .count_window(4)
            .minimum_calls(4),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    let start = tokio::time::Instant::now();
    send(&mut svc, Req::SleepOk(10)).await.unwrap();
    send(&mut svc, Req::SleepOk(999)).await.unwrap();
    assert_eq!(start.elapsed(), ms(1009), "paused time moves exactly");
    assert_eq!(breaker.snapshot().slow_calls, 0, "999 ms is not slow");
    send(&mut svc, Req::SleepOk(1000)).await.unwrap();
    assert_eq!(breaker.snapshot().slow_calls, 1, "exactly 1 s is slow");
    assert_eq!(
        breaker.snapshot().failures,
        0,
        "slow successes are not failures"
    );
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::SleepOk(2000)).await.unwrap(); // 2 of 4 slow = 50 %
    assert_eq!(breaker.state(), State::Open);
}

// ===== Open =====

#[tokio::test(start_paused = true)]
async fn open_rejects_without_calling_inner_and_reports_remaining_wait() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(secs(10)),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).retry_in(),
        secs(10)
    );

    tokio::time::advance(secs(3)).await;
    for _ in 0..10 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.retry_in(), secs(7));
        assert_eq!(open.state(), State::Open);
    }
    assert_eq!(breaker.snapshot().retry_in, Some(secs(7)));
    assert_eq!(
        backend.calls(),
        2,
        "rejections never reach the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn poll_ready_is_ready_while_open() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);

    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    }
    let fut = svc.call(Req::Ok);
    assert_eq!(
        backend.calls(),
        1,
        "rejected in `call`, before the inner service"
    );
    rejection(fut.await);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_forwards_the_inner_services_readiness() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let (mock, mut handle) = tower_test::mock::pair::<(), &'static str>();
    let mut svc = breaker.layer().layer(mock);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    handle.allow(0);
    assert!(svc.poll_ready(&mut cx).is_pending());
    handle.allow(1);
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
}

#[tokio::test(start_paused = true)]
async fn breaker_call_is_rejected_without_running_the_closure_while_open() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(4)),
    );
    let r: Result<(), CallError<&str>> = breaker.call(|| async { Err("boom") }).await;
    assert_eq!(r, Err(CallError::Inner("boom")));
    assert_eq!(breaker.state(), State::Open);

    let ran = AtomicUsize::new(0);
    let r: Result<u32, CallError<&str>> = breaker
        .call(|| {
            ran.fetch_add(1, SeqCst);
            async { Ok(1) }
        })
        .await;
    match r {
        Err(CallError::Rejected(open)) => assert_eq!(open.retry_in(), secs(4)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(ran.load(SeqCst), 0);
}

// ===== Open -> HalfOpen =====

#[tokio::test(start_paused = true)]
async fn open_moves_to_half_open_lazily_on_the_first_call_after_the_wait() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(10))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);

    tokio::time::advance(ms(9_999)).await;
    assert_eq!(rejection(send(&mut svc, Req::Ok).await).retry_in(), ms(1));
    tokio::time::advance(ms(1)).await;
    // No background task: nothing changes until a call arrives, however long we wait.
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(secs(3600)).await;
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.snapshot().retry_in, Some(Duration::ZERO));

    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(
        backend.calls(),
        2,
        "the first call after the wait is admitted"
    );
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    backend.release(Ok("ok"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// ===== HalfOpen =====

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_max_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    let mut probes = Vec::new();
    for _ in 0..3 {
        probes.push(svc.ready().await.unwrap().call(Req::Gated));
    }
    assert_eq!(breaker.snapshot().probes_in_flight, 3);
    for _ in 0..5 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.state(), State::HalfOpen);
        assert_eq!(open.retry_in(), Duration::ZERO);
    }
    assert_eq!(
        backend.calls(),
        1 + 3,
        "only the probes reached the inner service"
    );
    assert_eq!(breaker.state(), State::HalfOpen);

    for _ in 0..3 {
        backend.release(Ok("ok"));
    }
    for p in probes {
        p.await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_closes_after_max_calls_successful_probes() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3),
    );
    let mut svc = breaker.layer().layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    for i in 1..=2 {
        send(&mut svc, Req::Ok).await.unwrap();
        assert_eq!(
            breaker.state(),
            State::HalfOpen,
            "after {i} successful probes"
        );
        assert_eq!(breaker.snapshot().probe_successes, i);
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_on_one_failed_probe() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(5))
            .half_open_max_calls(3),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(5)).await;

    send(&mut svc, Req::Ok).await.unwrap();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "one failed probe re-opens");
    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.retry_in(), secs(5), "a full open period starts again");
    assert_eq!(backend.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn open_period_grows_with_multiplier_up_to_the_cap_and_resets_on_close() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(1)
            .wait_in_open(secs(10))
            .wait_in_open_multiplier(1.5)
            .max_wait_in_open(secs(30)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    // 10 s, then x1.5 per failed probe: 15 s, 22.5 s, 33.75 s capped to 30 s, 30 s.
    let expected = [ms(10_000), ms(15_000), ms(22_500), ms(30_000), ms(30_000)];
    let mut seen = Vec::new();
    for (i, period) in expected.into_iter().enumerate() {
        seen.push(rejection(send(&mut svc, Req::Ok).await).retry_in());
        assert_eq!(breaker.snapshot().retry_in, Some(period));
        // One millisecond early is still open.
        tokio::time::advance(period - ms(1)).await;
        assert_eq!(rejection(send(&mut svc, Req::Ok).await).retry_in(), ms(1));
        tokio::time::advance(ms(1)).await;
        if i + 1 < expected.len() {
            inner_error(send(&mut svc, Req::Fail).await); // a failed probe: re-trip
        }
    }
    assert_eq!(seen, expected);

    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).retry_in(),
        secs(10),
        "a close resets the growth"
    );
}

// ===== resets on entering Closed / Open =====

#[tokio::test(start_paused = true)]
async fn entering_open_and_closed_resets_window_and_consecutive_count() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(3)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(4)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    for _ in 0..3 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(breaker.state(), State::Open);
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.consecutive_failures, snap.calls, snap.failures),
        (0, 0, 0),
        "entering Open starts from zero: {snap:?}"
    );

    tokio::time::advance(SEC).await;
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!((snap.consecutive_failures, snap.calls), (0, 0));

    // Had the 3 old failures survived, one more would trip on both conditions.
    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.consecutive_failures, snap.calls, snap.failures),
        (2, 2, 2)
    );
}

// ===== cancellation =====

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_future_before_its_first_poll_frees_the_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(30)).await;

    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).state(),
        State::HalfOpen
    );
    drop(probe);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a cancelled probe records nothing"
    );
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));

    // Admitted at once: no second open period.
    let before = backend.calls();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(backend.calls(), before + 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_future_while_the_inner_call_is_pending_frees_the_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let mut svc = breaker.layer().layer(mock);

    let call = svc.ready().await.unwrap().call("trip");
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(io::Error::other("boom"));
    call.await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(secs(30)).await;

    let mut probe = Box::pin(svc.ready().await.unwrap().call("probe"));
    assert!(futures::poll!(&mut probe).is_pending());
    let (req, _pending_reply) = handle.next_request().await.unwrap();
    assert_eq!(req, "probe");
    assert!(futures::poll!(&mut probe).is_pending());
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    drop(probe);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::HalfOpen);

    let next = svc.ready().await.unwrap().call("next");
    let (req, reply) = handle.next_request().await.unwrap();
    assert_eq!(req, "next", "the next call is admitted as a probe at once");
    reply.send_response("pong");
    assert_eq!(next.await.unwrap(), "pong");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn outer_timeout_cancels_a_probe_and_frees_its_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .timeout(SEC)
        .layer(breaker.layer())
        .service(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(30)).await;

    let err = send(&mut svc, Req::Gated).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "a timeout outside the breaker is a cancellation, not a failure"
    );
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn inner_timeout_counts_as_a_failure() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .timeout(SEC)
        .service(Backend::default());
    for _ in 0..2 {
        let err = send(&mut svc, Req::SleepOk(5_000)).await.unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn dropping_an_unrecorded_permit_frees_the_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(secs(30));

    let permit = breaker.try_acquire().expect("first call after the wait");
    assert!(permit.is_probe());
    let open = breaker.try_acquire().expect_err("the only slot is taken");
    assert_eq!(open.state(), State::HalfOpen);
    drop(permit);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);

    let permit = breaker
        .try_acquire()
        .expect("the slot is free again, at once");
    assert!(permit.is_probe());
    permit.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    assert!(!breaker.try_acquire().unwrap().is_probe());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_breaker_call_future_mid_flight_frees_the_probe_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let r: Result<(), CallError<&str>> = breaker.call(|| async { Err("boom") }).await;
    assert!(r.is_err());
    tokio::time::advance(secs(30)).await;

    let notify = tokio::sync::Notify::new();
    let started = AtomicUsize::new(0);
    let mut call = Box::pin(breaker.call(|| async {
        started.fetch_add(1, SeqCst);
        notify.notified().await;
        Ok::<_, &str>(1)
    }));
    assert!(futures::poll!(&mut call).is_pending());
    assert_eq!(started.load(SeqCst), 1);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    assert!(breaker.try_acquire().is_err(), "the slot is taken");
    drop(call);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::HalfOpen);

    let r: Result<u32, CallError<&str>> = breaker.call(|| async { Ok(2) }).await;
    assert_eq!(r, Ok(2));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_closed_call_records_nothing() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    inner_error(send(&mut svc, Req::Fail).await);
    let mut call = Box::pin(svc.ready().await.unwrap().call(Req::Gated));
    assert!(futures::poll!(&mut call).is_pending());
    assert_eq!(backend.waiting(), 1, "the inner call is in flight");
    drop(call);
    backend.release(Err(io::Error::other("nobody listens")));
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    send(&mut svc, Req::Ok).await.unwrap();
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Closed);
}

// ===== stale outcomes =====

#[tokio::test(start_paused = true)]
async fn stale_closed_success_neither_counts_as_a_probe_nor_frees_a_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    let stale = svc.ready().await.unwrap().call(Req::Gated); // admitted while Closed
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);

    backend.release(Ok("late")); // the stale call
    assert_eq!(stale.await.unwrap(), "late");
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a stale success must not close"
    );
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (1, 0));
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).state(),
        State::HalfOpen,
        "the probe's slot is still taken"
    );

    backend.release(Ok("probe"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_closed_failure_neither_reopens_nor_extends_the_open_period() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(10))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    let stale_a = svc.ready().await.unwrap().call(Req::Gated);
    let stale_b = svc.ready().await.unwrap().call(Req::Gated);
    inner_error(send(&mut svc, Req::Fail).await);

    tokio::time::advance(secs(4)).await;
    backend.release(Err(io::Error::other("late")));
    inner_error(stale_a.await);
    assert_eq!(
        breaker.snapshot().retry_in,
        Some(secs(6)),
        "open period untouched"
    );

    tokio::time::advance(secs(6)).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    backend.release(Err(io::Error::other("late")));
    inner_error(stale_b.await);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a stale failure must not re-open"
    );
    assert_eq!(snap.probes_in_flight, 1);

    backend.release(Ok("probe"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_from_an_earlier_half_open_period_is_ignored() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    let old_ok = svc.ready().await.unwrap().call(Req::Gated);
    let old_dropped = svc.ready().await.unwrap().call(Req::Gated);
    inner_error(send(&mut svc, Req::Fail).await); // third probe fails: re-open
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(SEC).await;

    let new_probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    backend.release(Ok("old")); // old_ok
    old_ok.await.unwrap();
    drop(old_dropped);
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(
        (snap.probes_in_flight, snap.probe_successes),
        (1, 0),
        "old probes neither count nor free this period's slots"
    );

    backend.release(Ok("dropped")); // old_dropped's gate: nobody listens
    backend.release(Ok("new"));
    new_probe.await.unwrap();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// ===== concurrency =====

/// Counts calls in flight inside the inner service; decrements on completion or cancellation.
struct InFlight {
    now: Arc<AtomicUsize>,
}

impl InFlight {
    fn enter(now: &Arc<AtomicUsize>, max: &AtomicUsize) -> InFlight {
        let n = now.fetch_add(1, SeqCst) + 1;
        max.fetch_max(n, SeqCst);
        InFlight { now: now.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_half_open_probes_never_exceed_max_calls() {
    const MAX: u32 = 3;
    const TASKS: usize = 64;
    const ROUNDS: usize = 200;
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX),
    );
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (in_flight, max_seen, entered) = (in_flight.clone(), max_seen.clone(), entered.clone());
        tower::service_fn(move |fail: bool| {
            let (in_flight, max_seen, entered) =
                (in_flight.clone(), max_seen.clone(), entered.clone());
            async move {
                entered.fetch_add(1, SeqCst);
                let _guard = InFlight::enter(&in_flight, &max_seen);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                if fail {
                    Err(io::Error::other("boom"))
                } else {
                    Ok("ok")
                }
            }
        })
    };
    // Successes are ignored, so the breaker stays half-open for the whole test and every
    // admitted call is a probe.
    let layer = breaker
        .layer()
        .classifier(|r: &Result<&'static str, io::Error>| match r {
            Ok(_) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        });
    let mut svc = layer.layer(inner);
    inner_error(send_bool(&mut svc, true).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(entered.swap(0, SeqCst), 1);
    max_seen.store(0, SeqCst);
    clock.advance(SEC);

    let admitted = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mut svc = svc.clone();
        let (admitted, rejected, cancelled) =
            (admitted.clone(), rejected.clone(), cancelled.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let mut fut = Box::pin(svc.ready().await.unwrap().call(false));
                let result = if (t + round) % 4 == 0 {
                    // Cancel after one poll (the inner call, if admitted, is pending).
                    match futures::poll!(&mut fut) {
                        Poll::Pending => {
                            cancelled.fetch_add(1, SeqCst);
                            drop(fut);
                            continue;
                        }
                        Poll::Ready(result) => result,
                    }
                } else {
                    fut.await
                };
                match result {
                    Ok(_) => {
                        admitted.fetch_add(1, SeqCst);
                    }
                    Err(err) => {
                        let open = err.downcast_ref::<CircuitOpen>().expect("only rejections");
                        assert_eq!(open.state(), State::HalfOpen);
                        rejected.fetch_add(1, SeqCst);
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let max = max_seen.load(SeqCst);
    assert!(
        max <= MAX as usize,
        "{max} probes in flight at once, limit {MAX}"
    );
    assert!(max >= 1, "probes happened");
    assert!(admitted.load(SeqCst) > 0, "probes completed");
    assert!(
        rejected.load(SeqCst) > 0,
        "calls beyond the limit were rejected"
    );
    assert!(cancelled.load(SeqCst) > 0, "some probes were cancelled");
    assert!(entered.load(SeqCst) >= admitted.load(SeqCst));
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(snap.probes_in_flight, 0, "no slot leaked: {snap:?}");
    send_bool(&mut svc, false).await.unwrap();
}

async fn send_bool<S>(svc: &mut S, req: bool) -> Result<&'static str, BoxError>
where
    S: Service<bool, Response = &'static str, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_race_into_half_open_admits_exactly_max_calls() {
    const MAX: u32 = 3;
    const TASKS: usize = 64;
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX),
    );
    let backend = Backend::default();
    let svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc.clone(), Req::Fail).await);
    clock.advance(SEC);

    let decided = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut svc = svc.clone();
        let (decided, barrier) = (decided.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let fut = svc.ready().await.unwrap().call(Req::Gated);
            decided.fetch_add(1, SeqCst);
            fut.await
        }));
    }
    let mut spins = 0;
    while decided.load(SeqCst) < TASKS {
        spins += 1;
        assert!(spins < 1_000_000, "tasks never got to call");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        backend.calls(),
        1 + MAX as usize,
        "exactly MAX probes admitted"
    );
    assert_eq!(breaker.snapshot().probes_in_flight, MAX);
    assert_eq!(breaker.state(), State::HalfOpen);
    for _ in 0..MAX {
        backend.release(Ok("ok"));
    }
    let (mut ok, mut rejected) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => {
                assert_eq!(rejection::<()>(Err(err)).state(), State::HalfOpen);
                rejected += 1;
            }
        }
    }
    assert_eq!((ok, rejected), (MAX as usize, TASKS - MAX as usize));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_closed_failures_trip_exactly_once() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 50;
    let trips = Arc::new(AtomicUsize::new(0));
    let (breaker, _clock) = manual({
        let trips = trips.clone();
        CircuitBreaker::builder()
            .failure_threshold(10)
            .wait_in_open(secs(60))
            .on_state_change(move |_, c| {
                assert_eq!((c.from, c.to), (State::Closed, State::Open));
                trips.fetch_add(1, SeqCst);
            })
    });
    let backend = Backend::default();
    let svc = breaker.layer().layer(backend.clone());
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut rejected = 0;
            for _ in 0..ROUNDS {
                match send(&mut svc, Req::Fail).await {
                    Err(e) if ErrorKind::of(&*e) == ErrorKind::CircuitOpen => rejected += 1,
                    Err(_) => {}
                    Ok(_) => unreachable!(),
                }
                tokio::task::yield_now().await;
            }
            rejected
        }));
    }
    let mut rejected = 0;
    for task in tasks {
        rejected += task.await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        trips.load(SeqCst),
        1,
        "one trip, however many racing failures"
    );
    let calls = backend.calls();
    assert!(calls >= 10, "it took at least 10 failures to trip");
    assert_eq!(calls + rejected, TASKS * ROUNDS);
    assert!(rejected > 0);
}

// ===== sharing =====

#[tokio::test(start_paused = true)]
async fn clones_of_a_layered_service_share_one_breaker() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let backend = Backend::default();
    let mut a = breaker.layer().layer(backend.clone());
    let mut b = a.clone();
    inner_error(send(&mut a, Req::Fail).await);
    inner_error(send(&mut b, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "the clones counted together");
    rejection(send(&mut a, Req::Ok).await);
    rejection(send(&mut b, Req::Ok).await);
    assert_eq!(backend.calls(), 2);
    assert_eq!(a.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn one_layer_building_two_services_shares_one_breaker() {
    let layer = build(CircuitBreaker::builder().failure_threshold(2)).layer();
    let (backend_a, backend_b) = (Backend::default(), Backend::default());
    let mut a = layer.layer(backend_a.clone());
    let mut b = layer.layer(backend_b.clone());
    inner_error(send(&mut a, Req::Fail).await);
    inner_error(send(&mut b, Req::Fail).await);
    assert_eq!(layer.breaker().state(), State::Open);
    rejection(send(&mut b, Req::Ok).await);
    assert_eq!(backend_b.calls(), 1);
    rejection(send(&mut a, Req::Ok).await);
    assert_eq!(backend_a.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_built_breakers_are_independent() {
    let builder = CircuitBreaker::builder().failure_threshold(1);
    let one = build(builder.clone());
    let two = build(builder);
    let backend = Backend::default();
    let mut a = one.layer().layer(backend.clone());
    let mut b = two.layer().layer(backend.clone());
    inner_error(send(&mut a, Req::Fail).await);
    assert_eq!(one.state(), State::Open);
    assert_eq!(two.state(), State::Closed);
    assert_eq!(send(&mut b, Req::Ok).await.unwrap(), "ok");
    rejection(send(&mut a, Req::Ok).await);
}

// ===== classification =====

fn not_found_is_ignored(r: &Result<&'static str, io::Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_neither_count_nor_reset_consecutive_failures() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    for _ in 0..5 {
        inner_error(send(&mut svc, Req::NotFound).await);
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(
        breaker.state(),
        State::Open,
        "ignored calls did not break the run"
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_do_not_enter_the_rate_window() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(100.0)
            .count_window(10)
            .minimum_calls(2),
    );
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    for _ in 0..3 {
        inner_error(send(&mut svc, Req::NotFound).await);
    }
    assert_eq!(breaker.snapshot().calls, 1);
    inner_error(send(&mut svc, Req::Fail).await); // 2 of 2 = 100 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_probe_frees_its_slot_without_counting_as_a_success() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    for _ in 0..4 {
        inner_error(send(&mut svc, Req::NotFound).await);
        let snap = breaker.snapshot();
        assert_eq!(snap.state, State::HalfOpen);
        assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen, "one real success of two");
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn layer_classifier_sees_the_inner_concrete_error_type() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let classifier = {
        let seen = seen.clone();
        move |r: &Result<&'static str, io::Error>| {
            if let Err(e) = r {
                seen.lock().unwrap().push(e.kind());
            }
            not_found_is_ignored(r)
        }
    };
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let mut svc = breaker
        .layer()
        .classifier(classifier)
        .layer(Backend::default());

    let err = inner_error(send(&mut svc, Req::NotFound).await);
    assert_eq!(
        err.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::NotFound),
        "the caller gets the inner error, boxed"
    );
    assert_eq!(breaker.state(), State::Closed, "NotFound was ignored");
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![io::ErrorKind::NotFound, io::ErrorKind::Other]
    );
}

// ===== overrides =====

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_everything_until_reset() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    breaker.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    for _ in 0..3 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.state(), State::ForcedOpen);
        assert_eq!(open.retry_in(), Duration::ZERO);
    }
    tokio::time::advance(secs(3600)).await;
    rejection(send(&mut svc, Req::Ok).await);
    assert!(breaker.try_acquire().is_err());
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "no half-open after any wait"
    );
    assert_eq!(backend.calls(), 0);

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap();

    // Forcing open a half-open breaker also wins over its probes.
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.force_open();
    backend.release(Ok("ok"));
    probe.await.unwrap();
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "a probe cannot close a forced breaker"
    );
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_everything_never_trips_and_still_counts() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(2),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);

    breaker.disable();
    assert_eq!(breaker.state(), State::Disabled);
    for _ in 0..20 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(backend.calls(), 22, "every call reached the inner service");
    assert_eq!(breaker.state(), State::Disabled);
    let snap = breaker.snapshot();
    assert_eq!((snap.calls, snap.failures), (10, 9));
    assert_eq!(snap.failure_rate, Some(90.0));

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().calls, 0, "reset forgets the counts");
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "a normal breaker again");
}

#[tokio::test(start_paused = true)]
async fn reset_while_half_open_disowns_the_probes_in_flight() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap();
    backend.release(Err(io::Error::other("late probe failure")));
    inner_error(probe.await);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::Closed,
        "an old probe's failure must not trip"
    );
    assert_eq!(snap.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn disable_while_half_open_disowns_the_probes_in_flight() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);

    breaker.disable();
    backend.release(Err(io::Error::other("late probe failure")));
    inner_error(probe.await);
    assert_eq!(
        breaker.state(),
        State::Disabled,
        "the override wins over old probes"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_call_with_uses_the_given_classifier() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let lenient = |r: &Result<u32, &str>| match r {
        Err(e) if *e == "not found" => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    for _ in 0..3 {
        let r = breaker
            .call_with(&lenient, || async { Err::<u32, _>("not found") })
            .await;
        assert_eq!(r, Err(CallError::Inner("not found")));
        assert_eq!(breaker.state(), State::Closed);
    }
    let r = breaker
        .call_with(&lenient, || async { Err::<u32, _>("down") })
        .await;
    assert_eq!(r.unwrap_err().into_inner(), Some("down"));
    assert_eq!(breaker.state(), State::Open);
    let r = breaker.call_with(&lenient, || async { Ok(1) }).await;
    assert!(r.unwrap_err().is_rejected());
}

#[tokio::test(start_paused = true)]
async fn rejections_say_why_in_their_message() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(7))
            .half_open_max_calls(1),
    );
    let mut svc = breaker.layer().layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.to_string(), "circuit open; next probe in 7s");
    tokio::time::advance(secs(7)).await;
    let _probe = svc.ready().await.unwrap().call(Req::Gated);
    let busy = rejection(send(&mut svc, Req::Ok).await);
    assert!(busy.to_string().contains("half-open"), "{busy}");
    breaker.force_open();
    let forced = rejection(send(&mut svc, Req::Ok).await);
    assert!(forced.to_string().contains("forced open"), "{forced}");
}

#[test]
fn reset_of_a_closed_breaker_forgets_its_counts() {
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(5)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(10),
    );
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    breaker.reset();
    let snap = breaker.snapshot();
    assert_eq!((snap.consecutive_failures, snap.calls), (0, 0));
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn record_without_a_permit_counts_like_an_admitted_call() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    breaker.record(Outcome::Failure);
    breaker.record(Outcome::Ignored);
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    breaker.record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    breaker.record(Outcome::Success); // rejected: nothing recorded while open
    assert_eq!(breaker.state(), State::Open);
    clock.advance(SEC);
    breaker.record(Outcome::Success); // a probe
    assert_eq!(breaker.state(), State::Closed);
}

// ===== observability =====

#[test]
fn listener_sees_every_transition_in_order() {
    let log: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let (breaker, clock) = manual({
        let log = log.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(1)
            .wait_in_open(SEC)
            .on_state_change(move |_, c| log.lock().unwrap().push(*c))
    });

    record(&breaker, Outcome::Failure); // Closed -> Open
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap(); // Open -> HalfOpen
    probe.record(Outcome::Failure); // HalfOpen -> Open
    clock.advance(SEC);
    record(&breaker, Outcome::Success); // Open -> HalfOpen -> Closed
    breaker.force_open(); // Closed -> ForcedOpen
    breaker.force_open(); // no change
    breaker.reset(); // ForcedOpen -> Closed
    breaker.disable(); // Closed -> Disabled
    breaker.disable(); // no change
    breaker.reset(); // Disabled -> Closed

    use State::*;
    let log = log.lock().unwrap();
    let pairs: Vec<(State, State)> = log.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        pairs,
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, ForcedOpen),
            (ForcedOpen, Closed),
            (Closed, Disabled),
            (Disabled, Closed),
        ]
    );
    for w in log.windows(2) {
        assert_eq!(w[1].generation, w[0].generation + 1, "{log:?}");
    }
}

#[test]
fn snapshot_reports_state_counts_rates_and_timers() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(60.0)
            .slow_call_rate(60.0)
            .slow_call_duration(SEC)
            .count_window(10)
            .minimum_calls(4)
            .wait_in_open(secs(20))
            .half_open_max_calls(2),
    );
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::Closed);
    assert_eq!((snap.calls, snap.failures, snap.slow_calls), (0, 0, 0));
    assert_eq!(
        (snap.failure_rate, snap.slow_call_rate, snap.retry_in),
        (None, None, None)
    );

    record(&breaker, Outcome::Failure);
    let slow = breaker.try_acquire().unwrap();
    clock.advance(secs(2));
    slow.record(Outcome::Success);
    record(&breaker, Outcome::Success);
    let snap = breaker.snapshot();
    assert_eq!((snap.calls, snap.failures, snap.slow_calls), (3, 1, 1));
    assert_eq!(snap.consecutive_failures, 0);
    assert_eq!(snap.failure_rate, None, "3 calls < minimum_calls");
    record(&breaker, Outcome::Failure);
    let snap = breaker.snapshot();
    assert_eq!(snap.consecutive_failures, 1);
    assert_eq!(snap.failure_rate, Some(50.0));
    assert_eq!(snap.slow_call_rate, Some(25.0));
    assert_eq!(snap.state, State::Closed);

    record(&breaker, Outcome::Failure); // 3/5 = 60 %: trip
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::Open);
    assert_eq!(snap.retry_in, Some(secs(20)));
    clock.advance(secs(5));
    assert_eq!(breaker.snapshot().retry_in, Some(secs(15)));

    clock.advance(secs(15));
    let probe = breaker.try_acquire().unwrap();
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (1, 0));
    assert_eq!(snap.retry_in, None);
    probe.record(Outcome::Success);
    let snap = breaker.snapshot();
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 1));
}

#[test]
fn listener_may_call_back_into_the_breaker() {
    let cell: Arc<std::sync::OnceLock<CircuitBreaker>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (breaker, _clock) = manual({
        let (cell, seen) = (cell.clone(), seen.clone());
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |_, c| {
                let b = cell.get().expect("set before any transition");
                // Reads the state the change led to: no lock is held during the callback.
                seen.lock()
                    .unwrap()
                    .push((c.to, b.state(), b.snapshot().state));
            })
    });
    cell.set(breaker.clone()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let b = breaker.clone();
    std::thread::spawn(move || {
        record(&b, Outcome::Failure);
        b.reset();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a listener calling back into the breaker deadlocked");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Open, State::Open, State::Open),
            (State::Closed, State::Closed, State::Closed)
        ]
    );
}

#[test]
fn panicking_classifier_or_inner_call_frees_the_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);

    // The inner service panics inside `call`.
    let mut svc = breaker.layer().layer(tower::service_fn(|boom: bool| {
        assert!(!boom, "inner service panicked");
        futures::future::ready(Ok::<_, io::Error>("ok"))
    }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(svc.call(true));
    }));
    assert!(r.is_err());
    assert_eq!(breaker.snapshot().probes_in_flight, 0);

    // The classifier panics.
    let mut svc = breaker
        .layer()
        .classifier(|_: &Result<&'static str, io::Error>| -> Outcome {
            panic!("classifier panicked")
        })
        .layer(tower::service_fn(|_: ()| {
            futures::future::ready(Ok::<_, io::Error>("ok"))
        }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(svc.call(()))
    }));
    assert!(r.is_err());
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(snap.probes_in_flight, 0, "no slot leaked");
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}

// ===== configuration =====

#[test]
fn invalid_configurations_name_the_offending_field() {
    let b = CircuitBreaker::builder;
    let cases: Vec<(&str, Builder, &str)> = vec![
        (
            "failure_threshold 0",
            b().failure_threshold(0),
            "failure_threshold",
        ),
        ("failure_rate 0", b().failure_rate(0.0), "failure_rate"),
        ("failure_rate -0", b().failure_rate(-0.0), "failure_rate"),
        ("failure_rate -1", b().failure_rate(-1.0), "failure_rate"),
        ("failure_rate 101", b().failure_rate(101.0), "failure_rate"),
        (
            "failure_rate 100+",
            b().failure_rate(100.000_001),
            "failure_rate",
        ),
        (
            "failure_rate NaN",
            b().failure_rate(f64::NAN),
            "failure_rate",
        ),
        (
            "failure_rate inf",
            b().failure_rate(f64::INFINITY),
            "failure_rate",
        ),
        (
            "slow_call_rate without duration",
            b().slow_call_rate(50.0),
            "slow_call_rate",
        ),
        (
            "slow_call_rate NaN",
            b().slow_call_rate(f64::NAN).slow_call_duration(SEC),
            "slow_call_rate",
        ),
        (
            "slow_call_rate 0",
            b().slow_call_rate(0.0).slow_call_duration(SEC),
            "slow_call_rate",
        ),
        (
            "slow_call_duration zero",
            b().slow_call_rate(50.0).slow_call_duration(Duration::ZERO),
            "slow_call_duration",
        ),
        (
            "slow_call_duration zero, no rate",
            b().slow_call_duration(Duration::ZERO),
            "slow_call_duration",
        ),
        ("minimum_calls 0", b().minimum_calls(0), "minimum_calls"),
        (
            "minimum_calls > count window",
            b().count_window(5).minimum_calls(6),
            "minimum_calls",
        ),
        ("count window 0", b().count_window(0), "sliding_window"),
        (
            "time window 0",
            b().time_window(Duration::ZERO),
            "sliding_window",
        ),
        (
            "time window 0 buckets",
            b().sliding_window(SlidingWindow::Time {
                duration: secs(10),
                buckets: 0,
            }),
            "sliding_window.buckets",
        ),
        (
            "count window too large",
            b().count_window((1 << 24) + 1),
            "sliding_window",
        ),
        (
            "time window too many buckets",
            b().sliding_window(SlidingWindow::Time {
                duration: secs(10),
                buckets: 4097,
            }),
            "sliding_window.buckets",
        ),
        (
            "wait_in_open 0",
            b().wait_in_open(Duration::ZERO),
            "wait_in_open",
        ),
        (
            "multiplier < 1",
            b().wait_in_open_multiplier(0.5),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier negative",
            b().wait_in_open_multiplier(-2.0),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier NaN",
            b().wait_in_open_multiplier(f64::NAN),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier inf",
            b().wait_in_open_multiplier(f64::INFINITY),
            "wait_in_open_multiplier",
        ),
        (
            "max_wait_in_open < wait_in_open",
            b().wait_in_open(secs(10)).max_wait_in_open(secs(9)),
            "max_wait_in_open",
        ),
        (
            "half_open_max_calls 0",
            b().half_open_max_calls(0),
            "half_open_max_calls",
        ),
        (
            "half_open_max_calls too large",
            b().half_open_max_calls(MAX_HALF_OPEN_CALLS + 1),
            "half_open_max_calls",
        ),
        (
            "half_open_max_calls u32::MAX",
            b().half_open_max_calls(u32::MAX),
            "half_open_max_calls",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, builder, field) in cases {
        match builder.build() {
            Ok(_) => wrong.push(format!("{what}: accepted")),
            Err(e) if e.field() != field => wrong.push(format!(
                "{what}: field {:?}, expected {field:?} ({e})",
                e.field()
            )),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn invalid_configurations_use_the_right_error_kind() {
    let b = CircuitBreaker::builder;
    assert!(matches!(
        b().failure_threshold(0).build(),
        Err(ConfigError::Zero {
            field: "failure_threshold"
        })
    ));
    assert!(matches!(
        b().failure_rate(101.0).build(),
        Err(ConfigError::OutOfRange { value, .. }) if value == 101.0
    ));
    assert!(matches!(
        b().failure_rate(f64::NAN).build(),
        Err(ConfigError::NotFinite { .. })
    ));
    assert!(matches!(
        b().slow_call_rate(10.0).build(),
        Err(ConfigError::Conflict { .. })
    ));
    assert!(matches!(
        b().wait_in_open_multiplier(0.99).build(),
        Err(ConfigError::TooSmall { min, .. }) if min == 1.0
    ));
    let err = b().max_wait_in_open(SEC).build().unwrap_err();
    assert!(err.to_string().contains("max_wait_in_open"), "{err}");
}

#[test]
fn boundary_configurations_are_accepted() {
    let b = CircuitBreaker::builder;
    let ok: Vec<(&str, Builder)> = vec![
        ("failure_rate 100", b().failure_rate(100.0)),
        ("failure_rate tiny", b().failure_rate(f64::MIN_POSITIVE)),
        ("failure_threshold 1", b().failure_threshold(1)),
        ("failure_threshold MAX", b().failure_threshold(u32::MAX)),
        (
            "minimum_calls == window",
            b().count_window(7).minimum_calls(7),
        ),
        ("count window 1", b().count_window(1).minimum_calls(1)),
        (
            "half_open_max_calls MAX",
            b().half_open_max_calls(MAX_HALF_OPEN_CALLS),
        ),
        ("multiplier 1", b().wait_in_open_multiplier(1.0)),
        ("max == wait", b().wait_in_open(SEC).max_wait_in_open(SEC)),
        (
            "slow duration without rate",
            b().slow_call_duration(Duration::from_nanos(1)),
        ),
    ];
    for (what, builder) in ok {
        assert!(builder.build().is_ok(), "{what} was refused");
    }
}

/// Exercises a built breaker through a full cycle, with extreme time jumps.
fn exercise(breaker: &CircuitBreaker, clock: &ManualClock) {
    for _ in 0..3 {
        if let Ok(p) = breaker.try_acquire() {
            clock.advance(secs(1));
            p.record(Outcome::Failure);
        }
    }
    let _ = breaker.snapshot();
    clock.advance(Duration::from_secs(u64::from(u32::MAX)));
    for outcome in [Outcome::Success, Outcome::Ignored, Outcome::Failure] {
        if let Ok(p) = breaker.try_acquire() {
            p.record(outcome);
        }
        let _ = breaker.snapshot();
    }
    clock.advance(Duration::MAX);
    for _ in 0..3 {
        if let Ok(p) = breaker.try_acquire() {
            p.record(Outcome::Failure);
        }
        let _ = breaker.try_acquire().map(|p| p.record(Outcome::Success));
        let _ = breaker.snapshot();
    }
    breaker.force_open();
    breaker.disable();
    let _ = breaker.try_acquire().map(|p| p.record(Outcome::Failure));
    breaker.reset();
    let _ = breaker.snapshot();
}

#[test]
fn no_builder_input_panics() {
    let counts = [
        0,
        1,
        2,
        3,
        100,
        MAX_HALF_OPEN_CALLS,
        MAX_HALF_OPEN_CALLS + 1,
        1 << 24,
        (1 << 24) + 1,
        u32::MAX,
    ];
    let floats = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        0.5,
        1.0,
        1.5,
        50.0,
        100.0,
        100.5,
        1e300,
        f64::MAX,
    ];
    let durations = [
        Duration::ZERO,
        Duration::from_nanos(1),
        ms(1),
        SEC,
        secs(86_400 * 365 * 100),
        Duration::MAX,
    ];
    let base = || {
        CircuitBreaker::builder()
            .failure_threshold(2)
            .failure_rate(50.0)
            .slow_call_rate(50.0)
            .slow_call_duration(SEC)
            .minimum_calls(2)
            .count_window(4)
            .half_open_max_calls(2)
    };
    let mut builders: Vec<(String, Builder)> = Vec::new();
    for &n in &counts {
        builders.push((
            format!("failure_threshold {n}"),
            base().failure_threshold(n),
        ));
        builders.push((format!("minimum_calls {n}"), base().minimum_calls(n)));
        builders.push((
            format!("count_window {n}"),
            base().minimum_calls(1).count_window(n),
        ));
        builders.push((
            format!("half_open_max_calls {n}"),
            base().half_open_max_calls(n),
        ));
        for &d in &durations {
            builders.push((
                format!("time window {d:?} / {n} buckets"),
                base().sliding_window(SlidingWindow::Time {
                    duration: d,
                    buckets: n,
                }),
            ));
        }
    }
    for &f in &floats {
        builders.push((format!("failure_rate {f}"), base().failure_rate(f)));
        builders.push((format!("slow_call_rate {f}"), base().slow_call_rate(f)));
    }
    for &d in &durations {
        builders.push((
            format!("slow_call_duration {d:?}"),
            base().slow_call_duration(d),
        ));
        for &m in &floats {
            for &max in &durations {
                builders.push((
                    format!("wait {d:?} x{m} max {max:?}"),
                    base()
                        .wait_in_open(d)
                        .wait_in_open_multiplier(m)
                        .max_wait_in_open(max),
                ));
            }
        }
    }

    let mut panicked = Vec::new();
    let mut built = 0;
    for (what, builder) in builders {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let clock = ManualClock::new();
            if let Ok(breaker) = builder.clock(Clock::from(clock.clone())).build() {
                exercise(&breaker, &clock);
                true
            } else {
                false
            }
        }));
        match result {
            Ok(true) => built += 1,
            Ok(false) => {}
            Err(_) => panicked.push(what),
        }
    }
    assert!(built > 100, "the sweep built only {built} breakers");
    assert!(panicked.is_empty(), "panicked on: {panicked:#?}");
}

// ===== regressions: bugs found while writing this suite =====

#[test]
fn stale_disabled_outcome_does_not_wipe_the_closed_window() {
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(100.0)
            .count_window(4)
            .minimum_calls(4),
    );
    breaker.disable();
    let stale = breaker.try_acquire().expect("disabled admits");
    breaker.reset();
    for _ in 0..3 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.snapshot().calls, 3);
    stale.record(Outcome::Success); // admitted while Disabled; says nothing about Closed
    assert_eq!(
        breaker.snapshot().calls,
        3,
        "a stale outcome must not touch the current window"
    );
    record(&breaker, Outcome::Failure); // 4 of 4 failed
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_very_long_wait_in_open_is_not_silently_shortened() {
    let forty_years = secs(86_400 * 365 * 40);
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(forty_years)
            .max_wait_in_open(forty_years),
    );
    record(&breaker, Outcome::Failure);
    let open = breaker.try_acquire().expect_err("open");
    assert_eq!(open.retry_in(), forty_years);
}

#[test]
fn the_breaker_still_opens_after_35_years_of_clock_time() {
    let (breaker, clock) = manual(CircuitBreaker::builder().failure_threshold(1));
    clock.advance(secs(86_400 * 365 * 35));
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    let open = breaker
        .try_acquire()
        .expect_err("the 30 s wait has only just started");
    assert_eq!(open.retry_in(), secs(30));
}

#[test]
fn panicking_listener_cannot_wedge_the_breaker_in_half_open() {
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (breaker, clock) = manual({
        let panicked = panicked.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3)
            .on_state_change(move |_, c| {
                if c.to == State::HalfOpen && !panicked.swap(true, SeqCst) {
                    panic!("metrics exporter panicked");
                }
            })
    });
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| breaker.try_acquire()));
    assert!(r.is_err(), "the listener panicked through try_acquire");
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(
        breaker.snapshot().probes_in_flight,
        0,
        "nobody holds the first probe's permit"
    );
    for _ in 0..3 {
        record(&breaker, Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn reset_forgets_counts_even_after_two_to_the_21_transitions() {
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(5));
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    for _ in 0..(1u32 << 21) {
        breaker.reset();
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Closed, "one failure after a reset");
}

#[test]
fn default_minimum_calls_follows_a_smaller_count_window() {
    // Without an explicit minimum_calls, a 4-call window evaluates its rate at 4 calls
    // instead of refusing the default of 10.
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(4),
    );
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Success] {
        record(&breaker, outcome);
    }
    assert_eq!(breaker.state(), State::Closed, "3 calls: below the window");
    record(&breaker, Outcome::Failure); // 2 of 4 failed
    assert_eq!(breaker.state(), State::Open);
    // An explicit minimum_calls above the window is still refused.
    let err = CircuitBreaker::builder()
        .failure_rate(50.0)
        .count_window(4)
        .minimum_calls(5)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "minimum_calls");
}

#[tokio::test(start_paused = true)]
async fn open_period_jitter_shortens_waits_within_the_fraction_and_varies() {
    let mut waits = Vec::new();
    for seed in 0..20 {
        let (breaker, _clock) = manual(
            CircuitBreaker::builder()
                .failure_threshold(1)
                .wait_in_open(secs(30))
                .wait_in_open_jitter(0.2)
                .jitter_seed(seed),
        );
        record(&breaker, Outcome::Failure);
        let wait = breaker.try_acquire().unwrap_err().retry_in();
        assert!(wait >= secs(24) && wait <= secs(30), "{wait:?}");
        waits.push(wait);
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 10, "jitter should vary the wait: {waits:?}");
    // The same seed gives the same wait.
    let wait_of = |seed| {
        let (b, _c) = manual(
            CircuitBreaker::builder()
                .failure_threshold(1)
                .wait_in_open_jitter(0.5)
                .jitter_seed(seed),
        );
        record(&b, Outcome::Failure);
        b.try_acquire().unwrap_err().retry_in()
    };
    assert_eq!(wait_of(7), wait_of(7));
    for bad in [-0.1, 0.95, 1.1, f64::NAN] {
        let err = CircuitBreaker::builder()
            .wait_in_open_jitter(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "wait_in_open_jitter");
    }
}

#[tokio::test]
async fn bare_call_errors_tell_their_kind() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let err = breaker
        .call(|| async { Err::<(), _>(tower::timeout::error::Elapsed::new()) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let err = breaker
        .call(|| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap_err();
    assert!(err.is_rejected());
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    // Through the source chain too, once boxed.
    let boxed: BoxError = Box::new(err);
    assert_eq!(ErrorKind::of(&*boxed), ErrorKind::CircuitOpen);
}

/// Sets its flag when dropped: tells whether the breaker holding it was freed.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

fn drop_flag() -> (DropFlag, Arc<std::sync::atomic::AtomicBool>) {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    (DropFlag(flag.clone()), flag)
}

/// A breaker whose listener logs every state change and owns a drop flag.
fn logged(
    builder: Builder,
) -> (
    CircuitBreaker,
    ManualClock,
    Log,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let log = Log::default();
    let (flag, freed) = drop_flag();
    let (breaker, clock) = manual({
        let log = log.clone();
        builder.on_state_change(move |_, c| {
            let _owned = &flag;
            log.lock().unwrap().push((c.from, c.to));
        })
    });
    (breaker, clock, log, freed)
}

type Log = Arc<Mutex<Vec<(State, State)>>>;

#[tokio::test(start_paused = true)]
async fn a_call_that_outlives_its_breaker_completes_and_still_records() {
    // A call in flight holds its breaker: once every handle is gone (a reload dropped the
    // stack), the call completes and its outcome still counts, and trips the breaker here.
    let (breaker, _clock, log, freed) = logged(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .failure_rate(50.0)
            .count_window(4)
            .wait_in_open(SEC),
    );
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(backend.clone());
    let pending = svc.ready().await.unwrap().call(Req::Gated);
    drop((breaker, svc));
    assert!(
        !freed.load(SeqCst),
        "the call in flight keeps the breaker alive"
    );
    let task = tokio::spawn(pending);
    tokio::task::yield_now().await;
    backend.release(Err(io::Error::other("late")));
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner, "{err}");
    assert_eq!(
        *log.lock().unwrap(),
        vec![(State::Closed, State::Open)],
        "the late failure was recorded and tripped the breaker"
    );
    assert!(freed.load(SeqCst), "the last permit freed the breaker");
}

#[test]
fn a_probe_that_outlives_its_breaker_still_closes_it_and_a_dropped_one_frees_memory() {
    let (breaker, clock, log, freed) = logged(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert!(first.is_probe() && second.is_probe());
    let third = breaker.try_acquire().unwrap_err();
    assert_eq!(third.state(), State::HalfOpen);
    drop(breaker);
    first.record(Outcome::Success);
    assert!(!freed.load(SeqCst));
    second.record(Outcome::Success);
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    assert!(freed.load(SeqCst));

    // A cancelled call is the last holder: dropping it frees the breaker too.
    let (breaker, _clock, _log, freed) = logged(CircuitBreaker::builder());
    let permit = breaker.try_acquire().unwrap();
    drop(breaker);
    assert!(!freed.load(SeqCst));
    drop(permit);
    assert!(freed.load(SeqCst));
}

#[test]
fn a_listener_that_uses_its_breaker_does_not_keep_it_alive() {
    // The listener is handed the breaker: it captures nothing, so there is no cycle.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (flag, freed) = drop_flag();
    let (breaker, _clock) = manual({
        let seen = seen.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |b, c| {
                let _owned = &flag;
                seen.lock()
                    .unwrap()
                    .push((c.to, b.state(), b.snapshot().state));
                if c.to == State::Open {
                    b.reset(); // calling back into its own breaker, without deadlock
                }
            })
    });
    record(&breaker, Outcome::Failure);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Open, State::Open, State::Open),
            (State::Closed, State::Closed, State::Closed)
        ]
    );
    let clone = breaker.clone();
    drop(breaker);
    assert!(!freed.load(SeqCst), "a clone is still alive");
    drop(clone);
    assert!(
        freed.load(SeqCst),
        "the breaker and its listener were freed"
    );
}

// ===== the generation (issue 11: it used to wrap at 2^21) =====

#[test]
fn a_stale_failure_does_not_trip_after_2_to_the_21_resets() {
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(1));
    let stale = breaker.try_acquire().unwrap(); // closed, generation 0
    for _ in 0..(1u32 << 21) {
        breaker.reset();
    }
    stale.record(Outcome::Failure);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a failure admitted 2^21 generations ago counts for nothing"
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[test]
fn a_stale_probe_does_not_free_a_current_probe_slot_after_2_to_the_21_transitions() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let stale = breaker.try_acquire().unwrap(); // half-open, generation g
    assert!(stale.is_probe());
    // Closed at g + 2^21 - 2, open at g + 2^21 - 1, half-open again at g + 2^21.
    for _ in 0..((1u32 << 21) - 2) {
        breaker.reset();
    }
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let current = breaker.try_acquire().unwrap();
    assert!(current.is_probe());
    drop(stale); // must not free `current`'s slot
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    let other = breaker.try_acquire().unwrap();
    assert!(other.is_probe());
    let open = breaker
        .try_acquire()
        .expect_err("two probes in flight with a limit of two");
    assert_eq!(open.state(), State::HalfOpen);
    drop((current, other));
}

#[test]
fn a_time_window_narrower_than_a_nanosecond_per_bucket_is_refused() {
    // 1 µs over 4,096 buckets would be widened to 4,096 ns: a 3 µs-old call would count.
    let err = CircuitBreaker::builder()
        .failure_rate(50.0)
        .sliding_window(SlidingWindow::Time {
            duration: Duration::from_micros(1),
            buckets: 4096,
        })
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "sliding_window", "{err}");
    assert!(err.to_string().contains("4096 buckets"), "{err}");
    // One nanosecond per bucket is exact, and accepted.
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(1)
            .sliding_window(SlidingWindow::Time {
                duration: Duration::from_nanos(4096),
                buckets: 4096,
            }),
    );
    record(&breaker, Outcome::Success);
    clock.advance(Duration::from_nanos(4096));
    assert_eq!(
        breaker.snapshot().calls,
        0,
        "a 4,096 ns-old call has left the window"
    );
}

#[test]
fn half_open_max_calls_is_bounded_by_the_probe_counters() {
    // 14 bits each for probes in flight and probe successes, so the generation has 32.
    assert_eq!(MAX_HALF_OPEN_CALLS, 16_383);
    for too_many in [MAX_HALF_OPEN_CALLS + 1, (1 << 20) - 1] {
        let err = CircuitBreaker::builder()
            .half_open_max_calls(too_many)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "half_open_max_calls", "{err}");
    }
    // At the limit, every slot is usable and the counters do not spill into each other.
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX_HALF_OPEN_CALLS),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let mut probes: Vec<_> = (0..MAX_HALF_OPEN_CALLS)
        .map(|_| breaker.try_acquire().unwrap())
        .collect();
    assert_eq!(breaker.try_acquire().unwrap_err().state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, MAX_HALF_OPEN_CALLS);
    let last = probes.pop().unwrap();
    for probe in probes {
        probe.record(Outcome::Success);
    }
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.state, snap.probes_in_flight, snap.probe_successes),
        (State::HalfOpen, 1, MAX_HALF_OPEN_CALLS - 1)
    );
    last.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn failure_threshold_is_bounded_by_the_state_words_count() {
    use seawall::circuit_breaker::MAX_FAILURE_THRESHOLD;
    let err = CircuitBreaker::builder()
        .failure_threshold(MAX_FAILURE_THRESHOLD + 1)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "failure_threshold");
    assert!(CircuitBreaker::builder()
        .failure_threshold(MAX_FAILURE_THRESHOLD)
        .build()
        .is_ok());
    // `u32::MAX` means "never on consecutive failures".
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(u32::MAX));
    for _ in 0..1000 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().consecutive_failures, 1000);
}

#[tokio::test(start_paused = true)]
async fn a_listener_panic_inside_a_recorded_outcome_leaves_a_consistent_breaker() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1)
            .on_state_change(|_, c| {
                if c.to == State::Open {
                    panic!("exporter down");
                }
            }),
    );
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(Backend::default());
    // The failure trips the breaker; the listener panics out of the response future.
    let fut = svc.ready().await.unwrap().call(Req::Fail);
    let panicked = tokio::spawn(fut).await;
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(breaker.state(), State::Open, "the transition happened");
    // And the breaker carries on: the probe after the wait closes it.
    clock.advance(SEC);
    assert_eq!(send(&mut svc, Req::Ok).await.unwrap(), "ok");
    assert_eq!(breaker.state(), State::Closed);
}

// ===== the observation seam =====

/// Logs every event a listener receives.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Listener for Events {
    fn on_event(&self, _: &CircuitBreaker, event: &Event) {
        self.0.lock().unwrap().push(*event);
    }
}

impl Events {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn recorded(outcome: Outcome, slow: bool, probe: bool) -> Event {
    Event::Recorded(Recorded {
        outcome,
        slow,
        probe,
    })
}

#[test]
fn every_outcome_rejection_and_state_change_reaches_a_listener() {
    let events = Events::default();
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(SEC)
            .half_open_max_calls(1)
            .listener(events.clone()),
    );
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Ignored);
    record(&breaker, Outcome::Failure);
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Success, false, false),
            recorded(Outcome::Ignored, false, false),
            recorded(Outcome::Failure, false, false),
        ]
    );
    record(&breaker, Outcome::Failure); // trips: the outcome first, then the change it caused
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Failure, false, false),
            Event::StateChange(StateChange {
                from: State::Closed,
                to: State::Open,
                generation: 1
            }),
            Event::Rejected(open),
        ]
    );
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap();
    let full = breaker.try_acquire().unwrap_err();
    probe.record(Outcome::Success);
    assert_eq!(
        events.take(),
        vec![
            Event::StateChange(StateChange {
                from: State::Open,
                to: State::HalfOpen,
                generation: 2
            }),
            Event::Rejected(full),
            recorded(Outcome::Success, false, true),
            Event::StateChange(StateChange {
                from: State::HalfOpen,
                to: State::Closed,
                generation: 3
            }),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_listener_sees_slow_calls() {
    let events = Events::default();
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .slow_call_rate(100.0)
            .slow_call_duration(ms(100))
            .minimum_calls(5)
            .listener(events.clone()),
    );
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(Backend::default());
    send(&mut svc, Req::SleepOk(100)).await.unwrap();
    send(&mut svc, Req::SleepOk(99)).await.unwrap();
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Success, true, false),
            recorded(Outcome::Success, false, false)
        ]
    );
}

#[test]
fn a_listener_panicking_on_an_outcome_cannot_leak_a_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2)
            .listener(|_: &CircuitBreaker, e: &Event| {
                if matches!(e, Event::Recorded(r) if r.probe && r.outcome == Outcome::Ignored) {
                    panic!("exporter down");
                }
            }),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe.record(Outcome::Ignored)
    }));
    assert!(r.is_err(), "the listener panicked through record");
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(
        (snap.probes_in_flight, snap.probe_successes),
        (0, 0),
        "the slot was freed exactly once"
    );
    for _ in 0..2 {
        record(&breaker, Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_listener_without_events_of_interest_changes_nothing() {
    // `on_state_change` is sugar over a listener: outcomes and rejections do not reach it.
    let calls = Arc::new(AtomicUsize::new(0));
    let (breaker, _clock) = manual({
        let calls = calls.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |_, _| {
                calls.fetch_add(1, SeqCst);
            })
    });
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Failure);
    let _ = breaker.try_acquire().unwrap_err();
    assert_eq!(calls.load(SeqCst), 1, "one state change");
}
