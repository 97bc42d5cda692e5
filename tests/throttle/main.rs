//! Deterministic integration tests of seawall's adaptive throttle, one module per behaviour:
//! exact probabilities on scripted verdicts, the window forgetting old verdicts, the bare
//! API against the layer, retry's treatment of a local rejection, many threads at once,
//! cancellation at every poll, allocations and memory, and observation. Manual or paused
//! time throughout: no test sleeps in real time.

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

/// What every module of this binary imports.
mod prelude {
    #![allow(unused_imports)]
    pub(crate) use std::future::Future;
    pub(crate) use std::pin::{pin, Pin};
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    pub(crate) use std::sync::{Arc, Mutex};
    pub(crate) use std::task::{Context, Poll};
    pub(crate) use std::time::Duration;

    pub(crate) use crate::doubles::*;
    pub(crate) use seawall::clock::{Clock, ManualClock};
    pub(crate) use seawall::throttle::{
        rejection_probability, AdaptiveThrottle, CallError, Event, Permit, Snapshot, Throttled,
    };
    pub(crate) use seawall::{BoxError, ConfigError, ErrorKind, Outcome};
    pub(crate) use tower::{Layer, Service, ServiceBuilder, ServiceExt};
}

mod agreement;
mod cancellation;
mod concurrency;
mod doubles;
#[cfg(feature = "http")]
mod http;
mod memory;
mod observation;
mod probability;
mod retry;
mod window;
