//! The breaker's rejection and the bare-call error.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use super::transition::State;
use crate::error::{DeepKind, ErrorKind, HasErrorKind};

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
    pub fn new(retry_in: Duration) -> Self {
        Self::with_state(retry_in, State::Open)
    }

    pub(crate) fn with_state(retry_in: Duration, state: State) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<CircuitOpen>);
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

impl Error for CircuitOpen {}

impl HasErrorKind for CircuitOpen {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::CircuitOpen
    }
}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call): the breaker's rejection
/// or the wrapped call's own error, as a typed enum since no layers stack here.
///
/// Both variants are transparent: `Display` and `source()` are those of the rejection or of
/// the call's error, so an error report prints each message once. [`kind`](Self::kind),
/// [`ErrorKind::of`] and [`ErrorKind::of_any`] tell a rejection from the call's own error (and
/// see through the call's error: a timeout is still a timeout).
///
/// `ErrorKind::of_any` knows a `CallError<E>` once a breaker has made one with that `E` (the
/// type registers itself then); for one built by hand before that, in a test fake, call
/// `ErrorKind::register_any::<CallError<E>>()` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker rejected the call; the closure was not run.
    Rejected(CircuitOpen),
    /// The call ran and failed with its own error.
    Inner(E),
}

impl<E: 'static> CallError<E> {
    /// The call's own error, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn inner(e: E) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Inner(e)
    }

    /// A rejection, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn rejected(open: CircuitOpen) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Rejected(open)
    }
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

    /// The kind of failure: [`ErrorKind::CircuitOpen`] for a rejection, else the kind of the
    /// inner error (a timeout is still a timeout), as [`ErrorKind::of_any`] tells it. For an
    /// inner error type of your own whose *causes* hold a timeout or a rejection, use
    /// [`ErrorKind::of`], which walks the whole `source()` chain.
    pub fn kind(&self) -> ErrorKind
    where
        E: 'static,
    {
        match self {
            CallError::Rejected(_) => ErrorKind::CircuitOpen,
            CallError::Inner(e) => ErrorKind::of_any(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(open) => fmt::Display::fmt(open, f),
            CallError::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: Error + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // Registered here, the one place where `E: Error` is known, so `ErrorKind::of` (which
        // calls `source()` before it looks a link up) can downcast to this type and walk the
        // inner error's own causes.
        ErrorKind::register_deep::<Self>();
        match self {
            CallError::Rejected(open) => open.source(),
            CallError::Inner(e) => e.source(),
        }
    }
}

impl<E: Error + 'static> DeepKind for CallError<E> {
    fn deep_kind(&self) -> ErrorKind {
        match self {
            CallError::Rejected(_) => ErrorKind::CircuitOpen,
            CallError::Inner(e) => ErrorKind::of(e),
        }
    }
}

impl<E: 'static> HasErrorKind for CallError<E> {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}
