//! The `metrics` feature for the bulkhead, the rate limiter, the hedge, the fallback and the
//! adaptive throttle:
//! scripted scenarios against a `DebuggingRecorder` (one per test, through
//! `metrics::with_local_recorder`, so tests share no global recorder), asserting every
//! series of the layer after each step: what must move, and that nothing else did. Time is
//! tokio's paused clock.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use seawall::bulkhead::Bulkhead;
use seawall::circuit_breaker::CircuitOpen;
use seawall::fallback::{fallback_fn, Fallback, FallbackLayer};
use seawall::hedge::Hedge;
use seawall::metrics::{BulkheadMetrics, FallbackMetrics, HedgeMetrics, WithMetrics};
use seawall::retry::RetryBudget;
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);

#[path = "common/metrics_reader.rs"]
mod metrics_reader;

use metrics_reader::{Gauges, V};

/// Gauges read as their value in the latest snapshot: these tests read them right after they
/// are written.
struct Reader(metrics_reader::Reader);

impl Reader {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Reader(metrics_reader::Reader::new(recorder, Gauges::Latest))
    }

    /// Every series whose name starts with `prefix`, as `"metric{label=value,...}"`.
    fn read(&self, prefix: &str) -> BTreeMap<String, V> {
        self.0.read_prefix(prefix)
    }
}

fn n(id: String, value: u64) -> (String, V) {
    (id, V::N(value as f64))
}

fn h(id: String, samples: &[Duration]) -> (String, V) {
    (
        id,
        V::H(samples.iter().map(Duration::as_secs_f64).collect()),
    )
}

// ===== bulkhead =====

/// Every bulkhead series of `pool`: calls (admitted, rejected), the waits of the calls that
/// waited, and the four gauges.
fn bulkhead_expected(
    admitted: u64,
    rejected: u64,
    waited_admitted: &[Duration],
    waited_rejected: &[Duration],
    gauges: [u64; 4],
) -> BTreeMap<String, V> {
    let [max, available, in_flight, waiting] = gauges;
    let m = "resilience.bulkhead";
    [
        n(format!("{m}.calls{{name=pool,outcome=admitted}}"), admitted),
        n(format!("{m}.calls{{name=pool,outcome=rejected}}"), rejected),
        h(
            format!("{m}.wait{{name=pool,outcome=admitted}}"),
            waited_admitted,
        ),
        h(
            format!("{m}.wait{{name=pool,outcome=rejected}}"),
            waited_rejected,
        ),
        n(format!("{m}.max_concurrent{{name=pool}}"), max),
        n(format!("{m}.available{{name=pool}}"), available),
        n(format!("{m}.in_flight{{name=pool}}"), in_flight),
        n(format!("{m}.waiting{{name=pool}}"), waiting),
    ]
    .into_iter()
    .collect()
}

#[tokio::test(start_paused = true)]
async fn bulkhead_scenario_counts_admissions_rejections_and_waits_exactly() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let metrics = metrics::with_local_recorder(&recorder, || BulkheadMetrics::new("pool"));
    let bulkhead = Bulkhead::builder()
        .name("pool")
        .max_concurrent(2)
        .max_wait(MS * 100)
        .listener(metrics.clone())
        .build()
        .unwrap();
    // Gauges are zero until read; events never write them.
    let unread = [0, 0, 0, 0];
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(0, 0, &[], &[], unread)
    );

    // Two calls take both slots at once: no wait recorded.
    let first = bulkhead.try_acquire().unwrap();
    let second = bulkhead.try_acquire().unwrap();
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(2, 0, &[], &[], unread)
    );

    // A third is refused at once (`try_acquire` never waits): a rejection, no wait.
    assert!(bulkhead.try_acquire().is_err());
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(2, 1, &[], &[], unread)
    );

    // The gauges, read now: both slots busy.
    metrics.record_gauges(&bulkhead);
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(2, 1, &[], &[], [2, 0, 2, 0])
    );

    // A call that waits the whole `max_wait` and is refused.
    let err = bulkhead.acquire().await.unwrap_err();
    assert_eq!(err.waited(), MS * 100);
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(2, 2, &[], &[MS * 100], unread)
    );

    // A call that waits 30 ms, then takes the slot the first call gives back.
    let waiter = {
        let bulkhead = bulkhead.clone();
        tokio::spawn(async move { bulkhead.acquire().await })
    };
    tokio::time::sleep(MS * 30).await;
    metrics.record_gauges(&bulkhead);
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(2, 2, &[], &[MS * 100], [2, 0, 2, 1]),
        "the waiting call shows in the gauge, and in no counter yet"
    );
    drop(first);
    let third = waiter.await.unwrap().unwrap();
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(3, 2, &[MS * 30], &[MS * 100], unread)
    );

    // Through the tower layer: the same events.
    drop(third);
    let mut svc = ServiceBuilder::new()
        .layer(bulkhead.layer())
        .service(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(4, 2, &[MS * 30], &[MS * 100], unread)
    );

    // Every slot back: the gauges say so once read.
    drop(second);
    metrics.record_gauges(&bulkhead);
    assert_eq!(
        reader.read("resilience.bulkhead"),
        bulkhead_expected(4, 2, &[MS * 30], &[MS * 100], [2, 2, 0, 0])
    );
}

#[test]
fn bulkhead_with_metrics_names_the_bulkhead_and_its_series() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let bulkhead = metrics::with_local_recorder(&recorder, || {
        Bulkhead::builder()
            .max_concurrent(1)
            .with_metrics("pool")
            .build()
            .unwrap()
    });
    assert_eq!(bulkhead.name(), Some("pool"));
    let _held = bulkhead.try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());
    let read = reader.read("resilience.bulkhead.calls");
    assert_eq!(
        read,
        [
            n(
                "resilience.bulkhead.calls{name=pool,outcome=admitted}".into(),
                1
            ),
            n(
                "resilience.bulkhead.calls{name=pool,outcome=rejected}".into(),
                1
            ),
        ]
        .into_iter()
        .collect()
    );
}

// ===== rate limiter =====

#[cfg(feature = "rate-limit")]
mod rate_limit {
    use super::*;
    use seawall::metrics::RateLimitMetrics;
    use seawall::rate_limit::{KeyedRateLimiter, RateLimiter};

    fn expected(name: &str, rejections: u64, delays: &[Duration]) -> BTreeMap<String, V> {
        [
            n(
                format!("resilience.rate_limiter.rejections{{name={name}}}"),
                rejections,
            ),
            h(
                format!("resilience.rate_limiter.delay{{name={name}}}"),
                delays,
            ),
        ]
        .into_iter()
        .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_scenario_counts_rejections_and_delays_exactly() {
        let recorder = DebuggingRecorder::new();
        let reader = Reader::new(&recorder);
        let limiter = metrics::with_local_recorder(&recorder, || {
            RateLimiter::builder()
                .rate(2)
                .per(Duration::from_secs(1))
                .with_metrics("api")
                .build()
                .unwrap()
        });
        assert_eq!(limiter.name(), Some("api"));
        let read = || reader.read("resilience.rate_limiter");
        assert_eq!(read(), expected("api", 0, &[]));

        // The burst of two is admitted: admitted calls emit nothing.
        limiter.check().unwrap();
        limiter.check().unwrap();
        assert_eq!(read(), expected("api", 0, &[]));

        // The third is refused at once (no wait allowed): a rejection, no delay.
        assert!(limiter.check().is_err());
        assert_eq!(read(), expected("api", 1, &[]));

        // Half a second later one slot is back.
        tokio::time::sleep(MS * 500).await;
        limiter.check().unwrap();
        assert_eq!(read(), expected("api", 1, &[]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_limiter_records_the_delay_and_a_refusal_past_max_wait() {
        let recorder = DebuggingRecorder::new();
        let reader = Reader::new(&recorder);
        let limiter = metrics::with_local_recorder(&recorder, || {
            RateLimiter::builder()
                .rate(1)
                .per(MS * 400)
                .max_wait(MS * 500)
                .listener(RateLimitMetrics::new("api"))
                .build()
                .unwrap()
        });
        let read = || reader.read("resilience.rate_limiter");
        limiter.acquire().await.unwrap();
        assert_eq!(read(), expected("api", 0, &[]));

        // The next slot frees in 400 ms, within the wait allowed: a delay, then admitted.
        limiter.acquire().await.unwrap();
        assert_eq!(read(), expected("api", 0, &[MS * 400]));

        // `check` never waits: a rejection.
        assert!(limiter.check().is_err());
        assert_eq!(read(), expected("api", 1, &[MS * 400]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_keyed_limiter_counts_every_key_under_one_name() {
        let recorder = DebuggingRecorder::new();
        let reader = Reader::new(&recorder);
        let limiter: KeyedRateLimiter<&str> = metrics::with_local_recorder(&recorder, || {
            KeyedRateLimiter::builder()
                .rate(1)
                .with_metrics("per_client")
                .build()
                .unwrap()
        });
        assert_eq!(limiter.name(), Some("per_client"));
        for key in ["a", "b"] {
            limiter.check_key(&key).unwrap();
            assert!(limiter.check_key(&key).is_err());
        }
        assert_eq!(
            reader.read("resilience.rate_limiter"),
            expected("per_client", 2, &[])
        );
    }
}

// ===== hedge =====

fn hedge_expected(hedges: [u64; 10], refusals: u64, delays: &[Duration]) -> BTreeMap<String, V> {
    let mut m: BTreeMap<String, V> = hedges
        .iter()
        .enumerate()
        .map(|(i, count)| {
            n(
                format!("resilience.hedge.hedges{{hedge={},name=search}}", i + 1),
                *count,
            )
        })
        .collect();
    m.extend([
        n(
            "resilience.hedge.budget_refusals{name=search}".into(),
            refusals,
        ),
        h("resilience.hedge.delay{name=search}".into(), delays),
    ]);
    m
}

fn hedges(first: u64, second: u64) -> [u64; 10] {
    let mut h = [0; 10];
    h[0] = first;
    h[1] = second;
    h
}

/// An attempt that answers after `ms`.
async fn after(ms: u64) -> Result<u64, BoxError> {
    tokio::time::sleep(MS * ms as u32).await;
    Ok(ms)
}

#[tokio::test(start_paused = true)]
async fn hedge_scenario_counts_hedges_by_number_and_refusals_exactly() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let hedge = metrics::with_local_recorder(&recorder, || {
        Hedge::builder()
            .delay(MS * 10)
            .max_hedges(2)
            .no_budget()
            .with_metrics("search")
            .build()
            .unwrap()
    });
    assert_eq!(hedge.name(), Some("search"));
    let read = || reader.read("resilience.hedge");
    assert_eq!(read(), hedge_expected(hedges(0, 0), 0, &[]));

    // A call that answers before the delay: no hedge.
    assert_eq!(hedge.call(|| after(5)).await.unwrap(), 5);
    assert_eq!(read(), hedge_expected(hedges(0, 0), 0, &[]));

    // A call that answers after 15 ms: one hedge, at 10 ms.
    assert_eq!(hedge.call(|| after(15)).await.unwrap(), 15);
    assert_eq!(read(), hedge_expected(hedges(1, 0), 0, &[MS * 10]));

    // A slow call: both hedges, at 10 and 20 ms.
    assert_eq!(hedge.call(|| after(50)).await.unwrap(), 50);
    let delays = [MS * 10; 3];
    assert_eq!(read(), hedge_expected(hedges(2, 1), 0, &delays));
}

#[tokio::test(start_paused = true)]
async fn hedge_budget_refusals_are_counted_and_send_nothing() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    while budget.withdraw() {}
    let hedge = metrics::with_local_recorder(&recorder, || {
        Hedge::builder()
            .delay(MS * 10)
            .max_hedges(2)
            .budget(budget)
            .listener(HedgeMetrics::new("search"))
            .build()
            .unwrap()
    });
    // The budget refuses the first hedge: no more hedges for that call.
    assert_eq!(hedge.call(|| after(50)).await.unwrap(), 50);
    assert_eq!(
        reader.read("resilience.hedge"),
        hedge_expected(hedges(0, 0), 1, &[])
    );
}

// ===== fallback =====

/// `used` and `failed` by kind, in the order of `KINDS` but for `throttled` (never answered
/// in these scenarios: always 0).
fn fallback_expected(used: [u64; 6], failed: [u64; 6]) -> BTreeMap<String, V> {
    let with_throttled = |a: [u64; 6]| [a[0], a[1], a[2], a[3], a[4], 0, a[5]];
    let (used, failed) = (with_throttled(used), with_throttled(failed));
    const KINDS: [&str; 7] = [
        "circuit_open",
        "timeout",
        "budget_exhausted",
        "rate_limited",
        "bulkhead_full",
        "throttled",
        "inner",
    ];
    let mut m = BTreeMap::new();
    for (i, kind) in KINDS.iter().enumerate() {
        m.extend([
            n(
                format!("resilience.fallback.used{{error_kind={kind},name=orders}}"),
                used[i],
            ),
            n(
                format!("resilience.fallback.failed{{error_kind={kind},name=orders}}"),
                failed[i],
            ),
        ]);
    }
    m
}

/// What the inner service does with a request.
fn inner(request: &'static str) -> Result<&'static str, BoxError> {
    match request {
        "open" => Err(CircuitOpen::new(Duration::from_secs(1)).into()),
        "timeout" => Err(tower::timeout::error::Elapsed::new().into()),
        "bad" => Err("bad request".into()),
        ok => Ok(ok),
    }
}

#[tokio::test(start_paused = true)]
async fn fallback_scenario_counts_answers_and_failures_by_kind() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let layer = metrics::with_local_recorder(&recorder, || {
        FallbackLayer::new(fallback_fn(
            |request: &'static str, _err: BoxError| async move {
                // The fallback for timeouts is down too.
                match request {
                    "timeout" => Err::<&'static str, BoxError>("cache down".into()),
                    _ => Ok("cached"),
                }
            },
        ))
        .with_metrics("orders")
    });
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|r: &'static str| async move { inner(r) }));
    let call = |r| svc.clone().oneshot(r);
    let read = || reader.read("resilience.fallback");
    let zero = [0; 6];
    assert_eq!(read(), fallback_expected(zero, zero));

    // A success: nothing moves.
    assert_eq!(call("fine").await.unwrap(), "fine");
    assert_eq!(read(), fallback_expected(zero, zero));

    // The inner service's own error is not selected by default: nothing moves.
    assert_eq!(call("bad").await.unwrap_err().to_string(), "bad request");
    assert_eq!(read(), fallback_expected(zero, zero));

    // An open circuit is answered.
    assert_eq!(call("open").await.unwrap(), "cached");
    assert_eq!(read(), fallback_expected([1, 0, 0, 0, 0, 0], zero));

    // A timeout is answered, and the fallback fails: both move, under the timeout's kind.
    assert_eq!(call("timeout").await.unwrap_err().to_string(), "cache down");
    assert_eq!(
        read(),
        fallback_expected([1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0])
    );
}

#[tokio::test]
async fn the_bare_fallback_call_records_like_the_layer() {
    let recorder = DebuggingRecorder::new();
    let reader = Reader::new(&recorder);
    let fallback = metrics::with_local_recorder(&recorder, || {
        Fallback::new()
            .on_any_error()
            .listener(FallbackMetrics::new("orders"))
    });
    let answer = fallback
        .call(
            || async { inner("bad") },
            |_| async { Ok::<_, BoxError>("cached") },
        )
        .await;
    assert_eq!(answer.unwrap(), "cached");
    let answer = fallback
        .call(
            || async { inner("open") },
            |_| async { Err::<&str, BoxError>("cache down".into()) },
        )
        .await;
    assert_eq!(answer.unwrap_err().to_string(), "cache down");
    let answer = fallback
        .call(
            || async { inner("fine") },
            |_| async { Ok::<_, BoxError>("cached") },
        )
        .await;
    assert_eq!(answer.unwrap(), "fine");
    assert_eq!(
        reader.read("resilience.fallback"),
        fallback_expected([1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0])
    );
}

// ===== no recorder =====

#[tokio::test(start_paused = true)]
async fn without_a_recorder_every_listener_is_a_quiet_no_op() {
    // No recorder installed for this thread: the handles are no-ops, and nothing panics.
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .with_metrics("pool")
        .build()
        .unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());
    let hedge = Hedge::builder()
        .delay(MS)
        .no_budget()
        .with_metrics("search")
        .build()
        .unwrap();
    assert_eq!(hedge.call(|| after(5)).await.unwrap(), 5);
    let fallback = Fallback::new().with_metrics("orders");
    let answer = fallback
        .call(
            || async { inner("open") },
            |_| async { Ok::<_, BoxError>("cached") },
        )
        .await;
    assert_eq!(answer.unwrap(), "cached");
}

// ===== adaptive throttle =====

fn throttle_expected(rejections: u64, probability: f64) -> BTreeMap<String, V> {
    BTreeMap::from([
        n("resilience.throttle.rejections{name=t}".into(), rejections),
        (
            "resilience.throttle.probability{name=t}".into(),
            V::N(probability),
        ),
    ])
}

#[test]
fn throttle_scenario_counts_local_rejections_and_follows_the_probability() {
    use seawall::clock::ManualClock;
    use seawall::throttle::AdaptiveThrottle;
    use seawall::Outcome;

    let recorder = DebuggingRecorder::new();
    let snap = Reader::new(&recorder);
    let clock = ManualClock::new();
    let throttle = metrics::with_local_recorder(&recorder, || {
        AdaptiveThrottle::builder()
            .k(2.0)
            .window(Duration::from_secs(10))
            .clock(clock.clone())
            .seed(7)
            .with_metrics("t")
            .build()
            .unwrap()
    });
    assert_eq!(throttle.name(), Some("t"));
    assert_eq!(snap.read("resilience.throttle"), throttle_expected(0, 0.0));

    // One rejection by the backend: shedding starts, at (1 - 0) / (1 + 1).
    throttle.record(Outcome::Failure);
    assert_eq!(snap.read("resilience.throttle"), throttle_expected(0, 0.5));

    // Calls until one is shed (admitted ones are dropped without a verdict: they count
    // nothing): one rejection, and the probability now (the shed call counts as a request).
    let shed = |bound: usize| {
        (0..bound)
            .find_map(|_| throttle.try_acquire().err())
            .expect("a call shed")
    };
    let first = shed(100);
    assert!(throttle.probability() > first.probability());
    assert_eq!(
        snap.read("resilience.throttle"),
        throttle_expected(1, throttle.probability())
    );

    // Another one, not read; then the window passes and the next call finds nothing to
    // shed: the gauge is written back to 0 (not merely left unwritten).
    let second = shed(100);
    assert!(second.probability() > 0.5);
    clock.advance(Duration::from_secs(11));
    assert!(throttle.try_acquire().is_ok());
    assert_eq!(throttle.probability(), 0.0);
    assert_eq!(snap.read("resilience.throttle"), throttle_expected(2, 0.0));
}
