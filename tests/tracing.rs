//! With the `tracing` feature, state changes and rejections are `tracing` events.
//!
//! A binary of its own: `tracing` caches each callsite's interest process-wide, so tests on
//! other threads hitting the same callsites with no subscriber can race this test's scoped
//! subscriber and disable its events (seen when it ran among the breaker's other tests).
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, State};
use seawall::clock::{Clock, ManualClock};
use seawall::Outcome;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects every event as "field=value" pairs.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={} ", field.name(), value));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(format!("{} ", event.metadata().level()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn state_changes_and_rejections_are_traced() {
    let events = Collect::default();
    tracing::subscriber::with_default(events.clone(), || {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::builder()
            .name("inventory")
            .failure_threshold(1)
            .wait_in_open(Duration::from_secs(5))
            .clock(Clock::from(clock))
            .build()
            .unwrap();
        breaker.record(Outcome::Failure);
        assert_eq!(breaker.state(), State::Open);
        assert!(breaker.try_acquire().is_err());
    });
    let events = events.0.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(
        events[0].starts_with("INFO ")
            && events[0].contains("breaker=inventory")
            && events[0].contains("from=closed")
            && events[0].contains("to=open"),
        "{}",
        events[0]
    );
    assert!(
        events[1].starts_with("DEBUG ")
            && events[1].contains("state=open")
            && events[1].contains("retry_in_ms=5000"),
        "{}",
        events[1]
    );
}
