//! Cancelled calls and probes: nothing recorded, probe slots freed.

use crate::prelude::*;

// ===== cancellation =====

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_future_before_its_first_poll_frees_the_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(30)).await;

    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).state(),
        State::HalfOpen
    );
    drop(probe);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a cancelled probe records nothing"
    );
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));

    // Admitted at once: no second open period.
    let before = backend.calls();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(backend.calls(), before + 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_future_while_the_inner_call_is_pending_frees_the_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let mut svc = breaker.layer().layer(mock);

    let call = svc.ready().await.unwrap().call("trip");
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(io::Error::other("boom"));
    call.await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(secs(30)).await;

    let mut probe = Box::pin(svc.ready().await.unwrap().call("probe"));
    assert!(futures::poll!(&mut probe).is_pending());
    let (req, _pending_reply) = handle.next_request().await.unwrap();
    assert_eq!(req, "probe");
    assert!(futures::poll!(&mut probe).is_pending());
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    drop(probe);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::HalfOpen);

    let next = svc.ready().await.unwrap().call("next");
    let (req, reply) = handle.next_request().await.unwrap();
    assert_eq!(req, "next", "the next call is admitted as a probe at once");
    reply.send_response("pong");
    assert_eq!(next.await.unwrap(), "pong");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn outer_timeout_cancels_a_probe_and_frees_its_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .timeout(SEC)
        .layer(breaker.layer())
        .service(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(30)).await;

    let err = send(&mut svc, Req::Gated).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "a timeout outside the breaker is a cancellation, not a failure"
    );
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn inner_timeout_counts_as_a_failure() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .timeout(SEC)
        .service(Backend::default());
    for _ in 0..2 {
        let err = send(&mut svc, Req::SleepOk(5_000)).await.unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn dropping_an_unrecorded_permit_frees_the_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(secs(30));

    let permit = breaker.try_acquire().expect("first call after the wait");
    assert!(permit.is_probe());
    let open = breaker.try_acquire().expect_err("the only slot is taken");
    assert_eq!(open.state(), State::HalfOpen);
    drop(permit);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);

    let permit = breaker
        .try_acquire()
        .expect("the slot is free again, at once");
    assert!(permit.is_probe());
    permit.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
    assert!(!breaker.try_acquire().unwrap().is_probe());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_breaker_call_future_mid_flight_frees_the_probe_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(30))
            .half_open_max_calls(1),
    );
    let r: Result<(), CallError<&str>> = breaker.call(|| async { Err("boom") }).await;
    assert!(r.is_err());
    tokio::time::advance(secs(30)).await;

    let notify = tokio::sync::Notify::new();
    let started = AtomicUsize::new(0);
    let mut call = Box::pin(breaker.call(|| async {
        started.fetch_add(1, SeqCst);
        notify.notified().await;
        Ok::<_, &str>(1)
    }));
    assert!(futures::poll!(&mut call).is_pending());
    assert_eq!(started.load(SeqCst), 1);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    assert!(breaker.try_acquire().is_err(), "the slot is taken");
    drop(call);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::HalfOpen);

    let r: Result<u32, CallError<&str>> = breaker.call(|| async { Ok(2) }).await;
    assert_eq!(r, Ok(2));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_closed_call_records_nothing() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    inner_error(send(&mut svc, Req::Fail).await);
    let mut call = Box::pin(svc.ready().await.unwrap().call(Req::Gated));
    assert!(futures::poll!(&mut call).is_pending());
    assert_eq!(backend.waiting(), 1, "the inner call is in flight");
    drop(call);
    backend.release(Err(io::Error::other("nobody listens")));
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    send(&mut svc, Req::Ok).await.unwrap();
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Closed);
}
