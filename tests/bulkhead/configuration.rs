//! Builders refuse zero or nonsensical settings with a `ConfigError` naming the field.

use crate::prelude::*;

#[test]
fn zero_concurrency_is_refused_naming_the_field() {
    let e = Bulkhead::builder().max_concurrent(0).build().unwrap_err();
    assert_eq!(
        e,
        ConfigError::Zero {
            field: "max_concurrent"
        }
    );
    assert_eq!(e.field(), "max_concurrent");
    assert_eq!(
        e.to_string(),
        "invalid `max_concurrent`: must be greater than zero"
    );
}

#[test]
fn concurrency_beyond_what_the_semaphore_counts_is_refused() {
    let e = Bulkhead::builder()
        .max_concurrent(MAX_CONCURRENT + 1)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "max_concurrent");
    assert!(matches!(e, ConfigError::OutOfRange { .. }));
    assert!(Bulkhead::builder()
        .max_concurrent(usize::MAX)
        .build()
        .is_err());
}

#[test]
fn a_wait_shorter_than_the_timer_can_measure_is_refused() {
    let e = Bulkhead::builder()
        .max_wait(Duration::from_micros(500))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::TooSmall {
            field: "max_wait",
            value: 0.0005,
            min: 0.001
        }
    );
}

#[test]
fn the_defaults_are_twenty_five_slots_and_no_wait() {
    let b = Bulkhead::builder().build().unwrap();
    assert_eq!((b.max_concurrent(), b.max_wait()), (25, Duration::ZERO));
    assert_eq!(b.snapshot().available, 25);
}
