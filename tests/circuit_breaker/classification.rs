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
