//! Closed to open: consecutive failures, failure rate and slow-call rate.

use crate::prelude::*;

// ===== Closed -> Open: consecutive failures =====

#[tokio::test(start_paused = true)]
async fn trips_after_five_consecutive_failures_by_default() {
    let breaker = CircuitBreaker::default();
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    for i in 1..=4 {
        inner_error(send(&mut svc, Req::Fail).await);
        assert_eq!(breaker.state(), State::Closed, "after {i} failures");
        assert_eq!(breaker.snapshot().consecutive_failures, i);
    }
    // The fifth failure is still the inner service's own error, and it trips the breaker.
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(backend.calls(), 5);

    let open = rejection(send(&mut svc, Req::Ok).await);
    assert_eq!(open.state(), State::Open);
    assert_eq!(
        backend.calls(),
        5,
        "an open breaker must not call the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn success_between_failures_resets_the_consecutive_count() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(3));
    let mut svc = breaker.layer().layer(Backend::default());

    for _ in 0..2 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 2);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    for _ in 0..2 {
        inner_error(send(&mut svc, Req::Fail).await);
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "F F S F F is not 3 in a row"
    );
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

// ===== Closed -> Open: failure rate =====

#[tokio::test(start_paused = true)]
async fn failure_rate_trips_at_exactly_the_threshold() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(4)
            .minimum_calls(4),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    send(&mut svc, Req::Ok).await.unwrap();
    inner_error(send(&mut svc, Req::Fail).await);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 2 of 4 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_count_window_forgets_evicted_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(60.0)
            .count_window(5)
            .minimum_calls(5),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    let script = [
        Req::Fail,
        Req::Fail,
        Req::Ok,
        Req::Ok,
        Req::Ok, // 2/5 = 40 %
        Req::Ok,
        Req::Ok,
        Req::Ok, // both failures evicted: 0/5
        Req::Fail,
        Req::Fail, // 2/5 = 40 % (4/10 = 40 % if nothing were evicted)
    ];
    for (i, req) in script.into_iter().enumerate() {
        let _ = send(&mut svc, req).await;
        assert_eq!(breaker.state(), State::Closed, "after call {i}");
        if i == 4 {
            let snap = breaker.snapshot();
            assert_eq!((snap.calls, snap.failures), (5, 2));
            assert_eq!(snap.failure_rate, Some(40.0));
        }
        if i == 7 {
            let snap = breaker.snapshot();
            assert_eq!(
                (snap.calls, snap.failures),
                (5, 0),
                "the window holds 5 calls"
            );
        }
    }
    // 3/5 = 60 % over the window; 5/11 = 45 % if the window kept everything.
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_does_not_trip_below_minimum_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(10)
            .minimum_calls(5),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    for i in 1..=4 {
        inner_error(send(&mut svc, Req::Fail).await);
        assert_eq!(
            breaker.state(),
            State::Closed,
            "{i} of {i} failed, but fewer than minimum_calls"
        );
        let snap = breaker.snapshot();
        assert_eq!(snap.calls, i);
        assert_eq!(snap.failure_rate, None, "no rate below minimum_calls");
    }
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_time_window_counts_calls_within_the_span() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(4)
            .time_window(secs(10)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    tokio::time::advance(secs(9)).await; // still inside the 10 s window
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.snapshot().calls, 3);
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::Ok).await.unwrap(); // 2 of 4 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_time_window_ages_out_old_calls() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(4)
            .time_window(secs(10)),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    inner_error(send(&mut svc, Req::Fail).await);
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.snapshot().calls, 2);
    tokio::time::advance(secs(10)).await; // the two failures leave the window
    assert_eq!(breaker.snapshot().calls, 0);

    for _ in 0..3 {
        send(&mut svc, Req::Ok).await.unwrap();
    }
    inner_error(send(&mut svc, Req::Fail).await); // 1/4 (3/6 = 50 % without ageing)
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 2/5
    assert_eq!(breaker.state(), State::Closed);
    inner_error(send(&mut svc, Req::Fail).await); // 3/6 = 50 %
    assert_eq!(breaker.state(), State::Open);
}

// ===== Closed -> Open: slow-call rate =====

#[tokio::test(start_paused = true)]
async fn slow_call_rate_trips_on_calls_taking_at_least_slow_call_duration() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .slow_call_rate(50.0)
            .slow_call_duration(SEC)
            .count_window(4)
            .minimum_calls(4),
    );
    let mut svc = breaker.layer().layer(Backend::default());

    let start = tokio::time::Instant::now();
    send(&mut svc, Req::SleepOk(10)).await.unwrap();
    send(&mut svc, Req::SleepOk(999)).await.unwrap();
    assert_eq!(start.elapsed(), ms(1009), "paused time moves exactly");
    assert_eq!(breaker.snapshot().slow_calls, 0, "999 ms is not slow");
    send(&mut svc, Req::SleepOk(1000)).await.unwrap();
    assert_eq!(breaker.snapshot().slow_calls, 1, "exactly 1 s is slow");
    assert_eq!(
        breaker.snapshot().failures,
        0,
        "slow successes are not failures"
    );
    assert_eq!(breaker.state(), State::Closed);
    send(&mut svc, Req::SleepOk(2000)).await.unwrap(); // 2 of 4 slow = 50 %
    assert_eq!(breaker.state(), State::Open);
}
