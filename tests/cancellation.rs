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
