//! Open, the move to half-open, half-open probes, and the resets on entering closed or open.

use crate::prelude::*;

// ===== Open =====

#[tokio::test(start_paused = true)]
async fn open_rejects_without_calling_inner_and_reports_remaining_wait() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(secs(10)),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).retry_in(),
        secs(10)
    );

    tokio::time::advance(secs(3)).await;
    for _ in 0..10 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.retry_in(), secs(7));
        assert_eq!(open.state(), State::Open);
    }
    assert_eq!(breaker.snapshot().retry_in, Some(secs(7)));
    assert_eq!(
        backend.calls(),
        2,
        "rejections never reach the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn poll_ready_is_ready_while_open() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);

    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    }
    let fut = svc.call(Req::Ok);
    assert_eq!(
        backend.calls(),
        1,
        "rejected in `call`, before the inner service"
    );
    rejection(fut.await);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_forwards_the_inner_services_readiness() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let (mock, mut handle) = tower_test::mock::pair::<(), &'static str>();
    let mut svc = breaker.layer().layer(mock);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    handle.allow(0);
    assert!(svc.poll_ready(&mut cx).is_pending());
    handle.allow(1);
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
}

#[tokio::test(start_paused = true)]
async fn breaker_call_is_rejected_without_running_the_closure_while_open() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(4)),
    );
    let r: Result<(), CallError<&str>> = breaker.call(|| async { Err("boom") }).await;
    assert_eq!(r, Err(CallError::Inner("boom")));
    assert_eq!(breaker.state(), State::Open);

    let ran = AtomicUsize::new(0);
    let r: Result<u32, CallError<&str>> = breaker
        .call(|| {
            ran.fetch_add(1, SeqCst);
            async { Ok(1) }
        })
        .await;
    match r {
        Err(CallError::Rejected(open)) => assert_eq!(open.retry_in(), secs(4)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(ran.load(SeqCst), 0);
}

// ===== Open -> HalfOpen =====

#[tokio::test(start_paused = true)]
async fn open_moves_to_half_open_lazily_on_the_first_call_after_the_wait() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(10))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);

    tokio::time::advance(ms(9_999)).await;
    assert_eq!(rejection(send(&mut svc, Req::Ok).await).retry_in(), ms(1));
    tokio::time::advance(ms(1)).await;
    // No background task: nothing changes until a call arrives, however long we wait.
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(secs(3600)).await;
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.snapshot().retry_in, Some(Duration::ZERO));

    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(
        backend.calls(),
        2,
        "the first call after the wait is admitted"
    );
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    backend.release(Ok("ok"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// ===== HalfOpen =====

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_max_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    let mut probes = Vec::new();
    for _ in 0..3 {
        probes.push(svc.ready().await.unwrap().call(Req::Gated));
    }
    assert_eq!(breaker.snapshot().probes_in_flight, 3);
    for _ in 0..5 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.state(), State::HalfOpen);
        assert_eq!(open.retry_in(), Duration::ZERO);
    }
    assert_eq!(
        backend.calls(),
        1 + 3,
        "only the probes reached the inner service"
    );
    assert_eq!(breaker.state(), State::HalfOpen);

    for _ in 0..3 {
        backend.release(Ok("ok"));
    }
    for p in probes {
        p.await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_closes_after_max_calls_successful_probes() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3),
    );
    let mut svc = breaker.layer().layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    for i in 1..=2 {
        send(&mut svc, Req::Ok).await.unwrap();
        assert_eq!(
            breaker.state(),
            State::HalfOpen,
            "after {i} successful probes"
        );
        assert_eq!(breaker.snapshot().probe_successes, i);
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_on_one_failed_probe() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(5))
            .half_open_max_calls(3),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(5)).await;

    send(&mut svc, Req::Ok).await.unwrap();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "one failed probe re-opens");
    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.retry_in(), secs(5), "a full open period starts again");
    assert_eq!(backend.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn open_period_grows_with_multiplier_up_to_the_cap_and_resets_on_close() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(1)
            .wait_in_open(secs(10))
            .wait_in_open_multiplier(1.5)
            .max_wait_in_open(secs(30)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    // 10 s, then x1.5 per failed probe: 15 s, 22.5 s, 33.75 s capped to 30 s, 30 s.
    let expected = [ms(10_000), ms(15_000), ms(22_500), ms(30_000), ms(30_000)];
    let mut seen = Vec::new();
    for (i, period) in expected.into_iter().enumerate() {
        seen.push(rejection(send(&mut svc, Req::Ok).await).retry_in());
        assert_eq!(breaker.snapshot().retry_in, Some(period));
        // One millisecond early is still open.
        tokio::time::advance(period - ms(1)).await;
        assert_eq!(rejection(send(&mut svc, Req::Ok).await).retry_in(), ms(1));
        tokio::time::advance(ms(1)).await;
        if i + 1 < expected.len() {
            inner_error(send(&mut svc, Req::Fail).await); // a failed probe: re-trip
        }
    }
    assert_eq!(seen, expected);

    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).retry_in(),
        secs(10),
        "a close resets the growth"
    );
}

// ===== resets on entering Closed / Open =====

#[tokio::test(start_paused = true)]
async fn entering_open_and_closed_resets_window_and_consecutive_count() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(3)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(4)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    for _ in 0..3 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(breaker.state(), State::Open);
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.consecutive_failures, snap.calls, snap.failures),
        (0, 0, 0),
        "entering Open starts from zero: {snap:?}"
    );

    tokio::time::advance(SEC).await;
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!((snap.consecutive_failures, snap.calls), (0, 0));

    // Had the 3 old failures survived, one more would trip on both conditions.
    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Closed);
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.consecutive_failures, snap.calls, snap.failures),
        (2, 2, 2)
    );
}

#[test]
fn half_open_admits_exactly_the_largest_accepted_number_of_probes() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(MAX_HALF_OPEN_CALLS)
            .wait_in_open(SEC),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let permits: Vec<_> = (0..MAX_HALF_OPEN_CALLS)
        .map(|_| breaker.try_acquire().expect("a probe slot"))
        .collect();
    assert!(breaker.try_acquire().is_err(), "every slot taken");
    assert_eq!(breaker.snapshot().probes_in_flight, MAX_HALF_OPEN_CALLS);
    for p in permits {
        p.record(Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}
