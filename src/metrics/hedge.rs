//! [`HedgeMetrics`]: a hedge listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{
    counter, describe_counter, describe_histogram, histogram, Counter, Histogram, SharedString,
    Unit,
};

use super::name_label;
use crate::hedge::{Event, HedgeListener, MAX_HEDGES};

const HEDGES: &str = "resilience.hedge.hedges";
const BUDGET_REFUSALS: &str = "resilience.hedge.budget_refusals";
const DELAY: &str = "resilience.hedge.delay";

/// The `hedge` label values: which hedge of a call, from 1 to [`MAX_HEDGES`].
const HEDGE_NUMBERS: [&str; MAX_HEDGES as usize] =
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];

/// A [`HedgeListener`] that records the hedges sent (by hedge number), the hedges the budget
/// refused, and the delay each hedge waited: see the [module docs](super) for the names.
///
/// A hedge's listeners are not told which attempt answered, so neither is this.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then an indexed handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::hedge::Builder::listener), or name the policy and add it at
/// once with [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
#[derive(Clone)]
pub struct HedgeMetrics {
    name: SharedString,
    /// Indexed by the hedge's number, from 1.
    hedges: [Counter; MAX_HEDGES as usize],
    budget_refusals: Counter,
    delay: Histogram,
}

impl HedgeMetrics {
    /// Registers the handles of the hedge named `name` (an empty one is `"default"`) with the
    /// current recorder.
    pub fn new(name: &str) -> Self {
        describe_counter!(HEDGES, "Hedges sent, by the hedge's number in its call.");
        describe_counter!(
            BUDGET_REFUSALS,
            "Hedges the retry budget refused (the call's attempts in flight carry on)."
        );
        describe_histogram!(
            DELAY,
            Unit::Seconds,
            "The delay each hedge sent waited (fixed, or the latency percentile)."
        );
        let name = name_label(name);
        HedgeMetrics {
            hedges: HEDGE_NUMBERS.map(|h| counter!(HEDGES, "name" => name.clone(), "hedge" => h)),
            budget_refusals: counter!(BUDGET_REFUSALS, "name" => name.clone()),
            delay: histogram!(DELAY, "name" => name.clone()),
            name,
        }
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for HedgeMetrics {
    /// `HedgeMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl HedgeListener for HedgeMetrics {
    fn on_event(&self, event: &Event) {
        match event {
            Event::Sent(sent) => {
                // Hedges are numbered from 1 to `MAX_HEDGES`; clamp rather than trust it.
                let i = (sent.hedge.max(1) as usize - 1).min(HEDGE_NUMBERS.len() - 1);
                self.hedges[i].increment(1);
                self.delay.record(sent.delay.as_secs_f64());
            }
            Event::BudgetExhausted(_) => self.budget_refusals.increment(1),
        }
    }
}

impl fmt::Debug for HedgeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
