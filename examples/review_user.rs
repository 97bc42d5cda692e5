//! Review: the documented stacks written as a user would, in a fresh program.
//! `cargo build --features http --example review_user`
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::{
    HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, RejectionResponseLayer, ReplayBody,
    ReplayBodyLayer,
};
use seawall::retry::Retry;
use seawall::BoxError;
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // 1. `seawall::http`'s docs stack, over a real hyper-util client, spawned.
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .layer(ReplayBodyLayer::new(64 * 1024))
        .layer(
            Retry::default()
                .layer()
                .classifier(HttpRetryClassifier::default())
                .clone_request(HttpRequests::default()),
        )
        .layer(
            CircuitBreaker::default()
                .layer()
                .classifier(HttpBreakerClassifier::default()),
        )
        .timeout(Duration::from_secs(10))
        .service(client);
    let req = http::Request::get("http://127.0.0.1:9/").body(Full::<Bytes>::default())?;
    let _ = tokio::spawn(stack.clone().oneshot(req)).await?;

    // 2. An axum route protected by a breaker, with `route_layer`, as a user would write it.
    let breaker = CircuitBreaker::builder().failure_threshold(3).build()?;
    let app: Router = Router::new()
        .route("/items", get(|| async { "ok" }))
        .route_layer(
            ServiceBuilder::new()
                .layer(RejectionResponseLayer::new())
                .layer(breaker.layer().classifier(HttpBreakerClassifier::default()))
                .timeout(Duration::from_millis(250)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    server.abort();
    Ok(())
}
