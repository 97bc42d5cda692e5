//! The breaker's rejection and the bare-call error.

use std::fmt;
use std::time::Duration;

use super::transition::State;

/// A call rejected by a circuit breaker, without calling the inner service.
///
/// Says why (open, half-open with every probe slot busy, forced open) and, when open, how long
/// until the next probe is let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    retry_in: Duration,
    state: State,
}

impl CircuitOpen {
    /// A rejection by an open circuit whose next probe is `retry_in` away.
    pub const fn new(retry_in: Duration) -> Self {
        CircuitOpen {
            retry_in,
            state: State::Open,
        }
    }

    pub(crate) const fn with_state(retry_in: Duration, state: State) -> Self {
        CircuitOpen { retry_in, state }
    }

    /// Time until the breaker lets the next probe through: zero when half-open (a probe slot
    /// frees when a probe ends) and when forced open (unknown: an operator decides).
    pub const fn retry_in(&self) -> Duration {
        self.retry_in
    }

    /// The state that rejected the call: [`State::Open`], [`State::HalfOpen`] or
    /// [`State::ForcedOpen`].
    pub const fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            State::HalfOpen => f.write_str("circuit half-open; every probe slot is busy"),
            State::ForcedOpen => f.write_str("circuit forced open"),
            _ => {
                // Whole milliseconds, rounded up: "next probe in 12.5s", not "12.499998731s".
                let ms =
                    u64::try_from(self.retry_in.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
                write!(
                    f,
                    "circuit open; next probe in {:?}",
                    Duration::from_millis(ms)
                )
            }
        }
    }
}

impl std::error::Error for CircuitOpen {}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call): the breaker's rejection
/// or the wrapped call's own error, as a typed enum since no layers stack here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker rejected the call; the closure was not run.
    #[error("circuit breaker rejected the call")]
    Rejected(#[source] CircuitOpen),
    /// The call ran and failed with its own error.
    #[error("{0}")]
    Inner(#[source] E),
}

impl<E> CallError<E> {
    /// The inner error, if the call ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            CallError::Rejected(_) => None,
        }
    }

    /// Whether the breaker rejected the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The kind of failure: [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen) for a
    /// rejection, else the kind of the inner error (a timeout is still a timeout).
    pub fn kind(&self) -> crate::ErrorKind
    where
        E: 'static,
    {
        match self {
            CallError::Rejected(_) => crate::ErrorKind::CircuitOpen,
            CallError::Inner(e) => crate::ErrorKind::of_any(e),
        }
    }
}
