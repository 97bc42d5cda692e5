use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::select::Fallback;
use crate::error::{BoxError, ErrorKind};

pin_project! {
    /// The response future of [`FallbackService`](super::FallbackService).
    ///
    /// Runs the inner call; on a selected error, readies the fallback service, then calls it
    /// with what was kept of the request and the error. It holds no permit, lock or shared
    /// count of its own: dropping it at any point leaves nothing behind (the inner and
    /// fallback futures it owns are dropped with it).
    pub struct ResponseFuture<Fut, F, K, FReq> where F: Service<FReq> {
        #[pin]
        state: State<Fut, F::Future, FReq>,
        kept: Option<K>,
        fallback: F,
        policy: Fallback,
        make: fn(K, BoxError) -> FReq,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut, FFut, FReq> {
        Inner { #[pin] future: Fut },
        /// A selected error (of `kind`) came back: waiting for the fallback service to be
        /// ready.
        Readying { request: Option<FReq>, kind: ErrorKind },
        Fallback { #[pin] future: FFut, kind: ErrorKind },
        Done,
    }
}

impl<Fut, F, K, FReq> ResponseFuture<Fut, F, K, FReq>
where
    F: Service<FReq>,
{
    pub(super) fn new(
        future: Fut,
        kept: Option<K>,
        fallback: F,
        policy: Fallback,
        make: fn(K, BoxError) -> FReq,
    ) -> Self {
        ResponseFuture {
            state: State::Inner { future },
            kept,
            fallback,
            policy,
            make,
        }
    }
}

impl<Fut, F, K, FReq, T, E> Future for ResponseFuture<Fut, F, K, FReq>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    F: Service<FReq, Response = T>,
    F::Error: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { future } => {
                    let error: BoxError = match ready!(future.poll(cx)) {
                        Ok(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Err(e) => e.into(),
                    };
                    // A request that could not be copied is not answered: the fallback
                    // was promised the request.
                    let policy = &*this.policy;
                    let selected = this
                        .kept
                        .take()
                        .and_then(|kept| Some((kept, policy.decide(&error)?)));
                    let Some((kept, kind)) = selected else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    };
                    let request = Some((this.make)(kept, error));
                    this.state.set(State::Readying { request, kind });
                }
                StateProj::Readying { request, kind } => {
                    let kind = *kind;
                    if let Err(e) = ready!(this.fallback.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(failed(this.policy, kind, e.into())));
                    }
                    let Some(request) = request.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(Box::new(PolledAfterCompletion)));
                    };
                    let future = this.fallback.call(request);
                    this.state.set(State::Fallback { future, kind });
                }
                StateProj::Fallback { future, kind } => {
                    let kind = *kind;
                    let result = ready!(future.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(result.map_err(|e| failed(this.policy, kind, e.into())));
                }
                StateProj::Done => {
                    return Poll::Ready(Err(Box::new(PolledAfterCompletion)));
                }
            }
        }
    }
}

impl<Fut, F, K, FReq> fmt::Debug for ResponseFuture<Fut, F, K, FReq>
where
    F: Service<FReq>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The fallback's own error, once the listeners have heard of it.
fn failed(policy: &Fallback, kind: ErrorKind, error: BoxError) -> BoxError {
    policy.failed(kind, &error);
    error
}

/// A response future polled again after it answered: a bug in the caller, reported as an
/// error rather than a panic.
#[derive(Debug)]
struct PolledAfterCompletion;

impl fmt::Display for PolledAfterCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fallback response future polled after it completed")
    }
}

impl Error for PolledAfterCompletion {}
