//! The happy path allocates nothing: a counting allocator (per thread, so other tests' threads
//! do not disturb the count) around calls through a closed breaker.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use seawall::circuit_breaker::CircuitBreaker;
use seawall::Outcome;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        let _ = LIVE.try_with(|c| c.set(c.get() + layout.size() as i64));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - layout.size() as i64));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        let _ = LIVE.try_with(|c| c.set(c.get() + new_size as i64 - layout.size() as i64));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn counting_allocator_counts() {
    let before = allocations();
    let boxed = std::hint::black_box(Box::new(7u64));
    assert_eq!(*boxed, 7);
    assert_eq!(allocations() - before, 1);
}

#[test]
fn closed_breaker_call_allocates_nothing() {
    let rt = runtime();
    let breaker = CircuitBreaker::default();
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(service_fn(
            |x: u64| async move { Ok::<_, std::io::Error>(x) },
        ));
    rt.block_on(async {
        // Warm up: first polls may initialise runtime internals.
        for i in 0..100 {
            svc.ready().await.unwrap().call(i).await.unwrap();
        }
        let before = allocations();
        for i in 0..10_000 {
            svc.ready().await.unwrap().call(i).await.unwrap();
        }
        assert_eq!(allocations() - before, 0, "allocations on the success path");
    });
}

#[test]
fn closed_breaker_with_rate_window_and_slow_calls_allocates_nothing() {
    let rt = runtime();
    rt.block_on(async {
        let breaker = CircuitBreaker::builder()
            .failure_rate(50.0)
            .slow_call_rate(50.0)
            .slow_call_duration(Duration::from_secs(1))
            .time_window(Duration::from_secs(10))
            .build()
            .unwrap();
        for _ in 0..100 {
            breaker.try_acquire().unwrap().record(Outcome::Success);
        }
        let before = allocations();
        for i in 0..10_000 {
            let permit = breaker.try_acquire().unwrap();
            permit.record(if i % 10 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            });
        }
        assert_eq!(
            allocations() - before,
            0,
            "allocations when recording into a window"
        );
    });
}

#[test]
fn bare_call_api_allocates_nothing() {
    let rt = runtime();
    let breaker = CircuitBreaker::default();
    rt.block_on(async {
        for _ in 0..100 {
            let _ = breaker.call(|| async { Ok::<_, ()>(1) }).await;
        }
        let before = allocations();
        for i in 0..10_000u32 {
            let r = breaker.call(|| async move { Ok::<_, ()>(i) }).await;
            assert_eq!(r, Ok(i));
        }
        assert_eq!(
            allocations() - before,
            0,
            "allocations in CircuitBreaker::call"
        );
    });
}

/// Bytes allocated minus bytes freed on this thread.
fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

#[test]
fn a_dropped_breaker_leaves_only_its_small_hot_block() {
    // Warm up whatever the first build initialises.
    drop(
        CircuitBreaker::builder()
            .failure_rate(50.0)
            .build()
            .unwrap(),
    );
    let before = live_bytes();
    for _ in 0..100 {
        let breaker = CircuitBreaker::builder()
            .name("inventory")
            .failure_rate(50.0)
            .count_window(1000)
            .on_state_change(|_, _| {})
            .build()
            .unwrap();
        breaker.record(Outcome::Failure);
        drop(breaker);
    }
    let per_breaker = (live_bytes() - before) / 100;
    assert!(
        per_breaker <= 100,
        "{per_breaker} bytes left behind per dropped breaker"
    );
}

/// Issue 11: a million breakers built, used and dropped leave nothing behind (they used to
/// leave about 80 bytes each), and neither does a permit that outlives its breaker.
#[test]
fn a_million_dropped_breakers_leave_no_memory() {
    drop(CircuitBreaker::default());
    let before = live_bytes();
    for i in 0..1_000_000u32 {
        let breaker = CircuitBreaker::builder().build().unwrap();
        let permit = breaker.try_acquire().unwrap();
        if i % 2 == 0 {
            drop(breaker); // the permit is the last holder
        }
        permit.record(Outcome::Failure);
    }
    assert_eq!(
        live_bytes() - before,
        0,
        "bytes left behind by a million breakers"
    );
}

#[test]
fn a_dropped_retry_policy_leaves_only_its_anchor() {
    let rt = runtime();
    rt.block_on(async {
        drop(seawall::Retry::builder().build().unwrap());
        let before = live_bytes();
        for _ in 0..100 {
            let retry = seawall::Retry::builder()
                .max_retries(2)
                .no_budget()
                .on_retry(|_| {})
                .build()
                .unwrap();
            let mut svc = ServiceBuilder::new()
                .layer(retry.layer())
                .service(service_fn(
                    |x: u64| async move { Ok::<_, std::io::Error>(x) },
                ));
            svc.ready().await.unwrap().call(1).await.unwrap();
        }
        let per_policy = (live_bytes() - before) / 100;
        assert!(
            per_policy <= 32,
            "{per_policy} bytes left behind per dropped policy"
        );
    });
}
