//! Queue for later: while the payment dependency is down and its circuit breaker is open, a
//! fallback puts each order into a bounded in-process queue and answers "queued"; a worker
//! drains the queue through the same breaker once the dependency is back.
//!
//! The payment service is down for the first 500 ms. Orders arrive every 60 ms. The first
//! failures trip the breaker; from then on the fallback answers, until the queue (4 orders)
//! is full, when the fallback itself fails with a clear error. The worker waits out the
//! breaker's open period (the `CircuitOpen` says how long), its call is the probe that
//! closes the breaker, and it pays the queued orders. Runs in about a second, on the real
//! clock, and exits by itself.
//!
//! Run: `cargo run --example orders`.

use std::fmt;
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, CircuitOpen};
use seawall::fallback::{fallback_fn, FallbackLayer};
use seawall::{BoxError, ErrorKind};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

const ORDERS: u32 = 14;
const QUEUE: usize = 4;
const DOWN_FOR: Duration = Duration::from_millis(500);
/// How often the worker tries one order before giving it up (keeps the example bounded).
const WORKER_ATTEMPTS: u32 = 20;

#[derive(Debug, Clone)]
struct Order {
    id: u32,
    cents: u64,
}

/// The fallback's own failure: the queue for later is full.
#[derive(Debug)]
struct QueueFull;

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payments are down and the order queue is full ({QUEUE}); try again later"
        )
    }
}

impl std::error::Error for QueueFull {}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();
    let ms = move || start.elapsed().as_millis();

    // The dependency: down for a while, then back.
    let payment = service_fn(move |order: Order| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if start.elapsed() < DOWN_FOR {
            Err::<String, BoxError>("payment gateway unavailable".into())
        } else {
            Ok(format!("paid #{} ({} cents)", order.id, order.cents))
        }
    });

    let breaker = CircuitBreaker::builder()
        .failure_threshold(2)
        .wait_in_open(Duration::from_millis(200))
        .half_open_max_calls(1)
        .on_state_change(move |_, change| println!("{:>4} ms  breaker: {change:?}", ms()))
        .build()?;

    // The queue for later, bounded: the fallback never waits for room.
    let (queue, mut queued) = mpsc::channel::<Order>(QUEUE);
    let to_queue = fallback_fn(move |order: Order, err: BoxError| {
        let queue = queue.clone();
        async move {
            let id = order.id;
            queue.try_send(order).map_err(|_| QueueFull)?;
            Ok::<_, BoxError>(format!("queued #{id} ({})", ErrorKind::of(&*err)))
        }
    });

    // The worker: pays queued orders through the same breaker (one circuit), waiting out
    // its open period; its first call after the wait is the probe that closes it.
    let mut worker_svc = breaker.layer().layer(payment);
    let worker = tokio::spawn(async move {
        let mut paid = 0;
        while let Some(order) = queued.recv().await {
            for attempt in 1..=WORKER_ATTEMPTS {
                let result = match worker_svc.ready().await {
                    Ok(svc) => svc.call(order.clone()).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(receipt) => {
                        println!("{:>4} ms  worker: {receipt}", ms());
                        paid += 1;
                        break;
                    }
                    Err(e) => {
                        let wait = e
                            .downcast_ref::<CircuitOpen>()
                            .map_or(Duration::from_millis(100), |open| open.retry_in());
                        println!(
                            "{:>4} ms  worker: #{} not yet (attempt {attempt}: {e}); waiting {wait:?}",
                            ms(),
                            order.id
                        );
                        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                    }
                }
            }
        }
        paid
    });

    // The shop: answers every customer at once, paid, queued, or refused.
    let mut shop = ServiceBuilder::new()
        .layer(FallbackLayer::new(to_queue).on(ErrorKind::CircuitOpen))
        .layer(breaker.layer())
        .service(payment);
    for id in 1..=ORDERS {
        let order = Order {
            id,
            cents: 1_000 + u64::from(id),
        };
        match shop.ready().await?.call(order).await {
            Ok(answer) => println!("{:>4} ms  order #{id}: {answer}", ms()),
            Err(e) => println!("{:>4} ms  order #{id}: failed: {e}", ms()),
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // The shop's fallback holds the queue's last sender: dropping it lets the worker finish.
    drop(shop);

    let paid = tokio::time::timeout(Duration::from_secs(10), worker).await??;
    println!(
        "{:>4} ms  done: the worker paid {paid} queued orders; breaker {:?}",
        ms(),
        breaker.state()
    );
    Ok(())
}
