//! Every builder refuses a zero or nonsensical setting with a `ConfigError` naming the field.

use std::time::Duration;

use seawall::rate_limit::{KeyedRateLimiter, RateLimiter, LONGEST_WAIT};
use seawall::ConfigError;

fn direct(b: seawall::rate_limit::Builder) -> ConfigError {
    b.build().unwrap_err()
}

fn keyed(b: seawall::rate_limit::KeyedBuilder<u64>) -> ConfigError {
    b.build().unwrap_err()
}

#[test]
fn a_missing_or_zero_rate_is_refused() {
    assert_eq!(
        direct(RateLimiter::builder()),
        ConfigError::Zero { field: "rate" }
    );
    assert_eq!(
        direct(RateLimiter::builder().rate(0)),
        ConfigError::Zero { field: "rate" }
    );
    assert_eq!(keyed(KeyedRateLimiter::builder()).field(), "rate");
}

#[test]
fn a_zero_or_endless_period_is_refused() {
    let b = || RateLimiter::builder().rate(10);
    assert_eq!(
        direct(b().per(Duration::ZERO)),
        ConfigError::Zero { field: "per" }
    );
    assert_eq!(direct(b().per(Duration::MAX)).field(), "per");
}

#[test]
fn a_rate_above_one_call_per_nanosecond_is_refused() {
    let e = direct(
        RateLimiter::builder()
            .rate(1_000)
            .per(Duration::from_nanos(999)),
    );
    assert_eq!(e.field(), "rate");
    assert!(
        e.to_string().contains("more than one per nanosecond"),
        "{e}"
    );
}

#[test]
fn a_zero_or_unrefillable_burst_is_refused() {
    assert_eq!(
        direct(RateLimiter::builder().rate(10).burst(0)),
        ConfigError::Zero { field: "burst" }
    );
    let e = direct(
        RateLimiter::builder()
            .rate(1)
            .per(Duration::from_secs(3600 * 24 * 365))
            .burst(u32::MAX),
    );
    assert_eq!(e.field(), "burst");
}

#[test]
fn a_wait_beyond_the_longest_is_refused() {
    let e = direct(
        RateLimiter::builder()
            .rate(10)
            .max_wait(LONGEST_WAIT + Duration::from_secs(1)),
    );
    assert_eq!(e.field(), "max_wait");
    assert!(RateLimiter::builder()
        .rate(10)
        .max_wait(Duration::ZERO)
        .build()
        .is_ok());
}

#[test]
fn keyed_limits_refuse_zero_keys_and_a_zero_idle_timeout() {
    let b = || KeyedRateLimiter::<u64>::builder().rate(10);
    assert_eq!(
        keyed(b().max_keys(0)),
        ConfigError::Zero { field: "max_keys" }
    );
    assert_eq!(
        keyed(b().idle_timeout(Duration::ZERO)),
        ConfigError::Zero {
            field: "idle_timeout"
        }
    );
    assert_eq!(keyed(b().burst(0)).field(), "burst");
    assert_eq!(keyed(b().max_wait(Duration::MAX)).field(), "max_wait");
    assert!(b().max_keys(1).build().is_ok());
}

#[test]
fn the_defaults_are_rate_as_burst_and_no_wait() {
    let limiter = RateLimiter::builder().rate(50).build().unwrap();
    assert_eq!(limiter.burst(), 50);
    assert_eq!(limiter.interval(), Duration::from_millis(20));
    assert_eq!(limiter.max_wait(), Duration::ZERO);
    let keyed = KeyedRateLimiter::<u64>::builder().rate(50).build().unwrap();
    assert_eq!(keyed.max_keys(), 10_000);
}
