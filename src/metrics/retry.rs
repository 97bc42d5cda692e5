//! [`RetryMetrics`]: a retry listener recording to the `metrics` facade.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, SharedString, Unit,
};

use super::name_label;
use crate::retry::{CallOutcome, Event, GiveUpReason, RetryBudget, RetryListener, RetryReason};

const RETRIES: &str = "resilience.retry.retries";
const GIVE_UPS: &str = "resilience.retry.give_ups";
const DELAY: &str = "resilience.retry.delay";
const CALLS: &str = "resilience.retry.calls";
const CALL_DURATION: &str = "resilience.retry.call_duration";
const ATTEMPT_DURATION: &str = "resilience.retry.attempt_duration";
const BUDGET_BALANCE: &str = "resilience.retry.budget.balance";

/// The budget gauge is refreshed at every retry and give-up, and at every this-many ended
/// calls (a balance read costs a clock read and a short lock: not once per call).
pub(crate) const BALANCE_EVERY: u32 = 64;

/// The `reason` label values of a retry, in the order of [`retry_reason_index`].
const RETRY_REASONS: [&str; 3] = [
    RetryReason::Error.as_str(),
    RetryReason::Response.as_str(),
    RetryReason::Timeout.as_str(),
];

const fn retry_reason_index(reason: RetryReason) -> usize {
    match reason {
        RetryReason::Error => 0,
        RetryReason::Response => 1,
        RetryReason::Timeout => 2,
    }
}

/// The `outcome` label values of a call, in the order of [`outcome_index`].
const OUTCOMES: [&str; 3] = [
    CallOutcome::Success.as_str(),
    CallOutcome::NotRetryable.as_str(),
    CallOutcome::GaveUp(GiveUpReason::RetriesUsedUp).as_str(),
];

const fn outcome_index(outcome: CallOutcome) -> usize {
    match outcome {
        CallOutcome::Success => 0,
        CallOutcome::NotRetryable => 1,
        CallOutcome::GaveUp(_) => 2,
    }
}

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

/// A [`RetryListener`] that records calls by outcome, retries by attempt and reason,
/// give-ups by reason, the delays waited, attempt and call durations and the budget's
/// balance: see the [module docs](super) for the names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then an indexed handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::retry::Builder::listener) or
/// [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
pub struct RetryMetrics {
    name: SharedString,
    /// `retries[attempt - 1][reason]`: by the failed attempt, from 1 (the last holds every
    /// later one), and by [`retry_reason_index`].
    retries: [[Counter; RETRY_REASONS.len()]; ATTEMPTS.len()],
    /// Indexed by [`reason_index`].
    give_ups: [Counter; REASONS.len()],
    delay: Histogram,
    /// `calls[outcome][retried]`, by [`outcome_index`] and whether the call was retried.
    calls: [[Counter; 2]; OUTCOMES.len()],
    /// By [`outcome_index`].
    call_duration: [Histogram; OUTCOMES.len()],
    attempt_duration: Histogram,
    balance: Gauge,
    /// Ended calls, to refresh `balance` every [`BALANCE_EVERY`].
    ended: AtomicU32,
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
        describe_counter!(
            CALLS,
            "Calls through a retry, by how they ended and whether they were retried."
        );
        describe_histogram!(
            CALL_DURATION,
            Unit::Seconds,
            "Calls through a retry, from start to answer, backoffs included."
        );
        describe_histogram!(
            ATTEMPT_DURATION,
            Unit::Seconds,
            "Each attempt of a call through a retry."
        );
        describe_gauge!(
            BUDGET_BALANCE,
            "The retries the retry budget would allow now (0 without a budget)."
        );
        let name = name_label(name);
        RetryMetrics {
            retries: ATTEMPTS.map(|a| {
                RETRY_REASONS.map(
                    |r| counter!(RETRIES, "name" => name.clone(), "attempt" => a, "reason" => r),
                )
            }),
            give_ups: REASONS.map(|r| counter!(GIVE_UPS, "name" => name.clone(), "reason" => r)),
            delay: histogram!(DELAY, "name" => name.clone()),
            calls: OUTCOMES.map(|o| {
                ["false", "true"].map(|retried| {
                    counter!(CALLS, "name" => name.clone(), "outcome" => o, "retried" => retried)
                })
            }),
            call_duration: OUTCOMES
                .map(|o| histogram!(CALL_DURATION, "name" => name.clone(), "outcome" => o)),
            attempt_duration: histogram!(ATTEMPT_DURATION, "name" => name.clone()),
            balance: gauge!(BUDGET_BALANCE, "name" => name.clone()),
            ended: AtomicU32::new(0),
            name,
        }
    }

    fn set_balance(&self, budget: Option<&RetryBudget>) {
        if let Some(budget) = budget {
            self.balance.set(budget.balance());
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
                self.retries[i][retry_reason_index(retry.reason)].increment(1);
                self.delay.record(retry.delay.as_secs_f64());
                self.set_balance(retry.budget);
            }
            Event::GiveUp(give_up) => {
                self.give_ups[reason_index(give_up.reason)].increment(1);
                self.set_balance(give_up.budget);
            }
            Event::Attempt(attempt) => self.attempt_duration.record(attempt.duration.as_secs_f64()),
            Event::Finished(call) => {
                let outcome = outcome_index(call.outcome);
                self.calls[outcome][usize::from(call.attempts > 1)].increment(1);
                self.call_duration[outcome].record(call.duration.as_secs_f64());
                // Relaxed: only spaces the refreshes out; which call refreshes is immaterial.
                if self
                    .ended
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(BALANCE_EVERY)
                {
                    self.set_balance(call.budget);
                }
            }
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
