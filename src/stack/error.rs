//! The refusals of a composition: one variant per stack known to misbehave.

use std::time::Duration;

use crate::error::ConfigError;

/// A composition of layers known to misbehave, refused by [`Builder::build`](super::Builder::build)
/// and [`Stack::check`](super::Stack::check). Each variant names the problem; its `Display`
/// says what goes wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// A retry without a budget sits outside a circuit breaker.
    #[error(
        "a retry without a budget sits outside the circuit breaker: every failed call is \
         retried up to {max_retries} times, so the breaker counts up to {attempts} failures per \
         failed call and opens on a fraction of the calls it should, and until it opens a sick \
         dependency takes up to {attempts}x its load; give the retry a budget (the default \
         `Retry::builder()` has one) or set `max_retries(0)`",
        attempts = u64::from(*.max_retries) + 1
    )]
    RetryWithoutBudget {
        /// The retry's `max_retries`.
        max_retries: u32,
    },

    /// A timeout cuts calls outside the circuit breaker, and no shorter timeout inside it
    /// cuts them first: hung calls never count as failures.
    #[error(
        "a timeout of {timeout:?} cuts calls outside the circuit breaker, and no timeout inside \
         it: a hung call is dropped before the breaker records it, so hung calls never count as \
         failures and the breaker never opens on them; add a per-attempt timeout inside the \
         breaker (the stack's `attempt_timeout`, shorter than {timeout:?}) instead of retry's \
         own `attempt_timeout`"
    )]
    TimeoutOutsideBreaker {
        /// The timeout outside the breaker (an overall timeout, or retry's own
        /// `attempt_timeout`).
        timeout: Duration,
    },

    /// A per-attempt timeout is not shorter than a timeout outside it, which so always
    /// fires first.
    #[error(
        "the per-attempt timeout ({attempt:?}) is not shorter than the timeout outside it \
         ({overall:?}): the outer one cuts a hung attempt first, so the attempt is never retried \
         and a breaker between them never records it; make the attempt timeout shorter than \
         {overall:?}"
    )]
    AttemptTimeoutNotShorter {
        /// The inner (per-attempt) timeout.
        attempt: Duration,
        /// The outer (overall) timeout.
        overall: Duration,
    },

    /// The time a call has (the retry's deadline, or the overall timeout outside the retry if
    /// shorter) ends before the first backoff delay: the retry never retries.
    #[error(
        "the retry has {deadline:?} per call (its deadline, or the overall timeout outside it), \
         not more than its first backoff delay ({first_backoff:?} before jitter): no retry can \
         start in time, so the retry never retries; lengthen the deadline or shorten the \
         backoff's base"
    )]
    DeadlineBeforeFirstBackoff {
        /// The time a call has: the retry's deadline or the overall timeout, the shorter.
        deadline: Duration,
        /// The backoff's first delay, before jitter.
        first_backoff: Duration,
    },

    /// [`LongRetryAfter::Cap`](crate::retry::LongRetryAfter::Cap) caps a server's wait at
    /// `max_delay`, which is not shorter than the time a call has: the capped wait always
    /// reaches the deadline, so the cap can never be honoured.
    #[error(
        "the retry caps a long `Retry-After` at its backoff's max_delay ({max_delay:?}), not \
         shorter than the {deadline:?} a call has (its deadline, or the overall timeout outside \
         it): a capped wait always runs past it, so the cap is never honoured; use a max_delay \
         shorter than {deadline:?}, or `LongRetryAfter::GiveUp`"
    )]
    RetryAfterCapPastDeadline {
        /// The backoff's `max_delay`, the cap.
        max_delay: Duration,
        /// The time a call has: the retry's deadline or the overall timeout, the shorter.
        deadline: Duration,
    },

    /// The retry's deadline is longer than the overall timeout outside it: the timeout cuts
    /// first, and the deadline is never reached.
    #[error(
        "the retry's deadline ({deadline:?}) is longer than the overall timeout outside it \
         ({timeout:?}): the timeout cuts the call first, with a bare timeout instead of the \
         last attempt's error, while the retry still waits on a backoff it cannot finish; \
         make the deadline at most {timeout:?}"
    )]
    DeadlineAfterTimeout {
        /// The retry's deadline.
        deadline: Duration,
        /// The overall timeout.
        timeout: Duration,
    },

    /// A bulkhead waits for a slot at least as long as the timeout outside it: a full
    /// bulkhead shows up as a timeout, never as its own refusal.
    #[error(
        "the bulkhead waits up to {max_wait:?} for a slot, not less than the timeout outside \
         it ({timeout:?}): a waiting call is cut by the timeout before the bulkhead refuses it, \
         so a full bulkhead shows up as a timeout, never as `BulkheadFull`; make max_wait \
         shorter than {timeout:?}"
    )]
    BulkheadWaitOutlastsTimeout {
        /// The bulkhead's `max_wait`.
        max_wait: Duration,
        /// The timeout outside it.
        timeout: Duration,
    },

    /// A fallback sits inside a retry, a hedge or a circuit breaker (a hand-made order; the
    /// builder always puts it outside them all): it answers the failures they should see.
    #[error(
        "the fallback sits inside the {layer}: it answers the failures the {layer} should see, \
         so a breaker never opens, a retry never retries and a hedge takes the fallback's \
         answer for the dependency's; put the fallback outside retry, hedging and the circuit \
         breaker"
    )]
    FallbackInside {
        /// `"retry"`, `"hedge"` or `"circuit breaker"`.
        layer: &'static str,
    },

    /// A hedge sits outside a retry (a hand-made order; the builder always puts it inside):
    /// each hedge runs a retry loop of its own.
    #[error(
        "the hedge sits outside the retry: every hedge runs a retry loop of its own, so a slow \
         or failing dependency takes up to (max_hedges + 1) x (max_retries + 1) attempts per \
         call, and a hedge is sent whenever the first attempt is merely waiting out a backoff; \
         put the hedge inside the retry (and outside the circuit breaker)"
    )]
    HedgeOutsideRetry,

    /// A hedge and a retry (with a budget) do not draw from one budget: together they can
    /// add what two budgets allow.
    #[error(
        "the hedge does not draw from the retry's budget (it has {which}): hedges and retries \
         drawing from two budgets can together multiply the load on a dependency that is slow \
         or failing for everyone; build the hedge with \
         `.budget(retry.budget().cloned().unwrap())`",
        which = if *.hedge_has_budget { "a budget of its own" } else { "no budget at all" }
    )]
    HedgeBudgetNotShared {
        /// Whether the hedge has a budget (another one) or none.
        hedge_has_budget: bool,
    },

    /// A hedge and a retry share one budget and both deposit each call's success.
    #[error(
        "the hedge and the retry share one budget and both deposit each call's success \
         (the hedge was built with `deposit_successes(true)`): every success counts twice, so \
         retries and hedges together may add twice what the budget's ratio allows; leave \
         `deposit_successes` off, the retry deposits"
    )]
    HedgeDepositsTwice,

    /// A hedge without a budget sits outside a circuit breaker.
    #[error(
        "a hedge without a budget sits outside the circuit breaker: when the dependency is \
         slow for everyone, every call is hedged {max_hedges} time(s), so it takes up to \
         {attempts}x its load and the breaker counts up to {attempts} failures per slow call \
         that fails; give the hedge a budget (the retry's, if there is one: \
         `Hedge::builder().budget(..)`)",
        attempts = u64::from(*.max_hedges) + 1
    )]
    HedgeWithoutBudget {
        /// The hedge's `max_hedges`.
        max_hedges: u32,
    },

    /// A hedge's fixed delay is not shorter than a timeout in the stack: no attempt lives
    /// long enough for a hedge to be sent.
    #[error(
        "the hedge waits {delay:?} before a hedge, not less than a timeout of {timeout:?} in \
         the stack: every attempt is cut before its hedge is due (and a failure never sends a \
         hedge), so no hedge is ever sent; make the delay shorter than {timeout:?}"
    )]
    HedgeDelayNotShorter {
        /// The hedge's fixed delay.
        delay: Duration,
        /// The shortest timeout in the stack.
        timeout: Duration,
    },

    /// A hedge whose request copier does not say which requests may be sent twice
    /// ([`ByClone`](crate::retry::ByClone) takes every one as safe): a hedge sends requests
    /// twice by design, so a `POST` would be.
    #[error(
        "a hedge sends a request twice, and its request copier does not say which requests \
         may be (`ByClone` takes every one as safe); give it one that does (`HttpRequests`, \
         `GrpcRequests`) or declare every request safe with `Idempotent(ByClone)`"
    )]
    HedgeOfAnyRequest,

    /// A setting is invalid on its own (a zero timeout).
    #[error(transparent)]
    Config(#[from] ConfigError),
}
