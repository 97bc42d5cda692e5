//! What happens after an attempt: the call is over, retried after a delay, or given up (and
//! why). One step, shared by the tower [`ResponseFuture`](super::ResponseFuture) and the bare
//! [`Retry::call`](super::Retry::call), so the two cannot drift apart. Pure but for the two
//! reads it needs, both of the policy: the clock (only with a deadline) and the budget (only
//! for a retry that passed every other test).

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::observe::GiveUpReason;
use super::policy::{LongRetryAfter, Policy};
use crate::classify::{Classify, Outcome};
use crate::clock::duration_to_nanos;
use crate::error::ErrorKind;
use std::sync::atomic::Ordering;

/// What an attempt's result says, before any decision about retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    /// The server's `Retry-After`, for a failure.
    pub(crate) retry_after: Option<Duration>,
    /// The failure proves the request was never sent (see [`Classify::is_unsent`]).
    pub(crate) unsent: bool,
}

/// The verdict on an attempt cut by the per-attempt timeout: a retryable failure.
pub(crate) const TIMED_OUT: Verdict = Verdict {
    outcome: Outcome::Failure,
    retry_after: None,
    unsent: false,
};

/// Judges a result. seawall's own refusals (an open circuit, an inner budget's refusal: see
/// [`ErrorKind::is_refusal`]) come first and are final unless the policy retries refusals:
/// the dependency was not asked, so retrying only hammers the refusing layer. Only then is
/// the classifier, default or custom, asked.
#[inline]
pub(crate) fn judge<C, T, E>(
    classifier: &C,
    result: &Result<T, E>,
    retry_refusals: bool,
    classified: Option<Outcome>,
) -> Verdict
where
    C: Classify<T, E> + ?Sized,
    E: 'static,
{
    if let Err(e) = result {
        if !retry_refusals && ErrorKind::of_any(e).is_refusal() {
            return Verdict {
                outcome: Outcome::Ignored,
                retry_after: None,
                unsent: false,
            };
        }
    }
    // `classified`: what the classifier already said of this result (the success path asks
    // first); a classifier counting responses must see each one once.
    let outcome = classified.unwrap_or_else(|| classifier.classify(result));
    let (retry_after, unsent) = match outcome {
        Outcome::Failure => (classifier.retry_after(result), classifier.is_unsent(result)),
        _ => (None, false),
    };
    Verdict {
        outcome,
        retry_after,
        unsent,
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A success: deposit it into the budget and return it.
    Success,
    /// Not retryable (ignored by the classifier, or a refusal): return it as it is.
    Final,
    /// Retry after `delay`; `retry_after` when the delay is the server's.
    Retry { delay: Duration, retry_after: bool },
    /// A retryable failure that will not be retried.
    GiveUp(GiveUpReason),
}

/// The jitter's state of one retrying call: its own rng (seeded from the policy's seed and a
/// per-call counter) and the previous delay (for decorrelated jitter).
pub(crate) struct Schedule {
    rng: SmallRng,
    previous: Duration,
}

impl Schedule {
    pub(crate) fn new(policy: &Policy) -> Self {
        // Relaxed: only makes each retrying call draw a different sequence.
        let n = policy.rngs.fetch_add(1, Ordering::Relaxed);
        Schedule {
            rng: SmallRng::seed_from_u64(policy.seed.wrapping_add(n)),
            previous: Duration::ZERO,
        }
    }

    /// The backoff before retry `attempt` (the attempt that just failed, from 1).
    pub(crate) fn backoff(&mut self, policy: &Policy, attempt: u32) -> Duration {
        policy.backoff.delay(attempt, self.previous, &mut self.rng)
    }

    /// Remembers the delay a retry waits (decorrelated jitter grows from it).
    pub(crate) fn waited(&mut self, delay: Duration) {
        self.previous = delay;
    }
}

/// The decision after attempt `attempt` (from 1) ended with `verdict`.
///
/// `copy`: makes the copy of the request the next attempt will send (it is asked only for a
/// retryable failure with retries left), or says why there is none. `deadline`: in the policy
/// clock's nanoseconds. `backoff`: the call's next backoff delay, computed only when needed
/// (a call that never retries draws nothing from its rng).
///
/// The order is the policy's documented one: retries used up, then a copy of the request,
/// then the delay (the server's `Retry-After`, which must fit in `max_delay` unless the
/// policy caps it, else the backoff), then the deadline. A `Retry` still has to pass the
/// budget ([`take_token`]), last, once its wait is armed, so that a retry refused for another
/// reason costs no token.
pub(crate) fn after_attempt(
    policy: &Policy,
    attempt: u32,
    verdict: Verdict,
    copy: impl FnOnce() -> Result<(), GiveUpReason>,
    deadline: Option<u64>,
    backoff: impl FnOnce() -> Duration,
) -> Decision {
    match verdict.outcome {
        Outcome::Success => return Decision::Success,
        Outcome::Ignored => return Decision::Final,
        Outcome::Failure => {}
    }
    if attempt > policy.max_retries {
        return Decision::GiveUp(GiveUpReason::RetriesUsedUp);
    }
    if let Err(reason) = copy() {
        return Decision::GiveUp(reason);
    }
    let give_up_on_long_wait = policy.long_retry_after != LongRetryAfter::Cap;
    let (delay, retry_after) = match verdict.retry_after {
        Some(d) if d > policy.backoff.max_delay() => {
            if give_up_on_long_wait {
                return Decision::GiveUp(GiveUpReason::RetryAfterTooLong);
            }
            (policy.backoff.max_delay(), true)
        }
        // The server's wait is the least wait (RFC 9110: "the minimum time the user agent
        // is asked to wait"): never shorter than the backoff, so a `Retry-After: 0` or a
        // date in the past from a skewed clock does not turn retries into a tight loop.
        Some(d) => (d.max(backoff()), true),
        None => (backoff(), false),
    };
    if let Some(deadline) = deadline {
        // Never sleep past the deadline: an attempt starting at it has no time left.
        let left = deadline.saturating_sub(policy.clock.now_nanos());
        if duration_to_nanos(delay) >= left {
            // The server's wait is too long only if what it asked is longer than the time
            // left; a wait that merely reaches the deadline (`Retry-After: 0` at the
            // deadline, or the backoff it is raised to) meets the deadline, as any backoff
            // would.
            let asked = verdict.retry_after.map_or(0, duration_to_nanos);
            return Decision::GiveUp(if retry_after && give_up_on_long_wait && asked > left {
                GiveUpReason::RetryAfterTooLong
            } else {
                GiveUpReason::Deadline
            });
        }
    }
    Decision::Retry { delay, retry_after }
}

/// The longest wait the policy allows from now: its `max_delay`, or less if the deadline
/// comes first. Told to the caller when a `Retry-After` was longer.
pub(crate) fn allowed_wait(policy: &Policy, deadline: Option<u64>) -> Duration {
    let max = policy.backoff.max_delay();
    match deadline {
        Some(d) => max.min(Duration::from_nanos(
            d.saturating_sub(policy.clock.now_nanos()),
        )),
        None => max,
    }
}

/// Takes the retry's token from the budget, if there is a budget: the last test a retry
/// passes, made once its wait is armed, so a retry refused for any other reason (no timer
/// to wait with, among them) costs no token. `false`: refused.
pub(crate) fn take_token(policy: &Policy) -> bool {
    policy
        .budget
        .as_ref()
        .is_none_or(|budget| budget.withdraw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit_breaker::{CallError, CircuitOpen};
    use crate::classify::DefaultClassifier;
    use crate::clock::{Clock, ManualClock};
    use crate::retry::{Backoff, BudgetExhausted, Jitter, Retry, RetryBudget};
    use crate::BoxError;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn policy(max_retries: u32, budget: Option<RetryBudget>, time: &ManualClock) -> Retry {
        let b = Retry::builder()
            .max_retries(max_retries)
            .backoff(Backoff::exponential(ms(100)).jitter(Jitter::None))
            .clock(Clock::from(time.clone()));
        match budget {
            Some(budget) => b.budget(budget),
            None => b.no_budget(),
        }
        .build()
        .unwrap()
    }

    const FAILURE: Verdict = TIMED_OUT;

    /// The whole decision as the state machine takes it: the step, then the budget.
    fn decide(p: &Retry, attempt: u32, verdict: Verdict, deadline: Option<u64>) -> Decision {
        let mut schedule = Schedule::new(&p.policy);
        match after_attempt(
            &p.policy,
            attempt,
            verdict,
            || Ok(()),
            deadline,
            || schedule.backoff(&p.policy, attempt),
        ) {
            Decision::Retry { .. } if !take_token(&p.policy) => {
                Decision::GiveUp(GiveUpReason::BudgetExhausted)
            }
            d => d,
        }
    }

    #[test]
    fn refusals_are_final_before_any_classifier_is_asked() {
        let always_failure = |_: &Result<(), BoxError>| Outcome::Failure;
        let open: Result<(), BoxError> = Err(Box::new(CircuitOpen::new(ms(5))));
        assert_eq!(
            judge(&always_failure, &open, false, None).outcome,
            Outcome::Ignored
        );
        assert_eq!(
            judge(&always_failure, &open, true, None).outcome,
            Outcome::Failure
        );
        let refused: Result<(), BoxError> = Err(Box::new(BudgetExhausted::new("x")));
        assert_eq!(
            judge(&DefaultClassifier, &refused, false, None).outcome,
            Outcome::Ignored
        );
        // Seen through the bare breaker's typed error too.
        let bare: Result<(), CallError<&str>> = Err(CallError::Rejected(CircuitOpen::new(ms(1))));
        assert_eq!(
            judge(&DefaultClassifier, &bare, false, None).outcome,
            Outcome::Ignored
        );
        let inner: Result<(), BoxError> = Err("boom".into());
        assert_eq!(
            judge(&DefaultClassifier, &inner, false, None).outcome,
            Outcome::Failure
        );
    }

    #[test]
    fn success_and_ignored_are_final() {
        let time = ManualClock::new();
        let p = policy(3, None, &time);
        let success = Verdict {
            outcome: Outcome::Success,
            retry_after: None,
            unsent: false,
        };
        assert_eq!(decide(&p, 1, success, None), Decision::Success);
        let ignored = Verdict {
            outcome: Outcome::Ignored,
            retry_after: None,
            unsent: false,
        };
        assert_eq!(decide(&p, 1, ignored, None), Decision::Final);
    }

    #[test]
    fn retries_until_used_up_with_the_backoff() {
        let time = ManualClock::new();
        let p = policy(2, None, &time);
        assert_eq!(
            decide(&p, 1, FAILURE, None),
            Decision::Retry {
                delay: ms(100),
                retry_after: false
            }
        );
        assert_eq!(
            decide(&p, 2, FAILURE, None),
            Decision::Retry {
                delay: ms(200),
                retry_after: false
            }
        );
        assert_eq!(
            decide(&p, 3, FAILURE, None),
            Decision::GiveUp(GiveUpReason::RetriesUsedUp)
        );
    }

    #[test]
    fn a_request_that_cannot_be_copied_is_not_retried() {
        let time = ManualClock::new();
        let p = policy(2, None, &time);
        let d = after_attempt(
            &p.policy,
            1,
            FAILURE,
            || Err(GiveUpReason::RequestNotCopied),
            None,
            || ms(1),
        );
        assert_eq!(d, Decision::GiveUp(GiveUpReason::RequestNotCopied));
    }

    #[test]
    fn a_retry_after_over_max_delay_gives_up_unless_capped() {
        let time = ManualClock::new();
        let hinted = |secs| Verdict {
            outcome: Outcome::Failure,
            retry_after: Some(Duration::from_secs(secs)),
            unsent: false,
        };
        let p = policy(2, None, &time);
        let max = p.backoff().max_delay();
        assert_eq!(
            decide(&p, 1, hinted(3600), None),
            Decision::GiveUp(GiveUpReason::RetryAfterTooLong)
        );
        // Within `max_delay`: the server's wait, as asked.
        assert_eq!(
            decide(&p, 1, hinted(2), None),
            Decision::Retry {
                delay: Duration::from_secs(2),
                retry_after: true
            }
        );
        // A deadline nearer than the asked wait: too long as well.
        let deadline = Some(duration_to_nanos(Duration::from_secs(1)));
        assert_eq!(
            decide(&p, 1, hinted(2), deadline),
            Decision::GiveUp(GiveUpReason::RetryAfterTooLong)
        );
        assert_eq!(allowed_wait(&p.policy, deadline), Duration::from_secs(1));
        assert_eq!(allowed_wait(&p.policy, None), max);

        let capped = Retry::builder()
            .max_retries(2)
            .no_budget()
            .long_retry_after(LongRetryAfter::Cap)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        assert_eq!(
            decide(&capped, 1, hinted(3600), None),
            Decision::Retry {
                delay: max,
                retry_after: true
            }
        );
        assert_eq!(
            decide(&capped, 1, hinted(2), deadline),
            Decision::GiveUp(GiveUpReason::Deadline)
        );
    }

    #[test]
    fn the_backoff_is_cut_by_the_deadline() {
        let time = ManualClock::new();
        let p = policy(2, None, &time);
        // 100 ms from now would reach a deadline 100 ms away: no time left for an attempt.
        time.advance(ms(50));
        let deadline = Some(duration_to_nanos(ms(150)));
        assert_eq!(
            decide(&p, 1, FAILURE, deadline),
            Decision::GiveUp(GiveUpReason::Deadline)
        );
        let deadline = Some(duration_to_nanos(ms(151)));
        assert!(matches!(
            decide(&p, 1, FAILURE, deadline),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn the_budget_is_asked_last() {
        let time = ManualClock::new();
        let budget = RetryBudget::builder()
            .ratio(0.0)
            .min_per_sec(1)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        let p = policy(1, Some(budget.clone()), &time);
        // Used up: no token spent.
        assert_eq!(
            decide(&p, 2, FAILURE, None),
            Decision::GiveUp(GiveUpReason::RetriesUsedUp)
        );
        assert!(matches!(
            decide(&p, 1, FAILURE, None),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&p, 1, FAILURE, None),
            Decision::GiveUp(GiveUpReason::BudgetExhausted)
        );
    }
}
