//! [`BreakerMetrics`]: a circuit breaker listener recording to the `metrics` facade.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Counter, Gauge, SharedString};

use super::name_label;
use crate::circuit_breaker::{CircuitBreaker, Event, Listener, State};
use crate::classify::Outcome;

const CALLS: &str = "resilience.circuit_breaker.calls";
const SLOW_CALLS: &str = "resilience.circuit_breaker.slow_calls";
const STATE: &str = "resilience.circuit_breaker.state";
const TRANSITIONS: &str = "resilience.circuit_breaker.transitions";
const PROBES: &str = "resilience.circuit_breaker.probes";
const FAILURE_RATE: &str = "resilience.circuit_breaker.failure_rate";
const SLOW_CALL_RATE: &str = "resilience.circuit_breaker.slow_call_rate";

/// The rate gauges are refreshed at every failure, slow call and state change, and at every
/// this-many other recorded calls (reading the window takes its lock: not once per call).
pub(crate) const RATES_EVERY: u32 = 64;

/// Every state, in the order of the handle arrays.
const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
];

/// The index of `state` in [`STATES`].
const fn index(state: State) -> usize {
    match state {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
        State::ForcedOpen => 3,
        State::Disabled => 4,
    }
}

/// A breaker [`Listener`] that records calls by outcome, the state as a gauge (one series per
/// state) and transitions: see the [module docs](super) for the names.
///
/// Its handles are registered by [`new`](Self::new), with the recorder current then; each
/// event is then an indexed handle call, with no formatting and no allocation. Add it with
/// [`Builder::listener`](crate::circuit_breaker::Builder::listener), or name the breaker and
/// add it at once with [`WithMetrics::with_metrics`](super::WithMetrics::with_metrics).
///
/// The `name` label is the name given to `new` (an empty one is `"default"`), not the
/// breaker's: a listener is made before the breaker it observes, and registering its handles
/// then is what keeps events free of formatting. `with_metrics` gives both the same name.
pub struct BreakerMetrics {
    name: SharedString,
    success: Counter,
    failure: Counter,
    ignored: Counter,
    rejected: Counter,
    slow: Counter,
    /// One series per state, indexed by [`index`].
    state: [Gauge; 5],
    /// `transitions[from][to]`; the diagonal is never used (and never registered).
    transitions: [[Counter; 5]; 5],
    /// Probes by outcome: success, failure, ignored.
    probes: [Counter; 3],
    failure_rate: Gauge,
    slow_call_rate: Gauge,
    /// Recorded calls that did not refresh the rates, to refresh them every [`RATES_EVERY`].
    recorded: AtomicU32,
}

impl BreakerMetrics {
    /// Registers the handles of the breaker named `name` with the current recorder, and sets
    /// the state gauge to `closed` (a breaker starts closed).
    pub fn new(name: &str) -> Self {
        describe_counter!(
            CALLS,
            "Calls through a circuit breaker, by outcome (rejected: not run)."
        );
        describe_counter!(
            SLOW_CALLS,
            "Calls that took at least the breaker's slow_call_duration."
        );
        describe_gauge!(
            STATE,
            "1 for the breaker's current state, 0 for the others."
        );
        describe_counter!(
            TRANSITIONS,
            "Circuit breaker state changes, by from and to state."
        );
        describe_counter!(PROBES, "Half-open probes, by outcome.");
        describe_gauge!(
            FAILURE_RATE,
            "Failed calls in the breaker's window, in percent (-1 below minimum_calls)."
        );
        describe_gauge!(
            SLOW_CALL_RATE,
            "Slow calls in the breaker's window, in percent (-1 below minimum_calls)."
        );
        let name = name_label(name);
        let calls =
            |outcome: &'static str| counter!(CALLS, "name" => name.clone(), "outcome" => outcome);
        let metrics = BreakerMetrics {
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            rejected: calls("rejected"),
            slow: counter!(SLOW_CALLS, "name" => name.clone()),
            state: STATES.map(|s| gauge!(STATE, "name" => name.clone(), "state" => s.as_str())),
            transitions: STATES.map(|from| {
                STATES.map(|to| {
                    if from == to {
                        Counter::noop()
                    } else {
                        counter!(
                            TRANSITIONS,
                            "name" => name.clone(),
                            "from" => from.as_str(),
                            "to" => to.as_str()
                        )
                    }
                })
            }),
            probes: ["success", "failure", "ignored"]
                .map(|o| counter!(PROBES, "name" => name.clone(), "outcome" => o)),
            failure_rate: gauge!(FAILURE_RATE, "name" => name.clone()),
            slow_call_rate: gauge!(SLOW_CALL_RATE, "name" => name.clone()),
            recorded: AtomicU32::new(0),
            name,
        };
        metrics.set_state(State::Closed);
        metrics.failure_rate.set(-1.0);
        metrics.slow_call_rate.set(-1.0);
        metrics
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the breaker's window (under its lock) into the rate gauges.
    fn set_rates(&self, breaker: &CircuitBreaker) {
        let snapshot = breaker.snapshot();
        self.failure_rate.set(snapshot.failure_rate.unwrap_or(-1.0));
        self.slow_call_rate
            .set(snapshot.slow_call_rate.unwrap_or(-1.0));
    }

    fn set_state(&self, current: State) {
        for (i, gauge) in self.state.iter().enumerate() {
            gauge.set(if i == index(current) { 1.0 } else { 0.0 });
        }
    }
}

impl Default for BreakerMetrics {
    /// `BreakerMetrics::new("default")`.
    fn default() -> Self {
        Self::new(super::DEFAULT_NAME)
    }
}

impl Listener for BreakerMetrics {
    fn on_event(&self, breaker: &CircuitBreaker, event: &Event) {
        match event {
            Event::Recorded(recorded) => {
                let i = match recorded.outcome {
                    Outcome::Success => 0,
                    Outcome::Failure => 1,
                    Outcome::Ignored => 2,
                };
                [&self.success, &self.failure, &self.ignored][i].increment(1);
                if recorded.probe {
                    self.probes[i].increment(1);
                }
                if recorded.slow {
                    self.slow.increment(1);
                }
                // Relaxed: only spaces the refreshes out.
                if recorded.slow
                    || recorded.outcome == Outcome::Failure
                    || self
                        .recorded
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(RATES_EVERY)
                {
                    self.set_rates(breaker);
                }
            }
            Event::Rejected(_) => self.rejected.increment(1),
            Event::StateChange(change) => {
                self.transitions[index(change.from)][index(change.to)].increment(1);
                // The state now, not `change.to`: if two changes race, the later writer
                // is more likely to write the latest state.
                self.set_state(breaker.state());
                self.set_rates(breaker);
            }
        }
    }
}

impl fmt::Debug for BreakerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerMetrics")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
