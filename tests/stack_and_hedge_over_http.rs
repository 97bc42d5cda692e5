//! A user's programs: `Stack::builder()` with an HTTP stack, and a hedged HTTP client (a
//! fast 503 never beats a slower 200).
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::hedge::Hedge;
use seawall::http::{
    HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, ReplayBody, ReplayBodyLayer,
};
use seawall::retry::Retry;
use seawall::stack::Stack;
use seawall::BoxError;
use std::time::Duration;
use tower::{service_fn, ServiceBuilder, ServiceExt};

type Body = ReplayBody<Full<Bytes>>;

#[tokio::test(start_paused = true)]
async fn a_checked_http_stack() {
    let upstream = service_fn(|_: Request<Body>| async move {
        Ok::<_, BoxError>(Response::builder().status(StatusCode::OK).body(()).unwrap())
    });
    let stack = Stack::builder()
        .timeout(Duration::from_secs(30))
        .retry_layer(
            Retry::default()
                .layer()
                .classifier(HttpRetryClassifier::default())
                .clone_request(HttpRequests::default()),
        )
        .breaker_layer(
            CircuitBreaker::default()
                .layer()
                .classifier(HttpBreakerClassifier::default()),
        )
        .attempt_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new(64 * 1024))
        .layer(stack)
        .service(upstream);
    let req = Request::get("http://127.0.0.1/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_hedged_http_client() {
    let upstream = service_fn(|_: Request<Full<Bytes>>| async move {
        Ok::<_, BoxError>(Response::builder().status(StatusCode::OK).body(()).unwrap())
    });
    let hedge = Hedge::builder()
        .delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .layer(
            hedge
                .layer()
                .clone_request(HttpRequests::default())
                .classifier(HttpBreakerClassifier::default()),
        )
        .layer(
            CircuitBreaker::default()
                .layer()
                .classifier(HttpBreakerClassifier::default()),
        )
        .timeout(Duration::from_secs(10))
        .service(upstream);
    let req = Request::get("http://127.0.0.1/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
}

/// Finding 8: a hedged HTTP client with the documented setup (`clone_request(HttpRequests)`)
/// and the default classifier lets the first *response* win, a 503 included: a fast 503 from
/// the hedge beats the primary's slow 200. seawall has no HTTP hedge classifier, and the
/// hedge docs do not say one is needed for HTTP.
#[tokio::test(start_paused = true)]
async fn a_fast_503_does_not_win_the_hedge() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let n = Arc::new(AtomicU32::new(0));
    let upstream = service_fn(move |_: Request<Full<Bytes>>| {
        let first = n.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let (ms, status) = if first {
                (100, StatusCode::OK)
            } else {
                (1, StatusCode::SERVICE_UNAVAILABLE)
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap())
        }
    });
    let hedge = Hedge::builder()
        .delay(Duration::from_millis(10))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        // Over HTTP, give the hedge the retry classifier: a 503 is not an acceptable answer.
        .layer(
            hedge
                .layer()
                .classifier(HttpRetryClassifier::default())
                .clone_request(HttpRequests::default()),
        )
        .service(upstream);
    let req = Request::get("http://127.0.0.1/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
}
