//! Deterministic integration tests of seawall's bulkhead, one module per behaviour: the
//! bound under many callers, refusal at once, the bounded wait, cancellation at every poll
//! point, readiness, the bare API against the layer, retry's treatment of a refusal,
//! observation and configuration. Paused tokio time throughout: no test sleeps in real time.

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

/// What every module of this binary imports.
mod prelude {
    #![allow(unused_imports)]
    pub(crate) use std::pin::pin;
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    pub(crate) use std::sync::{Arc, Mutex};
    pub(crate) use std::time::Duration;

    pub(crate) use crate::doubles::*;
    pub(crate) use futures::future::join_all;
    pub(crate) use futures::poll;
    pub(crate) use seawall::bulkhead::{
        Builder, Bulkhead, BulkheadFull, CallError, Event, Permit, Snapshot, MAX_CONCURRENT,
    };
    pub(crate) use seawall::{BoxError, ConfigError, ErrorKind};
    pub(crate) use tokio::time::Instant;
    pub(crate) use tower::{Layer, Service, ServiceBuilder, ServiceExt};
}

mod bare;
mod bound;
mod cancellation;
mod configuration;
mod doubles;
mod observation;
mod readiness;
mod refusal;
mod retry;
mod waiting;
