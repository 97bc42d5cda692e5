//! The retry's one observation seam: every retry and every give-up (retries used up, the
//! deadline, a refusal by the budget, no timer, a request that cannot be copied or must not
//! be sent twice, a `Retry-After` too long, an inner service no longer ready) is sent here
//! as an [`Event`], from both the tower layer and the bare call. Listeners attach with
//! [`Builder::listener`](super::Builder::listener); [`Builder::on_retry`](super::Builder::on_retry)
//! is sugar for a listener of [`Event::Retry`]; `tracing` events (feature `tracing`) are
//! emitted here too, never inline in the state machine.
//!
//! ```
//! use seawall::retry::{Event, GiveUpReason, Retry};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//!
//! let refused = Arc::new(AtomicU32::new(0));
//! let r = refused.clone();
//! let retry = Retry::builder()
//!     .listener(move |event: &Event<'_>| {
//!         if let Event::GiveUp(g) = event {
//!             if g.reason == GiveUpReason::BudgetExhausted {
//!                 r.fetch_add(1, Ordering::Relaxed);
//!             }
//!         }
//!     })
//!     .build()
//!     .expect("valid policy");
//! # drop(retry);
//! ```

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Something a retry did, or decided not to do.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A failed attempt will be retried, after a delay.
    Retry(RetryEvent<'a>),
    /// A retryable failure will not be retried: the call ends with it (with
    /// [`GiveUpReason::NotReady`], with the inner service's `poll_ready` error instead).
    GiveUp(GiveUpEvent<'a>),
}

/// A retry, just before it waits.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The attempt that just failed, from 1; the retry will be attempt `attempt + 1`.
    pub attempt: u32,
    /// How long the retry waits first (the backoff, or the server's `Retry-After`).
    pub delay: Duration,
    /// Whether `delay` came from the classifier's [`retry_after`](crate::Classify::retry_after).
    pub retry_after: bool,
    /// The failed attempt's error; `None` when a response was classified as retryable (and,
    /// through the bare [`Retry::call`](super::Retry::call), when the closure's error type is
    /// not a [`BoxError`](crate::BoxError): a generic error cannot be shown as `dyn Error`).
    pub error: Option<&'a (dyn Error + 'static)>,
}

/// A retryable failure that ends the call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GiveUpEvent<'a> {
    /// The last attempt made, from 1 (0: none could be made).
    pub attempt: u32,
    /// Why no further attempt is made.
    pub reason: GiveUpReason,
    /// Whether the last attempt returned a response the classifier called a failure (say, an
    /// HTTP 503): the call returns that response as `Ok`, so this event is the only sign that
    /// it was not retried.
    pub response: bool,
    /// The last attempt's error (a timed-out attempt's is tower's `Elapsed`; with
    /// [`GiveUpReason::NotReady`], the `poll_ready` error the call ends with); `None` for a
    /// response, and under the same condition as [`RetryEvent::error`].
    pub error: Option<&'a (dyn Error + 'static)>,
}

/// Why a retryable failure is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// `max_retries` retries were made already.
    RetriesUsedUp,
    /// The next attempt could not start before the deadline (the backoff would reach it, or
    /// the inner service was not ready in time).
    Deadline,
    /// The retry budget refused the retry.
    BudgetExhausted,
    /// A wait was needed and no timer is available (no tokio runtime with its time driver
    /// enabled): see [`TimerUnavailable`](super::TimerUnavailable).
    NoTimer,
    /// The request could not be copied for another attempt (its
    /// [`CloneRequest`](super::CloneRequest) said so: a request that cannot be cloned, a body
    /// that outgrew its replay limit or failed mid-stream).
    RequestNotCopied,
    /// The request must not be sent twice ([`CloneRequest::is_idempotent`](super::CloneRequest::is_idempotent)
    /// said so: with the `http` feature, a `POST` without an `Idempotency-Key`).
    NotIdempotent,
    /// The server asked for a wait (`Retry-After`, gRPC pushback) longer than the policy
    /// allows (its `max_delay`, or what is left before the deadline): retrying earlier would
    /// go against the server's wish (see [`Builder::long_retry_after`](super::Builder::long_retry_after)).
    RetryAfterTooLong,
    /// The inner service failed `poll_ready` before the retry: by tower's convention it is not
    /// ready for good, and its error is the call's answer.
    NotReady,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUpReason::RetriesUsedUp => "retries used up",
            GiveUpReason::Deadline => "deadline reached",
            GiveUpReason::BudgetExhausted => "retry budget exhausted",
            GiveUpReason::NoTimer => "no timer available",
            GiveUpReason::RequestNotCopied => "request cannot be copied",
            GiveUpReason::NotIdempotent => "request is not idempotent",
            GiveUpReason::RetryAfterTooLong => "server asked for a longer wait than allowed",
            GiveUpReason::NotReady => "inner service not ready for good",
        })
    }
}

/// Receives a retry policy's [`Event`]s. Implemented by every `Fn(&Event<'_>)`.
///
/// Runs on the calling task, inside `poll`: keep it short and do not block.
pub trait RetryListener: Send + Sync + 'static {
    /// Called for every event, in order.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> RetryListener for F
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// A policy's listeners, and the one place events go out.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    listeners: Vec<Arc<dyn RetryListener>>,
}

impl Observers {
    pub(crate) fn push(&mut self, listener: Arc<dyn RetryListener>) {
        self.listeners.push(listener);
    }

    /// Whether anyone listens: events (and the boxing of errors they show) are skipped if not.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        !self.listeners.is_empty() || cfg!(feature = "tracing")
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        #[cfg(feature = "tracing")]
        match event {
            Event::Retry(e) => tracing::debug!(
                attempt = e.attempt,
                delay_ms = u64::try_from(e.delay.as_millis()).unwrap_or(u64::MAX),
                retry_after = e.retry_after,
                error = e.error.map(tracing::field::display),
                "retrying"
            ),
            Event::GiveUp(e) => tracing::debug!(
                attempt = e.attempt,
                reason = %e.reason,
                response = e.response,
                error = e.error.map(tracing::field::display),
                "not retrying"
            ),
        }
        for listener in &self.listeners {
            listener.on_event(event);
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} listeners", self.listeners.len())
    }
}
