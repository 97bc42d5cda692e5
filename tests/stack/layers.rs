//! A whole stack: the three tests the error model must pass (its contract in seawall's design), with
//! seawall's layers and tower's own middleware side by side.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, CircuitOpen, State};
use seawall::retry::{Backoff, Retry};
use seawall::{BoxError, ErrorKind, Outcome};
use tower::util::BoxCloneService;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn retry(max_retries: u32) -> Retry {
    Retry::builder()
        .max_retries(max_retries)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .no_budget()
        .build()
        .unwrap()
}

fn breaker(threshold: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(threshold)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// An inner service that fails with an `io::Error` while `failing` says so, counting calls.
fn flaky(
    calls: Arc<AtomicU32>,
    failing: Arc<AtomicU32>,
) -> impl Service<
    u32,
    Response = u32,
    Error = io::Error,
    Future = impl std::future::Future<Output = Result<u32, io::Error>> + Send,
> + Clone
       + Send {
    service_fn(move |x: u32| {
        calls.fetch_add(1, Ordering::Relaxed);
        let fail = failing.load(Ordering::Relaxed) != 0;
        async move {
            if fail {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            } else {
                Ok(x)
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn three_seawall_layers_have_one_error_type_not_nested_ones() {
    let (calls, failing) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(1)));
    let outer = breaker(100);
    let inner = breaker(2);
    // The annotation is the test: `BoxError`, not `Error<Error<Error<io::Error>>>`.
    let mut svc: BoxCloneService<u32, u32, BoxError> = ServiceBuilder::new()
        .layer(outer.layer())
        .layer(retry(3).layer())
        .layer(inner.layer())
        .service(flaky(calls.clone(), failing.clone()))
        .boxed_clone();
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    // Two failed attempts opened the inner breaker; its rejection was not retried.
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(inner.state(), State::Open);
    // The outer breaker saw one failure: the rejection. The inner service's own errors were
    // boxed once, not wrapped per layer.
    assert!(err.downcast_ref::<CircuitOpen>().is_some());
}

#[tokio::test(start_paused = true)]
async fn towers_buffer_load_shed_and_timeout_compose_unchanged() {
    let (calls, failing) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(1)));
    let breaker = breaker(1);
    let mut svc = ServiceBuilder::new()
        .buffer(16)
        .load_shed()
        .timeout(Duration::from_secs(5))
        .layer(retry(0).layer())
        .layer(breaker.layer())
        .concurrency_limit(4)
        .service(flaky(calls.clone(), failing.clone()));
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
    assert!(err.downcast_ref::<io::Error>().is_some(), "{err:?}");
    // Open now: through Buffer, LoadShed and Timeout the rejection keeps its type and kind.
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert!(err.downcast_ref::<CircuitOpen>().is_some(), "{err:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn an_outer_timeout_is_a_timeout_through_the_stack() {
    let breaker = breaker(5);
    let mut svc = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .layer(retry(3).layer())
        .layer(breaker.layer())
        .service(service_fn(|_: u32| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<u32, io::Error>(0)
        }));
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    // The cut attempt was cancelled: it recorded nothing.
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn classifiers_see_the_inner_services_concrete_error_before_boxing() {
    let (calls, failing) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(1)));
    let breaker = breaker(1);
    // A connection reset says nothing about this breaker's dependency here: ignored. Only
    // possible because the classifier gets the `io::Error` itself, not a `BoxError`.
    let ignore_resets = |r: &Result<u32, io::Error>| match r {
        Ok(_) => Outcome::Success,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer().classifier(ignore_resets))
        .service(flaky(calls.clone(), failing.clone()));
    for _ in 0..3 {
        let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}
