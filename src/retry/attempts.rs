//! The attempts of one call, as an explicit state machine (`Called`, `Waiting`, `Readying`),
//! shared by the tower [`ResponseFuture`](super::ResponseFuture) and the bare
//! [`Retry::call`](super::Retry::call). The decisions come from [`attempt`](super::attempt);
//! the machine only waits, readies and calls. It ends with what the call ended with
//! ([`Finished`]), which each caller turns into its own answer: the layer a `BoxError`
//! (`future.rs`), the bare call a `RetryError<E>` (`policy.rs`).

use std::error::Error;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::timeout::error::Elapsed;
use tower_service::Service;

use super::attempt::{self, Decision, Schedule};
use super::observe::{
    AttemptEvent, CallOutcome, CallSpan, Event, FinishedEvent, GiveUpEvent, GiveUpReason,
    RetryEvent, RetryReason,
};
use super::policy::{CloneRequest, LongRetryAfter, Policy};
use crate::classify::{Classify, Outcome};
use crate::error::BoxError;

const NO_DEADLINE: u64 = u64::MAX;
/// `started` of a call that is not timed (its policy has no listener).
const NOT_TIMED: u64 = u64::MAX;

// ===== what a call ends with =====

/// How a failed attempt's error is kept while the call waits for another: the layer boxes it
/// (it returns a `BoxError` anyway, and can show it to listeners while keeping it), the bare
/// call keeps its own type (it returns `RetryError<E>`). A plain type parameter of the
/// future, not an associated type: rustc then proves the layer's future `Send` without a
/// higher-ranked `From` bound (see the README's known limits).
pub(crate) trait Keep<E>: Sized {
    fn keep(e: E) -> Self;
    /// The kept error as `dyn Error`, for listeners, if it can be shown as one.
    fn show(&self) -> Option<&(dyn Error + 'static)>;
}

/// The layer's way: box every error.
impl<E: Into<BoxError>> Keep<E> for BoxError {
    #[inline]
    fn keep(e: E) -> BoxError {
        e.into()
    }
    fn show(&self) -> Option<&(dyn Error + 'static)> {
        Some(&**self)
    }
}

/// The bare call's way: keep the closure's own error type.
pub(crate) struct Typed<E>(pub(crate) E);

impl<E: 'static> Keep<E> for Typed<E> {
    #[inline]
    fn keep(e: E) -> Self {
        Typed(e)
    }
    fn show(&self) -> Option<&(dyn Error + 'static)> {
        // A generic `E` cannot be shown as `dyn Error` (no specialisation); a `BoxError` can.
        (&self.0 as &dyn std::any::Any)
            .downcast_ref::<BoxError>()
            .map(|b| &**b as &(dyn Error + 'static))
    }
}

/// The last attempt.
pub(crate) enum Last<T, K> {
    Response(T),
    Error(K),
    TimedOut,
    /// No attempt could be made (a per-attempt timeout with no timer).
    NotMade,
    /// A response that was to be retried, released when the retry was decided: an HTTP
    /// response holds its body and connection, which must not wait out the backoff (or the
    /// server's `Retry-After`) with the call. If the retry then cannot start (the deadline
    /// comes first), the call ends as timed out.
    Released,
}

/// Why the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A success, a final result, or a give-up that returns the last result as it is.
    AsIs,
    BudgetExhausted,
    NoTimer,
    /// The server asked for a longer wait than the policy allows.
    RetryAfterTooLong {
        retry_after: Duration,
        allowed: Duration,
    },
    /// The request could not be copied for a retry.
    NotCopied,
}

pub(crate) struct Finished<T, K> {
    pub(crate) last: Last<T, K>,
    pub(crate) ending: Ending,
}

/// What the slow path ends with: the answer, and, for listeners, how the call ended after
/// how many attempts (kept out of [`Finished`], which the success path returns: a smaller
/// answer is fewer instructions per call).
struct Ended<T, K> {
    finished: Finished<T, K>,
    outcome: CallOutcome,
    attempts: u32,
}

// ===== the state machine =====

pin_project! {
    /// The attempts of one call. `P` reaches the policy (the layer's calls own a reference to
    /// it, through their thread's lane, so they outlive their stack; the bare call borrows
    /// it).
    #[project = AttemptsProj]
    pub(crate) struct Attempts<P, S, Req, C, R, K, F, T> {
        #[pin]
        state: State<F>,
        svc: S,
        // The original, kept to copy for the next attempts; `None` once no retry is possible
        // (why: `no_copy`).
        request: Option<Req>,
        // The copy the next attempt sends, made when the retry is decided.
        next: Option<Req>,
        no_copy: GiveUpReason,
        // Whether the request may be sent twice; if not, only a failure that proves it was
        // never sent is retried.
        idempotent: bool,
        classifier: C,
        clone_request: R,
        // In the policy clock's nanoseconds; `NO_DEADLINE` when none.
        deadline: u64,
        policy: P,
        retry: RetrySlot<T, K>,
        // When the call started, in the policy clock's nanoseconds, if it is timed for the
        // listeners; `NOT_TIMED` if not.
        started: u64,
        span: CallSpan,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Waiting,
        Readying,
        // Ended; polled again, the call stays pending (like `futures`' `Fuse`) rather than
        // make up an answer or panic.
        Done,
    }
}

/// What only a retrying (or timed) call needs, boxed once; `None` on the success path. Its
/// `Drop` keeps the success path's check inline and the box's drop out of line.
struct RetrySlot<T, K>(Option<Pin<Box<Retrying<T, K>>>>);

impl<T, K> RetrySlot<T, K> {
    /// The attempt in flight or last made, from 1 (a call that never failed has no state).
    fn attempt(&self) -> u32 {
        self.0.as_ref().map_or(1, |r| r.attempt)
    }
}

impl<T, K> Drop for RetrySlot<T, K> {
    #[inline]
    fn drop(&mut self) {
        if let Some(retrying) = self.0.take() {
            drop_retrying(retrying);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_retrying<T, K>(retrying: Pin<Box<Retrying<T, K>>>) {
    drop(retrying);
}

/// What the timer is set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Armed {
    Nothing,
    AttemptTimeout,
    Backoff,
    Deadline,
}

pin_project! {
    // One timer serves the per-attempt timeout, the backoff and the deadline, which never
    // overlap. It is made at the first wait, never before: a call that needs no wait needs no
    // timer (and so runs without a tokio runtime).
    struct Retrying<T, K> {
        schedule: Option<Schedule>,
        // The attempt in flight or last made, from 1.
        attempt: u32,
        // When the attempt in flight started (policy clock nanoseconds), if the call is timed.
        attempt_started: u64,
        // The last attempt's result, while waiting for the backoff and readiness: it is the
        // answer if no further attempt can start.
        last: Option<Last<T, K>>,
        #[pin]
        timer: Timer,
        armed: Armed,
    }
}

pin_project! {
    #[project = TimerProj]
    enum Timer {
        Off,
        On { #[pin] sleep: Sleep },
    }
}

impl<T, K> Retrying<T, K> {
    #[cold]
    #[inline(never)]
    fn boxed() -> Pin<Box<Self>> {
        Box::pin(Retrying {
            schedule: None,
            attempt: 1,
            attempt_started: NOT_TIMED,
            last: None,
            timer: Timer::Off,
            armed: Armed::Nothing,
        })
    }

    /// Sets the timer to fire after `after`; `false` if there is no timer to set.
    fn arm(self: Pin<&mut Self>, after: Duration, what: Armed) -> bool {
        let mut this = self.project();
        // Saturate like tokio's own `sleep`: a huge delay must not overflow the instant.
        let now = Instant::now();
        let far_future = Duration::from_secs(86_400 * 365 * 30);
        let at = now
            .checked_add(after.min(far_future))
            .unwrap_or(now + far_future);
        match this.timer.as_mut().project() {
            TimerProj::On { sleep } => sleep.reset(at),
            TimerProj::Off => match crate::clock::sleep_until(at) {
                Some(sleep) => this.timer.set(Timer::On { sleep }),
                None => return false,
            },
        }
        *this.armed = what;
        true
    }

    /// Polls the armed timer (pending if none is armed).
    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match this.timer.project() {
            TimerProj::On { sleep } if *this.armed != Armed::Nothing => {
                ready!(sleep.poll(cx));
                *this.armed = Armed::Nothing;
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }
}

impl<P, S, Req, C, R, K, F, T> Attempts<P, S, Req, C, R, K, F, T>
where
    P: Deref<Target = Policy>,
    S: Service<Req, Future = F, Response = T>,
    R: CloneRequest<Req>,
    K: Keep<S::Error>,
{
    #[inline]
    pub(crate) fn new(mut svc: S, req: Req, policy: P, classifier: C, clone_request: R) -> Self {
        let idempotent = policy.max_retries == 0 || clone_request.is_idempotent(&req);
        let (first, kept, no_copy) = if policy.max_retries == 0 {
            (req, None, GiveUpReason::RetriesUsedUp) // no retries: nothing to keep
        } else {
            // A request that must not be sent twice is copied too: it is sent again only if
            // its failure proves it never left (a refused connection).
            match clone_request.clone_request(&req) {
                Some(copy) => (copy, Some(req), GiveUpReason::RequestNotCopied),
                None => (req, None, GiveUpReason::RequestNotCopied), // sent once
            }
        };
        let deadline = if policy.deadline.is_some() {
            policy.deadline_from_now()
        } else {
            NO_DEADLINE
        };
        let started = if policy.observers.timed() {
            policy.clock.now_nanos().min(NOT_TIMED - 1)
        } else {
            NOT_TIMED
        };
        // A timed attempt needs its timer from the first poll: made then (see `poll_slow`).
        let retry = RetrySlot(policy.attempt_timeout.map(|_| Retrying::boxed()));
        let span = CallSpan::new(&policy.observers);
        let future = span.in_scope(|| svc.call(first));
        Attempts {
            state: State::Called { future },
            svc,
            request: kept,
            next: None,
            no_copy,
            idempotent,
            classifier,
            clone_request,
            deadline,
            policy,
            retry,
            started,
            span,
        }
    }
}

impl<P, S, Req, C, R, K, F, T> Attempts<P, S, Req, C, R, K, F, T>
where
    S: Service<Req, Future = F, Response = T>,
{
    /// The attempt in flight or last made, from 1.
    pub(crate) fn attempt(&self) -> u32 {
        self.retry.attempt()
    }
}

impl<P, S, Req, C, R, K, F, T> Future for Attempts<P, S, Req, C, R, K, F, T>
where
    P: Deref<Target = Policy>,
    S: Service<Req, Future = F, Response = T>,
    F: Future<Output = Result<T, S::Error>>,
    S::Error: 'static,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
    K: Keep<S::Error>,
{
    type Output = Finished<S::Response, K>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        #[cfg(feature = "tracing")]
        {
            let span = self.span.entered_by_poll();
            span.in_scope(|| self.poll_in_span(cx))
        }
        #[cfg(not(feature = "tracing"))]
        self.poll_in_span(cx)
    }
}

impl<P, S, Req, C, R, K, F, T> Attempts<P, S, Req, C, R, K, F, T>
where
    P: Deref<Target = Policy>,
    S: Service<Req, Future = F, Response = T>,
    F: Future<Output = Result<T, S::Error>>,
    S::Error: 'static,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
    K: Keep<S::Error>,
{
    #[inline(always)]
    fn poll_in_span(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished<T, K>> {
        // The success path, inlined: a first attempt without a timer whose response the
        // classifier calls a success: deposit it and return. Errors take the slow path (a
        // refusal is judged before any classifier).
        let this = self.as_mut().project();
        let first = match (this.retry.0.is_none(), this.state.project()) {
            (true, StateProj::Called { future }) => {
                let result = ready!(future.poll(cx));
                // Only a response is classified here: an error may be a refusal, which is
                // judged before any classifier (in the slow path).
                let outcome = result
                    .as_ref()
                    .ok()
                    .map(|_| this.classifier.classify(&result));
                match (outcome, result) {
                    (Some(Outcome::Success), Ok(response)) => {
                        if let Some(budget) = &this.policy.budget {
                            budget.deposit();
                        }
                        if *this.started != NOT_TIMED {
                            report_first_success(this.policy, *this.started);
                        }
                        this.span.finished(1);
                        self.project().state.set(State::Done);
                        return Poll::Ready(Finished {
                            last: Last::Response(response),
                            ending: Ending::AsIs,
                        });
                    }
                    (outcome, result) => Some((result, outcome)),
                }
            }
            _ => None,
        };
        let ended = ready!(self.as_mut().poll_slow(cx, first));
        let this = self.project();
        if *this.started != NOT_TIMED {
            report_finished(this.policy, *this.started, &ended);
        }
        this.span.finished(ended.attempts);
        Poll::Ready(ended.finished)
    }
}

/// The events of a call that succeeded at its first attempt: one clock read for both.
#[cold]
#[inline(never)]
fn report_first_success(policy: &Policy, started: u64) {
    let duration = Duration::from_nanos(policy.clock.now_nanos().saturating_sub(started));
    policy.observers.emit(&Event::Attempt(AttemptEvent {
        attempt: 1,
        duration,
        outcome: Outcome::Success,
        timed_out: false,
    }));
    emit_finished(policy, duration, 1, CallOutcome::Success);
}

/// The [`Event::Finished`] of a timed call.
#[cold]
#[inline(never)]
fn report_finished<T, K>(policy: &Policy, started: u64, ended: &Ended<T, K>) {
    let duration = Duration::from_nanos(policy.clock.now_nanos().saturating_sub(started));
    emit_finished(policy, duration, ended.attempts, ended.outcome);
}

fn emit_finished(policy: &Policy, duration: Duration, attempts: u32, outcome: CallOutcome) {
    policy.observers.emit(&Event::Finished(FinishedEvent {
        attempts,
        outcome,
        duration,
        budget: policy.budget.as_ref(),
    }));
}

/// The [`Event::Attempt`] of a timed call's attempt that just ended.
#[cold]
#[inline(never)]
fn report_attempt(policy: &Policy, attempt: u32, started: u64, outcome: Outcome, timed_out: bool) {
    let duration = Duration::from_nanos(policy.clock.now_nanos().saturating_sub(started));
    policy.observers.emit(&Event::Attempt(AttemptEvent {
        attempt,
        duration,
        outcome,
        timed_out,
    }));
}

/// An attempt's result as the success path hands it on: with what the classifier said of it,
/// if it was asked.
type Polled<T, E> = (Result<T, E>, Option<Outcome>);

impl<P, S, Req, C, R, K, F, T> Attempts<P, S, Req, C, R, K, F, T>
where
    P: Deref<Target = Policy>,
    S: Service<Req, Future = F, Response = T>,
    F: Future<Output = Result<T, S::Error>>,
    S::Error: 'static,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
    K: Keep<S::Error>,
{
    /// Everything but the success path: timers, failures, backoff, readiness. `first` is the
    /// result of an attempt the success path already polled to completion, with what the
    /// classifier said of it if it was asked.
    #[inline(never)]
    fn poll_slow(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut first: Option<Polled<S::Response, S::Error>>,
    ) -> Poll<Ended<S::Response, K>> {
        let mut this = self.project();
        loop {
            let policy: &Policy = this.policy;
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    if let (Some(r), Some(t)) = (this.retry.0.as_mut(), policy.attempt_timeout) {
                        if r.armed != Armed::AttemptTimeout
                            && !r.as_mut().arm(t, Armed::AttemptTimeout)
                        {
                            // No timer to time the attempt: it is not made (its future is
                            // dropped unpolled).
                            return Poll::Ready(this.give_up_waiting(GiveUpReason::NoTimer));
                        }
                    }
                    let polled = match first.take() {
                        Some(done) => Poll::Ready(done),
                        None => future.poll(cx).map(|result| (result, None)),
                    };
                    let (last, verdict) = match polled {
                        Poll::Ready((result, classified)) => {
                            let verdict = attempt::judge(
                                this.classifier,
                                &result,
                                policy.retry_refusals,
                                classified,
                            );
                            let last = match result {
                                Ok(response) => Last::Response(response),
                                Err(e) => Last::Error(K::keep(e)),
                            };
                            (last, verdict)
                        }
                        Poll::Pending => match this.retry.0.as_mut() {
                            Some(r) if r.armed == Armed::AttemptTimeout => {
                                ready!(r.as_mut().poll_timer(cx));
                                (Last::TimedOut, attempt::TIMED_OUT)
                            }
                            _ => return Poll::Pending,
                        },
                    };
                    if let Some(r) = this.retry.0.as_mut() {
                        *r.as_mut().project().armed = Armed::Nothing;
                    }
                    let attempt = this.retry.attempt();
                    if *this.started != NOT_TIMED {
                        let started = match this.retry.0.as_ref() {
                            Some(r) if r.attempt > 1 => r.attempt_started,
                            _ => *this.started,
                        };
                        let timed_out = matches!(last, Last::TimedOut);
                        report_attempt(policy, attempt, started, verdict.outcome, timed_out);
                    }
                    let slot = &mut this.retry.0;
                    let deadline = Some(*this.deadline).filter(|d| *d != NO_DEADLINE);
                    let (kept, next, clone_request) =
                        (&mut *this.request, &mut *this.next, &*this.clone_request);
                    let no_copy = *this.no_copy;
                    let may_resend = *this.idempotent || verdict.unsent;
                    let decision = attempt::after_attempt(
                        policy,
                        attempt,
                        verdict,
                        || {
                            if !may_resend {
                                *kept = None;
                                return Err(GiveUpReason::NotIdempotent);
                            }
                            let copy = clone_request.clone_request(kept.as_ref().ok_or(no_copy)?);
                            // The next attempt is the last: the original is not needed any
                            // more (nor, if it could not be copied, for anything else).
                            if copy.is_none() || attempt >= policy.max_retries {
                                *kept = None;
                            }
                            *next = Some(copy.ok_or(GiveUpReason::RequestNotCopied)?);
                            Ok(())
                        },
                        deadline,
                        || {
                            let r = slot.get_or_insert_with(Retrying::boxed);
                            r.as_mut()
                                .project()
                                .schedule
                                .get_or_insert_with(|| Schedule::new(policy))
                                .backoff(policy, attempt)
                        },
                    );
                    match decision {
                        Decision::Success => {
                            if let Some(budget) = &policy.budget {
                                budget.deposit();
                            }
                            this.state.set(State::Done);
                            return Poll::Ready(as_is(last, CallOutcome::Success, attempt));
                        }
                        Decision::Final => {
                            this.state.set(State::Done);
                            return Poll::Ready(as_is(last, CallOutcome::NotRetryable, attempt));
                        }
                        Decision::GiveUp(reason) => {
                            this.state.set(State::Done);
                            let mut ended = give_up::<_, _, K>(policy, attempt, reason, last);
                            if reason == GiveUpReason::RetryAfterTooLong
                                && policy.long_retry_after == LongRetryAfter::GiveUp
                            {
                                ended.finished.ending = Ending::RetryAfterTooLong {
                                    retry_after: verdict.retry_after.unwrap_or_default(),
                                    allowed: attempt::allowed_wait(policy, deadline),
                                };
                            }
                            return Poll::Ready(ended);
                        }
                        Decision::Retry { delay, retry_after } => {
                            let r = this.retry.0.get_or_insert_with(Retrying::boxed);
                            if !delay.is_zero() && !r.as_mut().arm(delay, Armed::Backoff) {
                                this.state.set(State::Done);
                                return Poll::Ready(give_up::<_, _, K>(
                                    policy,
                                    attempt,
                                    GiveUpReason::NoTimer,
                                    last,
                                ));
                            }
                            // The budget last, once the wait is armed: a retry that cannot
                            // wait costs no token.
                            if !attempt::take_token(policy) {
                                *r.as_mut().project().armed = Armed::Nothing;
                                this.state.set(State::Done);
                                return Poll::Ready(give_up::<_, _, K>(
                                    policy,
                                    attempt,
                                    GiveUpReason::BudgetExhausted,
                                    last,
                                ));
                            }
                            let rp = r.as_mut().project();
                            rp.schedule
                                .get_or_insert_with(|| Schedule::new(policy))
                                .waited(delay);
                            if policy.observers.any() {
                                let elapsed = Elapsed::new();
                                policy.observers.emit(&Event::Retry(RetryEvent {
                                    attempt,
                                    delay,
                                    retry_after,
                                    reason: match last {
                                        Last::Response(_) | Last::Released => RetryReason::Response,
                                        Last::TimedOut => RetryReason::Timeout,
                                        Last::Error(_) | Last::NotMade => RetryReason::Error,
                                    },
                                    error: show::<_, _, K>(&last, &elapsed),
                                    budget: policy.budget.as_ref(),
                                }));
                            }
                            *rp.last = Some(match last {
                                Last::Response(response) => {
                                    drop(response);
                                    Last::Released
                                }
                                other => other,
                            });
                            this.state.set(if delay.is_zero() {
                                State::Readying
                            } else {
                                State::Waiting
                            });
                        }
                    }
                }
                StateProj::Waiting => {
                    if let Some(r) = this.retry.0.as_mut() {
                        ready!(r.as_mut().poll_timer(cx));
                    }
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let deadline = Some(*this.deadline).filter(|d| *d != NO_DEADLINE);
                    // Fresh readiness for every attempt: the permit or slot of the previous
                    // one was consumed by its call.
                    let ready = match this.svc.poll_ready(cx) {
                        Poll::Ready(ready) => ready,
                        Poll::Pending => {
                            let (Some(deadline), Some(r)) = (deadline, this.retry.0.as_mut())
                            else {
                                return Poll::Pending;
                            };
                            // The deadline bounds the wait for readiness too.
                            if r.armed != Armed::Deadline {
                                let left = deadline.saturating_sub(policy.clock.now_nanos());
                                if !r.as_mut().arm(Duration::from_nanos(left), Armed::Deadline) {
                                    return Poll::Ready(
                                        this.give_up_waiting(GiveUpReason::NoTimer),
                                    );
                                }
                            }
                            ready!(r.as_mut().poll_timer(cx));
                            return Poll::Ready(this.give_up_waiting(GiveUpReason::Deadline));
                        }
                    };
                    if let Err(e) = ready {
                        // tower's convention: a service that fails `poll_ready` is not ready
                        // for good; its error is the call's answer, and the retry announced
                        // to the listeners ends here.
                        let attempt = this.retry.attempt();
                        this.state.set(State::Done);
                        let last = Last::Error(K::keep(e));
                        let finished =
                            give_up::<_, _, K>(policy, attempt, GiveUpReason::NotReady, last);
                        return Poll::Ready(finished);
                    }
                    // No attempt starts at or past the deadline.
                    if deadline.is_some_and(|d| policy.clock.now_nanos() >= d) {
                        return Poll::Ready(this.give_up_waiting(GiveUpReason::Deadline));
                    }
                    let Some(r) = this.retry.0.as_mut() else {
                        // Unreachable: a retry has its state.
                        return Poll::Ready(this.give_up_waiting(GiveUpReason::RetriesUsedUp));
                    };
                    let next = r.attempt.saturating_add(1);
                    let Some(req) = this.next.take() else {
                        // Unreachable: a retry is decided only with a request left.
                        return Poll::Ready(this.give_up_waiting(GiveUpReason::RequestNotCopied));
                    };
                    let rp = r.as_mut().project();
                    *rp.attempt = next;
                    if *this.started != NOT_TIMED {
                        *rp.attempt_started = policy.clock.now_nanos();
                    }
                    // The previous result is not the answer any more.
                    *rp.last = None;
                    *rp.armed = Armed::Nothing;
                    let future = this.svc.call(req);
                    this.state.set(State::Called { future });
                }
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<P, S, Req, C, R, K, F, T> AttemptsProj<'_, P, S, Req, C, R, K, F, T>
where
    P: Deref<Target = Policy>,
    S: Service<Req, Future = F, Response = T>,
    K: Keep<S::Error>,
{
    /// Gives up before the next attempt, with the last one's result.
    fn give_up_waiting(&mut self, reason: GiveUpReason) -> Ended<S::Response, K> {
        self.state.set(State::Done);
        let (attempt, last) = match self.retry.0.as_mut() {
            Some(r) => (r.attempt, r.as_mut().project().last.take()),
            None => (1, None),
        };
        let attempt = if last.is_some() {
            attempt
        } else {
            attempt.saturating_sub(1)
        };
        give_up::<_, _, K>(self.policy, attempt, reason, last.unwrap_or(Last::NotMade))
    }
}

fn as_is<T, K>(last: Last<T, K>, outcome: CallOutcome, attempts: u32) -> Ended<T, K> {
    Ended {
        finished: Finished {
            last,
            ending: Ending::AsIs,
        },
        outcome,
        attempts,
    }
}

/// The last attempt's error as `dyn Error`, for listeners.
fn show<'a, T, E, K: Keep<E>>(
    last: &'a Last<T, K>,
    elapsed: &'a Elapsed,
) -> Option<&'a (dyn Error + 'static)> {
    match last {
        Last::Error(e) => e.show(),
        Last::TimedOut => Some(elapsed),
        Last::Response(_) | Last::NotMade | Last::Released => None,
    }
}

/// Ends the call on a retryable failure it will not retry, and says so to the listeners.
#[cold]
fn give_up<T, E, K: Keep<E>>(
    policy: &Policy,
    attempt: u32,
    reason: GiveUpReason,
    last: Last<T, K>,
) -> Ended<T, K> {
    if policy.observers.any() {
        let elapsed = Elapsed::new();
        policy.observers.emit(&Event::GiveUp(GiveUpEvent {
            attempt,
            reason,
            response: matches!(last, Last::Response(_) | Last::Released),
            error: show::<_, _, K>(&last, &elapsed),
            budget: policy.budget.as_ref(),
        }));
    }
    let ending = match reason {
        GiveUpReason::BudgetExhausted => Ending::BudgetExhausted,
        GiveUpReason::NoTimer => Ending::NoTimer,
        GiveUpReason::RequestNotCopied => Ending::NotCopied,
        _ => Ending::AsIs,
    };
    Ended {
        finished: Finished { last, ending },
        outcome: CallOutcome::GaveUp(reason),
        attempts: attempt,
    }
}
