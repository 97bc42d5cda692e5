//! Adversarial review of `src/retry/budget.rs`.
//!
//! The tests named `defect_*` fail on the reviewed code and show a broken promise; the tests
//! named `probe_*` pass and record what was tried and held.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seawall::clock::{Clock, ManualClock};
use seawall::retry::RetryBudget;
use seawall::ConfigError;

fn budget(ratio: f64, floor: u32, period: Duration) -> (RetryBudget, ManualClock) {
    let time = ManualClock::new();
    let b = RetryBudget::builder()
        .ratio(ratio)
        .min_per_sec(floor)
        .period(period)
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap();
    (b, time)
}

fn drain(b: &RetryBudget) -> u64 {
    let mut n = 0;
    while b.withdraw() {
        n += 1;
        assert!(n < 100_000_000, "runaway");
    }
    n
}

const SEC: Duration = Duration::from_secs(1);

// ===== defects =====

/// Module docs: "A success pays for retries during one `period` and never again";
/// DESIGN (Storms): "no credit banked in healthy times may be spent as a burst at the onset
/// of an outage". A burst of successes followed by a quiet spell is still paid for more than
/// a period later, because a withdrawal spreads every deposit since the previous withdrawal
/// evenly over the gap, moving old successes forward in time.
#[test]
fn defect_successes_older_than_the_period_pay_at_the_onset_of_an_outage() {
    let (b, time) = budget(0.2, 0, SEC);
    // A healthy burst: 10,000 successes at t = 0 ...
    for _ in 0..10_000 {
        b.deposit();
    }
    // ... then 1.05 s without a call (every success is now older than the 1 s period) ...
    time.advance(Duration::from_millis(1050));
    // ... then the dependency falls over: every call fails and asks for a retry.
    let granted = drain(&b);
    assert_eq!(
        granted, 0,
        "{granted} retries granted from successes that were all more than one period old"
    );
}

/// Same root cause, the shape issue 11 called out ("its fading depends on how often it is
/// read"): a withdrawal that is *refused* (grants nothing, so "reads" the budget) changes
/// what the budget grants later. Two twin budgets see the same deposits at the same times;
/// one had a refused withdrawal half a second before.
#[test]
fn defect_a_refused_withdrawal_changes_what_is_granted_later() {
    let (read, read_time) = budget(1.0, 0, SEC);
    let (unread, unread_time) = budget(1.0, 0, SEC);
    read_time.advance(Duration::from_millis(500));
    unread_time.advance(Duration::from_millis(500));
    assert!(!read.withdraw(), "nothing to grant yet"); // only a read, in effect
    for b in [&read, &unread] {
        for _ in 0..100 {
            b.deposit();
        }
    }
    // 1.2 s later: the 100 successes are 1.2 periods old; neither twin should pay.
    read_time.advance(Duration::from_millis(1200));
    unread_time.advance(Duration::from_millis(1200));
    let (r, u) = (drain(&read), drain(&unread));
    assert_eq!(
        (r, u),
        (0, 0),
        "successes 1.2 periods old paid (read twin {r}, unread twin {u}); \
         and a refused withdrawal changed the later grant"
    );
}

/// Builder doc: a success pays "for one period after it, less at most a tenth". Periods
/// under 10 ns get 1 ns buckets (`max(1)`), so the window is 10 ns whatever the period: a
/// 1 ns period pays for 10 periods. Issue 11 demands such windows be "refused by the builder
/// or honoured exactly".
#[test]
fn defect_a_period_below_ten_nanoseconds_is_stretched_to_ten() {
    let (b, time) = budget(1.0, 0, Duration::from_nanos(1));
    for _ in 0..10 {
        b.deposit();
    }
    assert!(b.withdraw()); // credits the 10 successes at t = 0
    time.advance(Duration::from_nanos(5)); // five periods later
    assert!(
        !b.withdraw(),
        "a success paid five periods after it was made (window stretched to 10 ns)"
    );
}

/// DESIGN (Retry: Budget, Storms): "a floor kept as a reserve that the first failures spend
/// at once lets a burst of retries through just when the dependency falls over". The floor
/// starts full and refills to one whole second's worth in any quiet second: exactly such a
/// reserve. (Design conflict rather than a broken module doc: the module docs state the
/// burst; DESIGN forbids it.)
#[test]
fn defect_the_floor_is_a_reserve_spent_at_once_at_the_onset() {
    let (b, time) = budget(0.2, 1000, SEC);
    time.advance(Duration::from_secs(60)); // healthy and quiet
    let at_once = drain(&b); // the outage begins: all in the same nanosecond
    assert!(
        at_once <= 1,
        "{at_once} floor retries granted in the same instant"
    );
}

// ===== probes that held =====

#[test]
fn probe_extreme_settings_neither_panic_nor_produce_nan() {
    let periods = [
        Duration::from_nanos(1),
        Duration::from_nanos(7),
        Duration::from_secs(10 * 365 * 86_400),
        Duration::MAX,
    ];
    for period in periods {
        for (ratio, floor) in [
            (1000.0, u32::MAX),
            (0.0, u32::MAX),
            (1000.0, 0),
            (1e-300, 0),
        ] {
            let (b, time) = budget(ratio, floor, period);
            for step in [0u64, 1, 3, 999_999_999, 1 << 40, u64::MAX / 3, u64::MAX] {
                for _ in 0..50 {
                    b.deposit();
                    b.refund();
                    b.refund();
                }
                time.advance(Duration::from_nanos(step));
                let bal = b.balance();
                assert!(
                    bal.is_finite() && bal >= 0.0,
                    "{period:?} {ratio} {floor}: {bal}"
                );
                let w = b.withdraw();
                assert!(!w || bal >= 1.0, "withdraw granted with balance {bal}");
                assert!(w || bal < 1.0, "withdraw refused with balance {bal}");
            }
        }
    }
}

#[test]
fn probe_builder_refuses_with_the_field_named() {
    let cases: [(f64, u32, Duration, &str); 5] = [
        (f64::INFINITY, 1, SEC, "ratio"),
        (f64::NAN, 1, SEC, "ratio"),
        (1000.1, 1, SEC, "ratio"),
        (0.0, 0, SEC, "min_per_sec"),
        (0.2, 1, Duration::ZERO, "period"),
    ];
    for (ratio, floor, period, field) in cases {
        let e: ConfigError = RetryBudget::builder()
            .ratio(ratio)
            .min_per_sec(floor)
            .period(period)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), field);
    }
}

/// The documented bound `G <= ratio x D + min_per_sec x (T + 1)` under 4 threads (more than
/// 2 cores; depositors share stripes with each other across 40 threads' worth of stripe
/// indices), refunds racing, and a clock that moves in odd steps. A few seconds at most.
#[test]
fn probe_bound_holds_under_concurrent_stress() {
    for &(ratio, floor) in &[(0.01, 0u32), (0.5, 3), (1000.0, 0)] {
        let (b, time) = budget(ratio, floor, Duration::from_millis(10));
        // Burn stripe indices so the workers land on shared stripes.
        for _ in 0..20 {
            std::thread::spawn(|| {}).join().unwrap();
        }
        let deposits = Arc::new(AtomicU64::new(0));
        let granted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (b, deposits, granted, stop, time) = (
                    b.clone(),
                    deposits.clone(),
                    granted.clone(),
                    stop.clone(),
                    time.clone(),
                );
                s.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        if t % 2 == 0 {
                            b.deposit();
                            deposits.fetch_add(1, Ordering::Relaxed);
                            if i % 97 == 0 {
                                b.refund();
                            }
                        } else {
                            if b.withdraw() {
                                granted.fetch_add(1, Ordering::Relaxed);
                            }
                            if i % 13 == 0 {
                                time.advance(Duration::from_nanos(i % 3_000_001));
                            }
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::Relaxed);
        });
        let _ = started;
        let d = deposits.load(Ordering::Relaxed) as f64;
        let g = granted.load(Ordering::Relaxed) as f64;
        let t = time.elapsed().as_secs_f64();
        let bound = ratio * d + f64::from(floor) * (t + 1.0);
        assert!(
            g <= bound + 1.0,
            "ratio {ratio}: granted {g} > bound {bound} (D {d}, T {t})"
        );
    }
}
