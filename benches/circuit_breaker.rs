//! The cost of a closed breaker: a bare `tower::service_fn` against the same service behind
//! the breaker, single-threaded and with many tasks on a 2-worker runtime; plus the core
//! (`try_acquire` + `record`) alone, the rejection path, and the optional modes.
//!
//! Run: `cargo bench --bench circuit_breaker`. Allocations per call are checked by
//! `tests/stack/memory.rs` (a counting allocator), and printed here too.
//!
//! Instruction counts, which do not move with the machine's load, come from
//! `benches/instructions.sh`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use seawall::circuit_breaker::CircuitBreaker;
use seawall::{BoxError, Outcome};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TASKS: u64 = 8;

fn bare() -> impl Service<
    u64,
    Response = u64,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<u64, BoxError>> + Send,
> + Clone
       + Send {
    service_fn(|x: u64| async move { Ok::<_, BoxError>(black_box(x)) })
}

async fn drive<S>(svc: &mut S, n: u64)
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    for i in 0..n {
        let r = svc.ready().await.unwrap().call(i).await.unwrap();
        black_box(r);
    }
}

/// Times `iters` calls made one after another in one task.
fn timed<S>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    rt.block_on(async {
        let start = Instant::now();
        drive(svc, iters).await;
        start.elapsed()
    })
}

fn single_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("closed_call/single_thread");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut svc = bare();
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("breaker", |b| {
        let breaker = rt.block_on(async { CircuitBreaker::default() });
        let mut svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("breaker_rate_window", |b| {
        let breaker = rt.block_on(async {
            CircuitBreaker::builder()
                .failure_rate(50.0)
                .count_window(100)
                .build()
                .unwrap()
        });
        let mut svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.bench_function("breaker_slow_calls_time_window", |b| {
        let breaker = rt.block_on(async {
            CircuitBreaker::builder()
                .slow_call_rate(50.0)
                .slow_call_duration(Duration::from_secs(1))
                .time_window(Duration::from_secs(10))
                .build()
                .unwrap()
        });
        let mut svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        b.iter_custom(|iters| timed(&rt, &mut svc, iters))
    });
    group.finish();

    // Allocations per call through the breaker (also asserted in tests/stack/memory.rs).
    rt.block_on(async {
        let breaker = CircuitBreaker::default();
        let mut svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        drive(&mut svc, 1_000).await;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        drive(&mut svc, 100_000).await;
        let per_call = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 100_000.0;
        println!("closed_call/allocations_per_call: {per_call}");
    });
}

/// `iters` calls split over `TASKS` tasks on a 2-worker runtime; each task owns a clone of the
/// service (as tower stacks do), so every clone shares one breaker.
fn contended_run<S>(rt: &tokio::runtime::Runtime, svc: &S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    rt.block_on(async {
        let start = Instant::now();
        let per_task = iters.div_ceil(TASKS);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let mut svc = svc.clone();
                tokio::spawn(async move { drive(&mut svc, per_task).await })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("closed_call/2_workers_8_tasks");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let svc = bare();
        b.iter_custom(|iters| contended_run(&rt, &svc, iters))
    });
    group.bench_function("breaker", |b| {
        let breaker = rt.block_on(async { CircuitBreaker::default() });
        let svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        b.iter_custom(|iters| contended_run(&rt, &svc, iters))
    });
    group.bench_function("breaker_rate_window", |b| {
        let breaker = rt.block_on(async {
            CircuitBreaker::builder()
                .failure_rate(50.0)
                .count_window(100)
                .build()
                .unwrap()
        });
        let svc = ServiceBuilder::new().layer(breaker.layer()).service(bare());
        b.iter_custom(|iters| contended_run(&rt, &svc, iters))
    });
    group.finish();
}

fn core(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("core");
    let breaker = CircuitBreaker::default();
    group.bench_function("acquire_record_success", |b| {
        b.iter(|| {
            breaker
                .try_acquire()
                .unwrap()
                .record(black_box(Outcome::Success))
        })
    });
    let open = CircuitBreaker::builder()
        .failure_threshold(1)
        .build()
        .unwrap();
    open.try_acquire().unwrap().record(Outcome::Failure);
    group.bench_function("reject_open", |b| {
        b.iter(|| black_box(open.try_acquire().is_err()))
    });
    group.finish();
}

criterion_group!(benches, single_thread, contended, core);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
