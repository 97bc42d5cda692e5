//! The real components every test runs against: an axum server on an ephemeral port that
//! records what it saw, a raw TCP server that misbehaves, hyper-util clients, fast retry
//! policies and event recorders.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use seawall::http::ReplayBody;
use seawall::retry::{Backoff, Event, GiveUpReason, Jitter, Retry};
use seawall::BoxError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Every test body runs under this bound.
pub const TEST_BOUND: Duration = Duration::from_secs(20);

/// Runs `body` under [`TEST_BOUND`]; panics if it takes longer.
pub async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, body)
        .await
        .expect("the test took longer than its bound")
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ===== the recording server =====

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub request_id: Option<String>,
    pub headers: HeaderMap,
    /// When the handler was entered (before the body was read).
    pub at: Instant,
    /// The body, if it was received whole.
    pub body: Option<Bytes>,
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A running axum server.
pub struct Server {
    pub addr: SocketAddr,
    pub log: Log,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The requests seen for `path`.
    pub fn seen_on(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

/// Serves `router` on 127.0.0.1, on an ephemeral port, until the runtime ends.
pub async fn serve_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

/// A server that records every request (its body read whole first), then answers with
/// `respond(seen, prior)`, `prior` being how many requests it saw before on the same path.
pub async fn recording_server<F, Fut>(respond: F) -> Server
where
    F: Fn(Seen, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let log: Log = Arc::default();
    let handler_log = log.clone();
    let router = Router::new().fallback(move |req: Request| {
        let log = handler_log.clone();
        let respond = respond.clone();
        async move {
            let at = Instant::now();
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.ok();
            let seen = Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                request_id: parts
                    .headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                headers: parts.headers.clone(),
                at,
                body,
            };
            let prior = {
                let mut log = log.lock().unwrap();
                let prior = log.iter().filter(|s| s.path == seen.path).count();
                log.push(seen.clone());
                prior
            };
            respond(seen, prior).await
        }
    });
    let addr = serve_router(router).await;
    Server { addr, log }
}

/// A response with `status` and the given headers, and a short body.
pub fn response(status: u16, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(format!("status {status}")))
        .unwrap()
}

/// Answers `first` for the first `n` requests on a path, then `then`.
pub fn fail_first(
    n: usize,
    first: u16,
    then: u16,
) -> impl Fn(Seen, usize) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |_, prior| std::future::ready(response(if prior < n { first } else { then }, &[]))
}

/// The gaps between consecutive requests.
pub fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

// ===== the misbehaving server =====

/// How a raw server answers a connection, after reading the request head.
#[derive(Debug, Clone, Copy)]
pub enum Misbehave {
    /// Closes the connection without a byte.
    Close,
    /// Writes half a status line and headers, then closes.
    TruncatedHead,
    /// Writes a full head announcing 100 bytes of body, 5 of them, then closes.
    TruncatedBody,
}

/// A raw TCP server on 127.0.0.1 that misbehaves; counts the connections it accepted.
pub struct RawServer {
    pub addr: SocketAddr,
    pub accepted: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn count(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

pub async fn raw_server(how: Misbehave) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let accepted: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let log = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                // Read the request head (bounded), so the close is not a reset for unread data.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match tokio::time::timeout(ms(2000), socket.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                log.lock().unwrap().push(head);
                let reply: &[u8] = match how {
                    Misbehave::Close => b"",
                    Misbehave::TruncatedHead => b"HTTP/1.1 200 OK\r\nContent-Le",
                    Misbehave::TruncatedBody => {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello"
                    }
                };
                let _ = socket.write_all(reply).await;
                let _ = socket.flush().await;
                drop(socket);
            });
        }
    });
    RawServer { addr, accepted }
}

// ===== bodies and clients =====

/// The request body most tests send: boxed, so streamed and full bodies share one client.
pub type TestBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body of known size.
pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> TestBody {
    full(Bytes::new())
}

/// A body streamed in `chunks`, one per poll after a yield (size unknown to hyper and to the
/// replay buffer: sent chunked), then `tail` if any.
pub fn streamed(chunks: Vec<Bytes>, tail: Option<BoxError>) -> TestBody {
    let frames = chunks
        .into_iter()
        .map(|c| Ok(Frame::data(c)))
        .chain(tail.map(Err));
    let stream = futures::stream::iter(frames).then(|frame| async move {
        tokio::task::yield_now().await;
        frame
    });
    StreamBody::new(stream).boxed_unsync()
}

/// `n` chunks of `size` bytes, each a distinct pattern so a reordered or truncated replay shows.
pub fn chunks(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; size]))
        .collect()
}

pub fn concat(chunks: &[Bytes]) -> Bytes {
    chunks
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect::<Vec<u8>>()
        .into()
}

/// A hyper-util client sending `ReplayBody<B>`.
pub fn client<B>() -> Client<HttpConnector, ReplayBody<B>>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http::<ReplayBody<B>>()
}

/// A request with a fresh `x-request-id`.
pub fn request(method: Method, url: &str, id: &str, body: TestBody) -> http::Request<TestBody> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", id)
        .header("x-custom", "kept")
        .body(body)
        .unwrap()
}

// ===== retry policies and their events =====

/// A policy with tiny constant backoffs (1 ms, no jitter), no budget.
pub fn fast_retry(max_retries: u32) -> seawall::retry::Builder {
    Retry::builder()
        .max_retries(max_retries)
        .backoff(Backoff::constant(ms(1)).jitter(Jitter::None))
        .no_budget()
}

/// A retry event, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryEv {
    Retry {
        attempt: u32,
        delay: Duration,
        retry_after: bool,
    },
    GiveUp {
        attempt: u32,
        reason: GiveUpReason,
        response: bool,
        error: Option<String>,
    },
}

pub type Events = Arc<Mutex<Vec<RetryEv>>>;

/// A listener recording every retry event.
pub fn recorder() -> (Events, impl Fn(&Event<'_>) + Send + Sync + 'static) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let listener = move |event: &Event<'_>| {
        let owned = match event {
            Event::Retry(r) => RetryEv::Retry {
                attempt: r.attempt,
                delay: r.delay,
                retry_after: r.retry_after,
            },
            Event::GiveUp(g) => RetryEv::GiveUp {
                attempt: g.attempt,
                reason: g.reason,
                response: g.response,
                error: g.error.map(|e| e.to_string()),
            },
            _ => return,
        };
        sink.lock().unwrap().push(owned);
    };
    (events, listener)
}

pub fn events(events: &Events) -> Vec<RetryEv> {
    events.lock().unwrap().clone()
}

/// Reads a response's body whole.
pub async fn body_of<B>(response: http::Response<B>) -> Result<Bytes, B::Error>
where
    B: http_body::Body,
{
    Ok(response.into_body().collect().await?.to_bytes())
}

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

// ===== stacks =====

use seawall::circuit_breaker::{self, CircuitBreaker};
use seawall::http::{StandardClient, StandardClientLayer};
use seawall::Outcome;
use tower::Layer;

/// The standard stack over a hyper-util client sending [`TestBody`].
pub type Stack = StandardClient<Client<HttpConnector, ReplayBody<TestBody>>>;

pub fn stack(layer: StandardClientLayer) -> Stack {
    layer.layer(client::<TestBody>())
}

/// Outcomes a breaker recorded, and calls it rejected.
#[derive(Debug, Clone, Default)]
pub struct BreakerLog {
    pub outcomes: Arc<Mutex<Vec<Outcome>>>,
    pub rejected: Arc<Mutex<usize>>,
}

impl BreakerLog {
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    pub fn rejected(&self) -> usize {
        *self.rejected.lock().unwrap()
    }
}

/// A breaker builder whose listener records into the returned log.
pub fn logged_breaker() -> (BreakerLog, circuit_breaker::Builder) {
    let log = BreakerLog::default();
    let sink = log.clone();
    let builder = CircuitBreaker::builder().listener(
        move |_: &CircuitBreaker, event: &circuit_breaker::Event| match event {
            circuit_breaker::Event::Recorded(r) => sink.outcomes.lock().unwrap().push(r.outcome),
            circuit_breaker::Event::Rejected(_) => *sink.rejected.lock().unwrap() += 1,
            _ => {}
        },
    );
    (log, builder)
}

/// Whether `err`'s chain holds an error of type `T`.
pub fn chain_has<T: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    for _ in 0..64 {
        match current {
            Some(e) if e.is::<T>() => return true,
            Some(e) => current = e.source(),
            None => return false,
        }
    }
    false
}
