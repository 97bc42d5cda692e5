//! The server side: an axum route protected by a circuit breaker, a timeout and a
//! concurrency limit, with seawall's `RejectionResponseLayer` answering every refusal as an
//! HTTP response (no hand-written `HandleErrorLayer`):
//!
//! - the handler's own errors (the database is down) are 500s, and count against the breaker;
//! - an open circuit answers 503 with `Retry-After`, without running the handler;
//! - a request slower than the timeout answers 504;
//! - a request over the concurrency limit is shed (tower's `LoadShed`), answered 503 (an
//!   overloaded server, RFC 9110) by seawall's `rejection_response`.
//!
//! The example starts the server on 127.0.0.1, drives it with a plain hyper-util client (no
//! seawall on the client side, so every status is seen as the server sent it), prints each
//! status with its `Retry-After`, and exits. Runs in about two seconds.
//!
//! ```text
//! cargo run --features http --example axum_server
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::{HttpBreakerClassifier, RejectionResponseLayer};
use seawall::BoxError;
use tower::ServiceBuilder;

/// The handler's time limit.
const TIMEOUT: Duration = Duration::from_millis(250);
/// Requests the route serves at once; more are shed.
const CONCURRENCY: usize = 2;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();

    // The "database": a closure that fails while `db_down` is set.
    let db_down = Arc::new(AtomicBool::new(false));
    let database: Database = {
        let db_down = db_down.clone();
        Arc::new(move |sku: &str| {
            if db_down.load(Ordering::Relaxed) {
                Err(DbError("connection refused"))
            } else {
                Ok(format!("42 {sku} in stock"))
            }
        })
    };

    let breaker = CircuitBreaker::builder()
        .name("inventory-db")
        .failure_threshold(3)
        .wait_in_open(Duration::from_secs(1))
        .half_open_max_calls(1)
        .on_state_change(|_, change| println!("     [breaker: {} -> {}]", change.from, change.to))
        .build()?;

    // Outermost first. Shedding sits outside the breaker, so an overload is not counted as
    // the database's failure; the timeout sits inside it, so a slow handler is.
    let protection = ServiceBuilder::new()
        .layer(RejectionResponseLayer::new())
        .load_shed()
        .concurrency_limit(CONCURRENCY)
        // An axum handler answers its errors as 500 responses, never as `Err`: count 5xx
        // responses as failures (the default classifier would call every response a success).
        .layer(breaker.layer().classifier(HttpBreakerClassifier::default()))
        .timeout(TIMEOUT);
    let app = Router::new()
        .route("/inventory", get(inventory))
        .route_layer(protection)
        .with_state(database);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("server failed: {err}");
        }
    });
    println!("serving http://{addr}/inventory");

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    println!("1. the database is healthy");
    for _ in 0..2 {
        show(&client, addr, "/inventory").await?;
    }

    println!("2. a slow request runs past the {TIMEOUT:?} timeout (a breaker failure too)");
    show(&client, addr, "/inventory?delay_ms=1000").await?;
    show(&client, addr, "/inventory").await?;

    println!(
        "3. the database goes down: the handler's errors are 500s; the third opens the circuit"
    );
    db_down.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        show(&client, addr, "/inventory").await?;
    }

    println!("4. while the circuit is open, requests are refused at once, with a Retry-After");
    for _ in 0..2 {
        show(&client, addr, "/inventory").await?;
    }

    println!("5. the database is back, but the circuit stays open until the wait is over");
    db_down.store(false, Ordering::Relaxed);
    let retry_after = show(&client, addr, "/inventory").await?;
    // A well-behaved client waits as told (here at most 2 s, to keep the example short).
    let wait = Duration::from_secs(retry_after.unwrap_or(1).min(2));
    println!("   (waiting {wait:?}, as Retry-After says)");
    tokio::time::sleep(wait).await;
    show(&client, addr, "/inventory").await?;
    show(&client, addr, "/inventory").await?;

    println!(
        "6. {} requests at once, each taking 100 ms, against a limit of {CONCURRENCY}: the rest are shed",
        CONCURRENCY + 2
    );
    let burst: Vec<_> = (0..CONCURRENCY + 2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { fetch(&client, addr, "/inventory?delay_ms=100").await })
        })
        .collect();
    for task in burst {
        let answer = task
            .await
            .map_err(|e| format!("request task failed: {e}"))??;
        answer.print("/inventory?delay_ms=100");
    }
    println!(
        "done in {:.2}s; breaker {}",
        start.elapsed().as_secs_f64(),
        breaker.state()
    );
    server.abort();
    Ok(())
}

// ===== the server =====

/// The database client the handler uses.
type Database = Arc<dyn Fn(&str) -> Result<String, DbError> + Send + Sync>;

/// The database's error, answered as a 500 by the handler.
#[derive(Debug)]
struct DbError(&'static str);

impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        let body = format!("database error: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

/// `GET /inventory[?delay_ms=N]`: asks the database, after `N` ms of "work".
async fn inventory(State(database): State<Database>, uri: Uri) -> Result<String, DbError> {
    let delay_ms = uri
        .query()
        .and_then(|q| q.strip_prefix("delay_ms="))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    database("apples")
}

// ===== the client =====

/// What the server answered.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn print(&self, path: &str) {
        let retry_after = match &self.retry_after {
            Some(secs) => format!("Retry-After: {secs}"),
            None => "-".to_string(),
        };
        println!(
            "   GET {path:<26} {:<27} {retry_after:<16} {:?}",
            self.status.to_string(),
            self.body
        );
    }
}

async fn fetch(client: &HttpClient, addr: SocketAddr, path: &str) -> Result<Answer, BoxError> {
    let uri: Uri = format!("http://{addr}{path}").parse()?;
    let response = client.get(uri).await?;
    let status = response.status();
    let retry_after = match response.headers().get(header::RETRY_AFTER) {
        Some(value) => Some(value.to_str()?.to_string()),
        None => None,
    };
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One request, printed; returns its `Retry-After` in seconds, if any.
async fn show(client: &HttpClient, addr: SocketAddr, path: &str) -> Result<Option<u64>, BoxError> {
    let answer = fetch(client, addr, path).await?;
    answer.print(path);
    Ok(answer.retry_after.and_then(|secs| secs.parse().ok()))
}
