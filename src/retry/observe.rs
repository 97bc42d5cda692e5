//! The retry's one observation seam: every retry and every give-up (retries used up, the
//! deadline, a refusal by the budget, no timer, a request that cannot be copied or must not
//! be sent twice, a `Retry-After` too long, an inner service no longer ready) is sent here
//! as an [`Event`], from both the tower layer and the bare call; so are, when a listener is
//! registered, the end of every attempt and of every call, with their durations. Listeners attach with
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

use super::budget::RetryBudget;
use crate::classify::Outcome;

/// Something a retry did, or decided not to do.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A failed attempt will be retried, after a delay.
    Retry(RetryEvent<'a>),
    /// A retryable failure will not be retried: the call ends with it (with
    /// [`GiveUpReason::NotReady`], with the inner service's `poll_ready` error instead).
    GiveUp(GiveUpEvent<'a>),
    /// An attempt ended (sent only to listeners, never traced: timing attempts reads the
    /// clock, which a policy does only when it has a listener).
    Attempt(AttemptEvent),
    /// A call ended with an answer (sent only to listeners, like [`Event::Attempt`]). A call
    /// whose future is dropped before it ends sends none.
    Finished(FinishedEvent<'a>),
}

/// Why a failed attempt is retried ([`RetryEvent::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// The attempt failed with an error the classifier called retryable.
    Error,
    /// The attempt returned a response the classifier called a failure (an HTTP 503, a
    /// gRPC `UNAVAILABLE`).
    Response,
    /// The attempt ran past the policy's [`attempt_timeout`](super::Builder::attempt_timeout).
    Timeout,
}

impl RetryReason {
    /// The reason in snake case, as in metric labels: `error`, `response`, `timeout`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryReason::Error => "error",
            RetryReason::Response => "response",
            RetryReason::Timeout => "timeout",
        }
    }
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
    /// What failed: an error, a response, or the attempt's time.
    pub reason: RetryReason,
    /// The budget the retry drew from, if the policy has one: read its
    /// [`balance`](RetryBudget::balance) here if you export it (reading it costs about
    /// what the withdrawal did; nothing is read unless you ask).
    pub budget: Option<&'a RetryBudget>,
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
    /// The budget of the policy, if it has one (see [`RetryEvent::budget`]).
    pub budget: Option<&'a RetryBudget>,
}

/// An attempt that ended ([`Event::Attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptEvent {
    /// The attempt, from 1.
    pub attempt: u32,
    /// From the attempt's start (the call's, for the first; the end of the backoff and of
    /// the wait for readiness, for a retry) to its answer, on the policy's clock.
    pub duration: Duration,
    /// What the attempt's answer was: the classifier's word, [`Outcome::Ignored`] for one of
    /// seawall's own refusals (not retried), [`Outcome::Failure`] for a timed-out attempt.
    pub outcome: Outcome,
    /// The attempt ran past the policy's [`attempt_timeout`](super::Builder::attempt_timeout)
    /// and was cut.
    pub timed_out: bool,
}

/// How a call through the retry ended ([`FinishedEvent::outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The last attempt was a success.
    Success,
    /// The last attempt's answer was not retryable: the classifier ignored it, or it was one
    /// of seawall's own refusals (see [`Builder::retry_refusals`](super::Builder::retry_refusals)).
    NotRetryable,
    /// The last attempt was a retryable failure, and the call ended with it (a
    /// [`GiveUp`](Event::GiveUp) event said why, just before).
    GaveUp(GiveUpReason),
}

impl CallOutcome {
    /// The outcome in snake case, as in metric labels: `success`, `not_retryable`,
    /// `gave_up`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::NotRetryable => "not_retryable",
            CallOutcome::GaveUp(_) => "gave_up",
        }
    }
}

/// A call that ended ([`Event::Finished`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FinishedEvent<'a> {
    /// The attempts made, from 1 (0: none could be made; `attempts > 1`: the call was
    /// retried).
    pub attempts: u32,
    /// How it ended.
    pub outcome: CallOutcome,
    /// From the call (the layer's `call`, the bare [`Retry::call`](super::Retry::call)) to
    /// its answer, backoffs included, on the policy's clock.
    pub duration: Duration,
    /// The budget of the policy, if it has one (see [`RetryEvent::budget`]).
    pub budget: Option<&'a RetryBudget>,
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

/// A policy's listeners and name, and the one place events go out.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    listeners: Vec<Arc<dyn RetryListener>>,
    name: Option<Arc<str>>,
}

impl Observers {
    pub(crate) fn push(&mut self, listener: Arc<dyn RetryListener>) {
        self.listeners.push(listener);
    }

    pub(crate) fn set_name(&mut self, name: Arc<str>) {
        self.name = Some(name);
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether anyone listens: events (and the boxing of errors they show) are skipped if not.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        !self.listeners.is_empty() || cfg!(feature = "tracing")
    }

    /// Whether attempts and calls are timed and reported: only for listeners (it costs a
    /// clock read at the start and the end of every attempt).
    #[inline]
    pub(crate) fn timed(&self) -> bool {
        !self.listeners.is_empty()
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        #[cfg(feature = "tracing")]
        let name = self.name.as_deref().unwrap_or("");
        #[cfg(feature = "tracing")]
        match event {
            Event::Retry(e) => tracing::debug!(
                retry = name,
                attempt = e.attempt,
                delay_ms = u64::try_from(e.delay.as_millis()).unwrap_or(u64::MAX),
                retry_after = e.retry_after,
                reason = e.reason.as_str(),
                error = e.error.map(tracing::field::display),
                "retrying"
            ),
            Event::GiveUp(e) => tracing::debug!(
                retry = name,
                attempt = e.attempt,
                reason = %e.reason,
                response = e.response,
                error = e.error.map(tracing::field::display),
                "not retrying"
            ),
            Event::Attempt(_) | Event::Finished(_) => {}
        }
        for listener in &self.listeners {
            listener.on_event(event);
        }
    }
}

/// The `tracing` span of one call through a retry (feature `tracing`): `retry` at `DEBUG`,
/// with the policy's name and, once it ends, the attempts it made. Every poll of the call
/// runs in it, so the retry's events (and those of the layers inside it: a breaker's
/// rejection, say) are grouped per call. Without the feature it is nothing at all.
pub(crate) struct CallSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl CallSpan {
    #[inline]
    pub(crate) fn new(observers: &Observers) -> Self {
        #[cfg(not(feature = "tracing"))]
        let _ = observers;
        CallSpan {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!(
                "retry",
                retry = observers.name().unwrap_or(""),
                attempts = tracing::field::Empty
            ),
        }
    }

    /// A handle on the span for one poll, to enter while the call is polled mutably (with
    /// `tracing`, a clone of the span: a reference count, none when the span is disabled).
    /// Only the `tracing` build polls in the span (without it there is no span to enter).
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn entered_by_poll(&self) -> CallSpan {
        CallSpan {
            #[cfg(feature = "tracing")]
            span: self.span.clone(),
        }
    }

    /// Runs `f` in the span.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.span.enter();
        f()
    }

    /// Records the attempts the call made, when it ends.
    #[inline]
    pub(crate) fn finished(&self, attempts: u32) {
        #[cfg(feature = "tracing")]
        self.span.record("attempts", attempts);
        #[cfg(not(feature = "tracing"))]
        let _ = attempts;
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}, {} listeners", self.name, self.listeners.len())
    }
}
