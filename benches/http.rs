//! The success path of the http classifiers and request copies (feature `http`): what a 200
//! costs through each layer with the http pieces, against the same bare service.
//!
//! Every call builds a `GET` request (empty body) and gets a `200` back; the bare baseline
//! pays the same request and response building. Awaited in one task on a current-thread
//! tokio runtime. Run: `cargo bench --features http --bench http`; instruction counts:
//! `CONFIGURATIONS="http_bare http_breaker http_retry http_stack" bash benches/instructions.sh`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::{
    HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, ReplayBody, ReplayBodyLayer,
};
use seawall::retry::Retry;
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

type Body = ReplayBody<Empty<Bytes>>;

fn upstream() -> impl Service<Request<Body>, Response = Response<()>, Error = BoxError> + Clone {
    service_fn(|req: Request<Body>| {
        black_box(&req);
        std::future::ready(Ok::<_, BoxError>(
            Response::builder()
                .status(StatusCode::OK)
                .body(())
                .unwrap_or_default(),
        ))
    })
}

fn get() -> Request<Empty<Bytes>> {
    Request::get("http://127.0.0.1/items/7")
        .body(Empty::new())
        .unwrap_or_default()
}

async fn calls<S>(svc: &mut S, n: u64)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<()>, Error = BoxError>,
{
    for _ in 0..n {
        let r = svc.ready().await.unwrap().call(get()).await.unwrap();
        black_box(r);
    }
}

fn http(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("http/success_path");
    let breaker = CircuitBreaker::default();
    let retry = Retry::default();
    macro_rules! bench {
        ($name:expr, $svc:expr) => {{
            let mut svc = $svc;
            group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = std::time::Instant::now();
                        calls(&mut svc, iters).await;
                        start.elapsed()
                    })
                })
            });
        }};
    }
    bench!(
        "bare",
        ServiceBuilder::new()
            .layer(ReplayBodyLayer::default())
            .service(upstream())
    );
    bench!(
        "breaker",
        ServiceBuilder::new()
            .layer(ReplayBodyLayer::default())
            .layer(breaker.layer().classifier(HttpBreakerClassifier::default()))
            .service(upstream())
    );
    bench!(
        "retry",
        ServiceBuilder::new()
            .layer(ReplayBodyLayer::default())
            .layer(
                retry
                    .layer()
                    .classifier(HttpRetryClassifier::default())
                    .clone_request(HttpRequests::default())
            )
            .service(upstream())
    );
    bench!(
        "retry_and_breaker",
        ServiceBuilder::new()
            .layer(ReplayBodyLayer::default())
            .layer(
                retry
                    .layer()
                    .classifier(HttpRetryClassifier::default())
                    .clone_request(HttpRequests::default())
            )
            .layer(breaker.layer().classifier(HttpBreakerClassifier::default()))
            .service(upstream())
    );
    group.finish();
}

criterion_group!(benches, http);
criterion_main!(benches);
