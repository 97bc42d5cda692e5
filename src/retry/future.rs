//! The response future of [`RetryService`](super::RetryService): the attempts of one call
//! (`attempts.rs`), answered the layer's way, with a `BoxError`.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower::timeout::error::Elapsed;
use tower_service::Service;

use super::attempts::{Attempts, Ending, Finished, Last};
use super::error::{BudgetExhausted, RequestNotCopied, RetryAfterTooLong, TimerUnavailable};
use super::policy::{CloneRequest, Policy};
use crate::classify::Classify;
use crate::error::BoxError;
use crate::sync::{Arc, Lane};

pin_project! {
    /// The response future of [`RetryService`](super::RetryService).
    ///
    /// A state machine: `Called` (an attempt in flight, under the per-attempt timeout if
    /// any), `Waiting` (the backoff), `Readying` (`poll_ready` on the inner service before the
    /// next attempt, bounded by the deadline). It holds a reference to its policy (through
    /// the lane of the thread that made the call), so it outlives its stack; what only a retry needs (the rng, the timer, the last result) is boxed once,
    /// at the first failure (at the start of the call with a per-attempt timeout).
    ///
    /// Polled again after it completed, it stays pending (like `futures`' `Fuse`).
    pub struct ResponseFuture<S, Req, C, R, F, T> {
        #[pin]
        attempts: Attempts<HeldPolicy, S, Req, C, R, BoxError, F, T>,
    }
}

impl<S, Req, C, R, F, T> ResponseFuture<S, Req, C, R, F, T>
where
    S: Service<Req, Future = F, Response = T>,
    S::Error: Into<BoxError>,
    R: CloneRequest<Req>,
{
    #[inline]
    pub(crate) fn new(
        svc: S,
        req: Req,
        policy: Arc<Lane<Policy>>,
        classifier: C,
        clone_request: R,
    ) -> Self {
        ResponseFuture {
            attempts: Attempts::new(svc, req, HeldPolicy(policy), classifier, clone_request),
        }
    }
}

/// The policy as a call holds it: one reference, counted on the lane of the thread that made
/// the call (see [`Lanes`](crate::sync::Lanes)).
pub(crate) struct HeldPolicy(Arc<Lane<Policy>>);

impl Deref for HeldPolicy {
    type Target = Policy;

    #[inline(always)]
    fn deref(&self) -> &Policy {
        &self.0
    }
}

impl<S, Req, C, R, F, T> Future for ResponseFuture<S, Req, C, R, F, T>
where
    S: Service<Req, Future = F, Response = T>,
    F: Future<Output = Result<T, S::Error>>,
    S::Error: Into<BoxError> + 'static,
    C: Classify<S::Response, S::Error>,
    R: CloneRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let finished = ready!(self.project().attempts.poll(cx));
        Poll::Ready(boxed(finished))
    }
}

/// The layer's answer: the last response, the last error, or a refusal wrapping it.
#[inline]
fn boxed<T>(finished: Finished<T, BoxError>) -> Result<T, BoxError> {
    // A retryable response that was not retried is still the answer (a `GiveUp` event said
    // so), unless the server asked for a wait the policy does not allow.
    let error = match finished.last {
        Last::Response(response) => match finished.ending {
            Ending::RetryAfterTooLong { .. } => None,
            _ => return Ok(response),
        },
        Last::Error(e) => Some(e),
        Last::TimedOut => Some(Box::new(Elapsed::new()) as BoxError),
        Last::NotMade => None,
        // The deadline came before the retry of a released response could start.
        Last::Released => match finished.ending {
            Ending::AsIs => Some(Box::new(Elapsed::new()) as BoxError),
            _ => None,
        },
    };
    Err(match (finished.ending, error) {
        (Ending::AsIs, Some(e)) => e,
        (Ending::BudgetExhausted, Some(e)) => Box::new(BudgetExhausted::new(e)),
        (Ending::NotCopied, Some(e)) => Box::new(RequestNotCopied::new(e)),
        (
            Ending::RetryAfterTooLong {
                retry_after,
                allowed,
            },
            e,
        ) => Box::new(RetryAfterTooLong::new(retry_after, allowed, e)),
        (_, e) => Box::new(TimerUnavailable::new(e)),
    })
}

impl<S, Req, C, R, F, T> fmt::Debug for ResponseFuture<S, Req, C, R, F, T>
where
    S: Service<Req, Future = F, Response = T>,
    S::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempts.attempt())
            .finish_non_exhaustive()
    }
}
