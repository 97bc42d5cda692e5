//! The rate limiter's rejection.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use crate::error::{ErrorKind, HasErrorKind};

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
}
