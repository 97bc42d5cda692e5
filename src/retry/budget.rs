//! The retry budget: retries may add at most a ratio of recent successes, plus a small floor
//! per second. Lock-free; no tower, no async.
//!
//! # How it is kept
//!
//! *Deposits* (one per success) are the hot path: they must cost about nothing and must not
//! make cores fight over a cache line. Each thread writes its own cache-padded stripe, with a
//! plain load and store rather than a read-modify-write (about 2 ns instead of 9 ns on the
//! reference machine; an atomic RMW is a locked instruction). Threads are spread over
//! [`STRIPES`] stripes round-robin; two threads that share a stripe may, rarely, overwrite each
//! other's increment, which loses a success: the budget gets slightly stricter, never looser.
//! Deposits read no clock.
//!
//! The retry layer deposits when a call *succeeds*, never before: a deposit made when a call
//! starts would let every call in flight pay for retries at the very moment the dependency
//! falls over. Its response futures reach the stripes through a `&'static` (the stripes are
//! leaked, 2 KiB per budget), so the deposit needs no reference count. A standalone caller
//! that must deposit early can take a deposit back with [`RetryBudget::refund`].
//!
//! *Withdrawals* (one per retry) do the accounting, in one compare-exchange loop on a single
//! `AtomicU64` holding the balance (in 1/1024 tokens) and the time of the last update (in ms):
//! 1. the banked balance fades linearly over `period`, so successes older than the period no
//!    longer pay for retries (a sliding period without buckets);
//! 2. the successes counted since the last withdrawal are credited at `ratio` each, but only
//!    the share that fell within the last `period` (they are taken as spread evenly over the
//!    time since the last withdrawal);
//! 3. the floor accrues at `min_per_sec`, and only tops the balance up to one second's worth:
//!    it is a rate, not a growing reserve. After a quiet second (and at start) that one
//!    second's worth is there, so the first failures of an outage can spend at most
//!    `min_per_sec` retries (default 10) at once, then the rate applies;
//! 4. a retry takes one token, if there is one.
//!
//! Balance and time-stamp move together in one word. Each success and each refund is applied
//! exactly once: the counts applied so far move forward together in one compare-exchange, so
//! a deposit and its refund are applied by the same withdrawal, and a refunded deposit never
//! pays for a retry (both races were found by the loom models in `tests/loom_budget.rs`).

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{duration_to_nanos, Clock};
use crate::error::ConfigError;
use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// Number of deposit stripes per budget (one cache line each).
pub const STRIPES: usize = 16;

const TOKEN_SCALE: f64 = 1024.0;
const TOKEN_BITS: u32 = 28;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
const TIME_MASK: u64 = (1 << (64 - TOKEN_BITS)) - 1;
const NANOS_PER_MILLI: u64 = 1_000_000;

/// A shared retry budget, in the style of Finagle's and gRPC's.
///
/// Retries may add at most `ratio` (default 20 %) of the successful calls of the last
/// `period` (default 1 s), plus a floor of `min_per_sec` retries per second (default 10) that
/// accrues over time and never banks more than one second's worth. A budget with nothing left
/// refuses the retry; the retry layer then returns the last error wrapped in
/// [`BudgetExhausted`](super::BudgetExhausted).
///
/// Cloning is cheap (an `Arc`) and clones share one balance: give one budget to every retry
/// layer in front of the same dependency. Used alone, call [`deposit`](Self::deposit) on each
/// success and [`withdraw`](Self::withdraw) before each retry:
///
/// ```
/// use seawall::clock::{Clock, ManualClock};
/// use seawall::retry::RetryBudget;
/// use std::time::Duration;
///
/// let time = ManualClock::new();
/// let budget = RetryBudget::builder()
///     .ratio(0.5)
///     .min_per_sec(0)
///     .clock(Clock::from(time.clone()))
///     .build()
///     .expect("valid budget");
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw() && budget.withdraw()); // 4 successes x 0.5
/// assert!(!budget.withdraw());
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

#[repr(align(128))]
struct Stripe(AtomicU64);

/// The deposit stripes of one budget. Leaked on purpose (2 KiB per budget built, never per
/// call), so that a response future can deposit its success through a `&'static` without
/// holding a reference count, at the moment the call *succeeds*.
pub(crate) struct Deposits {
    stripes: [Stripe; STRIPES],
}

impl Deposits {
    /// Records one success: a plain load and store on this thread's stripe (see the module
    /// docs); no clock read, no lock, no read-modify-write.
    #[inline]
    pub(crate) fn deposit(&self) {
        // Relaxed: the count is a heuristic input read by withdrawals; a late or (rarely) lost
        // increment only makes the budget a little stricter for a moment.
        let stripe = &self.stripes[stripe_index() % STRIPES].0;
        stripe.store(
            stripe.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    fn total(&self) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

impl fmt::Debug for Deposits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Deposits")
    }
}

struct Inner {
    deposits: &'static Deposits,
    /// What withdrawals have applied so far, claimed together in one word so that one
    /// withdrawal applies a deposit and its refund alike: successes turned into tokens (high
    /// 32 bits) | refunds taken out (low 32 bits), both cumulative and wrapping.
    claimed: AtomicU64,
    /// Deposits taken back (a cumulative count; written on failure paths only).
    refunds: AtomicU64,
    /// Time of the last update in ms (high bits) | balance in 1/1024 tokens (low bits).
    state: AtomicU64,
    ratio: f64,
    min_per_sec: f64,
    period_ms: f64,
    clock: Clock,
}

#[cfg(not(seawall_loom))]
thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}
#[cfg(not(seawall_loom))]
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

// Under loom: the same round-robin, with loom's thread-locals and a lazily created counter
// (loom's atomics have no `const fn new`), both reset for every execution the model runs, so
// the threads of one model take stripes 0, 1, 2, ... in the order they first deposit.
#[cfg(seawall_loom)]
loom::thread_local! {
    static STRIPE: Cell<usize> = Cell::new(usize::MAX);
}
#[cfg(seawall_loom)]
loom::lazy_static! {
    static ref NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
}

#[inline]
fn stripe_index() -> usize {
    STRIPE
        .try_with(|s| {
            let i = s.get();
            if i != usize::MAX {
                return i;
            }
            // Relaxed: only spreads threads over stripes; any value is correct.
            let i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
            i
        })
        .unwrap_or(0)
}

/// Whether the wrapping count `now` is ahead of the count `seen` already applied. A count read
/// while a racing plain store loses an increment can lag `seen` by a few; anything further
/// "behind" than that is a count that moved a long way ahead (2^31 successes between two
/// withdrawals is six hours at 100k calls/s), not backwards.
fn ahead(now: u32, seen: u32) -> bool {
    const LOST_SLACK: u32 = 1 << 16;
    let by = now.wrapping_sub(seen);
    by != 0 && by < u32::MAX - LOST_SLACK
}

fn pack(time_ms: u64, tokens: f64) -> u64 {
    let t = (tokens * TOKEN_SCALE).clamp(0.0, TOKEN_MASK as f64) as u64;
    ((time_ms & TIME_MASK) << TOKEN_BITS) | t
}

fn unpack(word: u64) -> (u64, f64) {
    (word >> TOKEN_BITS, (word & TOKEN_MASK) as f64 / TOKEN_SCALE)
}

impl RetryBudget {
    /// A builder with the defaults: 20 % of recent successes, 10 retries per second, over 1 s.
    pub fn builder() -> BudgetBuilder {
        BudgetBuilder::default()
    }

    /// Records one success. No clock read, no lock, no read-modify-write (see the module docs).
    #[inline]
    pub fn deposit(&self) {
        self.inner.deposits.deposit();
    }

    /// The deposit stripes, for a response future to deposit into when its call succeeds.
    pub(crate) fn deposits(&self) -> &'static Deposits {
        self.inner.deposits
    }

    /// Takes back one [`deposit`](Self::deposit), for callers that deposit when a call starts
    /// and must cancel it when the call does not succeed. One atomic add. (The retry layer
    /// deposits only on success and never refunds: deposits made at the start of calls that
    /// then fail would pay for retries during the very outage.)
    pub fn refund(&self) {
        // Release: a withdrawal that sees this refund (Acquire) sees the deposit it takes back.
        self.inner.refunds.fetch_add(1, Ordering::Release);
    }

    /// Takes one retry from the budget; `false` when there is none left. Reads the clock once.
    pub fn withdraw(&self) -> bool {
        self.inner.update(1.0)
    }

    /// The retries the budget would allow right now (a fractional balance). Reads the clock.
    pub fn balance(&self) -> f64 {
        let _ = self.inner.update(0.0);
        unpack(self.inner.state.load(Ordering::Acquire)).1
    }
}

impl Inner {
    fn successes(&self) -> u64 {
        self.deposits.total()
    }

    /// Brings the balance up to date and takes `cost` tokens if there are that many.
    fn update(&self, cost: f64) -> bool {
        let now_ms = (self.clock.now_nanos() / NANOS_PER_MILLI) & TIME_MASK;
        // Refunds first, with Acquire: every deposit a refund takes back is then seen too.
        let refunds = self.refunds.load(Ordering::Acquire) as u32;
        let total = self.successes() as u32;
        // Credit and debit are claimed together, so one withdrawal applies both.
        let mut claim = self.claimed.load(Ordering::Acquire);
        let fresh = loop {
            let (c, d) = ((claim >> 32) as u32, claim as u32);
            let nc = if ahead(total, c) { total } else { c };
            let nd = if ahead(refunds, d) { refunds } else { d };
            let next = (u64::from(nc) << 32) | u64::from(nd);
            if next == claim {
                break 0.0;
            }
            match self
                .claimed
                .compare_exchange(claim, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break f64::from(nc.wrapping_sub(c)) - f64::from(nd.wrapping_sub(d)),
                Err(a) => claim = a,
            }
        };
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (last_ms, mut tokens) = unpack(current);
            // A concurrent withdrawal may have stamped a later time than ours: no time passed.
            let elapsed = now_ms.wrapping_sub(last_ms) & TIME_MASK;
            let elapsed = if elapsed > TIME_MASK / 2 { 0 } else { elapsed } as f64;
            tokens *= (1.0 - elapsed / self.period_ms).max(0.0);
            let in_period = if elapsed > self.period_ms {
                self.period_ms / elapsed
            } else {
                1.0
            };
            // Refunds of deposits credited earlier may take the balance below zero: it stops
            // at zero (the floor still accrues).
            tokens = (tokens + self.ratio * fresh * in_period).max(0.0);
            let floor_cap = self.min_per_sec;
            if tokens < floor_cap {
                tokens = (tokens + self.min_per_sec * elapsed / 1000.0).min(floor_cap);
            }
            let granted = tokens >= cost;
            if granted {
                tokens -= cost;
            }
            let stamp = if elapsed > 0.0 { now_ms } else { last_ms };
            let next = pack(stamp, tokens);
            if next == current {
                return granted;
            }
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return granted,
                Err(actual) => current = actual,
            }
        }
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.inner.ratio)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("period_ms", &self.inner.period_ms)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RetryBudget`]; `build()` validates it.
///
/// | setting | default |
/// |---|---|
/// | [`ratio`](Self::ratio) | 0.2 (retries add at most 20 % of recent successes) |
/// | [`min_per_sec`](Self::min_per_sec) | 10 retries per second |
/// | [`period`](Self::period) | 1 s |
/// | [`clock`](Self::clock) | tokio's clock |
#[derive(Debug, Clone)]
#[must_use]
pub struct BudgetBuilder {
    ratio: f64,
    min_per_sec: u32,
    period: Duration,
    clock: Option<Clock>,
}

impl Default for BudgetBuilder {
    fn default() -> Self {
        BudgetBuilder {
            ratio: 0.2,
            min_per_sec: 10,
            period: Duration::from_secs(1),
            clock: None,
        }
    }
}

impl BudgetBuilder {
    /// Retries allowed per recent success (default 0.2). Within `0.0..=1000.0`. The balance
    /// is capped at 262,143 retries (it is packed into 28 bits of 1/1024 tokens).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Retries allowed per second whatever the successes (default 10), so that a client with
    /// little traffic can still retry. Accrues over time; never banks more than one second's
    /// worth. May be zero if `ratio` is not.
    pub fn min_per_sec(mut self, n: u32) -> Self {
        self.min_per_sec = n;
        self
    }

    /// How long a success keeps paying for retries (default 1 s; fades linearly). Longer
    /// periods smooth the budget but let a larger burst of retries through when a healthy
    /// dependency falls over: at most `ratio` times the successes of one period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// The clock to read time from (default: tokio's, created at `build()`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings and builds the budget. It starts with one second of the floor.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        ConfigError::check_within("ratio", self.ratio, 0.0, 1000.0)?;
        if self.ratio == 0.0 && self.min_per_sec == 0 {
            return Err(ConfigError::Conflict {
                field: "min_per_sec",
                reason: "zero with a zero `ratio` refuses every retry; use `max_retries(0)`".into(),
            });
        }
        if self.period.is_zero() {
            return Err(ConfigError::Zero { field: "period" });
        }
        let clock = self.clock.unwrap_or_default();
        let min_per_sec = f64::from(self.min_per_sec);
        let now_ms = clock.now_nanos() / NANOS_PER_MILLI;
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                deposits: Box::leak(Box::new(Deposits {
                    stripes: std::array::from_fn(|_| Stripe(AtomicU64::new(0))),
                })),
                claimed: AtomicU64::new(0),
                refunds: AtomicU64::new(0),
                state: AtomicU64::new(pack(now_ms, min_per_sec)),
                ratio: self.ratio,
                min_per_sec,
                period_ms: (duration_to_nanos(self.period) as f64 / NANOS_PER_MILLI as f64)
                    .max(1.0),
                clock,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_long_healthy_run_still_credits_successes() {
        // 2^31 + 1000 successes with no withdrawal in between (six hours at 100k calls/s):
        // the count is far ahead, not behind, and pays for retries.
        let (b, _time) = budget(0.2, 1);
        assert!(b.withdraw()); // the floor
        b.inner.deposits.stripes[0]
            .0
            .store((1 << 31) + 1000, Ordering::Relaxed);
        assert!(b.withdraw(), "2^31 successes credited nothing");
        assert!(!ahead(5, 7), "a count a little behind is a lost increment");
        assert!(ahead(7, 5) && ahead(1 << 31, 0) && !ahead(3, 3));
    }

    fn budget(ratio: f64, floor: u32) -> (RetryBudget, ManualClock) {
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(ratio)
            .min_per_sec(floor)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        (b, time)
    }

    fn drain(b: &RetryBudget) -> u32 {
        let mut n = 0;
        while b.withdraw() {
            n += 1;
        }
        n
    }

    #[test]
    fn starts_with_one_second_of_floor_only() {
        let (b, _) = budget(0.2, 10);
        assert_eq!(drain(&b), 10);
    }

    #[test]
    fn floor_accrues_as_a_rate_and_never_banks_more_than_a_second() {
        let (b, time) = budget(0.2, 10);
        drain(&b);
        time.advance(Duration::from_millis(300));
        assert_eq!(drain(&b), 3);
        time.advance(Duration::from_secs(60));
        assert_eq!(
            drain(&b),
            10,
            "a long quiet spell banks one second, not sixty"
        );
    }

    #[test]
    fn successes_pay_for_ratio_retries() {
        let (b, _) = budget(0.2, 0);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(drain(&b), 20);
    }

    #[test]
    fn old_successes_fade_over_the_period() {
        let (b, time) = budget(0.2, 0);
        for _ in 0..100 {
            b.deposit();
        }
        assert!((b.balance() - 20.0).abs() < 0.01);
        time.advance(Duration::from_millis(500));
        assert!((b.balance() - 10.0).abs() < 0.01);
        time.advance(Duration::from_secs(1));
        assert_eq!(drain(&b), 0);
    }

    #[test]
    fn successes_long_ago_count_only_for_their_share_of_the_period() {
        let (b, time) = budget(1.0, 0);
        for _ in 0..100 {
            b.deposit();
        }
        // 100 successes over the last 10 s: about 10 of them fall in the last second.
        time.advance(Duration::from_secs(10));
        assert_eq!(drain(&b), 10);
    }

    #[test]
    fn bad_budget_settings_are_refused() {
        let e = RetryBudget::builder().ratio(-0.1).build().unwrap_err();
        assert!(matches!(e, ConfigError::OutOfRange { field: "ratio", .. }));
        let e = RetryBudget::builder().ratio(f64::NAN).build().unwrap_err();
        assert_eq!(e, ConfigError::NotFinite { field: "ratio" });
        let e = RetryBudget::builder()
            .period(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::Zero { field: "period" });
        let e = RetryBudget::builder()
            .ratio(0.0)
            .min_per_sec(0)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "min_per_sec");
    }

    #[test]
    fn concurrent_deposits_and_withdrawals_never_overdraw() {
        let (b, _) = budget(0.5, 0);
        let granted: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || {
                        let mut n = 0;
                        for _ in 0..1000 {
                            b.deposit();
                            n += u32::from(b.withdraw());
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        // 4000 successes x 0.5 (minus any lost to stripe sharing): never more than 2000.
        assert!(granted <= 2000, "granted {granted}");
        assert!(granted >= 1500, "granted {granted}");
    }
}
