//! Listeners hear every local rejection and every start and end of shedding, once each;
//! snapshots report the window.

use crate::prelude::*;

fn recorded(time: &ManualClock) -> (AdaptiveThrottle, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let t = AdaptiveThrottle::builder()
        .window(Duration::from_secs(10))
        .clock(time.clone())
        .seed(3)
        .name("backend")
        .listener(move |t: &AdaptiveThrottle, e: &Event| {
            assert_eq!(t.name(), Some("backend"));
            sink.lock().unwrap().push(*e);
        })
        .build()
        .unwrap();
    (t, events)
}

#[test]
fn listeners_hear_shedding_start_each_rejection_and_shedding_stop() {
    let time = ManualClock::new();
    let (t, events) = recorded(&time);
    t.record(Outcome::Success);
    assert!(events.lock().unwrap().is_empty(), "an accept is no event");
    t.record(Outcome::Failure);
    assert!(
        events.lock().unwrap().is_empty(),
        "2 requests, 1 accept: nothing shed"
    );
    t.record(Outcome::Failure); // 3 requests, 1 accept: p = 1/4
    let mut sheds = 0;
    for _ in 0..20 {
        match t.try_acquire() {
            Ok(permit) => permit.record(Outcome::Failure),
            Err(_) => sheds += 1,
        }
    }
    time.advance(Duration::from_secs(10));
    let _ = t.snapshot(); // the window empties: shedding stops
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events[0],
        Event::SheddingStarted {
            probability: 0.25,
            requests: 3,
            accepts: 1,
        }
    );
    let rejected = events
        .iter()
        .filter(|e| matches!(e, Event::Rejected(_)))
        .count();
    assert_eq!(rejected, sheds);
    assert!(sheds > 0);
    assert_eq!(events.last(), Some(&Event::SheddingStopped));
    assert_eq!(events.len(), sheds + 2, "{events:?}");
}

#[test]
fn a_rejection_says_what_the_backend_accepted() {
    let time = ManualClock::new();
    let (t, _) = recorded(&time);
    for _ in 0..4 {
        t.record(Outcome::Success);
    }
    for _ in 0..12 {
        t.record(Outcome::Failure);
    }
    let throttled = (0..1_000)
        .find_map(|_| t.try_acquire().err())
        .expect("shed at p > 0");
    let msg = throttled.to_string();
    assert!(
        msg.starts_with("throttled locally: backend accepted 4 of the last "),
        "{msg}"
    );
    assert_eq!(ErrorKind::of(&throttled), ErrorKind::Throttled);
    let s = t.snapshot();
    assert_eq!(s.accepts, 4);
    assert_eq!(s.probability, rejection_probability(s.requests, 4, 2.0));
    assert_eq!((s.k, s.window), (2.0, Duration::from_secs(10)));
}

#[test]
fn configuration_errors_name_the_field() {
    let e = AdaptiveThrottle::builder().k(0.9).build().unwrap_err();
    assert_eq!(e.field(), "k");
    let e = AdaptiveThrottle::builder().k(f64::NAN).build().unwrap_err();
    assert_eq!(e, ConfigError::NotFinite { field: "k" });
    let e = AdaptiveThrottle::builder()
        .window(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, ConfigError::Zero { field: "window" });
}
