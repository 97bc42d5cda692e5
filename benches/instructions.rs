//! Instruction counts per call, the figure the README publishes next to nanoseconds: unlike
//! time, it does not move with the other load on a shared 2-core machine.
//!
//! Run: `bash benches/instructions.sh` (builds this bench in release, runs it under
//! `valgrind --tool=callgrind` with 1,000 and 101,000 calls per configuration, and prints the
//! difference per call, so set-up and runtime start-up cancel out).
//!
//! By hand: `target/release/deps/instructions-* <configuration> <calls>`. Under `cargo bench`
//! (no arguments) it runs each configuration once, as a smoke test.

use std::hint::black_box;
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, Event};
use seawall::retry::Retry;
use seawall::{BoxError, Outcome};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const CONFIGURATIONS: &[&str] = &[
    "bare",
    "breaker",
    "breaker_core",
    "breaker_listener",
    "breaker_rate_window",
    "retry",
    "stack",
    #[cfg(feature = "http")]
    "http_bare",
    #[cfg(feature = "http")]
    "http_breaker",
    #[cfg(feature = "http")]
    "http_retry",
    #[cfg(feature = "http")]
    "http_stack",
];

/// With the `http` feature: a `GET` (empty body) answered `200` through the http pieces.
#[cfg(feature = "http")]
mod http_calls {
    use super::*;
    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::Empty;
    use seawall::http::{
        HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, ReplayBody, ReplayBodyLayer,
    };

    type Body = ReplayBody<Empty<Bytes>>;

    fn upstream() -> impl Service<
        Request<Body>,
        Response = Response<()>,
        Error = BoxError,
        Future = impl std::future::Future<Output = Result<Response<()>, BoxError>> + Send,
    > + Clone {
        service_fn(|req: Request<Body>| {
            black_box(&req);
            std::future::ready(Ok::<_, BoxError>(
                Response::builder().status(StatusCode::OK).body(()).unwrap(),
            ))
        })
    }

    async fn drive<S>(mut svc: S, calls: u64)
    where
        S: Service<Request<Empty<Bytes>>, Response = Response<()>, Error = BoxError>,
    {
        for _ in 0..calls {
            let req = Request::get("http://127.0.0.1/items/7")
                .body(Empty::new())
                .unwrap();
            let r = svc
                .ready()
                .await
                .unwrap()
                .call(black_box(req))
                .await
                .unwrap();
            black_box(r);
        }
    }

    pub(super) async fn run(configuration: &str, calls: u64) {
        let breaker = CircuitBreaker::default();
        let retry = Retry::default();
        let replay = ReplayBodyLayer::default();
        let breaker = breaker.layer().classifier(HttpBreakerClassifier::default());
        let retry = retry
            .layer()
            .classifier(HttpRetryClassifier::default())
            .clone_request(HttpRequests::default());
        let b = ServiceBuilder::new().layer(replay);
        match configuration {
            "http_bare" => drive(b.service(upstream()), calls).await,
            "http_breaker" => drive(b.layer(breaker).service(upstream()), calls).await,
            "http_retry" => drive(b.layer(retry).service(upstream()), calls).await,
            "http_stack" => drive(b.layer(retry).layer(breaker).service(upstream()), calls).await,
            other => panic!("unknown configuration {other:?}"),
        }
    }
}

fn bare() -> impl Service<
    u64,
    Response = u64,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<u64, BoxError>> + Send,
> + Clone {
    service_fn(|x: u64| async move { Ok::<_, BoxError>(black_box(x)) })
}

/// `calls` calls one after another through `svc`, as tower stacks call it.
async fn drive<S>(mut svc: S, calls: u64)
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    for i in 0..calls {
        let r = svc.ready().await.unwrap().call(black_box(i)).await.unwrap();
        black_box(r);
    }
}

async fn run(configuration: &str, calls: u64) {
    let breaker = CircuitBreaker::default();
    let retry = Retry::default();
    match configuration {
        "bare" => drive(bare(), calls).await,
        "breaker" => {
            drive(
                ServiceBuilder::new().layer(breaker.layer()).service(bare()),
                calls,
            )
            .await
        }
        // The breaker alone, no tower: `try_acquire` + `record` of a success.
        "breaker_core" => {
            for _ in 0..calls {
                breaker
                    .try_acquire()
                    .unwrap()
                    .record(black_box(Outcome::Success));
            }
        }
        // The same with a listener that looks at every event.
        "breaker_listener" => {
            let breaker = CircuitBreaker::builder()
                .listener(|_: &CircuitBreaker, e: &Event| {
                    black_box(e);
                })
                .build()
                .unwrap();
            for _ in 0..calls {
                breaker
                    .try_acquire()
                    .unwrap()
                    .record(black_box(Outcome::Success));
            }
        }
        "breaker_rate_window" => {
            let breaker = CircuitBreaker::builder()
                .failure_rate(50.0)
                .count_window(100)
                .build()
                .unwrap();
            drive(
                ServiceBuilder::new().layer(breaker.layer()).service(bare()),
                calls,
            )
            .await
        }
        "retry" => {
            drive(
                ServiceBuilder::new().layer(retry.layer()).service(bare()),
                calls,
            )
            .await
        }
        "stack" => {
            let svc = ServiceBuilder::new()
                .layer(retry.layer())
                .layer(breaker.layer())
                .timeout(Duration::from_secs(1))
                .service(bare());
            drive(svc, calls).await
        }
        #[cfg(feature = "http")]
        other if other.starts_with("http_") => http_calls::run(other, calls).await,
        other => panic!("unknown configuration {other:?}; one of {CONFIGURATIONS:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.as_slice() {
        [configuration, calls] => {
            let calls = calls.parse().expect("a number of calls");
            rt.block_on(run(configuration, calls));
        }
        _ => {
            for configuration in CONFIGURATIONS.iter().copied() {
                rt.block_on(run(configuration, 1_000));
            }
            println!("instructions: smoke run done; see benches/instructions.sh");
        }
    }
}
