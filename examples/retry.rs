//! Retry in two scenes: a flaky service that fails twice then answers, and a dead service
//! whose retry storm the budget stops.
//!
//! Run with `cargo run --example retry`. tokio's clock is paused, so the backoff delays pass
//! instantly but are measured exactly as in production.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::retry::{
    Backoff, BudgetExhausted, Event, GiveUpReason, Jitter, Retry, RetryBudget, RetryEvent,
};
use seawall::{BoxError, ErrorKind};
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn log_retry(event: &RetryEvent<'_>) {
    let error = event.error.map(|e| e.to_string()).unwrap_or_default();
    println!(
        "  attempt {} failed ({error}); retrying in {:?}",
        event.attempt, event.delay
    );
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    flaky_then_fine().await?;
    retry_storm().await?;
    Ok(())
}

/// 0.5 s, 1 s: the classic exponential schedule, without jitter to keep the output stable.
async fn flaky_then_fine() -> Result<(), BoxError> {
    println!("== a service that fails twice, then answers");
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::exponential(Duration::from_millis(500)).jitter(Jitter::None))
        .on_retry(log_retry)
        .build()?;

    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |name: &'static str| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                if n <= 2 {
                    Err::<String, BoxError>(format!("503 on call {n}").into())
                } else {
                    Ok(format!("hello, {name}"))
                }
            }
        }));

    let start = Instant::now();
    let response = svc.ready().await?.call("world").await?;
    println!(
        "  => {response:?} after {} attempts, {:?}",
        calls.load(Ordering::Relaxed),
        start.elapsed()
    );
    Ok(())
}

/// 200 requests a second for 5 s against a service that always fails. Without a budget,
/// 3 retries each would send 4 000 attempts; the budget lets through one failure streak (3
/// retries, its default `failure_streak`), since no success comes back to end it.
async fn retry_storm() -> Result<(), BoxError> {
    println!("== a retry storm against a dead service");
    let budget = RetryBudget::builder().ratio(0.2).min_per_sec(5).build()?;
    // Every give-up goes through the policy's one observation seam, with its reason.
    let refusals = Arc::new(AtomicU32::new(0));
    let r = refusals.clone();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::exponential(Duration::from_millis(10)))
        .budget(budget)
        .listener(move |event: &Event<'_>| {
            if let Event::GiveUp(g) = event {
                if g.reason == GiveUpReason::BudgetExhausted {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build()?;

    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    let svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |_: ()| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Err::<(), BoxError>("connection refused".into()) }
        }));

    let mut tasks = Vec::new();
    for _ in 0..5 * 200 {
        let mut svc = svc.clone();
        tasks.push(tokio::spawn(
            async move { svc.ready().await?.call(()).await },
        ));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut exhausted, mut other) = (0, 0);
    for task in tasks {
        match task.await? {
            Err(e) if ErrorKind::of(&*e) == ErrorKind::BudgetExhausted => {
                // The caller still sees the service's own error behind the refusal.
                debug_assert!(e.downcast_ref::<BudgetExhausted>().is_some());
                exhausted += 1;
            }
            Err(_) => other += 1,
            Ok(()) => {}
        }
    }
    let attempts = attempts.load(Ordering::Relaxed);
    println!(
        "  1000 requests, {attempts} attempts ({} retries)",
        attempts - 1000
    );
    println!("  {exhausted} refused by the budget, {other} failed after their retries");
    println!(
        "  the listener saw {} budget refusals",
        refusals.load(Ordering::Relaxed)
    );
    Ok(())
}
