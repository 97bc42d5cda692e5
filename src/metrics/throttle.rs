//! [`ThrottleMetrics`]: an adaptive throttle listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Counter, Gauge, SharedString};

use super::name_label;
use crate::throttle::{AdaptiveThrottle, Event, Listener};

const REJECTIONS: &str = "resilience.throttle.rejections";
const PROBABILITY: &str = "resilience.throttle.probability";

/// An adaptive throttle [`Listener`] that records the calls it shed locally and its rejection
/// probability (read from the throttle at each event): see the [module docs](super) for the
/// names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then a handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::throttle::Builder::listener), or name the throttle and add it
/// at once with [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
pub struct ThrottleMetrics {
    name: SharedString,
    rejections: Counter,
    probability: Gauge,
}

impl ThrottleMetrics {
    /// Registers the handles of the throttle named `name` (an empty one is `"default"`) with
    /// the current recorder, and sets the probability gauge to 0 (a throttle starts
    /// shedding nothing).
    pub fn new(name: &str) -> Self {
        describe_counter!(REJECTIONS, "Calls an adaptive throttle shed locally.");
        describe_gauge!(
            PROBABILITY,
            "The probability with which an adaptive throttle sheds calls."
        );
        let name = name_label(name);
        let metrics = ThrottleMetrics {
            rejections: counter!(REJECTIONS, "name" => name.clone()),
            probability: gauge!(PROBABILITY, "name" => name.clone()),
            name,
        };
        metrics.probability.set(0.0);
        metrics
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for ThrottleMetrics {
    /// `ThrottleMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl Listener for ThrottleMetrics {
    fn on_event(&self, throttle: &AdaptiveThrottle, event: &Event) {
        if let Event::Rejected(_) = event {
            self.rejections.increment(1);
        }
        // The probability now, not the event's: events of two threads may reach listeners
        // in the reverse order of their changes, and a stale `SheddingStarted` written last
        // would stay (no later event comes while nothing is shed).
        self.probability.set(throttle.probability());
    }
}

impl fmt::Debug for ThrottleMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
