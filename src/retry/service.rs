use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::{CloneRequest, Policy, Retry};
use crate::classify::Classify;
use crate::error::BoxError;
use crate::sync::Lanes;

/// A policy and the lanes a service's calls hold it by (one per core, see [`Lanes`]): made
/// once by a [`RetryLayer`](super::RetryLayer) and shared, through one `Arc`, by the layer,
/// every service it builds and their clones.
pub(super) struct PolicyLanes {
    retry: Retry,
    lanes: Lanes<Policy>,
}

impl PolicyLanes {
    pub(super) fn new(retry: Retry) -> Arc<PolicyLanes> {
        let lanes = Lanes::new(&retry.policy);
        Arc::new(PolicyLanes { retry, lanes })
    }

    /// The policy the layer was made with.
    pub(super) fn retry(&self) -> &Retry {
        &self.retry
    }
}

/// A service whose calls are retried. Built by [`RetryLayer`](super::RetryLayer).
///
/// `poll_ready` forwards to the inner service. `call` hands the readied inner service to the
/// response future and keeps a fresh clone for the next call (the inner service must be
/// `Clone`); the future calls `poll_ready` on its service again before every retry, so each
/// attempt waits for fresh readiness (a concurrency-limit permit, a buffer slot). If that
/// `poll_ready` fails, its error is the call's answer (tower's convention: a service that is
/// not ready for good), in place of the failed attempt's.
///
/// The first attempt is sent with a copy of the request and the original is kept for the
/// retries; the last possible attempt sends the original, so with `max_retries(0)` nothing
/// is copied.
///
/// Clones share the policy (and its budget) and the lanes its calls hold it by: a clone is
/// a clone of the inner service, the classifier and the request copier, plus one reference
/// count, and allocates nothing of its own.
#[derive(Clone)]
pub struct RetryService<S, C, R> {
    inner: S,
    /// The policy, and the lanes this service's calls hold it by; shared by every clone.
    lanes: Arc<PolicyLanes>,
    classifier: C,
    clone_request: R,
}

impl<S, C, R> RetryService<S, C, R> {
    /// Wraps `inner`, retrying through `retry`. Allocates the handles the service's calls
    /// hold the policy by (one per core, rounded up to a power of two, at most 8, 256 bytes each; clones of the service share
    /// them), as [`RetryLayer::new`](super::RetryLayer::new) does once for every service it
    /// builds.
    pub fn new(inner: S, retry: Retry, classifier: C, clone_request: R) -> Self {
        Self::with_lanes(inner, PolicyLanes::new(retry), classifier, clone_request)
    }

    pub(super) const fn with_lanes(
        inner: S,
        lanes: Arc<PolicyLanes>,
        classifier: C,
        clone_request: R,
    ) -> Self {
        RetryService {
            inner,
            lanes,
            classifier,
            clone_request,
        }
    }

    /// The retry policy.
    pub fn retry(&self) -> &Retry {
        self.lanes.retry()
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

impl<S, C, R, Req> Service<Req> for RetryService<S, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    C: Classify<S::Response, S::Error> + Clone,
    R: CloneRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C, R, S::Future, S::Response>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // The readied service makes this call and the retries; the clone left behind must be
        // readied by our caller before the next call, as the Service contract requires.
        let clone = self.inner.clone();
        let svc = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(
            svc,
            req,
            // The lane of this thread, not the policy's own count: calls on other cores
            // write other cache lines.
            self.lanes.lanes.pick().clone(),
            self.classifier.clone(),
            self.clone_request.clone(),
        )
    }
}

impl<S: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for RetryService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryService")
            .field("inner", &self.inner)
            .field("retry", self.retry())
            .field("classifier", &self.classifier)
            .field("clone_request", &self.clone_request)
            .finish()
    }
}
