//! A hyper-util HTTP client behind seawall's `StandardClientLayer` (retry with backoff and a
//! budget, idempotent requests only, `Retry-After` honoured, a circuit breaker, timeouts),
//! talking to a local axum server that goes through five phases: healthy, flaky (every other
//! request answers 503), throttled (429 with `Retry-After: 1`), down (every request answers
//! 503) and back up. For each phase it makes a fixed number of GET calls and prints one line:
//! what the caller got, how many retries the client made, how many calls the breaker refused
//! and how the breaker's state moved. In the flaky phase it also shows that a POST is not
//! retried, unless it carries an `Idempotency-Key` (its body is then replayed). Runs in about
//! two seconds, all traffic on 127.0.0.1.
//!
//! ```text
//! cargo run --features http --example http_client
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use seawall::circuit_breaker::{CircuitBreaker, StateChange};
use seawall::http::{ReplayBody, StandardClient, StandardClientLayer, IDEMPOTENCY_KEY};
use seawall::retry::{Backoff, Event, GiveUpReason, Retry, RetryAfterTooLong};
use seawall::{BoxError, ErrorKind};
use tower::{Service, ServiceBuilder, ServiceExt};

/// The client stack: `StandardClientLayer` around a hyper-util client. The layer wraps each
/// request body in a `ReplayBody` (so a retry can send it again), hence the client's body type.
type HttpClient = StandardClient<Client<HttpConnector, ReplayBody<Full<Bytes>>>>;

/// Calls per phase, and the pause between two calls (so the breaker's 300 ms open period
/// passes within a phase).
const CALLS: u32 = 20;
const PAUSE: Duration = Duration::from_millis(25);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();
    let upstream = Arc::new(Upstream::default());
    let (addr, server) = start_upstream(upstream.clone()).await?;
    println!("upstream listening on http://{addr}");

    // What the client's policies did, gathered by their listeners and read once per phase.
    let seen = Arc::new(Seen::default());

    let retry = {
        let seen = seen.clone();
        Retry::builder()
            .max_retries(2)
            // 10 ms, 20 ms (full jitter), never more than 200 ms: a `Retry-After` longer than
            // that is not waited for (the call gives up with `RetryAfterTooLong`).
            .backoff(
                Backoff::exponential(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(200)),
            )
            .listener(move |event: &Event<'_>| match event {
                Event::Retry(_) => {
                    seen.retries.fetch_add(1, Ordering::Relaxed);
                }
                Event::GiveUp(g) => seen.give_up(g.reason),
                _ => {}
            })
            .build()?
    };
    let breaker = {
        let seen = seen.clone();
        CircuitBreaker::builder()
            .name("upstream")
            .failure_threshold(5)
            .wait_in_open(Duration::from_millis(300))
            .on_state_change(move |_, change| seen.transition(change))
            .build()?
    };
    let layer = StandardClientLayer::new()
        .retry(retry)
        .breaker(breaker.clone())
        .attempt_timeout(Duration::from_millis(500))
        .total_timeout(Duration::from_secs(2));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut svc: HttpClient = ServiceBuilder::new().layer(layer).service(client);

    let item = format!("http://{addr}/item");
    println!(
        "{:<10} {:>5} {:>4} {:>6} {:>7} {:>8}  breaker",
        "phase", "calls", "ok", "failed", "retries", "rejected"
    );
    // The retry budget (50 % of recent successes plus 10 retries a second, 3 per failure
    // streak) paid for the flaky phase's retries; by the time the upstream is down it refuses
    // most, and the breaker opens.
    for (phase, calls) in [
        (Phase::Healthy, CALLS),
        (Phase::Flaky, CALLS),
        (Phase::Throttled, 5),
        (Phase::Down, CALLS),
        (Phase::BackUp, CALLS),
    ] {
        upstream.enter(phase);
        let mut tally = Tally::default();
        for _ in 0..calls {
            let req = Request::get(&item).body(Full::default())?;
            tally.record(send(&mut svc, req).await);
            tokio::time::sleep(PAUSE).await;
        }
        tally.print(phase, calls, &seen);

        if phase == Phase::Flaky {
            post_orders(&mut svc, &upstream, addr, &seen).await?;
        }
    }

    let snapshot = breaker.snapshot();
    println!(
        "done in {:.2}s; breaker {}, {} consecutive failures",
        start.elapsed().as_secs_f64(),
        snapshot.state,
        snapshot.consecutive_failures
    );
    server.abort();
    Ok(())
}

/// Two POSTs while the upstream is flaky, each lined up to meet a 503 on its first attempt.
async fn post_orders(
    svc: &mut HttpClient,
    upstream: &Upstream,
    addr: SocketAddr,
    seen: &Seen,
) -> Result<(), BoxError> {
    let orders = format!("http://{addr}/orders");
    for key in [None, Some("order-7f3a")] {
        upstream.fail_next();
        upstream.post_attempts.store(0, Ordering::Relaxed);
        let mut req = Request::post(&orders).header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            req = req.header(&IDEMPOTENCY_KEY, key);
        }
        let req = req.body(Full::new(Bytes::from_static(br#"{"sku":"apple","qty":3}"#)))?;
        let answer = match send(svc, req).await {
            Ok((status, body)) if body.is_empty() => status.to_string(),
            Ok((status, body)) => format!("{status} {:?}", String::from_utf8_lossy(&body)),
            Err(err) => format!("error: {err}"),
        };
        let (retries, give_ups) = seen.take();
        let why = match give_ups.keys().next() {
            Some(reason) => format!(" (retry gave up: {reason})"),
            None => String::new(),
        };
        println!(
            "{:<10} POST {}: {answer}; the server saw {} attempt(s), {retries} retried{why}",
            "",
            match key {
                Some(key) => format!("with Idempotency-Key {key}"),
                None => "without Idempotency-Key".to_string(),
            },
            upstream.post_attempts.load(Ordering::Relaxed),
        );
    }
    seen.take_transitions();
    Ok(())
}

/// One call through the stack; the response body is read to the end.
async fn send(
    svc: &mut HttpClient,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), BoxError> {
    let response = svc.ready().await?.call(req).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

// ===== what the client saw =====

/// Gathered by the retry and breaker listeners.
#[derive(Default)]
struct Seen {
    retries: AtomicU32,
    give_ups: Mutex<BTreeMap<String, u32>>,
    transitions: Mutex<Vec<StateChange>>,
}

impl Seen {
    fn give_up(&self, reason: GiveUpReason) {
        let mut give_ups = self.give_ups.lock().unwrap_or_else(PoisonError::into_inner);
        *give_ups.entry(reason.to_string()).or_default() += 1;
    }

    fn transition(&self, change: &StateChange) {
        let mut transitions = self
            .transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        transitions.push(*change);
    }

    /// Retries and give-ups since the last call.
    fn take(&self) -> (u32, BTreeMap<String, u32>) {
        let give_ups =
            std::mem::take(&mut *self.give_ups.lock().unwrap_or_else(PoisonError::into_inner));
        (self.retries.swap(0, Ordering::Relaxed), give_ups)
    }

    /// State changes since the last call, as `closed -> open -> half-open`.
    fn take_transitions(&self) -> Option<String> {
        let changes = std::mem::take(
            &mut *self
                .transitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let first = changes.first()?;
        let mut path = first.from.to_string();
        for change in &changes {
            path.push_str(&format!(" -> {}", change.to));
        }
        Some(path)
    }
}

/// What the caller got in one phase.
#[derive(Default)]
struct Tally {
    ok: u32,
    rejected: u32,
    /// Failures returned to the caller, by what they were.
    failed: BTreeMap<String, u32>,
}

impl Tally {
    fn record(&mut self, result: Result<(StatusCode, Bytes), BoxError>) {
        let failure = match result {
            Ok((status, _)) if status.is_success() => {
                self.ok += 1;
                return;
            }
            // A retryable status whose retries ran out is still the answer.
            Ok((status, _)) => status.to_string(),
            Err(err) => match ErrorKind::of(&*err) {
                ErrorKind::CircuitOpen => {
                    self.rejected += 1;
                    return;
                }
                _ => match err.downcast_ref::<RetryAfterTooLong>() {
                    Some(too_long) => format!(
                        "Retry-After {:?} > {:?} allowed",
                        too_long.retry_after(),
                        too_long.allowed()
                    ),
                    None => err.to_string(),
                },
            },
        };
        *self.failed.entry(failure).or_default() += 1;
    }

    fn print(&self, phase: Phase, calls: u32, seen: &Seen) {
        let (retries, give_ups) = seen.take();
        let breaker = seen
            .take_transitions()
            .unwrap_or_else(|| "(no change)".to_string());
        let failed: u32 = self.failed.values().sum();
        println!(
            "{:<10} {calls:>5} {:>4} {failed:>6} {retries:>7} {:>8}  {breaker}",
            phase.name(),
            self.ok,
            self.rejected,
        );
        if !self.failed.is_empty() {
            println!("{:<10} failed: {}", "", counts(&self.failed));
        }
        if !give_ups.is_empty() {
            println!("{:<10} retry gave up: {}", "", counts(&give_ups));
        }
    }
}

fn counts(map: &BTreeMap<String, u32>) -> String {
    map.iter()
        .map(|(what, n)| format!("{n} x {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ===== the upstream server =====

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Healthy,
    Flaky,
    Throttled,
    Down,
    BackUp,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Healthy,
        Phase::Flaky,
        Phase::Throttled,
        Phase::Down,
        Phase::BackUp,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Flaky => "flaky",
            Phase::Throttled => "throttled",
            Phase::Down => "down",
            Phase::BackUp => "back up",
        }
    }
}

/// The upstream's behaviour, switched by `main`.
#[derive(Default)]
struct Upstream {
    phase: AtomicU8,
    /// Requests seen in this phase (the flaky phase fails the even ones).
    requests: AtomicU32,
    /// POST attempts seen since `main` reset the count.
    post_attempts: AtomicU32,
}

impl Upstream {
    fn enter(&self, phase: Phase) {
        self.requests.store(0, Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Flaky phase: the next request fails.
    fn fail_next(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        let index = usize::from(self.phase.load(Ordering::Relaxed));
        Phase::ALL.get(index).copied().unwrap_or(Phase::Healthy)
    }

    /// The answer to the next request, or `None` to serve it.
    fn failure(&self) -> Option<Response> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        match self.phase() {
            Phase::Healthy | Phase::BackUp => None,
            Phase::Flaky if n % 2 == 1 => None,
            Phase::Flaky | Phase::Down => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
            Phase::Throttled => Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "1")],
                    "slow down",
                )
                    .into_response(),
            ),
        }
    }
}

async fn item(State(upstream): State<Arc<Upstream>>) -> Response {
    upstream
        .failure()
        .unwrap_or_else(|| "one apple".into_response())
}

async fn order(State(upstream): State<Arc<Upstream>>, method: Method, body: Bytes) -> Response {
    upstream.post_attempts.fetch_add(1, Ordering::Relaxed);
    upstream.failure().unwrap_or_else(|| {
        let text = format!("{method} accepted, {} body bytes", body.len());
        (StatusCode::CREATED, text).into_response()
    })
}

async fn start_upstream(
    upstream: Arc<Upstream>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BoxError> {
    let app = Router::new()
        .route("/item", get(item))
        .route("/orders", post(order))
        .with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("upstream server failed: {err}");
        }
    });
    Ok((addr, server))
}
