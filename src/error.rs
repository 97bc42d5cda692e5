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

use std::any::Any;
use std::error::Error;
use std::fmt;

/// A type-erased error, as used throughout tower.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Which kind of failure an error is: a seawall rejection or the inner service's own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A circuit breaker rejected the call without calling the inner service.
    CircuitOpen,
    /// A timeout elapsed (seawall's, `tower::timeout`'s or tokio's).
    Timeout,
    /// A retry was refused because the retry budget was exhausted; the source is the last error.
    BudgetExhausted,
    /// Anything else: the inner service's own error.
    Inner,
}

impl ErrorKind {
    /// The kind of `err`, looking through its `source()` chain (so a rejection wrapped by,
    /// for example, tower's `Buffer` is still found). The outermost match wins.
    pub fn of(err: &(dyn Error + 'static)) -> ErrorKind {
        let mut current: Option<&(dyn Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(kind) = Self::direct(e) {
                return kind;
            }
            current = e.source();
        }
        ErrorKind::Inner
    }

    /// The kind of any error value: a [`BoxError`], one of seawall's rejections, or anything
    /// else (which is [`ErrorKind::Inner`]). Useful in generic code such as classifiers.
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
        if any.is::<crate::circuit_breaker::CircuitOpen>() {
            return ErrorKind::CircuitOpen;
        }
        if any.is::<crate::retry::BudgetExhausted>() {
            return ErrorKind::BudgetExhausted;
        }
        if any.is::<tower::timeout::error::Elapsed>() || any.is::<tokio::time::error::Elapsed>() {
            return ErrorKind::Timeout;
        }
        ErrorKind::Inner
    }

    fn direct(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
        if e.is::<crate::circuit_breaker::CircuitOpen>() {
            Some(ErrorKind::CircuitOpen)
        } else if e.is::<crate::retry::BudgetExhausted>() {
            Some(ErrorKind::BudgetExhausted)
        } else if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>()
        {
            Some(ErrorKind::Timeout)
        } else {
            None
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BudgetExhausted => "retry budget exhausted",
            ErrorKind::Inner => "inner service error",
        })
    }
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
