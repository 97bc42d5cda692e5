//! gRPC (feature `grpc`): status classifiers from headers and trailers, and
//! `grpc-retry-pushback-ms`, as gRPC's retry design (A6) specifies.
//!
//! A gRPC call's status travels in the `grpc-status` field: in the response headers when the
//! server answers with a Trailers-Only response (how servers answer most errors), or in the
//! trailers at the end of the stream. seawall's layers classify a response when its head
//! arrives, so the classifiers see the first case only; a response whose headers carry no
//! `grpc-status` has committed to streaming a reply and is a `Success` (gRPC's retry design,
//! proposal A6: a call is committed once response headers arrive, so retry is right to stop
//! there). For the breaker, [`GrpcBreakerLayer`] reads the trailers too: it keeps the call's
//! permit in the response body and records the status at the end of the stream.
//!
//! A response with no `grpc-status` and an HTTP status other than 200 (a proxy's 503, say)
//! gets its code from the HTTP status, as gRPC's
//! [HTTP to gRPC status mapping](https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md)
//! specifies: see [`Code::from_http_status`].
//!
//! Errors (the request never got a response) are classified as by the HTTP classifiers:
//! see [transport failures](crate::http::HttpRetryClassifier#transport-failures).
//!
//! # A tonic client stack
//!
//! Retry, the breaker and the replay buffer sit between a generated client and its
//! `Channel`. gRPC calls are `POST`s: [`GrpcRequests`] says which methods may be retried,
//! as gRPC's A6 retry policy names them. `Channel` takes `Request<tonic::body::Body>`,
//! so the bottom of the stack maps the replayable body back; and since tonic turns an error
//! it does not know into `UNKNOWN`, the top maps seawall's errors to the status a server
//! would have answered (an open circuit: `UNAVAILABLE` with a pushback; a timeout:
//! `DEADLINE_EXCEEDED`), keeping the error as the status's source so
//! [`ErrorKind::of`](crate::ErrorKind::of) still tells it.
//!
//! ```no_run
//! # async fn f() -> Result<(), seawall::BoxError> {
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::grpc::{grpc_rejection_response, GrpcBreakerLayer, GrpcRequests, GrpcRetryClassifier};
//! use seawall::http::{ReplayBody, ReplayBodyLayer};
//! use seawall::retry::Retry;
//! use seawall::BoxError;
//! use std::sync::Arc;
//! use tower::ServiceBuilder;
//!
//! fn to_channel(r: http::Request<ReplayBody<tonic::body::Body>>) -> http::Request<tonic::body::Body> {
//!     r.map(tonic::body::Body::new)
//! }
//! fn to_status(err: BoxError) -> tonic::Status {
//!     let head = grpc_rejection_response::<()>(&*err);
//!     let mut status = tonic::Status::from_header_map(head.headers())
//!         .unwrap_or_else(|| tonic::Status::unknown(err.to_string()));
//!     status.set_source(Arc::from(err));
//!     status
//! }
//!
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let stack = ServiceBuilder::new()
//!     .map_err(to_status)
//!     .layer(ReplayBodyLayer::new(64 * 1024))
//!     .layer(
//!         Retry::default()
//!             .layer()
//!             .classifier(GrpcRetryClassifier::new())
//!             .clone_request(GrpcRequests::methods(["/grpc.health.v1.Health/"])),
//!     )
//!     .layer(GrpcBreakerLayer::new(CircuitBreaker::default()))
//!     .map_request(to_channel)
//!     .service(channel);
//! // let mut client = HealthClient::new(stack);  // any generated client
//! # drop(stack); Ok(()) }
//! ```
//!
//! A per-call deadline (`grpc-timeout`) is copied unchanged into each attempt, so each
//! attempt gets the whole of it; gRPC's A6 counts it for the whole call. Give the retry
//! policy a [`deadline`](crate::retry::Builder::deadline) and an outer timeout to bound the
//! call.
//!
//! # Around a bare tonic call
//!
//! tonic's generated clients return `Result<tonic::Response<T>, tonic::Status>`, where the
//! status has already been read (from headers or trailers). seawall does not depend on tonic;
//! classify the code number with [`GrpcBreakerClassifier::outcome_for`] and
//! [`GrpcRetryClassifier::outcome_for`], in a closure or in a classifier type of your own:
//!
//! ```ignore
//! use seawall::grpc::{GrpcBreakerClassifier, GrpcRetryClassifier, Pushback};
//! use seawall::{Classify, Outcome};
//!
//! const BREAKER: GrpcBreakerClassifier = GrpcBreakerClassifier::new();
//! let breaker_classifier = |r: &Result<tonic::Response<Reply>, tonic::Status>| match r {
//!     Ok(_) => Outcome::Success,
//!     Err(status) => BREAKER.outcome_for(status.code() as i32),
//! };
//!
//! /// Retries by A6, honouring `grpc-retry-pushback-ms`.
//! struct TonicRetry(GrpcRetryClassifier);
//! fn pushback(status: &tonic::Status) -> Option<Pushback> {
//!     let value = status.metadata().get("grpc-retry-pushback-ms")?;
//!     Some(Pushback::from_bytes(value.as_bytes()))
//! }
//! impl<T> Classify<tonic::Response<T>, tonic::Status> for TonicRetry {
//!     fn classify(&self, r: &Result<tonic::Response<T>, tonic::Status>) -> Outcome {
//!         match r {
//!             Ok(_) => Outcome::Success,
//!             Err(s) => self.0.outcome_for(s.code() as i32, pushback(s)),
//!         }
//!     }
//!     fn retry_after(&self, r: &Result<tonic::Response<T>, tonic::Status>) -> Option<std::time::Duration> {
//!         r.as_ref().err().and_then(pushback).and_then(Pushback::delay)
//!     }
//! }
//! ```
//!
//! (A `tonic::Status` made by tonic's transport for a connection failure has code
//! `UNAVAILABLE`, so it is retried like any other.)

mod breaker;
mod classify;
mod request;
mod response;

pub use breaker::*;
pub use classify::*;
pub use request::*;
pub use response::*;
