//! [`RetryMetrics`]: a retry listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{
    counter, describe_counter, describe_histogram, histogram, Counter, Histogram, SharedString,
    Unit,
};

use super::name_label;
use crate::retry::{Event, GiveUpReason, RetryListener};

const RETRIES: &str = "resilience.retry.retries";
const GIVE_UPS: &str = "resilience.retry.give_ups";
const DELAY: &str = "resilience.retry.delay";

/// The `attempt` label values: the attempt that failed, from 1; the last one holds the rest.
const ATTEMPTS: [&str; 10] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10+"];

/// Every give-up reason's label, in the order of the handle array. (The match below is
/// exhaustive inside the crate: a new reason does not compile until it has a label.)
const REASONS: [&str; 8] = [
    "retries_used_up",
    "deadline",
    "budget_exhausted",
    "no_timer",
    "request_not_copied",
    "not_idempotent",
    "retry_after_too_long",
    "not_ready",
];

const fn reason_index(reason: GiveUpReason) -> usize {
    match reason {
        GiveUpReason::RetriesUsedUp => 0,
        GiveUpReason::Deadline => 1,
        GiveUpReason::BudgetExhausted => 2,
        GiveUpReason::NoTimer => 3,
        GiveUpReason::RequestNotCopied => 4,
        GiveUpReason::NotIdempotent => 5,
        GiveUpReason::RetryAfterTooLong => 6,
        GiveUpReason::NotReady => 7,
    }
}

/// A [`RetryListener`] that records retries by attempt, give-ups by reason and the delays
/// waited: see the [module docs](super) for the names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then an indexed handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::retry::Builder::listener) or
/// [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
pub struct RetryMetrics {
    name: SharedString,
    /// Indexed by the failed attempt, from 1; the last holds every later one.
    retries: [Counter; ATTEMPTS.len()],
    /// Indexed by [`reason_index`].
    give_ups: [Counter; REASONS.len()],
    delay: Histogram,
}

impl RetryMetrics {
    /// Registers the handles of the retry named `name` (an empty one is `"default"`) with the
    /// current recorder.
    pub fn new(name: &str) -> Self {
        describe_counter!(
            RETRIES,
            "Retries, by the number of the attempt that failed."
        );
        describe_counter!(GIVE_UPS, "Retryable failures that ended a call, by reason.");
        describe_histogram!(DELAY, Unit::Seconds, "The wait before each retry.");
        let name = name_label(name);
        RetryMetrics {
            retries: ATTEMPTS.map(|a| counter!(RETRIES, "name" => name.clone(), "attempt" => a)),
            give_ups: REASONS.map(|r| counter!(GIVE_UPS, "name" => name.clone(), "reason" => r)),
            delay: histogram!(DELAY, "name" => name.clone()),
            name,
        }
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for RetryMetrics {
    /// `RetryMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl RetryListener for RetryMetrics {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Retry(retry) => {
                let i = (retry.attempt.max(1) as usize - 1).min(ATTEMPTS.len() - 1);
                self.retries[i].increment(1);
                self.delay.record(retry.delay.as_secs_f64());
            }
            Event::GiveUp(give_up) => self.give_ups[reason_index(give_up.reason)].increment(1),
        }
    }
}

impl fmt::Debug for RetryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
