//! Fallback: answer a call from somewhere else when it fails in a way you chose (an open
//! circuit, a timeout, an exhausted retry budget, a rate limit, or any error), instead of
//! returning the error.
//!
//! A [`Fallback`] policy selects the errors to answer, by [`ErrorKind`](crate::ErrorKind)
//! or by a predicate; by default refusals and timeouts, the cases where the dependency gave
//! no answer (see [`Fallback`] for the table). The answer comes from a fallback service,
//! which gets the original request and the error and returns the same `Response` type; its
//! own error becomes the call's error. [`FallbackLayer`] puts it on a tower service,
//! [`Fallback::call`] around any async call; both decide alike, and tell the policy's
//! [`Listener`]s each time the fallback answers ([`Event::Used`]) and each time the fallback
//! itself fails ([`Event::Failed`]).
//!
//! Errors stay [`BoxError`](crate::BoxError), so the layer composes in one `ServiceBuilder`
//! with seawall's other layers and tower's. Put it outside retry and the circuit breaker, so
//! it answers what they give up on (see the crate docs for the whole order).
//!
//! Only errors are answered: a response a classifier calls a failure (an HTTP 503) is
//! returned as it is; turn it into an error below the fallback to have it answered.
//!
//! # Example
//!
//! ```
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::fallback::{fallback_fn, FallbackLayer};
//! use seawall::{BoxError, ErrorKind};
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let breaker = CircuitBreaker::builder().failure_threshold(1).build().expect("valid");
//!
//! let mut svc = ServiceBuilder::new()
//!     .layer(
//!         FallbackLayer::new(fallback_fn(|order: u32, err: BoxError| async move {
//!             Ok::<_, BoxError>(format!("order {order} queued ({})", ErrorKind::of(&*err)))
//!         }))
//!         .on(ErrorKind::CircuitOpen),
//!     )
//!     .layer(breaker.layer())
//!     .service(service_fn(|order: u32| async move {
//!         if order == 0 { Err::<String, BoxError>("payment down".into()) }
//!         else { Ok(format!("order {order} paid")) }
//!     }));
//!
//! // The inner service's own error is not selected: it is the answer. It trips the breaker.
//! let err = svc.ready().await.unwrap().call(0).await.unwrap_err();
//! assert_eq!(err.to_string(), "payment down");
//! // The open circuit is selected: the fallback answers, with the original request.
//! let answer = svc.ready().await.unwrap().call(7).await.unwrap();
//! assert_eq!(answer, "order 7 queued (circuit open)");
//! # }
//! ```
//!
//! # The request
//!
//! The inner service consumes the request, so the fallback gets a copy made before the call:
//! with `Clone` by default, or any [`CloneRequest`](crate::retry::CloneRequest) given to
//! [`FallbackLayer::clone_request`] (the trait retry copies its requests with; its
//! `is_idempotent` is not asked, as nothing is sent twice). A request the copier cannot copy
//! is not answered: its error is returned. A fallback that needs no request takes
//! [`FallbackLayer::error_only`] and is a `Service<BoxError>`; nothing is copied then.
//!
//! # Cost
//!
//! The success path adds, per call: the copy of the request (none with `error_only`), a
//! clone of the fallback service (free for a closure that captures nothing, one reference
//! count for one that captures an `Arc` or a channel's sender), and a clone of the policy
//! (free for a policy without predicate, name or listener; one reference count with
//! them, `.with_metrics(..)` included). No allocation, no lock, no clock read, no event.
//! The error path reads the error's kind
//! ([`ErrorKind::of`](crate::ErrorKind::of)) and, when the fallback answers, readies and calls
//! it. `benches/fallback.rs` measures the success path against the bare service.
//!
//! # Cancellation
//!
//! The response future holds no permit or shared count: dropping it at any poll drops the
//! inner or fallback future it runs and leaves nothing behind.

mod future;
mod layer;
mod observe;
mod select;
mod service;

pub use future::ResponseFuture;
pub use layer::FallbackLayer;
pub use observe::{Event, FallbackEvent, FallbackFailed, Listener};
pub use select::Fallback;
pub use service::{fallback_fn, ErrorOnly, FallbackFn, FallbackService, KeepRequest, WithRequest};
