use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::error::RateLimited;
use super::limiter::Decision;
use crate::error::BoxError;

/// Checks the limit again after a wait (the limiter, the key, the deadline, captured).
pub(crate) type Recheck = Box<dyn Fn() -> Decision + Send + Sync>;

pin_project! {
    /// The response future of [`RateLimitService`](super::RateLimitService) and
    /// [`KeyedRateLimitService`](super::KeyedRateLimitService).
    ///
    /// An admitted call is the inner service's future and nothing more. A refused one is a
    /// ready [`RateLimited`] error. A call that waits for its slot holds, in one allocation,
    /// a tokio timer, the ready inner service and the request; when the timer fires it checks
    /// the limit again, and calls the inner service, waits again (within `max_wait`), or is
    /// refused. Dropping it while it waits takes no slot.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Called { #[pin] future: S::Future },
        Waiting { waiting: Pin<Box<Waiting<S, Req>>> },
        Refused { limited: RateLimited },
    }
}

pin_project! {
    struct Waiting<S, Req> {
        #[pin]
        sleep: Sleep,
        service: S,
        request: Option<Req>,
        recheck: Recheck,
        admitted: bool,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn called(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Called { future },
        }
    }

    pub(crate) fn refused(limited: RateLimited) -> Self {
        ResponseFuture {
            state: State::Refused { limited },
        }
    }

    /// A call that waits `wait` for its slot; refused at once where there is no tokio timer
    /// to wait on.
    pub(crate) fn waiting(service: S, request: Req, wait: Duration, recheck: Recheck) -> Self {
        let Some(sleep) = crate::clock::sleep_until(tokio::time::Instant::now() + wait) else {
            return Self::refused(RateLimited::new(wait));
        };
        ResponseFuture {
            state: State::Waiting {
                waiting: Box::pin(Waiting {
                    sleep,
                    service,
                    request: Some(request),
                    recheck,
                    admitted: false,
                }),
            },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let future = match this.state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Refused { limited } => return Poll::Ready(Err(Box::new(*limited))),
                StateProj::Waiting { waiting } => {
                    let w = waiting.as_mut().project();
                    if !*w.admitted {
                        let mut sleep = w.sleep;
                        ready!(sleep.as_mut().poll(cx));
                        match (w.recheck)() {
                            Decision::Admit => *w.admitted = true,
                            Decision::Wait { wait, .. } => {
                                sleep.reset(tokio::time::Instant::now() + wait);
                                continue;
                            }
                            Decision::Refuse(limited) => {
                                return Poll::Ready(Err(Box::new(limited)))
                            }
                        }
                    }
                    // The slot is ours: the service we took was ready; it is asked again,
                    // as tower wants, before the call.
                    ready!(w.service.poll_ready(cx)).map_err(Into::into)?;
                    let Some(request) = w.request.take() else {
                        return Poll::Ready(
                            Err("rate limit future polled after completion".into()),
                        );
                    };
                    w.service.call(request)
                }
            };
            this.state.set(State::Called { future });
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
