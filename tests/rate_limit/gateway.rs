//! The gateway from the literature: 100 requests per second per client, bursts of 200; the
//! excess answered 429 with `Retry-After` through the `http` feature. Driven through the axum
//! router with `oneshot` (no sockets), on paused time, so the counts are exact.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use seawall::http::RejectionResponseLayer;
use seawall::rate_limit::KeyedRateLimiter;
use tower::{ServiceBuilder, ServiceExt};

fn client_id(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn gateway(limiter: &KeyedRateLimiter<String>) -> Router {
    Router::new()
        .route("/", get(|| async { "upstream says hi" }))
        .layer(
            ServiceBuilder::new()
                .layer(RejectionResponseLayer::new())
                .layer(limiter.layer(client_id)),
        )
}

fn request(client: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().uri("/");
    if let Some(c) = client {
        req = req.header("x-client-id", c);
    }
    req.body(Body::empty()).unwrap()
}

fn limiter() -> KeyedRateLimiter<String> {
    KeyedRateLimiter::builder()
        .rate(100)
        .per(Duration::from_secs(1))
        .burst(200)
        .max_keys(10_000)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn of_250_instant_requests_200_pass_and_50_get_429_with_retry_after() {
    let limiter = limiter();
    let app = gateway(&limiter);
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..250 {
        let res = app.clone().oneshot(request(Some("alice"))).await.unwrap();
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                // The next slot frees in 10 ms: whole seconds, rounded up.
                assert_eq!(res.headers()["retry-after"], "1");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (200, 50));
    // Another client is not affected.
    let res = app.clone().oneshot(request(Some("bob"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A request without a client id is not limited (a deployment might refuse it instead).
    let res = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // One second later, 100 more for alice.
    tokio::time::advance(Duration::from_secs(1)).await;
    let mut ok = 0;
    for _ in 0..150 {
        let res = app.clone().oneshot(request(Some("alice"))).await.unwrap();
        ok += usize::from(res.status() == StatusCode::OK);
    }
    assert_eq!(ok, 100);
}
