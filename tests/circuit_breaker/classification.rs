//! Classifiers: success, failure, ignored, on the inner service's own types.

use crate::prelude::*;

// ===== classification =====

fn not_found_is_ignored(r: &Result<&'static str, io::Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_neither_count_nor_reset_consecutive_failures() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(2));
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    for _ in 0..5 {
        inner_error(send(&mut svc, Req::NotFound).await);
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(
        breaker.state(),
        State::Open,
        "ignored calls did not break the run"
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_do_not_enter_the_rate_window() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(100.0)
            .count_window(10)
            .minimum_calls(2),
    );
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    for _ in 0..3 {
        inner_error(send(&mut svc, Req::NotFound).await);
    }
    assert_eq!(breaker.snapshot().calls, 1);
    inner_error(send(&mut svc, Req::Fail).await); // 2 of 2 = 100 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_probe_frees_its_slot_without_counting_as_a_success() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    let mut svc = breaker
        .layer()
        .classifier(not_found_is_ignored)
        .layer(Backend::default());
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(SEC).await;

    for _ in 0..4 {
        inner_error(send(&mut svc, Req::NotFound).await);
        let snap = breaker.snapshot();
        assert_eq!(snap.state, State::HalfOpen);
        assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));
    }
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen, "one real success of two");
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn layer_classifier_sees_the_inner_concrete_error_type() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let classifier = {
        let seen = seen.clone();
        move |r: &Result<&'static str, io::Error>| {
            if let Err(e) = r {
                seen.lock().unwrap().push(e.kind());
            }
            not_found_is_ignored(r)
        }
    };
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let mut svc = breaker
        .layer()
        .classifier(classifier)
        .layer(Backend::default());

    let err = inner_error(send(&mut svc, Req::NotFound).await);
    assert_eq!(
        err.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::NotFound),
        "the caller gets the inner error, boxed"
    );
    assert_eq!(breaker.state(), State::Closed, "NotFound was ignored");
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![io::ErrorKind::NotFound, io::ErrorKind::Other]
    );
}

/// A refusal by a layer inside the breaker (a full bulkhead, a rate limit, an inner breaker's
/// open circuit) never asked the dependency: the breaker records it as ignored, whatever its
/// classifier says, through the layer and the bare call alike. (Found by the metrics example:
/// a full bulkhead inside the breaker opened it.)
#[tokio::test(start_paused = true)]
async fn refusals_from_layers_inside_are_ignored_not_failures() {
    use seawall::bulkhead::Bulkhead;
    use seawall::circuit_breaker::State;
    use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

    let breaker = CircuitBreaker::builder()
        .failure_threshold(2)
        .build()
        .unwrap();
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let held = bulkhead.try_acquire().unwrap(); // the one slot is busy
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .layer(bulkhead.layer())
        .service(service_fn(|()| async { Ok::<_, BoxError>(()) }));
    for _ in 0..5 {
        let e = svc.ready().await.unwrap().call(()).await.unwrap_err();
        assert_eq!(
            seawall::ErrorKind::of(&*e),
            seawall::ErrorKind::BulkheadFull
        );
    }
    assert_eq!(breaker.state(), State::Closed);
    // A classifier that calls every error a failure is not asked about a refusal either.
    let mut strict = ServiceBuilder::new()
        .layer(
            breaker
                .layer()
                .classifier(|r: &Result<(), BoxError>| match r {
                    Ok(_) => Outcome::Success,
                    Err(_) => Outcome::Failure,
                }),
        )
        .layer(bulkhead.layer())
        .service(service_fn(|()| async { Ok::<_, BoxError>(()) }));
    for _ in 0..5 {
        strict.ready().await.unwrap().call(()).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    // The bare call: an inner breaker's open circuit is a refusal too.
    let inner = CircuitBreaker::builder().build().unwrap();
    inner.force_open();
    for _ in 0..5 {
        let r = breaker
            .call(|| async { inner.call(|| async { Ok::<(), BoxError>(()) }).await })
            .await;
        assert!(r.is_err());
    }
    assert_eq!(breaker.state(), State::Closed);
    // A real failure still counts.
    drop(held);
    for _ in 0..2 {
        breaker
            .call(|| async { Err::<(), BoxError>("down".into()) })
            .await
            .unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
}
