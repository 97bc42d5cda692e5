//! The adaptive throttle's success path (a healthy window: nothing shed, every call
//! accepted) against a bare service.
//!
//! Harnesses as in `benches/bulkhead.rs`. `success_path`: each call's future is polled once,
//! in place, with a no-op waker, so the numbers are the layer's own cost without a runtime.
//! The throttle reads the clock once per call: "throttle" reads tokio's (outside a runtime,
//! `std::time::Instant`), "throttle, manual clock" a `ManualClock` (one atomic load), which
//! shows what the clock read costs; "clock read alone" is that read by itself (tokio's
//! clock, which in this build, with tokio's `test-util` for the test suite, also looks for a
//! paused clock), and "std Instant::now alone" what it costs without `test-util`. "bare API" is
//! `try_acquire` + `record(Success)`. `success_path_async`: the same calls awaited in a loop
//! in one task on a current-thread runtime. The two-thread group runs the loop on both cores
//! at once through one throttle: per-thread stripes, so the two cores write different lines.
//!
//! `cargo bench --bench throttle`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use seawall::clock::{Clock, ManualClock};
use seawall::throttle::AdaptiveThrottle;
use seawall::{BoxError, Outcome};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

// ===== allocation counting: the success path must allocate nothing =====

// The test suite's counting allocator (per thread: the calls below run on this one).
#[path = "../tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn throttle() -> AdaptiveThrottle {
    AdaptiveThrottle::builder().build().unwrap()
}

fn manual() -> AdaptiveThrottle {
    AdaptiveThrottle::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// Counts the allocations of 10 000 successful calls through the layer, before the timings,
/// and refuses to time a success path that allocates.
fn allocations(_: &mut Criterion) {
    let mut svc = ServiceBuilder::new()
        .layer(throttle().layer())
        .service(bare());
    one_call(&mut svc, 0);
    let before = alloc::allocations();
    for i in 0..10_000 {
        black_box(one_call(&mut svc, i));
    }
    let n = alloc::allocations() - before;
    println!("throttle/success_path: {n} allocations in 10000 calls");
    assert_eq!(n, 0, "the success path allocated");
}

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

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("throttle/success_path");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let mut svc = ServiceBuilder::new()
        .layer(throttle().layer())
        .service(bare());
    g.bench_function("throttle", |b| b.iter(|| one_call(&mut svc, black_box(1))));
    let mut svc = ServiceBuilder::new()
        .layer(manual().layer())
        .service(bare());
    g.bench_function("throttle, manual clock", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let clock = Clock::tokio();
    g.bench_function("clock read alone", |b| {
        b.iter(|| black_box(clock.now_nanos()))
    });
    // What tokio's clock costs in a build without tokio's `test-util` (the benches have it).
    g.bench_function("std Instant::now alone", |b| {
        b.iter(|| black_box(Instant::now()))
    });
    let t = throttle();
    g.bench_function("bare API", |b| {
        b.iter(|| {
            if let Ok(permit) = t.try_acquire() {
                permit.record(black_box(Outcome::Success));
            }
        })
    });
    g.finish();
}

/// `iters` calls awaited one after the other in one task, as an application makes them.
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
    let mut g = c.benchmark_group("throttle/success_path_async");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    // Built inside the runtime, as an application would: tokio's clock.
    let mut svc = rt.block_on(async {
        ServiceBuilder::new()
            .layer(throttle().layer())
            .service(bare())
    });
    g.bench_function("throttle", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    g.finish();
}

/// Runs `iters` calls on each of two threads at once; returns the slower thread's time.
fn two_threads<S>(svc: S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64> + Clone + Send + 'static,
{
    let start = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut svc = svc.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                for i in 0..iters {
                    black_box(one_call(&mut svc, i));
                }
                t.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap_or_default()
}

fn success_path_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("throttle/success_path_2_threads");
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| two_threads(bare(), iters))
    });
    let svc = ServiceBuilder::new()
        .layer(throttle().layer())
        .service(bare());
    g.bench_function("throttle (shared)", |b| {
        b.iter_custom(|iters| two_threads(svc.clone(), iters))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = allocations, success_path, success_path_async, success_path_two_threads
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
