//! Observation: every admission and rejection of a bulkhead goes through one place,
//! [`Bulkhead::emit`], where user [`Listener`]s attach (and, for rejections, the `tracing`
//! event of feature `tracing`); and [`Snapshot`], a point-in-time view for metrics and
//! health endpoints.
//!
//! # Cost
//!
//! Without a listener, an admitted call emits nothing (one length check). With one, every
//! admission and every rejection is one dynamic call per listener. Admissions are not
//! traced (one event per call would drown a log); rejections are, at `DEBUG`.

use std::time::Duration;

use super::error::BulkheadFull;
use super::slots::Bulkhead;
use crate::sync::Ordering;

/// Something that happened to a bulkhead, as given to a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A call took a slot: at once (`waited` is zero, and no clock was read), or after
    /// waiting `waited` for one.
    Admitted {
        /// How long the call waited for its slot.
        waited: Duration,
    },
    /// A call was refused without being run: every slot stayed busy.
    Rejected(BulkheadFull),
}

/// Receives every [`Event`] of a bulkhead. Implemented for every
/// `Fn(&Bulkhead, &Event) + Send + Sync`.
///
/// Register with [`Builder::listener`](super::Builder::listener). Listeners run on the thread
/// that made the call, in the order they were added, after the decision took effect (a slot
/// taken, or a refusal made). A listener that panics unwinds into the caller (and the
/// listeners after it do not see that event); a slot taken for the call is given back as
/// the permit unwinds, so no slot is lost.
///
/// ```
/// use seawall::bulkhead::{Bulkhead, Event};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let rejections = Arc::new(AtomicU64::new(0));
/// let counter = rejections.clone();
/// let bulkhead = Bulkhead::builder()
///     .max_concurrent(1)
///     .listener(move |_: &Bulkhead, event: &Event| {
///         if let Event::Rejected(_) = event {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()
///     .expect("valid configuration");
///
/// let _held = bulkhead.try_acquire().expect("a slot is free");
/// assert!(bulkhead.try_acquire().is_err());
/// assert_eq!(rejections.load(Ordering::Relaxed), 1);
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event, on the thread that caused it. `bulkhead` is the bulkhead the
    /// event happened to.
    fn on_event(&self, bulkhead: &Bulkhead, event: &Event);
}

impl<F> Listener for F
where
    F: Fn(&Bulkhead, &Event) + Send + Sync + 'static,
{
    fn on_event(&self, bulkhead: &Bulkhead, event: &Event) {
        self(bulkhead, event)
    }
}

impl Bulkhead {
    /// The one place every event goes through.
    pub(super) fn emit(&self, event: &Event) {
        for listener in self.slots.config.listeners.iter() {
            listener.on_event(self, event);
        }
    }
}

// ===== snapshots =====

/// A point-in-time view of a bulkhead, for metrics and health endpoints (resilience4j's
/// `available_concurrent_calls` and `max_allowed_concurrent_calls`, and what they imply).
///
/// The fields are read one after the other, not at one instant: under traffic they may
/// disagree by a call or two.
///
/// With the `serde` feature it serialises with these field names, for a health endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Snapshot {
    /// How many calls may run at once.
    pub max_concurrent: usize,
    /// Free slots.
    pub available: usize,
    /// Calls holding a slot: `max_concurrent - available`.
    pub in_flight: usize,
    /// Calls waiting for a slot.
    pub waiting: usize,
}

impl Bulkhead {
    /// A point-in-time view of the slots.
    ///
    /// ```
    /// use seawall::bulkhead::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::builder().max_concurrent(3).build().expect("valid");
    /// let _permit = bulkhead.try_acquire().expect("a slot is free");
    /// let s = bulkhead.snapshot();
    /// assert_eq!((s.available, s.in_flight, s.waiting), (2, 1, 0));
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let max_concurrent = self.max_concurrent();
        let available = self.slots.semaphore.available_permits();
        Snapshot {
            max_concurrent,
            available,
            in_flight: max_concurrent.saturating_sub(available),
            waiting: self.slots.waiting.load(Ordering::Relaxed),
        }
    }
}
