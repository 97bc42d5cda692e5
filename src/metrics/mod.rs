//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! counters, gauges and histograms for every layer, under one naming scheme.
//!
//! One line per layer, once the feature is on and a recorder (a Prometheus exporter, say) is
//! installed:
//!
//! ```
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::metrics::WithMetrics;
//! use seawall::Retry;
//!
//! let breaker = CircuitBreaker::builder().with_metrics("payments").build().unwrap();
//! let retry = Retry::builder().with_metrics("payments").build().unwrap();
//! # drop((breaker, retry));
//! ```
//!
//! [`with_metrics`](WithMetrics::with_metrics) names the breaker and adds a
//! [`BreakerMetrics`] listener with the same name (on a retry builder, a [`RetryMetrics`]
//! listener), so the name is written once. The listeners can also be added by hand:
//! `.listener(BreakerMetrics::new("payments"))`.
//!
//! # Names
//!
//! There is no OpenTelemetry semantic convention for resilience yet; the names follow the
//! de-facto one of Polly v8 and seatbelt: a `resilience.*` namespace, the layer's name as a
//! label. Label values are a closed set (states, outcomes, reasons, attempt numbers up to
//! `"10+"`), so no series is created per request.
//!
//! | Metric | Type | Labels | Moves when |
//! |---|---|---|---|
//! | `resilience.circuit_breaker.calls` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` \| `rejected` | a call's outcome is recorded (`success`, `failure`, `ignored`, as the classifier said; probes included), or a call is rejected without being run (`rejected`) |
//! | `resilience.circuit_breaker.slow_calls` | counter | `name` | a recorded call took at least `slow_call_duration` (only measured when a rate condition keeps a window) |
//! | `resilience.circuit_breaker.state` | gauge | `name`, `state` = `closed` \| `open` \| `half_open` \| `forced_open` \| `disabled` | one series per state: 1 for the current state, 0 for the others; set when the listener is made (closed) and on every state change |
//! | `resilience.circuit_breaker.transitions` | counter | `name`, `from`, `to` (state names) | the breaker moves from one state to another |
//! | `resilience.circuit_breaker.probes` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` | a half-open probe's outcome is recorded (also counted in `calls`) |
//! | `resilience.circuit_breaker.failure_rate` | gauge (percent) | `name` | failed calls in the window, `-1` below `minimum_calls` or without a rate condition; refreshed at every failure, slow call and state change and every 64th other call |
//! | `resilience.circuit_breaker.slow_call_rate` | gauge (percent) | `name` | slow calls in the window, refreshed like `failure_rate` |
//! | `resilience.retry.calls` | counter | `name`, `outcome` = `success` \| `not_retryable` \| `gave_up`, `retried` = `true` \| `false` | a call through the retry ends (`retried`: it made more than one attempt; a call dropped before its end is not counted) |
//! | `resilience.retry.call_duration` | histogram (seconds) | `name`, `outcome` | a call ends: from its start to its answer, backoffs included |
//! | `resilience.retry.attempt_duration` | histogram (seconds) | `name` | an attempt ends (cut by the attempt timeout or not) |
//! | `resilience.retry.retries` | counter | `name`, `attempt` = `"1"` … `"9"` \| `"10+"`, `reason` = `error` \| `response` \| `timeout` | a failed attempt is retried; `attempt` is the attempt that failed (so `"1"` counts first retries); `reason`: an error, a response the classifier called a failure (an HTTP 503), the attempt timeout |
//! | `resilience.retry.give_ups` | counter | `name`, `reason` (below) | a retryable failure ends the call without another attempt (`budget_exhausted`: the budget refused) |
//! | `resilience.retry.delay` | histogram (seconds) | `name` | a retry waits (the backoff, or the server's `Retry-After`) |
//! | `resilience.retry.budget.balance` | gauge | `name` | the retries the budget would allow now ([`RetryBudget::balance`](crate::RetryBudget::balance)); refreshed at every retry and give-up and every 64th ended call; 0 without a budget |
//!
//! The `reason` of a give-up is the [`GiveUpReason`] in snake case: `retries_used_up`,
//! `deadline`, `budget_exhausted`, `no_timer`, `request_not_copied`, `not_idempotent`,
//! `retry_after_too_long`, `not_ready`.
//!
//! ## The other layers
//!
//! The same one line on the bulkhead, the rate limiters (feature `rate-limit`), the hedge and
//! the fallback: each names its layer (in `tracing` events too) and adds its listener.
//!
//! ```
//! use seawall::bulkhead::Bulkhead;
//! use seawall::fallback::{fallback_fn, FallbackLayer};
//! use seawall::hedge::Hedge;
//! use seawall::metrics::WithMetrics;
//! use seawall::BoxError;
//!
//! let bulkhead = Bulkhead::builder().with_metrics("payments").build().unwrap();
//! let hedge = Hedge::builder().no_budget().with_metrics("payments").build().unwrap();
//! let fallback = FallbackLayer::new(fallback_fn(|_: u32, _: BoxError| async {
//!     Ok::<_, BoxError>("queued")
//! }))
//! .with_metrics("payments");
//! assert_eq!(bulkhead.name(), Some("payments"));
//! # drop((hedge, fallback));
//! ```
//!
//! | Metric | Type | Labels | Moves when |
//! |---|---|---|---|
//! | `resilience.bulkhead.calls` | counter | `name`, `outcome` = `admitted` \| `rejected` | a call takes a slot (at once or after waiting), or is refused with [`BulkheadFull`](crate::bulkhead::BulkheadFull) |
//! | `resilience.bulkhead.wait` | histogram (seconds) | `name`, `outcome` = `admitted` \| `rejected` | a call that found every slot busy is admitted after waiting, or refused after waiting `max_wait` (calls admitted at once wait nothing and are not recorded) |
//! | `resilience.bulkhead.max_concurrent`, `.available`, `.in_flight`, `.waiting` | gauges | `name` | [`BulkheadMetrics::record_gauges`] reads the bulkhead (a bulkhead tells no one when a slot frees, so these are read, not pushed) |
//! | `resilience.rate_limiter.rejections` | counter | `name` | a call is refused with [`RateLimited`](crate::rate_limit::RateLimited) (at once, or after waiting) |
//! | `resilience.rate_limiter.delay` | histogram (seconds) | `name` | a call finds no free slot and is made to wait this long for one (it may still be refused) |
//! | `resilience.hedge.hedges` | counter | `name`, `hedge` = `"1"` … `"10"` | a hedge is sent; `hedge` is its number in its call (`"1"`: the first hedge, the primary being 0) |
//! | `resilience.hedge.budget_refusals` | counter | `name` | the budget refuses a hedge (no more hedges for that call) |
//! | `resilience.hedge.delay` | histogram (seconds) | `name` | a hedge is sent: the delay it waited (fixed, or the latency percentile) |
//! | `resilience.fallback.used` | counter | `name`, `error_kind` (below) | a call fails with a selected error and the fallback answers it |
//! | `resilience.fallback.failed` | counter | `name`, `error_kind` (below) | the fallback itself fails (not ready, or its call fails): its error is the call's |
//! | `resilience.throttle.rejections` | counter | `name` | an adaptive throttle sheds a call locally (`Throttled`) |
//! | `resilience.throttle.probability` | gauge | `name` | the probability with which it sheds calls, read from the throttle at each local rejection, when shedding starts (from 0) and when it stops (back to 0) |
//!
//! The `error_kind` of a fallback is the [`ErrorKind`](crate::ErrorKind) of the error it
//! answered, in snake case: `circuit_open`, `timeout`, `budget_exhausted`, `rate_limited`,
//! `bulkhead_full`, `throttled`, `inner`. Nothing is recorded for calls a layer passes through untouched
//! (a rate limiter's or a hedge's admitted calls, a fallback's successes): those layers emit
//! no event on their success path, which is what keeps it free.
//!
//! # From resilience4j (Micrometer)
//!
//! | resilience4j | seawall |
//! |---|---|
//! | `resilience4j.circuitbreaker.calls{kind="successful"}` | `resilience.circuit_breaker.calls{outcome="success"}` |
//! | `resilience4j.circuitbreaker.calls{kind="failed"}` | `resilience.circuit_breaker.calls{outcome="failure"}` |
//! | `resilience4j.circuitbreaker.calls{kind="ignored"}` | `resilience.circuit_breaker.calls{outcome="ignored"}` |
//! | `resilience4j.circuitbreaker.not.permitted.calls` (`kind="not_permitted"`) | `resilience.circuit_breaker.calls{outcome="rejected"}` |
//! | `resilience4j.circuitbreaker.state{state=...}` (1 / 0 per state) | `resilience.circuit_breaker.state{state=...}` (1 / 0 per state, same state names) |
//! | `resilience4j.circuitbreaker.slow.calls` (a gauge of the window) | `resilience.circuit_breaker.slow_calls` (a counter of every slow call) |
//! | `resilience4j.circuitbreaker.failure.rate`, `.slow.call.rate` (`-1` below the minimum) | `resilience.circuit_breaker.failure_rate`, `.slow_call_rate` (`-1` below the minimum; refreshed as said above, not at every call) |
//! | (state transition events) | `resilience.circuit_breaker.transitions{from, to}` |
//! | `resilience4j.retry.calls{kind="successful_without_retry"}` | `resilience.retry.calls{outcome="success", retried="false"}` |
//! | `resilience4j.retry.calls{kind="successful_with_retry"}` | `resilience.retry.calls{outcome="success", retried="true"}` |
//! | `resilience4j.retry.calls{kind="failed_without_retry"}` (an error it does not retry, after retries or not) | `resilience.retry.calls{outcome="not_retryable"}` (any `retried`; it also counts a response the classifier ignored, which resilience4j counts as a success) |
//! | `resilience4j.retry.calls{kind="failed_with_retry"}` (attempts used up, even with one attempt) | `resilience.retry.calls{outcome="gave_up"}` (any `retried`; also the other give-ups: budget, deadline...) |
//! | (retry events) | `resilience.retry.retries{attempt, reason}`, `resilience.retry.give_ups{reason}` |
//!
//! Differences to keep in mind when porting a dashboard: resilience4j's breaker `calls` is a
//! timer (its `_count` series is the counter here; the breaker records no durations: the
//! retry's `call_duration` and `attempt_duration` do), and its tag is `kind` where this one
//! is `outcome`. OpenTelemetry's `http.request.resend_count` (the retries of one HTTP
//! request) is, summed over requests, `resilience.retry.retries`. Polly v8 puts every event in one counter,
//! `resilience.polly.strategy.events{event.name, pipeline.name, strategy.name}`; seawall
//! keeps one metric per kind of event, with the layer's name as `name`.
//!
//! ## The other layers
//!
//! | resilience4j (or Polly v8) | seawall |
//! |---|---|
//! | `resilience4j.bulkhead.available.concurrent.calls` | `resilience.bulkhead.available` (read by [`BulkheadMetrics::record_gauges`]) |
//! | `resilience4j.bulkhead.max.allowed.concurrent.calls` | `resilience.bulkhead.max_concurrent` (same) |
//! | bulkhead events `CallPermitted` / `CallRejected` | `resilience.bulkhead.calls{outcome="admitted"}` / `{outcome="rejected"}` |
//! | bulkhead event `CallFinished` | not exported (a bulkhead tells no one when a slot frees); `resilience.bulkhead.in_flight` when read |
//! | `resilience4j.ratelimiter.available.permissions` | not exported (GCRA keeps a time, not a count of permissions) |
//! | `resilience4j.ratelimiter.waiting_threads` | not exported; `resilience.rate_limiter.delay`'s count tells how many calls were made to wait |
//! | rate limiter events `SuccessfulAcquire` / `FailedAcquire` | not exported / `resilience.rate_limiter.rejections` |
//! | Polly `OnHedging` (`event.name="OnHedging"`) | `resilience.hedge.hedges{hedge}` |
//! | Polly `OnFallback` (`event.name="OnFallback"`) | `resilience.fallback.used{error_kind}` |
//!
//! # Recorders and cost
//!
//! Handles are registered once, when a listener is made, with the recorder current then (the
//! global one, or a [`metrics::with_local_recorder`] scope around the building); with no
//! recorder installed they are no-ops. Recording is then an indexed handle call: no label is
//! formatted and nothing is allocated per event. The breaker calls its listeners for every
//! recorded outcome only when it has one, so adding [`BreakerMetrics`] costs one dynamic
//! call per call even with a no-op recorder (see `benches/metrics.rs`). A retry with a
//! listener times its calls: [`RetryMetrics`] adds two clock reads per call (its start and
//! its end) and two events. Gauges that need a lock to read (the breaker's rates, the
//! budget's balance) are refreshed when they move most (a failure, a retry) and every 64th
//! call otherwise, never once per call.
//!
//! The state gauge is written by the thread that changed the state, after the change and
//! outside the breaker's locks: two changes racing on two threads may be written out of
//! order. The listener reads the breaker's state when it writes, which makes that rare; a
//! dashboard that needs certainty can read [`snapshot`](crate::circuit_breaker::CircuitBreaker::snapshot).
//!
//! # OpenTelemetry
//!
//! No second set of listeners: the `metrics` facade already bridges to OpenTelemetry.
//! Install the [`metrics-exporter-opentelemetry`](https://docs.rs/metrics-exporter-opentelemetry)
//! recorder and every instrument above becomes an OpenTelemetry instrument of the same name,
//! its labels as attributes (counters as `u64` sums, gauges as `f64` gauges, histograms as
//! `f64` histograms), exported by whatever reader and exporter the `SdkMeterProvider` has
//! (OTLP, Prometheus). The bridge registers each OpenTelemetry instrument once, when
//! seawall registers its handle, so recording stays a handle call. `tests/otel.rs` reads
//! them back through the SDK's in-memory exporter.
//!
//! ```
//! use metrics_exporter_opentelemetry::Recorder;
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::metrics::WithMetrics;
//!
//! // `install()` makes it the global recorder; `build()` returns it for a scope.
//! let (provider, recorder) = Recorder::builder("my-service").build();
//! let breaker = metrics::with_local_recorder(&recorder, || {
//!     CircuitBreaker::builder().with_metrics("payments").build().unwrap()
//! });
//! # drop(breaker);
//! provider.shutdown().unwrap();
//! ```
//!
//! # Testing with a debugging recorder
//!
//! ```
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use seawall::circuit_breaker::CircuitBreaker;
//! use seawall::metrics::WithMetrics;
//! use seawall::Outcome;
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! // Handles bind to the recorder current when the listener is made.
//! let breaker = metrics::with_local_recorder(&recorder, || {
//!     CircuitBreaker::builder()
//!         .failure_threshold(1)
//!         .with_metrics("payments")
//!         .build()
//!         .unwrap()
//! });
//! breaker.record(Outcome::Failure); // trips
//! assert!(breaker.try_acquire().is_err());
//!
//! // One snapshot (a `DebuggingRecorder`'s snapshots reset what they read).
//! let snapshot = snapshotter.snapshot().into_vec();
//! let value = |name: &str, label: (&str, &str)| {
//!     snapshot.iter().find_map(|(key, _, _, value)| {
//!         let key = key.key();
//!         let labelled = key.labels().any(|l| (l.key(), l.value()) == label);
//!         (key.name() == name && labelled).then(|| match value {
//!             DebugValue::Counter(n) => *n as f64,
//!             DebugValue::Gauge(g) => g.into_inner(),
//!             DebugValue::Histogram(_) => unreachable!(),
//!         })
//!     })
//! };
//! let calls = "resilience.circuit_breaker.calls";
//! let state = "resilience.circuit_breaker.state";
//! assert_eq!(value(calls, ("outcome", "failure")), Some(1.0));
//! assert_eq!(value(calls, ("outcome", "rejected")), Some(1.0));
//! assert_eq!(value(calls, ("outcome", "success")), Some(0.0));
//! assert_eq!(value(state, ("state", "open")), Some(1.0));
//! assert_eq!(value(state, ("state", "closed")), Some(0.0));
//! ```
//!
//! [`GiveUpReason`]: crate::retry::GiveUpReason

mod breaker;
mod bulkhead;
mod fallback;
mod hedge;
#[cfg(feature = "rate-limit")]
mod rate_limit;
mod retry;
mod throttle;

pub use breaker::BreakerMetrics;
pub use bulkhead::BulkheadMetrics;
pub use fallback::FallbackMetrics;
pub use hedge::HedgeMetrics;
#[cfg(feature = "rate-limit")]
pub use rate_limit::RateLimitMetrics;
pub use retry::RetryMetrics;
pub use throttle::ThrottleMetrics;

/// Adds metrics to a layer's builder in one call: `.with_metrics("payments")`.
///
/// Implemented for [`circuit_breaker::Builder`](crate::circuit_breaker::Builder) (names the
/// breaker and adds a [`BreakerMetrics`]) and [`retry::Builder`](crate::retry::Builder) (adds
/// a [`RetryMetrics`]). The handles are registered here, with the recorder current now.
/// Also for the bulkhead's, the rate limiters' (feature `rate-limit`) and the hedge's
/// builders, and for [`Fallback`](crate::fallback::Fallback) and
/// [`FallbackLayer`](crate::fallback::FallbackLayer): each names its layer and adds its
/// listener ([`BulkheadMetrics`], `RateLimitMetrics`, [`HedgeMetrics`], [`FallbackMetrics`]),
/// and for the adaptive throttle's builder ([`ThrottleMetrics`]).
pub trait WithMetrics: Sized {
    /// Adds this layer's metrics, labelled `name = name`.
    fn with_metrics(self, name: &str) -> Self;
}

impl WithMetrics for crate::circuit_breaker::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(BreakerMetrics::new(name))
    }
}

impl WithMetrics for crate::retry::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(RetryMetrics::new(name))
    }
}

/// Names the bulkhead and adds a [`BulkheadMetrics`].
impl WithMetrics for crate::bulkhead::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(BulkheadMetrics::new(name))
    }
}

/// Names the limiter and adds a [`RateLimitMetrics`].
#[cfg(feature = "rate-limit")]
impl WithMetrics for crate::rate_limit::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(RateLimitMetrics::new(name))
    }
}

/// Names the limiter and adds a [`RateLimitMetrics`] (shared by every key: the key is never
/// a label).
#[cfg(feature = "rate-limit")]
impl<K> WithMetrics for crate::rate_limit::KeyedBuilder<K> {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(RateLimitMetrics::new(name))
    }
}

/// Names the throttle and adds a [`ThrottleMetrics`].
impl WithMetrics for crate::throttle::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(ThrottleMetrics::new(name))
    }
}

/// Names the policy and adds a [`HedgeMetrics`].
impl WithMetrics for crate::hedge::Builder {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(HedgeMetrics::new(name))
    }
}

/// Names the policy and adds a [`FallbackMetrics`].
impl WithMetrics for crate::fallback::Fallback {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(FallbackMetrics::new(name))
    }
}

/// Names the layer's policy and adds a [`FallbackMetrics`].
impl<F, R> WithMetrics for crate::fallback::FallbackLayer<F, R> {
    fn with_metrics(self, name: &str) -> Self {
        self.name(name).listener(FallbackMetrics::new(name))
    }
}

/// The label value of a layer without a name.
pub(crate) const DEFAULT_NAME: &str = "default";

/// The `name` label: shared by every handle of a listener (one allocation, when it is made).
fn name_label(name: &str) -> ::metrics::SharedString {
    if name.is_empty() {
        ::metrics::SharedString::const_str(DEFAULT_NAME)
    } else {
        ::metrics::SharedString::from(std::sync::Arc::<str>::from(name))
    }
}
