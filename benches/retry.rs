//! The retry layer's success path (no retry) against a bare service, and the budget's deposit.
//!
//! Two harnesses. `success_path`: each call's future is polled once, in place, with a no-op
//! waker, so the numbers are the layer's own cost without a runtime; the compiler sees through
//! a bare `service_fn` entirely there, so its baseline is close to zero and the difference is
//! everything the layer does. `success_path_async`: the same calls awaited in a loop inside
//! one task on a current-thread tokio runtime, as an application would make them. The
//! two-thread groups run the loop on both cores at once, sharing one policy and one budget,
//! to show what contention adds.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use seawall::retry::{Retry, RetryBudget};
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

/// Counts the allocations of 10 000 successful calls through the layer (budget on), before
/// the timings, and refuses to time a success path that allocates.
fn allocations(_: &mut Criterion) {
    let retry = Retry::builder().build().unwrap();
    let mut svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    one_call(&mut svc, 0);
    let before = alloc::allocations();
    for i in 0..10_000 {
        black_box(one_call(&mut svc, i));
    }
    let n = alloc::allocations() - before;
    println!("retry/success_path: {n} allocations in 10000 calls");
    assert_eq!(n, 0, "the success path allocated");
}

fn success_path_async(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("retry/success_path_async");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    let retry = Retry::builder().build().unwrap(); // budget on
    let mut svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, budget on", |b| {
        b.iter_custom(|iters| async_loop(&rt, &mut svc, iters))
    });
    g.finish();
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry/success_path");
    let mut svc = bare();
    g.bench_function("bare service_fn", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let retry = Retry::builder().build().unwrap(); // budget on
    let mut svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, budget on", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let retry = Retry::builder().no_budget().build().unwrap();
    let mut svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, no budget", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });

    let retry = Retry::builder()
        .deadline(Duration::from_secs(10))
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, budget on, deadline (clock read)", |b| {
        b.iter(|| one_call(&mut svc, black_box(1)))
    });
    g.finish();
}

fn success_path_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry/success_path_2_threads");
    g.bench_function("bare service_fn", |b| {
        b.iter_custom(|iters| two_threads(bare(), iters))
    });
    let retry = Retry::builder().build().unwrap();
    let svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, budget on (shared)", |b| {
        b.iter_custom(|iters| two_threads(svc.clone(), iters))
    });
    let retry = Retry::builder().no_budget().build().unwrap();
    let svc = ServiceBuilder::new().layer(retry.layer()).service(bare());
    g.bench_function("retry, no budget", |b| {
        b.iter_custom(|iters| two_threads(svc.clone(), iters))
    });
    g.finish();
}

fn budget(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry/budget");
    let budget = RetryBudget::builder().build().unwrap();
    g.bench_function("deposit", |b| b.iter(|| black_box(&budget).deposit()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let budget = RetryBudget::builder().ratio(1.0).build().unwrap();
    g.bench_function("deposit + withdraw", |b| {
        b.iter(|| {
            budget.deposit();
            black_box(budget.withdraw())
        })
    });
    // A total outage: no success comes back, the failure streak is over, every withdrawal
    // is refused (the path every failing call takes in a storm).
    let budget = RetryBudget::builder().build().unwrap();
    while budget.withdraw() {}
    g.bench_function("withdraw, refused (failure streak over)", |b| {
        b.iter(|| black_box(budget.withdraw()))
    });

    g.bench_function("deposit, 2 threads", |b| {
        b.iter_custom(|iters| {
            let budget = RetryBudget::builder().build().unwrap();
            run_two(iters, move || budget.deposit())
        })
    });
    g.bench_function("naive shared fetch_add, 2 threads (for comparison)", |b| {
        b.iter_custom(|iters| {
            let counter = Arc::new(AtomicU64::new(0));
            run_two(iters, move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
        })
    });
    g.finish();
}

fn run_two(iters: u64, f: impl Fn() + Clone + Send + 'static) -> Duration {
    let start = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let f = f.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                for _ in 0..iters {
                    f();
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = allocations, success_path, success_path_async, success_path_two_threads, budget
}

/// Instruction counts, which do not move with the machine's load the way timings do:
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
