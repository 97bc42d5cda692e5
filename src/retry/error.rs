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

/// A retry that needed a wait (a backoff, a per-attempt timeout, the deadline while the
/// inner service is not ready) with no timer to wait on: no tokio runtime, or one built
/// without `enable_time`. Returned (boxed) instead of a panic; its [`source`](Error::source)
/// is the last attempt's error, if an attempt was made. In a runtime without `enable_time`
/// the panic hook still runs once (see [Without a timer](super#without-a-timer)).
///
/// Its [`ErrorKind`] is its last error's (the call failed with that error and was not
/// retried), [`ErrorKind::Inner`] when no attempt was made. A call that needs no wait (no
/// backoff, no per-attempt timeout, no deadline) needs no timer and never returns it.
#[derive(Debug)]
pub struct TimerUnavailable {
    source: Option<BoxError>,
}

impl TimerUnavailable {
    /// No timer for a retry after `last_error` (`None`: no attempt could be made).
    pub fn new(last_error: Option<BoxError>) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<TimerUnavailable>);
        TimerUnavailable { source: last_error }
    }

    /// The last attempt's error, if one was made.
    pub fn last_error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Display for TimerUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&TimerUnavailableMessage, f)
    }
}

impl HasErrorKind for TimerUnavailable {
    fn error_kind(&self) -> ErrorKind {
        self.source
            .as_deref()
            .map_or(ErrorKind::Inner, |e| ErrorKind::of(e))
    }
}

impl Error for TimerUnavailable {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// The error of [`Retry::call`](super::Retry::call): the last attempt's own error, or why the
/// call was not retried, as a typed enum since no layers stack here.
///
/// Like the layer's errors, it prints each message once: [`Inner`](Self::Inner) is
/// transparent (its `Display` and `source()` are the error's own), and the refusals say what
/// happened and give the last error as their `source()`. [`kind`](Self::kind),
/// [`ErrorKind::of`] and [`ErrorKind::of_any`] tell the variants apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// The last attempt failed with this error (retries were used up, not retryable, or past
    /// the deadline).
    Inner(E),
    /// The last attempt ran past the per-attempt timeout.
    Timeout,
    /// The retry budget refused a retry; this is the last attempt's error (`None`: it timed
    /// out).
    BudgetExhausted(Option<E>),
    /// A retry needed a wait and no timer is available (see [`TimerUnavailable`]); this is
    /// the last attempt's error (`None`: no attempt could be made).
    TimerUnavailable(Option<E>),
}

impl<E: 'static> RetryError<E> {
    /// Registers the type, so [`ErrorKind::of_any`] can see through it, and passes it on.
    pub(crate) fn registered(self) -> Self {
        ErrorKind::register_any::<Self>();
        self
    }
}

impl<E> RetryError<E> {
    /// The last attempt's own error, if it did not time out.
    pub fn into_inner(self) -> Option<E> {
        match self {
            RetryError::Inner(e) => Some(e),
            RetryError::BudgetExhausted(e) | RetryError::TimerUnavailable(e) => e,
            RetryError::Timeout => None,
        }
    }

    /// Whether the budget refused a retry.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, RetryError::BudgetExhausted(_))
    }

    /// The kind of failure: [`ErrorKind::BudgetExhausted`], [`ErrorKind::Timeout`], else the
    /// kind of the last error (an open circuit is still an open circuit).
    pub fn kind(&self) -> ErrorKind
    where
        E: 'static,
    {
        match self {
            RetryError::Inner(e) | RetryError::TimerUnavailable(Some(e)) => ErrorKind::of_any(e),
            RetryError::Timeout => ErrorKind::Timeout,
            RetryError::BudgetExhausted(_) => ErrorKind::BudgetExhausted,
            RetryError::TimerUnavailable(None) => ErrorKind::Inner,
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Inner(e) => fmt::Display::fmt(e, f),
            RetryError::Timeout => f.write_str("attempt timed out"),
            // The last error is the `source()`: an error report prints it on its own line.
            RetryError::BudgetExhausted(Some(_)) => {
                f.write_str("retry budget exhausted; not retrying")
            }
            RetryError::BudgetExhausted(None) => {
                f.write_str("retry budget exhausted; not retrying a timed-out attempt")
            }
            RetryError::TimerUnavailable(_) => fmt::Display::fmt(&TimerUnavailableMessage, f),
        }
    }
}

struct TimerUnavailableMessage;

impl fmt::Display for TimerUnavailableMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "retry needs a timer and none is available (a tokio runtime with `enable_time`)",
        )
    }
}

impl<E: Error + 'static> Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // Registered here, the one place where `E: Error` is known, so `ErrorKind::of` (which
        // calls `source()` before it looks a link up) can downcast to this type.
        ErrorKind::register::<Self>();
        match self {
            RetryError::Inner(e) => e.source(),
            RetryError::BudgetExhausted(Some(e)) | RetryError::TimerUnavailable(Some(e)) => Some(e),
            _ => None,
        }
    }
}

impl<E: 'static> HasErrorKind for RetryError<E> {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}
