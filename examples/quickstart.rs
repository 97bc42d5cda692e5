//! A flaky in-process dependency behind a circuit breaker: watch it trip, reject fast, probe,
//! re-open on a failed probe (with a longer wait), and recover. Runs in about two seconds.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seawall::circuit_breaker::{CircuitBreaker, CircuitOpen};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();
    let breaker = CircuitBreaker::builder()
        .name("inventory")
        .failure_threshold(3)
        .wait_in_open(Duration::from_millis(400))
        .wait_in_open_multiplier(2.0) // each failed probe doubles the wait...
        .max_wait_in_open(Duration::from_secs(5)) // ...up to 5 s
        .half_open_max_calls(2)
        .on_state_change(move |_, change| {
            println!(
                "  [{:>6.3}s] breaker: {} -> {}",
                start.elapsed().as_secs_f64(),
                change.from,
                change.to
            );
        })
        .build()?;

    // The dependency: healthy until `sick` is set.
    let sick = Arc::new(AtomicBool::new(false));
    let dependency = {
        let sick = sick.clone();
        service_fn(move |item: &'static str| {
            let sick = sick.load(Ordering::Relaxed);
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if sick {
                    Err::<String, BoxError>("inventory: connection reset".into())
                } else {
                    Ok(format!("{item}: 42 in stock"))
                }
            }
        })
    };
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(dependency);

    println!("1. the dependency is healthy");
    call(&mut svc, "apples").await;

    println!("2. the dependency falls over: three failures in a row trip the breaker");
    sick.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        call(&mut svc, "apples").await;
    }

    println!("3. while open, calls are rejected at once, without touching the dependency");
    for _ in 0..2 {
        call(&mut svc, "pears").await;
    }

    println!("4. after the wait a probe goes through; the dependency is still sick, so it re-opens (wait doubled)");
    tokio::time::sleep(Duration::from_millis(400)).await;
    call(&mut svc, "plums").await;
    call(&mut svc, "plums").await;

    println!("5. the dependency recovers; after the longer wait two probes succeed and the breaker closes");
    sick.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..3 {
        call(&mut svc, "figs").await;
    }

    let snapshot = breaker.snapshot();
    println!(
        "done in {:.2}s; final state: {}",
        start.elapsed().as_secs_f64(),
        snapshot.state
    );
    Ok(())
}

async fn call<S>(svc: &mut S, item: &'static str)
where
    S: Service<&'static str, Response = String, Error = BoxError>,
{
    let started = Instant::now();
    let result = match svc.ready().await {
        Ok(ready) => ready.call(item).await,
        Err(e) => Err(e),
    };
    let took = started.elapsed();
    match result {
        Ok(body) => println!("     ok       {body}  ({took:.1?})"),
        Err(err) => match ErrorKind::of(&*err) {
            ErrorKind::CircuitOpen => {
                let retry_in = err
                    .downcast_ref::<CircuitOpen>()
                    .map(CircuitOpen::retry_in)
                    .unwrap_or_default();
                println!("     rejected {err}  ({took:.1?}; retry in {retry_in:.0?})");
            }
            _ => println!("     failed   {err}  ({took:.1?})"),
        },
    }
}
