//! Observation: every time a fallback answers a call, and every time the fallback itself
//! fails, goes through one place, [`Fallback::emit`], where user [`Listener`]s attach (and the
//! `tracing` events of feature `tracing`, at `DEBUG`).
//!
//! # Cost
//!
//! Nothing on the success path: events exist only on the error path, once the error is
//! selected (or once the fallback's own error is in hand). A fallback without a name or a
//! listener emits to nobody (one branch).

use std::sync::Arc;

use super::select::Fallback;
use crate::error::{BoxError, ErrorKind};

/// Something that happened to a call through a fallback, as given to a [`Listener`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A call failed with a selected error: the fallback is about to answer it.
    Used(FallbackEvent<'a>),
    /// The fallback did not answer: it was not ready, or its call failed. Its error is the
    /// call's error. Follows the [`Used`](Event::Used) of the same call.
    Failed(FallbackFailed<'a>),
}

/// A fallback is about to answer a call: sent to the listeners (as [`Event::Used`], and to
/// those of [`Fallback::on_fallback`]) and, with the `tracing` feature, as a `debug` event.
#[derive(Debug, Clone, Copy)]
pub struct FallbackEvent<'a> {
    pub(super) kind: ErrorKind,
    pub(super) error: &'a BoxError,
}

impl<'a> FallbackEvent<'a> {
    /// The kind of the error the fallback answers.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error the fallback answers (it is handed to the fallback next).
    pub const fn error(&self) -> &'a BoxError {
        self.error
    }
}

/// The fallback failed to answer a call ([`Event::Failed`]).
#[derive(Debug, Clone, Copy)]
pub struct FallbackFailed<'a> {
    pub(super) kind: ErrorKind,
    pub(super) error: &'a BoxError,
}

impl<'a> FallbackFailed<'a> {
    /// The kind of the error the fallback was answering (the call's first error, not the
    /// fallback's own).
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The fallback's own error: the call's error.
    pub const fn error(&self) -> &'a BoxError {
        self.error
    }
}

/// Receives every [`Event`] of a fallback. Implemented for every
/// `Fn(&Event<'_>) + Send + Sync`.
///
/// Register with [`Fallback::listener`] (or [`FallbackLayer::listener`](super::FallbackLayer::listener)).
/// Listeners run on the task that made the call, inside its `poll`, in the order they were
/// added: keep them short and do not block.
///
/// ```
/// use seawall::circuit_breaker::CircuitOpen;
/// use seawall::fallback::{Event, Fallback};
/// use seawall::{BoxError, ErrorKind};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let failed = Arc::new(AtomicU64::new(0));
/// let counter = failed.clone();
/// let fallback = Fallback::new().listener(move |event: &Event<'_>| {
///     if let Event::Failed(f) = event {
///         assert_eq!(f.kind(), ErrorKind::CircuitOpen);
///         counter.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// let answer = fallback
///     .call(
///         || async { Err::<(), BoxError>(CircuitOpen::new(Duration::from_secs(1)).into()) },
///         |_err| async { Err::<(), BoxError>("cache down too".into()) },
///     )
///     .await;
/// assert_eq!(answer.unwrap_err().to_string(), "cache down too");
/// assert_eq!(failed.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event, on the task that caused it.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> Listener for F
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// The listener behind [`Fallback::on_fallback`]: a closure that hears only
/// [`Event::Used`].
pub(super) struct OnFallback<F>(pub(super) F);

impl<F> Listener for OnFallback<F>
where
    F: Fn(&FallbackEvent<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Used(used) = event {
            (self.0)(used)
        }
    }
}

/// The listeners of one policy.
pub(super) type Listeners = Vec<Arc<dyn Listener>>;

impl Fallback {
    /// The one place every event goes through.
    pub(super) fn emit(&self, event: &Event<'_>) {
        #[cfg(feature = "tracing")]
        match event {
            Event::Used(used) => tracing::debug!(
                fallback = self.given_name().unwrap_or(""),
                kind = %used.kind,
                error = %used.error,
                "falling back"
            ),
            Event::Failed(failed) => tracing::debug!(
                fallback = self.given_name().unwrap_or(""),
                kind = %failed.kind,
                error = %failed.error,
                "fallback failed"
            ),
        }
        for listener in self.listeners() {
            listener.on_event(event);
        }
    }

    /// The fallback failed to answer a call whose error was of `kind`: tells the listeners.
    pub(super) fn failed(&self, kind: ErrorKind, error: &BoxError) {
        self.emit(&Event::Failed(FallbackFailed { kind, error }));
    }
}
