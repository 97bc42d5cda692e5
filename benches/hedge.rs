//! The hedge layer's success path (the primary answers at once, no hedge) against a bare
//! `service_fn`.
//!
//! `success_path`: each call's future is polled once, in place, with a no-op waker: the
//! layer's own cost without a runtime. `success_path_async`: the same calls awaited in a
//! loop inside one task on a current-thread tokio runtime, as an application makes them.
//! Before the timings, a counting allocator checks that the fixed mode's success path
//! allocates nothing.
//!
//! Run: `cargo bench --bench hedge`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use seawall::hedge::Hedge;
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

// The test suite's counting allocator (per thread: the calls below run on this one).
#[path = "../tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn bare() -> impl Service<u64, Response = u64, Error = BoxError> + Clone + Send {
    service_fn(|x: u64| std::future::ready(Ok::<u64, BoxError>(x.wrapping_add(1))))
}

#[inline(always)]
fn one_call<S: Service<u64, Response = u64>>(svc: &mut S, x: u64) -> u64 {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let _ = svc.poll_ready(&mut cx);
    let future = pin!(svc.call(x));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(v)) => v,
        _ => 0,
    }
}

/// The default policy (a fixed delay, a budget of its own that it deposits into).
fn fixed() -> Hedge {
    Hedge::builder()
        .delay(Duration::from_millis(50))
        .build()
        .unwrap()
}

fn allocations(_: &mut Criterion) {
    let mut svc = ServiceBuilder::new().layer(fixed().layer()).service(bare());
    one_call(&mut svc, 0);
    let before = alloc::allocations();
    for i in 0..10_000 {
        black_box(one_call(&mut svc, i));
    }
    let n = alloc::allocations() - before;
    println!("hedge/success_path: {n} allocations in 10000 calls");
    assert_eq!(n, 0, "the success path allocated");
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hedge/success_path");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let mut svc = ServiceBuilder::new().layer(fixed().layer()).service(bare());
    g.bench_function("hedge, fixed delay, budget on", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let hedge = Hedge::builder()
        .delay(Duration::from_millis(50))
        .no_budget()
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new().layer(hedge.layer()).service(bare());
    g.bench_function("hedge, fixed delay, no budget", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let hedge = Hedge::builder().latency_percentile(95.0).build().unwrap();
    let mut svc = ServiceBuilder::new().layer(hedge.layer()).service(bare());
    g.bench_function("hedge, p95 (two clock reads, a lock)", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    g.finish();
}

fn async_loop<S>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let svc = match svc.ready().await {
                Ok(svc) => svc,
                Err(_) => continue,
            };
            let _ = black_box(svc.call(black_box(i)).await.ok());
        }
        start.elapsed()
    })
}

fn success_path_async(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("hedge/success_path_async");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    let mut svc = ServiceBuilder::new().layer(fixed().layer()).service(bare());
    g.bench_function("hedge, fixed delay, budget on", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    g.finish();
}

criterion_group!(benches, allocations, success_path, success_path_async);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
