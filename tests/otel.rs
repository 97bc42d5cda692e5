//! OpenTelemetry through the `metrics` facade: with the `metrics-exporter-opentelemetry`
//! recorder, seawall's instruments arrive as OpenTelemetry counters, gauges and histograms,
//! with the same names and the labels as attributes. Read back with the SDK's in-memory
//! exporter.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_exporter_opentelemetry::Recorder;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader};
use seawall::circuit_breaker::CircuitBreaker;
use seawall::clock::ManualClock;
use seawall::metrics::WithMetrics;
use seawall::retry::{Backoff, Jitter, Retry};
use seawall::Outcome;

/// Every data point, as `"name{key=value,...}"` (attributes sorted) to its value (a
/// histogram's: its count).
fn points(exported: &[ResourceMetrics]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let last = exported.last().expect("an export");
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            let mut put = |attributes: Vec<String>, value: f64| {
                let mut attributes = attributes;
                attributes.sort();
                out.insert(
                    format!("{}{{{}}}", metric.name(), attributes.join(",")),
                    value,
                );
            };
            let kv = |k: &opentelemetry::KeyValue| format!("{}={}", k.key, k.value);
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    for p in sum.data_points() {
                        put(p.attributes().map(kv).collect(), p.value() as f64);
                    }
                }
                AggregatedMetrics::F64(MetricData::Gauge(gauge)) => {
                    for p in gauge.data_points() {
                        put(p.attributes().map(kv).collect(), p.value());
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        put(p.attributes().map(kv).collect(), p.count() as f64);
                    }
                }
                other => panic!("unexpected data for {}: {other:?}", metric.name()),
            }
        }
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn breaker_and_retry_metrics_arrive_as_opentelemetry_instruments() {
    let exporter = InMemoryMetricExporter::default();
    let (provider, recorder) = Recorder::builder("seawall-test")
        .with_meter_provider(|b| b.with_reader(PeriodicReader::builder(exporter.clone()).build()))
        .build();
    let (breaker, retry) = metrics::with_local_recorder(&recorder, || {
        let breaker = CircuitBreaker::builder()
            .failure_threshold(1)
            .clock(ManualClock::new().into())
            .with_metrics("payments")
            .build()
            .unwrap();
        let retry = Retry::builder()
            .max_retries(1)
            .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
            .no_budget()
            .with_metrics("payments")
            .build()
            .unwrap();
        (breaker, retry)
    });

    // A call that fails once and is retried; then the breaker trips and rejects one.
    let mut n = 0;
    retry
        .call(|| {
            n += 1;
            std::future::ready(if n == 1 { Err("flaky") } else { Ok(()) })
        })
        .await
        .unwrap();
    breaker.record(Outcome::Failure);
    assert!(breaker.try_acquire().is_err());

    provider.force_flush().unwrap();
    let points = points(&exporter.get_finished_metrics().unwrap());
    let at = |key: &str| points.get(key).copied();
    assert_eq!(
        at("resilience.circuit_breaker.calls{name=payments,outcome=failure}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.circuit_breaker.calls{name=payments,outcome=rejected}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.circuit_breaker.state{name=payments,state=open}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.circuit_breaker.state{name=payments,state=closed}"),
        Some(0.0)
    );
    assert_eq!(
        at("resilience.circuit_breaker.transitions{from=closed,name=payments,to=open}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.retry.retries{attempt=1,name=payments,reason=error}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.retry.calls{name=payments,outcome=success,retried=true}"),
        Some(1.0)
    );
    // Histograms: one call, two attempts, one delay.
    assert_eq!(
        at("resilience.retry.call_duration{name=payments,outcome=success}"),
        Some(1.0)
    );
    assert_eq!(
        at("resilience.retry.attempt_duration{name=payments}"),
        Some(2.0)
    );
    assert_eq!(at("resilience.retry.delay{name=payments}"), Some(1.0));
    provider.shutdown().unwrap();
}
