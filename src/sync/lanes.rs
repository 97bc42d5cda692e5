//! Lanes: how a pattern keeps cores from fighting over one reference count.
//!
//! A call in flight holds a reference to what it needs (a breaker's circuit, a retry policy),
//! so that it outlives the stack it was made through: one increment when it starts, one
//! decrement when it ends. With one count, every call on every core writes the same cache
//! line, and two cores calling at once pay for moving that line between them on every call.
//! A layer holds a few lanes on its target instead: each [`Lane`] is a handle of its own (a
//! separate allocation, aligned to 128 bytes so it shares a line with nothing, not even the
//! neighbouring line the CPU may prefetch along) holding one reference to the target. A call
//! clones the lane of its thread ([`Lanes::pick`]), so calls on different cores write
//! different lines. The lanes only multiply the count: the target stays one, shared by every
//! lane.

use std::ops::Deref;

use super::{thread_index, Arc};

/// Most lanes one [`Lanes`] makes (memory: 256 bytes each, counts included).
pub(crate) const MAX_LANES: usize = 8;

/// A reference to a `T`, on cache lines of its own, reached through an `Arc<Lane<T>>` whose
/// count is the one its holders write. Dereferences to the `T`.
#[repr(align(128))]
pub(crate) struct Lane<T> {
    target: Arc<T>,
}

impl<T> Lane<T> {
    /// A new lane on `target`: one allocation, and one more reference to `target`.
    pub(crate) fn new(target: Arc<T>) -> Arc<Lane<T>> {
        Arc::new(Lane { target })
    }

    /// The target's own `Arc`, shared by every lane on it.
    pub(crate) fn target(&self) -> &Arc<T> {
        &self.target
    }
}

impl<T> Deref for Lane<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.target
    }
}

/// A few lanes on one target: one per core, up to [`MAX_LANES`], a power of two. Built once
/// (by a layer, when it is made) and shared by everything that calls through it.
pub(crate) struct Lanes<T> {
    /// A power of two long (at least one), so a thread's lane is a mask away.
    lanes: Box<[Arc<Lane<T>>]>,
}

impl<T> Lanes<T> {
    /// One lane on `target` per core (up to [`MAX_LANES`]), rounded up to a power of two.
    pub(crate) fn new(target: &Arc<T>) -> Lanes<T> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let n = cores.clamp(1, MAX_LANES).next_power_of_two();
        Lanes {
            lanes: (0..n).map(|_| Lane::new(target.clone())).collect(),
        }
    }

    /// The calling thread's lane: clone it to hold the target by its count.
    #[inline]
    pub(crate) fn pick(&self) -> &Arc<Lane<T>> {
        // Masked to the length, a power of two: always in bounds.
        &self.lanes[thread_index() & (self.lanes.len() - 1)]
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
        let target = Arc::new(7_u32);
        let lanes = Lanes::new(&target);
        let n = lanes.lanes.len();
        assert!(n.is_power_of_two() && n <= MAX_LANES);
        assert!(Arc::ptr_eq(lanes.pick().target(), &target));
        assert!(lanes.lanes.iter().all(|l| Arc::ptr_eq(l.target(), &target)));
        assert_eq!(***lanes.pick(), 7);
        // Each lane holds one reference to the target, and its own count.
        assert_eq!(Arc::strong_count(&target), 1 + n);
        let held = lanes.pick().clone();
        assert_eq!(Arc::strong_count(&target), 1 + n);
        assert_eq!(Arc::strong_count(&held), 2);
        drop(lanes);
        assert_eq!(
            Arc::strong_count(&target),
            2,
            "the held lane keeps the target"
        );
        drop(held);
        assert_eq!(Arc::strong_count(&target), 1);
    }

    #[test]
    fn a_lane_is_alone_on_its_cache_lines() {
        assert_eq!(std::mem::align_of::<Lane<u8>>(), 128);
        assert_eq!(std::mem::size_of::<Lane<u8>>(), 128);
    }
}
