//! Outcomes of calls admitted in an earlier generation are ignored, across generation wraps.

use crate::prelude::*;

// ===== stale outcomes =====

#[tokio::test(start_paused = true)]
async fn stale_closed_success_neither_counts_as_a_probe_nor_frees_a_slot() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    let stale = svc.ready().await.unwrap().call(Req::Gated); // admitted while Closed
    inner_error(send(&mut svc, Req::Fail).await);
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(SEC).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.state(), State::HalfOpen);

    backend.release(Ok("late")); // the stale call
    assert_eq!(stale.await.unwrap(), "late");
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a stale success must not close"
    );
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (1, 0));
    assert_eq!(
        rejection(send(&mut svc, Req::Ok).await).state(),
        State::HalfOpen,
        "the probe's slot is still taken"
    );

    backend.release(Ok("probe"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_closed_failure_neither_reopens_nor_extends_the_open_period() {
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(secs(10))
            .half_open_max_calls(1),
    );
    let backend = Backend::default();
    let mut svc = breaker.layer().layer(backend.clone());

    let stale_a = svc.ready().await.unwrap().call(Req::Gated);
    let stale_b = svc.ready().await.unwrap().call(Req::Gated);
    inner_error(send(&mut svc, Req::Fail).await);

    tokio::time::advance(secs(4)).await;
    backend.release(Err(io::Error::other("late")));
    inner_error(stale_a.await);
    assert_eq!(
        breaker.snapshot().retry_in,
        Some(secs(6)),
        "open period untouched"
    );

    tokio::time::advance(secs(6)).await;
    let probe = svc.ready().await.unwrap().call(Req::Gated);
    backend.release(Err(io::Error::other("late")));
    inner_error(stale_b.await);
    let snap = breaker.snapshot();
    assert_eq!(
        snap.state,
        State::HalfOpen,
        "a stale failure must not re-open"
    );
    assert_eq!(snap.probes_in_flight, 1);

    backend.release(Ok("probe"));
    probe.await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_from_an_earlier_half_open_period_is_ignored() {
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

    let old_ok = svc.ready().await.unwrap().call(Req::Gated);
    let old_dropped = svc.ready().await.unwrap().call(Req::Gated);
    inner_error(send(&mut svc, Req::Fail).await); // third probe fails: re-open
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(SEC).await;

    let new_probe = svc.ready().await.unwrap().call(Req::Gated);
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    backend.release(Ok("old")); // old_ok
    old_ok.await.unwrap();
    drop(old_dropped);
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(
        (snap.probes_in_flight, snap.probe_successes),
        (1, 0),
        "old probes neither count nor free this period's slots"
    );

    backend.release(Ok("dropped")); // old_dropped's gate: nobody listens
    backend.release(Ok("new"));
    new_probe.await.unwrap();
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    send(&mut svc, Req::Ok).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// ===== the generation (issue 11: it used to wrap at 2^21) =====

#[test]
fn a_stale_failure_does_not_trip_after_2_to_the_21_resets() {
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(1));
    let stale = breaker.try_acquire().unwrap(); // closed, generation 0
    for _ in 0..(1u32 << 21) {
        breaker.reset();
    }
    stale.record(Outcome::Failure);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a failure admitted 2^21 generations ago counts for nothing"
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[test]
fn a_stale_probe_does_not_free_a_current_probe_slot_after_2_to_the_21_transitions() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let stale = breaker.try_acquire().unwrap(); // half-open, generation g
    assert!(stale.is_probe());
    // Closed at g + 2^21 - 2, open at g + 2^21 - 1, half-open again at g + 2^21.
    for _ in 0..((1u32 << 21) - 2) {
        breaker.reset();
    }
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let current = breaker.try_acquire().unwrap();
    assert!(current.is_probe());
    drop(stale); // must not free `current`'s slot
    assert_eq!(breaker.snapshot().probes_in_flight, 1);
    let other = breaker.try_acquire().unwrap();
    assert!(other.is_probe());
    let open = breaker
        .try_acquire()
        .expect_err("two probes in flight with a limit of two");
    assert_eq!(open.state(), State::HalfOpen);
    drop((current, other));
}

#[test]
fn a_time_window_narrower_than_a_nanosecond_per_bucket_is_refused() {
    // 1 µs over 4,096 buckets would be widened to 4,096 ns: a 3 µs-old call would count.
    let err = CircuitBreaker::builder()
        .failure_rate(50.0)
        .sliding_window(SlidingWindow::Time {
            duration: Duration::from_micros(1),
            buckets: 4096,
        })
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "sliding_window", "{err}");
    assert!(err.to_string().contains("4096 buckets"), "{err}");
    // One nanosecond per bucket is exact, and accepted.
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(1)
            .sliding_window(SlidingWindow::Time {
                duration: Duration::from_nanos(4096),
                buckets: 4096,
            }),
    );
    record(&breaker, Outcome::Success);
    clock.advance(Duration::from_nanos(4096));
    assert_eq!(
        breaker.snapshot().calls,
        0,
        "a 4,096 ns-old call has left the window"
    );
}

#[test]
fn half_open_max_calls_is_bounded_by_the_probe_counters() {
    // 14 bits each for probes in flight and probe successes, so the generation has 32.
    assert_eq!(MAX_HALF_OPEN_CALLS, 16_383);
    for too_many in [MAX_HALF_OPEN_CALLS + 1, (1 << 20) - 1] {
        let err = CircuitBreaker::builder()
            .half_open_max_calls(too_many)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "half_open_max_calls", "{err}");
    }
    // At the limit, every slot is usable and the counters do not spill into each other.
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(MAX_HALF_OPEN_CALLS),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let mut probes: Vec<_> = (0..MAX_HALF_OPEN_CALLS)
        .map(|_| breaker.try_acquire().unwrap())
        .collect();
    assert_eq!(breaker.try_acquire().unwrap_err().state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, MAX_HALF_OPEN_CALLS);
    let last = probes.pop().unwrap();
    for probe in probes {
        probe.record(Outcome::Success);
    }
    let snap = breaker.snapshot();
    assert_eq!(
        (snap.state, snap.probes_in_flight, snap.probe_successes),
        (State::HalfOpen, 1, MAX_HALF_OPEN_CALLS - 1)
    );
    last.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn failure_threshold_is_bounded_by_the_state_words_count() {
    use seawall::circuit_breaker::MAX_FAILURE_THRESHOLD;
    let err = CircuitBreaker::builder()
        .failure_threshold(MAX_FAILURE_THRESHOLD + 1)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "failure_threshold");
    assert!(CircuitBreaker::builder()
        .failure_threshold(MAX_FAILURE_THRESHOLD)
        .build()
        .is_ok());
    // `u32::MAX` means "never on consecutive failures".
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(u32::MAX));
    for _ in 0..1000 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().consecutive_failures, 1000);
}

#[tokio::test(start_paused = true)]
async fn a_listener_panic_inside_a_recorded_outcome_leaves_a_consistent_breaker() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1)
            .on_state_change(|_, c| {
                if c.to == State::Open {
                    panic!("exporter down");
                }
            }),
    );
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(Backend::default());
    // The failure trips the breaker; the listener panics out of the response future.
    let fut = svc.ready().await.unwrap().call(Req::Fail);
    let panicked = tokio::spawn(fut).await;
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(breaker.state(), State::Open, "the transition happened");
    // And the breaker carries on: the probe after the wait closes it.
    clock.advance(SEC);
    assert_eq!(send(&mut svc, Req::Ok).await.unwrap(), "ok");
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_stale_probe_dropped_after_300_000_transitions_frees_no_current_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(1)
            .wait_in_open(SEC),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let old = breaker.try_acquire().unwrap();
    for _ in 0..100_000 {
        breaker.force_open();
        breaker.disable();
        breaker.reset();
    }
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let current = breaker.try_acquire().unwrap();
    assert!(current.is_probe());
    drop(old);
    assert!(
        breaker.try_acquire().is_err(),
        "the stale drop freed nothing"
    );
    current.record(Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}
