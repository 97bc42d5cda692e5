//! Retry's refusal and the bare-call error.

use std::error::Error;
use std::fmt;
use std::sync::Once;

use crate::error::{BoxError, ErrorKind, HasErrorKind};

/// A retry refused because the [`RetryBudget`](super::RetryBudget) was exhausted.
///
/// Returned (boxed) by the retry service at once, instead of sleeping and retrying; its
/// [`source`](Error::source) is the last error of the inner service, unchanged.
#[derive(Debug)]
pub struct BudgetExhausted {
    source: BoxError,
}

impl BudgetExhausted {
    /// A refusal whose last inner error is `source`.
    pub fn new(source: impl Into<BoxError>) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<BudgetExhausted>);
        BudgetExhausted {
            source: source.into(),
        }
    }

    /// The last error of the inner service.
    pub fn last_error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The last error of the inner service, by value.
    pub fn into_last_error(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last error is the `source()`: an error report prints it on its own line.
        f.write_str("retry budget exhausted; not retrying")
    }
}

impl HasErrorKind for BudgetExhausted {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::BudgetExhausted
    }
}

impl Error for BudgetExhausted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// The error of [`Retry::call`](super::Retry::call): the last attempt's own error, or a
/// refusal, as a typed enum since no layers stack here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError<E> {
    /// The last attempt failed with this error (retries were used up, not retryable, or past
    /// the deadline).
    #[error("{0}")]
    Inner(E),
    /// The retry budget refused a retry; this is the last attempt's error.
    #[error("retry budget exhausted; not retrying after: {0}")]
    BudgetExhausted(E),
    /// The last attempt ran past the per-attempt timeout.
    #[error("attempt timed out")]
    Timeout,
}

impl<E> RetryError<E> {
    /// The last attempt's own error, if it did not time out.
    pub fn into_inner(self) -> Option<E> {
        match self {
            RetryError::Inner(e) | RetryError::BudgetExhausted(e) => Some(e),
            RetryError::Timeout => None,
        }
    }

    /// Whether the budget refused a retry.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, RetryError::BudgetExhausted(_))
    }
}
