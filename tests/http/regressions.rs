//! Regressions found by an adversarial review of the `http` feature: the standard stack's
//! total timeout bounds retry's waits, a retried response is released before the wait, a
//! POST whose connection was refused is retried, a 501 route does not open the circuit, a
//! huge `Retry-After` is answered without overflow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::Method;
use seawall::circuit_breaker::CircuitBreaker;
use seawall::http::StandardClientLayer;
use seawall::retry::{GiveUpReason, RetryAfterTooLong};
use seawall::ErrorKind;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::support::*;

/// Finding 2: the standard stack's overall timeout is not the retry's deadline. A 503 with
/// `Retry-After: 5` under a 1 s total timeout should end at once with `RetryAfterTooLong`
/// (issue 12 §3: "what is left of the deadline"); instead the stack sleeps on the server's
/// wish until tower's outer `Timeout` fires, and the caller gets a plain timeout.
#[tokio::test]
async fn standard_stack_gives_up_at_once_on_a_retry_after_past_its_total_timeout() {
    bounded(async {
        let server =
            recording_server(|_, _| async { response(503, &[("retry-after", "5")]) }).await;
        let svc = stack(StandardClientLayer::new().total_timeout(Duration::from_secs(1)));
        let start = Instant::now();
        let err = svc
            .oneshot(request(Method::GET, &server.url("/x"), "a", empty()))
            .await
            .expect_err("503 with a Retry-After past the total timeout");
        let took = start.elapsed();
        assert_eq!(server.count(), 1);
        assert!(
            chain_has::<RetryAfterTooLong>(&*err),
            "got {:?} ({:?}) after {took:?}",
            crate::common::chain(&*err),
            ErrorKind::of(&*err)
        );
        assert!(took < Duration::from_millis(500), "gave up after {took:?}");
    })
    .await;
}

/// Finding 3: a retried response is held, with its body and its connection, through the
/// whole backoff / `Retry-After` wait; it is dropped only when the next attempt starts. A
/// 503 whose body streams slowly keeps its connection (and the server's stream) open for
/// the full second the server asked the client to stay away.
#[tokio::test]
async fn a_retried_response_is_released_before_the_wait() {
    bounded(async {
        let dropped_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let sent_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        struct OnDrop(Arc<Mutex<Option<Instant>>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(Instant::now());
            }
        }
        let (d, s, c) = (dropped_at.clone(), sent_at.clone(), calls.clone());
        let server = recording_server(move |_, _| {
            let (d, s, c) = (d.clone(), s.clone(), c.clone());
            async move {
                if c.fetch_add(1, Ordering::SeqCst) > 0 {
                    return response(200, &[]);
                }
                *s.lock().unwrap() = Some(Instant::now());
                // A body that streams a chunk every 50 ms for 10 s; its drop is recorded.
                let guard = OnDrop(d);
                let stream = futures::stream::unfold((0u32, guard), |(i, g)| async move {
                    if i >= 200 {
                        return None;
                    }
                    tokio::time::sleep(ms(50)).await;
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")),
                        (i + 1, g),
                    ))
                });
                http::Response::builder()
                    .status(503)
                    .header("retry-after", "1")
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
        })
        .await;
        let svc = stack(StandardClientLayer::new());
        let response = svc
            .oneshot(request(Method::GET, &server.url("/x"), "a", empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let held = dropped_at.lock().unwrap().unwrap() - sent_at.lock().unwrap().unwrap();
        assert!(
            held < ms(500),
            "the 503's body and connection were held {held:?} (through the 1 s wait)"
        );
    })
    .await;
}

/// Finding 4: a POST whose connection was refused was never sent, so sending it is safe
/// (gRPC A6 "transparent retry", Finagle's WriteException requeue, hyper-util's own
/// `retry_canceled_requests`); seawall gives up at once with `NotIdempotent`.
#[tokio::test]
async fn a_post_whose_connection_was_refused_is_retried() {
    bounded(async {
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(2).listener(listener).build().unwrap()),
        );
        let _ = svc
            .oneshot(request(
                Method::POST,
                &format!("http://{addr}/orders"),
                "p",
                full("order"),
            ))
            .await
            .expect_err("refused");
        let ev = events(&log);
        assert!(
            !ev.iter().any(|e| matches!(
                e,
                RetryEv::GiveUp {
                    reason: GiveUpReason::NotIdempotent,
                    ..
                }
            )),
            "{ev:?}"
        );
    })
    .await;
}

/// Finding 6: with the default breaker classifier, 501 Not Implemented (a property of the
/// route, not of the server's health) trips the circuit for every route of the host.
#[tokio::test]
async fn a_501_route_does_not_open_the_circuit_for_healthy_routes() {
    bounded(async {
        let server = recording_server(|seen, _| async move {
            response(if seen.path == "/new-api" { 501 } else { 200 }, &[])
        })
        .await;
        let breaker = CircuitBreaker::builder()
            .failure_threshold(3)
            .build()
            .unwrap();
        let svc = stack(StandardClientLayer::new().breaker(breaker));
        for i in 0..3 {
            let r = svc
                .clone()
                .oneshot(request(
                    Method::GET,
                    &server.url("/new-api"),
                    &i.to_string(),
                    empty(),
                ))
                .await
                .unwrap();
            assert_eq!(r.status(), 501);
        }
        let healthy = svc
            .oneshot(request(Method::GET, &server.url("/items"), "h", empty()))
            .await;
        assert!(
            healthy.is_ok(),
            "a healthy route was refused: {:?}",
            healthy.err().map(|e| ErrorKind::of(&*e))
        );
    })
    .await;
}

/// Finding 9: `rejection_response` rounds a `Retry-After` up with an unchecked add: a
/// `RetryAfterTooLong` of `Duration::MAX` (public constructor) overflows (a panic in debug
/// builds; in release it wraps to 0 and is answered `Retry-After: 1`).
#[test]
fn a_huge_retry_after_is_answered_without_overflow() {
    let err = RetryAfterTooLong::new(Duration::MAX, Duration::from_secs(30), None);
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        seawall::http::rejection_response::<String>(&err)
            .headers()
            .get("retry-after")
            .cloned()
    }));
    let value = answer.expect("no panic").expect("a Retry-After");
    assert_ne!(value, "1");
}
