//! The success-path cost of a rate limit: a bare `tower::service_fn` against the same service
//! behind a `RateLimitLayer` and a `KeyedRateLimitLayer` (one key), with a limit so high that
//! every call is admitted; plus the bare `check` alone.
//!
//! Run: `cargo bench --features rate-limit --bench rate_limit`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seawall::rate_limit::{KeyedRateLimiter, RateLimiter};
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn bare() -> impl Service<u64, Response = u64, Error = BoxError, Future = impl Send> + Clone + Send
{
    service_fn(|x: u64| async move { Ok::<_, BoxError>(black_box(x)) })
}

fn timed<S>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(svc.ready().await.unwrap().call(i).await.unwrap());
        }
        start.elapsed()
    })
}

/// A limit no benchmark reaches: a billion per second, in bursts of a billion.
fn unreachable_limit() -> RateLimiter {
    RateLimiter::builder()
        .rate(1_000_000_000)
        .burst(1_000_000_000)
        .build()
        .unwrap()
}

fn success_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("rate_limit/admitted_call");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut svc = bare();
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("rate_limit", |b| {
        let limiter = rt.block_on(async { unreachable_limit() });
        let mut svc = ServiceBuilder::new().layer(limiter.layer()).service(bare());
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("keyed_rate_limit", |b| {
        let limiter = rt.block_on(async {
            KeyedRateLimiter::<u64>::builder()
                .rate(1_000_000_000)
                .burst(1_000_000_000)
                .build()
                .unwrap()
        });
        let mut svc = ServiceBuilder::new()
            .layer(limiter.layer(|_: &u64| Some(7u64)))
            .service(bare());
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("check", |b| {
        let limiter = rt.block_on(async { unreachable_limit() });
        rt.block_on(async { b.iter(|| black_box(limiter.check()).is_ok()) })
    });
    group.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);
