//! Bulkhead: a bound on the calls in flight to one dependency, with an optional bounded wait
//! for a slot.
//!
//! A [`Bulkhead`] lets at most `max_concurrent` calls run at once. A call that finds every
//! slot busy waits up to `max_wait` for one (default: not at all), then is refused with
//! [`BulkheadFull`] ([`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull)), without
//! reaching the inner service. Waiting calls are admitted in the order they started to wait
//! (the first poll of their future, which for an awaited call is at once), and a call that
//! has started to wait is never overtaken by a newer one. A slot is held from admission until
//! the call's response is ready or its future is dropped, so a cancelled call frees its slot
//! at once. These are resilience4j's semaphore bulkhead (`maxConcurrentCalls`,
//! `maxWaitDuration`, default 0 ms) and Polly's concurrency limiter with a queue bounded in
//! time rather than in length.
//!
//! The bulkhead knows nothing of tower: use it around any async call with
//! [`Bulkhead::call`], by hand with [`Bulkhead::try_acquire`] / [`Bulkhead::acquire`] and
//! the [`Permit`] they return, or as a tower middleware with [`BulkheadLayer`]; every path
//! makes the same decision. Clones of a bulkhead, of its layers and of the services they
//! build share one set of slots. A bulkhead's refusal is one of seawall's refusals: seawall's
//! retry does not retry it unless told to.
//!
//! # Example
//!
//! ```
//! use seawall::bulkhead::{Bulkhead, BulkheadFull};
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let bulkhead = Bulkhead::builder()
//!     .max_concurrent(1)
//!     .max_wait(Duration::from_millis(100))
//!     .build()
//!     .expect("valid configuration");
//!
//! let mut svc = ServiceBuilder::new()
//!     .layer(bulkhead.layer())
//!     .service(service_fn(|ms: u64| async move {
//!         tokio::time::sleep(Duration::from_millis(ms)).await;
//!         Ok::<_, BoxError>(ms)
//!     }));
//!
//! // A call of 1 s takes the one slot...
//! let slow = svc.ready().await.unwrap().call(1_000);
//! // ...so the next one waits 100 ms for it, and is refused.
//! let err = svc.ready().await.unwrap().call(5).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::BulkheadFull);
//! assert_eq!(err.downcast_ref::<BulkheadFull>().unwrap().waited(), Duration::from_millis(100));
//!
//! // Once the slow call ends, its slot is free again.
//! assert_eq!(slow.await.unwrap(), 1_000);
//! assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
//! assert_eq!(bulkhead.snapshot().in_flight, 0);
//! # }
//! ```
//!
//! # Why not tower's `ConcurrencyLimit` and `LoadShed`
//!
//! Both are close, and the bulkhead takes their shape: a tokio semaphore, and a permit held
//! by the response future, released by `Drop` (tower's `limit/concurrency/future.rs`). But
//! composed as they are, they do not make a bulkhead (read against tower 0.5.3):
//!
//! - `ConcurrencyLimit` takes its permit in `poll_ready` and keeps it in the service, until
//!   `call` moves it into the response future. A caller that readies a service and then does
//!   not call (it was ready "just in case", or lost a race in a balancer) holds a slot for as
//!   long as that service clone lives. The bulkhead takes its slot in `call`, and only
//!   forwards `poll_ready`.
//! - `LoadShed` over it turns "not ready" into tower's `Overloaded`, which is not
//!   `BulkheadFull` (it answers no "how many slots, how long waited", and is not one of
//!   seawall's refusals). And the not-ready `ConcurrencyLimit` it sheds has queued its clone
//!   for a permit: when a slot frees, that idle clone may get it, and hold it until its next
//!   call.
//! - Neither waits a bounded time: `ConcurrencyLimit` waits for ever, `LoadShed` not at all.
//!
//! `ConcurrencyLimit` also needs tower's `limit` feature, which brings `tokio-util`.
//!
//! # Where it goes in a stack
//!
//! Outermost first: rate limit, overall timeout, retry, circuit breaker, **bulkhead**,
//! per-attempt timeout, the service. Inside the breaker, a refusal never reaches the
//! breaker's count (a full bulkhead says nothing about the dependency's health), and an open
//! circuit refuses a call before it takes a slot. Inside retry, each attempt takes its own
//! slot and frees it before the backoff; a refusal is not retried. The per-attempt timeout
//! inside it bounds how long a slot is held; one outside it would bound the wait for a slot
//! too.
//!
//! # Cost
//!
//! A call that finds a slot free costs a compare-exchange on the semaphore's count and a
//! reference count taken; giving the slot back drops the count and calls tokio's
//! `add_permits`, which **takes the semaphore's waiter-list mutex on every release**, waiters
//! or not (tokio 1.x `batch_semaphore::release`; tower's `ConcurrencyLimit` pays the same).
//! No clock read, no allocation. The semaphore's count and its mutex are shared by every
//! core: a bulkhead is a shared bound by nature, so cores calling at once through one
//! bulkhead contend on them. A call that must wait allocates (its wait, and the readied
//! service with the request) and reads the clock twice (to say how long it waited).
//! `benches/bulkhead.rs` measures the success path against a bare service; the README's
//! cost table is the place for its figures. A lock-free release (an atomic count in front of
//! the semaphore, reaching the waiter list only when calls wait) is the known way to cut it.
//!
//! # Memory
//!
//! Nothing is leaked: a bulkhead is one reference-counted allocation (the semaphore, the
//! configuration, the listeners), held by every handle, layer, service and [`Permit`], and
//! freed when the last of them goes. A call in flight keeps its bulkhead alive and gives its
//! slot back when it ends.

mod config;
mod error;
mod future;
mod layer;
mod observe;
mod service;
mod slots;

pub use config::{Builder, MAX_CONCURRENT};
pub use error::{BulkheadFull, CallError};
pub use future::ResponseFuture;
pub use layer::BulkheadLayer;
pub use observe::{Event, Listener, Snapshot};
pub use service::BulkheadService;
pub use slots::{Bulkhead, Permit};
