//! The window: requests and accepts of the last [`BUCKETS`] buckets, counted on per-thread
//! stripes and folded into the buckets by one settling caller at a time.
//!
//! # How a count travels
//!
//! A verdict adds to its thread's stripe: one atomic add of a packed word (requests in the
//! high half, accepts in the low half), on a cache line no other stripe shares. No lock, no
//! clock, no shared line. The stripes are cumulative; a *settlement* reads them all, takes
//! the difference from what the previous settlement read (the counts made since), folds it
//! into a bucket, sums the window and publishes the totals and the rejection probability.
//! Calls decide from what was published: one load.
//!
//! One caller settles at a time, under the `gate` word (a try-lock nobody waits on: a caller
//! that finds it taken leaves its count on its stripe, raises the `DIRTY` bit and goes on;
//! the settling caller sees the bit when it leaves and settles once more, so no count is left
//! behind; after [`MAX_ROUNDS`] it leaves the bit for the next settlement, so no caller is
//! kept settling for others for long). The gate, the dirty bit and the hand-over of counts
//! are one word updated by read-modify-writes, so they need no `SeqCst` reasoning: the
//! release of each RMW and the acquire of the next carry the stripe adds along.
//!
//! # Dating
//!
//! Stripes carry no time. A settlement dates the counts it finds to the bucket of the
//! *previous* settlement: they were made after it (or it would have seen them), so that is
//! the oldest bucket they can come from. A count can so be forgotten early, never late: no
//! accept of a healthy spell long past is ever counted as recent, so an outage after a quiet
//! spell is not hidden behind old accepts (the storm a throttle exists to stop). Since every
//! admission reads the clock and settles when it finds a new bucket, while calls are made
//! the previous settlement is in the previous bucket at the oldest, and the dating is off by
//! less than a bucket. A caller that settles its own verdict passes it in rather than on its
//! stripe, dated to its own bucket exactly.
//!
//! Settlements are made: by the first admission in each new bucket; by every verdict the
//! backend did not accept and every local rejection (each raises the probability, so the next
//! call must see it); by accepts while the throttle sheds (each lowers it, so recovery is
//! seen at once); by a stripe every `SETTLE_EVERY` requests; and by the first admission
//! that finds the `DIRTY` bit left behind with the gate free, before it decides. So once a
//! verdict's caller has returned, the next decision counts it, unless a settlement is
//! running at that very moment (which folds it before it leaves, or leaves it to the next
//! admission). An accept while the throttle sheds nothing only adds to its stripe: it cannot
//! lower a probability of zero, and the next settlement folds it in.

use super::probability::{
    epoch, in_window, reaches_settle_mark, rejection_probability, Counts, BUCKETS,
};
use crate::sync::{thread_index, AtomicU64, Ordering};

/// Stripes per throttle (one cache line each). Fewer under loom, where every atomic access
/// is a point the model checker branches on.
#[cfg(not(seawall_loom))]
pub const STRIPES: usize = 16;
/// Stripes per throttle (one cache line each). Fewer under loom, where every atomic access
/// is a point the model checker branches on.
#[cfg(seawall_loom)]
pub const STRIPES: usize = 2;

/// The most settlements one caller makes in a row for others before it leaves the rest to
/// the next settlement. One under loom, so the models reach the hand-over to the next call.
#[cfg(not(seawall_loom))]
const MAX_ROUNDS: usize = 4;
/// The most settlements one caller makes in a row for others before it leaves the rest to
/// the next settlement. One under loom, so the models reach the hand-over to the next call.
#[cfg(seawall_loom)]
const MAX_ROUNDS: usize = 1;

/// The gate is taken.
const BUSY: u64 = 1;
/// Counts were left on the stripes (or a newer bucket was seen) while the gate was taken.
const DIRTY: u64 = 2;

/// A bucket's epoch before it was first used: never in any window.
const UNUSED: u64 = u64::MAX;

/// A cumulative count on a cache line of its own (128 bytes: x86 prefetches lines in pairs).
#[repr(align(128))]
struct Stripe(AtomicU64);

/// The counts of one tenth of the window. Written only by the settling caller.
struct Bucket {
    epoch: AtomicU64,
    requests: AtomicU64,
    accepts: AtomicU64,
}

/// What a settlement published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settled {
    /// The window's counts.
    pub(crate) counts: Counts,
    /// The rejection probability before this settlement.
    pub(crate) probability_before: f64,
    /// The rejection probability it published.
    pub(crate) probability: f64,
}

/// The window of one throttle: stripes, buckets, and what the last settlement published.
pub(crate) struct Window {
    stripes: [Stripe; STRIPES],
    /// `BUSY` and `DIRTY`; see the module docs.
    gate: AtomicU64,
    /// Each stripe's word as the last settlement read it. Under the gate.
    seen: [AtomicU64; STRIPES],
    /// The ring of buckets: epoch `e` lives at `e % BUCKETS`. Under the gate.
    buckets: [Bucket; BUCKETS as usize],
    /// The bucket of the last settlement. Under the gate.
    settled_epoch: AtomicU64,
    /// When that bucket ends, in the clock's nanoseconds: written under the gate, read by
    /// every admission to tell when a new bucket begins (a comparison, where the bucket
    /// number would cost a division).
    settled_until: AtomicU64,
    /// A tenth of the window, in nanoseconds (at least 1).
    bucket_nanos: u64,
    /// The newest bucket a caller that could not settle has seen, for the settlement that
    /// does it for them.
    newest_epoch: AtomicU64,
    /// Published by each settlement, read by calls: the rejection probability, as `f64`
    /// bits (0: shed nothing).
    probability: AtomicU64,
    /// Published with the probability, for snapshots and rejections' messages.
    requests: AtomicU64,
    accepts: AtomicU64,
    k: f64,
}

impl Window {
    pub(crate) fn new(k: f64, bucket_nanos: u64) -> Window {
        let bucket_nanos = bucket_nanos.max(1);
        Window {
            stripes: std::array::from_fn(|_| Stripe(AtomicU64::new(0))),
            gate: AtomicU64::new(0),
            seen: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| Bucket {
                epoch: AtomicU64::new(UNUSED),
                requests: AtomicU64::new(0),
                accepts: AtomicU64::new(0),
            }),
            settled_epoch: AtomicU64::new(0),
            settled_until: AtomicU64::new(bucket_nanos),
            bucket_nanos,
            newest_epoch: AtomicU64::new(0),
            probability: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            accepts: AtomicU64::new(0),
            k,
        }
    }

    /// The published rejection probability: one load. Relaxed: it is a number to decide
    /// on, it publishes no other memory.
    #[inline(always)]
    pub(crate) fn probability(&self) -> f64 {
        f64::from_bits(self.probability.load(Ordering::Relaxed))
    }

    /// Whether a call made at `now_nanos` must settle before it decides: a new bucket has
    /// begun, or counts were left for a settlement that has not run (see `leave`). Two
    /// loads of lines written only by settlements.
    #[inline(always)]
    pub(crate) fn needs_settling(&self, now_nanos: u64) -> bool {
        now_nanos >= self.settled_until.load(Ordering::Relaxed)
            || self.gate.load(Ordering::Relaxed) == DIRTY
    }

    /// The bucket `now_nanos` falls in.
    #[inline]
    pub(crate) fn epoch(&self, now_nanos: u64) -> u64 {
        epoch(now_nanos, self.bucket_nanos)
    }

    /// The newest bucket a settlement or a caller has seen, without reading the clock.
    pub(crate) fn newest_seen(&self) -> u64 {
        self.settled_epoch
            .load(Ordering::Relaxed)
            .max(self.newest_epoch.load(Ordering::Relaxed))
    }

    /// The published window counts (read one after the other: under traffic they may come
    /// from two settlements).
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            accepts: self.accepts.load(Ordering::Relaxed),
        }
    }

    /// The hot path of an accept while nothing is shed: one add on this thread's stripe.
    /// Returns whether that stripe is due a settlement (every `SETTLE_EVERY` requests).
    #[inline(always)]
    pub(crate) fn add(&self, counts: Counts) -> bool {
        let stripe = &self.stripes[thread_index() % STRIPES].0;
        // Relaxed: a settlement that must see this add is reached through the gate word,
        // whose read-modify-writes order it (see `settle`); one that merely happens to
        // read it later counts it then.
        let old = stripe.fetch_add(counts.packed(), Ordering::Relaxed);
        reaches_settle_mark(old)
    }

    /// Folds every count made so far into the window, with `own` (a verdict of the caller's,
    /// not yet on any stripe) dated to bucket `epoch`, and publishes the result. If another
    /// caller is settling, leaves `own` on the stripe for it and returns `None` at once.
    pub(crate) fn settle(&self, epoch: u64, own: Counts) -> Option<Settled> {
        // Acquire: the previous settlement's bucket and stripe records (released when it
        // left the gate) are what this one starts from.
        if self.gate.fetch_or(BUSY, Ordering::Acquire) & BUSY == 0 {
            // Everything a `DIRTY` announced is on the stripes by now: this fold takes it.
            self.gate.fetch_and(!DIRTY, Ordering::Acquire);
            let settled = self.fold(epoch, own);
            return Some(self.leave(settled));
        }
        if !own.is_zero() {
            self.add(own);
        }
        if epoch > self.newest_epoch.load(Ordering::Relaxed) {
            self.newest_epoch.fetch_max(epoch, Ordering::Relaxed);
        }
        // Release: the add and the epoch above happen before whoever reads this bit
        // (Acquire, in `leave` or the next `settle`) reads the stripes.
        if self.gate.fetch_or(BUSY | DIRTY, Ordering::AcqRel) & BUSY == 0 {
            // The settling caller left in between: the gate is ours.
            self.gate.fetch_and(!DIRTY, Ordering::Acquire);
            let settled = self.fold(epoch, Counts::ZERO);
            return Some(self.leave(settled));
        }
        None
    }

    /// Leaves the gate, settling again first while others announced counts in the meantime
    /// (at most [`MAX_ROUNDS`] times).
    fn leave(&self, mut settled: Settled) -> Settled {
        for _ in 0..MAX_ROUNDS {
            // Release: this settlement's records go to the next one (its Acquire).
            match self
                .gate
                .compare_exchange(BUSY, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return settled,
                Err(_) => {
                    // `DIRTY`: take it (Acquire: the adds it announced), fold again.
                    self.gate.fetch_and(!DIRTY, Ordering::Acquire);
                    let before = settled.probability_before;
                    settled = self.fold(self.newest_seen(), Counts::ZERO);
                    settled.probability_before = before;
                }
            }
        }
        // Enough for others: leave `DIRTY` set, so the next caller to settle folds the rest.
        self.gate.fetch_and(!BUSY, Ordering::Release);
        settled
    }

    /// The settlement itself, under the gate.
    fn fold(&self, epoch: u64, own: Counts) -> Settled {
        let previous = self.settled_epoch.load(Ordering::Relaxed);
        let now = epoch.max(self.newest_seen());
        let mut found = Counts::ZERO;
        for (stripe, seen) in self.stripes.iter().zip(&self.seen) {
            let word = stripe.0.load(Ordering::Relaxed);
            let old = seen.load(Ordering::Relaxed);
            if word != old {
                seen.store(word, Ordering::Relaxed);
                found = found.plus(Counts::between(old, word));
            }
        }
        // Counts from the stripes: made after the previous settlement, dated to its bucket
        // (early, never late; see the module docs). The caller's own: to its bucket.
        self.credit(previous, found, now);
        self.credit(epoch.max(previous), own, now);

        let mut counts = Counts::ZERO;
        for bucket in &self.buckets {
            let e = bucket.epoch.load(Ordering::Relaxed);
            if e != UNUSED && in_window(e, now) {
                counts = counts.plus(Counts {
                    requests: bucket.requests.load(Ordering::Relaxed),
                    accepts: bucket.accepts.load(Ordering::Relaxed),
                });
            }
        }
        let p = rejection_probability(counts.requests, counts.accepts, self.k);
        self.settled_epoch.store(now, Ordering::Relaxed);
        self.settled_until.store(
            now.saturating_add(1).saturating_mul(self.bucket_nanos),
            Ordering::Relaxed,
        );
        self.requests.store(counts.requests, Ordering::Relaxed);
        self.accepts.store(counts.accepts, Ordering::Relaxed);
        let before = self.probability.swap(p.to_bits(), Ordering::Relaxed);
        Settled {
            counts,
            probability_before: f64::from_bits(before),
            probability: p,
        }
    }

    /// Adds `counts` to the bucket of epoch `epoch`, if it is still in the window ending at
    /// `now`; a bucket that held an older epoch is reset first.
    fn credit(&self, epoch: u64, counts: Counts, now: u64) {
        if counts.is_zero() || !in_window(epoch, now) {
            return;
        }
        // In bounds: a remainder of `BUCKETS`.
        let bucket = &self.buckets[(epoch % BUCKETS) as usize];
        let held = bucket.epoch.load(Ordering::Relaxed);
        if held != epoch {
            // `held` is older (or unused): epochs in the window map to distinct buckets, and
            // none newer than `now` is ever written.
            bucket.epoch.store(epoch, Ordering::Relaxed);
            bucket.requests.store(0, Ordering::Relaxed);
            bucket.accepts.store(0, Ordering::Relaxed);
        }
        let r = bucket.requests.load(Ordering::Relaxed);
        let a = bucket.accepts.load(Ordering::Relaxed);
        bucket
            .requests
            .store(r.saturating_add(counts.requests), Ordering::Relaxed);
        bucket
            .accepts
            .store(a.saturating_add(counts.accepts), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(seawall_loom)))]
mod tests {
    use super::*;

    const R: Counts = Counts::REJECTED;
    const A: Counts = Counts::ACCEPTED;

    #[test]
    fn a_settled_verdict_is_published_at_once() {
        let w = Window::new(2.0, 1);
        let s = w.settle(0, R).unwrap();
        assert_eq!(s.counts, R);
        assert_eq!(s.probability, 0.5);
        assert_eq!(s.probability_before, 0.0);
        assert_eq!(w.counts(), R);
    }

    #[test]
    fn stripe_counts_are_folded_by_the_next_settlement() {
        let w = Window::new(2.0, 1);
        for _ in 0..3 {
            w.add(A);
        }
        assert_eq!(w.counts(), Counts::ZERO, "not yet settled");
        let s = w.settle(0, R).unwrap();
        assert_eq!(
            s.counts,
            Counts {
                requests: 4,
                accepts: 3
            }
        );
        assert_eq!(s.probability, 0.0);
    }

    #[test]
    fn counts_leave_the_window_after_ten_buckets() {
        let w = Window::new(2.0, 1);
        w.settle(0, R);
        w.settle(5, R);
        assert_eq!(w.counts().requests, 2);
        w.settle(9, Counts::ZERO);
        assert_eq!(w.counts().requests, 2);
        w.settle(10, Counts::ZERO);
        assert_eq!(w.counts().requests, 1, "bucket 0 left the window");
        w.settle(15, Counts::ZERO);
        assert_eq!(w.counts(), Counts::ZERO);
        assert_eq!(w.probability(), 0.0);
    }

    #[test]
    fn stripe_counts_are_dated_to_the_previous_settlement_never_later() {
        let w = Window::new(2.0, 1);
        w.settle(0, Counts::ZERO);
        for _ in 0..10 {
            w.add(A);
        }
        // Found at bucket 30: made after bucket 0's settlement, dated to it, long gone.
        let s = w.settle(30, R).unwrap();
        assert_eq!(s.counts, R, "old accepts are not counted as recent");
    }

    #[test]
    fn a_busy_gate_leaves_the_count_for_the_settling_caller() {
        let w = Window::new(2.0, 1);
        // Take the gate by hand, as a settling caller would.
        w.gate.fetch_or(BUSY, Ordering::Acquire);
        assert_eq!(w.settle(0, R), None);
        assert_eq!(w.gate.load(Ordering::Relaxed), BUSY | DIRTY);
        // The holder leaves: it sees `DIRTY`, and settles the count.
        let s = w.leave(w.fold(0, Counts::ZERO));
        assert_eq!(s.counts, R);
        assert_eq!(w.gate.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn leaving_settles_again_for_counts_announced_meanwhile() {
        let w = Window::new(2.0, 1);
        w.gate.fetch_or(BUSY, Ordering::Acquire);
        let first = w.fold(0, Counts::ZERO);
        // Another caller announces a count while this one settles.
        assert_eq!(w.settle(0, R), None);
        let s = w.leave(first);
        assert_eq!(s.counts, R, "the second round folded it");
        assert_eq!(
            s.probability_before, 0.0,
            "the change is reported from the first round"
        );
        assert_eq!(w.gate.load(Ordering::Relaxed), 0);
    }
}
