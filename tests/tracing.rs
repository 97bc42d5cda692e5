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

/// Collects every event as "field=value" pairs, prefixed by the span it happened in (if
/// any), and every span's fields (`spans[id - 1]`). Single-threaded tests only: the current
/// span is one stack.
#[derive(Clone, Default)]
struct Collect {
    events: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
    current: Arc<Mutex<Vec<u64>>>,
}

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
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("{} ", attributes.metadata().name()));
        attributes.record(&mut fields);
        let mut spans = self.spans.lock().unwrap();
        spans.push(fields.0);
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &Id, record: &Record<'_>) {
        let mut fields = Fields(String::new());
        record.record(&mut fields);
        self.spans.lock().unwrap()[id.into_u64() as usize - 1].push_str(&fields.0);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let span = self.current.lock().unwrap().last().copied();
        let mut fields = Fields(match span {
            Some(id) => format!("[span {id}] {} ", event.metadata().level()),
            None => format!("{} ", event.metadata().level()),
        });
        event.record(&mut fields);
        self.events.lock().unwrap().push(fields.0);
    }
    fn enter(&self, id: &Id) {
        self.current.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.current.lock().unwrap().pop();
    }
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
    let events = events.events.lock().unwrap();
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

/// A call through a named retry runs in a `retry` span at `DEBUG`, with the policy's name and
/// the attempts it made; the retry's events and those of a breaker inside it happen in it.
#[test]
fn a_call_through_a_retry_runs_in_its_span_with_the_inner_layers_events() {
    use seawall::retry::{Backoff, Jitter, Retry};
    use seawall::BoxError;
    use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

    let collect = Collect::default();
    tracing::subscriber::with_default(collect.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let retry = Retry::builder()
                .name("payments")
                .max_retries(2)
                .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
                .no_budget()
                .build()
                .unwrap();
            let breaker = CircuitBreaker::builder()
                .name("inventory")
                .failure_threshold(1)
                .build()
                .unwrap();
            let mut svc = ServiceBuilder::new()
                .layer(retry.layer())
                .layer(breaker.layer())
                .service(service_fn(|()| async {
                    Err::<(), BoxError>("down".into())
                }));
            // Fails, trips the breaker; the retry is refused by the open circuit, which the
            // retry does not retry.
            let e = svc.ready().await.unwrap().call(()).await.unwrap_err();
            assert_eq!(seawall::ErrorKind::of(&*e), seawall::ErrorKind::CircuitOpen);
        });
    });
    let spans = collect.spans.lock().unwrap().clone();
    let events = collect.events.lock().unwrap().clone();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert!(
        spans[0].starts_with("retry ")
            && spans[0].contains("retry=payments")
            && spans[0].contains("attempts=2"),
        "{spans:#?}"
    );
    let in_span = |needle: &str| {
        events
            .iter()
            .any(|e| e.starts_with("[span 1] ") && e.contains(needle))
    };
    assert!(in_span("to=open"), "{events:#?}");
    assert!(in_span("retrying"), "{events:#?}");
    assert!(in_span("circuit breaker rejected a call"), "{events:#?}");
}
