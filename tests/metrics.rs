//! The `metrics` feature: scripted scenarios against a `DebuggingRecorder` (one per test,
//! through `metrics::with_local_recorder`, so tests share no global recorder), asserting
//! every series after each step: what must move, and that nothing else did.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::ManualClock;
use seawall::metrics::{BreakerMetrics, RetryMetrics, WithMetrics};
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::{BoxError, Outcome};
use tower::{service_fn, Service, ServiceExt};

#[path = "common/metrics_reader.rs"]
mod metrics_reader;

use metrics_reader::{Gauges, V};

/// The breaker's state gauges are written together: read by group.
struct Reader(metrics_reader::Reader);

impl Reader {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Reader(metrics_reader::Reader::new(recorder, Gauges::Grouped))
    }

    fn read(&self) -> BTreeMap<String, V> {
        self.0.read()
    }
}

const STATES: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];

/// What every breaker series of `name` should read: `calls` as (outcome, count), the current
/// state, and the transitions that happened, as (from, to, count); all others zero, but for
/// the rate gauges, `-1` (below `minimum_calls`, or no window). Probes: see [`probes`].
fn breaker_expected(
    name: &str,
    calls: [(&str, u64); 4],
    slow: u64,
    state: &str,
    transitions: &[(&str, &str, u64)],
) -> BTreeMap<String, V> {
    let mut m = BTreeMap::new();
    for (outcome, n) in calls {
        m.insert(
            format!("resilience.circuit_breaker.calls{{name={name},outcome={outcome}}}"),
            V::N(n as f64),
        );
    }
    m.insert(
        format!("resilience.circuit_breaker.slow_calls{{name={name}}}"),
        V::N(slow as f64),
    );
    for s in STATES {
        m.insert(
            format!("resilience.circuit_breaker.state{{name={name},state={s}}}"),
            V::N(if s == state { 1.0 } else { 0.0 }),
        );
    }
    for from in STATES {
        for to in STATES {
            if from != to {
                let n = transitions
                    .iter()
                    .find(|(f, t, _)| *f == from && *t == to)
                    .map_or(0, |(_, _, n)| *n);
                m.insert(
                    format!(
                        "resilience.circuit_breaker.transitions{{from={from},name={name},to={to}}}"
                    ),
                    V::N(n as f64),
                );
            }
        }
    }
    for outcome in ["success", "failure", "ignored"] {
        m.insert(
            format!("resilience.circuit_breaker.probes{{name={name},outcome={outcome}}}"),
            V::N(0.0),
        );
    }
    for rate in ["failure_rate", "slow_call_rate"] {
        m.insert(
            format!("resilience.circuit_breaker.{rate}{{name={name}}}"),
            V::N(-1.0),
        );
    }
    m
}

/// `m` with `name`'s probe counter of `outcome` at `n`.
fn probes(mut m: BTreeMap<String, V>, name: &str, outcome: &str, n: u64) -> BTreeMap<String, V> {
    let key = format!("resilience.circuit_breaker.probes{{name={name},outcome={outcome}}}");
    assert!(m.insert(key, V::N(n as f64)).is_some());
    m
}

fn calls(success: u64, failure: u64, ignored: u64, rejected: u64) -> [(&'static str, u64); 4] {
    [
        ("success", success),
        ("failure", failure),
        ("ignored", ignored),
        ("rejected", rejected),
    ]
}

#[test]
fn breaker_scenario_moves_exactly_the_series_it_should() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let clock = ManualClock::new();
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder()
            .failure_threshold(3)
            .wait_in_open(Duration::from_secs(10))
            .half_open_max_calls(1)
            .clock(clock.clone().into())
            .with_metrics("payments")
            .build()
            .unwrap()
    });
    assert_eq!(breaker.name(), Some("payments"));
    let expect = |c, state, t: &[(&str, &str, u64)]| breaker_expected("payments", c, 0, state, t);

    // Built: every series exists, closed.
    assert_eq!(snap.read(), expect(calls(0, 0, 0, 0), "closed", &[]));

    // Two successes.
    for _ in 0..2 {
        breaker.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(snap.read(), expect(calls(2, 0, 0, 0), "closed", &[]));

    // An ignored outcome counts as a call and nothing else.
    breaker.try_acquire().unwrap().record(Outcome::Ignored);
    assert_eq!(snap.read(), expect(calls(2, 0, 1, 0), "closed", &[]));

    // Two failures: still closed.
    for _ in 0..2 {
        breaker.try_acquire().unwrap().record(Outcome::Failure);
    }
    assert_eq!(snap.read(), expect(calls(2, 2, 1, 0), "closed", &[]));

    // The third trips it.
    breaker.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    let opened = [("closed", "open", 1)];
    assert_eq!(snap.read(), expect(calls(2, 3, 1, 0), "open", &opened));

    // A rejection.
    assert!(breaker.try_acquire().is_err());
    assert_eq!(snap.read(), expect(calls(2, 3, 1, 1), "open", &opened));

    // Time passes: nothing moves until a call arrives.
    clock.advance(Duration::from_secs(10));
    assert_eq!(snap.read(), expect(calls(2, 3, 1, 1), "open", &opened));

    // The probe is admitted: half-open.
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    let probing = [("closed", "open", 1), ("open", "half_open", 1)];
    assert_eq!(
        snap.read(),
        expect(calls(2, 3, 1, 1), "half_open", &probing)
    );

    // A second call while the one probe is in flight is rejected.
    assert!(breaker.try_acquire().is_err());
    assert_eq!(
        snap.read(),
        expect(calls(2, 3, 1, 2), "half_open", &probing)
    );

    // The probe succeeds: closed.
    probe.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    let closed = [
        ("closed", "open", 1),
        ("open", "half_open", 1),
        ("half_open", "closed", 1),
    ];
    assert_eq!(
        snap.read(),
        probes(
            expect(calls(3, 3, 1, 2), "closed", &closed),
            "payments",
            "success",
            1
        )
    );
}

#[test]
fn rate_gauges_follow_the_window_at_failures_and_every_64th_other_call() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder()
            .failure_threshold(1000)
            .failure_rate(99.0)
            .minimum_calls(2)
            .count_window(200)
            .clock(ManualClock::new().into())
            .with_metrics("rates")
            .build()
            .unwrap()
    });
    let rates = |failure: f64| {
        let mut m = breaker_expected("rates", calls(0, 0, 0, 0), 0, "closed", &[]);
        m.retain(|k, _| k.contains("_rate"));
        m.insert(
            "resilience.circuit_breaker.failure_rate{name=rates}".into(),
            V::N(failure),
        );
        // The slow-call rate is 0 once the window holds the minimum, which this reader
        // cannot tell from "not written" (see `Reader`): it keeps reading -1.
        m
    };
    let read = || {
        let mut m = snap.read();
        m.retain(|k, _| k.contains("_rate"));
        m
    };
    // The first recorded call refreshes the gauges: one call, below the minimum.
    breaker.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(read(), rates(-1.0));
    // A failure refreshes them: 1 of 2.
    breaker.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(read(), rates(50.0));
    // 63 more successes: not refreshed (the gauge lags, as documented).
    for _ in 0..63 {
        breaker.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(read(), rates(50.0));
    // The 64th success since the last refresh by a success does: 1 failure in 66 calls.
    breaker.try_acquire().unwrap().record(Outcome::Success);
    assert_eq!(read(), rates(100.0 / 66.0));
}

#[test]
fn manual_overrides_move_the_state_gauge_and_transitions() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder()
            .clock(ManualClock::new().into())
            .listener(BreakerMetrics::new(""))
            .build()
            .unwrap()
    });
    let expect = |c, state, t: &[(&str, &str, u64)]| breaker_expected("default", c, 0, state, t);

    breaker.force_open();
    let t1 = [("closed", "forced_open", 1)];
    assert_eq!(snap.read(), expect(calls(0, 0, 0, 0), "forced_open", &t1));
    assert!(breaker.try_acquire().is_err());
    assert_eq!(snap.read(), expect(calls(0, 0, 0, 1), "forced_open", &t1));

    breaker.disable();
    let t2 = [("closed", "forced_open", 1), ("forced_open", "disabled", 1)];
    assert_eq!(snap.read(), expect(calls(0, 0, 0, 1), "disabled", &t2));
    breaker.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(snap.read(), expect(calls(0, 1, 0, 1), "disabled", &t2));

    breaker.reset();
    let t3 = [
        ("closed", "forced_open", 1),
        ("forced_open", "disabled", 1),
        ("disabled", "closed", 1),
    ];
    assert_eq!(snap.read(), expect(calls(0, 1, 0, 1), "closed", &t3));
}

#[test]
fn slow_calls_are_counted_when_the_breaker_measures_them() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let clock = ManualClock::new();
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder()
            .slow_call_rate(100.0)
            .slow_call_duration(Duration::from_secs(1))
            .minimum_calls(100)
            .count_window(100)
            .clock(clock.clone().into())
            .with_metrics("slow")
            .build()
            .unwrap()
    });
    let permit = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(2));
    permit.record(Outcome::Success);
    breaker.try_acquire().unwrap().record(Outcome::Success); // fast
    assert_eq!(
        snap.read(),
        breaker_expected("slow", calls(2, 0, 0, 0), 1, "closed", &[])
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_tower_layer_reports_through_the_same_listener() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let breaker = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::builder()
            .failure_threshold(1)
            .with_metrics("svc")
            .build()
            .unwrap()
    });
    let mut svc = tower::ServiceBuilder::new()
        .layer(breaker.layer())
        .service(service_fn(|fail: bool| async move {
            if fail {
                Err::<(), BoxError>("down".into())
            } else {
                Ok(())
            }
        }));
    svc.ready().await.unwrap().call(false).await.unwrap();
    svc.ready().await.unwrap().call(true).await.unwrap_err();
    // Open: the next call is refused (by `poll_ready` or the call).
    let refused = match svc.ready().await {
        Ok(s) => s.call(false).await.is_err(),
        Err(_) => true,
    };
    assert!(refused);
    assert_eq!(
        snap.read(),
        breaker_expected(
            "svc",
            calls(1, 1, 0, 1),
            0,
            "open",
            &[("closed", "open", 1)]
        )
    );
}

/// What a retry's series should read, beyond zero: retries by (attempt label, reason),
/// give-ups by reason, calls by (outcome, retried), and the histograms' samples.
#[derive(Default)]
struct RetrySeries<'a> {
    retries: &'a [(&'a str, &'a str, u64)],
    give_ups: &'a [(&'a str, u64)],
    calls: &'a [(&'a str, bool, u64)],
    delays: Vec<f64>,
    call_durations: &'a [(&'a str, Vec<f64>)],
    attempt_durations: Vec<f64>,
    balance: f64,
}

/// Every retry series of `name`, as `expected` says (all others zero).
fn retry_expected(name: &str, expected: RetrySeries<'_>) -> BTreeMap<String, V> {
    let mut m = BTreeMap::new();
    for a in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10+"] {
        for reason in ["error", "response", "timeout"] {
            let n = expected
                .retries
                .iter()
                .find(|(x, r, _)| *x == a && *r == reason)
                .map_or(0, |(_, _, n)| *n);
            m.insert(
                format!("resilience.retry.retries{{attempt={a},name={name},reason={reason}}}"),
                V::N(n as f64),
            );
        }
    }
    for r in [
        "retries_used_up",
        "deadline",
        "budget_exhausted",
        "no_timer",
        "request_not_copied",
        "not_idempotent",
        "retry_after_too_long",
        "not_ready",
    ] {
        let n = expected
            .give_ups
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, n)| *n);
        m.insert(
            format!("resilience.retry.give_ups{{name={name},reason={r}}}"),
            V::N(n as f64),
        );
    }
    for outcome in ["success", "not_retryable", "gave_up"] {
        for retried in [false, true] {
            let n = expected
                .calls
                .iter()
                .find(|(o, r, _)| *o == outcome && *r == retried)
                .map_or(0, |(_, _, n)| *n);
            m.insert(
                format!(
                    "resilience.retry.calls{{name={name},outcome={outcome},retried={retried}}}"
                ),
                V::N(n as f64),
            );
        }
        let durations = expected
            .call_durations
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or(vec![], |(_, d)| d.clone());
        m.insert(
            format!("resilience.retry.call_duration{{name={name},outcome={outcome}}}"),
            V::H(durations),
        );
    }
    m.insert(
        format!("resilience.retry.delay{{name={name}}}"),
        V::H(expected.delays),
    );
    m.insert(
        format!("resilience.retry.attempt_duration{{name={name}}}"),
        V::H(expected.attempt_durations),
    );
    m.insert(
        format!("resilience.retry.budget.balance{{name={name}}}"),
        V::N(expected.balance),
    );
    m
}

/// A closure failing its first `fails` calls.
fn failing(fails: u32) -> impl FnMut() -> std::future::Ready<Result<(), &'static str>> {
    let mut n = 0;
    move || {
        n += 1;
        std::future::ready(if n <= fails { Err("boom") } else { Ok(()) })
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retry_scenario_counts_retries_by_attempt_and_give_ups_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .max_retries(2)
            .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None))
            .no_budget()
            .with_metrics("payments")
            .build()
            .unwrap()
    });
    assert_eq!(
        snap.read(),
        retry_expected("payments", RetrySeries::default())
    );

    // Succeeds at once: one call, one attempt, no retry.
    retry.call(failing(0)).await.unwrap();
    assert_eq!(
        snap.read(),
        retry_expected(
            "payments",
            RetrySeries {
                calls: &[("success", false, 1)],
                call_durations: &[("success", vec![0.0])],
                attempt_durations: vec![0.0],
                ..RetrySeries::default()
            }
        )
    );

    // Fails once, then succeeds: one first retry, after 100 ms.
    retry.call(failing(1)).await.unwrap();
    assert_eq!(
        snap.read(),
        retry_expected(
            "payments",
            RetrySeries {
                retries: &[("1", "error", 1)],
                calls: &[("success", false, 1), ("success", true, 1)],
                delays: vec![0.1],
                call_durations: &[("success", vec![0.0, 0.1])],
                attempt_durations: vec![0.0, 0.0, 0.0],
                ..RetrySeries::default()
            }
        )
    );

    // Always fails: two retries, then gives up, 200 ms after its start.
    retry.call(failing(u32::MAX)).await.unwrap_err();
    assert_eq!(
        snap.read(),
        retry_expected(
            "payments",
            RetrySeries {
                retries: &[("1", "error", 2), ("2", "error", 1)],
                give_ups: &[("retries_used_up", 1)],
                calls: &[
                    ("success", false, 1),
                    ("success", true, 1),
                    ("gave_up", true, 1)
                ],
                delays: vec![0.1, 0.1, 0.1],
                call_durations: &[("success", vec![0.0, 0.1]), ("gave_up", vec![0.2])],
                attempt_durations: vec![0.0; 6],
                ..RetrySeries::default()
            }
        )
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn attempts_are_timed_from_their_start_and_timeouts_are_their_own_reason() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .max_retries(1)
            .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None))
            .attempt_timeout(Duration::from_millis(300))
            .no_budget()
            .with_metrics("slow")
            .build()
            .unwrap()
    });
    assert_eq!(retry.name(), Some("slow"));
    // The first attempt hangs past its timeout; the second answers after 50 ms.
    let mut n = 0;
    retry
        .call(|| {
            n += 1;
            let wait = if n == 1 { 10_000 } else { 50 };
            async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                Ok::<_, &str>(())
            }
        })
        .await
        .unwrap();
    assert_eq!(
        snap.read(),
        retry_expected(
            "slow",
            RetrySeries {
                retries: &[("1", "timeout", 1)],
                calls: &[("success", true, 1)],
                delays: vec![0.1],
                call_durations: &[("success", vec![0.45])],
                attempt_durations: vec![0.3, 0.05],
                ..RetrySeries::default()
            }
        )
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_refusal_is_a_call_not_retryable_and_not_a_retry() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .no_budget()
            .with_metrics("r")
            .build()
            .unwrap()
    });
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.force_open();
    let refusal = breaker.try_acquire().unwrap_err();
    retry
        .call(|| std::future::ready(Err::<(), BoxError>(Box::new(refusal))))
        .await
        .unwrap_err();
    assert_eq!(
        snap.read(),
        retry_expected(
            "r",
            RetrySeries {
                calls: &[("not_retryable", false, 1)],
                call_durations: &[("not_retryable", vec![0.0])],
                attempt_durations: vec![0.0],
                ..RetrySeries::default()
            }
        )
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_refusing_budget_is_a_give_up_not_a_retry() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let budget = RetryBudget::builder().build().unwrap();
    while budget.withdraw() {}
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .max_retries(3)
            .budget(budget.clone())
            .listener(RetryMetrics::new("b"))
            .build()
            .unwrap()
    });
    retry.call(failing(u32::MAX)).await.unwrap_err();
    // The balance gauge was set from the budget at the give-up (and it reads what the
    // budget reads now: no time passed). A 0 balance reads as unwritten here, as 0 too.
    assert_eq!(
        snap.read(),
        retry_expected(
            "b",
            RetrySeries {
                give_ups: &[("budget_exhausted", 1)],
                calls: &[("gave_up", false, 1)],
                call_durations: &[("gave_up", vec![0.0])],
                attempt_durations: vec![0.0],
                balance: budget.balance(),
                ..RetrySeries::default()
            }
        )
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_budget_gauge_is_refreshed_at_retries_and_every_64th_call() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .max_retries(1)
            .backoff(Backoff::constant(Duration::from_millis(1)).jitter(Jitter::None))
            .with_metrics("g")
            .build()
            .unwrap()
    });
    let budget = retry.budget().unwrap().clone();
    let gauge = |m: &BTreeMap<String, V>| m["resilience.retry.budget.balance{name=g}"].clone();
    // The first call ends: the gauge is set (the budget's floor, full at the start).
    retry.call(failing(0)).await.unwrap();
    let first = budget.balance();
    assert!(first > 0.0);
    assert_eq!(gauge(&snap.read()), V::N(first));
    // A retry spends a token: the gauge follows at once (set at the retry, before the
    // backoff and the success that came after it).
    retry.call(failing(1)).await.unwrap();
    let V::N(at_retry) = gauge(&snap.read()) else {
        panic!("a gauge")
    };
    assert!(at_retry < first, "{at_retry} < {first}");
    // 62 more calls end (the 3rd to the 64th): the gauge is not refreshed...
    for _ in 0..62 {
        retry.call(failing(0)).await.unwrap();
    }
    assert_eq!(gauge(&snap.read()), V::N(at_retry));
    assert_ne!(budget.balance(), at_retry);
    // ...the 65th is the 64th since the first refresh by an ended call: it is.
    retry.call(failing(0)).await.unwrap();
    assert_eq!(gauge(&snap.read()), V::N(budget.balance()));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn attempts_past_nine_share_one_label() {
    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let retry = metrics::with_local_recorder(&recorder, || {
        Retry::builder()
            .max_retries(12)
            .backoff(Backoff::constant(Duration::from_millis(1)).jitter(Jitter::None))
            .no_budget()
            .with_metrics("many")
            .build()
            .unwrap()
    });
    retry.call(failing(u32::MAX)).await.unwrap_err();
    let retries: Vec<(&str, &str, u64)> = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
        .into_iter()
        .map(|a| (a, "error", 1))
        .chain([("10+", "error", 3)])
        .collect();
    assert_eq!(
        snap.read(),
        retry_expected(
            "many",
            RetrySeries {
                retries: &retries,
                give_ups: &[("retries_used_up", 1)],
                calls: &[("gave_up", true, 1)],
                delays: vec![0.001; 12],
                call_durations: &[("gave_up", vec![0.012])],
                attempt_durations: vec![0.0; 13],
                ..RetrySeries::default()
            }
        )
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn without_a_recorder_nothing_is_recorded_and_nothing_panics() {
    // Built with no recorder installed (this test binary installs no global one): the
    // handles are no-ops, and a recorder installed afterwards sees nothing.
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .half_open_max_calls(1)
        .clock(clock.clone().into())
        .with_metrics("none")
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(1)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .with_metrics("none")
        .build()
        .unwrap();

    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    metrics::with_local_recorder(&recorder, || {
        breaker.try_acquire().unwrap().record(Outcome::Success);
        breaker.try_acquire().unwrap().record(Outcome::Failure);
        assert!(breaker.try_acquire().is_err());
        clock.advance(Duration::from_secs(60));
        breaker.try_acquire().unwrap().record(Outcome::Success);
    });
    assert_eq!(breaker.state(), State::Closed);
    retry.call(failing(u32::MAX)).await.unwrap_err();
    assert!(snap.read().is_empty());
}
