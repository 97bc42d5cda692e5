//! Listeners, events, snapshots, and the observation seam.

use crate::prelude::*;

// ===== observability =====

#[test]
fn listener_sees_every_transition_in_order() {
    let log: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let (breaker, clock) = manual({
        let log = log.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .half_open_max_calls(1)
            .wait_in_open(SEC)
            .on_state_change(move |_, c| log.lock().unwrap().push(*c))
    });

    record(&breaker, Outcome::Failure); // Closed -> Open
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap(); // Open -> HalfOpen
    probe.record(Outcome::Failure); // HalfOpen -> Open
    clock.advance(SEC);
    record(&breaker, Outcome::Success); // Open -> HalfOpen -> Closed
    breaker.force_open(); // Closed -> ForcedOpen
    breaker.force_open(); // no change
    breaker.reset(); // ForcedOpen -> Closed
    breaker.disable(); // Closed -> Disabled
    breaker.disable(); // no change
    breaker.reset(); // Disabled -> Closed

    use State::*;
    let log = log.lock().unwrap();
    let pairs: Vec<(State, State)> = log.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        pairs,
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, ForcedOpen),
            (ForcedOpen, Closed),
            (Closed, Disabled),
            (Disabled, Closed),
        ]
    );
    for w in log.windows(2) {
        assert_eq!(w[1].generation, w[0].generation + 1, "{log:?}");
    }
}

#[test]
fn snapshot_reports_state_counts_rates_and_timers() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(60.0)
            .slow_call_rate(60.0)
            .slow_call_duration(SEC)
            .count_window(10)
            .minimum_calls(4)
            .wait_in_open(secs(20))
            .half_open_max_calls(2),
    );
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::Closed);
    assert_eq!((snap.calls, snap.failures, snap.slow_calls), (0, 0, 0));
    assert_eq!(
        (snap.failure_rate, snap.slow_call_rate, snap.retry_in),
        (None, None, None)
    );

    record(&breaker, Outcome::Failure);
    let slow = breaker.try_acquire().unwrap();
    clock.advance(secs(2));
    slow.record(Outcome::Success);
    record(&breaker, Outcome::Success);
    let snap = breaker.snapshot();
    assert_eq!((snap.calls, snap.failures, snap.slow_calls), (3, 1, 1));
    assert_eq!(snap.consecutive_failures, 0);
    assert_eq!(snap.failure_rate, None, "3 calls < minimum_calls");
    record(&breaker, Outcome::Failure);
    let snap = breaker.snapshot();
    assert_eq!(snap.consecutive_failures, 1);
    assert_eq!(snap.failure_rate, Some(50.0));
    assert_eq!(snap.slow_call_rate, Some(25.0));
    assert_eq!(snap.state, State::Closed);

    record(&breaker, Outcome::Failure); // 3/5 = 60 %: trip
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::Open);
    assert_eq!(snap.retry_in, Some(secs(20)));
    clock.advance(secs(5));
    assert_eq!(breaker.snapshot().retry_in, Some(secs(15)));

    clock.advance(secs(15));
    let probe = breaker.try_acquire().unwrap();
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (1, 0));
    assert_eq!(snap.retry_in, None);
    probe.record(Outcome::Success);
    let snap = breaker.snapshot();
    assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 1));
}

#[test]
fn listener_may_call_back_into_the_breaker() {
    let cell: Arc<std::sync::OnceLock<CircuitBreaker>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (breaker, _clock) = manual({
        let (cell, seen) = (cell.clone(), seen.clone());
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |_, c| {
                let b = cell.get().expect("set before any transition");
                // Reads the state the change led to: no lock is held during the callback.
                seen.lock()
                    .unwrap()
                    .push((c.to, b.state(), b.snapshot().state));
            })
    });
    cell.set(breaker.clone()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let b = breaker.clone();
    std::thread::spawn(move || {
        record(&b, Outcome::Failure);
        b.reset();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a listener calling back into the breaker deadlocked");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Open, State::Open, State::Open),
            (State::Closed, State::Closed, State::Closed)
        ]
    );
}

#[test]
fn panicking_classifier_or_inner_call_frees_the_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);

    // The inner service panics inside `call`.
    let mut svc = breaker.layer().layer(tower::service_fn(|boom: bool| {
        assert!(!boom, "inner service panicked");
        futures::future::ready(Ok::<_, io::Error>("ok"))
    }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(svc.call(true));
    }));
    assert!(r.is_err());
    assert_eq!(breaker.snapshot().probes_in_flight, 0);

    // The classifier panics.
    let mut svc = breaker
        .layer()
        .classifier(|_: &Result<&'static str, io::Error>| -> Outcome {
            panic!("classifier panicked")
        })
        .layer(tower::service_fn(|_: ()| {
            futures::future::ready(Ok::<_, io::Error>("ok"))
        }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(svc.call(()))
    }));
    assert!(r.is_err());
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(snap.probes_in_flight, 0, "no slot leaked");
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), State::Closed);
}

// ===== the observation seam =====

/// Logs every event a listener receives.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Listener for Events {
    fn on_event(&self, _: &CircuitBreaker, event: &Event) {
        self.0.lock().unwrap().push(*event);
    }
}

impl Events {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn recorded(outcome: Outcome, slow: bool, probe: bool) -> Event {
    Event::Recorded(Recorded {
        outcome,
        slow,
        probe,
    })
}

#[test]
fn every_outcome_rejection_and_state_change_reaches_a_listener() {
    let events = Events::default();
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(SEC)
            .half_open_max_calls(1)
            .listener(events.clone()),
    );
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Ignored);
    record(&breaker, Outcome::Failure);
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Success, false, false),
            recorded(Outcome::Ignored, false, false),
            recorded(Outcome::Failure, false, false),
        ]
    );
    record(&breaker, Outcome::Failure); // trips: the outcome first, then the change it caused
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Failure, false, false),
            Event::StateChange(StateChange {
                from: State::Closed,
                to: State::Open,
                generation: 1
            }),
            Event::Rejected(open),
        ]
    );
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap();
    let full = breaker.try_acquire().unwrap_err();
    probe.record(Outcome::Success);
    assert_eq!(
        events.take(),
        vec![
            Event::StateChange(StateChange {
                from: State::Open,
                to: State::HalfOpen,
                generation: 2
            }),
            Event::Rejected(full),
            recorded(Outcome::Success, false, true),
            Event::StateChange(StateChange {
                from: State::HalfOpen,
                to: State::Closed,
                generation: 3
            }),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_listener_sees_slow_calls() {
    let events = Events::default();
    let breaker = build(
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .slow_call_rate(100.0)
            .slow_call_duration(ms(100))
            .minimum_calls(5)
            .listener(events.clone()),
    );
    let mut svc = ServiceBuilder::new()
        .layer(breaker.layer())
        .service(Backend::default());
    send(&mut svc, Req::SleepOk(100)).await.unwrap();
    send(&mut svc, Req::SleepOk(99)).await.unwrap();
    assert_eq!(
        events.take(),
        vec![
            recorded(Outcome::Success, true, false),
            recorded(Outcome::Success, false, false)
        ]
    );
}

#[test]
fn a_listener_panicking_on_an_outcome_cannot_leak_a_probe_slot() {
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(2)
            .listener(|_: &CircuitBreaker, e: &Event| {
                if matches!(e, Event::Recorded(r) if r.probe && r.outcome == Outcome::Ignored) {
                    panic!("exporter down");
                }
            }),
    );
    record(&breaker, Outcome::Failure);
    clock.advance(SEC);
    let probe = breaker.try_acquire().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe.record(Outcome::Ignored)
    }));
    assert!(r.is_err(), "the listener panicked through record");
    let snap = breaker.snapshot();
    assert_eq!(snap.state, State::HalfOpen);
    assert_eq!(
        (snap.probes_in_flight, snap.probe_successes),
        (0, 0),
        "the slot was freed exactly once"
    );
    for _ in 0..2 {
        record(&breaker, Outcome::Success);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_listener_without_events_of_interest_changes_nothing() {
    // `on_state_change` is sugar over a listener: outcomes and rejections do not reach it.
    let calls = Arc::new(AtomicUsize::new(0));
    let (breaker, _clock) = manual({
        let calls = calls.clone();
        CircuitBreaker::builder()
            .failure_threshold(1)
            .on_state_change(move |_, _| {
                calls.fetch_add(1, SeqCst);
            })
    });
    record(&breaker, Outcome::Success);
    record(&breaker, Outcome::Failure);
    let _ = breaker.try_acquire().unwrap_err();
    assert_eq!(calls.load(SeqCst), 1, "one state change");
}

#[test]
fn a_panicking_listener_hides_no_event_from_the_others() {
    // From the review: a listener panicking on the outcome that tripped the breaker unwound
    // past the announcement of the trip, and stopped the listeners after it, so a metrics
    // exporter was never told the breaker was open.
    let events = Events::default();
    let (breaker, clock) = manual(
        CircuitBreaker::builder()
            .failure_threshold(1)
            .wait_in_open(SEC)
            .half_open_max_calls(1)
            .listener(|_: &CircuitBreaker, e: &Event| {
                if matches!(e, Event::Recorded(_)) {
                    panic!("buggy user listener");
                }
            })
            .listener(|_: &CircuitBreaker, e: &Event| {
                if matches!(e, Event::StateChange(_)) {
                    panic!("second buggy listener");
                }
            })
            .listener(events.clone()),
    );
    let permit = breaker.try_acquire().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        permit.record(Outcome::Failure)
    }));
    let payload = r.expect_err("the user's listener panicked through record");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"buggy user listener"),
        "the first panic is the one that resumes"
    );
    assert_eq!(breaker.state(), State::Open, "the trip took effect");
    let opened = Event::StateChange(StateChange {
        from: State::Closed,
        to: State::Open,
        generation: 1,
    });
    assert_eq!(
        events.take(),
        vec![recorded(Outcome::Failure, false, false), opened],
        "the last listener saw the outcome and the change it caused"
    );

    // The same for a failed probe: the re-open is announced and the slot is not leaked.
    clock.advance(SEC);
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| breaker.try_acquire()));
    assert!(
        probe.is_err(),
        "the second listener panicked on the half-open change"
    );
    assert_eq!(
        breaker.snapshot().probes_in_flight,
        0,
        "the unwound probe freed its slot"
    );
    let probe = breaker.try_acquire().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe.record(Outcome::Failure)
    }));
    assert!(r.is_err());
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        events.take(),
        vec![
            Event::StateChange(StateChange {
                from: State::Open,
                to: State::HalfOpen,
                generation: 2,
            }),
            recorded(Outcome::Failure, false, true),
            Event::StateChange(StateChange {
                from: State::HalfOpen,
                to: State::Open,
                generation: 3,
            }),
        ]
    );
}
