//! Keyed limits: isolation between keys, keyless requests, bounded memory under a flood.

use std::time::Duration;

use seawall::clock::ManualClock;
use seawall::rate_limit::KeyedRateLimiter;
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, ServiceBuilder, ServiceExt};

use crate::common::alloc;

#[test]
fn one_key_exhausted_does_not_touch_another() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<&str>::builder()
        .rate(5)
        .clock(manual.clone())
        .build()
        .unwrap();
    let alice = (0..20)
        .filter(|_| limiter.check_key(&"alice").is_ok())
        .count();
    assert_eq!(alice, 5);
    let bob = (0..20)
        .filter(|_| limiter.check_key(&"bob").is_ok())
        .count();
    assert_eq!(bob, 5);
    assert_eq!(
        limiter.check_key(&"alice").unwrap_err().retry_after(),
        Duration::from_millis(200)
    );
    manual.advance(Duration::from_millis(200));
    assert!(limiter.check_key(&"alice").is_ok());
    assert!(limiter.check_key(&"alice").is_err());
}

#[tokio::test(start_paused = true)]
async fn the_layer_limits_by_the_requests_key_and_not_requests_without_one() {
    let limiter = KeyedRateLimiter::<u32>::builder().rate(2).build().unwrap();
    // Requests are (client, payload); client 0 means "no key": not limited.
    let svc = ServiceBuilder::new()
        .layer(limiter.layer(|req: &(u32, u32)| (req.0 != 0).then_some(req.0)))
        .service(service_fn(|req: (u32, u32)| async move {
            Ok::<_, BoxError>(req.1)
        }));
    let mut ok = [0; 3];
    for _ in 0..10 {
        for client in 0..3 {
            ok[client as usize] += usize::from(svc.clone().oneshot((client, 7)).await.is_ok());
        }
    }
    assert_eq!(ok, [10, 2, 2]);
    let err = svc.oneshot((1, 7)).await.unwrap_err();
    assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
}

#[test]
fn idle_keys_are_forgotten_at_no_cost_to_any_decision() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u32>::builder()
        .rate(10)
        .idle_timeout(Duration::from_secs(1))
        .clock(manual.clone())
        .build()
        .unwrap();
    for k in 0..100 {
        limiter.check_key(&k).unwrap();
    }
    assert_eq!(limiter.len(), 100);
    // Every key's burst is back after 1 s; sweeps run lazily, on new keys.
    manual.advance(Duration::from_secs(2));
    limiter.sweep_idle();
    assert_eq!(limiter.len(), 0);
    assert_eq!(
        limiter.evicted(),
        0,
        "idle keys owe nothing: none was evicted"
    );
    for k in 0..100 {
        limiter.check_key(&k).unwrap();
    }
    manual.advance(Duration::from_secs(2));
    // Each shard sweeps on its first new key (1,000 keys reach all 16 shards but with a
    // chance of 1e-27): none of the 100 idle keys is left.
    for k in 1000..2000 {
        limiter.check_key(&k).unwrap();
    }
    assert_eq!(limiter.len(), 1000);
    assert_eq!(limiter.evicted(), 0);
}

#[test]
fn a_flood_of_a_million_distinct_keys_keeps_memory_bounded() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder()
        .rate(1)
        .burst(10)
        .max_keys(1_000)
        .clock(manual.clone())
        .build()
        .unwrap();
    // An abuser exhausts its burst first.
    let abuser = u64::MAX;
    assert_eq!(
        (0..20)
            .filter(|_| limiter.check_key(&abuser).is_ok())
            .count(),
        10
    );
    let mut after_warmup = 0;
    for k in 0..1_000_000u64 {
        if k == 100_000 {
            after_warmup = alloc::live_bytes();
        }
        // Every call is a new key, and the clock does not move: no key is ever idle.
        assert!(limiter.check_key(&k).is_ok());
        if k % 10_000 == 0 {
            assert!(limiter.len() <= 1_000, "{} keys", limiter.len());
        }
    }
    assert!(limiter.len() <= 1_000);
    // Bounded, not constant: a shard's table may still double once after the warm-up (the
    // hasher is seeded per process, so which shard fills first varies). Unbounded growth
    // would be tens of megabytes (900,000 keys of at least 32 bytes each).
    let growth = alloc::live_bytes() - after_warmup;
    assert!(
        growth < 256 * 1024,
        "memory grew by {growth} bytes over 900,000 more keys"
    );
    assert!(limiter.evicted() >= 999_000);
    // The flood keys owed least and went first: the abuser is still limited.
    assert!(limiter.check_key(&abuser).is_err());
}

#[test]
fn at_the_cap_a_new_key_is_admitted_and_the_map_never_grows_past_it() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u32>::builder()
        .rate(1)
        .max_keys(3)
        .clock(manual.clone())
        .build()
        .unwrap();
    for k in 0..10 {
        assert!(limiter.check_key(&k).is_ok(), "key {k} is never blocked");
        assert!(limiter.len() <= 3);
    }
}
