//! Refusing at once, waiting then admitting, waiting then refusing; cancellation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::poll;
use seawall::rate_limit::{Event, RateLimited, RateLimiter};
use seawall::BoxError;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);

/// 10 per second (one slot every 100 ms), no burst, waiting up to `max_wait`.
fn limiter(max_wait: Duration, events: &Arc<Mutex<Vec<Event>>>) -> RateLimiter {
    let events = events.clone();
    RateLimiter::builder()
        .rate(10)
        .burst(1)
        .max_wait(max_wait)
        .listener(move |e: &Event| events.lock().unwrap().push(*e))
        .build()
        .unwrap()
}

/// A service that records when (since `start`) it was called.
fn recording(
    start: Instant,
    called_at: Arc<Mutex<Vec<Duration>>>,
) -> impl Service<u32, Response = u32, Error = BoxError, Future = impl Send> + Clone {
    service_fn(move |x: u32| {
        called_at.lock().unwrap().push(start.elapsed());
        async move { Ok::<_, BoxError>(x) }
    })
}

#[tokio::test(start_paused = true)]
async fn without_a_wait_a_call_over_the_limit_is_refused_at_once() {
    let events = Arc::default();
    let limiter = limiter(Duration::ZERO, &events);
    let start = Instant::now();
    let called = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(recording(start, Arc::clone(&called)));
    svc.clone().oneshot(1).await.unwrap();
    let err = svc.oneshot(2).await.unwrap_err();
    assert_eq!(
        *err.downcast_ref::<RateLimited>().unwrap(),
        RateLimited::new(100 * MS)
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(*called.lock().unwrap(), [Duration::ZERO]);
    assert_eq!(
        *events.lock().unwrap(),
        [Event::RateLimited(RateLimited::new(100 * MS))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_slot_frees_in_time_waits_then_is_admitted() {
    let events = Arc::default();
    let limiter = limiter(150 * MS, &events);
    let start = Instant::now();
    let called = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(recording(start, Arc::clone(&called)));
    svc.clone().oneshot(1).await.unwrap();
    tokio::time::advance(30 * MS).await;
    assert_eq!(svc.oneshot(2).await.unwrap(), 2);
    // Called exactly when the slot freed, not before.
    assert_eq!(*called.lock().unwrap(), [Duration::ZERO, 100 * MS]);
    assert_eq!(*events.lock().unwrap(), [Event::Delayed(70 * MS)]);
}

#[tokio::test(start_paused = true)]
async fn a_slot_beyond_the_wait_is_refused_at_once() {
    let events = Arc::default();
    let limiter = limiter(50 * MS, &events);
    let start = Instant::now();
    assert!(limiter.check().is_ok());
    assert_eq!(limiter.acquire().await, Err(RateLimited::new(100 * MS)));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no time spent waiting in vain"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_overtaken_is_refused_when_the_next_slot_is_past_its_wait() {
    let events = Arc::default();
    let limiter = limiter(150 * MS, &events);
    let start = Instant::now();
    let called = Arc::default();
    let mut svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(recording(start, Arc::clone(&called)));
    svc.ready().await.unwrap().call(1).await.unwrap();
    let mut waiting = Box::pin(svc.ready().await.unwrap().call(2));
    assert!(poll!(&mut waiting).is_pending());
    tokio::time::advance(100 * MS).await;
    // Another caller takes the slot before the waiting call checks again.
    assert!(limiter.check().is_ok());
    let err = waiting.await.unwrap_err();
    // The next slot frees at 200 ms, past the wait's end at 150 ms.
    assert_eq!(
        *err.downcast_ref::<RateLimited>().unwrap(),
        RateLimited::new(100 * MS)
    );
    assert_eq!(*called.lock().unwrap(), [Duration::ZERO]);
    assert_eq!(
        *events.lock().unwrap(),
        [
            Event::Delayed(100 * MS),
            Event::RateLimited(RateLimited::new(100 * MS))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_overtaken_waits_again_if_the_next_slot_is_in_time() {
    let events = Arc::default();
    let limiter = limiter(250 * MS, &events);
    let start = Instant::now();
    assert!(limiter.check().is_ok());
    let mut waiter = Box::pin(async { limiter.acquire().await.map(|()| start.elapsed()) });
    assert!(poll!(&mut waiter).is_pending()); // sleeps until 100 ms
    tokio::time::advance(100 * MS).await;
    assert!(limiter.check().is_ok()); // overtaken at 100 ms
    assert_eq!(waiter.await, Ok(200 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_dropped_takes_no_slot() {
    let events = Arc::default();
    let limiter = limiter(150 * MS, &events);
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(service_fn(move |_: ()| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        }));
    svc.ready().await.unwrap().call(()).await.unwrap();
    let mut waiting = Box::pin(svc.ready().await.unwrap().call(()));
    assert!(poll!(&mut waiting).is_pending());
    drop(waiting);
    tokio::time::advance(100 * MS).await;
    assert!(limiter.check().is_ok(), "the slot at 100 ms is still free");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn many_waiters_are_admitted_one_per_slot_and_none_waits_past_max_wait() {
    let events = Arc::default();
    let limiter = limiter(350 * MS, &events);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let limiter = limiter.clone();
        tasks.push(tokio::spawn(async move {
            limiter.acquire().await.map(|()| start.elapsed())
        }));
    }
    let mut admitted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(at) => admitted.push(at),
            Err(_) => refused += 1,
        }
    }
    admitted.sort();
    // Slots at 0, 100, 200 and 300 ms; the other two could not be served within 350 ms.
    assert_eq!(admitted, [Duration::ZERO, 100 * MS, 200 * MS, 300 * MS]);
    assert_eq!(refused, 2);
    assert!(start.elapsed() <= 350 * MS);
}
