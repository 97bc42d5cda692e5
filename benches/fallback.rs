//! The fallback layer's success path (no fallback) against a bare service.
//!
//! Each call's future is polled once, in place, with a no-op waker, as in `benches/retry.rs`:
//! the numbers are the layer's own cost without a runtime. Variants: the request copied by
//! `Clone` (a `u64`, then a 64-byte `String`, whose copy allocates), `error_only` (nothing
//! copied), a fallback closure capturing an `Arc` (one reference count per call), and a
//! policy with a listener (one more).
//!
//! Run: `cargo bench --bench fallback`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use criterion::{criterion_group, criterion_main, Criterion};
use seawall::fallback::{fallback_fn, FallbackLayer};
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder};

fn bare() -> impl Service<
    u64,
    Response = u64,
    Error = BoxError,
    Future = impl Future<Output = Result<u64, BoxError>>,
> + Clone {
    service_fn(|x: u64| std::future::ready(Ok::<u64, BoxError>(x.wrapping_add(1))))
}

#[inline(always)]
fn one_call<Req, S: Service<Req, Response = u64>>(svc: &mut S, req: Req) -> u64 {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let _ = svc.poll_ready(&mut cx);
    let future = pin!(svc.call(req));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(v)) => v,
        _ => 0,
    }
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("fallback/success_path");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let fallback = fallback_fn(|x: u64, _: BoxError| std::future::ready(Ok::<u64, BoxError>(x)));
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(fallback))
        .service(bare());
    g.bench_function("fallback, u64 request copied", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::error_only(service_fn(|_: BoxError| {
            std::future::ready(Ok::<u64, BoxError>(0))
        })))
        .service(bare());
    g.bench_function("fallback, error_only", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let shared = Arc::new(7u64);
    let fallback =
        fallback_fn(move |_: u64, _: BoxError| std::future::ready(Ok::<u64, BoxError>(*shared)));
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(fallback.clone()))
        .service(bare());
    g.bench_function("fallback, closure capturing an Arc", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(fallback).on_fallback(|_| {}))
        .service(bare());
    g.bench_function("fallback, closure capturing an Arc, listener", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let text = "x".repeat(64);
    let mut svc = service_fn(|s: String| std::future::ready(Ok::<u64, BoxError>(s.len() as u64)));
    g.bench_function("bare service_fn, String request", |b| {
        b.iter(|| one_call(&mut svc, black_box(text.clone())))
    });
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(fallback_fn(|_: String, _: BoxError| {
            std::future::ready(Ok::<u64, BoxError>(0))
        })))
        .service(service_fn(|s: String| {
            std::future::ready(Ok::<u64, BoxError>(s.len() as u64))
        }));
    g.bench_function("fallback, String request copied", |b| {
        b.iter(|| one_call(&mut svc, black_box(text.clone())))
    });
    g.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);
