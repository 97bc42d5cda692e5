//! Observation: every local rejection, and every start and end of shedding, goes through one
//! place, [`AdaptiveThrottle::emit`], where user [`Listener`]s attach (and the `tracing`
//! events of feature `tracing`, at `DEBUG`); and [`Snapshot`], a point-in-time view for
//! metrics and health endpoints.
//!
//! # Cost
//!
//! Without a listener, nothing: an admitted call emits nothing in any case, and a rejection
//! or a change checks one length. With one, each event is one dynamic call per listener.

use std::time::Duration;

use super::error::Throttled;
use super::ledger::AdaptiveThrottle;

/// Something that happened to a throttle, as given to a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A call was shed locally, without being run.
    Rejected(Throttled),
    /// The rejection probability rose above zero: the window's requests passed `k` times its
    /// accepts, and calls are being shed.
    SheddingStarted {
        /// The new rejection probability.
        probability: f64,
        /// The window's requests.
        requests: u64,
        /// The window's accepts.
        accepts: u64,
    },
    /// The rejection probability fell back to zero: no call is shed any more.
    SheddingStopped,
}

/// Receives every [`Event`] of a throttle. Implemented for every
/// `Fn(&AdaptiveThrottle, &Event) + Send + Sync`.
///
/// Register with [`Builder::listener`](super::Builder::listener). Listeners run on the thread
/// that made the call (or recorded the verdict) that caused the event, in the order they were
/// added, after the event took effect. A listener that panics unwinds into that caller.
///
/// ```
/// use seawall::clock::ManualClock;
/// use seawall::throttle::{AdaptiveThrottle, Event};
/// use seawall::Outcome;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicU64::new(0));
/// let counter = started.clone();
/// let throttle = AdaptiveThrottle::builder()
///     .clock(ManualClock::new())
///     .listener(move |_: &AdaptiveThrottle, event: &Event| {
///         if let Event::SheddingStarted { .. } = event {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()
///     .expect("valid configuration");
///
/// throttle.record(Outcome::Failure);
/// assert_eq!(started.load(Ordering::Relaxed), 1);
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event, on the thread that caused it. `throttle` is the throttle the
    /// event happened to.
    fn on_event(&self, throttle: &AdaptiveThrottle, event: &Event);
}

impl<F> Listener for F
where
    F: Fn(&AdaptiveThrottle, &Event) + Send + Sync + 'static,
{
    fn on_event(&self, throttle: &AdaptiveThrottle, event: &Event) {
        self(throttle, event)
    }
}

impl AdaptiveThrottle {
    /// The one place every event goes through.
    pub(super) fn emit(&self, event: &Event) {
        for listener in self.lane.config.listeners.iter() {
            listener.on_event(self, event);
        }
    }
}

// ===== snapshots =====

/// A point-in-time view of a throttle, for metrics and health endpoints.
///
/// The fields are read one after the other, not at one instant: under traffic they may come
/// from two settlements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Requests in the window (locally shed ones included).
    pub requests: u64,
    /// Requests in the window the backend accepted.
    pub accepts: u64,
    /// The rejection probability a call is drawn against now.
    pub probability: f64,
    /// The multiplier `k`.
    pub k: f64,
    /// The window's length.
    pub window: Duration,
}

impl AdaptiveThrottle {
    /// A point-in-time view of the window. Settles it first (one clock read), so every
    /// verdict recorded before the call is counted, and buckets past the window are gone;
    /// if another caller is settling at that moment, the view is the last one published.
    /// Like any settlement, it dates the counts made since the previous one (never later
    /// than they were made): taking snapshots often only brings that dating closer to the
    /// truth, which can change later decisions only in that direction.
    ///
    /// ```
    /// use seawall::clock::ManualClock;
    /// use seawall::throttle::AdaptiveThrottle;
    /// use seawall::Outcome;
    ///
    /// let throttle = AdaptiveThrottle::builder().clock(ManualClock::new()).build().expect("valid");
    /// throttle.record(Outcome::Success);
    /// throttle.record(Outcome::Failure);
    /// let s = throttle.snapshot();
    /// assert_eq!((s.requests, s.accepts, s.probability), (2, 1, 0.0));
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let counts = self.settle();
        Snapshot {
            requests: counts.requests,
            accepts: counts.accepts,
            probability: self.probability(),
            k: self.k(),
            window: self.window(),
        }
    }
}
