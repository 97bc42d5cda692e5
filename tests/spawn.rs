//! Every documented stack (the crate docs, the README, the examples), with closure
//! classifiers written the obvious way, moved into `tokio::spawn` and called from an
//! axum handler. A compile test first: each test compiles only if the stack's future is
//! `Send` for rustc, which for spawned `async` blocks means proving it for every lifetime
//! of the types inside (rustc erases them), so bounds that name `BoxError` or a closure's
//! own signature trip "implementation of `From` / `FnOnce` is not general enough".

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::circuit_breaker::CircuitBreaker;
use seawall::classify::{from_fn, Outcome};
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn ok_or_failure<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

// ===== src/lib.rs: the crate docs' stack =====

fn lib_breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(3)
        .build()
        .expect("valid configuration")
}

fn lib_retry() -> Retry {
    Retry::builder()
        .max_retries(1)
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .build()
        .expect("valid configuration")
}

#[tokio::test(start_paused = true)]
async fn lib_stack_with_default_classifiers_spawns() {
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(lib_retry().layer())
        .layer(lib_breaker().layer())
        .timeout(Duration::from_secs(1))
        .service(service_fn(|ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, BoxError>(ms)
        }));
    let mut svc = svc;
    let task = tokio::spawn(async move {
        let ok = svc.ready().await?.call(5).await?;
        let timed_out = svc.ready().await?.call(5_000).await.unwrap_err();
        let open = svc.ready().await?.call(5_000).await.unwrap_err();
        Ok::<_, BoxError>((ok, ErrorKind::of(&*timed_out), ErrorKind::of(&*open)))
    });
    let (ok, timed_out, open) = task.await.unwrap().unwrap();
    assert_eq!(ok, 5);
    assert_eq!(timed_out, ErrorKind::Timeout);
    assert_eq!(open, ErrorKind::CircuitOpen);
}

#[tokio::test(start_paused = true)]
async fn lib_stack_with_annotated_closure_classifiers_spawns() {
    // The breaker sees the per-attempt timeout's `BoxError`; retry sees the breaker's.
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(
            lib_retry()
                .layer()
                .classifier(|r: &Result<u64, BoxError>| match r {
                    Ok(_) => Outcome::Success,
                    Err(_) => Outcome::Failure,
                }),
        )
        .layer(
            lib_breaker()
                .layer()
                .classifier(|r: &Result<u64, BoxError>| match r {
                    Ok(ms) if *ms >= 1_000 => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                    Err(_) => Outcome::Failure,
                }),
        )
        .timeout(Duration::from_secs(1))
        .service(service_fn(|ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, BoxError>(ms)
        }));
    let mut svc = svc;
    let task = tokio::spawn(async move { svc.ready().await?.call(5).await });
    assert_eq!(task.await.unwrap().unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn lib_stack_with_unannotated_closure_classifiers_spawns() {
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(lib_retry().layer().classifier(from_fn(|r| match r {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        })))
        .layer(lib_breaker().layer().classifier(from_fn(ok_or_failure)))
        .timeout(Duration::from_secs(1))
        .service(service_fn(|ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, BoxError>(ms)
        }));
    let mut svc = svc;
    let task = tokio::spawn(async move { svc.ready().await?.call(5).await });
    assert_eq!(task.await.unwrap().unwrap(), 5);
}

// ===== README: a circuit breaker in a tower stack =====

fn readme_breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(5)
        .failure_rate(50.0)
        .slow_call_rate(80.0)
        .slow_call_duration(Duration::from_secs(2))
        .wait_in_open(Duration::from_secs(30))
        .half_open_max_calls(3)
        .on_state_change(|_, c| eprintln!("breaker: {} -> {}", c.from, c.to))
        .build()
        .expect("valid configuration")
}

#[tokio::test(start_paused = true)]
async fn readme_breaker_stack_spawns() {
    let inventory =
        service_fn(|item: String| async move { Ok::<_, BoxError>(format!("{item}: 42")) });
    // No retry: spawned bare.
    let mut svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(readme_breaker().layer())
        .timeout(Duration::from_secs(2))
        .service(inventory);
    let task = tokio::spawn(async move { svc.ready().await?.call("apples".to_string()).await });
    assert_eq!(task.await.unwrap().unwrap(), "apples: 42");
}

#[tokio::test(start_paused = true)]
async fn readme_breaker_stack_with_closure_classifiers_spawns() {
    let inventory = service_fn(|item: String| async move {
        if item.is_empty() {
            Err::<String, BoxError>("no such item".into())
        } else {
            Ok(format!("{item}: 42"))
        }
    });
    let annotated = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(
            readme_breaker()
                .layer()
                .classifier(|r: &Result<String, BoxError>| match r {
                    Err(e) if e.to_string() == "no such item" => Outcome::Ignored,
                    Err(_) => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                }),
        )
        .timeout(Duration::from_secs(2))
        .service(inventory);
    let unannotated = ServiceBuilder::new()
        .layer(readme_breaker().layer().classifier(from_fn(|r| match r {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        })))
        .service(inventory);
    let (mut a, mut u) = (annotated, unannotated);
    let task = tokio::spawn(async move {
        let found = a.ready().await?.call("pears".to_string()).await?;
        let missing = a.ready().await?.call(String::new()).await.unwrap_err();
        let other = u.ready().await?.call("figs".to_string()).await?;
        Ok::<_, BoxError>((found, missing.to_string(), other))
    });
    let (found, missing, other) = task.await.unwrap().unwrap();
    assert_eq!(found, "pears: 42");
    assert_eq!(missing, "no such item");
    assert_eq!(other, "figs: 42");
}

// ===== README: retry, with a budget, outside the breaker =====

fn readme_retry() -> Retry {
    Retry::builder()
        .max_retries(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(500))
                .max_delay(Duration::from_secs(5))
                .jitter(Jitter::Full),
        )
        .deadline(Duration::from_secs(8))
        .budget(
            RetryBudget::builder()
                .ratio(0.2)
                .min_per_sec(10)
                .build()
                .expect("valid budget"),
        )
        .build()
        .expect("valid configuration")
}

#[tokio::test(start_paused = true)]
async fn readme_retry_stack_spawns() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(3)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(readme_retry().layer())
        .layer(breaker.layer())
        .timeout(Duration::from_secs(2))
        .service(service_fn(|n: u32| async move {
            if n.is_multiple_of(2) {
                Ok::<_, BoxError>(n)
            } else {
                Err("odd".into())
            }
        }));
    let mut svc = svc;
    let task = tokio::spawn(async move {
        let even = svc.ready().await?.call(2).await?;
        let odd = svc.ready().await?.call(3).await.unwrap_err();
        Ok::<_, BoxError>((even, ErrorKind::of(&*odd)))
    });
    let (even, odd) = task.await.unwrap().unwrap();
    assert_eq!(even, 2);
    assert_eq!(odd, ErrorKind::CircuitOpen);
}

#[tokio::test(start_paused = true)]
async fn readme_retry_stack_with_closure_classifiers_spawns() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(3)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        // "odd" is a final answer, not worth retrying.
        .layer(
            readme_retry()
                .layer()
                .classifier(|r: &Result<u32, BoxError>| match r {
                    Err(e) if e.to_string() == "odd" => Outcome::Ignored,
                    Err(_) => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                }),
        )
        .layer(
            breaker
                .layer()
                .classifier(|r: &Result<u32, BoxError>| ok_or_failure(r)),
        )
        .timeout(Duration::from_secs(2))
        .service(service_fn(|n: u32| async move {
            if n.is_multiple_of(2) {
                Ok::<_, BoxError>(n)
            } else {
                Err("odd".into())
            }
        }));
    let mut svc = svc;
    let task = tokio::spawn(async move {
        let even = svc.ready().await?.call(2).await?;
        let odd = svc.ready().await?.call(3).await.unwrap_err();
        Ok::<_, BoxError>((even, odd.to_string()))
    });
    let (even, odd) = task.await.unwrap().unwrap();
    assert_eq!(even, 2);
    assert_eq!(odd, "odd"); // not retried: one failure, the breaker still closed
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
}

// ===== examples/quickstart.rs =====

#[tokio::test(start_paused = true)]
async fn quickstart_stack_spawns() {
    let breaker = CircuitBreaker::builder()
        .name("inventory")
        .failure_threshold(3)
        .wait_in_open(Duration::from_millis(400))
        .wait_in_open_multiplier(2.0)
        .max_wait_in_open(Duration::from_secs(5))
        .half_open_max_calls(2)
        .on_state_change(|_, change| println!("breaker: {} -> {}", change.from, change.to))
        .build()
        .unwrap();
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
    let svc = ServiceBuilder::new()
        .layer(
            breaker
                .layer()
                .classifier(|r: &Result<String, BoxError>| ok_or_failure(r)),
        )
        .service(dependency);
    let mut healthy = svc.clone();
    let task = tokio::spawn(async move { healthy.ready().await?.call("apples").await });
    assert_eq!(task.await.unwrap().unwrap(), "apples: 42 in stock");

    sick.store(true, Ordering::Relaxed);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let mut svc = svc.clone();
            tokio::spawn(async move { svc.ready().await?.call("pears").await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    let mut svc = svc;
    let task = tokio::spawn(async move { svc.ready().await?.call("plums").await });
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
}

// ===== examples/retry.rs =====

#[tokio::test(start_paused = true)]
async fn retry_example_stack_spawns() {
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::exponential(Duration::from_millis(500)).jitter(Jitter::None))
        .on_retry(|event| println!("attempt {} failed", event.attempt))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    // The request is a `&'static str`: proving the retry future `Send` means proving the
    // `service_fn` closure takes `&'a str` for every `'a`.
    let svc = ServiceBuilder::new()
        .layer(
            retry
                .layer()
                .classifier(|r: &Result<String, BoxError>| ok_or_failure(r)),
        )
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
    let mut svc = svc;
    let task = tokio::spawn(async move { svc.ready().await?.call("world").await });
    assert_eq!(task.await.unwrap().unwrap(), "hello, world");
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

// ===== examples/soak.rs =====

#[tokio::test(start_paused = true)]
async fn soak_stack_spawns() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(5)
        .failure_rate(60.0)
        .count_window(50)
        .wait_in_open(Duration::from_millis(2))
        .half_open_max_calls(3)
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(1))
                .max_delay(Duration::from_millis(8))
                .jitter(Jitter::Full),
        )
        .budget(
            RetryBudget::builder()
                .ratio(0.01)
                .min_per_sec(5)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let dependency = service_fn(|(fail, yields): (bool, u8)| async move {
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if fail {
            Err::<(), BoxError>("dependency failed".into())
        } else {
            Ok(())
        }
    });
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(
            retry
                .layer()
                .classifier(|r: &Result<(), BoxError>| ok_or_failure(r)),
        )
        .layer(
            breaker
                .layer()
                .classifier(|r: &Result<(), BoxError>| ok_or_failure(r)),
        )
        .service(dependency);
    let tasks: Vec<_> = (0..4u8)
        .map(|t| {
            let mut svc = stack.clone();
            tokio::spawn(async move { svc.ready().await?.call((false, t)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

// ===== an axum handler that calls a clone of a stack =====

#[tokio::test(start_paused = true)]
async fn axum_handler_calls_a_stack_clone() {
    use axum::extract::{Path, State};
    use axum::routing::get;
    use axum::Router;

    let breaker = CircuitBreaker::builder()
        .failure_threshold(3)
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .layer(
            lib_retry()
                .layer()
                .classifier(|r: &Result<u32, BoxError>| ok_or_failure(r)),
        )
        .layer(
            breaker
                .layer()
                .classifier(|r: &Result<u32, BoxError>| ok_or_failure(r)),
        )
        .timeout(Duration::from_secs(1))
        .service(service_fn(|n: u32| async move { Ok::<_, BoxError>(n * 2) }));

    // A handler future that uses the stack: spawned like a server spawns it.
    let mut clone = stack.clone();
    let handler = tokio::spawn(async move {
        let answer = clone.ready().await?.call(21).await?;
        Ok::<_, BoxError>(format!("{answer}"))
    });
    assert_eq!(handler.await.unwrap().unwrap(), "42");

    // The same through a real `Router`: the stack in its state, a clone per request.
    async fn double<S>(State(mut svc): State<S>, Path(n): Path<u32>) -> String
    where
        S: Service<u32, Response = u32, Error = BoxError>,
    {
        let answer = match svc.ready().await {
            Ok(ready) => ready.call(n).await,
            Err(e) => Err(e),
        };
        answer.map_or_else(|e| format!("error: {e}"), |n| n.to_string())
    }
    fn router<S>(stack: S) -> Router
    where
        S: Service<u32, Response = u32, Error = BoxError> + Clone + Send + Sync + 'static,
        S::Future: Send,
    {
        Router::new()
            .route("/double/{n}", get(double::<S>))
            .with_state(stack)
    }
    let app = router(stack);
    let request = axum::http::Request::get("/double/21")
        .body(axum::body::Body::empty())
        .unwrap();
    let served = tokio::spawn(app.oneshot(request));
    let response = served.await.unwrap().unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"42");
}

/// The http module's documented stack (every part written out) and `StandardClientLayer`,
/// over an upstream that answers 503 once: spawned, and retried from the spawned task.
#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn http_stacks_spawn() {
    use bytes::Bytes;
    use http_body_util::Full;
    use seawall::http::{
        HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, ReplayBody, ReplayBodyLayer,
        StandardClientLayer,
    };

    fn upstream(
        calls: Arc<AtomicU32>,
    ) -> impl Service<
        http::Request<ReplayBody<Full<Bytes>>>,
        Response = http::Response<()>,
        Error = BoxError,
        Future = impl std::future::Future<Output = Result<http::Response<()>, BoxError>> + Send,
    > + Clone
           + Send
           + Sync
           + 'static {
        service_fn(move |_: http::Request<ReplayBody<Full<Bytes>>>| {
            let status = match calls.fetch_add(1, Ordering::Relaxed) {
                0 => http::StatusCode::SERVICE_UNAVAILABLE,
                _ => http::StatusCode::OK,
            };
            async move { Ok(http::Response::builder().status(status).body(()).unwrap()) }
        })
    }
    let request = || {
        http::Request::put("http://127.0.0.1/item/7")
            .body(Full::new(Bytes::from_static(b"v2")))
            .unwrap()
    };

    let calls = Arc::new(AtomicU32::new(0));
    let written_out = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .layer(ReplayBodyLayer::new(64 * 1024))
        .layer(
            Retry::default()
                .layer()
                .classifier(HttpRetryClassifier::default())
                .clone_request(HttpRequests::default()),
        )
        .layer(
            CircuitBreaker::default()
                .layer()
                .classifier(HttpBreakerClassifier::default()),
        )
        .timeout(Duration::from_secs(10))
        .service(upstream(calls.clone()));
    let response = tokio::spawn(written_out.oneshot(request()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(calls.load(Ordering::Relaxed), 2);

    let calls = Arc::new(AtomicU32::new(0));
    let standard = ServiceBuilder::new()
        .layer(StandardClientLayer::new())
        .service(upstream(calls.clone()));
    let response = tokio::spawn(standard.oneshot(request()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}
