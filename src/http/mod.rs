//! HTTP (feature `http`): the semantics the best HTTP clients agree on, as ready-made pieces
//! for seawall's layers.
//!
//! | piece | what it does | default, and its source |
//! |---|---|---|
//! | [`HttpRetryClassifier`] | what retry calls retryable | 408, 429, 502, 503, 504 and transport failures; a retried response's `Retry-After` is the least wait (RFC 9110, sections 15 and 10.2.3) |
//! | [`HttpBreakerClassifier`] | what the breaker counts as a failure | 5xx and transport failures; 429 and other 4xx are ignored (the server is alive) |
//! | [`HttpRequests`] | which requests retry may send again, and how it copies them | GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110, section 9.2.2), or any request with an `Idempotency-Key` |
//! | [`ReplayBodyLayer`] / [`ReplayBody`] | a streamed body sent again on a retry | up to 64 KiB kept; a longer body is sent once |
//! | [`RejectionResponseLayer`] / [`rejection_response`] | the server side: rejections as responses | open circuit: 503 + `Retry-After`; timeout: 504 |
//! | [`StandardClientLayer`] | all of the client side in one layer | overall timeout 30 s, retry, breaker, attempt timeout 10 s |
//!
//! A `Retry-After` longer than the policy allows (its `max_delay`, or what is left before its
//! deadline) ends the call at once with
//! [`RetryAfterTooLong`](crate::retry::RetryAfterTooLong), rather than retrying earlier than
//! the server asked ([`LongRetryAfter`](crate::retry::LongRetryAfter) changes that).
//!
//! # A client stack
//!
//! The same stack as [`StandardClientLayer`], written out: each part can be replaced. The
//! inner service here stands for a hyper-util client (`Client<_, ReplayBody<B>>`); see
//! `examples/http_client.rs` for the real thing.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::http::{HttpBreakerClassifier, HttpRequests, HttpRetryClassifier, ReplayBody, ReplayBodyLayer};
//! use seawall::retry::Retry;
//! use seawall::BoxError;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! let attempts = Arc::new(AtomicU32::new(0));
//! let seen = attempts.clone();
//! // A dependency that answers 503 once, then 200.
//! let upstream = service_fn(move |_: Request<ReplayBody<Full<Bytes>>>| {
//!     let n = seen.fetch_add(1, Ordering::Relaxed);
//!     let status = if n == 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
//!     async move { Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap()) }
//! });
//! let stack = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(30)) // overall
//!     .layer(ReplayBodyLayer::new(64 * 1024))
//!     .layer(
//!         Retry::default()
//!             .layer()
//!             .classifier(HttpRetryClassifier::default())
//!             .clone_request(HttpRequests::default()),
//!     )
//!     .layer(CircuitBreaker::default().layer().classifier(HttpBreakerClassifier::default()))
//!     .timeout(Duration::from_secs(10)) // per attempt
//!     .service(upstream);
//!
//! let req = Request::put("http://127.0.0.1/item/7").body(Full::new(Bytes::from("v2"))).unwrap();
//! let response = stack.oneshot(req).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(attempts.load(Ordering::Relaxed), 2);
//! # }
//! ```

mod body;
mod classify;
mod request;
mod response;
mod retry_after;
mod stack;

pub use body::*;
pub use classify::*;
pub use request::*;
pub use response::*;
pub use retry_after::*;
pub use stack::*;
