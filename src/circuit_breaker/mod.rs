//! Circuit breaker: stop calling a dependency that keeps failing, probe it now and then, and
//! close again once it answers.
//!
//! A breaker is **closed** while things go well: every call is admitted and its outcome
//! recorded. It trips **open** on any configured condition: `failure_threshold` consecutive
//! failures (default 5); a failure rate, or a slow-call rate, over a sliding window holding at
//! least `minimum_calls` calls. While open it rejects every call at once with [`CircuitOpen`],
//! which says how long until the next probe. After `wait_in_open` (default 30 s, optionally
//! growing on each consecutive re-trip) the next call finds it **half-open**: up to
//! `half_open_max_calls` probes (default 3) go through at once; that many successes close it,
//! one failure opens it again. A probe cancelled before it ends records nothing and frees its
//! slot at once. [`CircuitBreaker::force_open`] and [`CircuitBreaker::disable`] override the
//! machine until [`CircuitBreaker::reset`].
//!
//! The state machine ([`CircuitBreaker`]) knows nothing of tower: use it through
//! [`CircuitBreaker::call`] around any async call, through a [`Permit`] by hand, or as a tower
//! middleware with [`CircuitBreakerLayer`]. Clones of a breaker, of the layer and of the
//! services it builds all share one circuit.
//!
//! What counts as a failure is the classifier's word (by default, every error), with one
//! exception taken before any classifier is asked: seawall's own refusals from layers inside
//! the breaker that never reached the dependency
//! ([`ErrorKind::never_reached_dependency`](crate::ErrorKind::never_reached_dependency): a
//! full bulkhead, a rate limit, an inner breaker's open circuit, a local throttle) are
//! recorded as ignored. An inner retry's exhausted budget is not one of them: it carries a
//! failure of the dependency, and counts as one.
//!
//! # Example
//!
//! ```
//! use seawall::circuit_breaker::{CircuitBreaker, CircuitOpen};
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let breaker = CircuitBreaker::builder()
//!     .failure_threshold(2)
//!     .wait_in_open(Duration::from_secs(10))
//!     .build()
//!     .expect("valid configuration");
//!
//! let mut svc = ServiceBuilder::new()
//!     .layer(breaker.layer())
//!     .service(service_fn(|fail: bool| async move {
//!         if fail { Err::<&str, BoxError>("boom".into()) } else { Ok("pong") }
//!     }));
//!
//! for _ in 0..2 {
//!     let _ = svc.ready().await.unwrap().call(true).await; // two failures trip the breaker
//! }
//! let err = svc.ready().await.unwrap().call(false).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
//! assert_eq!(err.downcast_ref::<CircuitOpen>().unwrap().retry_in(), Duration::from_secs(10));
//!
//! tokio::time::advance(Duration::from_secs(10)).await; // the wait is over: probes go through
//! for _ in 0..3 {
//!     assert_eq!(svc.ready().await.unwrap().call(false).await.unwrap(), "pong");
//! }
//! assert_eq!(breaker.state(), seawall::circuit_breaker::State::Closed);
//! # }
//! ```
//!
//! # Memory
//!
//! Nothing is leaked. A breaker is one reference-counted circuit (the state word, the
//! open-period end, the window, the configuration and listeners, some of them allocations of
//! their own). Every [`CircuitBreaker`] handle, every
//! layer and service, and every [`Permit`] holds a reference to it, and when the last of them
//! is dropped all of it is freed. A call in flight therefore keeps its breaker alive: after
//! the last handle is dropped (a config reload replacing the stack, say) the call still
//! records its outcome, and may still trip or close the breaker and reach its listeners.
//! Listeners are handed the breaker ([`Listener::on_event`]), so one that needs it captures
//! nothing and creates no cycle.
//!
//! A reference count per call, rather than permits that borrow nothing: the earlier design
//! (a block never freed, reached through a `&'static`) leaked by construction, and recycled
//! generation-tagged slots cannot keep a breaker alive for a call in flight without counting
//! those calls, which is a reference count again. One increment when a call is admitted and
//! one decrement when its permit goes is the simplest scheme that is correct by construction:
//! no `unsafe`, and loom checks that the memory is freed in every interleaving
//! (`tests/loom/breaker.rs`).
//!
//! **Lanes.** A count written by every call is a cache line every core writes; two cores
//! calling at once would spend most of a call moving that line between them. So the count a
//! call takes is not the circuit's own: a handle holds the circuit through a *lane*, a small
//! allocation of its own (128-byte aligned, so it shares a line with nothing), and a
//! [`CircuitBreakerLayer`] makes one lane per core (rounded up to a power of two, at most 8, 256 bytes each) once, when it is
//! built; each call through its services takes the lane of its thread. Cores then write
//! different lines, and the state word, read by every call, sits on a line of its own as
//! well. Measured against one shared count: the same instructions on one thread (one more
//! pointer hop, a thread-local read), and under two cores calling at once less than half the
//! time per call. The README's cost table has the figures and the commands that reproduce
//! them. The retry layer holds its policy the same way (one primitive, `sync::Lanes`).
//!
//! # Cost
//!
//! The default breaker (consecutive failures only, no listener) admits a closed call with one
//! atomic load and one reference-count increment, and records a success with one more load, a
//! comparison and the decrement: no lock, no clock read, no allocation, no dynamic call. The
//! two counted operations are most of what a closed breaker costs; through a layer they
//! write the count of the calling thread's lane (one thread-local read picks it, see
//! [Memory](#memory)), so calls on several cores do not contend on them. A listener adds one
//! dynamic call per recorded outcome. A rate condition adds a mutex around the window (it
//! does not scale across cores); slow-call measurement and time windows read the clock.

mod admission;
mod breaker;
mod config;
mod error;
mod future;
mod layer;
mod observe;
mod recording;
mod service;
mod transition;
mod window;
mod word;

pub use admission::Permit;
pub use breaker::CircuitBreaker;
pub use config::{Builder, MAX_FAILURE_THRESHOLD, MAX_HALF_OPEN_CALLS};
pub use error::{CallError, CircuitOpen};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use observe::{Event, Listener, Recorded, Snapshot};
pub use service::CircuitBreakerService;
pub use transition::{State, StateChange};
pub use window::SlidingWindow;
