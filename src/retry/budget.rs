//! The retry budget: retries may add at most a ratio of recent successes, plus a small floor
//! per second, and stop after a few when no success comes back. No tower, no async.
//!
//! A budget must stop a retry storm (a dependency that falls over gets every failed call
//! again, up to four times the load it could not carry) without throwing away the retries
//! that pay (a dependency that fails one call in three answers most retries). The two look
//! alike to a ratio of successes at the onset: in the first moments of a total outage the
//! window still holds a healthy second of successes. What tells them apart at once is
//! whether *any* success still comes back, so the budget keeps two accounts: a failure
//! streak, which stops the retries of a total outage after `failure_streak` of them, and the
//! credit of recent successes, which bounds the retries of a partial one.
//!
//! # What is guaranteed
//!
//! Each bound holds at every moment, for all the clones of a budget together, not on
//! average. With `G(I)` the retries granted in a stretch of time `I` lasting `T` seconds:
//!
//! 1. **The failure streak.** A withdrawal that finds no new success since the previous
//!    withdrawal (deposits net of refunds; see below) extends the streak; one that finds one
//!    starts a new streak. At most `failure_streak` withdrawals of one streak are granted,
//!    refused ones counting too. So in any stretch in which no success is deposited:
//!
//!    ```text
//!    G(I) <= failure_streak × (1 + d)
//!    ```
//!
//!    where `d` is the number of deposits made before `I` that no withdrawal had seen when
//!    `I` began (a deposit is a relaxed store on its thread's stripe; another thread sees it
//!    at most once late, and `d` is 0 once the stores are visible). This holds whatever the
//!    credit, the floor, the rate of failures and the length of `I`: a total outage, after
//!    any length of healthy traffic, gets at most `failure_streak` retries from each budget
//!    (3 by default) until the dependency answers again. Time alone never ends a streak;
//!    first attempts are never refused, so the first success after the outage does.
//! 2. **The ratio.** Over the whole life of a budget, with `D` the successes deposited:
//!
//!    ```text
//!    G <= ratio × D + min_per_sec × T + F
//!    ```
//!
//!    (refunds only lower it; it holds up to the rounding of `f64` sums, below a
//!    billionth of a retry). Within that, a success never pays for a retry after its `period`
//!    is over: the earned credit spent within the window at any moment never exceeds `ratio`
//!    × the successes credited to it (a window of ten buckets that moves a tenth of the
//!    period at a time: see [`period`](BudgetBuilder::period)). A partial outage, in which
//!    each call fails with probability `p`, wants `p + p² + p³` retries per call against
//!    `1 - p⁴` successes: `ratio` 0.5 (the default) pays for all of them up to `p` ≈ 0.33
//!    and bounds the retries of any worse one to half the successes (plus the floor): a load
//!    of at most 1.5 times the offered load.
//! 3. **The floor.** It accrues at `min_per_sec` a second and holds at most
//!    `F = min(min_per_sec, failure_streak)` retries: over any stretch, the floor pays for at
//!    most `F + min_per_sec × T` retries. It starts full, so that a client with little
//!    traffic can retry one call in full at once (3 retries by default); and no reserve
//!    banked in quiet times can pay for more than one streak at the onset of an outage. Retries
//!    spend earned credit first and the floor only when that runs out, which keeps the floor
//!    for a client with little traffic.
//!
//! What these bounds cost a partial outage: a withdrawal is refused when the last
//! `failure_streak` withdrawals found no success between them, which, with independent
//! failures of probability `p`, happens to about `p^failure_streak` of them (2.7 % at
//! `p` = 0.3 with the default 3); the `storm` example measures that at least 90 % of the
//! calls whose first attempt failed still succeed for every `p` up to 0.3.
//!
//! Further:
//!
//! - Reading [`balance`](RetryBudget::balance) changes nothing: it computes the balance
//!   without storing it, so how often a budget is read never changes what it grants. A
//!   withdrawal, granted or refused, does settle the accounts (see below): it can only make
//!   the crediting of later successes more timely, and never lets a success pay outside its
//!   period, so two budgets that see the same deposits may grant differently if one was
//!   asked for retries more often, but neither grants from successes older than a period.
//! - Time is the clock's `u64` nanoseconds. Any gap between two withdrawals, a nanosecond or
//!   a century, is handled the same way: no overflow, no freeze, no NaN.
//!
//! Deposits read no clock, so a withdrawal does not know *when* the successes it finds were
//! made, only that they came after the previous withdrawal read the time, since that one
//! did not see them (see `Account::now_and_counts`). It therefore credits them to the previous withdrawal's
//! bucket, the oldest they can date from, and credits nothing if that bucket has already left
//! the window. A success can so expire early, never late. Guessing any later time (say,
//! spreading them evenly over the gap) could move a burst of old successes forward into the
//! window, and pay for a burst of retries just when a dependency falls over after a quiet
//! spell: the very storm a budget exists to stop.
//!
//! What that costs: a client whose failures are rare, and so withdraws rarely, gets its
//! first retry after a long healthy stretch from the floor, not from the successes of that
//! stretch (an hour of successes without a single failure pays for nothing at the first
//! failure). Once failures come, each withdrawal dates the successes that follow it: with at
//! least one withdrawal every tenth of a period, as in any outage that matters, a success
//! pays for more than eight tenths of its period, so a partial outage still pays for its
//! retries.
//!
//! A [`refund`](RetryBudget::refund) takes a deposit back: a refunded deposit pays for no
//! retry once the refund is made (a withdrawal that ran between the deposit and its refund
//! may have spent it; the refund then leaves the balance that much in debt), and a deposit
//! refunded before a withdrawal saw it ends no streak.
//!
//! # What it costs
//!
//! - [`deposit`](RetryBudget::deposit), one per success, is the hot path: it must cost about
//!   nothing and must not make cores fight over a cache line. Each thread writes its own
//!   cache-padded stripe, with a plain load and store rather than a read-modify-write (an
//!   atomic read-modify-write is a locked instruction, several times the cost). No lock, no
//!   clock read. Threads are spread over [`STRIPES`] stripes round-robin; two threads that
//!   share a stripe may, rarely, overwrite each other's increment, which loses successes:
//!   the budget gets stricter, never looser.
//! - Nothing is counted per first attempt or per failure outside a withdrawal: the failure
//!   streak is kept by the withdrawals, from the same counts, under the same lock, so it adds
//!   nothing to the success path.
//! - [`withdraw`](RetryBudget::withdraw), one per retry wanted, reads the clock once, sums
//!   the stripes and settles the accounts under a short lock (a few dozen arithmetic
//!   operations over the ten buckets, nothing that waits). A lock is fine there: a withdrawal
//!   is made only when a call has failed and a retry is wanted, a path that is about to wait
//!   a backoff anyway, and deposits never take it, so the success path never meets it. In
//!   an outage every failing call withdraws; the section under the lock reads no clock and
//!   allocates nothing, so they queue only briefly, as they would on one contended word.
//! - [`balance`](RetryBudget::balance) costs the same as a withdrawal, and stores nothing.
//! - [`refund`](RetryBudget::refund) is one atomic add.
//!
//! # How it is kept
//!
//! The stripes, the refund count and the accounts live in one allocation, shared by every
//! clone through an `Arc`: when the last clone is dropped, all of it is freed.
//!
//! The accounts a withdrawal settles, under the lock (a lock rather than a compare-exchange
//! on one atomic word: the accounts do not fit in a word, and squeezing them into one is what
//! once forced 32-bit wrapping counts and a 36-bit time stamp):
//! 1. the successes credited so far and the refunds applied so far, as 64-bit counts that
//!    only grow: each is the larger of what was credited and the total just read. A total
//!    read *below* what is credited (a lost increment; or a withdrawal that read the stripes
//!    and was descheduled while others deposited and credited more) therefore credits
//!    nothing, instead of looking like a jump of nearly 2^64. The counts never wrap in
//!    practice (2^64 successes take centuries at a billion a second);
//! 2. the window: per bucket, the successes credited to it and the tokens spent in it. The
//!    earned balance is `ratio` × the successes in the window minus the tokens spent in it;
//!    it may be negative for a while (successes that paid for retries left the window before
//!    those retries did), which is what bounds each window by its own successes;
//! 3. refunds take successes back from the newest bucket first. The refund count is read
//!    before the stripes (Acquire against the refund's Release), so every deposit a refund
//!    takes back is counted too, and a deposit and its refund are each applied exactly once
//!    (the two races the loom models in `tests/loom/budget.rs` found in an earlier design);
//! 4. the floor: `min(min_per_sec, failure_streak)` retries at most, topped up at
//!    `min_per_sec` per second elapsed;
//! 5. the failure streak: reset when the counts just read hold more successes than refunds
//!    not yet credited (a stale count, or a lost increment, resets nothing).
//!
//! A withdrawal then counts itself in the streak and, if the streak is within its limit,
//! takes one token, from the earned balance first, then from the floor.

use std::fmt;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::clock::{duration_to_nanos, Clock};
use crate::error::ConfigError;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// Number of deposit stripes per budget (one cache line each).
pub const STRIPES: usize = 16;

/// The buckets the window of one `period` is kept in.
const BUCKETS: usize = 10;

const NANOS_PER_SEC: f64 = 1e9;

/// The default [`ratio`](BudgetBuilder::ratio).
const DEFAULT_RATIO: f64 = 0.5;
/// The default [`min_per_sec`](BudgetBuilder::min_per_sec).
const DEFAULT_MIN_PER_SEC: u32 = 10;
/// The default [`failure_streak`](BudgetBuilder::failure_streak).
const DEFAULT_FAILURE_STREAK: u32 = 3;

/// How far below a whole token a balance still pays for a retry: the rounding of `f64` sums,
/// far below any fraction the settings can make on purpose.
const ROUNDING: f64 = 1e-9;

/// The shortest `period` the builder accepts.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A shared retry budget, in the style of Finagle's and gRPC's.
///
/// Retries may add at most `ratio` (default 50 %) of the successful calls of the last
/// `period` (default 1 s), plus a floor of `min_per_sec` retries per second (default 10) that
/// accrues over time and never holds more than one failure streak's worth; and when no
/// success comes back, as in a total outage, at most `failure_streak` retries (default 3)
/// are granted until one does. A budget with nothing left refuses the retry; the retry layer then returns the last
/// error wrapped in [`BudgetExhausted`](super::BudgetExhausted). The
/// [module docs](crate::retry::budget) say exactly what is guaranteed, at every moment, and
/// what each operation costs; the `storm` example measures it against a retry storm.
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
/// for _ in 0..20 {
///     budget.deposit();
/// }
/// // 20 successes x 0.5: ten retries of credit. But three retries with no success between
/// // them end the failure streak (3 by default): the fourth is refused, credit or not.
/// assert!(budget.withdraw() && budget.withdraw() && budget.withdraw());
/// assert!(!budget.withdraw());
/// assert_eq!(budget.balance(), 0.0);
///
/// // One more success starts a new streak: the credit left (7.5 retries) pays again, at
/// // most a streak's worth at a time, which is what the balance says.
/// budget.deposit();
/// assert_eq!(budget.balance(), 3.0);
/// assert!(budget.withdraw());
///
/// // A success pays for retries during one period (1 s by default), then never again.
/// time.advance(Duration::from_secs(1));
/// assert!(!budget.withdraw());
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    account: Arc<Account>,
}

/// One budget's state, in the one allocation every clone shares and the last one frees.
struct Account {
    /// Successes: one cumulative count per stripe, written by deposits only.
    deposits: [Stripe; STRIPES],
    /// Deposits taken back: a cumulative count, written on failure paths only.
    refunds: AtomicU64,
    /// What withdrawals have settled so far.
    ledger: Mutex<Ledger>,
    terms: Terms,
    period: Duration,
    clock: Clock,
}

/// A count on a cache line of its own (128 bytes: x86 prefetches lines in pairs), so that
/// threads depositing on different stripes never write the same line.
#[repr(align(128))]
struct Stripe(AtomicU64);

/// The settings, in the units the arithmetic uses.
#[derive(Debug, Clone, Copy)]
struct Terms {
    /// Tokens (retries) per success.
    ratio: f64,
    /// Floor tokens per second, and the most the floor holds.
    min_per_sec: f64,
    /// The period in nanoseconds (at least 1): bucket `n` is the time from `n × period / 10`
    /// up to `(n + 1) × period / 10`, exactly.
    period_nanos: u64,
    /// The most retries granted within one failure streak (at least 1).
    failure_streak: u64,
}

impl Terms {
    /// The most the floor holds: one second's worth, and never more than one failure streak
    /// may spend.
    fn floor_cap(&self) -> f64 {
        self.min_per_sec.min(self.failure_streak as f64)
    }

    /// The bucket `t` falls in: `⌊t × 10 / period⌋`, exactly, without overflow.
    fn bucket(&self, t: u64) -> u64 {
        let period = self.period_nanos.max(1);
        match t.checked_mul(BUCKETS as u64) {
            Some(tenfold) => tenfold / period,
            // Only a clock more than 58 years past its start gets here.
            None => u64::try_from(u128::from(t) * BUCKETS as u128 / u128::from(period))
                .unwrap_or(u64::MAX),
        }
    }
}

/// The counts a withdrawal read, outside the lock; possibly stale.
#[derive(Debug, Clone, Copy)]
struct Counts {
    successes: u64,
    refunds: u64,
}

/// The budget's accounts, settled by withdrawals (see the module docs). Pure arithmetic: the
/// atomics only feed it counts and the clock its time.
#[derive(Debug, Clone, Copy)]
struct Ledger {
    /// The clock time the ledger is settled to, in nanoseconds.
    at: u64,
    /// Successes credited so far: the largest total of the stripes ever applied.
    successes: u64,
    /// Refunds applied so far: likewise.
    refunds: u64,
    /// The window: bucket number `n` (see [`Terms::bucket`]) lives at `n % BUCKETS`. Holds
    /// only the buckets of the last period: settling clears those that left it.
    window: [Bucket; BUCKETS],
    /// The floor's tokens, at most [`Terms::floor_cap`].
    floor: f64,
    /// The withdrawals since the last settlement that found a new success (net of refunds):
    /// the current failure streak.
    streak: u64,
}

/// One stretch of the window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Successes credited to this stretch (fractional when spread over several).
    successes: f64,
    /// Tokens of earned credit spent by the retries granted in this stretch.
    spent: f64,
}

fn slot(bucket: u64) -> usize {
    (bucket % BUCKETS as u64) as usize
}

impl Ledger {
    /// A new budget's accounts: nothing earned, a full floor, no streak.
    fn new(now: u64, terms: &Terms) -> Self {
        Ledger {
            at: now,
            successes: 0,
            refunds: 0,
            window: [Bucket::default(); BUCKETS],
            floor: terms.floor_cap(),
            streak: 0,
        }
    }

    /// Brings the accounts to `now`, crediting the successes and refunds counted since the
    /// last settlement. `seen` may be stale or low: counts only grow, so a count below what
    /// is credited already means nothing new.
    fn settle(&mut self, now: u64, seen: Counts, terms: &Terms) {
        // A withdrawal that read the clock before another one settled: no time passed.
        let now = now.max(self.at);
        let elapsed = now - self.at;
        let fresh = seen.successes.saturating_sub(self.successes);
        let taken_back = seen.refunds.saturating_sub(self.refunds);
        self.successes = self.successes.max(seen.successes);
        self.refunds = self.refunds.max(seen.refunds);

        let added = terms.min_per_sec * elapsed as f64 / NANOS_PER_SEC;
        self.floor = (self.floor + added).min(terms.floor_cap());
        // A new success, net of refunds, ends the failure streak; a stale count (nothing
        // new) never does, so a race can only make the streak longer, the budget stricter.
        if fresh > taken_back {
            self.streak = 0;
        }

        // Clear the buckets that left the window: all of them after a gap of a period.
        let (from, to) = (terms.bucket(self.at), terms.bucket(now));
        if to > from {
            for n in (from + 1)..=to.min(from.saturating_add(BUCKETS as u64)) {
                self.window[slot(n)] = Bucket::default();
            }
        }

        if fresh >= taken_back {
            self.credit((fresh - taken_back) as f64, from, to);
        } else {
            self.take_back((taken_back - fresh) as f64, to);
        }
        self.at = now;
    }

    /// Credits `n` successes deposited since the last settlement (in bucket `from`) to that
    /// bucket, the oldest they can date from: deposits read no clock, so crediting them any
    /// later could make them pay after their period. If that bucket has left the window (the
    /// current bucket is `to`), they are credited nothing.
    fn credit(&mut self, n: f64, from: u64, to: u64) {
        if to - from < BUCKETS as u64 {
            self.window[slot(from)].successes += n;
        }
    }

    /// Takes `n` refunded successes back, newest first. Those that already left the window
    /// pay for nothing any more: there is nothing left to take back from them.
    fn take_back(&mut self, mut n: f64, now_bucket: u64) {
        for b in (now_bucket.saturating_sub(BUCKETS as u64 - 1)..=now_bucket).rev() {
            let bucket = &mut self.window[slot(b)];
            let taken = n.min(bucket.successes);
            bucket.successes -= taken;
            n -= taken;
            if n <= 0.0 {
                return;
            }
        }
    }

    /// Tokens the successes in the window earned, less those spent in it. Negative while
    /// retries paid for by successes that already left the window are still in it.
    fn earned(&self, terms: &Terms) -> f64 {
        let (successes, spent) = self
            .window
            .iter()
            .fold((0.0, 0.0), |(s, p), b| (s + b.successes, p + b.spent));
        terms.ratio * successes - spent
    }

    /// The retries the budget allows now, fractional: the credit, but no more than the
    /// withdrawals the failure streak has left (zero once it is at its limit: the next
    /// withdrawal would be refused whatever the credit).
    fn balance(&self, terms: &Terms) -> f64 {
        let left = terms.failure_streak.saturating_sub(self.streak);
        // `left` is at most `failure_streak`, far below 2^53: exact in an `f64`.
        (self.earned(terms).max(0.0) + self.floor).min(left as f64)
    }

    /// Counts one more withdrawal in the streak, then takes one token, earned credit first,
    /// then the floor; `false` if the streak is over its limit or there is not one token.
    fn withdraw(&mut self, terms: &Terms) -> bool {
        self.streak = self.streak.saturating_add(1);
        if self.streak > terms.failure_streak {
            return false;
        }
        let earned = self.earned(terms).clamp(0.0, 1.0);
        // Within `ROUNDING` of a whole token is a whole token: ten floor accruals of a tenth
        // add up to 0.999..., not 1, in `f64`.
        if earned + self.floor < 1.0 - ROUNDING {
            return false;
        }
        // The floor pays what the credit does not; a shortfall within `ROUNDING` is charged
        // to the window as debt, not forgiven, so the allowance never adds up over grants.
        let from_floor = (1.0 - earned).min(self.floor);
        self.floor -= from_floor;
        self.window[slot(terms.bucket(self.at))].spent += 1.0 - from_floor;
        true
    }
}

impl RetryBudget {
    /// A builder with the defaults: 50 % of the last second's successes, 10 retries per second,
    /// 3 retries per failure streak.
    pub fn builder() -> BudgetBuilder {
        BudgetBuilder::default()
    }

    /// Records one success: a plain load and store on this thread's stripe. No clock read, no
    /// lock, no read-modify-write (see the [module docs](crate::retry::budget)).
    #[inline]
    pub fn deposit(&self) {
        // Relaxed: withdrawals only need to see the count eventually (a late increment makes
        // the budget stricter for a moment), and a refund orders its own deposit (see
        // `Account::now_and_counts`). A load and a store rather than `fetch_add`: see the module docs.
        let stripe = &self.account.deposits[crate::sync::thread_index() % STRIPES].0;
        stripe.store(
            stripe.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// Takes back one [`deposit`](Self::deposit), for callers that deposit when a call starts
    /// and must cancel it when the call does not succeed. One atomic add. (The retry layer
    /// deposits only on success and never refunds: deposits made at the start of calls that
    /// then fail would pay for retries during the very outage.)
    pub fn refund(&self) {
        // Release: a withdrawal that sees this refund (Acquire) sees the deposit it takes back.
        self.account.refunds.fetch_add(1, Ordering::Release);
    }

    /// Takes one retry from the budget; `false` when there is none left, or when the failure
    /// streak is at its limit (no new success since the last `failure_streak` withdrawals;
    /// a refused withdrawal counts in the streak too). Reads the clock once and takes a short
    /// lock (see the [module docs](crate::retry::budget)).
    pub fn withdraw(&self) -> bool {
        let (now, seen) = self.account.now_and_counts();
        let terms = &self.account.terms;
        let mut ledger = self.account.lock();
        ledger.settle(now, seen, terms);
        ledger.withdraw(terms)
    }

    /// The retries the budget would allow right now: the credit (fractional), but no more
    /// than the withdrawals the failure streak has left (zero while it is at its limit,
    /// whatever the credit). Reads the clock; computes on a
    /// copy of the accounts and stores nothing, so reading never changes what the budget
    /// grants.
    pub fn balance(&self) -> f64 {
        let (now, seen) = self.account.now_and_counts();
        let terms = &self.account.terms;
        let mut ledger = *self.account.lock();
        ledger.settle(now, seen, terms);
        ledger.balance(terms)
    }

    /// Whether `self` and `other` are the same budget (clones of one, sharing one balance),
    /// not merely budgets with the same settings: one pointer comparison.
    pub fn same_budget(&self, other: &RetryBudget) -> bool {
        Arc::ptr_eq(&self.account, &other.account)
    }
}

impl Account {
    /// The time and the counts, read before taking the lock (settling copes with stale ones).
    fn now_and_counts(&self) -> (u64, Counts) {
        // The clock first: a deposit this withdrawal does not see was made after it read the
        // time, so the next settlement may date it from this one's time (see `Ledger::credit`).
        let now = self.clock.now_nanos();
        // Then the refunds, with Acquire: every deposit a refund read here takes back was
        // stored before that refund (same thread, then Release), so the stripes read next show
        // it.
        let refunds = self.refunds.load(Ordering::Acquire);
        let successes = self.deposits.iter().fold(0u64, |sum, s| {
            sum.saturating_add(s.0.load(Ordering::Relaxed))
        });
        (now, Counts { successes, refunds })
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Ledger> + '_ {
        // Nothing under the lock can panic; if a panic elsewhere ever poisoned it, the
        // accounts are still whole (every update is a plain store of finished values).
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.account.terms.ratio)
            .field("min_per_sec", &self.account.terms.min_per_sec)
            .field("period", &self.account.period)
            .field("failure_streak", &self.account.terms.failure_streak)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RetryBudget`]; `build()` validates it.
///
/// | setting | default |
/// |---|---|
/// | [`ratio`](Self::ratio) | 0.5 (retries add at most 50 % of recent successes) |
/// | [`min_per_sec`](Self::min_per_sec) | 10 retries per second, one streak's worth (3) held at most |
/// | [`failure_streak`](Self::failure_streak) | 3 retries until a success comes back |
/// | [`period`](Self::period) | 1 s |
/// | [`clock`](Self::clock) | tokio's clock |
#[derive(Debug, Clone)]
#[must_use]
pub struct BudgetBuilder {
    ratio: f64,
    min_per_sec: u32,
    failure_streak: u32,
    period: Duration,
    clock: Option<Clock>,
}

impl Default for BudgetBuilder {
    fn default() -> Self {
        BudgetBuilder {
            ratio: DEFAULT_RATIO,
            min_per_sec: DEFAULT_MIN_PER_SEC,
            failure_streak: DEFAULT_FAILURE_STREAK,
            period: Duration::from_secs(1),
            clock: None,
        }
    }
}

impl BudgetBuilder {
    /// Retries allowed per recent success (default 0.5). Within `0.0..=1000.0`.
    ///
    /// It bounds a partial outage: with each call failing with probability `p`, unlimited
    /// retries want `p + p² + p³` per call (0.42 at `p` = 0.3) against about one success, so
    /// 0.5 pays for them all up to `p` ≈ 0.33, and caps the retries of any worse partial
    /// outage at half its successes (plus the floor), a load of at most 1.5 times the offered
    /// load. A total outage is stopped by the
    /// [`failure_streak`](Self::failure_streak), not by the ratio.
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Retries allowed per second whatever the successes (default 10), so that a client with
    /// little traffic can still retry. Accrues over time; never holds more than one second's
    /// worth nor more than one [`failure_streak`](Self::failure_streak) may spend, so a quiet
    /// spell banks no burst beyond one streak. Its retries count in the streak like any
    /// other. May be zero if `ratio` is not.
    pub fn min_per_sec(mut self, n: u32) -> Self {
        self.min_per_sec = n;
        self
    }

    /// How long a success keeps paying for retries (default 1 s; at least 1 ms, or `build()`
    /// refuses it with [`ConfigError::TooSmall`]). A success never pays once its period is
    /// over. It pays for more than nine tenths of it when the last withdrawal before it fell
    /// in the same tenth of the period; otherwise it is dated from the last withdrawal before it, so it pays for
    /// less, or not at all (see the [module docs](crate::retry::budget)).
    ///
    /// Nothing is rounded: the window moves in tenths of the period, and the tenths are
    /// exact, the `n`-th starting at `n × period / 10` nanoseconds after the clock's start
    /// (in whole nanoseconds, a tenth may be one nanosecond longer or shorter than the next,
    /// but ten of them always make exactly one period).
    ///
    /// Longer periods smooth the budget but let a larger burst of retries through when a
    /// healthy dependency falls over: at most `ratio` times the successes of one period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// The most retries granted within one failure streak (default 3; at least 1, or
    /// `build()` refuses it with [`ConfigError::Zero`]). A failure streak is the withdrawals
    /// since the budget last saw a new success: when no success comes back, as in a total
    /// outage, the budget grants this many retries and then none until a success, whatever
    /// the credit, the floor, the rate or the time (see the [module docs](crate::retry::budget)).
    ///
    /// Higher values lose fewer retries to the runs of failures a partial outage has by
    /// chance (with each call failing with probability `p`, a withdrawal is refused for the
    /// streak about `p^failure_streak` of the time); lower ones send fewer retries into a total
    /// outage.
    pub fn failure_streak(mut self, n: u32) -> Self {
        self.failure_streak = n;
        self
    }

    /// The clock to read time from (default: tokio's, created at `build()`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings and builds the budget. It starts with a full floor
    /// (`min(min_per_sec, failure_streak)` retries) and no streak.
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
        if self.failure_streak == 0 {
            return Err(ConfigError::Zero {
                field: "failure_streak",
            });
        }
        ConfigError::check_at_least(
            "period",
            self.period.as_secs_f64(),
            MIN_PERIOD.as_secs_f64(),
        )?;
        let clock = self.clock.unwrap_or_default();
        let terms = Terms {
            ratio: self.ratio,
            min_per_sec: f64::from(self.min_per_sec),
            period_nanos: duration_to_nanos(self.period).max(1),
            failure_streak: u64::from(self.failure_streak),
        };
        let ledger = Ledger::new(clock.now_nanos(), &terms);
        Ok(RetryBudget {
            account: Arc::new(Account {
                deposits: std::array::from_fn(|_| Stripe(AtomicU64::new(0))),
                refunds: AtomicU64::new(0),
                ledger: Mutex::new(ledger),
                terms,
                period: self.period,
                clock,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A budget with no limit on the failure streak: for the window's and the floor's
    /// arithmetic (the streak's tests set it).
    fn budget(ratio: f64, floor: u32) -> (RetryBudget, ManualClock) {
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(ratio)
            .min_per_sec(floor)
            .failure_streak(u32::MAX)
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

    fn deposit(b: &RetryBudget, n: u32) {
        for _ in 0..n {
            b.deposit();
        }
    }

    /// Terms of a 1 s period.
    fn terms(ratio: f64, min_per_sec: f64) -> Terms {
        Terms {
            ratio,
            min_per_sec,
            period_nanos: 1_000_000_000,
            failure_streak: u64::MAX,
        }
    }

    fn counts(successes: u64, refunds: u64) -> Counts {
        Counts { successes, refunds }
    }

    #[test]
    fn same_budget_is_sharing_not_equal_settings() {
        let a = RetryBudget::builder().build().unwrap();
        let twin = RetryBudget::builder().build().unwrap();
        assert!(a.same_budget(&a.clone()));
        assert!(a.clone().same_budget(&a));
        assert!(!a.same_budget(&twin));
    }

    // ===== the arithmetic =====

    #[test]
    fn a_count_read_below_what_is_credited_credits_nothing() {
        // The race of a withdrawal that summed the stripes, was descheduled while a million
        // successes were deposited and credited by another withdrawal, then settled with its
        // stale total; or a stripe that stepped back over a lost increment.
        let terms = terms(1e-5, 0.0);
        let balance = |ledger: &Ledger| (ledger.balance(&terms) * 1e6).round() / 1e6;
        let mut ledger = Ledger::new(0, &terms);
        ledger.settle(0, counts(1_000_000, 0), &terms);
        assert_eq!(balance(&ledger), 10.0);
        ledger.settle(0, counts(10, 0), &terms);
        assert_eq!(
            balance(&ledger),
            10.0,
            "a stale count read as new successes"
        );
        // Counted from the largest total applied: 100,000 more pay for one more retry.
        ledger.settle(0, counts(1_100_000, 0), &terms);
        assert_eq!(balance(&ledger), 11.0);
        // The same for refunds: a stale refund count takes nothing back twice.
        ledger.settle(0, counts(1_100_000, 100_000), &terms);
        ledger.settle(0, counts(1_100_000, 3), &terms);
        assert_eq!(balance(&ledger), 10.0);
    }

    #[test]
    fn huge_gaps_neither_overflow_nor_lose_the_accounts() {
        // A 1 ns period (the builder refuses it; the arithmetic must still cope): bucket
        // numbers reach ten times u64::MAX, and saturate.
        let terms = Terms {
            ratio: 1000.0,
            min_per_sec: f64::from(u32::MAX),
            period_nanos: 1,
            failure_streak: u64::MAX,
        };
        let mut ledger = Ledger::new(0, &terms);
        ledger.settle(u64::MAX, counts(u64::MAX, u64::MAX - 1), &terms);
        let balance = ledger.balance(&terms);
        assert!(balance.is_finite(), "{balance}");
        assert_eq!(ledger.at, u64::MAX);
        assert!(ledger.withdraw(&terms));
        // At the end of time: no time passes, nothing wraps.
        ledger.settle(u64::MAX, counts(u64::MAX, u64::MAX), &terms);
        assert!(ledger.balance(&terms).is_finite());
        // A clock reading behind the ledger (read before another withdrawal settled) is "no
        // time passed", not a gap of nearly 2^64 nanoseconds.
        let terms = self::terms(0.0, 10.0);
        let mut ledger = Ledger::new(1_000, &terms);
        while ledger.withdraw(&terms) {}
        ledger.settle(999, counts(0, 0), &terms);
        assert_eq!(ledger.balance(&terms), 0.0);
    }

    #[test]
    fn credit_is_taken_back_newest_first_and_spent_credit_leaves_a_debt() {
        let terms = terms(1.0, 0.0);
        let mut ledger = Ledger::new(0, &terms);
        ledger.settle(0, counts(1, 0), &terms);
        assert!(ledger.withdraw(&terms));
        // The deposit that paid is refunded: the balance is one token in debt, which the
        // next success pays off instead of paying for a retry.
        ledger.settle(0, counts(1, 1), &terms);
        assert_eq!(ledger.earned(&terms), -1.0);
        ledger.settle(0, counts(2, 1), &terms);
        assert!(
            !ledger.withdraw(&terms),
            "a refunded deposit paid for a retry"
        );
        // A refund takes from the newest successes: those of a moment ago stay spent, the
        // older ones still expire on time.
        let mut ledger = Ledger::new(0, &terms);
        ledger.settle(0, counts(3, 0), &terms);
        ledger.settle(500_000_000, counts(3, 0), &terms);
        ledger.settle(500_000_000, counts(5, 0), &terms);
        ledger.settle(500_000_000, counts(5, 2), &terms);
        assert_eq!(ledger.window[0].successes, 3.0);
        assert_eq!(ledger.window[5].successes, 0.0);
    }

    // ===== the budget =====

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
        // 10 a second: one retry every 100 ms, whether asked for at once or spread out.
        let mut granted = 0;
        for _ in 0..30 {
            time.advance(Duration::from_millis(10));
            granted += drain(&b);
        }
        assert_eq!(granted, 3);
        time.advance(Duration::from_secs(60));
        assert_eq!(
            drain(&b),
            10,
            "a long quiet spell banks one second, not sixty"
        );
    }

    #[test]
    fn the_floor_never_holds_more_than_one_failure_streak() {
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(0.0)
            .min_per_sec(1000)
            .failure_streak(4)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        assert_eq!(drain(&b), 4);
        time.advance(Duration::from_secs(60));
        b.deposit(); // a success (paying nothing at ratio 0) ends the streak
        assert_eq!(drain(&b), 4, "a quiet minute banked more than a streak");
    }

    #[test]
    fn successes_pay_for_ratio_retries() {
        let (b, _) = budget(0.2, 0);
        deposit(&b, 100);
        assert_eq!(drain(&b), 20);
    }

    #[test]
    fn retries_spend_earned_credit_before_the_floor() {
        let (b, _) = budget(1.0, 1);
        deposit(&b, 2);
        assert!(b.withdraw() && b.withdraw());
        assert_eq!(b.balance(), 1.0, "the floor is still whole");
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }

    #[test]
    fn a_success_pays_for_one_period_then_never_again() {
        let (b, time) = budget(0.2, 0);
        deposit(&b, 100);
        assert!(b.withdraw()); // credits the 100 successes, now
        assert_eq!(b.balance(), 19.0);
        time.advance(Duration::from_millis(999));
        assert_eq!(b.balance(), 19.0, "no fading within the period");
        time.advance(Duration::from_millis(1));
        assert_eq!(b.balance(), 0.0);
        assert_eq!(drain(&b), 0);
    }

    #[test]
    fn successes_older_than_the_period_never_pay() {
        // A healthy burst of 10,000 successes at t = 0, then a quiet spell just over a
        // period, then the dependency falls over: every success is older than the period, so
        // none pays (they were once spread evenly over the gap: 1809 retries granted).
        let (b, time) = budget(0.2, 0);
        deposit(&b, 10_000);
        time.advance(Duration::from_millis(1050));
        assert_eq!(drain(&b), 0);
        // The same after ten periods, and after a period to the nanosecond.
        let (b, time) = budget(1.0, 0);
        deposit(&b, 100);
        time.advance(Duration::from_secs(10));
        assert_eq!(drain(&b), 0);
        let (b, time) = budget(1.0, 0);
        deposit(&b, 100);
        time.advance(Duration::from_secs(1));
        assert_eq!(drain(&b), 0);
    }

    #[test]
    fn successes_are_dated_from_the_withdrawal_before_them() {
        let (b, time) = budget(1.0, 0);
        time.advance(Duration::from_millis(950));
        assert!(!b.withdraw()); // settles at 0.95 s, bucket 9
        time.advance(Duration::from_millis(100));
        deposit(&b, 5); // at 1.05 s, as far as the test knows; after 0.95 s, to the budget
        assert_eq!(b.balance(), 5.0);
        // Bucket 9 leaves the window at 1.9 s: early (the successes were 0.85 s old), never
        // late.
        time.advance(Duration::from_millis(849));
        assert_eq!(b.balance(), 5.0);
        time.advance(Duration::from_millis(1));
        assert_eq!(drain(&b), 0);
    }

    #[test]
    fn a_refused_withdrawal_never_lets_old_successes_pay() {
        // Twin budgets see the same deposits at the same times; one is asked for a retry
        // (refused: nothing to grant) half a second in, just before 100 successes. 1.2 s
        // later the successes are 1.2 periods old: neither twin pays for them.
        let (asked, asked_time) = budget(1.0, 0);
        let (unasked, unasked_time) = budget(1.0, 0);
        asked_time.advance(Duration::from_millis(500));
        unasked_time.advance(Duration::from_millis(500));
        assert!(!asked.withdraw());
        deposit(&asked, 100);
        deposit(&unasked, 100);
        asked_time.advance(Duration::from_millis(1200));
        unasked_time.advance(Duration::from_millis(1200));
        assert_eq!((drain(&asked), drain(&unasked)), (0, 0));
    }

    #[test]
    fn a_withdrawal_only_makes_crediting_more_timely() {
        // The same twins, the successes 0.6 s old when the outage begins: the twin asked at
        // 0.5 s dates them from then and pays for them (within their period); the other can
        // date them only from its creation, a period ago, and pays for none. Neither pays
        // once their period is over. (`tests/retry/budget.rs` checks against the true
        // sliding window over random schedules.)
        let (asked, asked_time) = budget(1.0, 0);
        let (unasked, unasked_time) = budget(1.0, 0);
        asked_time.advance(Duration::from_millis(500));
        unasked_time.advance(Duration::from_millis(500));
        assert!(!asked.withdraw());
        asked_time.advance(Duration::from_millis(100));
        unasked_time.advance(Duration::from_millis(100));
        deposit(&asked, 100);
        deposit(&unasked, 100);
        asked_time.advance(Duration::from_millis(600));
        unasked_time.advance(Duration::from_millis(600));
        assert_eq!(asked.balance(), 100.0);
        assert_eq!(unasked.balance(), 0.0);
        assert_eq!(drain(&unasked), 0);
        // At 1.5 s, bucket 5 leaves the window (the successes were 0.9 s old: early).
        asked_time.advance(Duration::from_millis(300));
        assert_eq!(drain(&asked), 0);
    }

    #[test]
    fn the_window_moves_in_exact_tenths_of_any_period() {
        // A period of 1,000,007 ns is not ten whole-nanosecond tenths, yet a success never
        // pays at its period's end, and one credited at once pays until just before it.
        let period = 1_000_007u64;
        let budget = || {
            let time = ManualClock::new();
            let b = RetryBudget::builder()
                .ratio(1.0)
                .min_per_sec(0)
                .period(Duration::from_nanos(period))
                .clock(Clock::from(time.clone()))
                .build()
                .unwrap();
            (b, time)
        };
        let (b, time) = budget();
        deposit(&b, 2);
        assert!(b.withdraw()); // at 0: credited to bucket 0
        time.advance(Duration::from_nanos(period - 1));
        assert_eq!(
            b.balance(),
            1.0,
            "left the window before its period was over"
        );
        time.advance(Duration::from_nanos(1));
        assert_eq!(b.balance(), 0.0, "paid at its period's end");

        // Bucket 9 is [900_006.3, 1_000_007): successes credited to it leave the window at
        // 1.9 periods = 1_900_013.3 ns, i.e. are gone at 1_900_014 ns and not before.
        let (b, time) = budget();
        time.advance(Duration::from_nanos(900_007));
        assert!(!b.withdraw()); // settles in bucket 9
        deposit(&b, 1);
        time.advance(Duration::from_nanos(1_900_013 - 900_007));
        assert_eq!(b.balance(), 1.0);
        time.advance(Duration::from_nanos(1));
        assert_eq!(b.balance(), 0.0);
    }

    #[test]
    fn reading_the_balance_often_grants_the_same_as_not_reading_it() {
        let (read, read_time) = budget(0.2, 0);
        let (unread, unread_time) = budget(0.2, 0);
        for (b, _) in [(&read, &read_time), (&unread, &unread_time)] {
            deposit(b, 1000);
            assert!(b.withdraw()); // credits the successes at time 0
        }
        // 1.5 s of a 1 s period, the balance read every 10 ms on one twin only.
        for _ in 0..150 {
            read_time.advance(Duration::from_millis(10));
            let _ = read.balance();
        }
        unread_time.advance(Duration::from_millis(1500));
        let (r, u) = (drain(&read), drain(&unread));
        assert_eq!(r, u, "reading the balance changed what the budget grants");
        assert_eq!(r, 0, "successes 1.5 periods old still paid");
    }

    #[test]
    fn idle_for_400_days_then_the_floor_refills_and_deposits_still_pay() {
        let (b, time) = budget(0.2, 10);
        assert_eq!(drain(&b), 10);
        time.advance(DAY * 400);
        assert_eq!(drain(&b), 10, "the floor refills after any idle time");
        deposit(&b, 100);
        assert_eq!(drain(&b), 20, "deposits pay after any idle time");
        time.advance(Duration::from_secs(2));
        assert_eq!(
            drain(&b),
            10,
            "and the budget keeps moving: only the floor is left"
        );
    }

    #[test]
    fn the_end_of_time_is_not_an_overflow() {
        let (b, time) = budget(0.2, 10);
        deposit(&b, 100);
        time.advance(Duration::MAX); // the clock saturates at u64::MAX nanoseconds
        let balance = b.balance();
        assert!((balance - 10.0).abs() < 1e-6, "{balance}");
        assert_eq!(drain(&b), 10);
        deposit(&b, 100);
        assert_eq!(drain(&b), 20);
    }

    #[test]
    fn a_long_healthy_run_still_credits_successes() {
        // 2^40 successes on one stripe with no withdrawal in between: far ahead, credited.
        let (b, _time) = budget(0.2, 1);
        assert!(b.withdraw()); // the floor
        b.account.deposits[0].0.store(1 << 40, Ordering::Relaxed);
        assert!(b.withdraw(), "2^40 successes credited nothing");
    }

    #[test]
    fn clones_share_one_balance() {
        let (b, _) = budget(1.0, 0);
        let c = b.clone();
        deposit(&c, 3);
        assert_eq!(drain(&b), 3);
        assert!(!c.withdraw());
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
        let e = RetryBudget::builder().ratio(1000.1).build().unwrap_err();
        assert_eq!(e.field(), "ratio");
        let e = RetryBudget::builder()
            .ratio(f64::INFINITY)
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::NotFinite { field: "ratio" });
        let e = RetryBudget::builder()
            .ratio(0.0)
            .min_per_sec(0)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "min_per_sec");
        let e = RetryBudget::builder()
            .failure_streak(0)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Zero {
                field: "failure_streak"
            }
        );
    }

    #[test]
    fn periods_below_a_millisecond_are_refused_not_stretched() {
        // A 1 ns period once got 1 ns buckets, a 10 ns window: a success paid for ten periods.
        for period in [Duration::from_nanos(1), Duration::from_nanos(999_999)] {
            let e = RetryBudget::builder().period(period).build().unwrap_err();
            assert_eq!(
                e,
                ConfigError::TooSmall {
                    field: "period",
                    value: period.as_secs_f64(),
                    min: 0.001
                }
            );
        }
        assert!(RetryBudget::builder()
            .period(Duration::from_millis(1))
            .build()
            .is_ok());
    }

    #[test]
    fn extreme_settings_neither_panic_nor_produce_nan() {
        let periods = [
            Duration::from_millis(1),
            Duration::from_nanos(1_000_007),
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
                let time = ManualClock::new();
                let b = RetryBudget::builder()
                    .ratio(ratio)
                    .min_per_sec(floor)
                    .period(period)
                    .clock(Clock::from(time.clone()))
                    .build()
                    .unwrap();
                for step in [0u64, 1, 3, 999_999_999, 1 << 40, u64::MAX / 3, u64::MAX] {
                    for _ in 0..50 {
                        b.deposit();
                        b.refund();
                        b.refund();
                    }
                    time.advance(Duration::from_nanos(step));
                    let balance = b.balance();
                    let ctx = format!("{period:?} {ratio} {floor}: {balance}");
                    assert!(balance.is_finite() && balance >= 0.0, "{ctx}");
                    assert_eq!(b.withdraw(), balance >= 1.0, "{ctx}");
                }
            }
        }
    }

    #[test]
    fn the_floor_is_no_reserve_spent_at_once_at_the_onset() {
        // seawall's design (Retry: Budget; Storms): a floor kept as a reserve that the first
        // failures spend at once lets a burst of retries through just when the dependency
        // falls over. With the default failure streak, the onset gets one streak (3), not a
        // second of the floor (1000), however long the quiet spell before.
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(0.2)
            .min_per_sec(1000)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        time.advance(Duration::from_secs(60)); // healthy and quiet
        let at_once = drain(&b); // the outage begins: all in the same nanosecond
        assert!(
            at_once <= 3,
            "{at_once} floor retries granted in one instant"
        );
    }

    // ===== the failure streak =====

    fn streaked(streak: u32) -> (RetryBudget, ManualClock) {
        let time = ManualClock::new();
        let b = RetryBudget::builder()
            .ratio(1.0)
            .min_per_sec(1000)
            .failure_streak(streak)
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        (b, time)
    }

    #[test]
    fn a_streak_without_a_success_gets_at_most_failure_streak_retries() {
        // Plenty of credit (a healthy second of 10,000 successes at ratio 1) and a floor of
        // 1000 a second: the streak alone stops the retries, at once and for as long as no
        // success comes, a minute of asking every millisecond.
        let (b, time) = streaked(3);
        deposit(&b, 10_000);
        let mut granted = drain(&b);
        for _ in 0..60_000 {
            time.advance(Duration::from_millis(1));
            granted += u32::from(b.withdraw());
        }
        assert_eq!(granted, 3);
        assert_eq!(b.balance(), 0.0, "the balance shows the streak's refusal");
    }

    #[test]
    fn one_success_ends_the_streak() {
        let (b, _) = streaked(2);
        deposit(&b, 100);
        assert_eq!(drain(&b), 2);
        deposit(&b, 1);
        assert_eq!(drain(&b), 2, "a new success allows another streak");
        // Refused withdrawals count in the streak too: asking again changes nothing.
        assert!(!b.withdraw() && !b.withdraw());
        deposit(&b, 1);
        assert!(b.withdraw());
    }

    #[test]
    fn a_refunded_success_does_not_end_the_streak() {
        let (b, _) = streaked(1);
        deposit(&b, 100);
        assert!(b.withdraw());
        deposit(&b, 1);
        b.refund();
        assert!(!b.withdraw(), "a refunded deposit ended the streak");
    }

    #[test]
    fn a_stale_count_never_ends_the_streak() {
        let terms = Terms {
            failure_streak: 1,
            ..terms(1.0, 0.0)
        };
        let mut ledger = Ledger::new(0, &terms);
        ledger.settle(0, counts(10, 0), &terms);
        assert!(ledger.withdraw(&terms));
        // A withdrawal that summed the stripes before the one above settled: nothing new.
        ledger.settle(0, counts(4, 0), &terms);
        assert!(!ledger.withdraw(&terms));
        ledger.settle(0, counts(11, 0), &terms);
        assert!(ledger.withdraw(&terms));
    }

    #[test]
    fn time_alone_never_ends_the_streak() {
        let (b, time) = streaked(1);
        deposit(&b, 100);
        assert!(b.withdraw());
        time.advance(DAY);
        assert!(!b.withdraw(), "a quiet day ended a streak no success ended");
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
