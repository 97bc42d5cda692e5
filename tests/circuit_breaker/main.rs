//! Deterministic, adversarial integration tests of seawall's circuit breaker.
//!
//! Time is either tokio's paused clock (`start_paused = true` + `tokio::time::advance`) or a
//! `ManualClock` (synchronous tests and multi-thread runtimes). No test sleeps in real time to
//! wait for a state change.
//!
//! One binary, a module per behaviour; `model` is a reference model driven by proptest. The
//! `tracing` events are checked in `tests/tracing.rs`, a binary of its own (see there).

/// What every module of this binary imports.
mod prelude {
    #![allow(unused_imports)]
    pub(crate) use std::collections::VecDeque;
    pub(crate) use std::io;
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    pub(crate) use std::sync::{Arc, Mutex};
    pub(crate) use std::task::{Context, Poll};
    pub(crate) use std::time::Duration;

    pub(crate) use crate::doubles::*;
    pub(crate) use futures::future::BoxFuture;
    pub(crate) use seawall::circuit_breaker::{
        Builder, CallError, CircuitBreaker, CircuitOpen, Event, Listener, Recorded, SlidingWindow,
        State, StateChange, MAX_HALF_OPEN_CALLS,
    };
    pub(crate) use seawall::clock::{Clock, ManualClock};
    pub(crate) use seawall::{BoxError, ConfigError, ErrorKind, Outcome};
    pub(crate) use tokio::sync::oneshot;
    pub(crate) use tower::{Layer, Service, ServiceBuilder, ServiceExt};
}

mod cancellation;
mod classification;
mod concurrency;
mod configuration;
mod doubles;
mod model;
mod observation;
mod open_and_half_open;
mod overrides;
mod regressions;
mod stale_outcomes;
mod tripping;
