//! [`RateLimitMetrics`]: a rate limiter listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{
    counter, describe_counter, describe_histogram, histogram, Counter, Histogram, SharedString,
    Unit,
};

use super::name_label;
use crate::rate_limit::{Event, Listener};

const REJECTIONS: &str = "resilience.rate_limiter.rejections";
const DELAY: &str = "resilience.rate_limiter.delay";

/// A rate limiter [`Listener`] that records the calls it refused and the delays of the calls
/// it made wait: see the [module docs](super) for the names.
///
/// A limiter emits nothing for a call admitted at once (that keeps its success path free of
/// dynamic calls), so there is no count of admitted calls here: count them where they are
/// served (the circuit breaker's `calls`, say), or subtract.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then a handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::rate_limit::Builder::listener) (a keyed limiter's too: the
/// key is never a label), or name the limiter and add it at once with
/// [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
#[derive(Clone)]
pub struct RateLimitMetrics {
    name: SharedString,
    rejections: Counter,
    delay: Histogram,
}

impl RateLimitMetrics {
    /// Registers the handles of the limiter named `name` (an empty one is `"default"`) with
    /// the current recorder.
    pub fn new(name: &str) -> Self {
        describe_counter!(
            REJECTIONS,
            "Calls a rate limiter refused without running them."
        );
        describe_histogram!(
            DELAY,
            Unit::Seconds,
            "The wait a rate limiter gave each call it made wait for a slot."
        );
        let name = name_label(name);
        RateLimitMetrics {
            rejections: counter!(REJECTIONS, "name" => name.clone()),
            delay: histogram!(DELAY, "name" => name.clone()),
            name,
        }
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for RateLimitMetrics {
    /// `RateLimitMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl Listener for RateLimitMetrics {
    fn on_event(&self, event: &Event) {
        match event {
            Event::RateLimited(_) => self.rejections.increment(1),
            Event::Delayed(wait) => self.delay.record(wait.as_secs_f64()),
        }
    }
}

impl fmt::Debug for RateLimitMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
