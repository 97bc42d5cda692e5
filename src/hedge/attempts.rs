//! The attempts of one hedged call, shared by the layer's response future and the bare call:
//! the primary attempt, the timer, the hedges in flight and the decision on each answer.
//!
//! The decisions, in one place:
//! - an answer the classifier accepts ([`Outcome::Success`] or [`Outcome::Ignored`]) ends
//!   the call at once: the other attempts are dropped (cancelled) before it is returned, and
//!   a success is deposited into the budget if the policy is its depositor;
//! - a [`Outcome::Failure`] ends the call only when no other attempt is in flight (or waiting
//!   for readiness); otherwise the call waits for them, and still sends the hedges the timer
//!   calls for. A failure never sends a hedge early: turning failures into attempts is the
//!   retry's job, with its backoff;
//! - the timer is armed only when the primary did not answer at its first poll, so a call
//!   answered at once reads no clock and arms no timer; each time it fires, a hedge is asked
//!   of the budget, then made by a fresh source (a clone of the inner service, readied here).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::policy::Policy;
use crate::classify::{Classify, Outcome};
use crate::retry::CloneRequest;

/// Where the attempts of a call come from.
pub(crate) trait Attempter<Req> {
    type Response;
    type Error;
    type Future: Future<Output = Result<Self::Response, Self::Error>>;
    /// What makes one more attempt, before it is ready.
    type Fresh;

    /// A new maker of one attempt (the layer: a clone of the inner service).
    fn fresh(&self) -> Self::Fresh;

    /// Readies `fresh` for its attempt.
    fn poll_ready(fresh: &mut Self::Fresh, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Makes the attempt.
    fn call(&mut self, fresh: Self::Fresh, req: Req) -> Self::Future;
}

/// The layer's source of attempts: the service that made the primary attempt, cloned for
/// each hedge, and each clone readied before its call (a clone of a `Buffer` or a
/// concurrency limit is not ready until its own `poll_ready` says so).
pub(crate) struct Cloned<S>(pub(crate) S);

impl<S, Req> Attempter<Req> for Cloned<S>
where
    S: Service<Req> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    type Fresh = S;

    #[inline]
    fn fresh(&self) -> S {
        self.0.clone()
    }

    #[inline]
    fn poll_ready(fresh: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        fresh.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut fresh: S, req: Req) -> S::Future {
        fresh.call(req)
    }
}

type Answer<A, Req> = Result<<A as Attempter<Req>>::Response, <A as Attempter<Req>>::Error>;

pin_project! {
    /// Everything only a call that did not answer at once needs, boxed once, when the
    /// primary is first pending: the timer and the hedges.
    #[project = SlowProj]
    struct Slow<A, Req>
    where
        A: Attempter<Req>,
    {
        #[pin]
        timer: Sleep,
        // Whether the timer calls for another hedge.
        armed: bool,
        delay: Duration,
        // Hedges granted so far.
        sent: u32,
        // A hedge granted, waiting for its source to be ready.
        readying: Option<(A::Fresh, Req)>,
        // Hedges in flight, with their start (the percentile mode's clock; 0 otherwise).
        in_flight: Vec<(Pin<Box<A::Future>>, u64)>,
    }
}

pin_project! {
    /// The attempts of one call. Polled again after it answered, it stays pending.
    pub(crate) struct Attempts<P, A, Req, C, R>
    where
        A: Attempter<Req>,
    {
        #[pin]
        primary: Option<A::Future>,
        // When the primary began (the percentile mode's clock; 0 otherwise).
        start: u64,
        // The original request, kept for the hedges; `None` when no more may be sent.
        kept: Option<Req>,
        slow: Option<Pin<Box<Slow<A, Req>>>>,
        source: A,
        policy: P,
        classifier: C,
        clone_request: R,
    }
}

impl<P, A, Req, C, R> Attempts<P, A, Req, C, R>
where
    A: Attempter<Req>,
{
    /// The attempts of a call whose primary attempt is `primary`, begun at `start`; `kept`
    /// is the request the hedges are copied from (`None`: the call is not hedged).
    #[inline]
    pub(crate) fn new(
        primary: A::Future,
        kept: Option<Req>,
        start: u64,
        source: A,
        policy: P,
        classifier: C,
        clone_request: R,
    ) -> Self {
        Attempts {
            primary: Some(primary),
            start,
            kept,
            slow: None,
            source,
            policy,
            classifier,
            clone_request,
        }
    }

    /// The hedges granted so far.
    pub(crate) fn hedges(&self) -> u32 {
        self.slow.as_ref().map_or(0, |s| s.sent)
    }
}

impl<P, A, Req, C, R> Future for Attempts<P, A, Req, C, R>
where
    P: Deref<Target = Policy>,
    A: Attempter<Req>,
    C: Classify<A::Response, A::Error>,
    R: CloneRequest<Req>,
{
    type Output = Answer<A, Req>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.as_mut().project();
        // The success path, inlined: the primary answers before any hedge, acceptably. No
        // clock (in the fixed mode), no timer, no allocation.
        let first = match (this.slow.is_none(), this.primary.as_mut().as_pin_mut()) {
            (true, Some(primary)) => match primary.poll(cx) {
                Poll::Ready(result) => {
                    let outcome = this.classifier.classify(&result);
                    if outcome != Outcome::Failure && !this.policy.records() {
                        if outcome == Outcome::Success {
                            this.policy.deposit();
                        }
                        this.primary.set(None);
                        *this.kept = None;
                        return Poll::Ready(result);
                    }
                    Some((result, outcome))
                }
                Poll::Pending => None,
            },
            _ => None,
        };
        self.poll_slow(cx, first)
    }
}

impl<P, A, Req, C, R> Attempts<P, A, Req, C, R>
where
    P: Deref<Target = Policy>,
    A: Attempter<Req>,
    C: Classify<A::Response, A::Error>,
    R: CloneRequest<Req>,
{
    /// Everything but the success path. `first` is the primary's result if the success path
    /// polled it to completion, with what the classifier said of it.
    #[inline(never)]
    fn poll_slow(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        first: Option<(Answer<A, Req>, Outcome)>,
    ) -> Poll<Answer<A, Req>> {
        let mut this = self.project();
        let policy: &Policy = this.policy;

        // The primary's answer, unless it is still pending.
        let polled = match first {
            Some(done) => Some(done),
            None => match this.primary.as_mut().as_pin_mut().map(|f| f.poll(cx)) {
                Some(Poll::Ready(result)) => {
                    let outcome = this.classifier.classify(&result);
                    Some((result, outcome))
                }
                _ => None,
            },
        };
        if let Some((result, outcome)) = polled {
            this.primary.set(None);
            let start = *this.start;
            if let Some(answer) = conclude(
                policy,
                outcome,
                result,
                Some(start),
                this.primary.as_mut(),
                start,
                this.slow,
                this.kept,
            ) {
                return Poll::Ready(answer);
            }
        }

        // The primary is pending (or failed while hedges are in flight): arm the timer once.
        if this.slow.is_none() {
            if this.kept.is_none() {
                return Poll::Pending;
            }
            match policy.delay().and_then(|delay| {
                let timer =
                    crate::clock::sleep_until(tokio::time::Instant::now().checked_add(delay)?)?;
                Some((timer, delay))
            }) {
                Some((timer, delay)) => {
                    *this.slow = Some(Box::pin(Slow {
                        timer,
                        armed: true,
                        delay,
                        sent: 0,
                        readying: None,
                        in_flight: Vec::new(),
                    }));
                }
                // Not enough latencies yet, or no timer: this call is not hedged.
                None => {
                    *this.kept = None;
                    return Poll::Pending;
                }
            }
        }

        loop {
            let finished = match this.slow.as_mut() {
                Some(slow) => poll_hedges(
                    slow.as_mut().project(),
                    cx,
                    policy,
                    this.source,
                    this.kept,
                    this.clone_request,
                ),
                None => None,
            };
            let Some((result, start)) = finished else {
                return Poll::Pending;
            };
            let outcome = this.classifier.classify(&result);
            if let Some(answer) = conclude(
                policy,
                outcome,
                result,
                start,
                this.primary.as_mut(),
                *this.start,
                this.slow,
                this.kept,
            ) {
                return Poll::Ready(answer);
            }
        }
    }
}

/// Polls the hedges in flight and sends those the timer calls for; returns the first result
/// to come in (with its attempt's start, if it was made), or `None` when all are pending.
fn poll_hedges<A, Req, R>(
    mut s: SlowProj<'_, A, Req>,
    cx: &mut Context<'_>,
    policy: &Policy,
    source: &mut A,
    kept: &mut Option<Req>,
    clone_request: &R,
) -> Option<(Answer<A, Req>, Option<u64>)>
where
    A: Attempter<Req>,
    R: CloneRequest<Req>,
{
    for i in 0..s.in_flight.len() {
        let (future, start) = &mut s.in_flight[i];
        if let Poll::Ready(result) = future.as_mut().poll(cx) {
            let start = *start;
            // Dropped at once; the order of the others does not matter.
            drop(s.in_flight.swap_remove(i));
            return Some((result, Some(start)));
        }
    }
    loop {
        if let Some((fresh, _)) = s.readying.as_mut() {
            match A::poll_ready(fresh, cx) {
                Poll::Pending => return None,
                // By tower's convention a service whose `poll_ready` fails is not ready for
                // good: that hedge ends with the error, as a failed attempt.
                Poll::Ready(Err(e)) => {
                    *s.readying = None;
                    return Some((Err(e), None));
                }
                Poll::Ready(Ok(())) => {
                    let (fresh, req) = s.readying.take()?;
                    let start = policy.now();
                    let mut future = Box::pin(source.call(fresh, req));
                    if let Poll::Ready(result) = future.as_mut().poll(cx) {
                        return Some((result, Some(start)));
                    }
                    s.in_flight.push((future, start));
                }
            }
        }
        if !*s.armed || s.timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        // The delay passed without an acceptable answer: a hedge, if the budget allows.
        let hedge = *s.sent + 1;
        if !policy.withdraw(hedge, *s.delay) {
            *s.armed = false;
            *kept = None;
            return None;
        }
        *s.sent = hedge;
        // The last hedge sends the original; one that cannot be copied is sent as the last.
        let req = match kept.as_ref() {
            Some(k) if hedge < policy.max_hedges => {
                clone_request.clone_request(k).or_else(|| kept.take())
            }
            _ => kept.take(),
        };
        let Some(req) = req else {
            *s.armed = false;
            return None;
        };
        if kept.is_some() {
            // The next hedge, one delay after this one was due (no clock read).
            let next = s.timer.deadline() + *s.delay;
            s.timer.as_mut().reset(next);
        } else {
            *s.armed = false;
        }
        *s.readying = Some((source.fresh(), req));
    }
}

/// Decides on one attempt's result: the call's answer, or `None` to wait for the others.
#[allow(clippy::too_many_arguments)]
fn conclude<A, Req>(
    policy: &Policy,
    outcome: Outcome,
    result: Answer<A, Req>,
    start: Option<u64>,
    mut primary: Pin<&mut Option<A::Future>>,
    primary_start: u64,
    slow: &mut Option<Pin<Box<Slow<A, Req>>>>,
    kept: &mut Option<Req>,
) -> Option<Answer<A, Req>>
where
    A: Attempter<Req>,
{
    let accepted = outcome != Outcome::Failure;
    let waiting = primary.is_some()
        || slow
            .as_ref()
            .is_some_and(|s| !s.in_flight.is_empty() || s.readying.is_some());
    if !accepted && waiting {
        policy.record(start);
        return None;
    }
    if outcome == Outcome::Success {
        policy.deposit();
    }
    if policy.records() {
        // The attempts cancelled now ran at least this long: recorded as such, so that slow
        // attempts a hedge beat still count in the percentile.
        let losers = primary
            .is_some()
            .then_some(primary_start)
            .into_iter()
            .chain(
                slow.iter()
                    .flat_map(|s| s.in_flight.iter().map(|(_, t)| *t)),
            );
        policy.record(start.into_iter().chain(losers));
    }
    // The losers are dropped (cancelled) before the answer is returned.
    primary.set(None);
    *slow = None;
    *kept = None;
    Some(result)
}
