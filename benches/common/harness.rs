//! What the success-path benches share (`retry`, `bulkhead`, `throttle`): a bare service,
//! one call polled in place, calls awaited in a task, and two threads calling at once.
//! Included by `#[path]`, as `tests/common/alloc.rs` is.
#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use seawall::BoxError;
use tower::{service_fn, Service, ServiceExt};

/// A service that answers at once, for the benches' baseline.
pub fn bare() -> impl Service<u64, Response = u64, Error = BoxError> + Clone + Send {
    service_fn(|x: u64| std::future::ready(Ok::<u64, BoxError>(x.wrapping_add(1))))
}

/// One call: `poll_ready` and the response future, each polled once in place.
#[inline(always)]
pub fn one_call<S: Service<u64, Response = u64>>(svc: &mut S, x: u64) -> u64 {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let _ = svc.poll_ready(&mut cx);
    let future = pin!(svc.call(x));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(v)) => v,
        _ => 0,
    }
}

/// `iters` calls awaited one after the other in one task, as an application makes them.
pub fn async_loop<S>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let svc = match svc.ready().await {
                Ok(svc) => svc,
                Err(_) => continue,
            };
            let _ = black_box(svc.call(black_box(i)).await.ok());
        }
        start.elapsed()
    })
}

/// Runs `iters` calls on each of two threads at once (clones of `svc`); returns the slower
/// thread's time.
pub fn two_threads<S>(svc: S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64> + Clone + Send + 'static,
{
    let start = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut svc = svc.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                for i in 0..iters {
                    black_box(one_call(&mut svc, i));
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
