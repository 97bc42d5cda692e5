//! Regressions: bugs found while writing this suite, each with its test.

use crate::prelude::*;

// ===== regressions: bugs found while writing this suite =====

#[test]
fn stale_disabled_outcome_does_not_wipe_the_closed_window() {
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(100.0)
            .count_window(4)
            .minimum_calls(4),
    );
    breaker.disable();
    let stale = breaker.try_acquire().expect("disabled admits");
    breaker.reset();
    for _ in 0..3 {
        record(&breaker, Outcome::Failure);
    }
    assert_eq!(breaker.snapshot().calls, 3);
    stale.record(Outcome::Success); // admitted while Disabled; says nothing about Closed
    assert_eq!(
        breaker.snapshot().calls,
        3,
        "a stale outcome must not touch the current window"
    );
    record(&breaker, Outcome::Failure); // 4 of 4 failed
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_very_long_wait_in_open_is_not_silently_shortened() {
    let forty_years = secs(86_400 * 365 * 40);
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(forty_years)
            .max_wait_in_open(forty_years),
    );
    record(&breaker, Outcome::Failure);
    let open = breaker.try_acquire().expect_err("open");
    assert_eq!(open.retry_in(), forty_years);
}

#[test]
fn the_breaker_still_opens_after_35_years_of_clock_time() {
    let (breaker, clock) = manual(CircuitBreaker::builder().failure_threshold(1));
    clock.advance(secs(86_400 * 365 * 35));
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Open);
    let open = breaker
        .try_acquire()
        .expect_err("the 30 s wait has only just started");
    assert_eq!(open.retry_in(), secs(30));
}

#[test]
fn panicking_listener_cannot_wedge_the_breaker_in_half_open() {
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (breaker, clock) = manual({
        let panicked = panicked.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(3)
            .on_state_change(move |_, c| {
                if c.to == State::HalfOpen && !panicked.swap(true, SeqCst) {
                    panic!("metrics exporter panicked");
                }
            })
    });
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| breaker.try_acquire()));
    assert!(r.is_err(), "the listener panicked through try_acquire");
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(
        breaker.snapshot().probes_in_flight,
        0,
        "nobody holds the first probe's permit"
    );
    for _ in 0..3 {
        record(&breaker, Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn reset_forgets_counts_even_after_two_to_the_21_transitions() {
    let (breaker, _clock) = manual(CircuitBreaker::builder().failure_threshold(5));
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    for _ in 0..(1u32 << 21) {
        breaker.reset();
    }
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), State::Closed, "one failure after a reset");
}

#[test]
fn default_minimum_calls_follows_a_smaller_count_window() {
    // Without an explicit minimum_calls, a 4-call window evaluates its rate at 4 calls
    // instead of refusing the default of 10.
    let (breaker, _clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .count_window(4),
    );
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Success] {
        record(&breaker, outcome);
    }
    assert_eq!(breaker.state(), State::Closed, "3 calls: below the window");
    record(&breaker, Outcome::Failure); // 2 of 4 failed
    assert_eq!(breaker.state(), State::Open);
    // An explicit minimum_calls above the window is still refused.
    let err = CircuitBreaker::builder()
        .failure_rate(50.0)
        .count_window(4)
        .minimum_calls(5)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "minimum_calls");
}

#[tokio::test(start_paused = true)]
async fn open_period_jitter_shortens_waits_within_the_fraction_and_varies() {
    let mut waits = Vec::new();
    for seed in 0..20 {
        let (breaker, _clock) = manual(
            CircuitBreaker::builder()
                .failure_threshold(1)
                .wait_in_open(secs(30))
                .wait_in_open_jitter(0.2)
                .jitter_seed(seed),
        );
        record(&breaker, Outcome::Failure);
        let wait = breaker.try_acquire().unwrap_err().retry_in();
        assert!(wait >= secs(24) && wait <= secs(30), "{wait:?}");
        waits.push(wait);
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 10, "jitter should vary the wait: {waits:?}");
    // The same seed gives the same wait.
    let wait_of = |seed| {
        let (b, _c) = manual(
            CircuitBreaker::builder()
                .failure_threshold(1)
                .wait_in_open_jitter(0.5)
                .jitter_seed(seed),
        );
        record(&b, Outcome::Failure);
        b.try_acquire().unwrap_err().retry_in()
    };
    assert_eq!(wait_of(7), wait_of(7));
    for bad in [-0.1, 0.95, 1.1, f64::NAN] {
        let err = CircuitBreaker::builder()
            .wait_in_open_jitter(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "wait_in_open_jitter");
    }
}

#[tokio::test]
async fn bare_call_errors_tell_their_kind() {
    let breaker = build(CircuitBreaker::builder().failure_threshold(1));
    let err = breaker
        .call(|| async { Err::<(), _>(tower::timeout::error::Elapsed::new()) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let err = breaker
        .call(|| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap_err();
    assert!(err.is_rejected());
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    // Through the source chain too, once boxed.
    let boxed: BoxError = Box::new(err);
    assert_eq!(ErrorKind::of(&*boxed), ErrorKind::CircuitOpen);
}

/// Sets its flag when dropped: tells whether the breaker holding it was freed.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

fn drop_flag() -> (DropFlag, Arc<std::sync::atomic::AtomicBool>) {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    (DropFlag(flag.clone()), flag)
}

/// A breaker whose listener logs every state change and owns a drop flag.
fn logged(
    builder: Builder,
) -> (
    CircuitBreaker,
    ManualClock,
    Log,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let log = Log::default();
    let (flag, freed) = drop_flag();
    let (breaker, clock) = manual({
        let log = log.clone();
        builder.on_state_change(move |_, c| {
            let _owned = &flag;
            log.lock().unwrap().push((c.from, c.to));
        })
    });
    (breaker, clock, log, freed)
}

type Log = Arc<Mutex<Vec<(State, State)>>>;

#[tokio::test(start_paused = true)]
async fn a_call_that_outlives_its_breaker_completes_and_still_records() {
    // A call in flight holds its breaker: once every handle is gone (a reload dropped the
    // stack), the call completes and its outcome still counts, and trips the breaker here.
    let (breaker, _clock, log, freed) = logged(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .failure_rate(50.0)
            .count_window(4)
            .wait_in_open(SEC),
    );
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(backend.clone());
    let pending = svc.ready().await.unwrap().call(Req::Gated);
    drop((breaker, svc));
    assert!(
        !freed.load(SeqCst),
        "the call in flight keeps the breaker alive"
    );
    let task = tokio::spawn(pending);
    tokio::task::yield_now().await;
    backend.release(Err(io::Error::other("late")));
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner, "{err}");
    assert_eq!(
        *log.lock().unwrap(),
        vec![(State::Closed, State::Open)],
        "the late failure was recorded and tripped the breaker"
    );
    assert!(freed.load(SeqCst), "the last permit freed the breaker");
}

#[test]
fn a_probe_that_outlives_its_breaker_still_closes_it_and_a_dropped_one_frees_memory() {
    let (breaker, clock, log, freed) = logged(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert!(first.is_probe() && second.is_probe());
    let third = breaker.try_acquire().unwrap_err();
    assert_eq!(third.state(), State::HalfOpen);
    drop(breaker);
    first.record(Outcome::Success);
    assert!(!freed.load(SeqCst));
    second.record(Outcome::Success);
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    assert!(freed.load(SeqCst));

    // A cancelled call is the last holder: dropping it frees the breaker too.
    let (breaker, _clock, _log, freed) = logged(CircuitBreaker::builder());
    let permit = breaker.try_acquire().unwrap();
    drop(breaker);
    assert!(!freed.load(SeqCst));
    drop(permit);
    assert!(freed.load(SeqCst));
}

#[test]
fn a_listener_that_uses_its_breaker_does_not_keep_it_alive() {
    // The listener is handed the breaker: it captures nothing, so there is no cycle.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (flag, freed) = drop_flag();
    let (breaker, _clock) = manual({
        let seen = seen.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |b, c| {
                let _owned = &flag;
                seen.lock()
                    .unwrap()
                    .push((c.to, b.state(), b.snapshot().state));
                if c.to == State::Open {
                    b.reset(); // calling back into its own breaker, without deadlock
                }
            })
    });
    record(&breaker, Outcome::Failure);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Open, State::Open, State::Open),
            (State::Closed, State::Closed, State::Closed)
        ]
    );
    let clone = breaker.clone();
    drop(breaker);
    assert!(!freed.load(SeqCst), "a clone is still alive");
    drop(clone);
    assert!(
        freed.load(SeqCst),
        "the breaker and its listener were freed"
    );
}

#[test]
fn a_time_window_still_counts_at_the_clocks_end() {
    // From the review: at the clock's end (u64::MAX ns) a 1 ns bucket's index is u64::MAX,
    // which was also the marker of an empty bucket, so every call went uncounted and the
    // breaker could never trip on a rate.
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(5)
            .sliding_window(SlidingWindow::Time {
                duration: Duration::from_nanos(10),
                buckets: 10,
            }),
    );
    clock.advance(Duration::MAX);
    for _ in 0..4 {
        record(&breaker, Outcome::Failure);
    }
    let s = breaker.snapshot();
    assert_eq!((s.calls, s.failures), (4, 4), "four calls in the window");
    assert_eq!(s.state, State::Closed, "not yet `minimum_calls`");
    record(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.state(),
        State::Open,
        "five failures out of five trip"
    );
}

#[test]
fn a_permit_outliving_every_handle_still_trips_and_its_listener_may_reenter() {
    // The last handle is gone while a call runs; its failure still trips the breaker, and the
    // callback, handed the breaker, re-enters it (admission, overrides, snapshot), each
    // override announced in turn.
    let seen = Arc::new(AtomicUsize::new(0));
    let (breaker, _clock) = manual({
        let seen = seen.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |b, change| {
                if seen.fetch_add(1, SeqCst) != 0 {
                    return;
                }
                assert_eq!(change.to, State::Open);
                assert!(b.try_acquire().is_err());
                b.force_open();
                b.reset();
                let _ = b.snapshot();
            })
    });
    let other_handle = breaker.clone();
    let permit = breaker.try_acquire().unwrap();
    drop(breaker);
    drop(other_handle);
    permit.record(Outcome::Failure);
    // Open, then ForcedOpen and Closed from inside the callback.
    assert_eq!(seen.load(SeqCst), 3);
}
