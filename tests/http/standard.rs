//! The standard stack end to end: built with `ServiceBuilder`, moved into a spawned task, and
//! used from inside an axum handler (a proxy) that forwards a streamed incoming body.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::{rejection_response, ReplayBody, StandardClient, StandardClientLayer};
use seawall::BoxError;
use tower::{ServiceBuilder, ServiceExt};

use crate::support::*;

#[tokio::test]
async fn the_standard_stack_is_spawnable_and_retries_a_full_body_put_from_a_task() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
        let svc = ServiceBuilder::new()
            .layer(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()))
            .service(client);
        let url = server.url("/spawned");
        let task = tokio::spawn(async move {
            let req = http::Request::put(url)
                .body(Full::new(Bytes::from_static(b"from a task")))
                .unwrap();
            let response = svc.oneshot(req).await?;
            let status = response.status();
            let body = body_of(response).await?;
            Ok::<_, BoxError>((status, body))
        });
        let (status, body) = task.await.expect("no panic").expect("a response");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "status 200");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen
            .iter()
            .all(|s| s.body.as_deref() == Some(&b"from a task"[..])));
    })
    .await;
}

type ProxyStack = StandardClient<Client<HttpConnector, ReplayBody<Body>>>;

#[derive(Clone)]
struct Proxy {
    stack: ProxyStack,
    upstream: String,
}

/// Forwards the request (method, path, `x-request-id`, streamed body) upstream through the
/// stack; answers the upstream's status and body, or the stack's error as a rejection.
async fn forward(State(proxy): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut out = http::Request::builder().method(parts.method).uri(format!(
        "{}{}",
        proxy.upstream,
        parts.uri.path()
    ));
    if let Some(id) = parts.headers.get("x-request-id") {
        out = out.header("x-request-id", id);
    }
    let out = out.body(body).unwrap();
    match proxy.stack.oneshot(out).await {
        Ok(response) => {
            let status = response.status();
            match body_of(response).await {
                Ok(bytes) => (status, bytes).into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(e) => rejection_response::<Body>(&*e),
    }
}

async fn proxy_to(upstream: &Server, breaker: CircuitBreaker) -> std::net::SocketAddr {
    let stack: ProxyStack = ServiceBuilder::new()
        .layer(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .breaker(breaker),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Body>>());
    let router = Router::new().fallback(forward).with_state(Proxy {
        stack,
        upstream: format!("http://{}", upstream.addr),
    });
    serve_router(router).await
}

/// A plain hyper-util client, no seawall: the proxy's retries are the only ones.
fn plain_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http::<TestBody>()
}

#[tokio::test]
async fn a_proxy_handler_retries_upstream_replaying_the_incoming_streamed_body() {
    bounded(async {
        let upstream = recording_server(fail_first(2, 503, 200)).await;
        let proxy = proxy_to(&upstream, CircuitBreaker::default()).await;
        let parts = chunks(5, 700);
        let response = plain_client()
            .request(request(
                Method::PUT,
                &format!("http://{proxy}/item"),
                "via-proxy",
                streamed(parts.clone(), None),
            ))
            .await
            .expect("the proxy answered");
        assert_eq!(response.status(), 200);
        assert_eq!(body_of(response).await.unwrap(), "status 200");
        let seen = upstream.seen();
        assert_eq!(seen.len(), 3);
        let expected = concat(&parts);
        for s in &seen {
            assert_eq!(s.method, Method::PUT);
            assert_eq!(s.path, "/item");
            assert_eq!(s.request_id.as_deref(), Some("via-proxy"));
            assert_eq!(s.body.as_ref(), Some(&expected));
        }
    })
    .await;
}

#[tokio::test]
async fn a_proxy_answers_503_with_retry_after_once_the_upstream_breaker_is_open() {
    bounded(async {
        let upstream = recording_server(fail_first(usize::MAX, 503, 200)).await;
        let breaker = CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let proxy = proxy_to(&upstream, breaker).await;
        let get = || {
            plain_client().request(request(
                Method::GET,
                &format!("http://{proxy}/down"),
                "g",
                empty(),
            ))
        };
        // Two 503s trip the breaker; the third attempt is refused: answered 503 + Retry-After.
        let response = get().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "10");
        assert_eq!(upstream.count(), 2);
        let response = get().await.unwrap();
        assert_eq!(response.status(), 503);
        let secs: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&secs), "{secs}");
        assert_eq!(upstream.count(), 2);
    })
    .await;
}
