//! The hedge's one observation seam: every hedge sent and every hedge the budget refused is
//! sent here as an [`Event`], from both the tower layer and the bare call. Listeners attach
//! with [`Builder::listener`](super::Builder::listener); `tracing` events (feature `tracing`)
//! are emitted here too, never inline in the state machine.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Something a hedge did, or was not allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A hedge is sent: the budget granted it; it is made once a fresh clone of the inner
    /// service is ready.
    Sent(HedgeEvent),
    /// The budget refused a hedge: no more hedges for this call, whose attempts in flight
    /// carry on.
    BudgetExhausted(HedgeEvent),
}

/// One hedge of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HedgeEvent {
    /// Which hedge, from 1 (the primary attempt is 0).
    pub hedge: u32,
    /// The delay the call waited before each hedge: the fixed one, or the latency
    /// percentile when the call began.
    pub delay: Duration,
}

/// Receives a hedge policy's [`Event`]s. Implemented by every `Fn(&Event)`.
///
/// Runs on the calling task, inside `poll`: keep it short and do not block.
pub trait HedgeListener: Send + Sync + 'static {
    /// Called for every event, in order.
    fn on_event(&self, event: &Event);
}

impl<F> HedgeListener for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// A policy's name and listeners, and the one place events go out.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    listeners: Vec<Arc<dyn HedgeListener>>,
    pub(crate) name: Option<Arc<str>>,
}

impl Observers {
    pub(crate) fn push(&mut self, listener: Arc<dyn HedgeListener>) {
        self.listeners.push(listener);
    }

    pub(crate) fn emit(&self, event: &Event) {
        #[cfg(feature = "tracing")]
        match event {
            Event::Sent(e) => tracing::debug!(
                policy = self.name.as_deref().unwrap_or(""),
                hedge = e.hedge,
                delay_ms = u64::try_from(e.delay.as_millis()).unwrap_or(u64::MAX),
                "hedging"
            ),
            Event::BudgetExhausted(e) => tracing::debug!(
                policy = self.name.as_deref().unwrap_or(""),
                hedge = e.hedge,
                delay_ms = u64::try_from(e.delay.as_millis()).unwrap_or(u64::MAX),
                "hedge refused: retry budget exhausted"
            ),
        }
        for listener in &self.listeners {
            listener.on_event(event);
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name:?}, {} listeners", self.listeners.len()),
            None => write!(f, "{} listeners", self.listeners.len()),
        }
    }
}
