//! The throttle's local rejection and the bare-call error.

use std::error::Error;
use std::fmt;
use std::sync::Once;

use crate::error::{DeepKind, ErrorKind, HasErrorKind};

/// A call shed locally by an [`AdaptiveThrottle`](super::AdaptiveThrottle), without calling
/// the inner service: the dependency has accepted too few of the recent requests (fewer than
/// one in `k`), and this call lost the draw against the rejection probability.
///
/// Carries the window's counts as the throttle last settled them (a moment before this
/// call's own rejection was counted, or just after: under traffic they are a snapshot, not an
/// exact record).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    requests: u64,
    accepts: u64,
    probability: f64,
}

impl Throttled {
    /// A local rejection, with the window's `requests` and `accepts` and the rejection
    /// `probability` the call was drawn against.
    pub fn new(requests: u64, accepts: u64, probability: f64) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<Throttled>);
        Throttled {
            requests,
            accepts,
            probability,
        }
    }

    /// The requests of the window as last settled (requests shed locally included; this
    /// one too, unless another caller was settling the window at the time).
    pub const fn requests(&self) -> u64 {
        self.requests
    }

    /// The requests of the window the backend accepted.
    pub const fn accepts(&self) -> u64 {
        self.accepts
    }

    /// The probability with which calls were being shed.
    pub const fn probability(&self) -> f64 {
        self.probability
    }
}

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "throttled locally: backend accepted {} of the last {} requests; shedding {:.0}% of calls",
            self.accepts,
            self.requests,
            self.probability * 100.0
        )
    }
}

impl HasErrorKind for Throttled {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::Throttled
    }
}

impl Error for Throttled {}

/// The error of [`AdaptiveThrottle::call`](super::AdaptiveThrottle::call): the throttle's
/// local rejection or the wrapped call's own error, as a typed enum since no layers stack
/// here (the shape of the circuit breaker's and the bulkhead's `CallError`).
///
/// Both variants are transparent: `Display` and `source()` are those of the rejection or of
/// the call's error. [`kind`](Self::kind), [`ErrorKind::of`] and [`ErrorKind::of_any`] tell a
/// rejection from the call's own error (and see through the call's error: a timeout is still
/// a timeout), so seawall's retry does not retry a local rejection.
///
/// `ErrorKind::of_any` knows a `CallError<E>` once a throttle has made one with that `E`;
/// for one built by hand before that, call `ErrorKind::register_any::<CallError<E>>()` first.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError<E> {
    /// The throttle shed the call locally; the closure was not run.
    Rejected(Throttled),
    /// The call ran and failed with its own error.
    Inner(E),
}

impl<E: 'static> CallError<E> {
    /// The call's own error, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn inner(e: E) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Inner(e)
    }

    /// A local rejection, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn rejected(throttled: Throttled) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Rejected(throttled)
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

    /// Whether the throttle shed the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The kind of failure: [`ErrorKind::Throttled`] for a local rejection, else the kind of
    /// the inner error, as [`ErrorKind::of_any`] tells it.
    pub fn kind(&self) -> ErrorKind
    where
        E: 'static,
    {
        match self {
            CallError::Rejected(_) => ErrorKind::Throttled,
            CallError::Inner(e) => ErrorKind::of_any(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(t) => fmt::Display::fmt(t, f),
            CallError::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: Error + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // Registered here, the one place where `E: Error` is known, so `ErrorKind::of` can
        // downcast to this type and walk the inner error's own causes.
        ErrorKind::register_deep::<Self>();
        match self {
            CallError::Rejected(t) => t.source(),
            CallError::Inner(e) => e.source(),
        }
    }
}

impl<E: Error + 'static> DeepKind for CallError<E> {
    fn deep_kind(&self) -> ErrorKind {
        match self {
            CallError::Rejected(_) => ErrorKind::Throttled,
            CallError::Inner(e) => ErrorKind::of(e),
        }
    }
}

impl<E: 'static> HasErrorKind for CallError<E> {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_backend_accepted_and_has_its_kind() {
        let e = Throttled::new(100, 12, 0.75);
        assert_eq!(
            e.to_string(),
            "throttled locally: backend accepted 12 of the last 100 requests; shedding 75% of calls"
        );
        let boxed: crate::BoxError = Box::new(e);
        assert_eq!(ErrorKind::of(&*boxed), ErrorKind::Throttled);
        assert!(ErrorKind::Throttled.is_refusal());
    }

    #[test]
    fn call_error_tells_a_rejection_from_the_calls_own_error() {
        let shed: CallError<std::io::Error> = CallError::rejected(Throttled::new(3, 0, 0.75));
        assert!(shed.is_rejected());
        assert_eq!(shed.kind(), ErrorKind::Throttled);
        assert_eq!(ErrorKind::of(&shed), ErrorKind::Throttled);
        assert_eq!(ErrorKind::of_any(&shed), ErrorKind::Throttled);

        let inner: CallError<std::io::Error> = CallError::inner(std::io::Error::other("boom"));
        assert!(!inner.is_rejected());
        assert_eq!(ErrorKind::of(&inner), ErrorKind::Inner);
        assert_eq!(inner.to_string(), "boom");
        let timed_out: CallError<tower::timeout::error::Elapsed> =
            CallError::inner(tower::timeout::error::Elapsed::new());
        assert_eq!(ErrorKind::of(&timed_out), ErrorKind::Timeout);
    }
}
