use std::task::{Context, Poll};

use tower_service::Service;

use super::admission::Permit;
use super::breaker::{Circuit, CircuitBreaker};
use super::error::CircuitOpen;
use super::future::ResponseFuture;
use crate::classify::Classify;
use crate::error::BoxError;
use crate::sync::Lanes;
use std::sync::Arc;

/// A breaker and the lanes a service's calls hold its circuit by (one per core, see
/// [`Lanes`]): made once by a [`CircuitBreakerLayer`](super::CircuitBreakerLayer) and
/// shared, through one `Arc`, by the layer, every service it builds and their clones.
pub(super) struct BreakerLanes {
    breaker: CircuitBreaker,
    lanes: Lanes<Circuit>,
}

impl BreakerLanes {
    pub(super) fn new(breaker: CircuitBreaker) -> Arc<BreakerLanes> {
        let lanes = Lanes::new(breaker.lane.target());
        Arc::new(BreakerLanes { breaker, lanes })
    }

    /// The handle the layer was made with.
    pub(super) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// [`CircuitBreaker::try_acquire`], with a permit that holds the circuit by the calling
    /// thread's lane.
    #[inline]
    fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        match CircuitBreaker::admit_closed(self.lanes.pick()) {
            Some(permit) => Ok(permit),
            None => self.acquire_slow(),
        }
    }

    // Out of line and with one argument, as `try_acquire`'s own slow path: the inlined fast
    // path then costs no more than the breaker's.
    #[inline(never)]
    fn acquire_slow(&self) -> Result<Permit, CircuitOpen> {
        self.breaker.acquire_slow_by(self.lanes.pick())
    }
}

/// A service behind a circuit breaker. Built by [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// `poll_ready` forwards to the inner service and never fails because the circuit is open
/// (an error there would tell a balancer or a buffer that the service is gone for good). The
/// open check happens in `call`, which, when the breaker rejects, returns a ready
/// [`CircuitOpen`](super::CircuitOpen) error (boxed) without calling the inner service.
///
/// Clones share the breaker and the lanes its calls hold it by: a clone is the inner
/// service's clone plus one reference count, and allocates nothing of its own.
#[derive(Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    /// The breaker, and the lanes this service's calls hold it by; shared by every clone of
    /// the service (a clone is one reference count, no allocation).
    lanes: Arc<BreakerLanes>,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner` behind `breaker`, classifying results with `classifier`. Allocates the
    /// handles the service's calls hold the breaker by (one per core, rounded up to a power of two, at most 8, 256 bytes each;
    /// clones of the service share them), as [`CircuitBreakerLayer::new`](super::CircuitBreakerLayer::new)
    /// does once for every service it builds.
    pub fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        Self::with_lanes(inner, BreakerLanes::new(breaker), classifier)
    }

    pub(super) const fn with_lanes(inner: S, lanes: Arc<BreakerLanes>, classifier: C) -> Self {
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
    S::Error: Into<BoxError> + 'static,
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
        match self.lanes.try_acquire() {
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
