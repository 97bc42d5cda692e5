//! The response future of [`HedgeService`](super::HedgeService): the attempts of one call
//! (`attempts.rs`), answered the layer's way, with a `BoxError`.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::attempts::{Attempts, Cloned};
use super::policy::Policy;
use crate::classify::Classify;
use crate::error::BoxError;
use crate::retry::CloneRequest;
use crate::sync::{Arc, Lane};

pin_project! {
    /// The response future of [`HedgeService`](super::HedgeService).
    ///
    /// Holds the primary attempt inline; what only a slow call needs (the timer, the hedges
    /// in flight) is boxed once, when the primary does not answer at its first poll, and each
    /// hedge's future is boxed when it is made. Dropping it drops every attempt. It holds a
    /// reference to its policy (through the lane of the thread that made the call), so it
    /// outlives its stack. Polled again after it completed, it stays pending.
    pub struct ResponseFuture<S, Req, C, R>
    where
        S: Service<Req>,
        S: Clone,
    {
        #[pin]
        attempts: Attempts<HeldPolicy, Cloned<S>, Req, C, R>,
    }
}

impl<S, Req, C, R> ResponseFuture<S, Req, C, R>
where
    S: Service<Req> + Clone,
    R: CloneRequest<Req>,
{
    /// Makes the primary attempt with `svc`, readied by the caller. An idempotent request is
    /// copied for it and the original kept for the hedges; any other is sent as it is, and
    /// never hedged.
    #[inline]
    pub(crate) fn new(
        mut svc: S,
        req: Req,
        policy: Arc<Lane<Policy>>,
        classifier: C,
        clone_request: R,
    ) -> Self {
        let (send, kept) = if clone_request.is_idempotent(&req) {
            match clone_request.clone_request(&req) {
                Some(copy) => (copy, Some(req)),
                None => (req, None),
            }
        } else {
            (req, None)
        };
        let start = policy.now();
        let primary = svc.call(send);
        ResponseFuture {
            attempts: Attempts::new(
                primary,
                kept,
                start,
                Cloned(svc),
                HeldPolicy(policy),
                classifier,
                clone_request,
            ),
        }
    }
}

/// The policy as a call holds it: one reference, counted on the lane of the thread that made
/// the call (see `crate::sync::Lanes`).
pub(crate) struct HeldPolicy(Arc<Lane<Policy>>);

impl Deref for HeldPolicy {
    type Target = Policy;

    #[inline(always)]
    fn deref(&self) -> &Policy {
        &self.0
    }
}

impl<S, Req, C, R> Future for ResponseFuture<S, Req, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(ready!(self.project().attempts.poll(cx)).map_err(Into::into))
    }
}

impl<S, Req, C, R> fmt::Debug for ResponseFuture<S, Req, C, R>
where
    S: Service<Req> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("hedges", &self.attempts.hedges())
            .finish_non_exhaustive()
    }
}
