//! The pure arithmetic of adaptive throttling: the rejection probability, the draw against
//! it, the bucket a time falls in, and the packed counts the stripes hold. No atomics, no
//! clock: everything here is a function of its arguments, tested beside it.

/// The buckets one window is kept in: the window moves a tenth of its length at a time.
pub(crate) const BUCKETS: u64 = 10;

/// Google SRE's client request rejection probability: `max(0, (requests − k × accepts) /
/// (requests + 1))`, for `requests` made and `accepts` accepted by the backend over the
/// window.
///
/// Zero while `requests <= k × accepts`; below 1 always (some requests keep going through,
/// which is how the throttle sees the backend recover). `k` is the multiplier: at `k = 2` the
/// backend sees about twice the requests it accepts.
///
/// ```
/// use seawall::throttle::rejection_probability;
///
/// assert_eq!(rejection_probability(100, 50, 2.0), 0.0); // 100 <= 2 × 50
/// assert_eq!(rejection_probability(100, 12, 2.0), 76.0 / 101.0);
/// assert_eq!(rejection_probability(0, 0, 2.0), 0.0); // a fresh throttle sheds nothing
/// ```
pub fn rejection_probability(requests: u64, accepts: u64, k: f64) -> f64 {
    // Counts far beyond 2^53 lose precision in `f64`, not meaning: a probability.
    let (r, a) = (requests as f64, accepts as f64);
    let p = (r - k * a) / (r + 1.0);
    if p > 0.0 {
        p
    } else {
        0.0
    }
}

/// The draw's scale: a draw is the top 53 bits of a random `u64`, uniform in `0..2^53`.
const SCALE: f64 = (1u64 << 53) as f64;

/// The draw threshold for probability `p`: a call is rejected when its draw is below it, so
/// with probability `threshold / 2^53`, `p` rounded down to a multiple of 2^-53. Zero for
/// `p <= 0` (no draw is made), and below 2^53 for `p < 1`.
#[inline]
pub(crate) fn threshold(p: f64) -> u64 {
    if p > 0.0 {
        // Saturating float-to-int conversion: p < 1 gives at most 2^53 - 1.
        (p * SCALE) as u64
    } else {
        0
    }
}

/// The probability a threshold stands for (exact: both are multiples of 2^-53).
#[cfg(test)]
fn probability_of(threshold: u64) -> f64 {
    threshold as f64 / SCALE
}

/// Whether random bits `bits` fall under `threshold`: the local rejection.
#[inline]
pub(crate) fn draw_rejects(bits: u64, threshold: u64) -> bool {
    (bits >> 11) < threshold
}

/// The bucket `now_nanos` falls in, for buckets `bucket_nanos` long (at least 1).
#[inline]
pub(crate) fn epoch(now_nanos: u64, bucket_nanos: u64) -> u64 {
    now_nanos / bucket_nanos.max(1)
}

/// Whether a bucket of epoch `bucket` is inside the window that ends with bucket `now`: the
/// last [`BUCKETS`] buckets, `now` included.
#[inline]
pub(crate) fn in_window(bucket: u64, now: u64) -> bool {
    bucket <= now && now - bucket < BUCKETS
}

// ===== packed counts =====
//
// A stripe holds one cumulative word: requests × 2^32 + accepts, modulo 2^64. A verdict adds
// `Counts::packed` (2^32 for a rejection, 2^32 + 1 for an accept) to it in one atomic add, so a reader never sees an accept without
// its request. The encoding is linear, so the difference of two words read at two moments is
// the counts made in between, exactly, as long as fewer than 2^32 requests came in between
// (the throttle settles a stripe every 2^30 requests at the latest, see `SETTLE_EVERY`).

/// One request the backend did not accept (or one shed locally).
#[cfg(test)]
pub(crate) const REQUEST: u64 = 1 << 32;
/// One request the backend accepted.
#[cfg(test)]
pub(crate) const ACCEPTED: u64 = REQUEST + 1;
/// A stripe whose request count reaches a multiple of this is settled at once, so the counts
/// between two settlements always fit the 32 bits of each half.
pub(crate) const SETTLE_EVERY: u64 = 1 << 30;

/// Requests and accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) accepts: u64,
}

impl Counts {
    pub(crate) const ZERO: Counts = Counts {
        requests: 0,
        accepts: 0,
    };
    pub(crate) const REJECTED: Counts = Counts {
        requests: 1,
        accepts: 0,
    };
    pub(crate) const ACCEPTED: Counts = Counts {
        requests: 1,
        accepts: 1,
    };

    pub(crate) const fn is_zero(self) -> bool {
        self.requests == 0 && self.accepts == 0
    }

    /// The counts made between two reads of a stripe, `old` then `new`.
    pub(crate) const fn between(old: u64, new: u64) -> Counts {
        let d = new.wrapping_sub(old);
        Counts {
            requests: d >> 32,
            accepts: d & 0xFFFF_FFFF,
        }
    }

    /// These counts as a word to add to a stripe (each below 2^32, as one verdict's are).
    pub(crate) const fn packed(self) -> u64 {
        (self.requests << 32).wrapping_add(self.accepts)
    }

    pub(crate) const fn plus(self, other: Counts) -> Counts {
        Counts {
            requests: self.requests.saturating_add(other.requests),
            accepts: self.accepts.saturating_add(other.accepts),
        }
    }
}

/// Whether a stripe add that found `old` brought its request count to a multiple of
/// [`SETTLE_EVERY`].
#[inline]
pub(crate) const fn reaches_settle_mark(old: u64) -> bool {
    ((old >> 32) + 1).is_multiple_of(SETTLE_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_follows_the_sre_formula() {
        assert_eq!(rejection_probability(0, 0, 2.0), 0.0);
        assert_eq!(rejection_probability(1, 0, 2.0), 0.5);
        assert_eq!(rejection_probability(3, 0, 2.0), 0.75);
        assert_eq!(rejection_probability(10, 5, 2.0), 0.0);
        assert_eq!(rejection_probability(11, 5, 2.0), 1.0 / 12.0);
        assert_eq!(rejection_probability(100, 0, 1.0), 100.0 / 101.0);
        assert_eq!(rejection_probability(100, 100, 1.0), 0.0);
        // Never 1: some requests always reach the backend.
        assert!(rejection_probability(u64::MAX, 0, 1.0) <= 1.0);
        assert!(rejection_probability(1 << 40, 0, 1.0) < 1.0);
    }

    #[test]
    fn threshold_rounds_down_and_draws_reject_below_it() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(0.5), 1 << 52);
        assert_eq!(probability_of(threshold(0.75)), 0.75);
        // p = 0.5: the lower half of the draws reject.
        let t = threshold(0.5);
        assert!(draw_rejects(0, t));
        assert!(draw_rejects((1 << 63) - 1, t));
        assert!(!draw_rejects(1 << 63, t));
        assert!(!draw_rejects(u64::MAX, t));
        // p = 0 rejects nothing, whatever the draw.
        assert!(!draw_rejects(0, 0));
        assert!(threshold(0.999_999_999) < 1 << 53);
    }

    #[test]
    fn window_holds_the_last_ten_buckets() {
        assert_eq!(epoch(0, 100), 0);
        assert_eq!(epoch(99, 100), 0);
        assert_eq!(epoch(100, 100), 1);
        assert_eq!(epoch(5, 0), 5, "a zero bucket length counts as 1 ns");
        assert!(in_window(10, 10));
        assert!(in_window(1, 10));
        assert!(!in_window(0, 10));
        assert!(
            !in_window(11, 10),
            "a bucket from the future is not in the window"
        );
    }

    #[test]
    fn packed_counts_survive_wrapping() {
        let start = u64::MAX - 5; // a stripe about to wrap
        let mut w = start;
        for _ in 0..3 {
            w = w.wrapping_add(ACCEPTED);
        }
        w = w.wrapping_add(REQUEST);
        assert_eq!(
            Counts::between(start, w),
            Counts {
                requests: 4,
                accepts: 3
            }
        );
        assert_eq!(Counts::ACCEPTED.packed(), ACCEPTED);
        assert_eq!(Counts::REJECTED.packed(), REQUEST);
        assert!(reaches_settle_mark((SETTLE_EVERY - 1) << 32));
        assert!(!reaches_settle_mark(SETTLE_EVERY << 32));
        assert!(Counts::ZERO.is_zero());
    }
}
