//! Every setting's default and every invalid setting's `ConfigError`.

use crate::prelude::*;

// ===== configuration =====

#[test]
fn invalid_configurations_name_the_offending_field() {
    let b = CircuitBreaker::builder;
    let cases: Vec<(&str, Builder, &str)> = vec![
        (
            "failure_threshold 0",
            b().failure_threshold(0),
            "failure_threshold",
        ),
        ("failure_rate 0", b().failure_rate(0.0), "failure_rate"),
        ("failure_rate -0", b().failure_rate(-0.0), "failure_rate"),
        ("failure_rate -1", b().failure_rate(-1.0), "failure_rate"),
        ("failure_rate 101", b().failure_rate(101.0), "failure_rate"),
        (
            "failure_rate 100+",
            b().failure_rate(100.000_001),
            "failure_rate",
        ),
        (
            "failure_rate NaN",
            b().failure_rate(f64::NAN),
            "failure_rate",
        ),
        (
            "failure_rate inf",
            b().failure_rate(f64::INFINITY),
            "failure_rate",
        ),
        (
            "slow_call_rate without duration",
            b().slow_call_rate(50.0),
            "slow_call_rate",
        ),
        (
            "slow_call_rate NaN",
            b().slow_call_rate(f64::NAN).slow_call_duration(SEC),
            "slow_call_rate",
        ),
        (
            "slow_call_rate 0",
            b().slow_call_rate(0.0).slow_call_duration(SEC),
            "slow_call_rate",
        ),
        (
            "slow_call_duration zero",
            b().slow_call_rate(50.0).slow_call_duration(Duration::ZERO),
            "slow_call_duration",
        ),
        (
            "slow_call_duration zero, no rate",
            b().slow_call_duration(Duration::ZERO),
            "slow_call_duration",
        ),
        ("minimum_calls 0", b().minimum_calls(0), "minimum_calls"),
        (
            "minimum_calls > count window",
            b().count_window(5).minimum_calls(6),
            "minimum_calls",
        ),
        ("count window 0", b().count_window(0), "sliding_window"),
        (
            "time window 0",
            b().time_window(Duration::ZERO),
            "sliding_window",
        ),
        (
            "time window 0 buckets",
            b().sliding_window(SlidingWindow::Time {
                duration: secs(10),
                buckets: 0,
            }),
            "sliding_window.buckets",
        ),
        (
            "count window too large",
            b().count_window((1 << 24) + 1),
            "sliding_window",
        ),
        (
            "time window too many buckets",
            b().sliding_window(SlidingWindow::Time {
                duration: secs(10),
                buckets: 4097,
            }),
            "sliding_window.buckets",
        ),
        (
            "wait_in_open 0",
            b().wait_in_open(Duration::ZERO),
            "wait_in_open",
        ),
        (
            "multiplier < 1",
            b().wait_in_open_multiplier(0.5),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier negative",
            b().wait_in_open_multiplier(-2.0),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier NaN",
            b().wait_in_open_multiplier(f64::NAN),
            "wait_in_open_multiplier",
        ),
        (
            "multiplier inf",
            b().wait_in_open_multiplier(f64::INFINITY),
            "wait_in_open_multiplier",
        ),
        (
            "max_wait_in_open < wait_in_open",
            b().wait_in_open(secs(10)).max_wait_in_open(secs(9)),
            "max_wait_in_open",
        ),
        (
            "half_open_max_calls 0",
            b().half_open_max_calls(0),
            "half_open_max_calls",
        ),
        (
            "half_open_max_calls too large",
            b().half_open_max_calls(MAX_HALF_OPEN_CALLS + 1),
            "half_open_max_calls",
        ),
        (
            "half_open_max_calls u32::MAX",
            b().half_open_max_calls(u32::MAX),
            "half_open_max_calls",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, builder, field) in cases {
        match builder.build() {
            Ok(_) => wrong.push(format!("{what}: accepted")),
            Err(e) if e.field() != field => wrong.push(format!(
                "{what}: field {:?}, expected {field:?} ({e})",
                e.field()
            )),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn invalid_configurations_use_the_right_error_kind() {
    let b = CircuitBreaker::builder;
    assert!(matches!(
        b().failure_threshold(0).build(),
        Err(ConfigError::Zero {
            field: "failure_threshold"
        })
    ));
    assert!(matches!(
        b().failure_rate(101.0).build(),
        Err(ConfigError::OutOfRange { value, .. }) if value == 101.0
    ));
    assert!(matches!(
        b().failure_rate(f64::NAN).build(),
        Err(ConfigError::NotFinite { .. })
    ));
    assert!(matches!(
        b().slow_call_rate(10.0).build(),
        Err(ConfigError::Conflict { .. })
    ));
    assert!(matches!(
        b().wait_in_open_multiplier(0.99).build(),
        Err(ConfigError::TooSmall { min, .. }) if min == 1.0
    ));
    let err = b().max_wait_in_open(SEC).build().unwrap_err();
    assert!(err.to_string().contains("max_wait_in_open"), "{err}");
}

#[test]
fn boundary_configurations_are_accepted() {
    let b = CircuitBreaker::builder;
    let ok: Vec<(&str, Builder)> = vec![
        ("failure_rate 100", b().failure_rate(100.0)),
        ("failure_rate tiny", b().failure_rate(f64::MIN_POSITIVE)),
        ("failure_threshold 1", b().failure_threshold(1)),
        ("failure_threshold MAX", b().failure_threshold(u32::MAX)),
        (
            "minimum_calls == window",
            b().count_window(7).minimum_calls(7),
        ),
        ("count window 1", b().count_window(1).minimum_calls(1)),
        (
            "half_open_max_calls MAX",
            b().half_open_max_calls(MAX_HALF_OPEN_CALLS),
        ),
        ("multiplier 1", b().wait_in_open_multiplier(1.0)),
        ("max == wait", b().wait_in_open(SEC).max_wait_in_open(SEC)),
        (
            "slow duration without rate",
            b().slow_call_duration(Duration::from_nanos(1)),
        ),
    ];
    for (what, builder) in ok {
        assert!(builder.build().is_ok(), "{what} was refused");
    }
}

/// Exercises a built breaker through a full cycle, with extreme time jumps.
fn exercise(breaker: &CircuitBreaker, clock: &ManualClock) {
    for _ in 0..3 {
        if let Ok(p) = breaker.try_acquire() {
            clock.advance(secs(1));
            p.record(Outcome::Failure);
        }
    }
    let _ = breaker.snapshot();
    clock.advance(Duration::from_secs(u64::from(u32::MAX)));
    for outcome in [Outcome::Success, Outcome::Ignored, Outcome::Failure] {
        if let Ok(p) = breaker.try_acquire() {
            p.record(outcome);
        }
        let _ = breaker.snapshot();
    }
    clock.advance(Duration::MAX);
    for _ in 0..3 {
        if let Ok(p) = breaker.try_acquire() {
            p.record(Outcome::Failure);
        }
        let _ = breaker.try_acquire().map(|p| p.record(Outcome::Success));
        let _ = breaker.snapshot();
    }
    breaker.force_open();
    breaker.disable();
    let _ = breaker.try_acquire().map(|p| p.record(Outcome::Failure));
    breaker.reset();
    let _ = breaker.snapshot();
}

#[test]
fn no_builder_input_panics() {
    let counts = [
        0,
        1,
        2,
        3,
        100,
        MAX_HALF_OPEN_CALLS,
        MAX_HALF_OPEN_CALLS + 1,
        1 << 24,
        (1 << 24) + 1,
        u32::MAX,
    ];
    let floats = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        0.5,
        1.0,
        1.5,
        50.0,
        100.0,
        100.5,
        1e300,
        f64::MAX,
    ];
    let durations = [
        Duration::ZERO,
        Duration::from_nanos(1),
        ms(1),
        SEC,
        secs(86_400 * 365 * 100),
        Duration::MAX,
    ];
    let base = || {
        CircuitBreaker::builder()
            .failure_threshold(2)
            .failure_rate(50.0)
            .slow_call_rate(50.0)
            .slow_call_duration(SEC)
            .minimum_calls(2)
            .count_window(4)
            .half_open_max_calls(2)
    };
    let mut builders: Vec<(String, Builder)> = Vec::new();
    for &n in &counts {
        builders.push((
            format!("failure_threshold {n}"),
            base().failure_threshold(n),
        ));
        builders.push((format!("minimum_calls {n}"), base().minimum_calls(n)));
        builders.push((
            format!("count_window {n}"),
            base().minimum_calls(1).count_window(n),
        ));
        builders.push((
            format!("half_open_max_calls {n}"),
            base().half_open_max_calls(n),
        ));
        for &d in &durations {
            builders.push((
                format!("time window {d:?} / {n} buckets"),
                base().sliding_window(SlidingWindow::Time {
                    duration: d,
                    buckets: n,
                }),
            ));
        }
    }
    for &f in &floats {
        builders.push((format!("failure_rate {f}"), base().failure_rate(f)));
        builders.push((format!("slow_call_rate {f}"), base().slow_call_rate(f)));
    }
    for &d in &durations {
        builders.push((
            format!("slow_call_duration {d:?}"),
            base().slow_call_duration(d),
        ));
        for &m in &floats {
            for &max in &durations {
                builders.push((
                    format!("wait {d:?} x{m} max {max:?}"),
                    base()
                        .wait_in_open(d)
                        .wait_in_open_multiplier(m)
                        .max_wait_in_open(max),
                ));
            }
        }
    }

    let mut panicked = Vec::new();
    let mut built = 0;
    for (what, builder) in builders {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let clock = ManualClock::new();
            if let Ok(breaker) = builder.clock(Clock::from(clock.clone())).build() {
                exercise(&breaker, &clock);
                true
            } else {
                false
            }
        }));
        match result {
            Ok(true) => built += 1,
            Ok(false) => {}
            Err(_) => panicked.push(what),
        }
    }
    assert!(built > 100, "the sweep built only {built} breakers");
    assert!(panicked.is_empty(), "panicked on: {panicked:#?}");
}

#[test]
fn a_time_window_is_exactly_as_wide_as_configured() {
    // From the review: 8191 ns over 4096 buckets is accepted by the builder (at least 1 ns per
    // bucket), but flooring the bucket width to 1 ns made the window 4096 ns wide, so a
    // failure 5 µs old, inside the 8.191 µs window, was forgotten.
    let window = || {
        CircuitBreaker::builder()
            .failure_threshold(u32::MAX)
            .failure_rate(50.0)
            .minimum_calls(2)
            .sliding_window(SlidingWindow::Time {
                duration: Duration::from_nanos(8191),
                buckets: 4096,
            })
    };
    let (breaker, clock) = manual(window());
    record(&breaker, Outcome::Failure);
    clock.advance(Duration::from_nanos(5000));
    record(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.state(),
        State::Open,
        "two failures within 8191 ns: 100% failure rate over 2 calls should trip"
    );

    // To the nanosecond: counted until it is 8191 ns old.
    let (breaker, clock) = manual(window());
    record(&breaker, Outcome::Failure);
    clock.advance(Duration::from_nanos(8190));
    assert_eq!(
        breaker.snapshot().calls,
        1,
        "8190 ns old: still in the window"
    );
    clock.advance(Duration::from_nanos(1));
    assert_eq!(
        breaker.snapshot().calls,
        0,
        "8191 ns old: out of the window"
    );
}
