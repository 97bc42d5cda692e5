use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::error::Throttled;
use super::ledger::{verdict, Permit};
use crate::classify::Classify;
use crate::error::BoxError;

pin_project! {
    /// The response future of [`ThrottleService`](super::ThrottleService).
    ///
    /// Holds the call's permit and counts the backend's verdict when the inner response is
    /// ready (nothing for one of seawall's refusals from further in: the backend was not
    /// asked). Dropping the future before that (a cancellation, an outer timeout) drops the
    /// permit, which counts nothing.
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
        Rejected { throttled: Throttled },
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

    pub(crate) fn rejected(throttled: Throttled, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { throttled },
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
                    // The classifier sees the inner service's concrete types, before boxing.
                    if let Some(outcome) = verdict(this.classifier, &result) {
                        permit.record(outcome);
                    }
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { throttled } => Poll::Ready(Err(Box::new(*throttled))),
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}
