//! The latencies the percentile mode hedges after: a rotating histogram, in the manner of
//! tower's `hedge` (two halves: the one read holds the last full `period`, the one written
//! holds the current one; every `period` the written half becomes the read one).
//!
//! Pure: it is given the time (the policy's clock, in nanoseconds) and reads none. Values are
//! kept in microseconds, in log-linear buckets: exact below 16 µs, then 16 buckets per power
//! of two, so a bucket's upper bound is within 1/16 (6.25 %) above any value in it. A
//! percentile is answered with its bucket's upper bound: a hedge may go out up to 6.25 % later
//! than the exact percentile, never earlier. Values of 2^40 µs (12.7 days) and more share the
//! last bucket. Each half is 608 `u32` counts (2.4 KiB), allocated once with the policy.

use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// The largest exponent (of two, in microseconds) with buckets of its own.
const MAX_EXPONENT: u32 = 40;
/// Buckets per half: values below `SUB` one each, then `SUB` per exponent from `SUB_BITS`.
const BUCKETS: usize = (MAX_EXPONENT - SUB_BITS + 2) as usize * SUB;

/// The bucket of a latency of `micros` microseconds.
fn bucket(micros: u64) -> usize {
    let micros = micros.min((1 << (MAX_EXPONENT + 1)) - 1);
    if micros < SUB as u64 {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let shift = exponent - SUB_BITS;
    let mantissa = (micros >> shift) as usize; // in SUB..2 * SUB
    (shift as usize + 1) * SUB + (mantissa - SUB)
}

/// The largest latency, in microseconds, that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let shift = (index / SUB - 1) as u32;
    let mantissa = (SUB + index % SUB) as u64;
    ((mantissa + 1) << shift) - 1
}

/// One period's latencies.
struct Half {
    counts: Box<[u32]>,
    len: u64,
}

impl Half {
    fn new() -> Half {
        Half {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            len: 0,
        }
    }

    fn clear(&mut self) {
        if self.len > 0 {
            self.counts.iter_mut().for_each(|c| *c = 0);
            self.len = 0;
        }
    }
}

/// The last full period's latencies (read) and the current one's (written).
pub(crate) struct RotatingHistogram {
    read: Half,
    write: Half,
    /// When the current period began, in the clock's nanoseconds.
    period_start: u64,
    /// At least 1.
    period: u64,
}

impl RotatingHistogram {
    /// An empty histogram whose first period begins at `now`.
    pub(crate) fn new(period: Duration, now: u64) -> RotatingHistogram {
        RotatingHistogram {
            read: Half::new(),
            write: Half::new(),
            period_start: now,
            period: crate::clock::duration_to_nanos(period).max(1),
        }
    }

    /// Moves to the period `now` falls in: one period on, the written half is the read one;
    /// two or more, both are empty (nothing was recorded for a whole period).
    fn rotate(&mut self, now: u64) {
        let periods = now.saturating_sub(self.period_start) / self.period;
        match periods {
            0 => return,
            1 => {
                std::mem::swap(&mut self.read, &mut self.write);
                self.write.clear();
            }
            _ => {
                self.read.clear();
                self.write.clear();
            }
        }
        self.period_start = self
            .period_start
            .saturating_add(periods.saturating_mul(self.period));
    }

    /// Records a latency of `nanos` at time `now`.
    pub(crate) fn record(&mut self, now: u64, nanos: u64) {
        self.rotate(now);
        let i = bucket(nanos.div_ceil(1000));
        self.write.counts[i] = self.write.counts[i].saturating_add(1);
        self.write.len += 1;
    }

    /// The `percentile` (in `(0, 100]`) of the last full period's latencies, once it holds at
    /// least `min_data_points` (at least 1) of them; `None` before.
    pub(crate) fn percentile(
        &mut self,
        now: u64,
        percentile: f64,
        min_data_points: u64,
    ) -> Option<Duration> {
        self.rotate(now);
        let len = self.read.len;
        if len < min_data_points.max(1) {
            return None;
        }
        // The rank of the value at the percentile, from 1: ⌈p × n / 100⌉, at least 1.
        let rank = ((percentile / 100.0 * len as f64).ceil() as u64).clamp(1, len);
        let mut seen = 0u64;
        for (i, count) in self.read.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return Some(Duration::from_micros(upper_bound(i)));
            }
        }
        // A count that saturated at u32::MAX leaves `seen` short of `len`: the last bucket.
        Some(Duration::from_micros(upper_bound(BUCKETS - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn buckets_are_exact_below_16_micros_and_within_a_sixteenth_above() {
        for v in 0..16 {
            assert_eq!(upper_bound(bucket(v)), v);
        }
        let mut previous = 0;
        for v in (16..5_000_000u64).step_by(7) {
            let b = bucket(v);
            assert!(b >= previous, "buckets are monotonic");
            previous = b;
            let upper = upper_bound(b);
            assert!(upper >= v, "{v} above its bucket's bound {upper}");
            assert!(upper - v <= v / 16, "{v}: bound {upper} too far above");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert!(upper_bound(BUCKETS - 1) >= 1 << MAX_EXPONENT);
    }

    #[test]
    fn no_percentile_until_a_full_period_holds_min_data_points() {
        let mut h = RotatingHistogram::new(Duration::from_secs(1), 0);
        for i in 0..100 {
            h.record(i * MS, (i + 1) * MS);
        }
        assert_eq!(
            h.percentile(500 * MS, 95.0, 100),
            None,
            "still being written"
        );
        // One period on: the 100 values are the read half.
        let p95 = h.percentile(1000 * MS, 95.0, 100).unwrap();
        assert!(p95 >= Duration::from_millis(95), "{p95:?}");
        assert!(p95 <= Duration::from_millis(95) * 17 / 16, "{p95:?}");
        assert_eq!(h.percentile(1000 * MS, 95.0, 101), None);
        let max = h.percentile(1000 * MS, 100.0, 1).unwrap();
        assert!(max >= Duration::from_millis(100) && max <= Duration::from_millis(107));
        let min = h.percentile(1000 * MS, 0.001, 1).unwrap();
        assert!(min >= Duration::from_millis(1) && min <= Duration::from_millis(2));
    }

    #[test]
    fn a_period_without_records_empties_the_histogram() {
        let mut h = RotatingHistogram::new(Duration::from_secs(1), 0);
        h.record(0, 5 * MS);
        assert!(h.percentile(1500 * MS, 50.0, 1).is_some());
        assert_eq!(
            h.percentile(2000 * MS, 50.0, 1),
            None,
            "the old period rotated out"
        );
        h.record(2100 * MS, 5 * MS);
        assert_eq!(
            h.percentile(4500 * MS, 50.0, 1),
            None,
            "two periods on: cleared"
        );
    }

    #[test]
    fn time_going_backwards_or_to_the_end_neither_panics_nor_rotates_wrongly() {
        let mut h = RotatingHistogram::new(Duration::from_nanos(1), u64::MAX - 5);
        h.record(0, u64::MAX); // before the start: counted in the current period
        assert_eq!(h.write.len, 1);
        h.record(u64::MAX, 0); // five periods on: both halves were cleared first
        assert_eq!((h.read.len, h.write.len), (0, 1));
        assert_eq!(h.percentile(u64::MAX, 100.0, 1), None);
    }
}
