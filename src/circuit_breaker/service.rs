use std::task::{Context, Poll};

use tower_service::Service;

use super::breaker::CircuitBreaker;
use super::future::ResponseFuture;
use crate::classify::Classify;
use crate::error::BoxError;

/// A service behind a circuit breaker. Built by [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// `poll_ready` forwards to the inner service and never fails because the circuit is open
/// (an error there would tell a balancer or a buffer that the service is gone for good). The
/// open check happens in `call`, which, when the breaker rejects, returns a ready
/// [`CircuitOpen`](super::CircuitOpen) error (boxed) without calling the inner service.
///
/// Clones share the breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner` behind `breaker`, classifying results with `classifier`.
    pub const fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker in front of the inner service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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
        match self.breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(open) => ResponseFuture::rejected(open, self.classifier.clone()),
        }
    }
}
