use std::task::{Context, Poll};

use tower_service::Service;

use super::breaker::CircuitBreaker;
use super::future::ResponseFuture;
use super::lanes::Lanes;
use crate::classify::Classify;
use crate::error::BoxError;
use std::sync::Arc;

/// A service behind a circuit breaker. Built by [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// `poll_ready` forwards to the inner service and never fails because the circuit is open
/// (an error there would tell a balancer or a buffer that the service is gone for good). The
/// open check happens in `call`, which, when the breaker rejects, returns a ready
/// [`CircuitOpen`](super::CircuitOpen) error (boxed) without calling the inner service.
///
/// Clones share the breaker.
#[derive(Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    /// The breaker, and the lanes this service's calls hold it by (see [`Lanes`]); shared by
    /// every clone of the service.
    lanes: Arc<Lanes>,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner` behind `breaker`, classifying results with `classifier`. Allocates the
    /// handles the service's calls hold the breaker by (a few hundred bytes; clones of the
    /// service share them), as [`CircuitBreakerLayer::new`](super::CircuitBreakerLayer::new)
    /// does once for every service it builds.
    pub fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        Self::with_lanes(inner, Arc::new(Lanes::new(breaker)), classifier)
    }

    pub(crate) const fn with_lanes(inner: S, lanes: Arc<Lanes>, classifier: C) -> Self {
        CircuitBreakerService {
            inner,
            lanes,
            classifier,
        }
    }

    /// The breaker in front of the inner service.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.lanes.breaker()
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.lanes.pick().try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(open) => ResponseFuture::rejected(open, self.classifier.clone()),
        }
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", self.breaker())
            .finish_non_exhaustive()
    }
}
