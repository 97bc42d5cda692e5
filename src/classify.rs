//! Turning a call's result into [`Outcome::Success`], [`Outcome::Failure`] or
//! [`Outcome::Ignored`], plus an optional retry hint.
//!
//! One classifier shape serves every layer: anything that implements [`Classify`], including
//! any closure `Fn(&Result<T, E>) -> Outcome`. The classifier runs on the inner service's
//! result *before* anything is boxed, so it sees the concrete response and error types (an
//! `http::Response` status, an `io::Error` kind).
//!
//! ```
//! use seawall::classify::{Classify, Outcome};
//! use std::io;
//!
//! // A "not found" says nothing about the dependency's health: ignore it.
//! let classifier = |r: &Result<u32, io::Error>| match r {
//!     Ok(_) => Outcome::Success,
//!     Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Ignored,
//!     Err(_) => Outcome::Failure,
//! };
//! assert_eq!(classifier.classify(&Ok(1)), Outcome::Success);
//! let not_found = Err(io::Error::from(io::ErrorKind::NotFound));
//! assert_eq!(classifier.classify(&not_found), Outcome::Ignored);
//! ```

use std::time::Duration;

/// What a call's result says about the health of the dependency behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency did its job. Closes a half-open breaker; never retried.
    Success,
    /// The dependency failed. Counts towards tripping a breaker; retryable.
    Failure,
    /// Says nothing about the dependency (a 404, a validation error): counts for nothing and
    /// is not retried.
    Ignored,
}

/// Classifies a call's result. Implemented for every `Fn(&Result<T, E>) -> Outcome`.
///
/// Implement the trait on a type of your own to also give a server-suggested retry delay
/// (a `Retry-After`) through [`Classify::retry_after`].
pub trait Classify<T, E> {
    /// What `result` says about the dependency.
    fn classify(&self, result: &Result<T, E>) -> Outcome;

    /// A delay the server asked for before the next attempt, if any. Retry waits at least
    /// that long (and at least its backoff); a delay longer than its `max_delay` or deadline
    /// allows ends the call (see `LongRetryAfter`). Default: none.
    fn retry_after(&self, result: &Result<T, E>) -> Option<Duration> {
        let _ = result;
        None
    }

    /// Whether `result` proves the request never reached the dependency (a refused
    /// connection): then even a request that must not be sent twice (not idempotent) may be
    /// retried. Asked only of a retryable failure. Default: no.
    fn is_unsent(&self, result: &Result<T, E>) -> bool {
        let _ = result;
        false
    }
}

impl<F, T, E> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// A classifier from a closure whose argument type is left to inference: `from_fn(|r| ..)`.
///
/// A closure written `|r: &Result<T, E>| ..` is already a [`Classify`]; one written `|r| ..`
/// is not, because nothing tells rustc its argument is a reference for every lifetime (it
/// then reports "implementation of `FnOnce` is not general enough"). `from_fn` pins that
/// signature, and `T` and `E` are inferred from the service the classifier is layered over.
///
/// ```
/// use seawall::classify::{from_fn, Classify, Outcome};
///
/// let classifier = from_fn(|r| match r {
///     Ok(n) if *n > 100 => Outcome::Failure, // too slow to be useful, say
///     Ok(_) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// });
/// assert_eq!(classifier.classify(&Ok::<u32, ()>(7)), Outcome::Success);
/// ```
pub fn from_fn<T, E, F>(f: F) -> FromFn<F>
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    FromFn(f)
}

/// A closure as a [`Classify`]; made by [`from_fn`].
#[derive(Clone, Copy)]
pub struct FromFn<F>(F);

impl<F, T, E> Classify<T, E> for FromFn<F>
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        (self.0)(result)
    }
}

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<T, E> Classify<T, E> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// What a layer counting outcomes (the circuit breaker) records for `result`: one of
/// seawall's own refusals that never reached the dependency
/// ([`ErrorKind::never_reached_dependency`](crate::ErrorKind::never_reached_dependency): a
/// full bulkhead, a rate limit, an inner breaker's open circuit, a local throttle) is
/// [`Outcome::Ignored`] whatever the classifier says; anything else, an exhausted retry
/// budget's failure included, is the classifier's word. Only an error is looked at (a success costs
/// nothing more).
#[inline]
pub(crate) fn outcome_of<C, T, E>(classifier: &C, result: &Result<T, E>) -> Outcome
where
    C: Classify<T, E> + ?Sized,
    E: 'static,
{
    if never_reached_dependency(result) {
        return Outcome::Ignored;
    }
    classifier.classify(result)
}

/// Whether `result` is one of seawall's own refusals that never reached the dependency
/// ([`ErrorKind::never_reached_dependency`](crate::ErrorKind::never_reached_dependency)):
/// the one test every layer that counts outcomes (the breaker, the throttle) applies before
/// its classifier. Only an error is looked at.
#[inline]
pub(crate) fn never_reached_dependency<T, E: 'static>(result: &Result<T, E>) -> bool {
    result
        .as_ref()
        .err()
        .is_some_and(|e| crate::error::ErrorKind::of_any(e).never_reached_dependency())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classifier_maps_ok_and_err() {
        assert_eq!(
            DefaultClassifier.classify(&Ok::<_, ()>(1)),
            Outcome::Success
        );
        assert_eq!(
            DefaultClassifier.classify(&Err::<(), _>(1)),
            Outcome::Failure
        );
        assert_eq!(
            Classify::<(), i32>::retry_after(&DefaultClassifier, &Err(1)),
            None
        );
    }
}
