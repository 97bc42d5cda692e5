//! The checks: pure rules over a description of a stack, outermost part first.

use std::time::Duration;

use super::error::StackError;
use crate::bulkhead::Bulkhead;
use crate::error::ConfigError;
use crate::hedge::Hedge;
use crate::retry::{LongRetryAfter, Retry};

/// One part of a stack, as described to [`Stack::check`](super::Stack::check): the parts
/// whose placement matters, with the settings the checks read. A hand-made stack is described
/// outermost first, in the order of its `ServiceBuilder` calls.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Part<'a> {
    /// A rate limiter (no check reads it; its place is outermost).
    RateLimit,
    /// A timeout: tower's `Timeout` with this duration, wherever it sits (overall outside
    /// retry, per attempt inside the breaker).
    Timeout(Duration),
    /// A fallback, such as [`FallbackLayer`](crate::fallback::FallbackLayer).
    Fallback,
    /// A retry with this policy (its own `attempt_timeout`, if set, sits inside it).
    Retry(&'a Retry),
    /// A hedge with this policy, such as a [`HedgeLayer`](crate::hedge::HedgeLayer)'s
    /// ([`HedgeLayer::hedge`](crate::hedge::HedgeLayer::hedge)).
    Hedge(&'a Hedge),
    /// A circuit breaker.
    Breaker,
    /// A bulkhead.
    Bulkhead(&'a Bulkhead),
}

/// A timeout and how deep it sits: a [`Part::Timeout`] at index `i` is at depth `2i`, a
/// retry's own attempt timeout (inside the retry at index `i`) at `2i + 1`.
#[derive(Clone, Copy)]
struct Placed {
    depth: usize,
    timeout: Duration,
}

/// The shortest timeout strictly outside (`depth < at`), if any.
fn shortest_outside(timeouts: &[Placed], at: usize) -> Option<Duration> {
    timeouts
        .iter()
        .filter(|t| t.depth < at)
        .map(|t| t.timeout)
        .min()
}

/// The shortest timeout strictly inside (`depth > at`), if any.
fn shortest_inside(timeouts: &[Placed], at: usize) -> Option<Duration> {
    timeouts
        .iter()
        .filter(|t| t.depth > at)
        .map(|t| t.timeout)
        .min()
}

pub(super) fn check(parts: &[Part<'_>]) -> Result<(), StackError> {
    // A configuration-time walk over a handful of parts: a small allocation is fine here.
    let mut timeouts = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Timeout(d) if d.is_zero() => {
                return Err(ConfigError::Zero { field: "timeout" }.into())
            }
            Part::Timeout(d) => timeouts.push(Placed {
                depth: 2 * i,
                timeout: *d,
            }),
            Part::Retry(r) => {
                if let Some(d) = r.attempt_timeout() {
                    timeouts.push(Placed {
                        depth: 2 * i + 1,
                        timeout: d,
                    });
                }
            }
            _ => {}
        }
    }
    let outside_of = |i: usize| parts[..i].iter();
    let inside_of = |i: usize| parts[i + 1..].iter();

    for (i, part) in parts.iter().enumerate() {
        let depth = 2 * i;
        match *part {
            Part::RateLimit => {}
            Part::Timeout(d) => {
                if let Some(overall) = shortest_outside(&timeouts, depth) {
                    if d >= overall {
                        return Err(StackError::AttemptTimeoutNotShorter {
                            attempt: d,
                            overall,
                        });
                    }
                }
            }
            Part::Fallback => {
                for outer in outside_of(i) {
                    match outer {
                        Part::Retry(_) => {
                            return Err(StackError::FallbackInside { layer: "retry" })
                        }
                        Part::Breaker => {
                            return Err(StackError::FallbackInside {
                                layer: "circuit breaker",
                            })
                        }
                        Part::Hedge(_) => {
                            return Err(StackError::FallbackInside { layer: "hedge" })
                        }
                        _ => {}
                    }
                }
            }
            Part::Retry(retry) => check_retry(retry, &timeouts, depth, || {
                inside_of(i).any(|p| matches!(p, Part::Breaker))
            })?,
            Part::Hedge(hedge) => check_hedge(
                hedge,
                parts.iter().find_map(|p| match p {
                    Part::Retry(r) => Some(*r),
                    _ => None,
                }),
                inside_of(i).any(|p| matches!(p, Part::Retry(_))),
                inside_of(i).any(|p| matches!(p, Part::Breaker)),
                &timeouts,
            )?,
            Part::Breaker => {
                let outside = shortest_outside(&timeouts, depth);
                let inside = shortest_inside(&timeouts, depth);
                match (outside, inside) {
                    (Some(timeout), None) => {
                        return Err(StackError::TimeoutOutsideBreaker { timeout })
                    }
                    (Some(overall), Some(attempt)) if attempt >= overall => {
                        return Err(StackError::AttemptTimeoutNotShorter { attempt, overall })
                    }
                    _ => {}
                }
            }
            Part::Bulkhead(bulkhead) => {
                let max_wait = bulkhead.max_wait();
                if let Some(timeout) = shortest_outside(&timeouts, depth) {
                    if !max_wait.is_zero() && max_wait >= timeout {
                        return Err(StackError::BulkheadWaitOutlastsTimeout { max_wait, timeout });
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_hedge(
    hedge: &Hedge,
    retry: Option<&Retry>,
    retry_inside: bool,
    breaker_inside: bool,
    timeouts: &[Placed],
) -> Result<(), StackError> {
    if retry_inside {
        return Err(StackError::HedgeOutsideRetry);
    }
    // A retry with a budget: the hedge must draw from that very budget (if the retry
    // retries), and only one of them may deposit each call's success (the retry always does).
    if let Some(retry) = retry {
        if let Some(ours) = retry.budget() {
            let shared = hedge
                .budget()
                .is_some_and(|theirs| theirs.same_budget(ours));
            if shared && hedge.deposits_successes() {
                return Err(StackError::HedgeDepositsTwice);
            }
            if !shared && retry.max_retries() > 0 {
                return Err(StackError::HedgeBudgetNotShared {
                    hedge_has_budget: hedge.budget().is_some(),
                });
            }
        }
    }
    if hedge.budget().is_none() && breaker_inside {
        return Err(StackError::HedgeWithoutBudget {
            max_hedges: hedge.max_hedges(),
        });
    }
    // A fixed delay no attempt lives to see: no hedge is ever sent. (Any timeout, inside or
    // outside: an attempt cut before the delay fails, and a failure never sends a hedge.)
    if let Some(delay) = hedge.delay() {
        if let Some(timeout) = timeouts.iter().map(|t| t.timeout).min() {
            if delay >= timeout {
                return Err(StackError::HedgeDelayNotShorter { delay, timeout });
            }
        }
    }
    Ok(())
}

fn check_retry(
    retry: &Retry,
    timeouts: &[Placed],
    depth: usize,
    breaker_inside: impl FnOnce() -> bool,
) -> Result<(), StackError> {
    let retries = retry.max_retries() > 0;
    if retries && retry.budget().is_none() && breaker_inside() {
        return Err(StackError::RetryWithoutBudget {
            max_retries: retry.max_retries(),
        });
    }
    let outer = shortest_outside(timeouts, depth);
    if let (Some(attempt), Some(overall)) = (retry.attempt_timeout(), outer) {
        if attempt >= overall {
            return Err(StackError::AttemptTimeoutNotShorter { attempt, overall });
        }
    }
    if let (Some(deadline), Some(timeout)) = (retry.deadline(), outer) {
        if deadline > timeout {
            return Err(StackError::DeadlineAfterTimeout { deadline, timeout });
        }
    }
    // The time a call has: the deadline, or the overall timeout if that cuts first.
    let Some(deadline) = [retry.deadline(), outer].into_iter().flatten().min() else {
        return Ok(());
    };
    let backoff = retry.backoff();
    // Before jitter: full jitter may draw a shorter delay now and then, but the schedule
    // asked for cannot fit, and with `Jitter::None` no retry ever starts.
    let first_backoff = backoff.computed(1);
    if retries && deadline <= first_backoff {
        return Err(StackError::DeadlineBeforeFirstBackoff {
            deadline,
            first_backoff,
        });
    }
    if retry.long_retry_after() == LongRetryAfter::Cap && backoff.max_delay() >= deadline {
        return Err(StackError::RetryAfterCapPastDeadline {
            max_delay: backoff.max_delay(),
            deadline,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Backoff, Jitter};

    const MS: Duration = Duration::from_millis(1);

    fn retry() -> Retry {
        Retry::builder()
            .backoff(Backoff::constant(10 * MS).jitter(Jitter::None))
            .build()
            .unwrap()
    }

    #[test]
    fn the_recommended_order_passes() {
        let r = retry();
        let parts = [
            Part::RateLimit,
            Part::Timeout(1000 * MS),
            Part::Fallback,
            Part::Retry(&r),
            Part::Breaker,
            Part::Timeout(100 * MS),
        ];
        assert_eq!(check(&parts), Ok(()));
    }

    #[test]
    fn a_timeout_between_retry_and_breaker_is_outside_the_breaker() {
        let r = retry();
        let parts = [Part::Retry(&r), Part::Timeout(100 * MS), Part::Breaker];
        assert_eq!(
            check(&parts),
            Err(StackError::TimeoutOutsideBreaker { timeout: 100 * MS })
        );
    }

    #[test]
    fn a_shorter_timeout_inside_the_breaker_makes_an_outer_one_harmless() {
        let r = retry();
        let parts = [
            Part::Retry(&r),
            Part::Timeout(100 * MS),
            Part::Breaker,
            Part::Timeout(50 * MS),
        ];
        assert_eq!(check(&parts), Ok(()));
    }

    #[test]
    fn equal_nested_timeouts_are_refused_the_outer_fires_first() {
        let parts = [Part::Timeout(100 * MS), Part::Timeout(100 * MS)];
        assert_eq!(
            check(&parts),
            Err(StackError::AttemptTimeoutNotShorter {
                attempt: 100 * MS,
                overall: 100 * MS
            })
        );
    }

    #[test]
    fn a_retry_without_budget_inside_a_breaker_passes() {
        let r = Retry::builder().no_budget().build().unwrap();
        assert_eq!(check(&[Part::Breaker, Part::Retry(&r)]), Ok(()));
        assert_eq!(
            check(&[Part::Retry(&r), Part::Breaker]),
            Err(StackError::RetryWithoutBudget { max_retries: 3 })
        );
    }

    #[test]
    fn a_fallback_inside_the_breaker_is_refused() {
        assert_eq!(
            check(&[Part::Breaker, Part::Fallback]),
            Err(StackError::FallbackInside {
                layer: "circuit breaker"
            })
        );
        assert_eq!(check(&[Part::Fallback, Part::Breaker]), Ok(()));
    }

    #[test]
    fn a_zero_timeout_is_a_configuration_error() {
        assert_eq!(
            check(&[Part::Timeout(Duration::ZERO)]),
            Err(StackError::Config(ConfigError::Zero { field: "timeout" }))
        );
    }

    fn hedge(budget: Option<&crate::retry::RetryBudget>) -> Hedge {
        let b = Hedge::builder().delay(10 * MS);
        match budget {
            Some(budget) => b.budget(budget.clone()),
            None => b.no_budget(),
        }
        .build()
        .unwrap()
    }

    #[test]
    fn a_hedge_inside_retry_sharing_its_budget_passes() {
        let r = retry();
        let h = hedge(r.budget());
        let parts = [
            Part::Timeout(1000 * MS),
            Part::Retry(&r),
            Part::Hedge(&h),
            Part::Breaker,
            Part::Timeout(100 * MS),
        ];
        assert_eq!(check(&parts), Ok(()));
    }

    #[test]
    fn a_hedge_outside_retry_is_refused() {
        let r = retry();
        let h = hedge(r.budget());
        assert_eq!(
            check(&[Part::Hedge(&h), Part::Retry(&r)]),
            Err(StackError::HedgeOutsideRetry)
        );
    }

    #[test]
    fn a_fallback_inside_the_hedge_is_refused() {
        let h = hedge(None);
        assert_eq!(
            check(&[Part::Hedge(&h), Part::Fallback]),
            Err(StackError::FallbackInside { layer: "hedge" })
        );
    }

    #[test]
    fn a_hedge_with_a_budget_of_its_own_beside_a_retry_is_refused() {
        let r = retry();
        let own = Hedge::builder().delay(10 * MS).build().unwrap();
        assert_eq!(
            check(&[Part::Retry(&r), Part::Hedge(&own)]),
            Err(StackError::HedgeBudgetNotShared {
                hedge_has_budget: true
            })
        );
        let none = hedge(None);
        assert_eq!(
            check(&[Part::Retry(&r), Part::Hedge(&none)]),
            Err(StackError::HedgeBudgetNotShared {
                hedge_has_budget: false
            })
        );
        // A retry that never retries never withdraws: nothing to share.
        let once = Retry::builder().max_retries(0).build().unwrap();
        assert_eq!(check(&[Part::Retry(&once), Part::Hedge(&own)]), Ok(()));
    }

    #[test]
    fn a_hedge_without_budget_outside_a_breaker_is_refused() {
        let h = hedge(None);
        assert_eq!(
            check(&[Part::Hedge(&h), Part::Breaker]),
            Err(StackError::HedgeWithoutBudget { max_hedges: 1 })
        );
        assert_eq!(check(&[Part::Hedge(&h)]), Ok(()));
        assert_eq!(check(&[Part::Breaker, Part::Hedge(&h)]), Ok(()));
    }

    #[test]
    fn a_hedge_delay_no_attempt_outlives_is_refused() {
        let h = hedge(None);
        assert_eq!(
            check(&[Part::Hedge(&h), Part::Timeout(10 * MS)]),
            Err(StackError::HedgeDelayNotShorter {
                delay: 10 * MS,
                timeout: 10 * MS
            })
        );
        assert_eq!(check(&[Part::Hedge(&h), Part::Timeout(11 * MS)]), Ok(()));
    }
}
