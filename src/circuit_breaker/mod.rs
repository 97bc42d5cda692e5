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
//! # Cost
//!
//! The default breaker (consecutive failures only) admits a closed call with one atomic load
//! and records a success with one more load and no write: no lock, no clock read, no
//! allocation, no reference count (a permit reaches the breaker through a small block that is
//! never freed; see [`CircuitBreaker`]). A rate condition adds a mutex around the window and
//! reference counting per call (about 50 ns here, and it does not scale across cores);
//! slow-call measurement and time windows read the clock (about 20 ns a read).

mod config;
mod error;
mod future;
mod layer;
mod service;
mod state;
mod window;

pub use config::{Builder, MAX_HALF_OPEN_CALLS};
pub use error::{CallError, CircuitOpen};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreakerService;
pub use state::{CircuitBreaker, Permit, Snapshot, State, StateChange};
pub use window::SlidingWindow;
