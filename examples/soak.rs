//! Soak: millions of calls through the full resilience stack (overall timeout, retry with a
//! budget, circuit breaker) on a multi-thread runtime, with random failures, latencies and
//! cancellations; then checks that nothing leaked, no probe slot is held, the breaker's final
//! state is consistent and it recovers.
//!
//! ```text
//! cargo run --release --example soak            # 10 million calls
//! cargo run --example soak -- 200000            # what CI runs
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// Counts live heap bytes.
struct Counting;
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TASKS: u64 = 16;
const FAILURE_THRESHOLD: u32 = 5;
const PROBES: u32 = 3;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    timed_out: AtomicU64,
    cancelled: AtomicU64,
    /// Calls the budget refused to retry (`ErrorKind::BudgetExhausted`).
    refused: AtomicU64,
    /// Retries made (counted by the policy's `on_retry` hook).
    retries: AtomicU64,
}

thread_local! {
    /// The dependency's dice: whether an attempt fails is drawn per attempt, so a retry of a
    /// failed call may succeed.
    static DICE: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(42));
}

fn main() -> Result<(), BoxError> {
    let calls: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(soak(calls))
}

async fn soak(calls: u64) -> Result<(), BoxError> {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(FAILURE_THRESHOLD)
        .failure_rate(60.0)
        .count_window(50)
        .wait_in_open(Duration::from_millis(2))
        .half_open_max_calls(PROBES)
        .build()?;
    // Much tighter than the default (50 % + 10/s): outages then meet refusals as well as an open breaker.
    let budget = RetryBudget::builder().ratio(0.01).min_per_sec(5).build()?;
    // Warm up the runtime, the allocator's bookkeeping and the retry policy's per-thread
    // caches, then take the baseline.
    let warm_up = Arc::new(Tally::default());
    run(&breaker, &budget, &warm_up, 20_000, 1).await;
    let tally = Arc::new(Tally::default());
    tokio::task::yield_now().await;
    let before = LIVE_BYTES.load(Relaxed);
    let started = Instant::now();

    run(&breaker, &budget, &tally, calls, 2).await;

    let elapsed = started.elapsed();
    let after = LIVE_BYTES.load(Relaxed);
    let s = breaker.snapshot();
    println!(
        "{calls} calls in {:.2?} ({:.0} calls/s): ok {} failed {} rejected {} timed out {} \
         cancelled {} retries {} budget refusals {}",
        elapsed,
        calls as f64 / elapsed.as_secs_f64(),
        tally.ok.load(Relaxed),
        tally.failed.load(Relaxed),
        tally.rejected.load(Relaxed),
        tally.timed_out.load(Relaxed),
        tally.cancelled.load(Relaxed),
        tally.retries.load(Relaxed),
        tally.refused.load(Relaxed),
    );
    let outcomes = [
        &tally.ok,
        &tally.failed,
        &tally.rejected,
        &tally.timed_out,
        &tally.cancelled,
        &tally.refused,
    ]
    .iter()
    .map(|c| c.load(Relaxed))
    .sum::<u64>();
    if outcomes != calls / TASKS * TASKS {
        return Err(format!("{outcomes} outcomes for {calls} calls").into());
    }
    // Some calls were retried, some refused by the budget: the soak did go through retry.
    if tally.retries.load(Relaxed) == 0 || tally.refused.load(Relaxed) == 0 {
        return Err("no retry or no budget refusal: the soak missed the retry layer".into());
    }
    let balance = budget.balance();
    if !(0.0..=f64::from(1u32 << 18)).contains(&balance) {
        return Err(format!("retry budget balance out of range: {balance}").into());
    }
    println!("live heap bytes before {before}, after {after}; final {s:?}");

    // Nothing leaked: the heap is back where it was, no probe slot is held.
    let grown = after - before;
    if grown.abs() > 64 * 1024 {
        return Err(format!("heap grew by {grown} bytes").into());
    }
    if s.probes_in_flight != 0 {
        return Err(format!("{} probe slots leaked", s.probes_in_flight).into());
    }
    // The final state is consistent with the counts it holds.
    let consistent = match s.state {
        State::Closed => s.consecutive_failures < FAILURE_THRESHOLD,
        State::Open => s.retry_in.is_some(),
        State::HalfOpen => s.probe_successes < PROBES,
        _ => false,
    };
    if !consistent {
        return Err(format!("inconsistent final state: {s:?}").into());
    }
    // And it recovers: once the dependency is healthy, successes close it.
    tokio::time::sleep(Duration::from_millis(3)).await;
    for _ in 0..PROBES {
        let _ = breaker.call(|| async { Ok::<_, BoxError>(()) }).await;
    }
    if breaker.state() != State::Closed {
        return Err(format!("did not recover: {:?}", breaker.snapshot()).into());
    }
    println!("ok: no leak, no held permit, consistent and recovered");
    Ok(())
}

/// `calls` calls over `TASKS` tasks, each with its own clone of the stack.
async fn run(
    breaker: &CircuitBreaker,
    budget: &RetryBudget,
    tally: &Arc<Tally>,
    calls: u64,
    seed: u64,
) {
    // The request is the failure probability of each attempt (in permille) and its latency
    // (in yields).
    let dependency = service_fn(|(fail_permille, yields): (u16, u8)| async move {
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        let fail = DICE.with(|d| d.borrow_mut().random_range(0..1000u16) < fail_permille);
        if fail {
            Err::<(), BoxError>("dependency failed".into())
        } else {
            Ok(())
        }
    });
    let retries = tally.clone();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(1))
                .max_delay(Duration::from_millis(8))
                .jitter(Jitter::Full),
        )
        .budget(budget.clone())
        .on_retry(move |_| {
            retries.retries.fetch_add(1, Relaxed);
        })
        .build()
        .expect("valid retry policy");
    // The recommended order: overall timeout, retry, breaker, dependency.
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(retry.layer())
        .layer(breaker.layer())
        .service(dependency);
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let mut svc = stack.clone();
            let tally = tally.clone();
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed * 1000 + t);
                for _ in 0..calls / TASKS {
                    // Outages come and go: every 80 ms, 20 ms at 70 % failures, else 2 %.
                    let p = if (start.elapsed().as_millis() / 20) % 4 == 3 {
                        0.7
                    } else {
                        0.02
                    };
                    let req = ((p * 1000.0) as u16, rng.random_range(0..3u8));
                    let Ok(ready) = svc.ready().await else {
                        continue;
                    };
                    let fut = ready.call(req);
                    let result = if rng.random_bool(0.05) {
                        // Poll once, then drop if still pending: a cancellation.
                        match fut.now_or_never() {
                            Some(r) => r,
                            None => {
                                tally.cancelled.fetch_add(1, Relaxed);
                                continue;
                            }
                        }
                    } else {
                        fut.await
                    };
                    let counter = match result {
                        Ok(()) => &tally.ok,
                        Err(e) => match ErrorKind::of(&*e) {
                            ErrorKind::CircuitOpen => {
                                // A real caller would do something else for a while.
                                for _ in 0..16 {
                                    tokio::task::yield_now().await;
                                }
                                &tally.rejected
                            }
                            ErrorKind::Timeout => &tally.timed_out,
                            ErrorKind::BudgetExhausted => &tally.refused,
                            _ => &tally.failed,
                        },
                    };
                    counter.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}
