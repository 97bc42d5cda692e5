//! Memory: the happy path allocates nothing, and nothing outlives its last handle. A counting
//! allocator (per thread, so other tests' threads do not disturb the counts) around calls and
//! around a million builds and drops of each type.

use std::future::Future;
use std::time::Duration;

use seawall::circuit_breaker::CircuitBreaker;
use seawall::Outcome;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

use crate::common::alloc::{allocations, live_bytes};

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

/// Builds and drops `n` of something, after one warm-up build (which may initialise
/// process-wide state: the error-kind registry, the thread's stripe index); returns the bytes
/// left allocated on this thread afterwards.
fn left_behind(n: usize, mut build_and_drop: impl FnMut()) -> i64 {
    build_and_drop();
    let before = live_bytes();
    for _ in 0..n {
        build_and_drop();
    }
    live_bytes() - before
}

#[test]
fn a_million_breakers_built_and_dropped_leave_no_memory() {
    let left = left_behind(1_000_000, || {
        let breaker = CircuitBreaker::builder()
            .name("inventory")
            .failure_rate(50.0)
            .count_window(16)
            .on_state_change(|_, _| {})
            .build()
            .unwrap();
        breaker.record(Outcome::Failure);
        // A permit outlives the last handle: it keeps the breaker alive, then frees it.
        let permit = breaker.try_acquire().unwrap();
        drop(breaker);
        permit.record(Outcome::Success);
    });
    assert_eq!(left, 0, "bytes left behind by a million breakers");
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
fn a_million_retry_policies_built_and_dropped_leave_no_memory() {
    let left = left_behind(1_000_000, || {
        let retry = seawall::Retry::builder()
            .max_retries(2)
            .on_retry(|_| {})
            .build()
            .unwrap();
        drop(retry);
    });
    assert_eq!(left, 0, "bytes left behind by a million policies");
    // `Retry::default()` builds a budget of its own.
    let left = left_behind(1_000_000, || drop(seawall::Retry::default()));
    assert_eq!(left, 0, "bytes left behind by a million default policies");
}

#[test]
fn a_million_retry_budgets_built_and_dropped_leave_no_memory() {
    let left = left_behind(1_000_000, || {
        let budget = seawall::RetryBudget::builder().build().unwrap();
        budget.deposit();
        let _ = budget.withdraw();
        drop(budget);
    });
    assert_eq!(left, 0, "bytes left behind by a million budgets");
}

#[test]
fn calls_through_a_dropped_stack_end_and_free_it() {
    let rt = runtime();
    rt.block_on(async {
        let left = left_behind(10_000, || {
            let breaker = CircuitBreaker::default();
            let retry = seawall::Retry::builder().max_retries(1).build().unwrap();
            let svc = ServiceBuilder::new()
                .layer(retry.layer())
                .layer(breaker.layer())
                .service(service_fn(
                    |x: u64| async move { Ok::<_, std::io::Error>(x) },
                ));
            drop((breaker, retry));
            // `oneshot` drops the service once it has called it: the call owns its stack.
            let call = svc.oneshot(7);
            let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
            let mut call = std::pin::pin!(call);
            assert!(matches!(
                call.as_mut().poll(&mut cx),
                std::task::Poll::Ready(Ok(7))
            ));
        });
        assert_eq!(left, 0, "bytes left behind by dropped stacks");
    });
}

/// What one of each takes while alive (per-key breakers and reloads multiply it), bounded so a
/// change that bloats one shows here. Run with `--nocapture` to see the figures.
#[test]
fn a_breaker_a_policy_and_a_budget_stay_small() {
    fn size_of_one<T>(build: impl Fn() -> T) -> i64 {
        drop(build()); // warm-up
        let before = live_bytes();
        let one = build();
        let size = live_bytes() - before;
        drop(one);
        size
    }
    let breaker = size_of_one(CircuitBreaker::default);
    let layer = size_of_one(|| CircuitBreaker::default().layer());
    let policy = size_of_one(|| seawall::Retry::builder().no_budget().build().unwrap());
    let budget = size_of_one(|| seawall::RetryBudget::builder().build().unwrap());
    eprintln!(
        "breaker {breaker} B, with its layer {layer} B, policy {policy} B, budget {budget} B"
    );
    // The circuit (its state word on a 128-byte line of its own) and the handle's lane.
    assert!(breaker <= 1280, "a breaker takes {breaker} B");
    // The layer's lanes: one per core, at most 8, a few hundred bytes each.
    assert!(
        layer <= breaker + 8 * 320,
        "a breaker and its layer take {layer} B"
    );
    assert!(policy <= 512, "a policy takes {policy} B");
    // 16 cache-padded deposit stripes and the window.
    assert!(budget <= 3 * 1024, "a budget takes {budget} B");
}
