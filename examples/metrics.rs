//! Metrics from a real stack, scraped by Prometheus's text format over HTTP.
//!
//! A fallback, a retry, a circuit breaker and a bulkhead (seawall's `Stack`, each part with
//! its metrics: `.with_metrics("inventory")`, one line each) protect an "inventory" service
//! whose health changes: flaky, then down, then up. `metrics-exporter-prometheus` is the
//! recorder; its text output is served at `/metrics` on 127.0.0.1 (an axum route on a port
//! the system picks). At the end of each phase the example scrapes its own `/metrics` with a
//! hyper client, prints the `resilience_*` series that moved during the phase, and checks a
//! few facts (the breaker's state gauge reads open after "down"), failing loudly if one does
//! not hold. It stops by itself, in well under a second of phases.
//!
//! ```text
//! cargo run --features metrics --example metrics
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use seawall::bulkhead::Bulkhead;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::fallback::{fallback_fn, FallbackLayer};
use seawall::metrics::{BulkheadMetrics, WithMetrics};
use seawall::retry::{Backoff, Retry};
use seawall::stack::Stack;
use seawall::BoxError;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// The service's health.
const FLAKY: u8 = 0;
const DOWN: u8 = 1;
const UP: u8 = 2;

/// How long the breaker stays open before it lets probes through.
const WAIT_IN_OPEN: Duration = Duration::from_millis(50);
/// Calls the bulkhead lets run at once.
const SLOTS: usize = 4;

type Scrape = BTreeMap<String, f64>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();

    // The recorder first: every layer registers its handles with it when it is built.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let addr = serve(prometheus.clone()).await?;
    println!("serving http://{addr}/metrics");

    // The layers, each with its metrics in one line.
    let breaker = CircuitBreaker::builder()
        .failure_threshold(5)
        .wait_in_open(WAIT_IN_OPEN)
        .with_metrics("inventory")
        .build()?;
    let retry = Retry::builder()
        .max_retries(2)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .with_metrics("inventory")
        .build()?;
    // The bulkhead's slot gauges are read, not pushed: keep a clone of its listener to read
    // them before each scrape.
    let bulkhead_metrics = BulkheadMetrics::new("inventory");
    let bulkhead = Bulkhead::builder()
        .name("inventory")
        .max_concurrent(SLOTS)
        .listener(bulkhead_metrics.clone())
        .build()?;
    let fallback = FallbackLayer::new(fallback_fn(|sku: u32, _: BoxError| async move {
        Ok::<_, BoxError>(format!("sku {sku}: from the cache"))
    }))
    .with_metrics("inventory"); // answers refusals and timeouts (the default)
    let stack = Stack::builder()
        .fallback(fallback)
        .retry(retry)
        .breaker(breaker.clone())
        .bulkhead(bulkhead.clone())
        .build()?;

    // The service: its health is `health`; flaky fails every third call.
    let health = Arc::new(AtomicU8::new(FLAKY));
    let calls = Arc::new(AtomicU32::new(0));
    let inventory = {
        let health = health.clone();
        service_fn(move |sku: u32| {
            let health = health.load(Ordering::Relaxed);
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                match health {
                    DOWN => Err::<String, BoxError>("connection refused".into()),
                    FLAKY if n % 3 == 2 => Err("connection reset".into()),
                    _ => Ok(format!("sku {sku}: 42 in stock")),
                }
            }
        })
    };
    let svc = ServiceBuilder::new().layer(stack).service(inventory);

    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    bulkhead_metrics.record_gauges(&bulkhead);
    let mut last = scrape(&client, addr).await?;

    println!("\n1. flaky: every third call fails, retries hide it");
    for sku in 0..30 {
        svc.clone().oneshot(sku).await?;
    }
    bulkhead_metrics.record_gauges(&bulkhead);
    let now = scrape(&client, addr).await?;
    print_moved(&last, &now);
    check(&now, "resilience_retry_retries", &[("attempt", "1")], |n| {
        n > 0.0
    })?;
    check(
        &now,
        "resilience_circuit_breaker_state",
        &[("state", "closed")],
        |n| n == 1.0,
    )?;
    last = now;

    println!("\n2. down: the breaker opens, the fallback answers from the cache");
    health.store(DOWN, Ordering::Relaxed);
    let mut answered = 0;
    for sku in 0..20 {
        // The first calls fail with the service's own error (not answered by the fallback);
        // once the circuit is open, the fallback answers.
        if svc.clone().oneshot(sku).await.is_ok() {
            answered += 1;
        }
    }
    bulkhead_metrics.record_gauges(&bulkhead);
    let now = scrape(&client, addr).await?;
    print_moved(&last, &now);
    println!("   ({answered} of 20 calls answered by the fallback)");
    check(
        &now,
        "resilience_circuit_breaker_state",
        &[("state", "open")],
        |n| n == 1.0,
    )?;
    check(
        &now,
        "resilience_fallback_used",
        &[("error_kind", "circuit_open")],
        |n| n > 0.0,
    )?;
    let used = total(&now, "resilience_fallback_used") - total(&last, "resilience_fallback_used");
    if used != f64::from(answered) {
        return Err(format!("{answered} answers, but the fallback counted {used}").into());
    }
    last = now;

    println!(
        "\n3. up: after {WAIT_IN_OPEN:?} probes close the breaker; then a burst fills the bulkhead"
    );
    health.store(UP, Ordering::Relaxed);
    tokio::time::sleep(WAIT_IN_OPEN).await;
    for sku in 0..5 {
        svc.clone().oneshot(sku).await?;
    }
    let burst: Vec<_> = (0..2 * SLOTS as u32)
        .map(|sku| tokio::spawn(svc.clone().oneshot(sku)))
        .collect();
    for call in burst {
        call.await??;
    }
    bulkhead_metrics.record_gauges(&bulkhead);
    let now = scrape(&client, addr).await?;
    print_moved(&last, &now);
    check(
        &now,
        "resilience_circuit_breaker_state",
        &[("state", "closed")],
        |n| n == 1.0,
    )?;
    check(
        &now,
        "resilience_bulkhead_calls",
        &[("outcome", "rejected")],
        |n| n > 0.0,
    )?;
    check(
        &now,
        "resilience_fallback_used",
        &[("error_kind", "bulkhead_full")],
        |n| n > 0.0,
    )?;
    check(&now, "resilience_bulkhead_in_flight", &[], |n| n == 0.0)?;

    println!("\ndone in {:.2}s", start.elapsed().as_secs_f64());
    Ok(())
}

// ===== the exporter's output, served =====

/// Serves the exporter's text format at `/metrics` on 127.0.0.1, on a port the system picks.
/// The server task ends with the runtime, when `main` returns.
async fn serve(prometheus: PrometheusHandle) -> Result<SocketAddr, BoxError> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let prometheus = prometheus.clone();
            async move { prometheus.render() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("metrics server failed: {err}");
        }
    });
    Ok(addr)
}

// ===== the scrape =====

/// Every `resilience_*` sample of `/metrics`, by its series (name and labels), without the
/// summaries' quantiles (their `_sum` and `_count` are kept).
async fn scrape(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
) -> Result<Scrape, BoxError> {
    let response = client
        .get(format!("http://{addr}/metrics").parse()?)
        .await?;
    if !response.status().is_success() {
        return Err(format!("scrape answered {}", response.status()).into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8(body.to_vec())?;
    let mut samples = Scrape::new();
    for line in text.lines() {
        if !line.starts_with("resilience_") || line.contains("quantile=") {
            continue;
        }
        if let Some((series, value)) = line.rsplit_once(' ') {
            samples.insert(series.to_string(), value.parse()?);
        }
    }
    Ok(samples)
}

/// Prints the series whose value moved from `before` to `after` (new ones included).
fn print_moved(before: &Scrape, after: &Scrape) {
    for (series, value) in after {
        match before.get(series) {
            Some(old) if old == value => {}
            Some(old) => println!("   {series} {old} -> {value}"),
            None => println!("   {series} (new) {value}"),
        }
    }
}

/// The sum of every series of `metric` (and `name="inventory"`).
fn total(scrape: &Scrape, metric: &str) -> f64 {
    scrape
        .iter()
        .filter(|(series, _)| {
            series
                .strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains("name=\"inventory\""))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Fails unless the sample of `metric` with `labels` (and `name="inventory"`) satisfies
/// `holds`.
fn check(
    scrape: &Scrape,
    metric: &str,
    labels: &[(&str, &str)],
    holds: impl Fn(f64) -> bool,
) -> Result<(), BoxError> {
    let found = scrape.iter().find(|(series, _)| {
        let Some(rest) = series.strip_prefix(metric) else {
            return false;
        };
        // The metric itself, or its counter `_total`, not a longer name.
        let rest = rest.strip_prefix("_total").unwrap_or(rest);
        rest.starts_with('{')
            && rest.contains("name=\"inventory\"")
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
    });
    match found {
        Some((_, value)) if holds(*value) => Ok(()),
        Some((series, value)) => Err(format!("unexpected: {series} {value}").into()),
        None => Err(format!("no series {metric}{labels:?} in the scrape").into()),
    }
}
