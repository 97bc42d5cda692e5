//! The rate limiter's rejection.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use crate::error::{DeepKind, ErrorKind, HasErrorKind};

/// A call refused by a rate limiter, without calling the inner service: no slot was free,
/// or none freed within the limiter's maximum wait.
///
/// Carries the time until the next slot frees: the `Retry-After` of the 429 that the `http`
/// feature's `rejection_response` answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    retry_after: Duration,
}

impl RateLimited {
    /// A refusal whose next slot frees in `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<RateLimited>);
        RateLimited { retry_after }
    }

    /// Time until the limiter frees its next slot.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole milliseconds, rounded up, as `CircuitOpen` prints its wait.
        let ms = u64::try_from(self.retry_after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        write!(
            f,
            "rate limited; next slot in {:?}",
            Duration::from_millis(ms)
        )
    }
}

impl HasErrorKind for RateLimited {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::RateLimited
    }
}

impl Error for RateLimited {}

/// The error of the bare API's [`RateLimiter::call`](super::RateLimiter::call) and
/// [`KeyedRateLimiter::call_key`](super::KeyedRateLimiter::call_key): the limiter's refusal, or
/// the wrapped call's own error, as a typed enum since no layers stack here.
///
/// Both variants are transparent: `Display` and `source()` are those of the refusal or of the
/// call's error. [`kind`](Self::kind) tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The limiter refused the call; the closure was not run.
    RateLimited(RateLimited),
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
    pub(crate) fn rate_limited(limited: RateLimited) -> Self {
        ErrorKind::register_any::<Self>();
        CallError::RateLimited(limited)
    }
}

impl<E> CallError<E> {
    /// The inner error, if the call ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            CallError::RateLimited(_) => None,
        }
    }

    /// Whether the limiter refused the call.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, CallError::RateLimited(_))
    }

    /// The kind of failure: [`ErrorKind::RateLimited`] for a refusal, else the kind of the
    /// inner error, as [`ErrorKind::of_any`] tells it.
    pub fn kind(&self) -> ErrorKind
    where
        E: 'static,
    {
        match self {
            CallError::RateLimited(_) => ErrorKind::RateLimited,
            CallError::Inner(e) => ErrorKind::of_any(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::RateLimited(limited) => fmt::Display::fmt(limited, f),
            CallError::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: Error + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // Registered here, where `E: Error` is known, so `ErrorKind::of` can walk the inner
        // error's own causes (as the breaker's `CallError` does).
        ErrorKind::register_deep::<Self>();
        match self {
            CallError::RateLimited(limited) => limited.source(),
            CallError::Inner(e) => e.source(),
        }
    }
}

impl<E: Error + 'static> DeepKind for CallError<E> {
    fn deep_kind(&self) -> ErrorKind {
        match self {
            CallError::RateLimited(_) => ErrorKind::RateLimited,
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
    fn says_when_the_next_slot_frees_and_has_its_kind() {
        let e = RateLimited::new(Duration::from_micros(12_500_001));
        assert_eq!(e.to_string(), "rate limited; next slot in 12.501s");
        let boxed: crate::BoxError = Box::new(e);
        assert_eq!(ErrorKind::of(&*boxed), ErrorKind::RateLimited);
        assert!(ErrorKind::RateLimited.is_refusal());
    }

    #[test]
    fn call_error_tells_a_refusal_from_the_calls_own_error() {
        let limited: CallError<std::io::Error> =
            CallError::rate_limited(RateLimited::new(Duration::from_millis(10)));
        assert!(limited.is_rate_limited());
        assert_eq!(ErrorKind::of(&limited), ErrorKind::RateLimited);
        assert_eq!(ErrorKind::of_any(&limited), ErrorKind::RateLimited);
        let inner: CallError<std::io::Error> = CallError::inner(std::io::Error::other("boom"));
        assert_eq!(inner.kind(), ErrorKind::Inner);
        assert_eq!(inner.to_string(), "boom");
    }
}
