//! Regressions from the adversarial review of the throttle, retry observability, metrics and
//! the breaker's handling of inner refusals: each test failed against the code it was
//! written for, and passes since its fix (an exhausted budget counts as the failure it
//! carries; a throttle dates accepts by a clock read, like rejections; the throttle's
//! probability gauge reads the throttle).

use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::ManualClock;
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::throttle::AdaptiveThrottle;
use seawall::{BoxError, ErrorKind, Outcome};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

// ===== 1. BudgetExhausted wraps a real failure, yet the breaker ignores it =====

fn always_failing_backend_behind(
    breaker: &CircuitBreaker,
    retry: &Retry,
) -> impl Service<(), Response = (), Error = BoxError> {
    ServiceBuilder::new()
        .layer(breaker.layer())
        .layer(retry.layer())
        .service(service_fn(|_: ()| async {
            Err::<(), BoxError>("503 from the backend".into())
        }))
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(3)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A breaker outside a retry: with `max_retries(0)` the backend's failures trip it; with a
/// retry whose budget is empty, the *same* failures (the backend was asked, once per call,
/// and failed) come back as `BudgetExhausted`, which `classify::outcome_of` takes for a
/// refusal "the dependency was not asked" and records as Ignored: the breaker never opens.
#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_hides_real_failures_from_an_outer_breaker() {
    // Control: no retries at all; the breaker sees the 503s and opens.
    let control = breaker();
    let no_retry = Retry::builder().max_retries(0).no_budget().build().unwrap();
    let mut svc = always_failing_backend_behind(&control, &no_retry);
    for _ in 0..3 {
        let _ = svc.ready().await.unwrap().call(()).await;
    }
    assert_eq!(control.state(), State::Open, "control: 3 failures open it");

    // The same backend, with a retry whose budget allows nothing.
    let breaker = breaker();
    let empty = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1) // one retry in the first second, then nothing
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(3)
        .budget(empty)
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .build()
        .unwrap();
    let mut svc = always_failing_backend_behind(&breaker, &retry);
    for _ in 0..3 {
        let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::BudgetExhausted);
        // The backend's own failure is right there in the chain.
        assert!(std::error::Error::source(&*err).is_some());
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "3 calls, each a real 503 from the backend (as in the control), recorded as ignored"
    );
}

// ===== 2. An accept is dated to the previous settlement, not to its verdict =====

/// The docs (`throttle` module, "The window"; `Builder::window`): "a verdict is forgotten
/// between 0.9 × and 1 × `window` after it was counted, never later". An accept recorded
/// while nothing is shed goes to a stripe, and the next settlement dates it to the bucket of
/// the *previous* settlement, which for a call longer than the window is out of the window
/// already: the accept is forgotten the moment it is counted. A rejection is dated by a clock
/// read, so it is kept for the whole window.
#[test]
fn a_long_calls_accept_is_counted_for_the_window_like_its_rejection() {
    let time = ManualClock::new();
    let t = AdaptiveThrottle::builder()
        .clock(time.clone())
        .window(Duration::from_secs(1))
        .seed(1)
        .build()
        .unwrap();
    let permit = t.try_acquire().unwrap();
    time.advance(Duration::from_millis(1_500)); // the call takes 1.5 s
    permit.record(Outcome::Success);
    let s = t.snapshot();
    assert_eq!(
        (s.requests, s.accepts),
        (1, 1),
        "the accept was just counted; it must stay 0.9 s at least"
    );
}

/// A sequential client against a backend that accepts 3 calls in 5 (k = 2: requests are
/// 1.67 × accepts, so nothing should ever be shed): `(made, shed)`.
fn sequential_client(window: Duration, call: Duration, calls: u32) -> (u32, u32) {
    let time = ManualClock::new();
    let t = AdaptiveThrottle::builder()
        .clock(time.clone())
        .window(window)
        .seed(5)
        .build()
        .unwrap();
    let (mut made, mut shed) = (0u32, 0u32);
    for _ in 0..calls {
        match t.try_acquire() {
            Ok(permit) => {
                made += 1;
                time.advance(call);
                permit.record(if made % 5 < 3 {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
            }
            Err(_) => {
                shed += 1;
                time.advance(call / 10);
            }
        }
    }
    (made, shed)
}

/// With the defaults (a 2-minute window, buckets of 12 s) and sequential 30 s calls (long
/// polls, uploads): each accept is dated 30 s early, each rejection on time, so the window
/// holds fewer accepts than were made and the throttle sheds (73 calls of 400 here) although
/// the backend accepts 60 %. (Dating accepts at their verdict, the same run sheds none.)
#[test]
fn slow_calls_under_the_default_window_are_not_throttled_at_a_60_percent_accept_rate() {
    let (made, shed) = sequential_client(Duration::from_secs(120), Duration::from_secs(30), 400);
    assert_eq!(shed, 0, "{shed} shed, {made} made");
}

/// The throttle outside a retry whose budget is empty (a throttle per client, around a
/// retrying client library, say): every call reached the backend and was rejected, yet the
/// throttle counts nothing, because the retry's `BudgetExhausted` is taken for a refusal made
/// before the call.
#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_hides_real_rejections_from_an_outer_throttle() {
    let throttle = AdaptiveThrottle::builder()
        .clock(ManualClock::new())
        .seed(1)
        .build()
        .unwrap();
    let empty = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(3)
        .budget(empty)
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(throttle.layer())
        .layer(retry.layer())
        .service(service_fn(|_: ()| async {
            Err::<(), BoxError>("503 from the backend".into())
        }));
    for _ in 0..5 {
        let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
        // The retry gave up on the backend's 503, or the throttle shed the call.
        let kind = ErrorKind::of(&*err);
        assert!(
            kind == ErrorKind::BudgetExhausted || kind == ErrorKind::Throttled,
            "{kind:?}"
        );
    }
    let s = throttle.snapshot();
    assert!(s.requests >= 5, "5 rejected calls counted as {s:?}");
}

// ===== 3. The throttle's probability gauge can be left stale for good =====

/// Events are announced after the settling caller left the gate, so two callers' events can
/// reach the listeners in the opposite order of their settlements. `ThrottleMetrics` writes
/// the value the event carries, so when a `SheddingStarted` is overtaken by the
/// `SheddingStopped` that followed it, the gauge ends at the old probability while the
/// throttle sheds nothing; and since nothing is shed, no further event corrects it. (The
/// breaker's metrics avoid this by reading the state at the event: "the state now, not
/// `change.to`".) The race is forced here by a listener ahead of the metrics that holds
/// one thread inside its `SheddingStarted` until the other has stopped the shedding.
#[cfg(feature = "metrics")]
#[test]
fn the_probability_gauge_ends_at_the_throttles_probability() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use seawall::metrics::ThrottleMetrics;
    use seawall::throttle::Event;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let held = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let first = Arc::new(AtomicBool::new(true));
    let (h, r, f) = (held.clone(), release.clone(), first.clone());
    let time = ManualClock::new();
    let t = metrics::with_local_recorder(&recorder, || {
        AdaptiveThrottle::builder()
            .clock(time.clone())
            .window(Duration::from_secs(10))
            .seed(9)
            .listener(move |_: &AdaptiveThrottle, e: &Event| {
                if matches!(e, Event::SheddingStarted { .. }) && f.swap(false, Ordering::SeqCst) {
                    h.wait(); // the other thread may go on
                    r.wait(); // until it has stopped the shedding
                }
            })
            .listener(ThrottleMetrics::new("t"))
            .build()
            .unwrap()
    });
    let x = {
        let t = t.clone();
        std::thread::spawn(move || t.record(Outcome::Failure)) // p: 0 -> 0.5
    };
    held.wait();
    // Accepts bring the probability back to 0 (SheddingStopped, on this thread).
    for _ in 0..10_000 {
        if t.probability() == 0.0 {
            break;
        }
        if let Ok(permit) = t.try_acquire() {
            permit.record(Outcome::Success);
        }
    }
    assert_eq!(t.probability(), 0.0);
    release.wait();
    x.join().unwrap();

    let gauge = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(g) if key.key().name() == "resilience.throttle.probability" => {
                Some(g.into_inner())
            }
            _ => None,
        })
        .expect("the gauge is registered");
    assert_eq!(
        gauge,
        t.probability(),
        "the gauge says calls are shed; the throttle sheds none"
    );
}
