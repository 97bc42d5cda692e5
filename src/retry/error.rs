//! Retry's refusal and the bare-call error.

use std::error::Error;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

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

/// The server asked for a wait before the next attempt (`Retry-After`, gRPC pushback) longer
/// than the policy allows (its `max_delay`, or what is left before its deadline): the call
/// gives up at once rather than retry earlier than the server asked (see
/// [`Builder::long_retry_after`](super::Builder::long_retry_after)).
///
/// Returned (boxed) by the retry service, in place of the last result: also when that was a
/// response the classifier called retryable (a 429 or 503), which is dropped. Its
/// [`source`](Error::source) is the last error, if the last attempt failed with one. Its
/// [`ErrorKind`] is that error's, [`ErrorKind::Inner`] for a response.
#[derive(Debug)]
pub struct RetryAfterTooLong {
    retry_after: Duration,
    allowed: Duration,
    source: Option<BoxError>,
}

impl RetryAfterTooLong {
    /// The server asked for `retry_after`, the policy allowed `allowed`; `last_error` is the
    /// last attempt's error (`None`: it ended with a response).
    pub fn new(retry_after: Duration, allowed: Duration, last_error: Option<BoxError>) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<RetryAfterTooLong>);
        RetryAfterTooLong {
            retry_after,
            allowed,
            source: last_error,
        }
    }

    /// The wait the server asked for.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The longest wait the policy allowed.
    pub fn allowed(&self) -> Duration {
        self.allowed
    }

    /// The last attempt's error, if it ended with one.
    pub fn last_error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Display for RetryAfterTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server asked to retry after {:?}, longer than allowed ({:?}); not retrying",
            self.retry_after, self.allowed
        )
    }
}

impl HasErrorKind for RetryAfterTooLong {
    fn error_kind(&self) -> ErrorKind {
        self.source
            .as_deref()
            .map_or(ErrorKind::Inner, |e| ErrorKind::of(e))
    }
}

impl Error for RetryAfterTooLong {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// A retryable error that was not retried because the request could not be copied for
/// another attempt: its [`CloneRequest`](super::CloneRequest) returned `None` (with the
/// `http` feature: a body over its replay limit, or one that failed mid-stream). The request
/// was sent once.
///
/// Returned (boxed) by the retry service in place of the last error, which is its
/// [`source`](Error::source) and gives its [`ErrorKind`]. A retryable *response* that could
/// not be retried is returned as it is (a [`GiveUp`](super::Event::GiveUp) event says why).
#[derive(Debug)]
pub struct RequestNotCopied {
    source: BoxError,
}

impl RequestNotCopied {
    /// `last_error` was not retried: the request could not be copied.
    pub fn new(last_error: impl Into<BoxError>) -> Self {
        static REGISTERED: Once = Once::new();
        REGISTERED.call_once(ErrorKind::register::<RequestNotCopied>);
        RequestNotCopied {
            source: last_error.into(),
        }
    }

    /// The last (and only) attempt's error.
    pub fn last_error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The last attempt's error, by value.
    pub fn into_last_error(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for RequestNotCopied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request could not be copied for a retry; not retrying")
    }
}

impl HasErrorKind for RequestNotCopied {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::of(&*self.source)
    }
}

impl Error for RequestNotCopied {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
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
    /// The server asked for a longer wait than the policy allows (see
    /// [`RetryAfterTooLong`]); `last` is the last attempt's error (`None`: it ended with a
    /// value the classifier called retryable, which is dropped).
    RetryAfterTooLong {
        /// The wait the server asked for.
        retry_after: Duration,
        /// The last attempt's error.
        last: Option<E>,
    },
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
            RetryError::BudgetExhausted(e)
            | RetryError::TimerUnavailable(e)
            | RetryError::RetryAfterTooLong { last: e, .. } => e,
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
            RetryError::Inner(e)
            | RetryError::TimerUnavailable(Some(e))
            | RetryError::RetryAfterTooLong { last: Some(e), .. } => ErrorKind::of_any(e),
            RetryError::Timeout => ErrorKind::Timeout,
            RetryError::BudgetExhausted(_) => ErrorKind::BudgetExhausted,
            RetryError::TimerUnavailable(None)
            | RetryError::RetryAfterTooLong { last: None, .. } => ErrorKind::Inner,
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
            RetryError::RetryAfterTooLong { retry_after, .. } => write!(
                f,
                "server asked to retry after {retry_after:?}, longer than allowed; not retrying"
            ),
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
            RetryError::BudgetExhausted(Some(e))
            | RetryError::TimerUnavailable(Some(e))
            | RetryError::RetryAfterTooLong { last: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}

impl<E: 'static> HasErrorKind for RetryError<E> {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}
