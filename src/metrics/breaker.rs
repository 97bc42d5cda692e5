//! [`BreakerMetrics`]: a circuit breaker listener recording to the `metrics` facade.

use std::fmt;

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Counter, Gauge, SharedString};

use super::name_label;
use crate::circuit_breaker::{CircuitBreaker, Event, Listener, State};
use crate::classify::Outcome;

const CALLS: &str = "resilience.circuit_breaker.calls";
const SLOW_CALLS: &str = "resilience.circuit_breaker.slow_calls";
const STATE: &str = "resilience.circuit_breaker.state";
const TRANSITIONS: &str = "resilience.circuit_breaker.transitions";

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
            name,
        };
        metrics.set_state(State::Closed);
        metrics
    }

    /// The `name` label of every series.
    pub fn name(&self) -> &str {
        &self.name
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
                match recorded.outcome {
                    Outcome::Success => &self.success,
                    Outcome::Failure => &self.failure,
                    Outcome::Ignored => &self.ignored,
                }
                .increment(1);
                if recorded.slow {
                    self.slow.increment(1);
                }
            }
            Event::Rejected(_) => self.rejected.increment(1),
            Event::StateChange(change) => {
                self.transitions[index(change.from)][index(change.to)].increment(1);
                // The state now, not `change.to`: if two changes race, the later writer
                // is more likely to write the latest state.
                self.set_state(breaker.state());
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
