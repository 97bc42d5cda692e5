//! The success path allocates nothing, through the layer and the bare API; a local
//! rejection by the bare API allocates nothing either; and when every handle, service and
//! permit is gone, every byte is freed. Counted per thread by the test suite's allocator.

use crate::common::alloc;
use crate::prelude::*;

#[test]
fn the_success_path_allocates_nothing() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let backend = Backend::default();
    let mut svc = t.layer().layer(backend.service());
    call_now(&mut svc, true).unwrap();
    t.try_acquire().unwrap().record(Outcome::Success);

    let before = alloc::allocations();
    for i in 0..10_000u32 {
        call_now(&mut svc, true).unwrap();
        t.try_acquire().unwrap().record(Outcome::Success);
        let r = poll_once(pin!(t.call(|| backend.run(true))));
        assert!(matches!(r, Poll::Ready(Ok(7))));
        if i % 1_000 == 0 {
            // Buckets roll on the way: still nothing allocated.
            time.advance(Duration::from_secs(1));
        }
    }
    assert_eq!(alloc::allocations() - before, 0);
}

#[test]
fn rejections_and_sheds_by_the_bare_api_allocate_nothing() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    // Warm up: the first rejection registers its kind (once per process).
    t.record(Outcome::Failure);
    let _ = Throttled::new(1, 0, 0.5);
    let before = alloc::allocations();
    let mut shed = 0;
    for _ in 0..1_000 {
        match t.try_acquire() {
            Ok(permit) => permit.record(Outcome::Failure),
            Err(_) => shed += 1,
        }
    }
    assert!(shed > 900);
    assert_eq!(alloc::allocations() - before, 0);
}

#[test]
fn everything_is_freed_when_the_last_handle_goes() {
    // Warm up what lives for the whole process (the kind registry, thread-locals).
    {
        let t = throttle(&ManualClock::new(), 2.0);
        let mut svc = t.layer().layer(Backend::default().service());
        call_now(&mut svc, false).ok();
        let _ = Throttled::new(1, 0, 0.5);
    }
    let live = alloc::live_bytes();
    {
        let time = ManualClock::new();
        let t = throttle(&time, 2.0);
        let backend = Backend::default();
        let layer = t.layer();
        let mut svc = layer.layer(backend.service());
        let mut clone = svc.clone();
        for i in 0..1_000u32 {
            let _ = call_now(&mut svc, i % 2 == 0);
            let _ = call_now(&mut clone, false);
        }
        let permit = t.try_acquire();
        drop((t, layer, svc));
        drop(permit);
        drop(clone);
        drop(backend);
        drop(time);
    }
    assert_eq!(alloc::live_bytes(), live, "bytes left allocated");
}

/// The figures the docs give: the ledger (16 stripes of 128 bytes, the buckets, the
/// configuration) and its handle's lane; a layer adds a lane per core (at most 8, 256 bytes
/// each).
#[test]
fn a_throttle_takes_about_three_kibibytes_and_a_layer_a_lane_per_core() {
    let _ = throttle(&ManualClock::new(), 2.0); // warm up
    let before = alloc::live_bytes();
    let time = ManualClock::new();
    let after_clock = alloc::live_bytes();
    let t = throttle(&time, 2.0);
    let throttle_bytes = alloc::live_bytes() - after_clock;
    let layer = t.layer();
    let layer_bytes = alloc::live_bytes() - after_clock - throttle_bytes;
    println!(
        "throttle {throttle_bytes} B, layer {layer_bytes} B, clock {} B",
        after_clock - before
    );
    assert!(
        (2_048..=3_584).contains(&throttle_bytes),
        "{throttle_bytes}"
    );
    assert!(
        (256..=8 * 256 + 128).contains(&layer_bytes),
        "{layer_bytes}"
    );
    drop((t, layer));
}
