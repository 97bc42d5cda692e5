//! Sliding windows of call outcomes: count-based (the last N calls) and time-based (the last
//! T, in buckets, so memory is fixed whatever the traffic).
//!
//! Windows are plain data; the breaker keeps one behind a short mutex and only when a rate
//! condition (failure rate or slow-call rate) is configured. The default breaker
//! (consecutive failures only) has no window and takes no lock.

use std::time::Duration;

/// Which sliding window the failure-rate and slow-call-rate conditions are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` recorded calls.
    Count(u32),
    /// The calls of the last `duration`, kept in `buckets` buckets of `duration / buckets`
    /// each, to the nanosecond: bucket `k` holds the calls made at clock times `t` (in
    /// nanoseconds) with `t * buckets / duration == k`, so any `buckets` consecutive buckets
    /// span exactly `duration`, even when `duration / buckets` is not a whole number of
    /// nanoseconds (widths then differ by at most 1 ns). Calls age out one bucket at a time:
    /// a bucket leaves the window when the current bucket is `buckets` ahead of it, so a call
    /// is never counted once it is `duration` old, and always counted while it is younger than
    /// `duration` less one bucket (with `buckets: 1` it is a tumbling window). More buckets,
    /// smoother ageing; memory is one small counter triple per bucket, whatever the traffic.
    Time {
        /// Span of the window.
        duration: Duration,
        /// Number of buckets the span is cut into (resolution of ageing out).
        buckets: u32,
    },
}

impl Default for SlidingWindow {
    /// The last 100 calls.
    fn default() -> Self {
        SlidingWindow::Count(100)
    }
}

/// Aggregated counts of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Counts {
    fn add(&mut self, failure: bool, slow: bool) {
        self.calls = self.calls.saturating_add(1);
        self.failures = self.failures.saturating_add(u32::from(failure));
        self.slow = self.slow.saturating_add(u32::from(slow));
    }
    fn sub(&mut self, failure: bool, slow: bool) {
        self.calls = self.calls.saturating_sub(1);
        self.failures = self.failures.saturating_sub(u32::from(failure));
        self.slow = self.slow.saturating_sub(u32::from(slow));
    }
}

const FAILURE: u8 = 1;
const SLOW: u8 = 2;

/// A window's state: a ring of the last N outcomes, or a ring of time buckets.
#[derive(Debug)]
pub(crate) enum Window {
    Count {
        /// Outcomes as bit sets (FAILURE | SLOW); `len` valid entries ending before `next`.
        ring: Box<[u8]>,
        next: usize,
        len: usize,
        totals: Counts,
    },
    Time {
        /// Which bucket a time falls in.
        bucketing: Bucketing,
        /// (bucket index since the clock's epoch, counts), the index `None` while the bucket
        /// is empty; a bucket is live when its index is within the last `buckets.len()`
        /// indices. (Every `u64` is a real index: at the clock's end, a 1 ns bucket's is
        /// `u64::MAX`, so no index value can mark an empty bucket.)
        buckets: Box<[(Option<u64>, Counts)]>,
    },
}

/// Cuts a time window's `span` nanoseconds into `buckets` buckets: bucket `k` holds the times
/// `t` with `t * buckets / span == k`, so `buckets` consecutive buckets span exactly `span`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucketing {
    /// `span / buckets` when that is a whole number of nanoseconds (the bucket is then
    /// `t / width`, the same value, without 128-bit arithmetic), else 0.
    width: u64,
    buckets: u64,
    /// The window's span in nanoseconds (at least 1).
    span: u128,
}

impl Bucketing {
    pub(crate) fn new(duration: Duration, buckets: u32) -> Bucketing {
        let buckets = u64::from(buckets.max(1));
        let span = duration.as_nanos().max(1);
        let width = if span.is_multiple_of(u128::from(buckets)) {
            u64::try_from(span / u128::from(buckets)).unwrap_or(0)
        } else {
            0
        };
        Bucketing {
            width,
            buckets,
            span,
        }
    }

    /// The index of the bucket time `t` falls in.
    pub(crate) fn index(&self, t: u64) -> u64 {
        if let Some(index) = t.checked_div(self.width) {
            return index;
        }
        // Fits in 64 bits whenever buckets are at least 1 ns wide (the builder's rule), since
        // then `buckets / span <= 1`; saturates otherwise.
        let index = u128::from(t) * u128::from(self.buckets) / self.span;
        u64::try_from(index).unwrap_or(u64::MAX)
    }
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow) -> Window {
        match kind {
            SlidingWindow::Count(n) => Window::Count {
                ring: vec![0; n.max(1) as usize].into_boxed_slice(),
                next: 0,
                len: 0,
                totals: Counts::default(),
            },
            SlidingWindow::Time { duration, buckets } => Window::Time {
                bucketing: Bucketing::new(duration, buckets),
                buckets: vec![(None, Counts::default()); buckets.max(1) as usize]
                    .into_boxed_slice(),
            },
        }
    }

    /// Forgets every recorded outcome.
    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count {
                next, len, totals, ..
            } => {
                *next = 0;
                *len = 0;
                *totals = Counts::default();
            }
            Window::Time { buckets, .. } => {
                for b in buckets.iter_mut() {
                    *b = (None, Counts::default());
                }
            }
        }
    }

    /// Records one outcome observed at `now` (nanoseconds; only time windows read it).
    pub(crate) fn record(&mut self, now: u64, failure: bool, slow: bool) {
        match self {
            Window::Count {
                ring,
                next,
                len,
                totals,
            } => {
                let cap = ring.len();
                if *len == cap {
                    let old = ring[*next];
                    totals.sub(old & FAILURE != 0, old & SLOW != 0);
                } else {
                    *len += 1;
                }
                ring[*next] = (u8::from(failure) * FAILURE) | (u8::from(slow) * SLOW);
                totals.add(failure, slow);
                *next = (*next + 1) % cap;
            }
            Window::Time { bucketing, buckets } => {
                let index = bucketing.index(now);
                let slot = (index % buckets.len() as u64) as usize;
                let bucket = &mut buckets[slot];
                if bucket.0 != Some(index) {
                    *bucket = (Some(index), Counts::default());
                }
                bucket.1.add(failure, slow);
            }
        }
    }

    /// The totals of the window as seen at `now`.
    pub(crate) fn counts(&self, now: u64) -> Counts {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time { bucketing, buckets } => {
                let current = bucketing.index(now);
                let span = buckets.len() as u64;
                let mut sum = Counts::default();
                for (index, counts) in buckets.iter() {
                    let live = index.is_some_and(|i| i <= current && current - i < span);
                    if live {
                        sum.calls = sum.calls.saturating_add(counts.calls);
                        sum.failures = sum.failures.saturating_add(counts.failures);
                        sum.slow = sum.slow.saturating_add(counts.slow);
                    }
                }
                sum
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_last_n() {
        let mut w = Window::new(SlidingWindow::Count(3));
        w.record(0, true, false);
        w.record(0, true, true);
        w.record(0, false, false);
        assert_eq!(
            w.counts(0),
            Counts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        w.record(0, false, false); // evicts the first failure
        assert_eq!(
            w.counts(0),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        w.record(0, false, false); // evicts the slow failure
        assert_eq!(
            w.counts(0),
            Counts {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
        w.clear();
        assert_eq!(w.counts(0), Counts::default());
    }

    #[test]
    fn time_window_ages_out_by_bucket() {
        let second = 1_000_000_000;
        let mut w = Window::new(SlidingWindow::Time {
            duration: Duration::from_secs(10),
            buckets: 10,
        });
        w.record(0, true, false);
        w.record(5 * second, false, true);
        assert_eq!(
            w.counts(5 * second),
            Counts {
                calls: 2,
                failures: 1,
                slow: 1
            }
        );
        // At 10 s the bucket [0, 1 s) has left the window.
        assert_eq!(
            w.counts(10 * second),
            Counts {
                calls: 1,
                failures: 0,
                slow: 1
            }
        );
        // A record 20 s later reuses slot 0 and the old slot-5 bucket is out too.
        w.record(20 * second, true, false);
        assert_eq!(
            w.counts(20 * second),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn buckets_span_exactly_the_duration_to_the_nanosecond() {
        // 8191 ns in 4096 buckets: not a whole number of nanoseconds per bucket. Flooring the
        // width to 1 ns made the window 4096 ns wide, half of what was configured.
        let b = Bucketing::new(Duration::from_nanos(8191), 4096);
        for t in 0..3 * 8191 {
            assert_eq!(b.index(t + 8191), b.index(t) + 4096, "t = {t}");
            assert!(b.index(t + 1) - b.index(t) <= 1, "no bucket is skipped");
        }

        let mut w = Window::new(SlidingWindow::Time {
            duration: Duration::from_nanos(8191),
            buckets: 4096,
        });
        w.record(0, true, false);
        assert_eq!(
            w.counts(8189).calls,
            1,
            "younger than the duration less one bucket"
        );
        assert_eq!(w.counts(8191).calls, 0, "gone once `duration` old");
    }

    #[test]
    fn a_whole_width_and_the_exact_formula_agree() {
        for (nanos, buckets) in [(10_000_000_000u64, 10u32), (4096, 4096), (6, 3), (7, 7)] {
            let b = Bucketing::new(Duration::from_nanos(nanos), buckets);
            assert_ne!(b.width, 0, "{nanos} ns / {buckets}");
            let exact = |t: u64| {
                u64::try_from(u128::from(t) * u128::from(buckets) / u128::from(nanos)).unwrap()
            };
            for t in (0..10_000).chain([u64::MAX - 1, u64::MAX, u64::MAX / 3, 1 << 63]) {
                assert_eq!(b.index(t), exact(t), "{nanos} ns / {buckets} at {t}");
            }
        }
        // Longer than a u64 of nanoseconds: exact, never saturated to 584 years.
        let b = Bucketing::new(Duration::MAX, 7);
        assert_eq!(b.index(u64::MAX), 0);
    }

    #[test]
    fn a_bucket_at_the_clock_end_counts() {
        // The bucket index of u64::MAX ns with 1 ns buckets is u64::MAX, which used to be the
        // marker of an empty bucket.
        let mut w = Window::new(SlidingWindow::Time {
            duration: Duration::from_nanos(10),
            buckets: 10,
        });
        for _ in 0..5 {
            w.record(u64::MAX, true, false);
        }
        assert_eq!(
            w.counts(u64::MAX),
            Counts {
                calls: 5,
                failures: 5,
                slow: 0
            }
        );
        w.clear();
        assert_eq!(w.counts(u64::MAX), Counts::default());
    }
}
