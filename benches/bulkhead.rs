//! The bulkhead layer's success path (a slot is free) against a bare service.
//!
//! Two harnesses, as in `benches/retry.rs`. `success_path`: each call's future is polled
//! once, in place, with a no-op waker, so the numbers are the layer's own cost without a
//! runtime (the compiler sees through a bare `service_fn` there, so its baseline is close to
//! zero and the difference is everything the layer does). `success_path_async`: the same
//! calls awaited in a loop inside one task on a current-thread tokio runtime. The two-thread
//! group runs the loop on both cores at once through one bulkhead, to show what contention
//! on its one semaphore adds.
//!
//! `cargo bench --bench bulkhead`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use seawall::bulkhead::Bulkhead;
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

fn bulkhead() -> Bulkhead {
    Bulkhead::builder()
        .max_concurrent(64)
        .max_wait(Duration::from_millis(10))
        .build()
        .unwrap()
}

/// Counts the allocations of 10 000 successful calls through the layer, before the timings,
/// and refuses to time a success path that allocates.
fn allocations(_: &mut Criterion) {
    let mut svc = ServiceBuilder::new()
        .layer(bulkhead().layer())
        .service(bare());
    one_call(&mut svc, 0);
    let before = alloc::allocations();
    for i in 0..10_000 {
        black_box(one_call(&mut svc, i));
    }
    let n = alloc::allocations() - before;
    println!("bulkhead/success_path: {n} allocations in 10000 calls");
    assert_eq!(n, 0, "the success path allocated");
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulkhead/success_path");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    let mut svc = ServiceBuilder::new()
        .layer(bulkhead().layer())
        .service(bare());
    g.bench_function("bulkhead", |b| b.iter(|| one_call(&mut svc, black_box(1))));
    let listened = Bulkhead::builder()
        .max_concurrent(64)
        .listener(|_: &Bulkhead, e: &seawall::bulkhead::Event| {
            black_box(e);
        })
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(listened.layer())
        .service(bare());
    g.bench_function("bulkhead, one listener", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    g.finish();
}

fn success_path_async(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("bulkhead/success_path_async");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    let mut svc = ServiceBuilder::new()
        .layer(bulkhead().layer())
        .service(bare());
    g.bench_function("bulkhead", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    g.finish();
}

fn success_path_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulkhead/success_path_2_threads");
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| two_threads(bare(), iters))
    });
    let svc = ServiceBuilder::new()
        .layer(bulkhead().layer())
        .service(bare());
    g.bench_function("bulkhead (shared)", |b| {
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
