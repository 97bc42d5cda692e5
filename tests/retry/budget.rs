//! The retry budget under stress: random schedules checked against the true sliding window,
//! and real threads racing.
//!
//! # Against the true window
//!
//! Deposits read no clock, so the budget never knows when a success was made; the test does.
//! Over random schedules of deposits, clock steps and withdrawals, every retry a budget grants
//! (ratio 1, no floor) must be paid for by its own success made less than one period before
//! it: no success pays after its period, however often or rarely the budget is asked.
//!
//! # The failure streak
//!
//! Over random schedules of deposits, clock steps and withdrawals, a budget never grants more
//! than `failure_streak` retries between two successes, whatever its credit and floor; and
//! with ample credit it grants exactly that many, so the streak refuses nothing it should not.
//!
//! # Real threads
//!
//! Two threads deposit in bulk while two others withdraw,
//! for a bounded number of operations. Time never moves (a `ManualClock` nobody advances) and
//! there is no floor, so every retry granted must be paid for by a deposit: in all,
//! `granted <= ratio × deposits`.
//!
//! The two depositing threads try to share one deposit stripe, as two threads do whenever
//! more than [`STRIPES`] threads deposit (they usually do; other tests of this binary take
//! thread numbers too, so it is not guaranteed, and the bound is asserted either way). Their plain stores then overwrite each other's
//! increments: when one of them is descheduled between its load and its store, the stripe
//! steps *back* by everything the other deposited meanwhile (a whole time slice's worth, far
//! more than 65,536). A withdrawal that reads that count, or one descheduled between reading
//! the count and applying it, sees fewer successes than were already credited; the budget
//! must read that as "nothing new", never as ~2^32 new successes.
//!
//! This is a stress test, not a proof: it finds a race only when the scheduler deschedules a
//! thread at the wrong moment. On a busy 2-core machine it failed on every run against the
//! earlier budget (32-bit wrapping counts: hundreds of thousands of retries granted where 80
//! were allowed), with the shared stripe and without it. `tests/loom/budget.rs` checks the
//! interleavings exhaustively, on a small scale.
#![cfg(not(seawall_loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;

use seawall::clock::{Clock, ManualClock};
use seawall::retry::{RetryBudget, STRIPES};

/// Deposits made by each of the two depositing threads.
const DEPOSITS_PER_THREAD: u64 = 4_000_000;
/// At most this many withdrawals per withdrawing thread (they stop once deposits are done).
const MAX_WITHDRAWALS_PER_THREAD: u64 = 2_000_000;

/// Thread numbers (which pick the stripe) are handed out round-robin, process-wide, the first
/// time a thread asks: the tests of this file take turns, so that they do not take numbers
/// while one of them lines two threads up. (Other modules' tests still may.)
static TURN: Mutex<()> = Mutex::new(());

fn budget(ratio: f64) -> RetryBudget {
    RetryBudget::builder()
        .ratio(ratio)
        .min_per_sec(0)
        .clock(Clock::from(ManualClock::new()))
        .build()
        .unwrap()
}

/// A thread that takes its stripe with one deposit, waits for `start`, then deposits the rest.
fn depositor<'scope>(
    s: &'scope thread::Scope<'scope, '_>,
    budget: &RetryBudget,
    took_stripe: &'scope Barrier,
    start: &'scope Barrier,
) -> thread::ScopedJoinHandle<'scope, u64> {
    let budget = budget.clone();
    s.spawn(move || {
        budget.deposit();
        took_stripe.wait();
        start.wait();
        for _ in 1..DEPOSITS_PER_THREAD {
            budget.deposit();
        }
        DEPOSITS_PER_THREAD
    })
}

/// Runs the four threads; returns (deposits made, retries granted in all: the concurrent
/// withdrawals plus a final sequential drain).
fn deposit_while_withdrawing(ratio: f64) -> (u64, u64) {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let budget = budget(ratio);
    let (a_took, b_took, start) = (Barrier::new(2), Barrier::new(2), Barrier::new(4));
    let deposits_done = AtomicBool::new(false);
    let (deposited, granted) = thread::scope(|s| {
        // Depositor A takes the next stripe, STRIPES - 1 threads take the ones after it, and
        // depositor B wraps around onto A's.
        let a = depositor(s, &budget, &a_took, &start);
        a_took.wait();
        for _ in 1..STRIPES {
            let scratch = self::budget(1.0);
            thread::scope(|t| {
                t.spawn(|| scratch.deposit());
            });
        }
        let b = depositor(s, &budget, &b_took, &start);
        b_took.wait();

        let withdrawers: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                let (start, done) = (&start, &deposits_done);
                s.spawn(move || {
                    start.wait();
                    let mut granted = 0u64;
                    for _ in 0..MAX_WITHDRAWALS_PER_THREAD {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                        granted += u64::from(budget.withdraw());
                    }
                    granted
                })
            })
            .collect();
        let deposited = a.join().unwrap() + b.join().unwrap();
        deposits_done.store(true, Ordering::Relaxed);
        let granted: u64 = withdrawers.into_iter().map(|w| w.join().unwrap()).sum();
        (deposited, granted)
    });
    // Whatever the racing withdrawals left, spent now: the total is what the deposits paid for.
    let mut rest = 0u64;
    while budget.withdraw() {
        rest += 1;
    }
    (deposited, granted + rest)
}

/// The bound; and, so that a budget refusing everything fails too, at least one retry paid
/// for (that needs 1/ratio of the 8 million deposits credited; lost increments lose far less).
fn assert_within_the_budget(ratio: f64) {
    let (deposited, granted) = deposit_while_withdrawing(ratio);
    // `ratio * deposited` in f64, rounded down: the budget compares the same product (of the
    // successes it has credited, never more than those deposited) with whole retries, so no
    // slack for rounding is needed.
    let bound = (ratio * deposited as f64).floor() as u64;
    eprintln!("ratio {ratio}: {granted} retries granted for {deposited} deposits (bound {bound})");
    assert!(
        granted <= bound,
        "{granted} retries granted for {deposited} successes at ratio {ratio}: at most {bound}"
    );
    assert!(granted > 0, "{deposited} successes paid for no retry");
}

#[test]
fn granted_retries_never_exceed_a_tiny_ratio_of_racing_deposits() {
    assert_within_the_budget(1e-5);
}

#[test]
fn granted_retries_never_exceed_a_tenth_of_racing_deposits() {
    assert_within_the_budget(0.1);
}

// ===== against the true window =====

const PERIOD: Duration = Duration::from_secs(1);

/// A budget of ratio 1 and no floor, over [`PERIOD`], with its clock.
fn windowed() -> (RetryBudget, ManualClock) {
    let time = ManualClock::new();
    let budget = RetryBudget::builder()
        .ratio(1.0)
        .min_per_sec(0)
        .period(PERIOD)
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap();
    (budget, time)
}

/// `true` if each grant (in time order) can be paid for by a success of its own made at most
/// one period before it (strictly less). Oldest valid success first: with windows all of one
/// length, that matching succeeds whenever any does.
fn paid_within_the_true_window(successes: &[u64], grants: &[u64]) -> Result<(), String> {
    let period = PERIOD.as_nanos() as u64;
    let mut next = 0;
    for &g in grants {
        while next < successes.len() && successes[next] + period <= g {
            next += 1; // expired unspent
        }
        match successes.get(next) {
            Some(&t) if t <= g => next += 1,
            _ => {
                return Err(format!(
                    "the retry granted at {g} ns has no success within a period"
                ))
            }
        }
    }
    Ok(())
}

/// One step of a schedule: the clock moves, successes come, twins are asked for retries.
#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    successes: u32,
    successes_first: bool,
    /// Retries asked of the twin that is asked often.
    often: u32,
    /// The twin asked rarely is asked once when this is 0.
    rarely: u32,
}

fn step() -> impl Strategy<Value = Step> {
    (0u64..400, 0u32..6, any::<bool>(), 0u32..4, 0u32..15).prop_map(
        |(advance_ms, successes, successes_first, often, rarely)| Step {
            advance_ms,
            successes,
            successes_first,
            often,
            rarely,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The twin asked often and the twin asked rarely may grant differently (a withdrawal
    /// makes the crediting of later successes more timely), but neither grants a retry that
    /// the true sliding window does not pay for.
    #[test]
    fn no_twin_grants_beyond_the_true_sliding_window(
        steps in prop::collection::vec(step(), 1..120)
    ) {
        let (often, often_time) = windowed();
        let (rarely, rarely_time) = windowed();
        let mut successes = Vec::new();
        let (mut often_grants, mut rarely_grants) = (Vec::new(), Vec::new());
        let ask = |budget: &RetryBudget, time: &ManualClock, n: u32, grants: &mut Vec<u64>| {
            for _ in 0..n {
                if budget.withdraw() {
                    grants.push(time.now_nanos());
                }
            }
        };
        for s in &steps {
            often_time.advance(Duration::from_millis(s.advance_ms));
            rarely_time.advance(Duration::from_millis(s.advance_ms));
            let now = often_time.now_nanos();
            let deposit = |successes: &mut Vec<u64>| {
                for _ in 0..s.successes {
                    often.deposit();
                    rarely.deposit();
                    successes.push(now);
                }
            };
            if s.successes_first {
                deposit(&mut successes);
            }
            ask(&often, &often_time, s.often, &mut often_grants);
            ask(&rarely, &rarely_time, u32::from(s.rarely == 0) * 3, &mut rarely_grants);
            if !s.successes_first {
                deposit(&mut successes);
            }
        }
        paid_within_the_true_window(&successes, &often_grants)
            .map_err(|e| TestCaseError::fail(format!("asked often: {e}")))?;
        paid_within_the_true_window(&successes, &rarely_grants)
            .map_err(|e| TestCaseError::fail(format!("asked rarely: {e}")))?;
    }
}

/// One step of a streak schedule: the clock moves, maybe successes come, retries are asked.
fn streak_step() -> impl Strategy<Value = (u64, u32, u32)> {
    // Successes in a third of the steps: streaks of every length.
    (
        0u64..300,
        prop_oneof![2 => Just(0u32), 1 => 1u32..4],
        0u32..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_more_than_failure_streak_retries_between_two_successes(
        streak in 1u32..5,
        ratio in prop_oneof![Just(0.1), Just(1.0), Just(1000.0)],
        floor in prop_oneof![Just(0u32), Just(10), Just(100_000)],
        steps in prop::collection::vec(streak_step(), 1..100)
    ) {
        prop_assume!(ratio > 0.0 || floor > 0);
        let time = ManualClock::new();
        let budget = RetryBudget::builder()
            .ratio(ratio)
            .min_per_sec(floor)
            .failure_streak(streak)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        let mut since_success = 0;
        for (advance_ms, successes, asks) in steps {
            time.advance(Duration::from_millis(advance_ms));
            for _ in 0..successes {
                budget.deposit();
            }
            if successes > 0 {
                since_success = 0;
            }
            for _ in 0..asks {
                since_success += u32::from(budget.withdraw());
                prop_assert!(
                    since_success <= streak,
                    "{since_success} retries granted since the last success, streak {streak}"
                );
            }
        }
    }

    #[test]
    fn with_ample_credit_each_success_allows_a_whole_streak(
        streak in 1u32..5,
        steps in prop::collection::vec((1u32..4, 0u32..8), 1..50)
    ) {
        // Time stands still and each step deposits: credit never runs out (1000 per success).
        let budget = RetryBudget::builder()
            .ratio(1000.0)
            .min_per_sec(0)
            .failure_streak(streak)
            .clock(Clock::from(ManualClock::new()))
            .build()
            .unwrap();
        for (successes, asks) in steps {
            for _ in 0..successes {
                budget.deposit();
            }
            let granted = (0..asks).filter(|_| budget.withdraw()).count() as u32;
            prop_assert_eq!(granted, asks.min(streak));
        }
    }
}

#[test]
fn the_true_window_check_catches_a_success_paying_after_its_period() {
    let second = PERIOD.as_nanos() as u64;
    assert!(paid_within_the_true_window(&[0, 0], &[0, second - 1]).is_ok());
    assert!(paid_within_the_true_window(&[0], &[second]).is_err());
    assert!(paid_within_the_true_window(&[0], &[0, 1]).is_err());
    assert!(paid_within_the_true_window(&[5], &[4]).is_err());
}

// ===== the documented bound, everything racing =====

/// The documented bound `G <= ratio × D + min_per_sec × (T + 1)` under 4 threads on 2 cores:
/// two deposit (and now and then refund), two withdraw and move the clock in odd steps of up
/// to 3 ms over a 10 ms period. 0.7 s per setting.
#[test]
fn the_bound_holds_with_deposits_refunds_withdrawals_and_time_racing() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    for &(ratio, floor) in &[(0.01, 0u32), (0.5, 3), (1000.0, 0)] {
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(ratio)
            .min_per_sec(floor)
            .period(Duration::from_millis(10))
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        let (deposits, refunds, granted) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let stop = AtomicBool::new(false);
        thread::scope(|s| {
            for t in 0..4 {
                let (b, time) = (b.clone(), time.clone());
                let (deposits, refunds, granted, stop) = (&deposits, &refunds, &granted, &stop);
                s.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        if t % 2 == 0 {
                            b.deposit();
                            deposits.fetch_add(1, Ordering::Relaxed);
                            if i.is_multiple_of(97) {
                                b.refund();
                                refunds.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            if b.withdraw() {
                                granted.fetch_add(1, Ordering::Relaxed);
                            }
                            if i.is_multiple_of(13) {
                                time.advance(Duration::from_nanos(i % 3_000_001));
                            }
                        }
                    }
                });
            }
            thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::Relaxed);
        });
        // Refunds only lower the bound; counted with all deposits (a safe overestimate).
        let d = deposits.load(Ordering::Relaxed) as f64;
        let g = granted.load(Ordering::Relaxed) as f64;
        let t = time.elapsed().as_secs_f64();
        let bound = ratio * d + f64::from(floor) * (t + 1.0);
        assert!(
            g <= bound + 1.0,
            "ratio {ratio}: granted {g} > bound {bound} (D {d}, T {t}, refunds {})",
            refunds.load(Ordering::Relaxed)
        );
    }
}
