//! Adversarial review of the retry budget (issue 15's redesign): the bounds its module docs
//! state, checked from the outside over random schedules, and the edges around them.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use seawall::clock::{Clock, ManualClock};
use seawall::retry::RetryBudget;

const PERIOD_NANOS: u64 = 1_000_000_000;

fn budget(ratio: f64, floor: u32, streak: u32) -> (RetryBudget, ManualClock) {
    let time = ManualClock::new();
    let b = RetryBudget::builder()
        .ratio(ratio)
        .min_per_sec(floor)
        .failure_streak(streak)
        .clock(Clock::from(time.clone()))
        .build()
        .unwrap();
    (b, time)
}

/// The start of the oldest bucket of the window at `t` (1 s period, ten exact tenths).
fn window_start(t: u64) -> u64 {
    let bucket = (u128::from(t) * 10 / u128::from(PERIOD_NANOS)) as u64;
    let oldest = bucket.saturating_sub(9);
    (u128::from(oldest) * u128::from(PERIOD_NANOS) / 10) as u64
}

/// Random single-threaded schedules of deposits, refunds, withdrawals, balance reads and
/// clock steps (from a nanosecond to days), against the three bounds of the module docs,
/// the window ("a success never pays after its period"), and `balance` against `withdraw`.
#[test]
fn random_schedules_keep_every_stated_bound() {
    let steps = [
        0u64,
        1,
        999,
        37_000_000,
        99_999_999,
        100_000_000,
        100_000_001,
        450_000_000,
        1_000_000_000,
        10_000_000_000,
        86_400_000_000_000,
    ];
    let settings: [(f64, u32, u32); 7] = [
        (0.5, 10, 3),
        (0.5, 0, 3),
        (1.0, 0, u32::MAX),
        (0.2, 1000, 1),
        (1000.0, 3, 2),
        (0.0, 5, 7),
        (0.37, 2, 5),
    ];
    for seed in 0..400u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (ratio, floor, streak) = settings[seed as usize % settings.len()];
        let (b, time) = budget(ratio, floor, streak);
        let cap = f64::from(floor).min(f64::from(streak));
        let (mut deposits, mut grants) = (0u64, 0u64);
        // Times of every deposit and grant (nanoseconds), for the window check.
        let (mut deposit_times, mut grant_times) = (Vec::new(), Vec::new());
        let mut refunds = 0u64;
        // Withdrawals and grants since the last deposit (all deposits are visible: d = 0).
        let (mut asked_since, mut granted_since) = (0u64, 0u64);
        for _ in 0..400 {
            match rng.random_range(0..10) {
                0..=2 => {
                    let n = rng.random_range(1..20);
                    for _ in 0..n {
                        b.deposit();
                        deposit_times.push(time.now_nanos());
                    }
                    deposits += n;
                    asked_since = 0;
                    granted_since = 0;
                }
                3 => {
                    b.refund();
                    refunds += 1;
                }
                4 => {
                    let step = steps[rng.random_range(0..steps.len())];
                    time.advance(Duration::from_nanos(step));
                }
                _ => {
                    let balance = b.balance();
                    assert!(
                        balance.is_finite() && balance >= 0.0,
                        "seed {seed}: {balance}"
                    );
                    let granted = b.withdraw();
                    assert_eq!(
                        granted,
                        balance >= 1.0 - 1e-9,
                        "seed {seed}: balance {balance} but withdraw said {granted}"
                    );
                    asked_since += 1;
                    if granted {
                        grants += 1;
                        granted_since += 1;
                        grant_times.push(time.now_nanos());
                    }
                    // 1. The failure streak.
                    assert!(
                        granted_since <= u64::from(streak),
                        "seed {seed}: {granted_since} grants with no deposit between them"
                    );
                    if asked_since > u64::from(streak) {
                        assert!(!granted, "seed {seed}: granted past the streak");
                    }
                    // 2. The ratio, over the whole life (refunds only lower it).
                    let t = time.now_nanos() as f64 / 1e9;
                    let bound = ratio * deposits as f64 + f64::from(floor) * t + cap;
                    assert!(
                        grants as f64 <= bound + 1e-6,
                        "seed {seed}: {grants} grants > {bound}"
                    );
                    // The window, without floor and refunds: the grants whose time falls in
                    // the window at this grant never exceed ratio x the deposits made in it
                    // (successes are dated early, never late).
                    if granted && floor == 0 && refunds == 0 {
                        let from = window_start(time.now_nanos());
                        let g = grant_times.iter().filter(|&&x| x >= from).count();
                        let d = deposit_times.iter().filter(|&&x| x >= from).count();
                        assert!(
                            g as f64 <= ratio * d as f64 + 1e-6,
                            "seed {seed}: {g} grants in the window, {d} deposits in it"
                        );
                    }
                }
            }
        }
    }
}

#[path = "common/storm_sim.rs"]
mod sim;

/// The storm goals hold for the simulation's latencies (successes 20 ms, failures 5 ms), but
/// the failure streak only sees "no success comes back" once the successes of the calls sent
/// before the onset have drained: for one success latency after it, every fast failure finds
/// a new success, starts a new streak, and draws on the healthy second's credit (0.5 x the
/// rate). With fast failures (a refused connection, a load balancer's 503) and successes of a
/// more usual 200 ms, about `rate x (success - failure latency)` retries go out at the onset.
#[test]
#[ignore = "known limit (storms issue, open): successes in flight at the onset end the streak; see README, Known limits"]
fn a_total_outage_with_slower_successes_still_carries_no_burst() {
    // Measured: 1000/s at 200 ms 101 retries, peak 1.26x; at 500 ms 254, 1.52x; 10,000/s at
    // 500 ms 2482 retries, 1.45x; 100/s at 200 ms 14 retries, 1.30x (outage load stays <= 1.08x).
    for (rate, success_ms) in [(1000, 500), (10_000, 500), (100, 200)] {
        let scenario = sim::Scenario {
            success_latency: Duration::from_millis(success_ms),
            ..sim::Scenario::new(rate, sim::Failure::Total)
        };
        let o = sim::run(&scenario, sim::Strategy::Seawall);
        let retries: u32 = o.load.iter().sum::<u32>() - o.offered.iter().sum::<u32>();
        let ctx = format!(
            "{rate}/s, successes in {success_ms} ms: {retries} retries, {}",
            sim::row(&o)
        );
        assert!(o.outage_load() <= 1.10, "retries added over 10 %: {ctx}");
        assert!(o.peak() <= 1.25, "a 100 ms interval over 1.25x: {ctx}");
    }
}

/// Bound 1 "for all the clones together": a healthy spell of deposits from many threads, then
/// eight threads with clones asking at once, many times, with no success: at most one streak.
#[test]
fn clones_on_many_threads_get_one_streak_in_a_total_outage() {
    for _ in 0..20 {
        let (b, time) = budget(1000.0, u32::MAX, 3);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let b = b.clone();
                s.spawn(move || (0..5_000).for_each(|_| b.deposit()));
            }
        });
        time.advance(Duration::from_millis(10));
        let granted: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (b, time) = (b.clone(), time.clone());
                    s.spawn(move || {
                        (0..5_000)
                            .map(|i| {
                                if i % 100 == 0 {
                                    time.advance(Duration::from_millis(1));
                                }
                                u32::from(b.withdraw())
                            })
                            .sum::<u32>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 3, "{granted} retries granted with no success");
    }
}

/// Withdrawals racing deposits on many threads never overdraw the ratio (floor off).
#[test]
fn racing_threads_never_overdraw_the_ratio() {
    for _ in 0..20 {
        let (b, _time) = budget(0.5, 0, u32::MAX);
        let granted: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let b = b.clone();
                    s.spawn(move || {
                        let mut n = 0;
                        for i in 0..2_000 {
                            if (i + t) % 2 == 0 {
                                b.deposit();
                            }
                            n += u32::from(b.withdraw());
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        // 8 x 1000 successes x 0.5.
        assert!(granted <= 4_000, "{granted}");
    }
}

/// `balance()` is documented as "the retries the budget would allow right now" (and exported
/// as the `resilience.retry.budget.balance` gauge under that description), but it ignores how
/// much of the failure streak is left: 20 successes at 0.5 read as 10 retries, of which 3 are
/// granted; after two grants it still reads 8 while one more is granted.
#[test]
fn balance_is_what_the_budget_would_allow() {
    let (b, _time) = budget(0.5, 0, 3);
    for _ in 0..20 {
        b.deposit();
    }
    assert!(b.withdraw() && b.withdraw());
    let balance = b.balance();
    let mut granted = 0;
    while b.withdraw() {
        granted += 1;
    }
    assert!(
        balance < f64::from(granted) + 1.0,
        "balance() said {balance}, the budget then granted {granted}"
    );
}

/// Bound 2 holds "up to the rounding of `f64` sums, below a billionth of a retry". But a
/// withdrawal grants when the balance is within `ROUNDING` (1e-9) of a token and charges only
/// what there was: the shortfall is forgiven at every grant, so it adds up. With a ratio just
/// under 1 and no floor, every success pays for a whole retry: 10,000 successes, 10,000
/// retries, against a bound of 9,999.99999 (an excess of 5e-6, not below 1e-9; over 1e10
/// successes, 5 whole retries).
#[test]
fn the_rounding_allowance_does_not_add_up() {
    let ratio = 1.0 - 5e-10;
    let (b, _time) = budget(ratio, 0, u32::MAX);
    let mut granted = 0u32;
    for _ in 0..10_000 {
        b.deposit();
        granted += u32::from(b.withdraw());
    }
    let bound = ratio * 10_000.0;
    assert!(
        f64::from(granted) <= bound + 1e-9,
        "{granted} retries granted, bound {bound}"
    );
}

/// The hedge's docs (as corrected by the review): a hedge with a given budget that no one
/// deposits into gets at most `failure_streak` hedges, ever: no success is deposited, so the
/// streak never ends, whatever the floor. Here: a floor of 10 a second, one slow call every
/// 500 ms for a minute (every call hedged after 50 ms, every call succeeding): the floor
/// would pay for all 120 hedges; 3 are sent. With `deposit_successes(true)` the streak ends
/// at every success and the hedges flow.
#[tokio::test(start_paused = true)]
async fn a_hedge_on_a_given_budget_without_deposits_gets_one_streak_ever() {
    use seawall::hedge::Hedge;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

    async fn hedges_in_a_minute(deposit: bool) -> u32 {
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let hedge = Hedge::builder()
            .delay(Duration::from_millis(50))
            .budget(RetryBudget::builder().min_per_sec(10).build().unwrap())
            .deposit_successes(deposit)
            .build()
            .unwrap();
        let mut svc = ServiceBuilder::new()
            .layer(hedge.layer())
            .service(service_fn(move |req: u32| {
                a.fetch_add(1, Ordering::Relaxed);
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, seawall::BoxError>(req)
                }
            }));
        for i in 0..120 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        attempts.load(Ordering::Relaxed) - 120
    }
    assert_eq!(hedges_in_a_minute(false).await, 3);
    let hedges = hedges_in_a_minute(true).await;
    assert!(hedges >= 100, "{hedges} hedges in a minute with deposits");
}
