//! An API gateway with a per-client rate limit: 100 requests per second per `x-client-id`,
//! bursts of 200, the excess answered 429 with `Retry-After`, in front of a local upstream
//! that goes down for a while. The gateway calls the upstream through a circuit breaker and
//! a fallback: while the upstream fails, its 503s pass through until the breaker opens, then
//! the fallback answers a degraded 200 at once, without touching the upstream; once the
//! upstream is back, a probe closes the breaker.
//!
//! A client first sends a burst of 300 requests as `alice` and 50 as `bob`, then calls
//! through the outage and the recovery, and prints what each phase got. Everything runs on
//! 127.0.0.1 and exits within seconds.
//!
//! Run: `cargo run --features rate-limit,http --example gateway`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::fallback::FallbackLayer;
use seawall::http::{rejection_response, HttpBreakerClassifier, RejectionResponseLayer};
use seawall::rate_limit::KeyedRateLimiter;
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

type HttpClient = Client<HttpConnector, Body>;

/// The limit's key: the client's id header (requests without one are not limited here).
fn client_id(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Forwards the request to the upstream through the breaker and the fallback (`S`).
async fn forward<S>(State((mut upstream, addr)): State<(S, String)>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    let Ok(req) = Request::get(format!("http://{addr}/")).body(Body::empty()) else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let answer = match upstream.ready().await {
        Ok(ready) => ready.call(req).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|e| rejection_response(&*e))
}

/// The gateway's router: the per-client limit outside, the forwarding handler inside.
fn gateway<S, F>(upstream: S, addr: String, limiter: &KeyedRateLimiter<String>, key: F) -> Router
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    F: Fn(&Request<Body>) -> Option<String> + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(forward::<S>))
        .with_state((upstream, addr))
        .layer(
            ServiceBuilder::new()
                .layer(RejectionResponseLayer::new())
                .layer(limiter.layer(key)),
        )
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
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let upstream_addr = serve(Router::new().route(
        "/",
        get(move || {
            let down = d.load(Ordering::Relaxed);
            async move {
                if down {
                    status(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Response::new(Body::from("hello from upstream"))
                }
            }
        }),
    ))
    .await?;

    let limiter = KeyedRateLimiter::<String>::builder()
        .rate(100)
        .per(Duration::from_secs(1))
        .burst(200)
        .max_keys(10_000)
        .build()?;
    let breaker = CircuitBreaker::builder()
        .failure_threshold(5)
        .wait_in_open(Duration::from_millis(300))
        .on_state_change(|_, change| println!("    [breaker: {} -> {}]", change.from, change.to))
        .build()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    // The upstream as the gateway calls it: a fallback for an open circuit, the breaker
    // (5xx and transport failures count), the hyper client.
    let upstream = ServiceBuilder::new()
        .layer(
            FallbackLayer::error_only(service_fn(|_: BoxError| async {
                Ok::<_, BoxError>(Response::new(Body::from("degraded: upstream unavailable")))
            }))
            .on(ErrorKind::CircuitOpen),
        )
        .layer(breaker.layer().classifier(HttpBreakerClassifier::default()))
        .map_response(|res: Response<Incoming>| res.map(Body::new))
        .map_err(BoxError::from)
        .service(client.clone());
    let gateway = serve(gateway(upstream, upstream_addr, &limiter, client_id)).await?;
    println!("gateway on {gateway}: 100 req/s per client, bursts of 200");

    for (id, n) in [("alice", 300), ("bob", 50)] {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (client, gateway) = (client.clone(), gateway.clone());
            tasks.push(tokio::spawn(async move {
                get_once(&client, &gateway, id).await
            }));
        }
        let (mut admitted, mut limited, mut retry_after) = (0, 0, None);
        for t in tasks {
            match t.await?? {
                (StatusCode::OK, _, _) => admitted += 1,
                (StatusCode::TOO_MANY_REQUESTS, ra, _) => {
                    limited += 1;
                    retry_after = retry_after.or(ra);
                }
                (other, _, _) => println!("{id}: unexpected {other}"),
            }
        }
        println!(
            "{id}: sent {n}, admitted {admitted}, limited {limited} (429, Retry-After: {})",
            retry_after.as_deref().unwrap_or("-")
        );
    }

    // The upstream goes down, then comes back.
    for (phase, is_down, calls) in [("upstream down", true, 12), ("upstream back", false, 6)] {
        down.store(is_down, Ordering::Relaxed);
        if !is_down {
            tokio::time::sleep(Duration::from_millis(350)).await; // the breaker's wait
        }
        let (mut ok, mut failed, mut degraded) = (0, 0, 0);
        for _ in 0..calls {
            match get_once(&client, &gateway, "carol").await? {
                (StatusCode::OK, _, body) if body.starts_with("degraded") => degraded += 1,
                (StatusCode::OK, _, _) => ok += 1,
                _ => failed += 1,
            }
        }
        println!("{phase}: {calls} calls, {ok} ok, {failed} failed (503), {degraded} answered by the fallback");
    }
    // alice gets her burst of 200, plus a slot for every 10 ms the burst took to send.
    println!("keys remembered: {}", limiter.len());
    Ok(())
}

/// One GET through the gateway as client `id`: the status, its `Retry-After`, the body.
async fn get_once(
    client: &HttpClient,
    gateway: &str,
    id: &str,
) -> Result<(StatusCode, Option<String>, String), BoxError> {
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
    let body = res.into_body().collect().await?.to_bytes();
    Ok((
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}
