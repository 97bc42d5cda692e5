//! One error model for every layer, in tower's convention.
//!
//! seawall's layers return [`BoxError`]: the inner service's error (boxed) or one of seawall's
//! small rejection types, such as [`CircuitOpen`](crate::circuit_breaker::CircuitOpen). A stack
//! of several layers therefore has one error type, not `Error<Error<Error<E>>>`, and composes
//! unchanged with tower's `Timeout`, `LoadShed`, `Buffer` and axum's `HandleErrorLayer`, which
//! use the same convention. Classifiers run before boxing and see the concrete inner error.
//!
//! To tell the kinds apart without string matching, call [`ErrorKind::of`] (one call), or
//! downcast to the concrete type for its details:
//!
//! ```
//! use seawall::circuit_breaker::CircuitOpen;
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//!
//! fn respond(err: BoxError) -> String {
//!     match ErrorKind::of(&*err) {
//!         ErrorKind::CircuitOpen => {
//!             let open = err.downcast_ref::<CircuitOpen>().expect("kind said so");
//!             format!("503, retry in {:?}", open.retry_in())
//!         }
//!         ErrorKind::Timeout => "504".to_string(),
//!         _ => format!("502: {err}"),
//!     }
//! }
//! let err: BoxError = CircuitOpen::new(Duration::from_secs(2)).into();
//! assert_eq!(respond(err), "503, retry in 2s");
//! ```
//!
//! Configuration errors are a separate type, [`ConfigError`], returned by the builders.

use std::any::{Any, TypeId};
use std::error::Error;
use std::fmt;
use std::sync::{PoisonError, RwLock};

/// The most links of a `source()` chain any of seawall's walks look at: a chain that loops
/// back on itself ends there instead of hanging the caller.
pub(crate) const MAX_CHAIN: usize = 64;

/// A type-erased error, as used throughout tower.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Which kind of failure an error is: one of seawall's refusals, a timeout, or the inner
/// service's own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A circuit breaker rejected the call without calling the inner service.
    CircuitOpen,
    /// A timeout elapsed (seawall's, `tower::timeout`'s or tokio's).
    Timeout,
    /// A retry was refused because the retry budget was exhausted; the source is the last error.
    BudgetExhausted,
    /// A rate limiter refused the call without calling the inner service.
    RateLimited,
    /// A bulkhead refused the call without calling the inner service: every slot was busy.
    BulkheadFull,
    /// An adaptive throttle shed the call locally, without calling the inner service: the
    /// dependency has been rejecting most recent calls (Google SRE's client-side throttling,
    /// [`throttle`](crate::throttle)). Carries the window's counts
    /// ([`Throttled`](crate::throttle::Throttled)).
    Throttled,
    /// Anything else: the inner service's own error.
    Inner,
}

impl ErrorKind {
    /// The kind of `err`, looking through its `source()` chain (so a rejection wrapped by,
    /// for example, tower's `Buffer` is still found). The outermost match wins.
    ///
    /// Recognises tower's and tokio's `Elapsed`, every seawall error type (the bare API's
    /// `CallError` and `RetryError` included), and any type registered with
    /// [`ErrorKind::register`].
    pub fn of(err: &(dyn Error + 'static)) -> ErrorKind {
        let mut current: Option<&(dyn Error + 'static)> = Some(err);
        // Bounded: a `source()` chain that loops back on itself must not hang the caller.
        for _ in 0..MAX_CHAIN {
            let Some(e) = current else { break };
            // `source()` first: a generic seawall wrapper registers its concrete type there
            // (the only place its `E: Error` bound is known), before it is looked up.
            let next = e.source();
            // A probe that answers `Inner` (a wrapper around an error it cannot see into)
            // is no match: the causes further down may still say more.
            if let Some(kind) = Self::direct(e).filter(|k| *k != ErrorKind::Inner) {
                return kind;
            }
            current = next;
        }
        ErrorKind::Inner
    }

    /// The kind of any error value: a [`BoxError`], one of seawall's error types, or anything
    /// else (which is [`ErrorKind::Inner`]). For generic code such as classifiers, where the
    /// error type is a parameter.
    pub fn of_any<E: 'static>(err: &E) -> ErrorKind {
        let any = err as &dyn Any;
        if let Some(boxed) = any.downcast_ref::<BoxError>() {
            return Self::of(&**boxed);
        }
        if let Some(boxed) = any.downcast_ref::<Box<dyn Error + Send + 'static>>() {
            return Self::of(&**boxed);
        }
        if let Some(boxed) = any.downcast_ref::<Box<dyn Error + 'static>>() {
            return Self::of(&**boxed);
        }
        if any.is::<tower::timeout::error::Elapsed>() || any.is::<tokio::time::error::Elapsed>() {
            return ErrorKind::Timeout;
        }
        let id = TypeId::of::<E>();
        let probe = registry()
            .iter()
            .find(|entry| entry.type_id == id)
            .map(|entry| entry.of_any);
        // The guard is gone before the probe runs: a probe may look up a nested error.
        probe.and_then(|f| f(any)).unwrap_or(ErrorKind::Inner)
    }

    /// Whether the call this error ends never reached the dependency: a refusal, but not an
    /// exhausted retry budget, which comes back only after an attempt reached the dependency
    /// and failed (and carries that failure). A circuit breaker or an adaptive throttle
    /// outside records such an error as nothing (`Ignored`, not counted); an exhausted
    /// budget's failure counts as the failure it is.
    pub const fn never_reached_dependency(self) -> bool {
        self.is_refusal() && !matches!(self, ErrorKind::BudgetExhausted)
    }

    /// Whether this kind is one of seawall's own refusals (an open circuit, an exhausted
    /// retry budget, a rate limit, a full bulkhead, a local throttle): seawall's retry does
    /// not retry it unless told to (retrying would only hammer the layer that refused, or
    /// multiply nested retries). A timeout is not a refusal: the dependency was asked and
    /// did not answer. All but [`BudgetExhausted`](ErrorKind::BudgetExhausted) also mean
    /// that the dependency was not asked (see [`never_reached_dependency`](Self::never_reached_dependency)).
    pub const fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorKind::CircuitOpen
                | ErrorKind::BudgetExhausted
                | ErrorKind::RateLimited
                | ErrorKind::BulkheadFull
                | ErrorKind::Throttled
        )
    }

    /// Makes `T`'s kind known to [`ErrorKind::of`] and [`ErrorKind::of_any`]. seawall's own
    /// error types register themselves when they are created; a layer built on seawall calls
    /// this once (say, in its error's constructor) so its errors are classified like
    /// seawall's, with no central list to edit. Cheap after the first call, and idempotent.
    pub fn register<T: Error + HasErrorKind>() {
        register_entry(Entry {
            type_id: TypeId::of::<T>(),
            of_any: probe_any::<T>,
            of_dyn: Some(probe_dyn::<T>),
        });
    }

    /// Registers `T` with probes of its own: for a generic wrapper whose kind depends on what
    /// it wraps, registered where the wrapped type's bounds are known.
    /// Registers a [`DeepKind`] wrapper (the bare APIs' `CallError`s): its kind is its
    /// refusal's, or its inner error's whole chain. Called from the wrapper's `source()`, the
    /// one place where its `E: Error` is known.
    pub(crate) fn register_deep<T: DeepKind>() {
        fn of_any<T: DeepKind>(any: &dyn Any) -> Option<ErrorKind> {
            any.downcast_ref::<T>().map(T::deep_kind)
        }
        fn of_dyn<T: DeepKind>(err: &(dyn Error + 'static)) -> Option<ErrorKind> {
            err.downcast_ref::<T>().map(T::deep_kind)
        }
        Self::register_probes::<T>(of_any::<T>, Some(of_dyn::<T>));
    }

    pub(crate) fn register_probes<T: 'static>(
        of_any: fn(&dyn Any) -> Option<ErrorKind>,
        of_dyn: Option<fn(&(dyn Error + 'static)) -> Option<ErrorKind>>,
    ) {
        register_entry(Entry {
            type_id: TypeId::of::<T>(),
            of_any,
            of_dyn,
        });
    }

    /// Like [`register`](Self::register), for a type that is not (always) an `Error`, such as
    /// a generic error enum whose `Error` impl needs its parameter to be one: known to
    /// [`ErrorKind::of_any`] only.
    pub fn register_any<T: HasErrorKind>() {
        register_entry(Entry {
            type_id: TypeId::of::<T>(),
            of_any: probe_any::<T>,
            of_dyn: None,
        });
    }

    fn direct(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
        if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return Some(ErrorKind::Timeout);
        }
        // One entry at a time, without holding the lock while a probe runs: a probe may look
        // up a nested error (a `CallError` asks for its inner error's kind).
        (0..)
            .map_while(|i| registry().get(i).copied())
            .filter_map(|entry| entry.of_dyn)
            .find_map(|probe| probe(e))
    }
}

/// An error type that knows its own [`ErrorKind`]. Implemented by every seawall error; a
/// layer built on seawall implements it for its rejection and calls [`ErrorKind::register`].
pub trait HasErrorKind: 'static {
    /// This error's kind.
    fn error_kind(&self) -> ErrorKind;
}

// ===== the registry of error types =====
//
// `ErrorKind::of` gets a `&dyn Error` and must tell a seawall rejection from anything else
// without string matching. Downcasting needs the concrete type, so every error type registers a
// probe (a downcast to itself) the first time one is made. The registry holds one entry per
// registered type: bounded by the types in the program, not by the errors made, and read only
// on error paths.

#[derive(Clone, Copy)]
struct Entry {
    type_id: TypeId,
    of_any: fn(&dyn Any) -> Option<ErrorKind>,
    of_dyn: Option<fn(&(dyn Error + 'static)) -> Option<ErrorKind>>,
}

static REGISTRY: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

fn registry() -> std::sync::RwLockReadGuard<'static, Vec<Entry>> {
    REGISTRY.read().unwrap_or_else(PoisonError::into_inner)
}

fn register_entry(entry: Entry) {
    let known = registry()
        .iter()
        .any(|e| e.type_id == entry.type_id && (e.of_dyn.is_some() || entry.of_dyn.is_none()));
    if known {
        return;
    }
    let mut entries = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    match entries.iter_mut().find(|e| e.type_id == entry.type_id) {
        // A registration that knows the type is an `Error` brings the deeper probes.
        Some(existing) if existing.of_dyn.is_none() => *existing = entry,
        Some(_) => {}
        None => entries.push(entry),
    }
}

fn probe_any<T: HasErrorKind>(any: &dyn Any) -> Option<ErrorKind> {
    any.downcast_ref::<T>().map(T::error_kind)
}

fn probe_dyn<T: Error + HasErrorKind>(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    e.downcast_ref::<T>().map(T::error_kind)
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BudgetExhausted => "retry budget exhausted",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::BulkheadFull => "bulkhead full",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Inner => "inner service error",
        })
    }
}

/// A wrapper error of a bare API (`CallError<E>` of the breaker, the bulkhead, the rate
/// limiter) whose kind is its refusal's, or, for the inner error, that error's whole chain
/// ([`ErrorKind::of`]). See [`ErrorKind::register_deep`].
pub(crate) trait DeepKind: Error + 'static {
    /// The kind, looking through the inner error's causes.
    fn deep_kind(&self) -> ErrorKind;
}

/// An invalid configuration, refused by a builder's `build()`: names the field and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The field must be greater than zero.
    #[error("invalid `{field}`: must be greater than zero")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// The field lies outside its allowed range.
    #[error("invalid `{field}`: {value} is outside {min}..={max}")]
    OutOfRange {
        /// The offending field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The smallest allowed value.
        min: f64,
        /// The largest allowed value.
        max: f64,
    },
    /// The field is below its smallest allowed value.
    #[error("invalid `{field}`: {value} is less than the minimum of {min}")]
    TooSmall {
        /// The offending field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The smallest allowed value.
        min: f64,
    },
    /// The field is NaN or infinite.
    #[error("invalid `{field}`: must be a finite number")]
    NotFinite {
        /// The offending field.
        field: &'static str,
    },
    /// The field conflicts with another one.
    #[error("invalid `{field}`: {reason}")]
    Conflict {
        /// The offending field.
        field: &'static str,
        /// Why, naming the other field.
        reason: String,
    },
}

impl ConfigError {
    /// `value` must be finite and within `min..=max`.
    pub(crate) fn check_within(
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
    ) -> Result<(), ConfigError> {
        if !value.is_finite() {
            Err(ConfigError::NotFinite { field })
        } else if !(min..=max).contains(&value) {
            Err(ConfigError::OutOfRange {
                field,
                value,
                min,
                max,
            })
        } else {
            Ok(())
        }
    }

    /// `value` must be finite and at least `min`.
    pub(crate) fn check_at_least(
        field: &'static str,
        value: f64,
        min: f64,
    ) -> Result<(), ConfigError> {
        if !value.is_finite() {
            Err(ConfigError::NotFinite { field })
        } else if value < min {
            Err(ConfigError::TooSmall { field, value, min })
        } else {
            Ok(())
        }
    }

    /// The name of the offending field, as spelled by the builder method that sets it.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::Zero { field }
            | ConfigError::OutOfRange { field, .. }
            | ConfigError::TooSmall { field, .. }
            | ConfigError::NotFinite { field }
            | ConfigError::Conflict { field, .. } => field,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit_breaker::{CallError, CircuitOpen};
    use crate::retry::BudgetExhausted;
    use std::time::Duration;

    /// Every message of an error chain, outermost first.
    fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = Some(err);
        while let Some(e) = current {
            out.push(e.to_string());
            current = e.source();
        }
        out
    }

    #[test]
    fn of_sees_through_call_error() {
        let rejected: CallError<std::io::Error> =
            CallError::rejected(CircuitOpen::new(Duration::from_secs(1)));
        assert_eq!(ErrorKind::of(&rejected), ErrorKind::CircuitOpen);
        let timed_out: CallError<tower::timeout::error::Elapsed> =
            CallError::inner(tower::timeout::error::Elapsed::new());
        assert_eq!(ErrorKind::of(&timed_out), ErrorKind::Timeout);
        let inner: CallError<std::io::Error> = CallError::inner(std::io::Error::other("boom"));
        assert_eq!(ErrorKind::of(&inner), ErrorKind::Inner);
    }

    #[test]
    fn of_any_sees_through_typed_wrappers_and_boxes() {
        let rejected: CallError<&str> = CallError::rejected(CircuitOpen::new(Duration::ZERO));
        assert_eq!(ErrorKind::of_any(&rejected), ErrorKind::CircuitOpen);
        // A rejection boxed inside the error of an outer bare call.
        let nested: CallError<BoxError> =
            CallError::inner(Box::new(CircuitOpen::new(Duration::ZERO)));
        assert_eq!(ErrorKind::of_any(&nested), ErrorKind::CircuitOpen);
        let boxed: BoxError = Box::new(BudgetExhausted::new("flaky"));
        assert_eq!(ErrorKind::of_any(&boxed), ErrorKind::BudgetExhausted);
        assert_eq!(ErrorKind::of_any(&"flaky"), ErrorKind::Inner);
    }

    #[test]
    fn no_message_is_printed_twice_in_a_chain() {
        let inner: CallError<std::io::Error> = CallError::inner(std::io::Error::other("boom"));
        assert_eq!(chain(&inner), ["boom"]);
        let refused = BudgetExhausted::new("flaky");
        assert_eq!(
            chain(&refused),
            ["retry budget exhausted; not retrying", "flaky"]
        );
    }

    #[derive(Debug)]
    struct Shed;
    impl fmt::Display for Shed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("shed")
        }
    }
    impl Error for Shed {}
    impl HasErrorKind for Shed {
        fn error_kind(&self) -> ErrorKind {
            ErrorKind::CircuitOpen
        }
    }

    #[test]
    fn a_registered_type_is_classified_without_editing_error_rs() {
        let boxed: BoxError = Box::new(Shed);
        assert_eq!(ErrorKind::of(&*boxed), ErrorKind::Inner);
        ErrorKind::register::<Shed>();
        ErrorKind::register::<Shed>(); // idempotent
        assert_eq!(ErrorKind::of(&*boxed), ErrorKind::CircuitOpen);
        assert_eq!(ErrorKind::of_any(&Shed), ErrorKind::CircuitOpen);
    }

    /// A user's error whose cause is a timeout.
    #[derive(Debug)]
    struct Upstream(tower::timeout::error::Elapsed);
    impl fmt::Display for Upstream {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("upstream call failed")
        }
    }
    impl Error for Upstream {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_call_error_does_not_hide_a_timeout_among_its_errors_causes() {
        let plain = Upstream(tower::timeout::error::Elapsed::new());
        assert_eq!(ErrorKind::of(&plain), ErrorKind::Timeout);
        let wrapped = CallError::inner(Upstream(tower::timeout::error::Elapsed::new()));
        assert_eq!(ErrorKind::of(&wrapped), ErrorKind::Timeout);
        // Once `of` has seen the type, `of_any` walks the causes too.
        assert_eq!(ErrorKind::of_any(&wrapped), ErrorKind::Timeout);
        let nested = CallError::inner(wrapped);
        assert_eq!(ErrorKind::of(&nested), ErrorKind::Timeout);
    }

    #[test]
    fn refusals_are_seawalls_own() {
        assert!(ErrorKind::CircuitOpen.is_refusal());
        assert!(ErrorKind::BudgetExhausted.is_refusal());
        assert!(ErrorKind::Throttled.is_refusal());
        assert!(!ErrorKind::Timeout.is_refusal());
        assert!(!ErrorKind::Inner.is_refusal());
    }
}
