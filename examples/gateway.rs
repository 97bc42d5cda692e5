//! An API gateway with a per-client rate limit: 100 requests per second per `x-client-id`,
//! bursts of 200, the excess answered 429 with `Retry-After`, in front of a local upstream.
//! A client then sends a burst of 300 requests as `alice` and 50 as `bob`, and prints what
//! each got. Everything runs on 127.0.0.1 and exits within seconds.
//!
//! Run: `cargo run --features rate-limit,http --example gateway`

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use seawall::http::RejectionResponseLayer;
use seawall::rate_limit::KeyedRateLimiter;
use seawall::BoxError;
use tower::ServiceBuilder;

type HttpClient = Client<HttpConnector, Body>;

/// The limit's key: the client's id header (requests without one are not limited here).
fn client_id(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Forwards the request to the upstream.
async fn forward(State((client, upstream)): State<(HttpClient, String)>) -> Response<Body> {
    let req = Request::get(format!("http://{upstream}/")).body(Body::empty());
    match req {
        Ok(req) => match client.request(req).await {
            Ok(res) => res.map(Body::new),
            Err(_) => status(StatusCode::BAD_GATEWAY),
        },
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = code;
    res
}

async fn serve(router: Router) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let upstream = serve(Router::new().route("/", get(|| async { "hello from upstream" }))).await?;

    let limiter = KeyedRateLimiter::<String>::builder()
        .rate(100)
        .per(Duration::from_secs(1))
        .burst(200)
        .max_keys(10_000)
        .build()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let gateway = serve(
        Router::new()
            .route("/", get(forward))
            .with_state((client.clone(), upstream))
            .layer(
                ServiceBuilder::new()
                    .layer(RejectionResponseLayer::new())
                    .layer(limiter.layer(client_id)),
            ),
    )
    .await?;
    println!("gateway on {gateway}: 100 req/s per client, bursts of 200");

    for (id, n) in [("alice", 300), ("bob", 50)] {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (client, gateway) = (client.clone(), gateway.clone());
            tasks.push(tokio::spawn(async move {
                let req = Request::get(format!("http://{gateway}/"))
                    .header("x-client-id", id)
                    .body(Body::empty())?;
                let res = client.request(req).await?;
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let status = res.status();
                res.into_body().collect().await?;
                Ok::<_, BoxError>((status, retry_after))
            }));
        }
        let (mut admitted, mut limited, mut retry_after) = (0, 0, None);
        for t in tasks {
            match t.await?? {
                (StatusCode::OK, _) => admitted += 1,
                (StatusCode::TOO_MANY_REQUESTS, ra) => {
                    limited += 1;
                    retry_after = retry_after.or(ra);
                }
                (other, _) => println!("{id}: unexpected {other}"),
            }
        }
        println!(
            "{id}: sent {n}, admitted {admitted}, limited {limited} (429, Retry-After: {})",
            retry_after.as_deref().unwrap_or("-")
        );
    }
    // alice gets her burst of 200, plus a slot for every 10 ms the burst took to send.
    println!("keys remembered: {}", limiter.len());
    Ok(())
}
