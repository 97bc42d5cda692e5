use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::timeout::error::Elapsed;
use tower_service::Service;

use super::error::BudgetExhausted;
use super::policy::{self, CloneRequest, Decision, Retry, RetryEvent, RetryState};
use crate::classify::{Classify, Outcome};
use crate::error::BoxError;

pin_project! {
    /// The response future of [`RetryService`](super::RetryService).
    ///
    /// A state machine: `Called` (an attempt in flight, under the per-attempt timeout if
    /// any), `Waiting` (the backoff), `Readying` (`poll_ready` on the inner service before the
    /// next attempt). On the success path it holds no reference-counted handle: it finds its
    /// policy through its id only when it must (see the module docs on cost).
    pub struct ResponseFuture<S, Req, C, R>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        #[pin]
        timer: Timer,
        svc: S,
        // The copy kept for the next attempt; `None` once no retry is possible.
        request: Option<Req>,
        classifier: C,
        clone_request: R,
        policy: u64,
        attempt: u32,
        max_retries: u32,
        has_budget: bool,
        attempt_timeout: Option<Duration>,
        deadline: Option<u64>,
        retry: Option<RetryState>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Waiting,
        Readying,
        Done,
    }
}

pin_project! {
    // One timer serves the per-attempt timeout and the backoff, which never overlap. Created
    // on first use, inside the runtime, so `call` works outside one.
    #[project = TimerProj]
    enum Timer {
        Off,
        On { #[pin] sleep: Sleep },
    }
}

impl<S, Req, C, R> ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
    R: CloneRequest<Req>,
{
    pub(crate) fn new(
        mut svc: S,
        req: Req,
        retry: &Retry,
        classifier: C,
        clone_request: R,
    ) -> Self {
        let shared = &*retry.shared;
        let (first, kept) = if shared.max_retries == 0 {
            (req, None)
        } else {
            match clone_request.clone_request(&req) {
                Some(copy) => (copy, Some(req)),
                None => (req, None), // cannot be copied: sent once
            }
        };
        let future = svc.call(first);
        ResponseFuture {
            state: State::Called { future },
            timer: Timer::Off,
            svc,
            request: kept,
            classifier,
            clone_request,
            policy: retry.id(),
            attempt: 1,
            max_retries: shared.max_retries,
            has_budget: shared.budget.is_some(),
            attempt_timeout: shared.attempt_timeout,
            deadline: retry.deadline_from_now(),
            retry: None,
        }
    }
}

impl<S, Req, C, R> Future for ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    if let (Some(t), TimerProj::Off) =
                        (*this.attempt_timeout, this.timer.as_mut().project())
                    {
                        this.timer.set(Timer::On {
                            sleep: tokio::time::sleep(t),
                        });
                    }
                    let result = match future.poll(cx) {
                        Poll::Ready(r) => Some(r),
                        Poll::Pending => match this.timer.as_mut().project() {
                            TimerProj::On { sleep } => {
                                ready!(sleep.poll(cx));
                                None // the attempt timed out
                            }
                            TimerProj::Off => return Poll::Pending,
                        },
                    };
                    if this.attempt_timeout.is_some() {
                        this.timer.set(Timer::Off);
                    }
                    let outcome = match &result {
                        Some(r) => this.classifier.classify(r),
                        None => Outcome::Failure,
                    };
                    if outcome != Outcome::Failure {
                        if outcome == Outcome::Success && *this.has_budget {
                            policy::deposit(*this.policy);
                        }
                        this.state.set(State::Done);
                        return Poll::Ready(finish(result, false));
                    }
                    if this.request.is_none() {
                        this.state.set(State::Done);
                        return Poll::Ready(finish(result, false));
                    }
                    let hint = result.as_ref().and_then(|r| this.classifier.retry_after(r));
                    if this.retry.is_none() {
                        *this.retry = policy::with_policy(*this.policy, |s| {
                            RetryState::new(std::sync::Arc::clone(s))
                        });
                    }
                    let Some(st) = this.retry.as_mut() else {
                        // The policy is gone (every handle dropped): no retry.
                        this.state.set(State::Done);
                        return Poll::Ready(finish(result, false));
                    };
                    match st.decide(*this.attempt, hint, *this.deadline) {
                        Decision::Stop => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, false));
                        }
                        Decision::Refused => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, true));
                        }
                        Decision::Retry(delay, retry_after) => {
                            if st.shared.on_retry.is_some() || cfg!(feature = "tracing") {
                                let error: Option<BoxError> = match result {
                                    Some(Err(e)) => Some(e.into()),
                                    Some(Ok(_)) => None,
                                    None => Some(Box::new(Elapsed::new())),
                                };
                                let error = error.as_deref().map(|e| e as &(dyn Error + 'static));
                                st.notify(&RetryEvent {
                                    attempt: *this.attempt,
                                    delay,
                                    retry_after,
                                    error,
                                });
                            }
                            if delay.is_zero() {
                                this.state.set(State::Readying);
                            } else {
                                this.timer.set(Timer::On {
                                    sleep: tokio::time::sleep(delay),
                                });
                                this.state.set(State::Waiting);
                            }
                        }
                    }
                }
                StateProj::Waiting => {
                    if let TimerProj::On { sleep } = this.timer.as_mut().project() {
                        ready!(sleep.poll(cx));
                    }
                    this.timer.set(Timer::Off);
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    // Fresh readiness for every attempt: the permit or slot of the previous
                    // one was consumed by its call.
                    if let Err(e) = ready!(this.svc.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(e.into()));
                    }
                    *this.attempt = this.attempt.saturating_add(1);
                    let req = if *this.attempt > *this.max_retries {
                        this.request.take() // the last attempt: send the original
                    } else {
                        match this
                            .request
                            .as_ref()
                            .and_then(|r| this.clone_request.clone_request(r))
                        {
                            Some(copy) => Some(copy),
                            None => this.request.take(),
                        }
                    };
                    let Some(req) = req else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err("retry: no request left to send".into()));
                    };
                    let future = this.svc.call(req);
                    this.state.set(State::Called { future });
                }
                StateProj::Done => {
                    return Poll::Ready(
                        Err("retry response future polled after completion".into()),
                    );
                }
            }
        }
    }
}

/// The call's final result: `None` is an attempt that timed out.
fn finish<T, E: Into<BoxError>>(
    result: Option<Result<T, E>>,
    refused: bool,
) -> Result<T, BoxError> {
    match result {
        // A retryable response the budget refused to retry is still the answer.
        Some(Ok(response)) => Ok(response),
        Some(Err(e)) if refused => Err(Box::new(BudgetExhausted::new(e))),
        Some(Err(e)) => Err(e.into()),
        None if refused => Err(Box::new(BudgetExhausted::new(Elapsed::new()))),
        None => Err(Box::new(Elapsed::new())),
    }
}

impl<S, Req, C, R> fmt::Debug for ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}
