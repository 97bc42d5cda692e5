use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::{Hedge, Policy};
use crate::classify::Classify;
use crate::error::BoxError;
use crate::retry::CloneRequest;
use crate::sync::Lanes;

/// A policy and the lanes a service's calls hold it by (one per core): made once by a
/// [`HedgeLayer`](super::HedgeLayer) and shared, through one `Arc`, by the layer, every
/// service it builds and their clones.
pub(super) struct PolicyLanes {
    hedge: Hedge,
    lanes: Lanes<Policy>,
}

impl PolicyLanes {
    pub(super) fn new(hedge: Hedge) -> Arc<PolicyLanes> {
        let lanes = Lanes::new(&hedge.policy);
        Arc::new(PolicyLanes { hedge, lanes })
    }

    pub(super) fn hedge(&self) -> &Hedge {
        &self.hedge
    }
}

/// A service whose slow calls are hedged. Built by [`HedgeLayer`](super::HedgeLayer).
///
/// `poll_ready` forwards to the inner service. `call` makes the primary attempt with the
/// readied inner service and keeps a fresh clone for the next call (the inner service must
/// be `Clone`); each hedge is made, inside the response future, by a clone of the service
/// that made the primary, readied with its own `poll_ready` first (a hedge waits for a
/// concurrency-limit permit or a buffer slot of its own, and never takes the next call's).
///
/// Clones share the policy (its histogram and budget) and the lanes its calls hold it by.
#[derive(Clone)]
pub struct HedgeService<S, C, R> {
    inner: S,
    lanes: Arc<PolicyLanes>,
    classifier: C,
    clone_request: R,
}

impl<S, C, R> HedgeService<S, C, R> {
    /// Wraps `inner`, hedging through `hedge`. Allocates the handles the service's calls hold
    /// the policy by (one per core, at most 8, 256 bytes each; clones of the service share
    /// them), as [`HedgeLayer::new`](super::HedgeLayer::new) does once for every service it
    /// builds.
    pub fn new(inner: S, hedge: Hedge, classifier: C, clone_request: R) -> Self {
        Self::with_lanes(inner, PolicyLanes::new(hedge), classifier, clone_request)
    }

    pub(super) const fn with_lanes(
        inner: S,
        lanes: Arc<PolicyLanes>,
        classifier: C,
        clone_request: R,
    ) -> Self {
        HedgeService {
            inner,
            lanes,
            classifier,
            clone_request,
        }
    }

    /// The hedge policy.
    pub fn hedge(&self) -> &Hedge {
        self.lanes.hedge()
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

impl<S, C, R, Req> Service<Req> for HedgeService<S, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
    R: CloneRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C, R>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // The readied service makes the primary attempt (and is cloned for the hedges); the
        // clone left behind must be readied by our caller before the next call.
        let clone = self.inner.clone();
        let svc = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(
            svc,
            req,
            self.lanes.lanes.pick().clone(),
            self.classifier.clone(),
            self.clone_request.clone(),
        )
    }
}

impl<S: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for HedgeService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeService")
            .field("inner", &self.inner)
            .field("hedge", self.hedge())
            .field("classifier", &self.classifier)
            .field("clone_request", &self.clone_request)
            .finish()
    }
}
