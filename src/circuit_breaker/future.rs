use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::admission::Permit;
use super::error::CircuitOpen;
use crate::classify::Classify;
use crate::error::BoxError;

pin_project! {
    /// The response future of [`CircuitBreakerService`](super::CircuitBreakerService).
    ///
    /// Holds the call's permit. Dropping the future before it completes (a cancellation, an
    /// outer timeout) drops the permit, which records nothing and frees a probe slot at once.
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F>,
        permit: Option<Permit>,
        classifier: C,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called { #[pin] future: F },
        Rejected { open: CircuitOpen },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, permit: Permit, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
            permit: Some(permit),
            classifier,
        }
    }

    pub(crate) fn rejected(open: CircuitOpen, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { open },
            permit: None,
            classifier,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { future } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = this.permit.take() {
                    // The classifier sees the inner service's concrete types, before boxing;
                    // a refusal from a layer inside (a full bulkhead) is not a failure.
                    permit.record(crate::classify::outcome_of(this.classifier, &result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { open } => Poll::Ready(Err(Box::new(*open))),
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}
