//! [`BulkheadMetrics`]: a bulkhead listener recording to the `metrics` facade.

use std::fmt;
use std::time::Duration;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, SharedString, Unit,
};

use super::name_label;
use crate::bulkhead::{Bulkhead, Event, Listener};

const CALLS: &str = "resilience.bulkhead.calls";
const WAIT: &str = "resilience.bulkhead.wait";
const MAX_CONCURRENT: &str = "resilience.bulkhead.max_concurrent";
const AVAILABLE: &str = "resilience.bulkhead.available";
const IN_FLIGHT: &str = "resilience.bulkhead.in_flight";
const WAITING: &str = "resilience.bulkhead.waiting";

/// A bulkhead [`Listener`] that records calls admitted and rejected, and how long the calls
/// that waited for a slot waited: see the [module docs](super) for the names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then a handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::bulkhead::Builder::listener), or name the bulkhead and add it
/// at once with [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
///
/// # Gauges
///
/// A bulkhead tells its listeners when a call takes a slot, not when it gives it back (that
/// would cost every release a check), so the slot gauges cannot follow events. They are read
/// from the bulkhead when asked: keep a clone of the listener (clones share their handles)
/// and call [`record_gauges`](Self::record_gauges) before each scrape, or on a timer.
///
/// ```
/// use seawall::bulkhead::Bulkhead;
/// use seawall::metrics::BulkheadMetrics;
///
/// let metrics = BulkheadMetrics::new("payments");
/// let bulkhead = Bulkhead::builder()
///     .name("payments")
///     .max_concurrent(4)
///     .listener(metrics.clone())
///     .build()
///     .expect("valid configuration");
/// let _permit = bulkhead.try_acquire().expect("a slot is free");
/// metrics.record_gauges(&bulkhead); // available 3, in flight 1, waiting 0, max 4
/// ```
#[derive(Clone)]
pub struct BulkheadMetrics {
    name: SharedString,
    admitted: Counter,
    rejected: Counter,
    waited_admitted: Histogram,
    waited_rejected: Histogram,
    max_concurrent: Gauge,
    available: Gauge,
    in_flight: Gauge,
    waiting: Gauge,
}

impl BulkheadMetrics {
    /// Registers the handles of the bulkhead named `name` (an empty one is `"default"`) with
    /// the current recorder.
    pub fn new(name: &str) -> Self {
        describe_counter!(
            CALLS,
            "Calls through a bulkhead: admitted (took a slot) or rejected (every slot stayed busy)."
        );
        describe_histogram!(
            WAIT,
            Unit::Seconds,
            "How long calls that found every slot busy waited, by outcome."
        );
        describe_gauge!(
            MAX_CONCURRENT,
            "How many calls a bulkhead lets run at once."
        );
        describe_gauge!(AVAILABLE, "A bulkhead's free slots, when last read.");
        describe_gauge!(
            IN_FLIGHT,
            "Calls holding a bulkhead's slot, when last read."
        );
        describe_gauge!(
            WAITING,
            "Calls waiting for a bulkhead's slot, when last read."
        );
        let name = name_label(name);
        let calls =
            |outcome: &'static str| counter!(CALLS, "name" => name.clone(), "outcome" => outcome);
        let wait =
            |outcome: &'static str| histogram!(WAIT, "name" => name.clone(), "outcome" => outcome);
        BulkheadMetrics {
            admitted: calls("admitted"),
            rejected: calls("rejected"),
            waited_admitted: wait("admitted"),
            waited_rejected: wait("rejected"),
            max_concurrent: gauge!(MAX_CONCURRENT, "name" => name.clone()),
            available: gauge!(AVAILABLE, "name" => name.clone()),
            in_flight: gauge!(IN_FLIGHT, "name" => name.clone()),
            waiting: gauge!(WAITING, "name" => name.clone()),
            name,
        }
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the slot gauges from `bulkhead`'s [`snapshot`](Bulkhead::snapshot): its
    /// `max_concurrent`, free slots, calls in flight and calls waiting.
    pub fn record_gauges(&self, bulkhead: &Bulkhead) {
        let s = bulkhead.snapshot();
        // Precision does not matter: gauges are f64 and slot counts are far below 2^53.
        self.max_concurrent.set(s.max_concurrent as f64);
        self.available.set(s.available as f64);
        self.in_flight.set(s.in_flight as f64);
        self.waiting.set(s.waiting as f64);
    }
}

impl Default for BulkheadMetrics {
    /// `BulkheadMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl Listener for BulkheadMetrics {
    fn on_event(&self, _: &Bulkhead, event: &Event) {
        match event {
            Event::Admitted { waited } => {
                self.admitted.increment(1);
                // A call admitted at once read no clock and waited nothing: not a wait.
                if *waited > Duration::ZERO {
                    self.waited_admitted.record(waited.as_secs_f64());
                }
            }
            Event::Rejected(full) => {
                self.rejected.increment(1);
                if full.waited() > Duration::ZERO {
                    self.waited_rejected.record(full.waited().as_secs_f64());
                }
            }
        }
    }
}

impl fmt::Debug for BulkheadMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
