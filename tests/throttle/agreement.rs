//! The bare API and the layer make the same decisions: two throttles with the same seed
//! and clock, driven through the same script, one as a tower layer and one with
//! `AdaptiveThrottle::call`, shed the same calls with the same `ErrorKind`.

use crate::prelude::*;

/// The script: which requests the backend accepts. Mostly rejections, with runs of
/// accepts, and time moving on, so the probability rises, falls and rises again.
fn script() -> impl Iterator<Item = (bool, Duration)> {
    (0..600u32).map(|i| {
        let accept = (i / 50) % 3 == 2 || i % 7 == 0;
        let step = Duration::from_millis(if i % 10 == 0 { 150 } else { 0 });
        (accept, step)
    })
}

fn via_layer() -> (Vec<Seen>, Snapshot, usize) {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(t.layer())
        .service(backend.service());
    let seen = script()
        .map(|(accept, step)| {
            time.advance(step);
            match call_now(&mut svc, accept) {
                Ok(_) => Seen::Accepted,
                Err(e) if e.is::<Throttled>() => Seen::Shed(ErrorKind::of(&*e)),
                Err(e) => Seen::Failed(ErrorKind::of(&*e)),
            }
        })
        .collect();
    (seen, t.snapshot(), backend.calls())
}

fn via_bare() -> (Vec<Seen>, Snapshot, usize) {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let backend = Backend::default();
    let seen = script()
        .map(|(accept, step)| {
            time.advance(step);
            let fut = pin!(t.call(|| backend.run(accept)));
            match poll_once(fut) {
                Poll::Ready(Ok(_)) => Seen::Accepted,
                Poll::Ready(Err(e @ CallError::Rejected(_))) => Seen::Shed(ErrorKind::of(&e)),
                Poll::Ready(Err(e)) => Seen::Failed(e.kind()),
                Poll::Pending => panic!("a ready backend"),
            }
        })
        .collect();
    (seen, t.snapshot(), backend.calls())
}

#[test]
fn layer_and_bare_call_shed_the_same_calls_with_the_same_kind() {
    let (layer, layer_end, layer_calls) = via_layer();
    let (bare, bare_end, bare_calls) = via_bare();
    assert_eq!(layer, bare);
    assert_eq!(layer_end, bare_end);
    assert_eq!(layer_calls, bare_calls);
    let shed = layer.iter().filter(|s| matches!(s, Seen::Shed(_))).count();
    assert!(shed > 50, "the script makes the throttle shed: {shed}");
    assert!(layer.contains(&Seen::Accepted));
    assert!(layer
        .iter()
        .all(|s| !matches!(s, Seen::Shed(k) if *k != ErrorKind::Throttled)));
    assert!(layer
        .iter()
        .all(|s| !matches!(s, Seen::Failed(k) if *k != ErrorKind::Inner)));
    assert_eq!(
        layer_calls + shed,
        600,
        "a shed call never reaches the backend"
    );
}

#[test]
fn try_acquire_and_record_make_the_same_decisions_as_call() {
    let time = ManualClock::new();
    let a = throttle(&time, 2.0);
    let b = throttle(&time, 2.0);
    let backend = Backend::default();
    for (accept, step) in script() {
        time.advance(step);
        let by_hand = match a.try_acquire() {
            Ok(permit) => {
                permit.record(if accept {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
                true
            }
            Err(_) => false,
        };
        let by_call = !matches!(
            poll_once(pin!(b.call(|| backend.run(accept)))),
            Poll::Ready(Err(CallError::Rejected(_)))
        );
        assert_eq!(by_hand, by_call);
    }
    assert_eq!(a.snapshot(), b.snapshot());
}

/// A seawall refusal from further in (here an open circuit) did not ask the backend: the
/// throttle counts nothing for it, by the layer and by the bare call, so it does not go on
/// shedding after the circuit closes.
#[test]
fn an_inner_refusal_counts_nothing() {
    use seawall::circuit_breaker::CircuitBreaker;
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let breaker = CircuitBreaker::default();
    breaker.force_open();
    let backend = Backend::default();
    let mut svc = ServiceBuilder::new()
        .layer(t.layer())
        .layer(breaker.layer())
        .service(backend.service());
    for _ in 0..10 {
        let err = call_now(&mut svc, true).unwrap_err();
        assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
        let r = poll_once(pin!(t.call(|| breaker.call(|| backend.run(true)))));
        assert!(matches!(r, Poll::Ready(Err(CallError::Inner(_)))));
    }
    assert_eq!(backend.calls(), 0);
    let s = t.snapshot();
    assert_eq!((s.requests, s.accepts, s.probability), (0, 0, 0.0));
    // The backend's own errors still count.
    breaker.reset();
    let _ = call_now(&mut svc, false);
    assert_eq!(t.snapshot().requests, 1);
}
