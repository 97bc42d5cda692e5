use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::ledger::{AdaptiveThrottle, Ledger};
use crate::classify::Classify;
use crate::error::BoxError;
use crate::sync::Lanes;

/// A throttle and the lanes a service's calls hold it by (one per core, see [`Lanes`]):
/// made once by a [`ThrottleLayer`](super::ThrottleLayer) and shared, through one `Arc`, by
/// the layer, every service it builds and their clones.
pub(super) struct ThrottleLanes {
    throttle: AdaptiveThrottle,
    lanes: Lanes<Ledger>,
}

impl ThrottleLanes {
    pub(super) fn new(throttle: AdaptiveThrottle) -> Arc<ThrottleLanes> {
        let lanes = Lanes::new(throttle.lane.target());
        Arc::new(ThrottleLanes { throttle, lanes })
    }

    /// The handle the layer was made with.
    pub(super) fn throttle(&self) -> &AdaptiveThrottle {
        &self.throttle
    }
}

/// A service behind an adaptive throttle. Built by [`ThrottleLayer`](super::ThrottleLayer).
///
/// `poll_ready` forwards to the inner service and never fails because calls are being shed
/// (an error there would tell a balancer or a buffer that the service is gone for good). The
/// decision is made in `call`, which, when the call is shed, returns a ready
/// [`Throttled`](super::Throttled) error (boxed) without calling the inner service. The
/// response future counts the backend's verdict, as the classifier tells it; one of
/// seawall's refusals from further in (an open circuit, a full bulkhead) counts nothing.
///
/// Clones share the throttle and the lanes its calls hold it by: a clone is the inner
/// service's clone plus one reference count, and allocates nothing of its own.
#[derive(Clone)]
pub struct ThrottleService<S, C> {
    inner: S,
    lanes: Arc<ThrottleLanes>,
    classifier: C,
}

impl<S, C> ThrottleService<S, C> {
    /// Wraps `inner` behind `throttle`, classifying results with `classifier`. Allocates the
    /// handles the service's calls hold the throttle by (see
    /// [`ThrottleLayer`](super::ThrottleLayer)), as the layer does once for every service it
    /// builds.
    pub fn new(inner: S, throttle: AdaptiveThrottle, classifier: C) -> Self {
        Self::with_lanes(inner, ThrottleLanes::new(throttle), classifier)
    }

    pub(super) const fn with_lanes(inner: S, lanes: Arc<ThrottleLanes>, classifier: C) -> Self {
        ThrottleService {
            inner,
            lanes,
            classifier,
        }
    }

    /// The throttle in front of the inner service.
    pub fn throttle(&self) -> &AdaptiveThrottle {
        self.lanes.throttle()
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

impl<S, C, Req> Service<Req> for ThrottleService<S, C>
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
        match AdaptiveThrottle::admit(self.lanes.lanes.pick()) {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(throttled) => ResponseFuture::rejected(throttled, self.classifier.clone()),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for ThrottleService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleService")
            .field("inner", &self.inner)
            .field("throttle", self.throttle())
            .finish_non_exhaustive()
    }
}
