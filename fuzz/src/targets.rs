//! The fuzz targets' logic, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and the
//! main crate's proptest-driven test (`tests/fuzz_targets.rs`, which includes this file with
//! `#[path]`), so CI exercises the very same functions without libFuzzer.
//!
//! Inputs are decoded by hand from the raw bytes (no `arbitrary`), so the file compiles with
//! nothing but `seawall` and `std`. A missing byte reads as zero: every input, even an empty
//! one, decodes to something. Every value decoder mixes small values, a table of extreme ones
//! (0, `u32::MAX`, NaN, infinities, `Duration::MAX`, the documented limits and one past them)
//! and raw bit patterns, so libFuzzer reaches the edges quickly.
//!
//! - [`builder`]: a sequence of builder settings, applied in order (a setting may repeat: the
//!   last one wins). `build()` must not panic; it must succeed exactly when the documented
//!   constraints hold, and an error must name a setting that breaks one of them.
//! - [`operations`]: a breaker built from decoded settings (an invalid setting is dropped
//!   until the rest builds) on a `ManualClock`, then a sequence of operations on it. Nothing
//!   may panic, and cheap invariants are checked after every operation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::{
    CircuitBreaker, Permit, SlidingWindow, Snapshot, State, StateChange, MAX_FAILURE_THRESHOLD,
    MAX_HALF_OPEN_CALLS,
};
use seawall::clock::{Clock, ManualClock};
use seawall::{ConfigError, Outcome};

/// Every name a `ConfigError::field()` may carry.
pub const KNOWN_FIELDS: &[&str] = &[
    "failure_threshold",
    "failure_rate",
    "slow_call_rate",
    "slow_call_duration",
    "minimum_calls",
    "sliding_window",
    "sliding_window.buckets",
    "wait_in_open",
    "wait_in_open_multiplier",
    "max_wait_in_open",
    "half_open_max_calls",
];

/// Largest count window accepted by `build()`.
const MAX_COUNT_WINDOW: u32 = 1 << 24;
/// Largest number of time-window buckets accepted by `build()`.
const MAX_BUCKETS: u32 = 4096;

// ===== decoding =====

/// A cursor over the fuzzer's bytes; reads past the end give zeros.
struct Input<'a> {
    data: &'a [u8],
}

const SPECIAL_U32: &[u32] = &[
    0,
    1,
    2,
    3,
    5,
    10,
    100,
    MAX_BUCKETS,
    MAX_BUCKETS + 1,
    MAX_HALF_OPEN_CALLS,
    MAX_HALF_OPEN_CALLS + 1,
    MAX_FAILURE_THRESHOLD,
    MAX_FAILURE_THRESHOLD + 1,
    1 << 21,
    MAX_COUNT_WINDOW,
    MAX_COUNT_WINDOW + 1,
    i32::MAX as u32,
    u32::MAX - 1,
    u32::MAX,
];

const SPECIAL_F64: &[f64] = &[
    f64::NAN,
    -f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN,
    -1.0,
    -0.0,
    0.0,
    5e-324, // the smallest subnormal
    f64::MIN_POSITIVE,
    f64::EPSILON,
    0.5,
    1.0,
    1.0 + f64::EPSILON,
    1.5,
    2.0,
    10.0,
    50.0,
    99.999_999_999_999_99,
    100.0,
    100.000_000_000_000_01,
    101.0,
    1e300,
    f64::MAX,
];

const SPECIAL_DURATIONS: &[Duration] = &[
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_micros(1),
    Duration::from_millis(1),
    Duration::from_secs(1),
    Duration::from_secs(30),
    Duration::from_secs(300),
    Duration::from_secs(3_600),
    Duration::from_secs(86_400 * 365 * 100),
    Duration::from_nanos(u64::MAX), // the clock's saturation point (584 years)
    Duration::from_nanos(u64::MAX - 1),
    Duration::from_secs(u64::MAX / 1_000_000_000 + 1), // just past it
    Duration::from_secs(u64::MAX),
    Duration::MAX,
];

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    fn pick<T: Copy>(&mut self, table: &[T], selector: u8) -> T {
        table[usize::from(selector) % table.len()]
    }

    /// A count: small (0..64), special, raw, or medium (0..16384), by the selector's top bits.
    fn count(&mut self) -> u32 {
        let sel = self.byte();
        let low = sel & 0x3f;
        match sel >> 6 {
            0 => u32::from(low),
            1 => self.pick(SPECIAL_U32, low),
            2 => u32::from_le_bytes(self.bytes()),
            _ => u32::from(low) + u32::from(self.byte()) * 64,
        }
    }

    /// A float: a small value (0, 2, .. 126), special, raw bits, or a fine one (0.00 .. 127.75).
    fn float(&mut self) -> f64 {
        let sel = self.byte();
        let low = sel & 0x3f;
        match sel >> 6 {
            0 => f64::from(low) * 2.0,
            1 => self.pick(SPECIAL_F64, low),
            2 => f64::from_bits(u64::from_le_bytes(self.bytes())),
            _ => f64::from(u16::from(low) << 8 | u16::from(self.byte())) / 128.0,
        }
    }

    /// A duration: milliseconds (0..6.3 s), special, raw, or seconds (0..16383 s).
    fn duration(&mut self) -> Duration {
        let sel = self.byte();
        let low = sel & 0x3f;
        match sel >> 6 {
            0 => Duration::from_millis(u64::from(low) * 100),
            1 => self.pick(SPECIAL_DURATIONS, low),
            2 => Duration::new(
                u64::from_le_bytes(self.bytes()),
                u32::from_le_bytes(self.bytes()) % 1_000_000_000,
            ),
            _ => Duration::from_secs(u64::from(low) + u64::from(self.byte()) * 64),
        }
    }

    fn outcome(&mut self) -> Outcome {
        match self.byte() % 3 {
            0 => Outcome::Success,
            1 => Outcome::Failure,
            _ => Outcome::Ignored,
        }
    }
}

// ===== settings: what was asked of the builder =====

/// How the sliding window was set: through which builder method.
#[derive(Debug, Clone, Copy, PartialEq)]
enum WindowSetting {
    /// `count_window(n)`
    Count(u32),
    /// `time_window(d)` (10 buckets)
    Time(Duration),
    /// `sliding_window(w)`
    Raw(SlidingWindow),
}

impl WindowSetting {
    fn window(self) -> SlidingWindow {
        match self {
            WindowSetting::Count(n) => SlidingWindow::Count(n),
            WindowSetting::Time(duration) => SlidingWindow::Time {
                duration,
                buckets: 10,
            },
            WindowSetting::Raw(w) => w,
        }
    }
}

/// One builder call.
#[derive(Debug, Clone)]
enum Setting {
    FailureThreshold(u32),
    FailureRate(f64),
    SlowCallRate(f64),
    SlowCallDuration(Duration),
    MinimumCalls(u32),
    Window(WindowSetting),
    WaitInOpen(Duration),
    WaitInOpenMultiplier(f64),
    MaxWaitInOpen(Duration),
    HalfOpenMaxCalls(u32),
    Name(String),
}

impl Setting {
    fn decode(input: &mut Input<'_>) -> Setting {
        match input.byte() % 11 {
            0 => Setting::FailureThreshold(input.count()),
            1 => Setting::FailureRate(input.float()),
            2 => Setting::SlowCallRate(input.float()),
            3 => Setting::SlowCallDuration(input.duration()),
            4 => Setting::MinimumCalls(input.count()),
            5 => Setting::Window(match input.byte() % 4 {
                0 => WindowSetting::Count(input.count()),
                1 => WindowSetting::Time(input.duration()),
                2 => WindowSetting::Raw(SlidingWindow::Count(input.count())),
                _ => WindowSetting::Raw(SlidingWindow::Time {
                    duration: input.duration(),
                    buckets: input.count(),
                }),
            }),
            6 => Setting::WaitInOpen(input.duration()),
            7 => Setting::WaitInOpenMultiplier(input.float()),
            8 => Setting::MaxWaitInOpen(input.duration()),
            9 => Setting::HalfOpenMaxCalls(input.count()),
            _ => {
                let len = usize::from(input.byte() % 16);
                let bytes: Vec<u8> = (0..len).map(|_| input.byte()).collect();
                Setting::Name(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }

    fn apply(&self, b: seawall::circuit_breaker::Builder) -> seawall::circuit_breaker::Builder {
        match self {
            Setting::FailureThreshold(n) => b.failure_threshold(*n),
            Setting::FailureRate(r) => b.failure_rate(*r),
            Setting::SlowCallRate(r) => b.slow_call_rate(*r),
            Setting::SlowCallDuration(d) => b.slow_call_duration(*d),
            Setting::MinimumCalls(n) => b.minimum_calls(*n),
            Setting::Window(WindowSetting::Count(n)) => b.count_window(*n),
            Setting::Window(WindowSetting::Time(d)) => b.time_window(*d),
            Setting::Window(WindowSetting::Raw(w)) => b.sliding_window(*w),
            Setting::WaitInOpen(d) => b.wait_in_open(*d),
            Setting::WaitInOpenMultiplier(m) => b.wait_in_open_multiplier(*m),
            Setting::MaxWaitInOpen(d) => b.max_wait_in_open(*d),
            Setting::HalfOpenMaxCalls(n) => b.half_open_max_calls(*n),
            Setting::Name(name) => b.name(name.as_str()),
        }
    }
}

/// The effective settings (the last call of each method wins), with the documented defaults.
#[derive(Debug, Clone, Default)]
struct Settings {
    failure_threshold: Option<u32>,
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
    slow_call_duration: Option<Duration>,
    minimum_calls: Option<u32>,
    window: Option<WindowSetting>,
    wait_in_open: Option<Duration>,
    wait_in_open_multiplier: Option<f64>,
    max_wait_in_open: Option<Duration>,
    half_open_max_calls: Option<u32>,
    name: Option<String>,
}

impl Settings {
    fn set(&mut self, setting: &Setting) {
        match setting {
            Setting::FailureThreshold(n) => self.failure_threshold = Some(*n),
            Setting::FailureRate(r) => self.failure_rate = Some(*r),
            Setting::SlowCallRate(r) => self.slow_call_rate = Some(*r),
            Setting::SlowCallDuration(d) => self.slow_call_duration = Some(*d),
            Setting::MinimumCalls(n) => self.minimum_calls = Some(*n),
            Setting::Window(w) => self.window = Some(*w),
            Setting::WaitInOpen(d) => self.wait_in_open = Some(*d),
            Setting::WaitInOpenMultiplier(m) => self.wait_in_open_multiplier = Some(*m),
            Setting::MaxWaitInOpen(d) => self.max_wait_in_open = Some(*d),
            Setting::HalfOpenMaxCalls(n) => self.half_open_max_calls = Some(*n),
            Setting::Name(name) => self.name = Some(name.clone()),
        }
    }

    /// The settings as builder calls, one per set field.
    fn calls(&self) -> Vec<Setting> {
        let s = self;
        [
            s.failure_threshold.map(Setting::FailureThreshold),
            s.failure_rate.map(Setting::FailureRate),
            s.slow_call_rate.map(Setting::SlowCallRate),
            s.slow_call_duration.map(Setting::SlowCallDuration),
            s.minimum_calls.map(Setting::MinimumCalls),
            s.window.map(Setting::Window),
            s.wait_in_open.map(Setting::WaitInOpen),
            s.wait_in_open_multiplier.map(Setting::WaitInOpenMultiplier),
            s.max_wait_in_open.map(Setting::MaxWaitInOpen),
            s.half_open_max_calls.map(Setting::HalfOpenMaxCalls),
            s.name.clone().map(Setting::Name),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn builder(&self, clock: Option<&ManualClock>) -> seawall::circuit_breaker::Builder {
        let mut b = CircuitBreaker::builder();
        for call in self.calls() {
            b = call.apply(b);
        }
        match clock {
            Some(clock) => b.clock(Clock::from(clock.clone())),
            None => b,
        }
    }

    fn window(&self) -> SlidingWindow {
        self.window
            .map_or(SlidingWindow::Count(100), WindowSetting::window)
    }

    fn failure_threshold(&self) -> u32 {
        self.failure_threshold.unwrap_or(5)
    }

    /// `minimum_calls`, or its default: 10, or a smaller count window's size.
    fn minimum_calls(&self) -> u32 {
        match (self.minimum_calls, self.window()) {
            (Some(n), _) => n,
            (None, SlidingWindow::Count(n)) => n.clamp(1, 10),
            (None, SlidingWindow::Time { .. }) => 10,
        }
    }

    fn wait_in_open(&self) -> Duration {
        self.wait_in_open.unwrap_or(Duration::from_secs(30))
    }

    fn max_wait_in_open(&self) -> Duration {
        self.max_wait_in_open.unwrap_or(Duration::from_secs(300))
    }

    fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls.unwrap_or(3)
    }

    fn has_rate(&self) -> bool {
        self.failure_rate.is_some() || self.slow_call_rate.is_some()
    }

    /// The settings that break a documented constraint (empty: `build()` must succeed).
    fn violations(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let threshold = self.failure_threshold();
        if threshold == 0 || (threshold > MAX_FAILURE_THRESHOLD && threshold != u32::MAX) {
            v.push("failure_threshold");
        }
        // Rates: finite, within (0, 100].
        let bad_rate = |r: Option<f64>| r.is_some_and(|r| !(r > 0.0 && r <= 100.0));
        if bad_rate(self.failure_rate) {
            v.push("failure_rate");
        }
        if bad_rate(self.slow_call_rate) {
            v.push("slow_call_rate");
        }
        if self.slow_call_duration == Some(Duration::ZERO) {
            v.push("slow_call_duration");
        }
        if self.slow_call_rate.is_some() && self.slow_call_duration.is_none() {
            v.push("slow_call_rate");
        }
        let minimum_calls = self.minimum_calls();
        if minimum_calls == 0 {
            v.push("minimum_calls");
        }
        match self.window() {
            SlidingWindow::Count(n) => {
                if n == 0 || n > MAX_COUNT_WINDOW {
                    v.push("sliding_window");
                }
                if minimum_calls > n {
                    v.push("minimum_calls");
                }
            }
            SlidingWindow::Time { duration, buckets } => {
                if duration.is_zero() {
                    v.push("sliding_window");
                }
                if buckets == 0 || buckets > MAX_BUCKETS {
                    v.push("sliding_window.buckets");
                }
                // Every bucket spans at least one nanosecond.
                if duration.as_nanos() < u128::from(buckets) {
                    v.push("sliding_window");
                }
            }
        }
        if self.wait_in_open().is_zero() {
            v.push("wait_in_open");
        }
        let multiplier = self.wait_in_open_multiplier.unwrap_or(1.0);
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            v.push("wait_in_open_multiplier");
        }
        if self.max_wait_in_open() < self.wait_in_open() {
            v.push("max_wait_in_open");
        }
        let probes = self.half_open_max_calls();
        if probes == 0 || probes > MAX_HALF_OPEN_CALLS {
            v.push("half_open_max_calls");
        }
        v
    }

    /// Forgets the setting named by a `ConfigError`, so the rest can be built. If that setting
    /// was already at its default, forgets the setting it conflicts with.
    fn drop_field(&mut self, field: &str) {
        match field {
            "failure_threshold" => self.failure_threshold = None,
            "failure_rate" => self.failure_rate = None,
            "slow_call_rate" => self.slow_call_rate = None,
            "slow_call_duration" => self.slow_call_duration = None,
            "minimum_calls" if self.minimum_calls.is_some() => self.minimum_calls = None,
            "minimum_calls" | "sliding_window" | "sliding_window.buckets" => self.window = None,
            "wait_in_open" => self.wait_in_open = None,
            "wait_in_open_multiplier" => self.wait_in_open_multiplier = None,
            "max_wait_in_open" if self.max_wait_in_open.is_some() => self.max_wait_in_open = None,
            "max_wait_in_open" => self.wait_in_open = None,
            "half_open_max_calls" => self.half_open_max_calls = None,
            other => panic!("unknown config field {other:?}"),
        }
    }
}

fn check_error(err: &ConfigError, settings: &Settings) {
    let field = err.field();
    assert!(
        KNOWN_FIELDS.contains(&field),
        "unknown field {field:?} in {err:?}"
    );
    let violations = settings.violations();
    assert!(
        violations.contains(&field),
        "`build()` blamed {field:?} ({err}), but the broken constraints are {violations:?}; \
         settings: {settings:?}"
    );
    // The message must render (it formats floats and durations given by the user).
    let message = err.to_string();
    assert!(
        message.contains(field),
        "{message:?} does not name {field:?}"
    );
}

// ===== target: builder =====

/// Applies a decoded sequence of builder settings and builds. Never panics; builds exactly
/// when every documented constraint holds, else returns a `ConfigError` naming a broken one.
pub fn builder(data: &[u8]) {
    let mut input = Input::new(data);
    let manual = input.byte() & 1 == 1;
    let mut builder = CircuitBreaker::builder();
    let mut settings = Settings::default();
    while !input.is_empty() {
        let setting = Setting::decode(&mut input);
        settings.set(&setting);
        builder = setting.apply(builder);
    }
    let clock = ManualClock::new();
    if manual {
        builder = builder.clock(Clock::from(clock.clone()));
    }
    let _ = format!("{builder:?}");
    match builder.build() {
        Ok(breaker) => {
            let violations = settings.violations();
            assert!(
                violations.is_empty(),
                "`build()` accepted settings that break {violations:?}: {settings:?}"
            );
            assert_eq!(breaker.state(), State::Closed);
            assert_eq!(breaker.name(), settings.name.as_deref());
            let _ = format!("{breaker:?}");
            check_snapshot(&breaker.snapshot(), &settings, 0);
        }
        Err(err) => check_error(&err, &settings),
    }
}

// ===== target: operations =====

/// Builds a breaker from decoded settings (dropping invalid ones until it builds) on a
/// `ManualClock`, then runs a decoded sequence of operations, checking invariants after each.
pub fn operations(data: &[u8]) {
    let mut input = Input::new(data);
    let mut settings = Settings::default();
    for _ in 0..input.byte() % 12 {
        settings.set(&Setting::decode(&mut input));
    }
    let clock = ManualClock::new();
    let changes: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let breaker = loop {
        let log = Arc::clone(&changes);
        let built = settings
            .builder(Some(&clock))
            .on_state_change(move |_, change| log.lock().unwrap().push(*change))
            .build();
        match built {
            Ok(breaker) => break breaker,
            Err(err) => {
                check_error(&err, &settings);
                settings.drop_field(err.field());
            }
        }
    };
    let mut run = Run {
        breaker,
        clock,
        settings,
        permits: Vec::new(),
        changes,
        seen_changes: 0,
        state: State::Closed,
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 10_000 {
        run.step(&mut input);
        run.check();
        ops += 1;
    }
    // Every permit ends: recorded or dropped. No probe may stay in flight.
    while let Some(permit) = run.permits.pop() {
        match input.byte() % 2 {
            0 => drop(permit),
            _ => permit.record(input.outcome()),
        }
        run.check();
    }
    assert_eq!(run.breaker.snapshot().probes_in_flight, 0);
    // Whatever happened, a reset closes the breaker and forgets every count.
    run.breaker.reset();
    run.check();
    let snap = run.breaker.snapshot();
    assert_eq!(snap.state, State::Closed);
    assert_eq!((snap.calls, snap.consecutive_failures), (0, 0));
    assert!(run.breaker.try_acquire().is_ok(), "a reset breaker admits");
}

/// A breaker under test, with what the test knows about it.
struct Run {
    breaker: CircuitBreaker,
    clock: ManualClock,
    settings: Settings,
    permits: Vec<Permit>,
    /// Every state change the listener saw.
    changes: Arc<Mutex<Vec<StateChange>>>,
    seen_changes: usize,
    /// The state after the last change seen.
    state: State,
}

impl Run {
    fn take(&mut self, input: &mut Input<'_>) -> Option<Permit> {
        if self.permits.is_empty() {
            return None;
        }
        let i = usize::from(input.byte()) % self.permits.len();
        Some(self.permits.swap_remove(i))
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.byte() % 14 {
            0..=2 => match self.breaker.try_acquire() {
                Ok(permit) => self.permits.push(permit),
                Err(open) => {
                    let state = self.breaker.state();
                    assert!(
                        matches!(state, State::Open | State::HalfOpen | State::ForcedOpen),
                        "rejected while {state:?}"
                    );
                    assert!(
                        open.retry_in() <= self.settings.max_wait_in_open(),
                        "retry in {:?} exceeds max_wait_in_open {:?}",
                        open.retry_in(),
                        self.settings.max_wait_in_open()
                    );
                    let _ = open.to_string();
                }
            },
            3 | 4 => {
                let outcome = input.outcome();
                if let Some(permit) = self.take(input) {
                    permit.record(outcome);
                }
            }
            5 => drop(self.take(input)),
            6 | 7 => self
                .clock
                .advance(Duration::from_millis(u64::from(input.byte()) * 50)),
            8 => self.clock.advance(input.duration()),
            9 => {
                self.breaker.force_open();
                assert_eq!(self.breaker.state(), State::ForcedOpen);
                let open = self.breaker.try_acquire().expect_err("forced open rejects");
                assert_eq!(open.retry_in(), Duration::ZERO);
            }
            10 => {
                self.breaker.disable();
                assert_eq!(self.breaker.state(), State::Disabled);
                let permit = self.breaker.try_acquire().expect("disabled admits");
                if input.byte().is_multiple_of(2) {
                    self.permits.push(permit);
                }
            }
            11 => {
                self.breaker.reset();
                let snap = self.breaker.snapshot();
                assert_eq!(snap.state, State::Closed);
                assert_eq!((snap.calls, snap.consecutive_failures), (0, 0));
            }
            12 => self.breaker.record(input.outcome()),
            _ => {
                // End every kept permit at once, all with one outcome or all dropped.
                let end = input.byte() % 4;
                for permit in self.permits.drain(..) {
                    match end {
                        0 => drop(permit),
                        1 => permit.record(Outcome::Success),
                        2 => permit.record(Outcome::Failure),
                        _ => permit.record(Outcome::Ignored),
                    }
                }
            }
        }
    }

    fn check(&mut self) {
        // The listener's changes form a chain from Closed, one generation at a time.
        let changes = self.changes.lock().unwrap();
        for change in &changes[self.seen_changes..] {
            assert_ne!(change.from, change.to, "announced a non-change {change:?}");
            assert_eq!(
                change.from, self.state,
                "change {change:?} does not start where the last one ended"
            );
            self.state = change.to;
        }
        self.seen_changes = changes.len();
        drop(changes);
        let state = self.breaker.state();
        assert_eq!(state, self.state, "state() disagrees with the listener");

        let snap = self.breaker.snapshot();
        assert_eq!(snap.state, state);
        let probes = self.permits.iter().filter(|p| p.is_probe()).count();
        check_snapshot(&snap, &self.settings, probes);
    }
}

/// Invariants of any snapshot; `live_probes` is how many probe permits are still held.
fn check_snapshot(snap: &Snapshot, settings: &Settings, live_probes: usize) {
    let max_probes = settings.half_open_max_calls();
    assert!(
        snap.probes_in_flight <= max_probes,
        "{} probes in flight, max {max_probes}",
        snap.probes_in_flight
    );
    assert!(
        u64::from(snap.probes_in_flight) + u64::from(snap.probe_successes) <= u64::from(max_probes),
        "in flight + successes exceed {max_probes}: {snap:?}"
    );
    assert!(
        usize::try_from(snap.probes_in_flight).is_ok_and(|n| n <= live_probes),
        "{} probes in flight but only {live_probes} probe permits alive",
        snap.probes_in_flight
    );
    if snap.state != State::HalfOpen {
        assert_eq!((snap.probes_in_flight, snap.probe_successes), (0, 0));
    } else {
        assert!(
            snap.probe_successes < max_probes,
            "enough probes succeeded to close: {snap:?}"
        );
    }
    assert_eq!(
        snap.retry_in.is_some(),
        snap.state == State::Open,
        "retry_in only when open: {snap:?}"
    );
    if let Some(retry_in) = snap.retry_in {
        assert!(
            retry_in <= settings.max_wait_in_open().max(settings.wait_in_open()),
            "retry_in {retry_in:?} exceeds the longest open period"
        );
    }
    if snap.state == State::Closed {
        assert!(
            snap.consecutive_failures < settings.failure_threshold(),
            "closed with {} consecutive failures, threshold {}",
            snap.consecutive_failures,
            settings.failure_threshold()
        );
    }
    assert!(
        snap.failures <= snap.calls && snap.slow_calls <= snap.calls,
        "{snap:?}"
    );
    if !settings.has_rate() {
        assert_eq!(snap.calls, 0, "no rate condition, yet a window: {snap:?}");
    }
    if let SlidingWindow::Count(n) = settings.window() {
        assert!(snap.calls <= n, "{} calls in a window of {n}", snap.calls);
    }
    let enough = snap.calls > 0 && snap.calls >= settings.minimum_calls();
    for rate in [snap.failure_rate, snap.slow_call_rate] {
        assert_eq!(
            rate.is_some(),
            enough,
            "rates iff minimum_calls reached: {snap:?}"
        );
        if let Some(rate) = rate {
            assert!((0.0..=100.0).contains(&rate), "rate {rate} out of 0..=100");
        }
    }
    // A closed breaker with a count window re-evaluates its rates on every record, and only a
    // record changes the window: a closed breaker is never over a rate threshold. (The same
    // comparison as the breaker's, on counts, so float rounding cannot disagree.)
    if enough && snap.state == State::Closed && matches!(settings.window(), SlidingWindow::Count(_))
    {
        let calls = f64::from(snap.calls);
        let over = |threshold: Option<f64>, n: u32| {
            threshold.is_some_and(|t| f64::from(n) * 100.0 >= t * calls)
        };
        assert!(
            !over(settings.failure_rate, snap.failures)
                && !over(settings.slow_call_rate, snap.slow_calls),
            "closed over a rate threshold: {snap:?} with {settings:?}"
        );
    }
}
