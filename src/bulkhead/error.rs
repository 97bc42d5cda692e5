//! The bulkhead's rejection.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use crate::error::{ErrorKind, HasErrorKind};

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
}
