//! Model checking of the retry budget with loom: every interleaving (up to a preemption bound)
//! of two or three threads depositing, refunding and withdrawing.
//!
//! Run: `RUSTFLAGS="--cfg seawall_loom" cargo test --release --test loom budget -- --nocapture`
//! (`LOOM_MAX_PREEMPTIONS` overrides the bound of 3 used here; each model prints the number of
//! interleavings it explored.)
//!
//! The failure streak's models come last: at most `failure_streak` retries between two
//! withdrawals that find new successes, however the withdrawals and deposits interleave.
//!
//! Time never moves (a `ManualClock` nobody advances) and `min_per_sec(0)`: the balance is then
//! exactly `ratio` × (successes − refunds) − granted retries (or zero, when a refund took back
//! credit already spent), which makes the bounds exact. Under loom each thread gets a stripe
//! of its own, so no deposit may be lost either.
//!
//! Withdrawals read the counts (the refunds, then the stripes) before they take the budget's
//! lock, so loom explores a withdrawal reading a count and being descheduled while others
//! deposit and settle, then settling with what it read: the race the models below are about.
#![cfg(seawall_loom)]

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::Relaxed as StdRelaxed;

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use seawall::clock::{Clock, ManualClock};
use seawall::retry::RetryBudget;

/// Checks `f` under loom and prints how many interleavings were explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    static RUNS: StdAtomicUsize = StdAtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let before = RUNS.load(StdRelaxed);
    let started = std::time::Instant::now();
    builder.check(move || {
        RUNS.fetch_add(1, StdRelaxed);
        f();
    });
    // Tests of this file run in parallel and share the counter: run with `--test-threads=1`
    // for exact per-model counts (the default is close enough for the total).
    eprintln!(
        "{name}: {} interleavings in {:.1?}",
        RUNS.load(StdRelaxed) - before,
        started.elapsed()
    );
}

/// A budget whose balance is exactly `ratio` per success: no floor, time stands still, and no
/// limit on the failure streak (its own models below set one).
fn budget(ratio: f64) -> RetryBudget {
    RetryBudget::builder()
        .ratio(ratio)
        .min_per_sec(0)
        .failure_streak(u32::MAX)
        .clock(Clock::from(ManualClock::new()))
        .build()
        .unwrap()
}

/// Withdraws until refused; returns how many were granted.
fn drain(budget: &RetryBudget) -> usize {
    let mut n = 0;
    while budget.withdraw() {
        n += 1;
    }
    n
}

/// Invariant: concurrent deposits and withdrawals never grant more retries than
/// `ratio` × the successes deposited so far (here 0.5 × 2: one retry).
#[test]
fn concurrent_withdrawals_never_exceed_ratio_times_deposits() {
    model("never_exceed", || {
        let budget = budget(0.5);
        let granted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = [true, true, false]
            .into_iter()
            .map(|deposits| {
                let budget = budget.clone();
                let granted = granted.clone();
                thread::spawn(move || {
                    if deposits {
                        budget.deposit();
                    }
                    if budget.withdraw() {
                        granted.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let granted = granted.load(SeqCst);
        assert!(
            granted <= 1,
            "{granted} retries granted for 2 successes x 0.5"
        );
    });
}

/// Invariant: each success is credited exactly once. Two threads deposit (three successes in
/// all) while both withdraw: together they get at most ⌊1.0 × 3⌋ retries, and whatever they
/// did not take is still there afterwards, to the token: none was lost, none counted twice.
#[test]
fn each_success_is_credited_exactly_once() {
    model("credited_once", || {
        let budget = budget(1.0);
        let threads: Vec<_> = [2, 1]
            .into_iter()
            .map(|deposits| {
                let budget = budget.clone();
                thread::spawn(move || {
                    for _ in 0..deposits {
                        budget.deposit();
                    }
                    usize::from(budget.withdraw())
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted <= 3, "{granted} retries granted for 3 successes");
        // Sequentially now: every success not spent is still in the balance.
        let rest = drain(&budget);
        assert_eq!(
            granted + rest,
            3,
            "3 successes paid for {granted} concurrent + {rest} later retries"
        );
    });
}

/// Invariant: refunds racing withdrawals never make the balance negative (checked by the
/// withdrawing thread and afterwards). The tighter bound, that a refunded success pays for
/// nothing, is checked by the two models below (they found the two races fixed in budget.rs).
#[test]
fn refunds_racing_withdrawals_never_make_the_balance_negative() {
    model("never_negative", || {
        let budget = budget(1.0);
        budget.deposit();
        let failed = {
            let budget = budget.clone();
            thread::spawn(move || {
                budget.deposit();
                budget.refund();
            })
        };
        let retry = {
            let budget = budget.clone();
            thread::spawn(move || {
                let granted = budget.withdraw();
                let balance = budget.balance();
                assert!(balance >= 0.0, "balance {balance}");
                granted
            })
        };
        failed.join().unwrap();
        let granted = usize::from(retry.join().unwrap());
        let balance = budget.balance();
        assert!(balance >= 0.0, "balance {balance}");
        // Two successes at most, whatever the refund did.
        let rest = drain(&budget);
        assert!(
            granted + rest <= 2,
            "2 successes paid for {granted} + {rest}"
        );
    });
}

/// Invariant: a refunded deposit pays for no retry once its refund is visible. A call
/// deposits and fails (refunds) while another thread withdraws; afterwards the deposit is
/// gone, so a later withdrawal must be refused: whether the racing one was granted (then it
/// got in between the deposit and the refund, and the refund takes the balance to zero) or
/// not (then nothing was ever there).
#[test]
fn a_refund_racing_a_withdrawal_leaves_nothing_to_spend() {
    model("refund_vs_withdraw", || {
        let budget = budget(1.0);
        let failed = {
            let budget = budget.clone();
            thread::spawn(move || {
                budget.deposit();
                budget.refund();
            })
        };
        let retry = {
            let budget = budget.clone();
            thread::spawn(move || budget.withdraw())
        };
        failed.join().unwrap();
        let raced = retry.join().unwrap();
        assert!(
            !budget.withdraw(),
            "a refunded deposit paid for a retry (the racing withdrawal was granted: {raced})"
        );
    });
}

/// Invariant: a deposit refunded before two withdrawals start pays for neither of them.
#[test]
fn a_refunded_deposit_pays_for_no_later_withdrawal() {
    model("refunded_before", || {
        let budget = budget(1.0);
        budget.deposit();
        budget.refund();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                thread::spawn(move || budget.withdraw())
            })
            .collect();
        let granted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&g| g)
            .count();
        assert_eq!(
            granted, 0,
            "a deposit refunded before any withdrawal paid for a retry"
        );
    });
}

/// Invariant: a withdrawal that read the successes, then was descheduled while they were
/// deposited and credited by another withdrawal, credits nothing new with its stale count
/// (an earlier design read such a count as ~2^32 new successes). One thread deposits three
/// successes while two withdraw: in every interleaving they get at most ⌊0.5 × 3⌋ retries,
/// and with what is left afterwards, exactly that: each success credited once.
#[test]
fn a_withdrawal_with_a_stale_count_credits_no_phantom_successes() {
    model("stale_count", || {
        let budget = budget(0.5);
        let depositor = {
            let budget = budget.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    budget.deposit();
                }
            })
        };
        let withdrawers: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                thread::spawn(move || usize::from(budget.withdraw()))
            })
            .collect();
        depositor.join().unwrap();
        let granted: usize = withdrawers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(
            granted <= 1,
            "{granted} retries granted for 3 successes x 0.5"
        );
        let rest = drain(&budget);
        assert_eq!(
            granted + rest,
            1,
            "3 successes x 0.5 paid for {granted} concurrent + {rest} later retries"
        );
    });
}

/// Invariant: refunds racing two withdrawals. A call deposits twice and refunds once (one
/// success in all) while two threads withdraw. The withdrawals never get more than the two
/// deposits pay for; once the refund is in, no more than the one success pays for: if the
/// racing withdrawals spent both deposits before the refund, nothing is left after it (the
/// balance is in debt), and otherwise exactly the one retry that is still owed.
#[test]
fn refunds_racing_two_withdrawals_never_pay_for_more_than_the_net_successes() {
    model("refunds_race", || {
        let budget = budget(1.0);
        let calls = {
            let budget = budget.clone();
            thread::spawn(move || {
                budget.deposit();
                budget.deposit();
                budget.refund();
            })
        };
        let withdrawers: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                thread::spawn(move || usize::from(budget.withdraw()))
            })
            .collect();
        calls.join().unwrap();
        let granted: usize = withdrawers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted <= 2, "{granted} retries granted for 2 deposits");
        let rest = drain(&budget);
        assert_eq!(
            granted + rest,
            granted.max(1),
            "1 net success paid for {granted} concurrent + {rest} later retries"
        );
    });
}

// ===== the failure streak =====

/// A budget with ample credit (ten successes at ratio 1, all deposited before the threads
/// start) and a failure streak of `streak`.
fn streaked(streak: u32) -> RetryBudget {
    let budget = RetryBudget::builder()
        .ratio(1.0)
        .min_per_sec(0)
        .failure_streak(streak)
        .clock(Clock::from(ManualClock::new()))
        .build()
        .unwrap();
    for _ in 0..10 {
        budget.deposit();
    }
    budget
}

/// Invariant: with no deposit while they run, withdrawals racing on three threads get at
/// most `failure_streak` retries in all, though the credit pays for ten, and though each of
/// them may read the counts before any of the others settles. (Two withdrawals that read the
/// same total must not each find it new.)
#[test]
fn racing_withdrawals_without_a_success_get_at_most_failure_streak_retries() {
    model("streak_without_success", || {
        let budget = streaked(1);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let budget = budget.clone();
                thread::spawn(move || usize::from(budget.withdraw()))
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            granted, 1,
            "{granted} retries granted in one failure streak of 1"
        );
        assert_eq!(drain(&budget), 0, "the streak ended without a success");
    });
}

/// Invariant: a success deposited while two threads withdraw twice each starts at most one
/// new streak: at most `failure_streak` × 2 retries in all, and once every thread is done the
/// streak is over until the next success (which then starts one).
#[test]
fn a_racing_success_starts_at_most_one_new_streak() {
    model("streak_with_a_success", || {
        let budget = streaked(1);
        let withdrawer = |budget: RetryBudget| {
            thread::spawn(move || usize::from(budget.withdraw()) + usize::from(budget.withdraw()))
        };
        let a = withdrawer(budget.clone());
        let depositor = {
            let budget = budget.clone();
            thread::spawn(move || budget.deposit())
        };
        let b = withdrawer(budget.clone());
        depositor.join().unwrap();
        let granted = a.join().unwrap() + b.join().unwrap();
        assert!(
            (1..=2).contains(&granted),
            "{granted} retries granted for two streaks of 1"
        );
        // Every deposit is visible now: at most one more streak, started by a withdrawal
        // that had not yet seen the racing success, never two.
        let later = drain(&budget) + drain(&budget);
        assert!(
            granted + later <= 2,
            "{granted} + {later} retries for two streaks"
        );
        budget.deposit();
        assert_eq!(drain(&budget), 1, "a new success starts a new streak");
    });
}
