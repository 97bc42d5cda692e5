//! seawall around real tonic clients and servers: a tonic Health server on a loopback port,
//! called by a tonic `HealthClient` over a `Channel` wrapped in seawall's client stack
//! (replay buffer, retry with `GrpcRetryClassifier`, breaker with `GrpcBreakerClassifier`),
//! and seawall's breaker on the server side answering rejections as gRPC statuses.
//!
//! A server-side layer ([`Faults`]) answers the calls it is told to with a Trailers-Only
//! response (HTTP 200, `content-type: application/grpc`, `grpc-status` and maybe
//! `grpc-retry-pushback-ms` in the headers: what tonic's `Status::into_http` makes), and
//! records when each call reached it.
//!
//! Real sockets, so real time: backoffs are 1 ms without jitter, and every test is bounded
//! by a 20 s timeout.

#![cfg(feature = "grpc")]

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use seawall::circuit_breaker::{CircuitBreaker, CircuitBreakerService, CircuitOpen, State};
use seawall::grpc::{
    grpc_rejection_response, GrpcBreakerClassifier, GrpcRequests, GrpcRetryClassifier, Pushback,
};
use seawall::http::{
    HttpRequests, RejectionResponseLayer, ReplayBody, ReplayBodyLayer, ReplayBodyService,
};
use seawall::retry::{
    Backoff, Event as RetryEvent, Jitter, Retry, RetryAfterTooLong, RetryError, RetryService,
};
use seawall::{BoxError, Classify, ErrorKind, Outcome};
use tonic::body::Body;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::util::MapRequest;
use tower::{Layer, Service, ServiceBuilder};

// ===== the server side: a Health server with injected failures =====

/// What the fault injector answers a call with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Pass the call to the Health service.
    Serve,
    /// A Trailers-Only response with this `grpc-status` and `grpc-retry-pushback-ms`.
    Fail(Code, Option<&'static str>),
    /// After this long: UNAVAILABLE if `true`, else pass the call on.
    Slow(Duration, bool),
    /// A reply that commits (HTTP 200, no `grpc-status` in the headers), streams one empty
    /// message and ends with this code in its trailers.
    FailInTrailers(Code),
}

/// The fault injector's script and what it saw: the plan maps the call's index (from 0) to
/// an answer.
struct Faults {
    plan: Box<dyn Fn(u32) -> Answer + Send + Sync>,
    arrivals: Mutex<Vec<Instant>>,
    /// Each call's `grpc-timeout` header, if any.
    timeouts: Mutex<Vec<Option<String>>>,
}

impl Faults {
    fn new(plan: impl Fn(u32) -> Answer + Send + Sync + 'static) -> Arc<Faults> {
        Arc::new(Faults {
            plan: Box::new(plan),
            arrivals: Mutex::new(Vec::new()),
            timeouts: Mutex::new(Vec::new()),
        })
    }

    /// The first `n` calls fail with `code` (and `pushback`), the rest are served.
    fn first(n: u32, code: Code, pushback: Option<&'static str>) -> Arc<Faults> {
        Faults::new(move |i| {
            if i < n {
                Answer::Fail(code, pushback)
            } else {
                Answer::Serve
            }
        })
    }

    /// Calls that reached the server.
    fn calls(&self) -> u32 {
        self.arrivals.lock().unwrap().len() as u32
    }

    /// When each call reached the server.
    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// A tonic status as the Trailers-Only response a server sends for it.
fn trailers_only(code: Code, pushback: Option<&'static str>) -> Response<Body> {
    let mut status = tonic::Status::new(code, format!("injected {code:?}"));
    if let Some(p) = pushback {
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", p.parse().unwrap());
    }
    status.into_http()
}

#[derive(Clone)]
struct FaultLayer(Arc<Faults>);

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;
    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService {
            inner,
            faults: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct FaultService<S> {
    inner: S,
    faults: Arc<Faults>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<Request<B>> for FaultService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let timeout = req.headers().get("grpc-timeout");
        let timeout = timeout.map(|t| t.to_str().unwrap().to_owned());
        self.faults.timeouts.lock().unwrap().push(timeout);
        let index = {
            let mut arrivals = self.faults.arrivals.lock().unwrap();
            arrivals.push(Instant::now());
            arrivals.len() as u32 - 1
        };
        match (self.faults.plan)(index) {
            Answer::Serve => Box::pin(self.inner.call(req)),
            Answer::Fail(code, pushback) => {
                let response = trailers_only(code, pushback);
                Box::pin(async move { Ok(response) })
            }
            Answer::FailInTrailers(code) => {
                let response = status_in_trailers(code);
                Box::pin(async move { Ok(response) })
            }
            Answer::Slow(delay, fail) => {
                // The call is made now (tower's contract: `call` follows `poll_ready`), and
                // its answer held back.
                let call = (!fail).then(|| self.inner.call(req));
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    match call {
                        Some(call) => call.await,
                        None => Ok(trailers_only(Code::Unavailable, None)),
                    }
                })
            }
        }
    }
}

/// A listener on a free loopback port.
fn status_in_trailers(code: Code) -> Response<Body> {
    use http_body::Frame;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
    trailers.insert("grpc-message", "failed at the end".parse().unwrap());
    // One message: no compression, length 0 (an empty `HealthCheckResponse`).
    let frames: Vec<Result<Frame<bytes::Bytes>, BoxError>> = vec![
        Ok(Frame::data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(body))
        .unwrap()
}

fn bind() -> (TcpIncoming, SocketAddr) {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).expect("bind loopback");
    let addr = incoming.local_addr().expect("local address");
    (incoming, addr)
}

/// The service name the test servers report SERVING. Every call asks for it, so a retry
/// whose request body were not replayed faithfully would not get SERVING back.
const SERVICE: &str = "seawall.test.Echo";

/// A Health service reporting [`SERVICE`] as SERVING (any other name: NOT_FOUND).
async fn health(
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    health
}

/// A Health server behind the fault injector, on `incoming`; it runs until the test's
/// runtime ends.
async fn serve_on(incoming: TcpIncoming, faults: &Arc<Faults>) {
    let router = Server::builder()
        .layer(FaultLayer(faults.clone()))
        .add_service(health().await);
    tokio::spawn(async move {
        router
            .serve_with_incoming(incoming)
            .await
            .expect("server runs");
    });
}

/// [`serve_on`] a free loopback port.
async fn serve(faults: &Arc<Faults>) -> SocketAddr {
    let (incoming, addr) = bind();
    serve_on(incoming, faults).await;
    addr
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the test server")
}

// ===== the client side: the seawall stack around a tonic Channel =====

/// tonic's `Channel` takes `Request<tonic::body::Body>` only, and `ReplayBodyLayer` hands its
/// inner service `Request<ReplayBody<tonic::body::Body>>`: the stack needs this adapter at the
/// bottom (a `MapRequest` with a named `fn`, so the stack's type can be written down).
type ToChannel = fn(Request<ReplayBody<Body>>) -> Request<Body>;

fn to_channel(req: Request<ReplayBody<Body>>) -> Request<Body> {
    req.map(Body::new)
}

/// The client stack: replay buffer, retry (of the Health service's calls, named as gRPC's
/// retry policy names them), breaker, adapter, channel.
type Stack = ReplayBodyService<
    RetryService<
        CircuitBreakerService<MapRequest<Channel, ToChannel>, GrpcBreakerClassifier>,
        GrpcRetryClassifier,
        GrpcRequests,
    >,
>;

/// The calls the tests may retry: the whole Health service.
fn health_calls() -> GrpcRequests {
    GrpcRequests::methods(["/grpc.health.v1.Health/"])
}

fn stack_service(channel: Channel, retry: &Retry, breaker: &CircuitBreaker) -> Stack {
    ServiceBuilder::new()
        .layer(ReplayBodyLayer::new(16 * 1024))
        .layer(
            retry
                .layer()
                .classifier(GrpcRetryClassifier::new())
                .clone_request(health_calls()),
        )
        .layer(breaker.layer().classifier(GrpcBreakerClassifier::new()))
        .map_request(to_channel as ToChannel)
        .service(channel)
}

fn stack(channel: Channel, retry: &Retry, breaker: &CircuitBreaker) -> HealthClient<Stack> {
    HealthClient::new(stack_service(channel, retry, breaker))
}

/// A breaker that stays closed through every test that is not about it.
fn lenient_breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(100)
        .build()
        .expect("valid breaker")
}

/// The retry events of a policy, as text, for assertions.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, event: &RetryEvent<'_>) {
        let line = match event {
            RetryEvent::Retry(r) => format!(
                "retry attempt={} delay={:?} retry_after={}",
                r.attempt, r.delay, r.retry_after
            ),
            RetryEvent::GiveUp(g) => format!("give-up attempt={} reason={:?}", g.attempt, g.reason),
            // Attempts and calls ending (timed on the real clock here) are not what these
            // tests are about.
            RetryEvent::Attempt(_) | RetryEvent::Finished(_) => return,
            _ => format!("{event:?}"),
        };
        self.0.lock().unwrap().push(line);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Up to 3 retries, 1 ms apart (no jitter), no budget, `max_delay` as given; events recorded.
fn retry_policy(max_delay: Duration) -> (Retry, Events) {
    let events = Events::default();
    let e = events.clone();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(1))
                .max_delay(max_delay)
                .jitter(Jitter::None),
        )
        .no_budget()
        .listener(move |event: &RetryEvent<'_>| e.push(event))
        .build()
        .expect("valid policy");
    (retry, events)
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: SERVICE.into(),
    }
}

fn serving(response: &tonic::Response<tonic_health::pb::HealthCheckResponse>) -> bool {
    response.get_ref().status == ServingStatus::Serving as i32
}

/// The first error of type `T` in `err`'s source chain (the error itself included).
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        current = e.source();
    }
    None
}

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test timed out")
}

// ===== 1. UNAVAILABLE twice, then OK =====

#[tokio::test]
async fn unavailable_twice_then_ok_is_retried_to_success() {
    bounded(async {
        let faults = Faults::first(2, Code::Unavailable, None);
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let breaker = lenient_breaker();
        let mut client = stack(connect(addr).await, &retry, &breaker);

        let response = client.check(check()).await.expect("retried to success");
        assert!(serving(&response));
        assert_eq!(
            faults.calls(),
            3,
            "two failed attempts and the one that answered"
        );
        assert_eq!(
            events.take(),
            [
                "retry attempt=1 delay=1ms retry_after=false",
                "retry attempt=2 delay=2ms retry_after=false",
            ]
        );
        // The breaker saw the two failures and the success: still closed.
        assert_eq!(breaker.state(), State::Closed);
    })
    .await
}

// ===== 2. RESOURCE_EXHAUSTED: only with pushback =====

#[tokio::test]
async fn resource_exhausted_without_pushback_is_not_retried() {
    bounded(async {
        let faults = Faults::first(1, Code::ResourceExhausted, None);
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let mut client = stack(connect(addr).await, &retry, &lenient_breaker());

        let status = client.check(check()).await.expect_err("not retried");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "injected ResourceExhausted");
        assert_eq!(faults.calls(), 1);
        assert!(events.take().is_empty(), "not retryable: no event");
    })
    .await
}

#[tokio::test]
async fn resource_exhausted_with_pushback_is_retried_after_the_pushback() {
    bounded(async {
        let faults = Faults::first(1, Code::ResourceExhausted, Some("50"));
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let mut client = stack(connect(addr).await, &retry, &lenient_breaker());

        let response = client
            .check(check())
            .await
            .expect("retried after the pushback");
        assert!(serving(&response));
        let arrivals = faults.arrivals();
        assert_eq!(arrivals.len(), 2);
        let gap = arrivals[1] - arrivals[0];
        assert!(
            gap >= Duration::from_millis(50),
            "server saw the retry after {gap:?}"
        );
        assert_eq!(
            events.take(),
            ["retry attempt=1 delay=50ms retry_after=true"]
        );
    })
    .await
}

// ===== 3. A negative pushback: do not retry =====

#[tokio::test]
async fn negative_pushback_stops_retries_of_unavailable() {
    bounded(async {
        let faults = Faults::first(1, Code::Unavailable, Some("-1"));
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let mut client = stack(connect(addr).await, &retry, &lenient_breaker());

        let status = client.check(check()).await.expect_err("not retried");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "-1",
            "the caller still sees the server's pushback"
        );
        assert_eq!(faults.calls(), 1);
        // Classified `Ignored` (A6: the server asked not to retry), so not a give-up either.
        assert!(events.take().is_empty());
    })
    .await
}

// ===== 4. A pushback longer than max_delay =====

/// The policy allows 100 ms; the server asks for 5 s: the call ends at once. seawall drops
/// the UNAVAILABLE response and returns `RetryAfterTooLong` as the stack's error, which tonic
/// turns into a `Status` with code UNKNOWN (its mapping of any error it does not recognise),
/// seawall's message, and the error as its source. The server's code, message and metadata
/// (the pushback itself) are gone.
#[tokio::test]
async fn pushback_longer_than_max_delay_fails_at_once_as_unknown() {
    bounded(async {
        let faults = Faults::first(1, Code::Unavailable, Some("5000"));
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_millis(100));
        let mut client = stack(connect(addr).await, &retry, &lenient_breaker());

        let start = Instant::now();
        let status = client.check(check()).await.expect_err("gives up");
        assert!(start.elapsed() < Duration::from_secs(1), "failed at once");
        assert_eq!(faults.calls(), 1);
        assert_eq!(
            events.take(),
            ["give-up attempt=1 reason=RetryAfterTooLong"]
        );

        assert_eq!(status.code(), Code::Unknown, "not the server's UNAVAILABLE");
        assert_eq!(
            status.message(),
            "server asked to retry after 5s, longer than allowed (100ms); not retrying"
        );
        let too_long = find::<RetryAfterTooLong>(&status).expect("seawall's error is the source");
        assert_eq!(too_long.retry_after(), Duration::from_secs(5));
        assert_eq!(too_long.allowed(), Duration::from_millis(100));
        assert!(
            too_long.last_error().is_none(),
            "the last attempt was a response"
        );
        assert!(status.metadata().get("grpc-retry-pushback-ms").is_none());
        // Nothing tells this apart from the dependency's own error by kind.
        assert_eq!(ErrorKind::of(&status), ErrorKind::Inner);
    })
    .await
}

// ===== 5. The client-side breaker =====

/// INVALID_ARGUMENT is not retried and counts for nothing; UNAVAILABLE opens the breaker
/// (3 consecutive failures), after which calls fail fast with a `Status` whose code is
/// UNKNOWN (tonic's mapping of a `BoxError` it does not recognise) and whose source is
/// seawall's `CircuitOpen`.
#[tokio::test]
async fn invalid_argument_is_ignored_and_unavailable_opens_the_breaker() {
    bounded(async {
        // 10 INVALID_ARGUMENT, then UNAVAILABLE for ever.
        let faults = Faults::new(|i| {
            if i < 10 {
                Answer::Fail(Code::InvalidArgument, None)
            } else {
                Answer::Fail(Code::Unavailable, None)
            }
        });
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let c = changes.clone();
        let breaker = CircuitBreaker::builder()
            .failure_threshold(3)
            .wait_in_open(Duration::from_secs(60))
            .on_state_change(move |_, change| c.lock().unwrap().push((change.from, change.to)))
            .build()
            .expect("valid breaker");
        let mut client = stack(connect(addr).await, &retry, &breaker);

        for i in 1..=10 {
            let status = client.check(check()).await.expect_err("invalid argument");
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(faults.calls(), i, "not retried");
        }
        assert!(events.take().is_empty());
        assert_eq!(
            breaker.state(),
            State::Closed,
            "INVALID_ARGUMENT is not the server's fault"
        );

        // UNAVAILABLE: attempts 1 to 3 fail and trip the breaker; the 4th attempt is refused
        // by it, and the refusal is not retried.
        let status = client.check(check()).await.expect_err("breaker opened");
        assert_eq!(faults.calls(), 13);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(*changes.lock().unwrap(), [(State::Closed, State::Open)]);
        assert_eq!(
            events.take(),
            [
                "retry attempt=1 delay=1ms retry_after=false",
                "retry attempt=2 delay=2ms retry_after=false",
                "retry attempt=3 delay=4ms retry_after=false",
            ]
        );
        assert_circuit_open(&status);

        // Open: calls fail fast, the server sees nothing.
        for _ in 0..5 {
            let start = Instant::now();
            let status = client.check(check()).await.expect_err("rejected");
            assert!(start.elapsed() < Duration::from_millis(500));
            assert_circuit_open(&status);
        }
        assert_eq!(faults.calls(), 13);
        assert!(events.take().is_empty(), "a refusal is not retried");
    })
    .await
}

/// What a tonic caller gets for a call the client-side breaker refused.
fn assert_circuit_open(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(
        status.message().starts_with("circuit open"),
        "{}",
        status.message()
    );
    assert_eq!(ErrorKind::of(status), ErrorKind::CircuitOpen);
    let open = find::<CircuitOpen>(status).expect("CircuitOpen in the source chain");
    assert!(open.retry_in() > Duration::from_secs(50));
    // No pushback for the caller's own retry logic to read.
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_none());
}

/// The workaround for the UNKNOWN above: map the stack's errors to `tonic::Status` on the
/// client too, with the server-side mapping (`grpc_rejection_response`) read back by
/// `Status::from_header_map`: an open circuit is then UNAVAILABLE with a pushback, and the
/// seawall error stays the source.
#[tokio::test]
async fn client_side_rejections_mapped_to_unavailable_with_pushback() {
    bounded(async {
        let faults = Faults::first(u32::MAX, Code::Unavailable, None);
        let addr = serve(&faults).await;
        let (retry, _events) = retry_policy(Duration::from_secs(1));
        let breaker = CircuitBreaker::builder()
            .failure_threshold(3)
            .wait_in_open(Duration::from_secs(60))
            .build()
            .expect("valid breaker");
        let inner = stack_service(connect(addr).await, &retry, &breaker);
        let mut client = HealthClient::new(
            ServiceBuilder::new()
                .map_err(as_status as fn(BoxError) -> tonic::Status)
                .service(inner),
        );

        let status = client.check(check()).await.expect_err("breaker opened");
        assert_eq!(faults.calls(), 3);
        for status in [status, client.check(check()).await.expect_err("rejected")] {
            assert_eq!(status.code(), Code::Unavailable);
            let pushback = status
                .metadata()
                .get("grpc-retry-pushback-ms")
                .expect("pushback");
            let ms: u64 = pushback.to_str().unwrap().parse().unwrap();
            assert!((50_000..=60_000).contains(&ms), "{ms}");
            assert_eq!(ErrorKind::of(&status), ErrorKind::CircuitOpen);
        }
        assert_eq!(faults.calls(), 3);
    })
    .await
}

/// seawall's error as the `tonic::Status` a server would have answered it with.
fn as_status(err: BoxError) -> tonic::Status {
    let head = grpc_rejection_response::<()>(&*err);
    let mut status = tonic::Status::from_header_map(head.headers()).expect("grpc-status is set");
    status.set_source(Arc::from(err));
    status
}

// ===== 6. The server-side breaker, answered as gRPC =====

/// A tonic server whose Health service sits behind `RejectionResponseLayer::grpc()` over a
/// breaker over a failing inner service: once the breaker opens, tonic clients get
/// UNAVAILABLE with `grpc-retry-pushback-ms` (the time to the breaker's next probe), and a
/// seawall retry on the client waits that long, then gets through.
#[tokio::test]
async fn server_side_breaker_pushback_is_honoured_by_client_retry() {
    bounded(async {
        // The inner service fails (UNAVAILABLE, no pushback) while `down` says so.
        let down = Arc::new(AtomicBool::new(true));
        let d = down.clone();
        let faults = Faults::new(move |_| {
            if d.load(Ordering::SeqCst) {
                Answer::Fail(Code::Unavailable, None)
            } else {
                Answer::Serve
            }
        });
        let wait_in_open = Duration::from_millis(300);
        let server_breaker = CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(wait_in_open)
            .half_open_max_calls(1)
            .build()
            .expect("valid breaker");
        let (incoming, addr) = bind();
        let health = health().await;
        let router = Server::builder()
            .layer(RejectionResponseLayer::grpc())
            .layer(
                server_breaker
                    .layer()
                    .classifier(GrpcBreakerClassifier::new()),
            )
            .layer(FaultLayer(faults.clone()))
            .add_service(health);
        tokio::spawn(async move { router.serve_with_incoming(incoming).await.expect("serves") });

        // A bare tonic client: two failures from the inner service, then the breaker's answer.
        let channel = connect(addr).await;
        let mut bare = HealthClient::new(channel.clone());
        for _ in 0..2 {
            let status = bare.check(check()).await.expect_err("inner failure");
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(status.message(), "injected Unavailable");
            assert!(status.metadata().get("grpc-retry-pushback-ms").is_none());
        }
        assert_eq!(server_breaker.state(), State::Open);
        let status = bare
            .check(check())
            .await
            .expect_err("rejected by the server's breaker");
        assert_eq!(
            faults.calls(),
            2,
            "the rejection did not reach the inner service"
        );
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().starts_with("circuit open"),
            "{}",
            status.message()
        );
        let pushback: u64 = status
            .metadata()
            .get("grpc-retry-pushback-ms")
            .expect("pushback")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=300).contains(&pushback), "{pushback}");

        // The dependency recovers; a seawall client retries once the server's breaker lets it.
        down.store(false, Ordering::SeqCst);
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let mut client = stack(channel, &retry, &lenient_breaker());
        let start = Instant::now();
        let response = client
            .check(check())
            .await
            .expect("retried after the pushback");
        let elapsed = start.elapsed();
        assert!(serving(&response));
        let events = events.take();
        assert_eq!(events.len(), 1, "{events:?}");
        let (delay_ms, rest) = events[0]
            .strip_prefix("retry attempt=1 delay=")
            .and_then(|s| s.split_once("ms "))
            .unwrap_or_else(|| panic!("{events:?}"));
        assert_eq!(rest, "retry_after=true");
        let delay = Duration::from_millis(delay_ms.parse().unwrap());
        assert!(delay > Duration::ZERO && delay <= wait_in_open, "{delay:?}");
        assert!(elapsed >= delay, "waited {elapsed:?}, pushback {delay:?}");
        assert_eq!(faults.calls(), 3, "the probe reached the inner service");
        assert_eq!(server_breaker.state(), State::Closed);
    })
    .await
}

// ===== 7. Around a bare tonic call =====

/// Retries a bare tonic call by A6, honouring `grpc-retry-pushback-ms`.
struct TonicRetry(GrpcRetryClassifier);

fn pushback(status: &tonic::Status) -> Option<Pushback> {
    let value = status.metadata().get("grpc-retry-pushback-ms")?;
    Some(Pushback::from_bytes(value.as_bytes()))
}

impl<T> Classify<tonic::Response<T>, tonic::Status> for TonicRetry {
    fn classify(&self, r: &Result<tonic::Response<T>, tonic::Status>) -> Outcome {
        match r {
            Ok(_) => Outcome::Success,
            Err(s) => self.0.outcome_for(s.code() as i32, pushback(s)),
        }
    }

    fn retry_after(&self, r: &Result<tonic::Response<T>, tonic::Status>) -> Option<Duration> {
        r.as_ref()
            .err()
            .and_then(pushback)
            .and_then(Pushback::delay)
    }
}

#[tokio::test]
async fn bare_tonic_call_is_retried_on_unavailable() {
    bounded(async {
        // UNAVAILABLE with a 20 ms pushback, UNAVAILABLE, then served.
        let faults = Faults::new(|i| match i {
            0 => Answer::Fail(Code::Unavailable, Some("20")),
            1 => Answer::Fail(Code::Unavailable, None),
            _ => Answer::Serve,
        });
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let client = HealthClient::new(connect(addr).await);
        let classifier = TonicRetry(GrpcRetryClassifier::new());

        let response = retry
            .call_with(&classifier, || {
                let mut client = client.clone();
                async move { client.check(check()).await }
            })
            .await
            .expect("retried to success");
        assert!(serving(&response));
        assert_eq!(faults.calls(), 3);
        let arrivals = faults.arrivals();
        assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(20));
        assert_eq!(
            events.take(),
            [
                "retry attempt=1 delay=20ms retry_after=true",
                "retry attempt=2 delay=2ms retry_after=false",
            ]
        );

        // Not retryable: the `Status` comes back inside `RetryError::Inner`.
        let faults = Faults::first(1, Code::InvalidArgument, None);
        let addr = serve(&faults).await;
        let client = HealthClient::new(connect(addr).await);
        let err = retry
            .call_with(&classifier, || {
                let mut client = client.clone();
                async move { client.check(check()).await }
            })
            .await
            .expect_err("not retried");
        match err {
            RetryError::Inner(status) => assert_eq!(status.code(), Code::InvalidArgument),
            other => panic!("{other:?}"),
        }
        assert_eq!(faults.calls(), 1);
        assert!(events.take().is_empty());
    })
    .await
}

// ===== 8. A real handler's error, and transport failures =====

/// tonic's server answers a handler's `Err(Status)` Trailers-Only (`grpc-status` in the
/// headers), so the classifiers see real handler errors, not only injected ones: here the
/// Health service's own NOT_FOUND (an unregistered name), counted as a failure by a breaker
/// told to, opens it; and the retry classifier leaves it alone.
#[tokio::test]
async fn a_real_handler_error_is_seen_in_the_headers() {
    bounded(async {
        let faults = Faults::new(|_| Answer::Serve);
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let breaker = CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(Duration::from_secs(60))
            .build()
            .expect("valid breaker");
        let svc =
            ServiceBuilder::new()
                .layer(ReplayBodyLayer::new(16 * 1024))
                .layer(
                    retry
                        .layer()
                        .classifier(GrpcRetryClassifier::new())
                        .clone_request(HttpRequests::default().retry_method(Method::POST)),
                )
                .layer(breaker.layer().classifier(
                    GrpcBreakerClassifier::new().failure_on(seawall::grpc::Code::NotFound),
                ))
                .map_request(to_channel as ToChannel)
                .service(connect(addr).await);
        let mut client = HealthClient::new(svc);
        let unknown = || HealthCheckRequest {
            service: "no.such.Service".into(),
        };
        for _ in 0..2 {
            let status = client.check(unknown()).await.expect_err("not registered");
            assert_eq!(status.code(), Code::NotFound);
            assert_eq!(status.message(), "service not registered");
        }
        assert_eq!(faults.calls(), 2, "NOT_FOUND is not retried");
        assert!(events.take().is_empty());
        assert_eq!(
            breaker.state(),
            State::Open,
            "the handler's errors were classified"
        );
        let status = client.check(check()).await.expect_err("open");
        assert_eq!(ErrorKind::of(&status), ErrorKind::CircuitOpen);
        assert_eq!(faults.calls(), 2);
    })
    .await
}

/// Nothing listens yet: the first attempt's connection is refused (tonic's transport error,
/// under the breaker's `BoxError`), which the retry classifier calls a transport failure and
/// retries; the server starts listening during the backoff and the retry gets through.
#[tokio::test]
async fn a_refused_connection_is_retried() {
    bounded(async {
        // A free port, released: nothing listens on it until the first retry is decided.
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            probe.local_addr().unwrap()
        };
        let faults = Faults::new(|_| Answer::Serve);
        let started = Arc::new(Mutex::new(None::<std::net::TcpListener>));
        let events = Events::default();
        let (e, s) = (events.clone(), started.clone());
        let retry = Retry::builder()
            .max_retries(3)
            .backoff(Backoff::constant(Duration::from_millis(50)).jitter(Jitter::None))
            .no_budget()
            .listener(move |event: &RetryEvent<'_>| {
                if let RetryEvent::Retry(r) = event {
                    let error = r.error.map(|e| format!("{e:?}")).unwrap_or_default();
                    e.0.lock().unwrap().push(error);
                    let mut started = s.lock().unwrap();
                    if started.is_none() {
                        // Listen now, synchronously: the retry connects after its backoff.
                        *started =
                            Some(std::net::TcpListener::bind(addr).expect("rebind the port"));
                    }
                }
            })
            .build()
            .expect("valid policy");
        let breaker = lenient_breaker();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let mut client = stack(channel, &retry, &breaker);

        let call = tokio::spawn(async move { client.check(check()).await });
        // Hand the listener to a server as soon as the retry listener made it.
        let listener = loop {
            if let Some(l) = started.lock().unwrap().take() {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        listener.set_nonblocking(true).unwrap();
        let incoming = TcpIncoming::from(tokio::net::TcpListener::from_std(listener).unwrap());
        serve_on(incoming, &faults).await;

        let response = call
            .await
            .unwrap()
            .expect("retried once the server listened");
        assert!(serving(&response));
        assert_eq!(faults.calls(), 1, "the refused attempt never reached it");
        let errors = events.take();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("ConnectionRefused"), "{errors:?}");
    })
    .await
}

// ===== 9. A request over the replay limit =====

/// With a replay buffer smaller than the request (the Health request is a 5-byte gRPC frame
/// header and the encoded name), the first attempt outgrows it: the UNAVAILABLE is not
/// retried, the caller gets it as it is, and a give-up event says why.
#[tokio::test]
async fn a_request_over_the_replay_limit_is_sent_once() {
    bounded(async {
        let faults = Faults::first(1, Code::Unavailable, None);
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let breaker = lenient_breaker();
        let svc = ServiceBuilder::new()
            .layer(ReplayBodyLayer::new(4))
            .layer(
                retry
                    .layer()
                    .classifier(GrpcRetryClassifier::new())
                    .clone_request(HttpRequests::default().retry_method(Method::POST)),
            )
            .layer(breaker.layer().classifier(GrpcBreakerClassifier::new()))
            .map_request(to_channel as ToChannel)
            .service(connect(addr).await);
        let mut client = HealthClient::new(svc);

        let status = client.check(check()).await.expect_err("not retried");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(faults.calls(), 1);
        assert_eq!(events.take(), ["give-up attempt=1 reason=RequestNotCopied"]);
        // The next call (a fresh body) is served.
        assert!(serving(&client.check(check()).await.expect("served")));
    })
    .await
}

// ===== 10. Deadlines: per attempt, not per call =====

/// A tonic call's deadline (`Request::set_timeout`, sent as `grpc-timeout`) is a header like
/// any other to `HttpRequests`: every attempt carries the original value, and tonic's
/// channel enforces it per attempt. So a call with a 250 ms deadline whose first attempt
/// fails after 200 ms is retried with a fresh 250 ms, and succeeds after 400 ms; gRPC's
/// retry design (A6) has the deadline cover the whole call, retries included (it would end
/// with DEADLINE_EXCEEDED at 250 ms). The policy's own `deadline` bounds the waits between
/// attempts, but the header still is not shortened.
#[tokio::test]
async fn a_call_deadline_is_reset_for_every_attempt() {
    bounded(async {
        let faults = Faults::new(|i| match i {
            0 => Answer::Slow(Duration::from_millis(200), true),
            _ => Answer::Slow(Duration::from_millis(200), false),
        });
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let mut client = stack(connect(addr).await, &retry, &lenient_breaker());

        let mut request = tonic::Request::new(check());
        request.set_timeout(Duration::from_millis(250));
        let start = Instant::now();
        let response = client
            .check(request)
            .await
            .expect("each attempt within 250 ms");
        let elapsed = start.elapsed();
        assert!(serving(&response));
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        assert_eq!(
            events.take(),
            ["retry attempt=1 delay=1ms retry_after=false"]
        );
        let timeouts = faults.timeouts.lock().unwrap().clone();
        assert_eq!(timeouts.len(), 2);
        assert_eq!(
            timeouts[0], timeouts[1],
            "the retry carries the original deadline"
        );
        assert!(timeouts[0].is_some());
    })
    .await
}

// ===== 11. A per-attempt timeout =====

/// seawall's per-attempt timeout is tower's `Elapsed` under the stack's `BoxError`; tonic
/// maps it to UNKNOWN (its own `TimeoutExpired` would be CANCELLED; gRPC has
/// DEADLINE_EXCEEDED for this). The `as_status` mapping above makes it DEADLINE_EXCEEDED.
#[tokio::test]
async fn a_per_attempt_timeout_is_unknown_to_tonic() {
    bounded(async {
        let faults = Faults::new(|_| Answer::Slow(Duration::from_millis(500), false));
        let addr = serve(&faults).await;
        let retry = Retry::builder()
            .max_retries(1)
            .backoff(Backoff::constant(Duration::from_millis(1)).jitter(Jitter::None))
            .attempt_timeout(Duration::from_millis(50))
            .no_budget()
            .build()
            .expect("valid policy");
        let breaker = lenient_breaker();
        let channel = connect(addr).await;
        let mut client = stack(channel.clone(), &retry, &breaker);

        let status = client.check(check()).await.expect_err("timed out");
        assert_eq!(faults.calls(), 2, "the timed-out attempt was retried");
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(ErrorKind::of(&status), ErrorKind::Timeout);
        assert!(find::<tower::timeout::error::Elapsed>(&status).is_some());

        let mut mapped = HealthClient::new(
            ServiceBuilder::new()
                .map_err(as_status as fn(BoxError) -> tonic::Status)
                .service(stack_service(channel, &retry, &breaker)),
        );
        let status = mapped.check(check()).await.expect_err("timed out");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(ErrorKind::of(&status), ErrorKind::Timeout);
    })
    .await
}

// ===== statuses at the end of the stream =====

/// A reply that fails in its trailers (after the server committed with a 200) counts for
/// `GrpcBreakerLayer`, which reads the trailers, and not for a plain breaker with the gRPC
/// classifier, which classifies the head. Retry leaves it alone (A6: committed).
#[tokio::test]
async fn a_status_in_the_trailers_opens_the_grpc_breaker_layer() {
    use seawall::grpc::GrpcBreakerLayer;
    bounded(async {
        let faults = Faults::new(|_| Answer::FailInTrailers(Code::Internal));
        let addr = serve(&faults).await;
        let (retry, events) = retry_policy(Duration::from_secs(1));
        let breaker = CircuitBreaker::builder()
            .failure_threshold(3)
            .wait_in_open(Duration::from_secs(60))
            .build()
            .expect("valid breaker");
        let svc = ServiceBuilder::new()
            .layer(ReplayBodyLayer::new(16 * 1024))
            .layer(
                retry
                    .layer()
                    .classifier(GrpcRetryClassifier::new())
                    .clone_request(HttpRequests::default().retry_method(Method::POST)),
            )
            .layer(GrpcBreakerLayer::new(breaker.clone()))
            .map_request(to_channel as ToChannel)
            .service(connect(addr).await);
        let mut client = HealthClient::new(svc);
        for _ in 0..3 {
            let status = client
                .check(check())
                .await
                .expect_err("fails in the trailers");
            assert_eq!(status.code(), Code::Internal);
        }
        assert_eq!(faults.calls(), 3, "committed replies are not retried");
        let events = events.take();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(breaker.state(), State::Open);
        let rejected = client.check(check()).await.expect_err("rejected");
        assert_eq!(faults.calls(), 3, "an open breaker sends nothing");
        let mut source = rejected.source();
        let mut open = false;
        while let Some(e) = source {
            open |= e.is::<CircuitOpen>();
            source = e.source();
        }
        assert!(open, "{rejected:?}");

        // A plain breaker with the gRPC classifier sees only the committed head: a success.
        let plain = CircuitBreaker::builder()
            .failure_threshold(3)
            .build()
            .expect("valid breaker");
        let mut client = stack(connect(addr).await, &Retry::default(), &plain);
        for _ in 0..3 {
            let _ = client
                .check(check())
                .await
                .expect_err("fails in the trailers");
        }
        assert_eq!(plain.state(), State::Closed);
    })
    .await
}
