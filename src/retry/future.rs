use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::timeout::error::Elapsed;
use tower_service::Service;

use super::error::BudgetExhausted;
use super::policy::{self, CloneRequest, Decision, Retry, RetryEvent, RetryState};
use super::service::Fast;
use crate::classify::{Classify, Outcome};
use crate::error::BoxError;

pin_project! {
    /// The response future of [`RetryService`](super::RetryService).
    ///
    /// A state machine: `Called` (an attempt in flight, under the per-attempt timeout if
    /// any), `Waiting` (the backoff), `Readying` (`poll_ready` on the inner service before the
    /// next attempt). It holds an `Arc` of its policy, so it outlives its stack; what only a
    /// retry needs (the rng, the timer) is boxed once, at the first failure.
    pub struct ResponseFuture<S, Req, C, R>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        svc: S,
        // The copy kept for the next attempt; `None` once no retry is possible.
        request: Option<Req>,
        classifier: C,
        clone_request: R,
        // In the policy clock's nanoseconds; `NO_DEADLINE` when none.
        deadline: u64,
        // The policy, kept alive by the call: a call outlives its stack (`oneshot`, a
        // reload) and still retries, deposits and runs its hooks. A success is deposited
        // into its budget when it happens, never before, so calls still in flight cannot pay
        // for retries.
        policy: Arc<policy::Shared>,
        retry: RetrySlot,
    }
}

/// What only a retrying call needs, boxed; `None` on the success path. Its `Drop` keeps the
/// success path's check inline and the box's drop out of line.
struct RetrySlot(Option<Pin<Box<Retrying>>>);

impl Drop for RetrySlot {
    #[inline]
    fn drop(&mut self) {
        if let Some(retrying) = self.0.take() {
            drop_retrying(retrying);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_retrying(retrying: Pin<Box<Retrying>>) {
    drop(retrying);
}

const NO_DEADLINE: u64 = u64::MAX;

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
    // What a call needs once it retries (or times its attempts): allocated once per call,
    // reused by every attempt. One timer serves the per-attempt timeout and the backoff,
    // which never overlap.
    struct Retrying {
        state: RetryState,
        // The attempt in flight or last made, from 1.
        attempt: u32,
        #[pin]
        timer: Sleep,
        timer_armed: bool,
    }
}

impl Retrying {
    #[cold]
    #[inline(never)]
    fn with(shared: Arc<policy::Shared>) -> Pin<Box<Retrying>> {
        let state = RetryState::new(shared);
        Box::pin(Retrying {
            state,
            attempt: 1,
            timer: tokio::time::sleep_until(Instant::now()),
            timer_armed: false,
        })
    }

    fn arm(self: Pin<&mut Self>, after: Duration) {
        let this = self.project();
        // Saturate like tokio's own `sleep`: a huge delay (`Duration::MAX` for "none") must
        // not overflow the instant and panic.
        let now = Instant::now();
        let far_future = Duration::from_secs(86_400 * 365 * 30);
        this.timer.reset(
            now.checked_add(after.min(far_future))
                .unwrap_or(now + far_future),
        );
        *this.timer_armed = true;
    }
}

impl<S, Req, C, R> ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
    R: CloneRequest<Req>,
{
    #[inline]
    pub(crate) fn new(
        mut svc: S,
        req: Req,
        retry: &Retry,
        fast: &Fast,
        classifier: C,
        clone_request: R,
    ) -> Self {
        let (first, kept) = if fast.copy_request {
            match clone_request.clone_request(&req) {
                Some(copy) => (copy, Some(req)),
                None => (req, None), // cannot be copied: sent once
            }
        } else {
            (req, None) // no retries: nothing to keep
        };
        // With a per-attempt timeout the timer is needed from the first poll: build the retry
        // state now, while the policy is at hand (a future that outlives every handle of its
        // policy must still time its attempts). The call allocates its timer anyway.
        let retrying = if fast.has_attempt_timeout {
            Some(Retrying::with(Arc::clone(&retry.shared)))
        } else {
            None
        };
        let future = svc.call(first);
        ResponseFuture {
            state: State::Called { future },
            svc,
            request: kept,
            classifier,
            clone_request,
            deadline: if fast.has_deadline {
                retry.deadline_from_now()
            } else {
                NO_DEADLINE
            },
            policy: Arc::clone(&retry.shared),
            retry: RetrySlot(retrying),
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

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The fast path, inlined: a first attempt without a timer that succeeds: deposit the
        // success and return.
        let this = self.as_mut().project();
        // (With a per-attempt timeout the retry state exists from `call`, so this is also
        // "no timer to arm".)
        let first = if this.retry.0.is_none() {
            match this.state.project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx));
                    if this.classifier.classify(&result) == Outcome::Success {
                        if let Some(budget) = &this.policy.budget {
                            budget.deposit();
                        }
                        self.project().state.set(State::Done);
                        return Poll::Ready(result.map_err(Into::into));
                    }
                    Some(result)
                }
                _ => None,
            }
        } else {
            None
        };
        self.poll_slow(cx, first)
    }
}

impl<S, Req, C, R> ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
{
    /// Everything but the fast path: timers, failures, backoff, readiness. `first` is the
    /// result of an attempt the fast path already polled to completion.
    #[inline(never)]
    fn poll_slow(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut first: Option<Result<S::Response, S::Error>>,
    ) -> Poll<Result<S::Response, BoxError>> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    if let Some(r) = this.retry.0.as_mut() {
                        if let (false, Some(t)) = (r.timer_armed, r.state.shared.attempt_timeout) {
                            r.as_mut().arm(t);
                        }
                    }
                    let polled = match first.take() {
                        Some(r) => Poll::Ready(r),
                        None => future.poll(cx),
                    };
                    let result = match polled {
                        Poll::Ready(r) => Some(r),
                        Poll::Pending => match this.retry.0.as_mut() {
                            Some(r) if r.timer_armed => {
                                ready!(r.as_mut().project().timer.poll(cx));
                                None // the attempt timed out
                            }
                            _ => return Poll::Pending,
                        },
                    };
                    if let Some(r) = this.retry.0.as_mut() {
                        *r.as_mut().project().timer_armed = false;
                    }
                    let outcome = match &result {
                        Some(r) => this.classifier.classify(r),
                        None => Outcome::Failure,
                    };
                    // A success is deposited when it happens: one per call, whatever the attempt.
                    if outcome == Outcome::Success {
                        if let Some(budget) = &this.policy.budget {
                            budget.deposit();
                        }
                    }
                    if outcome != Outcome::Failure || this.request.is_none() {
                        this.state.set(State::Done);
                        return Poll::Ready(finish(result, false));
                    }
                    let hint = result.as_ref().and_then(|r| this.classifier.retry_after(r));
                    let retrying = this
                        .retry
                        .0
                        .get_or_insert_with(|| Retrying::with(Arc::clone(this.policy)));
                    let deadline = Some(*this.deadline).filter(|d| *d != NO_DEADLINE);
                    let attempt = retrying.attempt;
                    let decision = retrying
                        .as_mut()
                        .project()
                        .state
                        .decide(attempt, hint, deadline);
                    match decision {
                        Decision::Stop => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, false));
                        }
                        Decision::Refused => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, true));
                        }
                        Decision::Retry(delay, retry_after) => {
                            let st = &retrying.state;
                            if st.shared.on_retry.is_some() || cfg!(feature = "tracing") {
                                let error: Option<BoxError> = match result {
                                    Some(Err(e)) => Some(e.into()),
                                    Some(Ok(_)) => None,
                                    None => Some(Box::new(Elapsed::new())),
                                };
                                st.notify(&RetryEvent {
                                    attempt,
                                    delay,
                                    retry_after,
                                    error: error.as_deref().map(|e| e as &(dyn Error + 'static)),
                                });
                            }
                            if delay.is_zero() {
                                this.state.set(State::Readying);
                            } else {
                                retrying.as_mut().arm(delay);
                                this.state.set(State::Waiting);
                            }
                        }
                    }
                }
                StateProj::Waiting => {
                    if let Some(r) = this.retry.0.as_mut() {
                        ready!(r.as_mut().project().timer.poll(cx));
                        *r.as_mut().project().timer_armed = false;
                    }
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    // Fresh readiness for every attempt: the permit or slot of the previous
                    // one was consumed by its call.
                    if let Err(e) = ready!(this.svc.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(e.into()));
                    }
                    let (attempt, max_retries) = match this.retry.0.as_mut() {
                        Some(r) => {
                            let r = r.as_mut().project();
                            *r.attempt = r.attempt.saturating_add(1);
                            (*r.attempt, r.state.shared.max_retries)
                        }
                        None => (u32::MAX, 0), // unreachable: a retry has its state
                    };
                    let req = if attempt > max_retries {
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
            .field("attempt", &self.retry.0.as_ref().map_or(1, |r| r.attempt))
            .finish_non_exhaustive()
    }
}
