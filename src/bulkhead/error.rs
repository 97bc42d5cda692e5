//! The bulkhead's rejection and the bare-call error.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use crate::error::{DeepKind, ErrorKind, HasErrorKind};

/// A call refused by a bulkhead, without calling the inner service: every slot was taken,
/// and none freed within the bulkhead's maximum wait (if it waits at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadFull {
    max_concurrent: usize,
    waited: Duration,
}

impl BulkheadFull {
    /// A refusal by a bulkhead of `max_concurrent` slots, after waiting `waited` for one.
    pub fn new(max_concurrent: usize, waited: Duration) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<BulkheadFull>);
        BulkheadFull {
            max_concurrent,
            waited,
        }
    }

    /// How many calls the bulkhead lets run at once.
    pub const fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// How long the call waited for a slot before it was refused.
    pub const fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bulkhead full; all {} slots busy", self.max_concurrent)?;
        if !self.waited.is_zero() {
            write!(f, " for {:?}", self.waited)?;
        }
        Ok(())
    }
}

impl HasErrorKind for BulkheadFull {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::BulkheadFull
    }
}

impl Error for BulkheadFull {}

/// The error of [`Bulkhead::call`](super::Bulkhead::call): the bulkhead's refusal or the
/// wrapped call's own error, as a typed enum since no layers stack here (the same shape as
/// the circuit breaker's [`CallError`](crate::circuit_breaker::CallError)).
///
/// Both variants are transparent: `Display` and `source()` are those of the refusal or of
/// the call's error. [`kind`](Self::kind), [`ErrorKind::of`] and [`ErrorKind::of_any`] tell a
/// refusal from the call's own error (and see through the call's error: a timeout is still
/// a timeout), so seawall's retry does not retry a refusal.
///
/// `ErrorKind::of_any` knows a `CallError<E>` once a bulkhead has made one with that `E`;
/// for one built by hand before that, call `ErrorKind::register_any::<CallError<E>>()` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The bulkhead refused the call; the closure was not run.
    Rejected(BulkheadFull),
    /// The call ran and failed with its own error.
    Inner(E),
}

impl<E: 'static> CallError<E> {
    /// The call's own error, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn inner(e: E) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Inner(e)
    }

    /// A refusal, registering the type so [`ErrorKind::of_any`] can see through it.
    pub(crate) fn rejected(full: BulkheadFull) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::Rejected(full)
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

    /// Whether the bulkhead refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The kind of failure: [`ErrorKind::BulkheadFull`] for a refusal, else the kind of the
    /// inner error, as [`ErrorKind::of_any`] tells it.
    pub fn kind(&self) -> ErrorKind
    where
        E: 'static,
    {
        match self {
            CallError::Rejected(_) => ErrorKind::BulkheadFull,
            CallError::Inner(e) => ErrorKind::of_any(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(full) => fmt::Display::fmt(full, f),
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
            CallError::Rejected(full) => full.source(),
            CallError::Inner(e) => e.source(),
        }
    }
}

impl<E: Error + 'static> DeepKind for CallError<E> {
    fn deep_kind(&self) -> ErrorKind {
        match self {
            CallError::Rejected(_) => ErrorKind::BulkheadFull,
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
    fn says_how_full_and_has_its_kind() {
        let e = BulkheadFull::new(4, Duration::from_millis(50));
        assert_eq!(e.to_string(), "bulkhead full; all 4 slots busy for 50ms");
        assert_eq!(
            BulkheadFull::new(4, Duration::ZERO).to_string(),
            "bulkhead full; all 4 slots busy"
        );
        let boxed: crate::BoxError = Box::new(e);
        assert_eq!(ErrorKind::of(&*boxed), ErrorKind::BulkheadFull);
        assert!(ErrorKind::BulkheadFull.is_refusal());
    }

    #[test]
    fn call_error_tells_a_refusal_from_the_calls_own_error() {
        let full: CallError<std::io::Error> =
            CallError::rejected(BulkheadFull::new(2, Duration::ZERO));
        assert!(full.is_rejected());
        assert_eq!(full.kind(), ErrorKind::BulkheadFull);
        assert_eq!(ErrorKind::of(&full), ErrorKind::BulkheadFull);
        assert_eq!(ErrorKind::of_any(&full), ErrorKind::BulkheadFull);
        assert_eq!(full.to_string(), "bulkhead full; all 2 slots busy");

        let inner: CallError<std::io::Error> = CallError::inner(std::io::Error::other("boom"));
        assert!(!inner.is_rejected());
        assert_eq!(ErrorKind::of(&inner), ErrorKind::Inner);
        assert_eq!(inner.to_string(), "boom");
        assert_eq!(
            inner.into_inner().map(|e| e.to_string()),
            Some("boom".into())
        );

        let timed_out: CallError<tower::timeout::error::Elapsed> =
            CallError::inner(tower::timeout::error::Elapsed::new());
        assert_eq!(ErrorKind::of(&timed_out), ErrorKind::Timeout);
        assert_eq!(timed_out.kind(), ErrorKind::Timeout);
    }
}
