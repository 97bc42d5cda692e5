//! The retry-storm simulation shared by `examples/storm.rs` and `tests/storm.rs`: many
//! callers, one sick dependency, open-loop arrivals, on a test clock.
//!
//! A discrete-event loop, not tokio tasks: every request arrives on its own schedule (request
//! `i` at `i / rate` seconds, whatever the dependency does), each attempt takes a fixed time
//! and succeeds or fails by the scenario, and each failure asks the strategy for a retry. The
//! loop drives seawall's real [`RetryBudget`] and real [`Backoff`] on a [`ManualClock`] moved
//! to each event's time, with one seeded rng for the jitter and the failures: a run is a pure
//! function of its [`Scenario`] and [`Strategy`]. All callers share one retry policy and its
//! budget, as the callers of one service do. `tests/storm.rs` checks against seawall's real
//! `Retry` on paused tokio time that the loop makes the same decisions.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use seawall::clock::{Clock, ManualClock};
use seawall::retry::{Backoff, RetryBudget};
use seawall::throttle::{AdaptiveThrottle, Permit};

/// The width of the intervals load is counted in.
pub const BIN: Duration = Duration::from_millis(100);
const BIN_NANOS: u64 = 100_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Retries per request, for every strategy that retries (the retry policy's default).
pub const MAX_RETRIES: u32 = 3;

/// How the dependency fails during the outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Every call fails.
    Total,
    /// Each call fails independently with this probability.
    Partial(f64),
}

/// One run: healthy traffic, then the outage, then healthy again.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Requests per second, arriving evenly spaced (open loop).
    pub rate: u32,
    /// Healthy traffic before the outage.
    pub healthy: Duration,
    /// How long the dependency is sick.
    pub outage: Duration,
    /// Healthy traffic after it (arrivals stop at its end; the run goes on until every
    /// request has ended).
    pub after: Duration,
    /// How it is sick.
    pub failure: Failure,
    /// How long a successful attempt takes.
    pub success_latency: Duration,
    /// How long a failed attempt takes (failures are often faster: a refused connection).
    pub failure_latency: Duration,
    /// The rng's seed (jitter and partial failures).
    pub seed: u64,
    /// The clients (processes) the requests are spread over, round-robin, each with a
    /// retry policy and budget of its own: 1 by default, every caller sharing one budget.
    pub clients: u32,
}

impl Scenario {
    /// 2 s healthy, a 4 s outage, 3 s healthy; successes take 20 ms, failures 5 ms.
    pub fn new(rate: u32, failure: Failure) -> Self {
        Scenario {
            rate,
            healthy: Duration::from_secs(2),
            outage: Duration::from_secs(4),
            after: Duration::from_secs(3),
            failure,
            success_latency: Duration::from_millis(20),
            failure_latency: Duration::from_millis(5),
            seed: 15,
            clients: 1,
        }
    }

    fn outage_start(&self) -> u64 {
        nanos(self.healthy)
    }

    fn outage_end(&self) -> u64 {
        nanos(self.healthy + self.outage)
    }
}

/// What decides whether a failed attempt is retried, and when.
#[derive(Debug, Clone, Copy)]
pub enum Strategy {
    /// Never.
    NoRetry,
    /// At once, up to [`MAX_RETRIES`].
    Naive,
    /// After the default backoff (exponential from 500 ms, full jitter), no budget.
    Backoff,
    /// The default backoff and a budget modelled on tower's `TpsBudget` defaults (10 s
    /// window, 10 retries a second of reserve, 20 % of successes), see [`TpsModel`].
    TpsBudget,
    /// The default backoff and seawall's [`RetryBudget`] with its defaults: seawall's
    /// default retry policy.
    Seawall,
    /// The default backoff and a [`RetryBudget`] built from this builder.
    SeawallWith(fn() -> seawall::retry::BudgetBuilder),
    /// Seawall's default retry policy (its budget) with an [`AdaptiveThrottle`] with its
    /// defaults (`k` = 2, a 2-minute window) inside it: every attempt, first attempts too,
    /// may be shed locally; a shed attempt ends its request (a refusal is not retried).
    SeawallThrottled,
}

impl Strategy {
    /// The strategies of the comparison, in the table's order.
    pub const ALL: [Strategy; 6] = [
        Strategy::NoRetry,
        Strategy::Naive,
        Strategy::Backoff,
        Strategy::TpsBudget,
        Strategy::Seawall,
        Strategy::SeawallThrottled,
    ];

    /// Its name in the table and the plot.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::NoRetry => "no retry",
            Strategy::Naive => "naive retry",
            Strategy::Backoff => "backoff + jitter",
            Strategy::TpsBudget => "TpsBudget-style",
            Strategy::Seawall => "seawall budget",
            Strategy::SeawallWith(_) => "seawall budget, custom settings",
            Strategy::SeawallThrottled => "seawall budget + throttle",
        }
    }
}

/// A small model of tower's `TpsBudget`, for the comparison: a window of `ttl` in ten slots,
/// each success adding `percent` of a retry, each retry taking one; a reserve of
/// `min_per_sec × ttl` retries that expires with the window, never spent down for good.
pub struct TpsModel {
    time: ManualClock,
    slot_nanos: u64,
    slots: [f64; 10],
    /// The slot number `slots` were last brought to.
    at: u64,
    reserve: f64,
    percent: f64,
}

impl TpsModel {
    /// tower's defaults: 10 s, 10 a second, 20 %.
    pub fn new(time: ManualClock) -> Self {
        TpsModel {
            slot_nanos: NANOS_PER_SEC,
            slots: [0.0; 10],
            at: time.now_nanos() / NANOS_PER_SEC,
            time,
            reserve: 10.0 * 10.0,
            percent: 0.2,
        }
    }

    fn roll(&mut self) {
        let now = self.time.now_nanos() / self.slot_nanos;
        for n in (self.at + 1)..=now.min(self.at + 10) {
            self.slots[(n % 10) as usize] = 0.0;
        }
        self.at = self.at.max(now);
    }

    /// A success.
    pub fn deposit(&mut self) {
        self.roll();
        self.slots[(self.at % 10) as usize] += self.percent;
    }

    /// A retry, if the window and the reserve allow one.
    pub fn withdraw(&mut self) -> bool {
        self.roll();
        let balance: f64 = self.reserve + self.slots.iter().sum::<f64>();
        if balance < 1.0 {
            return false;
        }
        self.slots[(self.at % 10) as usize] -= 1.0;
        true
    }
}

enum Gate {
    Always,
    Tps(TpsModel),
    Budget(RetryBudget),
}

impl Gate {
    fn deposit(&mut self) {
        match self {
            Gate::Always => {}
            Gate::Tps(m) => m.deposit(),
            Gate::Budget(b) => b.deposit(),
        }
    }

    fn withdraw(&mut self) -> bool {
        match self {
            Gate::Always => true,
            Gate::Tps(m) => m.withdraw(),
            Gate::Budget(b) => b.withdraw(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Request `i` arrives and makes its first attempt.
    Arrive(u32),
    /// Request `i` makes attempt `n` (1 for the first retry).
    Send(u32, u32),
    /// Request `i`'s attempt `n` ends.
    End(u32, u32, bool),
}

/// What one run measured. Load is counted when an attempt is sent.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The strategy's name.
    pub strategy: &'static str,
    /// Per [`BIN`] from time zero: first attempts sent (the offered load).
    pub offered: Vec<u32>,
    /// Per [`BIN`]: every attempt sent (the load on the dependency).
    pub load: Vec<u32>,
    /// The bins the outage covers.
    pub outage_bins: std::ops::Range<usize>,
    /// Requests made.
    pub requests: u32,
    /// Requests that ended in success.
    pub succeeded: u32,
    /// Requests whose first attempt failed.
    pub first_failed: u32,
    /// Of those, the ones that ended in success.
    pub recovered: u32,
    /// Retries granted but not yet sent when the outage ended.
    pub queued_at_recovery: u32,
}

impl Outcome {
    /// Attempts over first attempts during the outage.
    pub fn outage_load(&self) -> f64 {
        let r = self.outage_bins.clone();
        let load: u32 = self.load[r.clone()].iter().sum();
        let offered: u32 = self.offered[r].iter().sum();
        f64::from(load) / f64::from(offered.max(1))
    }

    /// The highest load of one [`BIN`] over its offered load, from the outage's start to
    /// the end of the run.
    pub fn peak(&self) -> f64 {
        (self.outage_bins.start..self.load.len())
            .filter(|&i| self.offered[i] > 0)
            .map(|i| f64::from(self.load[i]) / f64::from(self.offered[i]))
            .fold(0.0, f64::max)
    }

    /// Requests that succeeded, as a share of all.
    pub fn success_share(&self) -> f64 {
        f64::from(self.succeeded) / f64::from(self.requests.max(1))
    }

    /// Requests whose first attempt failed that ended in success, as a share of those.
    pub fn recovered_share(&self) -> f64 {
        f64::from(self.recovered) / f64::from(self.first_failed.max(1))
    }

    /// From the outage's end to the end of the last [`BIN`] whose load is off its offered load
    /// by more than 5 % (and one call): retries above it, or calls shed below it by a
    /// throttle. How long the load takes to return to normal.
    pub fn time_to_normal(&self) -> Duration {
        let end = self.outage_bins.end;
        let last = (end..self.load.len()).rev().find(|&i| {
            // Retries above the offered load, or calls shed below it (a throttle).
            let off = self.load[i].abs_diff(self.offered[i]);
            off > 1 && f64::from(off) > 0.05 * f64::from(self.offered[i])
        });
        last.map_or(Duration::ZERO, |i| BIN * (i + 1 - end) as u32)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `strategy` through `scenario`.
pub fn run(scenario: &Scenario, strategy: Strategy) -> Outcome {
    let time = ManualClock::new();
    let clock = Clock::from(time.clone());
    let gate = || match strategy {
        Strategy::NoRetry | Strategy::Naive | Strategy::Backoff => Gate::Always,
        Strategy::TpsBudget => Gate::Tps(TpsModel::new(time.clone())),
        Strategy::Seawall | Strategy::SeawallThrottled => Gate::Budget(
            RetryBudget::builder()
                .clock(clock.clone())
                .build()
                .expect("the default budget"),
        ),
        Strategy::SeawallWith(builder) => Gate::Budget(
            builder()
                .clock(clock.clone())
                .build()
                .expect("a valid budget"),
        ),
    };
    let mut gates: Vec<Gate> = (0..scenario.clients.max(1)).map(|_| gate()).collect();
    let clients = gates.len();
    // One throttle per client, seeded: its draws are part of the run's pure function.
    let throttles: Vec<AdaptiveThrottle> = match strategy {
        Strategy::SeawallThrottled => (0..clients)
            .map(|c| {
                AdaptiveThrottle::builder()
                    .clock(time.clone())
                    .seed(scenario.seed.wrapping_add(c as u64))
                    .build()
                    .expect("the default throttle")
            })
            .collect(),
        _ => Vec::new(),
    };
    let retries = if matches!(strategy, Strategy::NoRetry) {
        0
    } else {
        MAX_RETRIES
    };
    let backoff = Backoff::default();
    let mut rng = SmallRng::seed_from_u64(scenario.seed);

    let requests = u32::try_from(
        u128::from(scenario.rate)
            * (scenario.healthy + scenario.outage + scenario.after).as_nanos()
            / u128::from(NANOS_PER_SEC),
    )
    .expect("a run of fewer than 2^32 requests");
    let arrival = |i: u32| u64::from(i) * NANOS_PER_SEC / u64::from(scenario.rate);
    let (start, end) = (scenario.outage_start(), scenario.outage_end());

    let mut queue = BinaryHeap::new();
    let mut first_failed = vec![false; requests as usize];
    // The throttle's permit of each request's attempt in flight.
    let mut permits: Vec<Option<Permit>> = (0..requests).map(|_| None).collect();
    let mut previous_delay = vec![Duration::ZERO; requests as usize];
    let mut out = Outcome {
        strategy: strategy.name(),
        offered: Vec::new(),
        load: Vec::new(),
        outage_bins: (start / BIN_NANOS) as usize..end.div_ceil(BIN_NANOS) as usize,
        requests,
        succeeded: 0,
        first_failed: 0,
        recovered: 0,
        queued_at_recovery: 0,
    };
    let mut counted_queue = false;
    if requests > 0 {
        queue.push(Reverse((arrival(0), Event::Arrive(0))));
    }
    let mut steps = 0u64;
    while let Some(Reverse((at, event))) = queue.pop() {
        steps += 1;
        assert!(steps < 100_000_000, "the simulation does not end");
        let now = time.now_nanos();
        if at > now {
            if !counted_queue && at >= end {
                counted_queue = true;
                out.queued_at_recovery = queue
                    .iter()
                    .filter(|Reverse((t, e))| *t >= end && matches!(e, Event::Send(..)))
                    .count() as u32
                    + u32::from(matches!(event, Event::Send(..)));
            }
            time.advance(Duration::from_nanos(at - now));
        }
        let (i, attempt) = match event {
            Event::Arrive(i) => {
                if i + 1 < requests {
                    queue.push(Reverse((arrival(i + 1), Event::Arrive(i + 1))));
                }
                (i, 0)
            }
            Event::Send(i, n) => (i, n),
            Event::End(i, n, ok) => {
                if let Some(permit) = permits[i as usize].take() {
                    permit.record(if ok {
                        seawall::Outcome::Success
                    } else {
                        seawall::Outcome::Failure
                    });
                }
                if ok {
                    gates[i as usize % clients].deposit();
                    out.succeeded += 1;
                    if first_failed[i as usize] {
                        out.recovered += 1;
                    }
                } else {
                    if n == 0 {
                        first_failed[i as usize] = true;
                        out.first_failed += 1;
                    }
                    let granted = n < retries && gates[i as usize % clients].withdraw();
                    if granted {
                        let delay = if matches!(strategy, Strategy::Naive) {
                            Duration::ZERO
                        } else {
                            backoff.delay(n + 1, previous_delay[i as usize], &mut rng)
                        };
                        previous_delay[i as usize] = delay;
                        queue.push(Reverse((at + nanos(delay), Event::Send(i, n + 1))));
                    }
                }
                continue;
            }
        };
        // An attempt is made now: sent, unless a throttle sheds it.
        let bin = (at / BIN_NANOS) as usize;
        if out.load.len() <= bin {
            out.load.resize(bin + 1, 0);
            out.offered.resize(bin + 1, 0);
        }
        if attempt == 0 {
            out.offered[bin] += 1;
        }
        if let Some(throttle) = throttles.get(i as usize % clients) {
            match throttle.try_acquire() {
                Ok(permit) => permits[i as usize] = Some(permit),
                Err(_) => {
                    // Shed locally: the request ends failed, and a refusal is not retried.
                    if attempt == 0 {
                        first_failed[i as usize] = true;
                        out.first_failed += 1;
                    }
                    continue;
                }
            }
        }
        out.load[bin] += 1;
        let sick = at >= start && at < end;
        let ok = match (sick, scenario.failure) {
            (false, _) => true,
            (true, Failure::Total) => false,
            (true, Failure::Partial(p)) => !rng.random_bool(p),
        };
        let latency = if ok {
            scenario.success_latency
        } else {
            scenario.failure_latency
        };
        queue.push(Reverse((at + nanos(latency), Event::End(i, attempt, ok))));
    }
    out
}

/// The table's header.
pub const HEADER: &str = "| strategy | load in the outage | peak per 100 ms | succeeded | recovered | back to normal |\n|---|---|---|---|---|---|";

/// One row of the table.
pub fn row(o: &Outcome) -> String {
    format!(
        "| {} | {:.2}x | {:.2}x | {:.1} % | {:.1} % | {:.1} s |",
        o.strategy,
        o.outage_load(),
        o.peak(),
        100.0 * o.success_share(),
        100.0 * o.recovered_share(),
        o.time_to_normal().as_secs_f64()
    )
}
