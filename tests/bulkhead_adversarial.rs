//! The bulkhead under an adversary: many threads with cancellations, cancellation at every
//! poll of a wait, panics, readiness, and tower's readiness contract.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::poll;
use seawall::bulkhead::{Bulkhead, Event};
use seawall::ErrorKind;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);

fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

/// An inner service that counts calls in flight and records the most seen.
#[derive(Clone)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Gauge {
    fn new() -> Self {
        Gauge {
            now: Arc::default(),
            max: Arc::default(),
        }
    }
}

impl Service<u64> for Gauge {
    type Response = ();
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, micros: u64) -> Self::Future {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let now = self.now.clone();
        Box::pin(async move {
            struct Dec(Arc<AtomicUsize>);
            impl Drop for Dec {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _d = Dec(now);
            tokio::time::sleep(Duration::from_micros(micros)).await;
            Ok(())
        })
    }
}

/// 400 tasks on 8 workers through clones of one layered service, half cancelled by a short
/// timeout at arbitrary points (while waiting or while running): never more than 5 in flight,
/// and every slot back at the end.
#[test]
fn multi_thread_stress_with_cancellation_never_exceeds_the_bound() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let bulkhead = Bulkhead::builder()
        .max_concurrent(5)
        .max_wait(Duration::from_millis(20))
        .build()
        .unwrap();
    let gauge = Gauge::new();
    let svc = ServiceBuilder::new()
        .layer(bulkhead.layer())
        .service(gauge.clone());
    let (ok, full) = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..400u64 {
            let mut svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                let call = async {
                    svc.ready().await.unwrap();
                    svc.call(200 + (i * 37) % 900).await
                };
                if i % 2 == 0 {
                    tokio::time::timeout(Duration::from_micros(50 + (i * 13) % 700), call)
                        .await
                        .ok()
                } else {
                    Some(call.await)
                }
            }));
        }
        let (mut ok, mut full) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Some(Ok(())) => ok += 1,
                Some(Err(e)) => {
                    assert_eq!(ErrorKind::of(&*e), ErrorKind::BulkheadFull);
                    full += 1
                }
                None => {}
            }
        }
        (ok, full)
    });
    assert!(gauge.max.load(Ordering::SeqCst) <= 5);
    assert!(ok > 0);
    let _ = full;
    let s = bulkhead.snapshot();
    assert_eq!((s.available, s.in_flight, s.waiting), (5, 0, 0));
}

/// A waiting call cancelled after exactly k polls, for every k, with the held slot freed at
/// various points (before, at, after the cancellation): no slot is ever lost or duplicated.
#[tokio::test(start_paused = true)]
async fn cancellation_at_every_poll_of_a_wait_loses_no_slot() {
    for k in 0..12usize {
        for release_at in 0..12usize {
            let bulkhead = Bulkhead::builder()
                .max_concurrent(2)
                .max_wait(Duration::from_millis(8))
                .build()
                .unwrap();
            let mut held = vec![
                bulkhead.try_acquire().unwrap(),
                bulkhead.try_acquire().unwrap(),
            ];
            let gauge = Gauge::new();
            let mut svc = ServiceBuilder::new()
                .layer(bulkhead.layer())
                .service(gauge.clone());
            svc.ready().await.unwrap();
            let mut fut = Box::pin(svc.call(3_000));
            for j in 0..k {
                if j == release_at {
                    held.pop();
                }
                if poll!(fut.as_mut()).is_ready() {
                    break;
                }
                assert!(gauge.max.load(Ordering::SeqCst) + held.len() <= 2);
                tokio::time::advance(MS).await;
            }
            drop(fut);
            drop(held);
            let s = bulkhead.snapshot();
            assert_eq!(
                (s.available, s.waiting),
                (2, 0),
                "k={k} release_at={release_at}"
            );
        }
    }
}

/// A panicking inner `call` (at once, and after a wait), a panicking inner future, and a
/// panicking listener on admission: every slot comes back.
#[tokio::test(start_paused = true)]
async fn panics_give_every_slot_back() {
    // Inner call panics.
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .max_wait(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(bulkhead.layer())
        .service(service_fn(|x: u32| {
            if x == 0 {
                panic!("inner call");
            }
            async move {
                if x == 1 {
                    panic!("inner future");
                }
                Ok::<_, Infallible>(x)
            }
        }));
    svc.ready().await.unwrap();
    assert!(catch(|| drop(svc.call(0))).is_err());
    assert_eq!(bulkhead.snapshot().available, 1);
    // Inner future panics.
    svc.ready().await.unwrap();
    let h = tokio::spawn(svc.call(1));
    assert!(h.await.is_err());
    assert_eq!(bulkhead.snapshot().available, 1);
    // Inner call panics after a wait.
    let held = bulkhead.try_acquire().unwrap();
    svc.ready().await.unwrap();
    let h = tokio::spawn(svc.call(0));
    tokio::time::advance(10 * MS).await;
    drop(held);
    assert!(h.await.is_err());
    assert_eq!(bulkhead.snapshot().available, 1);

    // Listener panics on admission, at once and after a wait.
    let panicking = Bulkhead::builder()
        .max_concurrent(1)
        .max_wait(Duration::from_millis(50))
        .listener(|_: &Bulkhead, e: &Event| {
            if let Event::Admitted { .. } = e {
                panic!("listener")
            }
        })
        .build()
        .unwrap();
    assert!(catch(|| panicking.try_acquire()).is_err());
    assert_eq!(panicking.snapshot().available, 1);
    let p2 = panicking.clone();
    let mut svc = ServiceBuilder::new()
        .layer(panicking.layer())
        .service(service_fn(|x: u32| async move { Ok::<_, Infallible>(x) }));
    svc.ready().await.unwrap();
    assert!(catch(|| drop(svc.call(3))).is_err());
    assert_eq!(p2.snapshot().available, 1);
}

/// An inner service whose `poll_ready` stays pending: no slot is taken by readiness.
#[tokio::test(start_paused = true)]
async fn a_pending_inner_poll_ready_takes_no_slot() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    handle.allow(0);
    let mut svc = ServiceBuilder::new().layer(bulkhead.layer()).service(mock);
    assert!(poll!(svc.ready()).is_pending());
    assert_eq!(bulkhead.snapshot().in_flight, 0);
    assert!(bulkhead.try_acquire().is_ok());
}

/// tower_test's mock panics when called unready: the wait path hands the readied service to
/// the waiting future and never calls the clone left behind.
#[tokio::test(start_paused = true)]
async fn the_wait_path_calls_only_a_ready_mock() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .max_wait(Duration::from_millis(100))
        .build()
        .unwrap();
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let mut svc = ServiceBuilder::new().layer(bulkhead.layer()).service(mock);
    let mut calls = Vec::new();
    for i in 0..3 {
        svc.ready().await.unwrap();
        calls.push(tokio::spawn(svc.call(i)));
    }
    for _ in 0..3 {
        let (r, send) = handle.next_request().await.unwrap();
        tokio::time::advance(10 * MS).await;
        send.send_response(r);
    }
    for c in calls {
        assert!(c.await.unwrap().is_ok());
    }
    assert_eq!(bulkhead.snapshot().available, 1);
}
