use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::error::BulkheadFull;
use super::slots::{Permit, Wait};
use crate::error::BoxError;

pin_project! {
    /// The response future of [`BulkheadService`](super::BulkheadService).
    ///
    /// Holds the call's slot (its [`Permit`]) from the moment it is taken until the inner
    /// response is ready, or until the future is dropped, whichever comes first: a
    /// cancelled call (an outer timeout, a dropped request) frees its slot at once, at any
    /// point. A future waiting for a slot that is dropped leaves the queue and takes none.
    pub struct ResponseFuture<F, S, Req> {
        #[pin]
        state: State<F, S, Req>,
        permit: Option<Permit>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req> {
        Called { #[pin] future: F },
        // The readied service and the request, boxed with the wait (which allocates anyway)
        // so that a large request does not make every call's future larger.
        Waiting { wait: Wait, call: Option<Box<(S, Req)>> },
        Rejected { full: BulkheadFull },
    }
}

impl<F, S, Req> ResponseFuture<F, S, Req> {
    pub(crate) fn called(future: F, permit: Permit) -> Self {
        ResponseFuture {
            state: State::Called { future },
            permit: Some(permit),
        }
    }

    pub(crate) fn rejected(full: BulkheadFull) -> Self {
        ResponseFuture {
            state: State::Rejected { full },
            permit: None,
        }
    }

    pub(crate) fn waiting(wait: Wait, svc: S, req: Req) -> Self {
        ResponseFuture {
            state: State::Waiting {
                wait,
                call: Some(Box::new((svc, req))),
            },
            permit: None,
        }
    }
}

impl<F, S, Req, T, E> Future for ResponseFuture<F, S, Req>
where
    S: Service<Req, Future = F, Response = T, Error = E>,
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx));
                    // The slot is free as soon as the answer is, not when the future goes.
                    this.permit.take();
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Rejected { full } => return Poll::Ready(Err(Box::new(*full))),
                StateProj::Waiting { wait, call } => {
                    let admitted = ready!(Pin::new(wait).poll(cx));
                    let next = match admitted {
                        Ok(permit) => match call.take() {
                            Some(call) => {
                                let (mut svc, req) = *call;
                                *this.permit = Some(permit);
                                State::Called {
                                    future: svc.call(req),
                                }
                            }
                            // Only after the call was made; `Called` replaced this state
                            // then, so this is not reached.
                            None => return Poll::Pending,
                        },
                        Err(full) => State::Rejected { full },
                    };
                    this.state.set(next);
                }
            }
        }
    }
}

impl<F, S, Req> fmt::Debug for ResponseFuture<F, S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("permit", &self.permit)
            .finish()
    }
}
