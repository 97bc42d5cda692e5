//! The server side: seawall's rejections answered as HTTP responses in an axum router,
//! seen by a raw hyper client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use http::Method;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::{rejection_response, RejectionResponseLayer, StandardClientLayer};
use seawall::retry::{Backoff, Jitter, RetryAfterTooLong};
use seawall::BoxError;
use tokio::time::Instant;
use tower::timeout::TimeoutLayer;
use tower::{service_fn, ServiceBuilder, ServiceExt};

use crate::support::*;

/// A GET on a fresh connection with hyper's own client connection, nothing else.
async fn raw_get(addr: SocketAddr, path: &str) -> http::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    sender.send_request(req).await.expect("a response")
}

fn retry_after_secs(response: &http::Response<Incoming>) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds")
}

async fn database_down(_: Request) -> Result<Response, BoxError> {
    Err("database down".into())
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(2)
        .wait_in_open(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn rejecting_server() -> SocketAddr {
    let failing = ServiceBuilder::new()
        .layer(RejectionResponseLayer::new())
        .layer(breaker().layer())
        .service(service_fn(database_down));
    let slow = ServiceBuilder::new()
        .layer(RejectionResponseLayer::new())
        .layer(TimeoutLayer::new(ms(50)))
        .service(service_fn(|_: Request| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, Infallible>(Response::new(Body::from("late")))
        }));
    let handled = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            rejection_response::<Body>(&*e)
        }))
        .layer(breaker().layer())
        .service(service_fn(database_down));
    let router = Router::new()
        .route_service("/failing", failing)
        .route_service("/slow", slow)
        .route_service("/handled", handled);
    serve_router(router).await
}

#[tokio::test]
async fn an_open_breaker_behind_rejection_response_layer_answers_503_with_retry_after() {
    bounded(async {
        let addr = rejecting_server().await;
        for _ in 0..2 {
            let response = raw_get(addr, "/failing").await;
            assert_eq!(response.status(), 500, "the handler's own error");
        }
        for _ in 0..3 {
            let response = raw_get(addr, "/failing").await;
            assert_eq!(response.status(), 503);
            let secs = retry_after_secs(&response);
            assert!((1..=5).contains(&secs), "{secs}");
            assert_eq!(body_of(response).await.unwrap(), "");
        }
    })
    .await;
}

#[tokio::test]
async fn a_timeout_behind_rejection_response_layer_answers_504() {
    bounded(async {
        let addr = rejecting_server().await;
        let started = Instant::now();
        let response = raw_get(addr, "/slow").await;
        assert_eq!(response.status(), 504);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(response.headers().get("retry-after").is_none());
    })
    .await;
}

#[tokio::test]
async fn handle_error_layer_with_rejection_response_answers_the_same() {
    bounded(async {
        let addr = rejecting_server().await;
        for _ in 0..2 {
            assert_eq!(raw_get(addr, "/handled").await.status(), 500);
        }
        let response = raw_get(addr, "/handled").await;
        assert_eq!(response.status(), 503);
        assert!((1..=5).contains(&retry_after_secs(&response)));
    })
    .await;
}

#[tokio::test]
async fn a_seawall_client_gives_up_on_a_seawall_servers_retry_after_over_its_max_delay() {
    bounded(async {
        let addr = rejecting_server().await;
        for _ in 0..2 {
            assert_eq!(raw_get(addr, "/failing").await.status(), 500);
        }
        // The server's breaker is open: its 503 asks for up to 5 s, the client allows 1 s.
        let policy = fast_retry(3)
            .backoff(
                Backoff::constant(ms(1))
                    .max_delay(Duration::from_secs(1))
                    .jitter(Jitter::None),
            )
            .build()
            .unwrap();
        let svc = stack(StandardClientLayer::new().retry(policy));
        let err = svc
            .oneshot(request(
                Method::GET,
                &format!("http://{addr}/failing"),
                "c",
                empty(),
            ))
            .await
            .expect_err("the wait asked for is too long");
        let too_long = err
            .downcast_ref::<RetryAfterTooLong>()
            .unwrap_or_else(|| panic!("{err:?}"));
        assert!(too_long.retry_after() >= Duration::from_secs(2));
        assert!(too_long.retry_after() <= Duration::from_secs(5));
    })
    .await;
}

/// A service that is gone for good: its `poll_ready` fails.
#[derive(Clone)]
struct Gone;

impl tower::Service<Request> for Gone {
    type Response = Response;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Err("backend gone".into()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        std::future::ready(Ok(Response::new(Body::from("called without readiness"))))
    }
}

#[tokio::test]
async fn a_failed_buffer_behind_rejection_response_layer_is_answered_500() {
    bounded(async {
        let gone = ServiceBuilder::new()
            .layer(RejectionResponseLayer::new())
            .layer(tower::buffer::BufferLayer::new(4))
            .service(Gone);
        let addr = serve_router(Router::new().route_service("/gone", gone)).await;
        // The Buffer's worker fails on the inner readiness error; the Buffer's `call` then
        // answers with that error, which the layer turns into a 500.
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = http::Request::get("/gone")
            .header("host", addr.to_string())
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender
            .send_request(req)
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status(), 500);
    })
    .await;
}

#[tokio::test]
async fn a_poll_ready_error_behind_rejection_response_layer_is_answered_500() {
    bounded(async {
        let svc = ServiceBuilder::new()
            .layer(RejectionResponseLayer::new())
            .service(Gone);
        let response = svc
            .oneshot(http::Request::new(Body::empty()))
            .await
            .expect("infallible");
        // Today: 200 "called without readiness" (the unready service was called).
        assert_eq!(response.status(), 500);
    })
    .await;
}
