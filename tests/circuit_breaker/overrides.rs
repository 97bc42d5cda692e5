//! Forced open, disabled and reset.

use crate::prelude::*;

// ===== overrides =====

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_everything_until_reset() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    breaker.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    for _ in 0..3 {
        let open = rejection(send(&mut svc, Req::Ok).await);
        assert_eq!(open.state(), State::ForcedOpen);
        assert_eq!(open.retry_in(), Duration::ZERO);
    }
    tokio::time::advance(secs(3600)).await;
    rejection(send(&mut svc, Req::Ok).await);
    assert!(breaker.try_acquire().is_err());
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "no half-open after any wait"
    );
    assert_eq!(backend.calls(), 0);

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap();

    // Forcing open a half-open breaker also wins over its probes.
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.force_open();
    backend.release(Ok("ok"));
    probe.await.unwrap();
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "a probe cannot close a forced breaker"
    );
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_everything_never_trips_and_still_counts() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(2),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);

    breaker.disable();
    assert_eq!(breaker.state(), State::Disabled);
    for _ in 0..20 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(backend.calls(), 22, "every call reached the inner service");
    assert_eq!(breaker.state(), State::Disabled);
    let snap = breaker.snapshot();
    assert_eq!((snap.calls, snap.failures), (10, 9));
    assert_eq!(snap.failure_rate, Some(90.0));

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().calls, 0, "reset forgets the counts");
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open, "a normal breaker again");
}

#[tokio::test(start_paused = true)]
async fn reset_while_half_open_disowns_the_probes_in_flight() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap();
    backend.release(Err(io::Error::other("late probe failure")));
    inner_error(probe.await);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::Closed,
        "an old probe's failure must not trip"
    );
    assert_eq!(snap.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn disable_while_half_open_disowns_the_probes_in_flight() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);

    breaker.disable();
    backend.release(Err(io::Error::other("late probe failure")));
    inner_error(probe.await);
    assert_eq!(
        breaker.state(),
        State::Disabled,
        "the override wins over old probes"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_call_with_uses_the_given_classifier() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let lenient = |r: &Result<u32, &str>| match r {
        Err(e) if *e == "not found" => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    for _ in 0..3 {
        let r = breaker
            .call_with(&lenient, || async { Err::<u32, _>("not found") })
            .await;
        assert_eq!(r, Err(CallError::Inner("not found")));
        assert_eq!(breaker.state(), State::Closed);
    }
    let r = breaker
        .call_with(&lenient, || async { Err::<u32, _>("down") })
        .await;
    assert_eq!(r.unwrap_err().into_inner(), Some("down"));
    assert_eq!(breaker.state(), State::Open);
    let r = breaker.call_with(&lenient, || async { Ok(1) }).await;
    assert!(r.unwrap_err().is_rejected());
}

#[tokio::test(start_paused = true)]
async fn rejections_say_why_in_their_message() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(7))
            .half_open_max_calls(1),
    );
    let mut svc = breaker.layer().layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.to_string(), "circuit open; next probe in 7s");
    tokio::time::advance(secs(7)).await;
    let _probe = svc.ready().await.unwrap().call(Req::Gated);
    let busy = rejection(send(&mut svc, Req::Ok).await);
    assert!(busy.to_string().contains("half-open"), "{busy}");
    breaker.force_open();
    let forced = rejection(send(&mut svc, Req::Ok).await);
    assert!(forced.to_string().contains("forced open"), "{forced}");
}

#[test]
fn reset_of_a_closed_breaker_forgets_its_counts() {
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(5)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(10),
    );
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    breaker.reset();
    let snap = breaker.snapshot();
    assert_eq!((snap.consecutive_failures, snap.calls), (0, 0));
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.state(), State::Closed);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn record_without_a_permit_counts_like_an_admitted_call() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    breaker.record(Outcome::Failure);
    breaker.record(Outcome::Ignored);
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    breaker.record(Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    breaker.record(Outcome::Success); // rejected: nothing recorded while open
    assert_eq!(breaker.state(), State::Open);
    clock.advance(SEC);
    breaker.record(Outcome::Success); // a probe
    assert_eq!(breaker.state(), State::Closed);
}
