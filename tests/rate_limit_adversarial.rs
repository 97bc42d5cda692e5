//! The rate limiter under an adversary: many threads and clones sharing one limit, keys
//! across shards, floods of keys, extreme settings (refused, never an overflow), waiting
//! without a timer or on a manual clock, exact `retry_after` values.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::clock::ManualClock;
use seawall::rate_limit::{KeyedRateLimiter, RateLimited, RateLimiter};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

// ===== (1) the limit under concurrency: holds =====

/// 64 tasks on 8 workers, each with its own clone of the layered service, on a frozen clock:
/// exactly `burst` calls are admitted in all.
#[test]
fn shared_limit_holds_across_clones_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let manual = ManualClock::new();
    let limiter = RateLimiter::builder()
        .rate(100)
        .burst(200)
        .clock(manual.clone())
        .build()
        .unwrap();
    let reached = Arc::new(AtomicU64::new(0));
    let r = reached.clone();
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(service_fn(move |_: ()| {
            r.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        }));
    let admitted = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let mut svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u64;
                for _ in 0..100 {
                    if svc.ready().await.unwrap().call(()).await.is_ok() {
                        ok += 1;
                    }
                    tokio::task::yield_now().await;
                }
                ok
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    assert_eq!(admitted, 200);
    assert_eq!(reached.load(Ordering::Relaxed), 200);
}

/// 300 keys hit from 16 OS threads at once, frozen clock: each key admits exactly its burst.
#[test]
fn keyed_limit_holds_per_key_across_shards_from_many_threads() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u32>::builder()
        .rate(10)
        .burst(7)
        .clock(manual.clone())
        .build()
        .unwrap();
    let per_key: Arc<Vec<AtomicU64>> = Arc::new((0..300).map(|_| AtomicU64::new(0)).collect());
    std::thread::scope(|s| {
        for _ in 0..16 {
            let limiter = limiter.clone();
            let per_key = per_key.clone();
            s.spawn(move || {
                for _ in 0..20 {
                    for k in 0..300u32 {
                        if limiter.check_key(&k).is_ok() {
                            per_key[k as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    for (k, n) in per_key.iter().enumerate() {
        assert_eq!(n.load(Ordering::Relaxed), 7, "key {k}");
    }
    assert_eq!(limiter.evicted(), 0);
}

/// Wait mode, paused time: 200 callers with max_wait 2 s against 10/s, burst 5. In any 1 s
/// window, at most burst + rate admissions (sliding window over the recorded admission times).
#[tokio::test(start_paused = true)]
async fn wait_mode_never_admits_more_than_the_rate_per_window() {
    let limiter = RateLimiter::builder()
        .rate(10)
        .burst(5)
        .max_wait(2 * SEC)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(service_fn(move |_: ()| {
            t.lock().unwrap().push(start.elapsed());
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 7)).await;
            svc.oneshot(()).await.is_ok()
        }));
    }
    for t in tasks {
        let _ = t.await.unwrap();
    }
    let mut times = times.lock().unwrap().clone();
    times.sort();
    for (i, t0) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|t| **t < *t0 + SEC).count();
        assert!(
            in_window <= 15,
            "{in_window} admissions in the second from {t0:?}"
        );
    }
    // The bare API, hammered the same way, makes no more admissions either.
    let bare = RateLimiter::builder()
        .rate(10)
        .burst(5)
        .max_wait(2 * SEC)
        .build()
        .unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (bare, ok) = (bare.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            if bare.acquire().await.is_ok() {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // burst 5 at once, then one per 100 ms for 2 s: 5 + 20 = 25 at most.
    assert!(
        ok.load(Ordering::Relaxed) <= 25,
        "{}",
        ok.load(Ordering::Relaxed)
    );
}

// ===== (3) tower contract: the wait path with tower_test's mock (panics if not ready) =====

#[tokio::test(start_paused = true)]
async fn wait_path_calls_only_a_ready_mock() {
    let limiter = RateLimiter::builder()
        .rate(1)
        .burst(1)
        .max_wait(3 * SEC)
        .build()
        .unwrap();
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let mut svc = ServiceBuilder::new().layer(limiter.layer()).service(mock);
    let mut futs = Vec::new();
    for i in 0..3 {
        svc.ready().await.unwrap();
        futs.push(tokio::spawn(svc.call(i)));
    }
    for _ in 0..3 {
        let (req, send) = handle.next_request().await.unwrap();
        send.send_response(req * 10);
    }
    for f in futs {
        assert!(f.await.unwrap().is_ok());
    }
}

// ===== (4) overflow from builder-accepted values =====

/// `per` of `u64::MAX` ns is accepted (the limit `LONGEST_SPAN` is inclusive), with the default
/// burst of 1. governor then computes `tat = t0 + per` in unchecked `u64` arithmetic: one
/// nanosecond after the limiter's start it overflows (a panic in debug builds; a wrap in
/// release, after which the limiter admits every call).
#[test]
fn the_longest_accepted_per_does_not_overflow() {
    let manual = ManualClock::new();
    let limiter = RateLimiter::builder()
        .rate(1)
        .per(Duration::from_nanos(u64::MAX))
        .clock(manual.clone())
        .build();
    // Refused by the builder (a `ConfigError` naming the setting) is as good as no overflow.
    let Ok(limiter) = limiter else { return };
    manual.advance(Duration::from_nanos(1));
    let first = catch(|| limiter.check());
    assert!(first.is_ok(), "panicked: {first:?}");
    assert!(first.unwrap().is_ok());
    assert!(catch(|| limiter.check()).unwrap().is_err());
}

/// The builder checks `interval * burst` fits in a u64, but governor adds `t0` (time since the
/// limiter started) on top: burst 2 at one call per ~292 years passes validation, and the
/// second call 2 ns after start overflows.
#[test]
fn the_burst_overflow_check_covers_time_since_start() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u8>::builder()
        .rate(1)
        .per(Duration::from_nanos(u64::MAX / 2))
        .burst(2)
        .clock(manual.clone())
        .build();
    // Refused by the builder (a `ConfigError` naming the setting) is as good as no overflow.
    let Ok(limiter) = limiter else { return };
    manual.advance(Duration::from_nanos(2));
    let r = catch(|| {
        (
            limiter.check_key(&1),
            limiter.check_key(&1),
            limiter.check_key(&1),
        )
    });
    assert!(r.is_ok(), "panicked: {r:?}");
}

/// A shared `Clock` that has run for a while (a ManualClock advanced 1 s before the limiter is
/// built): a refusal's `retry_after` is `start + tat` in governor, unchecked too.
#[test]
fn a_refusal_after_a_late_start_does_not_overflow() {
    let manual = ManualClock::new();
    manual.advance(SEC);
    let limiter = RateLimiter::builder()
        .rate(1)
        .per(Duration::from_nanos(u64::MAX))
        .clock(manual.clone())
        .build();
    // Refused by the builder (a `ConfigError` naming the setting) is as good as no overflow.
    let Ok(limiter) = limiter else { return };
    let r = catch(|| (limiter.check(), limiter.check()));
    assert!(r.is_ok(), "panicked: {r:?}");
    let (a, b) = r.unwrap();
    assert!(a.is_ok() && b.is_err());
}

// ===== (4) keyed store: bound, abuser escape =====

/// Adversarial key patterns from 8 threads (fresh keys, hot keys, exhausted keys, on an
/// advancing clock): the store never holds more than `max_keys`.
#[test]
fn keyed_store_never_exceeds_max_keys() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder()
        .rate(5)
        .burst(3)
        .max_keys(100)
        .clock(manual.clone())
        .build()
        .unwrap();
    let max_seen = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (limiter, manual, max_seen) = (limiter.clone(), manual.clone(), max_seen.clone());
            s.spawn(move || {
                for i in 0..20_000u64 {
                    let key = match i % 4 {
                        0 => t * 1_000_000 + i, // fresh
                        1 => i % 7,             // hot, exhausted
                        2 => 500 + (i % 150),   // recurring, more than the cap
                        _ => u64::MAX - i,      // fresh
                    };
                    let _ = limiter.check_key(&key);
                    if i % 1000 == 0 {
                        manual.advance(Duration::from_micros(50));
                        max_seen.fetch_max(limiter.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(max_seen.load(Ordering::Relaxed) <= 100);
    assert!(limiter.len() <= 100);
}

/// Docs: "at `max_keys`, the keys that owe the least time are forgotten ..., never the client
/// that has exhausted its burst, so a flood of new keys cannot wash out an abuser's limit".
/// With `max_keys(16)` every shard holds ONE key, so any new key landing in the abuser's
/// shard forgets the abuser, whatever it owes. Frozen clock: the abuser should get nothing
/// past its burst of 5; one flood key per attempt gives it hundreds more.
#[test]
fn a_flood_cannot_reset_an_exhausted_key_with_small_max_keys() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder()
        .rate(1)
        .burst(5)
        .max_keys(16)
        .clock(manual.clone())
        .build()
        .unwrap();
    let abuser = u64::MAX;
    for _ in 0..5 {
        limiter.check_key(&abuser).unwrap();
    }
    assert!(limiter.check_key(&abuser).is_err());
    let mut extra = 0;
    for k in 0..2_000u64 {
        let _ = limiter.check_key(&k);
        if limiter.check_key(&abuser).is_ok() {
            extra += 1;
        }
    }
    assert_eq!(
        extra, 0,
        "the exhausted abuser was admitted {extra} more times at one instant"
    );
}

/// Contrast (passes): with burst >= 2 and the default cap, one-shot flood keys owe less than
/// an exhausted abuser, and the abuser stays limited, as documented.
#[test]
fn a_flood_does_not_reset_an_exhausted_key_with_a_burst() {
    let manual = ManualClock::new();
    let limiter = KeyedRateLimiter::<u64>::builder()
        .rate(1)
        .burst(5)
        .max_keys(1_000)
        .clock(manual.clone())
        .build()
        .unwrap();
    let abuser = u64::MAX;
    for _ in 0..5 {
        limiter.check_key(&abuser).unwrap();
    }
    let mut extra = 0;
    for k in 0..50_000u64 {
        manual.advance(Duration::from_micros(1));
        let _ = limiter.check_key(&k);
        if limiter.check_key(&abuser).is_ok() {
            extra += 1;
        }
    }
    assert_eq!(extra, 0);
    assert!(limiter.evicted() > 0);
}

// ===== (5) retry_after =====

#[test]
fn retry_after_is_exact_and_never_zero_while_limited() {
    let manual = ManualClock::new();
    let limiter = RateLimiter::builder()
        .rate(3)
        .burst(3)
        .clock(manual.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        limiter.check().unwrap();
    }
    let mut seen = HashSet::new();
    loop {
        match limiter.check() {
            Ok(()) => break,
            Err(e) => {
                assert!(e.retry_after() > Duration::ZERO);
                seen.insert(e.retry_after());
                manual.advance(e.retry_after() / 2 + Duration::from_nanos(1));
            }
        }
    }
    assert!(seen.len() > 3);
}

// ===== (6) a limiter whose clock is not tokio's, with max_wait =====

/// A `ManualClock` plus `max_wait` is accepted by the builder; the wait sleeps on tokio's timer
/// while the limit is measured on the manual clock, so a waiting call is never admitted nor
/// refused: `acquire()` loops for ever (here: still pending after 1 h of paused tokio time,
/// with `max_wait` 1 s). Docs promise "none waits past `max_wait`".
#[tokio::test(start_paused = true)]
async fn a_wait_on_a_manual_clock_ends_within_max_wait() {
    // Refused at `build()`: the wait would sleep on tokio's timer, which the manual clock
    // the limit is counted on does not follow.
    let manual = ManualClock::new();
    let built = RateLimiter::builder()
        .rate(1)
        .max_wait(SEC)
        .clock(manual.clone())
        .build();
    let Err(err) = built else {
        panic!("a manual clock with a wait is refused")
    };
    assert!(err.to_string().contains("`max_wait`"), "{err}");
}

// ===== (7) no tokio timer =====

/// The bulkhead and retry refuse (or return `TimerUnavailable`) where there is no tokio timer;
/// the rate limiter's wait calls `tokio::time::sleep` unguarded and panics, in the layer's
/// `call` as in the bare `acquire`.
#[test]
fn waiting_without_a_timer_does_not_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap(); // no enable_time
    let limiter = RateLimiter::builder()
        .rate(1)
        .max_wait(SEC)
        .build()
        .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(limiter.layer())
        .service(service_fn(|_: ()| async { Ok::<_, BoxError>(()) }));
    let layered = catch(|| {
        rt.block_on(async {
            svc.ready().await.unwrap().call(()).await.unwrap();
            svc.ready().await.unwrap().call(()).await
        })
    });
    assert!(layered.is_ok(), "layer panicked: {layered:?}");
    let bare = catch(|| futures::executor::block_on(limiter.acquire()));
    assert!(bare.is_ok(), "bare acquire panicked: {bare:?}");
}

// ===== http: Retry-After rounding =====

#[cfg(feature = "http")]
#[test]
fn retry_after_header_rounds_up_to_whole_seconds() {
    use seawall::http::rejection_response;
    for (wait, header) in [
        (Duration::from_millis(10), "1"),
        (Duration::from_nanos(1), "1"),
        (Duration::from_millis(1001), "2"),
        (SEC, "1"),
    ] {
        let err: BoxError = Box::new(RateLimited::new(wait));
        assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
        let resp: http::Response<String> = rejection_response(&*err);
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], header, "{wait:?}");
    }
    let _ = MS;
}
