//! The `metrics` feature: scripted scenarios against a `DebuggingRecorder` (one per test,
//! through `metrics::with_local_recorder`, so tests share no global recorder), asserting
//! every series after each step: what must move, and that nothing else did.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::ManualClock;
use seawall::metrics::{BreakerMetrics, RetryMetrics, WithMetrics};
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::{BoxError, Outcome};
use tower::{service_fn, Service, ServiceExt};

/// Every series, as `"metric{label=value,...}"` (labels sorted) to its value: counters and
/// gauges as numbers, histograms as their samples.
#[derive(Debug, Clone, PartialEq)]
enum V {
    N(f64),
    H(Vec<f64>),
}

/// Reads a `DebuggingRecorder` into a running total. Its snapshots are destructive (metrics-util
/// 0.20 swaps counters and gauges to zero and drains histograms), so each read adds counter
/// deltas and appends histogram samples to what earlier reads saw. A gauge reads 0 both when
/// set to 0 and when not set since the last read: the state gauges are always written
/// together (one 1, the rest 0), so a read in which one of a group is non-zero overwrites the
/// group, and a read of all zeros keeps the group's last values.
struct Reader {
    snapshotter: Snapshotter,
    total: RefCell<BTreeMap<String, V>>,
}

impl Reader {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Reader {
            snapshotter: recorder.snapshotter(),
            total: RefCell::default(),
        }
    }

    fn read(&self) -> BTreeMap<String, V> {
        let mut total = self.total.borrow_mut();
        let mut gauges: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let id = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(n) => match total.entry(id).or_insert(V::N(0.0)) {
                    V::N(t) => *t += n as f64,
                    V::H(_) => unreachable!(),
                },
                DebugValue::Histogram(h) => match total.entry(id).or_insert(V::H(vec![])) {
                    V::H(t) => t.extend(h.into_iter().map(|x| x.into_inner())),
                    V::N(_) => unreachable!(),
                },
                DebugValue::Gauge(g) => {
                    // The group: the metric and its `name` label.
                    let name = key
                        .labels()
                        .find(|l| l.key() == "name")
                        .map(|l| l.value().to_owned());
                    let group = format!("{}/{:?}", key.name(), name);
                    gauges.entry(group).or_default().push((id, g.into_inner()));
                }
            }
        }
        for (_, group) in gauges {
            let written = group.iter().any(|(_, g)| *g != 0.0);
            for (id, g) in group {
                if written || !total.contains_key(&id) {
                    total.insert(id, V::N(g));
                }
            }
        }
        total.clone()
    }
}

const STATES: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];

/// What every breaker series of `name` should read: `calls` as (outcome, count), the current
/// state, and the transitions that happened, as (from, to, count); all others zero.
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
    assert_eq!(snap.read(), expect(calls(3, 3, 1, 2), "closed", &closed));
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

/// What every retry series of `name` should read: retries as (attempt label, count), give-ups
/// as (reason, count), and the delays waited; all others zero.
fn retry_expected(
    name: &str,
    retries: &[(&str, u64)],
    give_ups: &[(&str, u64)],
    delays: Vec<f64>,
) -> BTreeMap<String, V> {
    let mut m = BTreeMap::new();
    for a in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10+"] {
        let n = retries.iter().find(|(x, _)| *x == a).map_or(0, |(_, n)| *n);
        m.insert(
            format!("resilience.retry.retries{{attempt={a},name={name}}}"),
            V::N(n as f64),
        );
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
        let n = give_ups
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, n)| *n);
        m.insert(
            format!("resilience.retry.give_ups{{name={name},reason={r}}}"),
            V::N(n as f64),
        );
    }
    m.insert(
        format!("resilience.retry.delay{{name={name}}}"),
        V::H(delays),
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
    assert_eq!(snap.read(), retry_expected("payments", &[], &[], vec![]));

    // Succeeds at once: nothing moves.
    retry.call(failing(0)).await.unwrap();
    assert_eq!(snap.read(), retry_expected("payments", &[], &[], vec![]));

    // Fails once, then succeeds: one first retry.
    retry.call(failing(1)).await.unwrap();
    assert_eq!(
        snap.read(),
        retry_expected("payments", &[("1", 1)], &[], vec![0.1])
    );

    // Always fails: two retries, then gives up.
    retry.call(failing(u32::MAX)).await.unwrap_err();
    assert_eq!(
        snap.read(),
        retry_expected(
            "payments",
            &[("1", 2), ("2", 1)],
            &[("retries_used_up", 1)],
            vec![0.1, 0.1, 0.1]
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
    assert_eq!(
        snap.read(),
        retry_expected("b", &[], &[("budget_exhausted", 1)], vec![])
    );
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
    let retries: Vec<(&str, u64)> = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
        .into_iter()
        .map(|a| (a, 1))
        .chain([("10+", 3)])
        .collect();
    assert_eq!(
        snap.read(),
        retry_expected("many", &retries, &[("retries_used_up", 1)], vec![0.001; 12])
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
