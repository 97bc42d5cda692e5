//! Regressions found by an adversarial review of the http and grpc features and the retry
//! changes under them: a streaming probe, a reply without a status, replay copies in two
//! tasks, the bare call against the layer, cyclic error chains, huge waits, `Retry-After: 0`
//! at the deadline.
#![cfg(feature = "grpc")]

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, StreamBody};
use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::grpc::GrpcBreakerLayer;
use seawall::http::{is_transport_failure, rejection_response, ReplayBody};
use seawall::retry::{Retry, RetryAfterTooLong, RetryError};
use seawall::{BoxError, Classify, Outcome};
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};

// ===== helpers =====

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (w.clone(), Waker::from(w))
}

/// Runs `f` on a thread; `None` if it did not finish within `limit` (the thread is left
/// spinning: the test process ends anyway).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// An error whose `source()` is itself: a cyclic chain.
#[derive(Debug)]
struct Cyclic;

impl fmt::Display for Cyclic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cyclic")
    }
}

impl Error for Cyclic {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

// ===== finding 1: a GrpcStatusBody holding a half-open probe blocks the breaker =====

/// A response body that stays open (a server stream, a watch) until told otherwise.
struct OpenStream;

impl Body for OpenStream {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_streaming_probe_is_settled_by_its_head_and_does_not_hold_the_breaker_half_open() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .wait_in_open(Duration::from_millis(20))
        .half_open_max_calls(1)
        .build()
        .unwrap();
    breaker.record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    tokio::time::sleep(Duration::from_millis(40)).await;

    let svc = GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(|_: ()| async {
        // A healthy server answering the head of a server-streaming call at once.
        Ok::<_, BoxError>(Response::new(OpenStream))
    }));
    // The probe: the server answered its head (HTTP 200, status to come in the trailers).
    let watch = svc
        .clone()
        .oneshot(())
        .await
        .expect("the probe is admitted");
    // The probe is settled by the head: the dependency answered.
    assert!(!watch.body().is_pending());
    assert_eq!(breaker.state(), State::Closed);
    // Other calls go through while the stream lives (a watch can live for hours).
    let second = svc.clone().oneshot(()).await;
    assert!(
        second.is_ok(),
        "a healthy dependency stays unreachable while a streaming probe is open: {:?}",
        second.err()
    );
    drop(watch);
}

// ===== finding 2: GrpcStatusBody::is_end_stream while its status is pending =====

#[tokio::test]
async fn a_reply_that_ends_without_a_status_is_recorded_as_a_failure() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .build()
        .unwrap();
    // A broken upstream: HTTP 200, no grpc-status in the headers, an empty body (END_STREAM
    // on the HEADERS frame), no trailers: gRPC calls that a failure (no status).
    let svc = GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(|_: ()| async {
        Ok::<_, BoxError>(Response::new(Empty::<Bytes>::new()))
    }));
    let response = svc.oneshot(()).await.unwrap();
    let body = response.into_body();
    assert!(body.is_pending());
    // What hyper's h1/h2 writers (a proxy passing the body on) and other consumers do:
    // a body at its end is not polled.
    if body.is_end_stream() {
        drop(body);
    } else {
        let _ = body.collect().await;
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "the stream with no status was not recorded: {:?}",
        breaker.snapshot()
    );
}

// ===== finding 3: ReplayBody loses a wake-up with two copies at the head =====

#[test]
fn replay_copies_waiting_at_the_head_in_two_tasks_are_both_woken() {
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, BoxError>>();
    let source = StreamBody::new(rx);
    let original = ReplayBody::new(source, 1024);
    // Attempt 1's body (still held and polled by hyper's connection task) and attempt 2's.
    let mut previous = original.try_clone().unwrap();
    let mut retry = original.try_clone().unwrap();

    let (retry_woken, retry_waker) = counting_waker();
    let (_, previous_waker) = counting_waker();
    // Attempt 2 polls first (its task waits), then hyper's task polls attempt 1 again.
    assert!(Pin::new(&mut retry)
        .poll_frame(&mut Context::from_waker(&retry_waker))
        .is_pending());
    assert!(Pin::new(&mut previous)
        .poll_frame(&mut Context::from_waker(&previous_waker))
        .is_pending());
    // The client's upload sends a chunk; the previous attempt's task reads it.
    tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"chunk"))))
        .unwrap();
    match Pin::new(&mut previous).poll_frame(&mut Context::from_waker(&previous_waker)) {
        Poll::Ready(Some(Ok(frame))) => assert_eq!(frame.into_data().unwrap(), "chunk"),
        other => panic!("{other:?}"),
    }
    // The retry's copy has a kept frame to send, yet nothing ever wakes its task.
    assert!(
        retry_woken.0.load(Ordering::SeqCst) > 0,
        "the retry's body was never woken although a frame is waiting for it"
    );
}

// ===== finding 4: the bare call and the layer disagree on RetryAfterTooLong =====

#[derive(Clone)]
struct Busy;

impl Classify<u32, BoxError> for Busy {
    fn classify(&self, r: &Result<u32, BoxError>) -> Outcome {
        match r {
            Ok(429) | Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        }
    }
    fn retry_after(&self, _: &Result<u32, BoxError>) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_gives_up_on_a_long_retry_after_like_the_layer() {
    let retry = Retry::builder().no_budget().build().unwrap();
    // The layer: an error.
    let svc = ServiceBuilder::new()
        .layer(retry.layer().classifier(Busy))
        .service(service_fn(|_: u32| async { Ok::<u32, BoxError>(429) }));
    let err = svc.oneshot(1).await.unwrap_err();
    assert!(err.downcast_ref::<RetryAfterTooLong>().is_some());
    // The bare call, same policy, same classifier, same result: documented as
    // `RetryError::RetryAfterTooLong { last: None, .. }`.
    let bare: Result<u32, RetryError<BoxError>> =
        retry.call_with(&Busy, || async { Ok(429) }).await;
    assert!(
        matches!(bare, Err(RetryError::RetryAfterTooLong { last: None, .. })),
        "bare call: {bare:?}"
    );
}

// ===== finding 5: unbounded source() walks (hang on a cyclic chain) =====

#[test]
fn is_transport_failure_ends_on_a_cyclic_source_chain() {
    let done = within(Duration::from_secs(2), || is_transport_failure(&Cyclic));
    assert!(done.is_some(), "is_transport_failure never returned");
}

#[test]
fn rejection_response_ends_on_a_cyclic_source_chain() {
    let done = within(Duration::from_secs(2), || {
        rejection_response::<()>(&Cyclic).status()
    });
    assert!(done.is_some(), "rejection_response never returned");
}

// ===== finding 6: rejection_response overflows on a huge RetryAfterTooLong =====

#[test]
fn rejection_response_saturates_a_huge_retry_after() {
    let err = RetryAfterTooLong::new(Duration::MAX, Duration::from_secs(30), None);
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rejection_response::<()>(&err)
    }));
    let response = answered.expect("rejection_response panicked");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[http::header::RETRY_AFTER],
        HeaderValue::from(u64::MAX)
    );
}

// ===== finding 7: Retry-After 0 past the deadline is called "too long" =====

#[derive(Clone)]
struct RetryNow(Option<Duration>);

impl Classify<u32, BoxError> for RetryNow {
    fn classify(&self, r: &Result<u32, BoxError>) -> Outcome {
        match r {
            Ok(503) | Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        }
    }
    fn retry_after(&self, _: &Result<u32, BoxError>) -> Option<Duration> {
        self.0
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_zero_past_the_deadline_is_the_deadline_not_too_long() {
    let retry = Retry::builder()
        .no_budget()
        .deadline(Duration::from_millis(100))
        .build()
        .unwrap();
    let slow_503 = || {
        service_fn(|_: u32| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<u32, BoxError>(503)
        })
    };
    // Without Retry-After: the deadline ends the call and the 503 is the answer.
    let plain = ServiceBuilder::new()
        .layer(retry.layer().classifier(RetryNow(None)))
        .service(slow_503());
    assert_eq!(plain.oneshot(1).await.unwrap(), 503);
    // With `Retry-After: 0` ("retry at once"): the same situation, yet an error that says
    // the server asked for too long a wait.
    let hinted = ServiceBuilder::new()
        .layer(retry.layer().classifier(RetryNow(Some(Duration::ZERO))))
        .service(slow_503());
    let r = hinted.oneshot(1).await;
    assert!(
        matches!(r, Ok(503)),
        "Retry-After 0 past the deadline: {:?}",
        r.map_err(|e| e.to_string())
    );
}

// ===== controls: bounds that hold =====

#[test]
fn pieces_are_send_and_static_for_hyper_and_tonic_bodies() {
    fn send_static<T: Send + 'static>() {}
    fn send_unpin_static<T: Send + Unpin + 'static>() {}
    send_unpin_static::<ReplayBody<hyper::body::Incoming>>();
    send_unpin_static::<ReplayBody<axum::body::Body>>();
    send_unpin_static::<ReplayBody<tonic::body::Body>>();
    send_static::<seawall::grpc::GrpcStatusBody<hyper::body::Incoming>>();
    send_static::<seawall::grpc::GrpcStatusBody<tonic::body::Body>>();
}

#[test]
fn replay_body_overflow_exactly_at_the_limit_and_zero_length_chunks() {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(Bytes::new())),
        Ok(Frame::data(Bytes::from_static(b"abc"))),
        Ok(Frame::data(Bytes::new())),
        Ok(Frame::trailers(HeaderMap::new())),
    ];
    let body = ReplayBody::new(StreamBody::new(futures::stream::iter(frames)), 3);
    let copy = body.try_clone().unwrap();
    let first = futures::executor::block_on(body.collect()).unwrap();
    assert!(copy.is_replayable());
    let second = futures::executor::block_on(copy.collect()).unwrap();
    assert_eq!(first.to_bytes(), "abc");
    assert_eq!(second.to_bytes(), "abc");
}

#[tokio::test]
async fn grpc_status_body_dropped_at_every_frame_frees_the_probe_and_records_once() {
    use futures::StreamExt;
    for probe in [false, true] {
        for drop_after in 0..4 {
            let breaker = CircuitBreaker::builder()
                .failure_threshold(1)
                .wait_in_open(Duration::from_millis(1))
                .half_open_max_calls(1)
                .build()
                .unwrap();
            if probe {
                breaker.record(Outcome::Failure);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let svc = GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(|_: ()| async {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("13"));
                let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
                    Ok(Frame::data(Bytes::from_static(b"a"))),
                    Ok(Frame::data(Bytes::from_static(b"b"))),
                    Ok(Frame::trailers(trailers)),
                ];
                let slow = futures::stream::iter(frames).then(|f| async {
                    tokio::task::yield_now().await;
                    f
                });
                Ok::<_, BoxError>(Response::new(StreamBody::new(Box::pin(slow))))
            }));
            let response = svc.oneshot(()).await.unwrap();
            let mut body = response.into_body();
            for _ in 0..drop_after {
                let _ = body.frame().await;
            }
            drop(body);
            let snap = breaker.snapshot();
            assert_eq!(
                snap.probes_in_flight, 0,
                "drop after {drop_after}: {snap:?}"
            );
            if probe {
                // A probe is settled by the head (a committed reply): closed, whatever the
                // trailers say later.
                assert_eq!(snap.state, State::Closed, "probe, drop after {drop_after}");
            } else if drop_after >= 3 {
                assert_eq!(snap.state, State::Open, "INTERNAL in the trailers recorded");
            } else {
                assert_eq!(snap.state, State::Closed, "nothing recorded: {snap:?}");
                assert_eq!(snap.consecutive_failures, 0);
            }
        }
    }
}
