//! A retry budget leaves nothing behind: once its last clone is dropped, every byte it
//! allocated is freed (its deposit stripes included).
//!
//! A counting allocator, per thread so other tests' threads do not disturb the count (the same
//! device as `tests/alloc.rs`; a second copy because a test binary has one global allocator).
#![cfg(not(seawall_loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use seawall::clock::{Clock, ManualClock};
use seawall::retry::RetryBudget;

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + layout.size() as i64));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - layout.size() as i64));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + new_size as i64 - layout.size() as i64));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

#[test]
fn a_dropped_budget_frees_all_of_its_memory() {
    let used = || {
        let time = ManualClock::new();
        let budget = RetryBudget::builder()
            .clock(Clock::from(time.clone()))
            .build()
            .unwrap();
        let clone = budget.clone();
        budget.deposit();
        clone.refund();
        let _ = clone.withdraw();
        let _ = budget.balance();
    };
    used(); // this thread's stripe is taken, any lazy state is set up
    let before = live();
    for _ in 0..100 {
        used();
    }
    let grown = live() - before;
    assert_eq!(grown, 0, "100 dropped budgets left {grown} bytes behind");
}
