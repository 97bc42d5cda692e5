//! Lanes: how a layered service keeps cores from fighting over one reference count.
//!
//! Every admitted call holds a reference to its breaker (that is how a call in flight keeps
//! it alive). With one count, every call on every core writes the same cache line, and two
//! cores calling at once pay for moving that line between them on every call. A service
//! holds a few lanes instead (handles on the breaker whose counts are separate allocations,
//! aligned to 128 bytes, see [`Lane`](super::breaker::Lane)); a call takes a reference to the
//! lane of its thread, so threads on different cores write different lines. The lanes only multiply the count; the state word
//! and everything else stay one, shared by every lane, clone and service.

use super::breaker::CircuitBreaker;
use crate::sync::thread_index;

/// Most lanes a service takes (memory: 256 bytes each).
const MAX_LANES: usize = 8;

/// The lanes of one service (and its clones): handles on one circuit, each with a reference
/// count of its own.
pub(crate) struct Lanes {
    /// A power of two long (at least one), so a thread's lane is a mask away.
    lanes: Box<[CircuitBreaker]>,
    /// The handle the service was built with (its `breaker()`).
    breaker: CircuitBreaker,
}

impl Lanes {
    /// One lane per core (up to [`MAX_LANES`]), rounded up to a power of two.
    pub(crate) fn new(breaker: CircuitBreaker) -> Lanes {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let n = cores.clamp(1, MAX_LANES).next_power_of_two();
        Lanes {
            lanes: (0..n).map(|_| breaker.new_lane()).collect(),
            breaker,
        }
    }

    /// The handle on the calling thread's lane.
    #[inline]
    pub(crate) fn pick(&self) -> &CircuitBreaker {
        // Masked to the length, a power of two: always in bounds.
        &self.lanes[thread_index() & (self.lanes.len() - 1)]
    }

    /// The handle the service was built with.
    pub(crate) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_lane_and_two_threads_get_different_ones() {
        let here = thread_index();
        assert_eq!(thread_index(), here, "stable within a thread");
        let there = std::thread::spawn(thread_index).join().unwrap();
        assert_ne!(here, there);
        // Two threads in a row take neighbouring numbers, so with two lanes or more they
        // write different counts.
        let breaker = CircuitBreaker::default();
        let lanes = Lanes::new(breaker.clone());
        assert!(lanes.lanes.len().is_power_of_two() && lanes.lanes.len() <= MAX_LANES);
        assert!(lanes.pick().same_circuit(&breaker));
        assert!(!crate::sync::Arc::ptr_eq(&lanes.pick().lane, &breaker.lane));
    }
}
