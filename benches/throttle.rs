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

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use seawall::clock::{Clock, ManualClock};
use seawall::throttle::AdaptiveThrottle;
use seawall::Outcome;
use tower::ServiceBuilder;

// ===== allocation counting: the success path must allocate nothing =====

// The test suite's counting allocator (per thread: the calls below run on this one).
#[path = "../tests/common/alloc.rs"]
mod alloc;
#[path = "common/harness.rs"]
mod harness;
use harness::{async_loop, bare, one_call, two_threads};

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
