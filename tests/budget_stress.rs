//! The retry budget under real threads: two threads deposit in bulk while two others withdraw,
//! for a bounded number of operations. Time never moves (a `ManualClock` nobody advances) and
//! there is no floor, so every retry granted must be paid for by a deposit: in all,
//! `granted <= ratio × deposits`.
//!
//! The two depositing threads share one deposit stripe on purpose, as two threads do whenever
//! more than [`STRIPES`] threads deposit. Their plain stores then overwrite each other's
//! increments: when one of them is descheduled between its load and its store, the stripe
//! steps *back* by everything the other deposited meanwhile (a whole time slice's worth, far
//! more than 65,536). A withdrawal that reads that count, or one descheduled between reading
//! the count and applying it, sees fewer successes than were already credited; the budget
//! must read that as "nothing new", never as ~2^32 new successes.
//!
//! This is a stress test, not a proof: it finds a race only when the scheduler deschedules a
//! thread at the wrong moment. On a busy 2-core machine it failed on every run against the
//! earlier budget (32-bit wrapping counts: hundreds of thousands of retries granted where 80
//! were allowed), with the shared stripe and without it. `tests/loom_budget.rs` checks the
//! interleavings exhaustively, on a small scale.
#![cfg(not(seawall_loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;

use seawall::clock::{Clock, ManualClock};
use seawall::retry::{RetryBudget, STRIPES};

/// Deposits made by each of the two depositing threads.
const DEPOSITS_PER_THREAD: u64 = 4_000_000;
/// At most this many withdrawals per withdrawing thread (they stop once deposits are done).
const MAX_WITHDRAWALS_PER_THREAD: u64 = 2_000_000;

/// Stripes are handed out round-robin, process-wide, at a thread's first deposit: the tests of
/// this file take turns, so that no other thread takes a stripe while one lines two up.
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
