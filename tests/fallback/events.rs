//! The fallback's events: a listener hears `Used` each time the fallback answers and
//! `Failed` each time the fallback itself fails (its call or its readiness), with the kind of
//! the error answered; nothing on a success, an unselected error or an uncopied request; the
//! layer and the bare call alike; `on_fallback` closures hear only `Used`.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::circuit_breaker::CircuitOpen;
use seawall::fallback::{fallback_fn, Event, Fallback, FallbackLayer};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Layer, Service, ServiceExt};

/// What a listener heard, in order: `("used" | "failed", kind, error text)`.
type Log = Arc<Mutex<Vec<(&'static str, ErrorKind, String)>>>;

fn listener() -> (Log, impl Fn(&Event<'_>) + Send + Sync + 'static) {
    let log = Log::default();
    let heard = log.clone();
    (log, move |event: &Event<'_>| {
        let entry = match event {
            Event::Used(u) => ("used", u.kind(), u.error().to_string()),
            Event::Failed(f) => ("failed", f.kind(), f.error().to_string()),
            other => panic!("an event this test does not know: {other:?}"),
        };
        heard.lock().unwrap().push(entry);
    })
}

fn taken(log: &Log) -> Vec<(&'static str, ErrorKind, String)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// The inner service: `0` succeeds, `1` fails with an open circuit, `2` with its own error.
async fn inner(request: u32) -> Result<String, BoxError> {
    match request {
        0 => Ok("served".into()),
        1 => Err(CircuitOpen::new(Duration::from_secs(1)).into()),
        _ => Err("bad request".into()),
    }
}

/// The fallback: answers request `1`, fails for any other.
async fn answer(request: u32, _: BoxError) -> Result<String, BoxError> {
    match request {
        1 => Ok("cached".into()),
        _ => Err("cache down".into()),
    }
}

fn used(kind: ErrorKind, error: &str) -> (&'static str, ErrorKind, String) {
    ("used", kind, error.into())
}

fn failed(kind: ErrorKind, error: &str) -> (&'static str, ErrorKind, String) {
    ("failed", kind, error.into())
}

#[tokio::test(start_paused = true)]
async fn the_listener_hears_used_when_the_fallback_answers_and_nothing_else_otherwise() {
    let (log, l) = listener();
    let svc = FallbackLayer::new(fallback_fn(answer))
        .listener(l)
        .layer(service_fn(inner));
    assert_eq!(svc.clone().oneshot(0).await.unwrap(), "served");
    assert_eq!(taken(&log), [], "a success emits nothing");
    assert_eq!(
        svc.clone().oneshot(2).await.unwrap_err().to_string(),
        "bad request"
    );
    assert_eq!(taken(&log), [], "an unselected error emits nothing");
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), "cached");
    assert_eq!(
        taken(&log),
        [used(
            ErrorKind::CircuitOpen,
            "circuit open; next probe in 1s"
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_fallback_is_heard_as_used_then_failed_with_the_first_errors_kind() {
    let (log, l) = listener();
    let svc = FallbackLayer::new(fallback_fn(answer))
        .on_any_error()
        .listener(l)
        .layer(service_fn(inner));
    let err = svc.oneshot(2).await.unwrap_err();
    assert_eq!(err.to_string(), "cache down");
    assert_eq!(
        taken(&log),
        [
            used(ErrorKind::Inner, "bad request"),
            failed(ErrorKind::Inner, "cache down"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fallback_that_is_never_ready_is_heard_as_failed() {
    #[derive(Clone)]
    struct Closed;
    impl Service<(u32, BoxError)> for Closed {
        type Response = String;
        type Error = BoxError;
        type Future = std::future::Ready<Result<String, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Err("fallback closed".into()))
        }
        fn call(&mut self, _: (u32, BoxError)) -> Self::Future {
            unreachable!("never ready")
        }
    }
    let (log, l) = listener();
    let svc = FallbackLayer::new(Closed)
        .listener(l)
        .layer(service_fn(inner));
    let err = svc.oneshot(1).await.unwrap_err();
    assert_eq!(err.to_string(), "fallback closed");
    let heard = taken(&log);
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert_eq!(heard[1], failed(ErrorKind::CircuitOpen, "fallback closed"));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_was_not_copied_emits_nothing() {
    let (log, l) = listener();
    let svc = FallbackLayer::new(fallback_fn(answer))
        .clone_request(|_: &u32| None)
        .listener(l)
        .layer(service_fn(inner));
    let err = svc.oneshot(1).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
    assert_eq!(taken(&log), [], "the fallback did not answer");
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_emits_what_the_layer_emits() {
    for request in [0, 1, 2] {
        let (layer_log, l) = listener();
        let svc = FallbackLayer::new(fallback_fn(answer))
            .on_any_error()
            .listener(l)
            .layer(service_fn(inner));
        let by_layer = svc.oneshot(request).await.map_err(|e| e.to_string());

        let (bare_log, l) = listener();
        let fallback = Fallback::new().on_any_error().listener(l);
        let by_bare = fallback
            .call(|| inner(request), |err| answer(request, err))
            .await
            .map_err(|e| e.to_string());

        assert_eq!(by_layer, by_bare, "request {request}");
        assert_eq!(taken(&layer_log), taken(&bare_log), "request {request}");
    }
}

#[tokio::test(start_paused = true)]
async fn on_fallback_closures_hear_only_the_answers_and_listeners_run_in_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let svc = FallbackLayer::new(fallback_fn(answer))
        .on_any_error()
        .on_fallback(move |e| o1.lock().unwrap().push(("on_fallback", e.kind())))
        .listener(move |e: &Event<'_>| {
            let name = match e {
                Event::Used(_) => "listener used",
                _ => "listener failed",
            };
            o2.lock().unwrap().push((name, ErrorKind::Inner));
        })
        .layer(service_fn(inner));
    svc.oneshot(2).await.unwrap_err();
    assert_eq!(
        *order.lock().unwrap(),
        [
            ("on_fallback", ErrorKind::Inner),
            ("listener used", ErrorKind::Inner),
            ("listener failed", ErrorKind::Inner),
        ]
    );
}

#[test]
fn a_named_fallback_shows_its_name() {
    let fallback = Fallback::new().name("orders");
    assert!(
        format!("{fallback:?}").contains("\"orders\""),
        "{fallback:?}"
    );
    let layer = FallbackLayer::new(fallback_fn(answer)).name("orders");
    assert!(format!("{layer:?}").contains("\"orders\""), "{layer:?}");
}
