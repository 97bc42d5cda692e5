//! Observation: a limiter's refusals and waits flow through one place, [`Policy::emit`],
//! where user [`Listener`]s and the `tracing` events (feature `tracing`) attach.
//!
//! Admitted calls emit nothing: one event per admitted call would cost a dynamic call on the
//! success path and drown a log.

use std::sync::Arc;
use std::time::Duration;

use super::error::RateLimited;
use super::limiter::Policy;

/// Something a limiter did, as given to a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A call was refused without being run; carries the time until the next slot frees.
    RateLimited(RateLimited),
    /// A call found no free slot and waits this long for one (within `max_wait`). It may
    /// still be refused if another call takes the slot first.
    Delayed(Duration),
}

/// Receives every [`Event`] of a limiter. Implemented for every `Fn(&Event) + Send + Sync`.
///
/// Register with [`Builder::listener`](super::Builder::listener). Listeners run on the thread
/// that made the decision, after it took effect and outside every lock. A keyed limiter does
/// not hand the key to its listeners (keys are often client addresses or API keys, and a
/// flood of them should not become a flood of labels).
///
/// ```
/// use seawall::rate_limit::{Event, RateLimiter};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let refused = Arc::new(AtomicU64::new(0));
/// let counter = refused.clone();
/// let limiter = RateLimiter::builder()
///     .rate(1)
///     .listener(move |event: &Event| {
///         if let Event::RateLimited(_) = event {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()
///     .expect("valid configuration");
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_err());
/// assert_eq!(refused.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event, on the thread that caused it.
    fn on_event(&self, event: &Event);
}

impl<F> Listener for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// The listeners of one limiter.
pub(crate) type Listeners = Arc<[Arc<dyn Listener>]>;

impl Policy {
    /// The one place every event goes through.
    pub(crate) fn emit(&self, event: Event) {
        #[cfg(feature = "tracing")]
        match event {
            Event::RateLimited(limited) => tracing::debug!(
                limiter = self.name.as_deref().unwrap_or(""),
                retry_after_ms =
                    u64::try_from(limited.retry_after().as_millis()).unwrap_or(u64::MAX),
                "rate limiter refused a call"
            ),
            Event::Delayed(wait) => tracing::debug!(
                limiter = self.name.as_deref().unwrap_or(""),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "rate limiter delays a call"
            ),
        }
        for listener in self.listeners.iter() {
            listener.on_event(&event);
        }
    }
}
