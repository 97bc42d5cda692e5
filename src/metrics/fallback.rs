//! [`FallbackMetrics`]: a fallback listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{counter, describe_counter, Counter, SharedString};

use super::name_label;
use crate::error::ErrorKind;
use crate::fallback::{Event, Listener};

const USED: &str = "resilience.fallback.used";
const FAILED: &str = "resilience.fallback.failed";

/// Every kind's label, in the order of the handle arrays.
const KINDS: [&str; 7] = [
    "circuit_open",
    "timeout",
    "budget_exhausted",
    "rate_limited",
    "bulkhead_full",
    "throttled",
    "inner",
];

/// The index of `kind` in [`KINDS`]. (Exhaustive inside the crate: a new kind does not
/// compile until it has a label.)
const fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::CircuitOpen => 0,
        ErrorKind::Timeout => 1,
        ErrorKind::BudgetExhausted => 2,
        ErrorKind::RateLimited => 3,
        ErrorKind::BulkheadFull => 4,
        ErrorKind::Throttled => 5,
        ErrorKind::Inner => 6,
    }
}

/// A fallback [`Listener`] that records the calls the fallback answered and the times the
/// fallback itself failed, both by the kind of the error answered: see the
/// [module docs](super) for the names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then an indexed handle call, with no formatting and no allocation. Add it with
/// [`Fallback::listener`](crate::fallback::Fallback::listener), or name the policy and add it
/// at once with [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics) (on a
/// [`Fallback`](crate::fallback::Fallback) or a [`FallbackLayer`](crate::fallback::FallbackLayer)).
#[derive(Clone)]
pub struct FallbackMetrics {
    name: SharedString,
    /// Indexed by [`kind_index`].
    used: [Counter; KINDS.len()],
    /// Indexed by [`kind_index`].
    failed: [Counter; KINDS.len()],
}

impl FallbackMetrics {
    /// Registers the handles of the fallback named `name` (an empty one is `"default"`) with
    /// the current recorder.
    pub fn new(name: &str) -> Self {
        describe_counter!(
            USED,
            "Calls a fallback answered, by the kind of the error it answered."
        );
        describe_counter!(
            FAILED,
            "Fallbacks that failed to answer, by the kind of the error they were answering."
        );
        let name = name_label(name);
        FallbackMetrics {
            used: KINDS.map(|k| counter!(USED, "name" => name.clone(), "error_kind" => k)),
            failed: KINDS.map(|k| counter!(FAILED, "name" => name.clone(), "error_kind" => k)),
            name,
        }
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for FallbackMetrics {
    /// `FallbackMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl Listener for FallbackMetrics {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Used(used) => self.used[kind_index(used.kind())].increment(1),
            Event::Failed(failed) => self.failed[kind_index(failed.kind())].increment(1),
        }
    }
}

impl fmt::Debug for FallbackMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
