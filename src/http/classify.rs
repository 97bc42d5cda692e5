//! Ready-made classifiers for HTTP clients: [`HttpRetryClassifier`] for retry,
//! [`HttpBreakerClassifier`] for the circuit breaker.
//!
//! Both are plain data (`Copy`, `Send`, `Sync`, no closure), configured with `const fn`
//! builder methods, and implement [`Classify`] for `http::Response<B>` and any error type:
//!
//! ```
//! use http::StatusCode;
//! use seawall::http::{HttpBreakerClassifier, HttpRetryClassifier};
//!
//! // Retry 500s too; never retry 408.
//! const RETRY: HttpRetryClassifier = HttpRetryClassifier::new()
//!     .retry_on(StatusCode::INTERNAL_SERVER_ERROR)
//!     .never_retry(StatusCode::REQUEST_TIMEOUT);
//! // A 429 trips the breaker too.
//! const BREAKER: HttpBreakerClassifier =
//!     HttpBreakerClassifier::new().failure_on(StatusCode::TOO_MANY_REQUESTS);
//! # let _ = (RETRY, BREAKER);
//! ```
//!
//! The defaults, and how errors are told apart, are documented on [`HttpRetryClassifier`].

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use http::{Response, StatusCode};

use crate::classify::{Classify, Outcome};
use crate::error::{BoxError, ErrorKind};

// ===== StatusSet =====

/// A set of HTTP status codes from 100 to 599, as a 512-bit bitset: `Copy`, and a lookup is
/// a shift and a mask.
///
/// Codes outside 100..=599 are never members: inserting one does nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusSet {
    bits: [u64; 8],
}

impl StatusSet {
    /// The empty set.
    pub const EMPTY: StatusSet = StatusSet { bits: [0; 8] };

    /// The empty set.
    pub const fn new() -> StatusSet {
        StatusSet::EMPTY
    }

    /// The bit of `code`, if it fits.
    const fn slot(code: u16) -> Option<(usize, u64)> {
        if code < 100 || code > 599 {
            return None;
        }
        let i = (code - 100) as usize;
        Some((i / 64, 1 << (i % 64)))
    }

    /// This set with `status` added.
    #[must_use]
    pub const fn with(self, status: StatusCode) -> StatusSet {
        self.with_code(status.as_u16())
    }

    /// This set with `status` removed.
    #[must_use]
    pub const fn without(self, status: StatusCode) -> StatusSet {
        let mut set = self;
        if let Some((word, bit)) = Self::slot(status.as_u16()) {
            set.bits[word] &= !bit;
        }
        set
    }

    /// This set with every code in `from..=to` added (codes outside 100..=599 are skipped).
    #[must_use]
    pub const fn with_range(self, from: u16, to: u16) -> StatusSet {
        let mut set = self;
        let mut code = if from < 100 { 100 } else { from };
        let last = if to > 599 { 599 } else { to };
        while code <= last {
            set = set.with_code(code);
            code += 1;
        }
        set
    }

    const fn with_code(self, code: u16) -> StatusSet {
        let mut set = self;
        if let Some((word, bit)) = Self::slot(code) {
            set.bits[word] |= bit;
        }
        set
    }

    /// Whether `status` is in the set.
    #[inline]
    pub const fn contains(&self, status: StatusCode) -> bool {
        match Self::slot(status.as_u16()) {
            Some((word, bit)) => self.bits[word] & bit != 0,
            None => false,
        }
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        let mut i = 0;
        while i < self.bits.len() {
            if self.bits[i] != 0 {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The statuses in the set, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = StatusCode> + '_ {
        (100u16..=599)
            .filter(|&code| Self::slot(code).is_some_and(|(word, bit)| self.bits[word] & bit != 0))
            .filter_map(|code| StatusCode::from_u16(code).ok())
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|s| s.as_u16()))
            .finish()
    }
}

impl FromIterator<StatusCode> for StatusSet {
    fn from_iter<I: IntoIterator<Item = StatusCode>>(iter: I) -> Self {
        iter.into_iter().fold(StatusSet::EMPTY, StatusSet::with)
    }
}

// ===== errors =====

/// Views a type-erased error as a `dyn Error`, if it is of the type the function was made for.
type ErrorView = fn(&dyn Any) -> Option<&(dyn Error + 'static)>;

fn view_as<T: Error + 'static>(any: &dyn Any) -> Option<&(dyn Error + 'static)> {
    any.downcast_ref::<T>().map(|e| e as &(dyn Error + 'static))
}

/// The error types every classifier looks into (see [`HttpRetryClassifier`]).
fn known_view(any: &dyn Any) -> Option<&(dyn Error + 'static)> {
    if let Some(e) = any.downcast_ref::<BoxError>() {
        return Some(&**e);
    }
    if let Some(e) = any.downcast_ref::<Box<dyn Error + Send + 'static>>() {
        return Some(&**e);
    }
    if let Some(e) = any.downcast_ref::<Box<dyn Error + 'static>>() {
        return Some(&**e);
    }
    view_as::<io::Error>(any)
        .or_else(|| view_as::<hyper::Error>(any))
        .or_else(|| view_as::<http::Error>(any))
        .or_else(|| view_as::<tower::timeout::error::Elapsed>(any))
        .or_else(|| view_as::<tokio::time::error::Elapsed>(any))
}

use crate::error::MAX_CHAIN;

/// Whether `err`, or an error in its `source()` chain, is a transport failure: a refused,
/// reset, aborted or closed connection, an incomplete message, a timeout (see [transport
/// failures](HttpRetryClassifier#transport-failures) for the exact list). For classifiers of
/// your own.
///
/// ```
/// use seawall::http::is_transport_failure;
/// use std::io;
///
/// assert!(is_transport_failure(&io::Error::from(io::ErrorKind::ConnectionRefused)));
/// assert!(!is_transport_failure(&io::Error::from(io::ErrorKind::PermissionDenied)));
/// ```
pub fn is_transport_failure(err: &(dyn Error + 'static)) -> bool {
    if ErrorKind::of(err) == ErrorKind::Timeout {
        return true;
    }
    let mut current = Some(err);
    for _ in 0..MAX_CHAIN {
        let Some(e) = current else {
            return false;
        };
        if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if is_transient_io(io.kind()) {
                return true;
            }
            // `io::Error::source` skips the error it wraps (it returns the wrapped error's
            // source): look at the wrapped error itself.
            if let Some(inner) = io.get_ref() {
                current = Some(inner as &(dyn Error + 'static));
                continue;
            }
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() || h.is_timeout() {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// Whether `err`, or an error in its `source()` chain, proves the request never left the
/// client: a refused connection, an unreachable host or network, or hyper's "canceled" (a
/// request dropped before it was written, as when a pooled connection closed first). Even a
/// request that must not be sent twice (a `POST`) may be sent again then: the retry
/// classifiers say so through [`Classify::is_unsent`].
///
/// A timeout, a reset or an incomplete message are not proof: the request may have been
/// processed.
///
/// ```
/// use seawall::http::is_unsent;
/// use std::io;
///
/// assert!(is_unsent(&io::Error::from(io::ErrorKind::ConnectionRefused)));
/// assert!(!is_unsent(&io::Error::from(io::ErrorKind::ConnectionReset)));
/// ```
pub fn is_unsent(err: &(dyn Error + 'static)) -> bool {
    use io::ErrorKind::*;
    let mut current = Some(err);
    for _ in 0..MAX_CHAIN {
        let Some(e) = current else {
            return false;
        };
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable | NetworkDown
            ) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                current = Some(inner as &(dyn Error + 'static));
                continue;
            }
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_canceled() {
                return true;
            }
        }
        current = e.source();
    }
    false
}

const fn is_transient_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | NotConnected
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// What a classifier does with errors: shared by the HTTP and gRPC classifiers.
#[derive(Clone, Copy)]
pub(crate) struct ErrorRules {
    /// Transport failures (and errors that cannot be looked into) are `Failure`, else `Ignored`.
    transport: bool,
    /// Other errors are `Failure`, else `Ignored`.
    other: bool,
    /// How to see into one more error type.
    view: Option<ErrorView>,
}

impl ErrorRules {
    pub(crate) const fn new(transport: bool, other: bool) -> ErrorRules {
        ErrorRules {
            transport,
            other,
            view: None,
        }
    }

    pub(crate) const fn transport(self, failure: bool) -> ErrorRules {
        ErrorRules {
            transport: failure,
            ..self
        }
    }

    pub(crate) const fn other(self, failure: bool) -> ErrorRules {
        ErrorRules {
            other: failure,
            ..self
        }
    }

    pub(crate) const fn error_type<T: Error + 'static>(self) -> ErrorRules {
        ErrorRules {
            view: Some(view_as::<T>),
            ..self
        }
    }

    /// Whether `err` is a transport failure (an error that cannot be looked into is presumed
    /// one).
    pub(crate) fn is_transport<E: 'static>(&self, err: &E) -> bool {
        let any = err as &dyn Any;
        let seen = match self.view.and_then(|view| view(any)) {
            Some(e) => Some(e),
            None => known_view(any),
        };
        match seen {
            Some(e) => is_transport_failure(e),
            None => true,
        }
    }

    /// Whether `err` proves the request was never sent (an error that cannot be looked into
    /// proves nothing).
    pub(crate) fn is_unsent<E: 'static>(&self, err: &E) -> bool {
        let any = err as &dyn Any;
        match self.view.and_then(|view| view(any)) {
            Some(e) => is_unsent(e),
            None => known_view(any).is_some_and(is_unsent),
        }
    }

    pub(crate) fn outcome<E: 'static>(&self, err: &E) -> Outcome {
        let failure = if self.is_transport(err) {
            self.transport
        } else {
            self.other
        };
        if failure {
            Outcome::Failure
        } else {
            Outcome::Ignored
        }
    }
}

impl fmt::Debug for ErrorRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorRules")
            .field("transport_failures", &self.transport)
            .field("other_errors", &self.other)
            .field("error_type", &self.view.is_some())
            .finish()
    }
}

/// The outcome of a status: in `set` is `Failure`, else below 400 `Success`, else `Ignored`.
#[inline]
const fn status_outcome(set: &StatusSet, status: StatusCode) -> Outcome {
    if set.contains(status) {
        Outcome::Failure
    } else if status.as_u16() < 400 {
        Outcome::Success
    } else {
        Outcome::Ignored
    }
}

// ===== HttpRetryClassifier =====

/// Decides which HTTP results retry tries again (`Failure`) and which are final (`Ignored`,
/// or `Success`), and honours `Retry-After`.
///
/// By default, retried: 408, 429, 502, 503, 504 and [transport failures](#transport-failures)
/// (including errors it cannot look into); final: other 4xx and 5xx (500 included) and other
/// errors; `Success`: 1xx to 3xx. See the [defaults](#defaults) below for why.
///
/// [`retry_after`](Classify::retry_after) returns the delay asked for by the `Retry-After`
/// header of any response it retries (RFC 9110 §10.2.3 for 503, RFC 6585 §4 for 429),
/// measured against `SystemTime::now()`; a missing or malformed header leaves retry to its
/// backoff, and retry waits at least its backoff anyway.
///
/// Only idempotent requests are safe to retry after a transport failure that may have
/// reached the server (a reset, an incomplete message).
///
/// # Defaults
///
/// | response or error | [`HttpRetryClassifier`] | [`HttpBreakerClassifier`] |
/// |---|---|---|
/// | 1xx, 2xx, 3xx | `Success` | `Success` |
/// | 408, 429, 502, 503, 504 | `Failure` (retried) | 429 and 408: `Ignored`; 5xx: `Failure` |
/// | 500, other 5xx | `Ignored` (final) | `Failure` |
/// | other 4xx | `Ignored` (final) | `Ignored` |
/// | a [transport failure](#transport-failures) | `Failure` (retried) | `Failure` |
/// | any other error | `Ignored` (final) | `Failure` |
///
/// Why: 502, 503 and 504 say a gateway or the server could not serve the request *now*; 408
/// (the server timed out waiting for the request) and 429 (too many requests, RFC 6585)
/// invite a later attempt. A 500 is usually a bug that answers the same way next time, so it
/// is final unless opted in with [`HttpRetryClassifier::retry_on`]. Other 4xx blame the
/// request: retrying sends the same mistake. For the breaker, any 5xx means the server is
/// unwell, but a 429 means it is alive and asks us to slow down (the retry honours its
/// `Retry-After`); tripping on it would turn a polite throttle into an outage.
///
/// A status in a classifier's set that is below 400 is classified like the ones above 400
/// (`Failure`) — it is the user's explicit choice. Statuses 600 to 999 (which `http` accepts
/// but RFC 9110 does not define) are never in a set: `Ignored` by both classifiers.
///
/// The success path reads the status only: no header is parsed and nothing is allocated.
/// The `Retry-After` header (RFC 9110 §10.2.3; see [`parse_retry_after`](super::parse_retry_after))
/// is read only by [`Classify::retry_after`], which retry calls after a retryable response.
///
/// # Transport failures
///
/// An error is a transport failure when the request may well succeed if sent again: the
/// connection was refused, reset, aborted or closed early, or it timed out. The classifier
/// walks the error's `source()` chain and looks for:
///
/// - an [`io::Error`] of kind `ConnectionRefused`, `ConnectionReset`, `ConnectionAborted`,
///   `BrokenPipe`, `TimedOut`, `UnexpectedEof`, `NotConnected`, `HostUnreachable`,
///   `NetworkUnreachable` or `NetworkDown` (an `io::Error` wrapping another error is looked
///   into);
/// - a [`hyper::Error`] that is an incomplete message, a closed connection, a request
///   canceled because its connection went away, or a timeout;
/// - a timeout: tower's or tokio's `Elapsed`, or anything [`ErrorKind::of`] calls a
///   [`ErrorKind::Timeout`].
///
/// An error whose chain holds none of these (a DNS name that does not resolve, an invalid
/// URI, a TLS certificate refused, a request body that failed, your own error) is an *other
/// error*: not retried by default (the next attempt would fail the same way, like
/// reqwest-retry's "fatal" errors), but a failure for the breaker (the dependency could not
/// be reached). Both are configurable: `transport_failures(bool)` and `other_errors(bool)`.
///
/// ## Which error types are looked into
///
/// The error type `E` differs from stack to stack, and without specialization a generic
/// classifier cannot ask "does `E` implement `Error`?". Nor can one trait cover both every
/// `E: Error` and [`BoxError`] (which does not implement `Error`): coherence rejects the
/// overlap, as std may one day implement `Error` for it. So the classifiers accept any
/// `E: 'static` and look at it through [`Any`], recognising:
///
/// - [`BoxError`], `Box<dyn Error + Send>` and `Box<dyn Error>` (tower's `Timeout`,
///   `Buffer`, seawall's own layers): their whole chain is walked, so a
///   `hyper_util::client::legacy::Error` inside a box is seen through;
/// - [`io::Error`], [`hyper::Error`], [`http::Error`], tower's and tokio's `Elapsed`;
/// - the type registered with `error_type::<T>()`, for any `T: Error + 'static`, e.g.
///   `.error_type::<hyper_util::client::legacy::Error>()` when the classifier wraps a
///   hyper-util client directly.
///
/// An error of any other type cannot be looked into, and is *presumed a transport failure*:
/// in an HTTP client stack that is what an error usually is, and it is what
/// [`DefaultRetryClassifier`](crate::retry::DefaultRetryClassifier) would do. Register the
/// type with `error_type` to classify such errors precisely.
#[derive(Debug, Clone, Copy)]
pub struct HttpRetryClassifier {
    retry: StatusSet,
    errors: ErrorRules,
}

impl HttpRetryClassifier {
    /// The statuses retried by default: 408, 429, 502, 503, 504.
    pub const DEFAULT_STATUSES: StatusSet = StatusSet::EMPTY
        .with(StatusCode::REQUEST_TIMEOUT)
        .with(StatusCode::TOO_MANY_REQUESTS)
        .with(StatusCode::BAD_GATEWAY)
        .with(StatusCode::SERVICE_UNAVAILABLE)
        .with(StatusCode::GATEWAY_TIMEOUT);

    /// The defaults: see the [type docs](Self).
    pub const fn new() -> Self {
        HttpRetryClassifier {
            retry: Self::DEFAULT_STATUSES,
            errors: ErrorRules::new(true, false),
        }
    }

    /// Also retries responses with `status` (e.g. 500).
    #[must_use]
    pub const fn retry_on(mut self, status: StatusCode) -> Self {
        self.retry = self.retry.with(status);
        self
    }

    /// Never retries responses with `status`: they become final (`Ignored`, or `Success`
    /// below 400).
    #[must_use]
    pub const fn never_retry(mut self, status: StatusCode) -> Self {
        self.retry = self.retry.without(status);
        self
    }

    /// Retries exactly the statuses in `statuses`.
    #[must_use]
    pub const fn statuses(mut self, statuses: StatusSet) -> Self {
        self.retry = statuses;
        self
    }

    /// The statuses retried.
    pub const fn retried_statuses(&self) -> StatusSet {
        self.retry
    }

    /// Whether transport failures (and errors it cannot look into) are retried (default
    /// `true`). Off, they are final.
    #[must_use]
    pub const fn transport_failures(mut self, retry: bool) -> Self {
        self.errors = self.errors.transport(retry);
        self
    }

    /// Whether errors that are visibly not transport failures are retried (default `false`).
    #[must_use]
    pub const fn other_errors(mut self, retry: bool) -> Self {
        self.errors = self.errors.other(retry);
        self
    }

    /// Looks into errors of type `T` too (see [Which error types are looked
    /// into](HttpRetryClassifier#which-error-types-are-looked-into)), e.g.
    /// `hyper_util::client::legacy::Error` when this classifier wraps a hyper-util client
    /// directly. Without it, such errors are presumed transport failures.
    #[must_use]
    pub const fn error_type<T: Error + 'static>(mut self) -> Self {
        self.errors = self.errors.error_type::<T>();
        self
    }

    /// The outcome of a response with `status`.
    #[inline]
    pub const fn outcome_for_status(&self, status: StatusCode) -> Outcome {
        status_outcome(&self.retry, status)
    }

    /// The outcome of an error.
    pub fn outcome_for_error<E: 'static>(&self, err: &E) -> Outcome {
        self.errors.outcome(err)
    }
}

impl Default for HttpRetryClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for HttpRetryClassifier {
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.outcome_for_status(response.status()),
            Err(e) => self.outcome_for_error(e),
        }
    }

    fn is_unsent(&self, result: &Result<Response<B>, E>) -> bool {
        matches!(result, Err(e) if self.errors.is_unsent(e))
    }

    fn retry_after(&self, result: &Result<Response<B>, E>) -> Option<Duration> {
        match result {
            // Any status this classifier retries: RFC 9110 defines `Retry-After` for 503 and
            // RFC 6585 for 429, but a 502, 504 or an opted-in 500 that carries one means it too.
            Ok(response) if self.retry.contains(response.status()) => {
                super::retry_after(response.headers(), SystemTime::now())
            }
            _ => None,
        }
    }
}

// ===== HttpBreakerClassifier =====

/// Decides which HTTP results count against a dependency's health.
///
/// By default, `Failure`: every 5xx but 501 and 505 (see [`DEFAULT_STATUSES`](Self::DEFAULT_STATUSES)), and every error ([transport
/// failures](HttpRetryClassifier#transport-failures) and other errors alike: the dependency could not be
/// reached or answered with nonsense); `Ignored`: 4xx, 429 included (the server is alive and
/// asks us to slow down); `Success`: 1xx to 3xx. See the [defaults](HttpRetryClassifier#defaults).
#[derive(Debug, Clone, Copy)]
pub struct HttpBreakerClassifier {
    failures: StatusSet,
    errors: ErrorRules,
}

impl HttpBreakerClassifier {
    /// The statuses that are failures by default: 500 to 599, but 501 Not Implemented and
    /// 505 HTTP Version Not Supported, which describe the request, not the server's health
    /// (RFC 9110, sections 15.6.2 and 15.6.6): one unimplemented route must not open the
    /// circuit for a whole host.
    pub const DEFAULT_STATUSES: StatusSet = StatusSet::EMPTY
        .with_range(500, 599)
        .without(StatusCode::NOT_IMPLEMENTED)
        .without(StatusCode::HTTP_VERSION_NOT_SUPPORTED);

    /// The defaults: see the [type docs](Self).
    pub const fn new() -> Self {
        HttpBreakerClassifier {
            failures: Self::DEFAULT_STATUSES,
            errors: ErrorRules::new(true, true),
        }
    }

    /// Counts responses with `status` as failures (e.g. 429).
    #[must_use]
    pub const fn failure_on(mut self, status: StatusCode) -> Self {
        self.failures = self.failures.with(status);
        self
    }

    /// Never counts responses with `status` as failures: they become `Ignored` (or `Success`
    /// below 400), e.g. a 501 Not Implemented that says nothing about health.
    #[must_use]
    pub const fn never_failure(mut self, status: StatusCode) -> Self {
        self.failures = self.failures.without(status);
        self
    }

    /// Counts exactly the statuses in `statuses` as failures.
    #[must_use]
    pub const fn statuses(mut self, statuses: StatusSet) -> Self {
        self.failures = statuses;
        self
    }

    /// The statuses counted as failures.
    pub const fn failure_statuses(&self) -> StatusSet {
        self.failures
    }

    /// Whether transport failures (and errors it cannot look into) are failures (default
    /// `true`). Off, they are `Ignored`.
    #[must_use]
    pub const fn transport_failures(mut self, failure: bool) -> Self {
        self.errors = self.errors.transport(failure);
        self
    }

    /// Whether errors that are visibly not transport failures are failures (default `true`).
    /// Off, they are `Ignored`.
    #[must_use]
    pub const fn other_errors(mut self, failure: bool) -> Self {
        self.errors = self.errors.other(failure);
        self
    }

    /// Looks into errors of type `T` too: see [`HttpRetryClassifier::error_type`].
    #[must_use]
    pub const fn error_type<T: Error + 'static>(mut self) -> Self {
        self.errors = self.errors.error_type::<T>();
        self
    }

    /// The outcome of a response with `status`.
    #[inline]
    pub const fn outcome_for_status(&self, status: StatusCode) -> Outcome {
        status_outcome(&self.failures, status)
    }

    /// The outcome of an error.
    pub fn outcome_for_error<E: 'static>(&self, err: &E) -> Outcome {
        self.errors.outcome(err)
    }
}

impl Default for HttpBreakerClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for HttpBreakerClassifier {
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.outcome_for_status(response.status()),
            Err(e) => self.outcome_for_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn response(status: u16) -> Response<()> {
        let mut r = Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    }

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    fn retry<E: 'static>(c: &HttpRetryClassifier, r: Result<Response<()>, E>) -> Outcome {
        c.classify(&r)
    }

    fn breaker<E: 'static>(c: &HttpBreakerClassifier, r: Result<Response<()>, E>) -> Outcome {
        c.classify(&r)
    }

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::from(kind)
    }

    #[derive(Debug)]
    struct Wrapper(Option<Box<dyn Error + Send + Sync>>);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.0.as_ref().map(|e| &**e as _)
        }
    }

    #[test]
    fn status_set_bounds_and_ops() {
        let set = StatusSet::new()
            .with(status(100))
            .with(status(599))
            .with(status(600))
            .with(status(999));
        assert!(set.contains(status(100)));
        assert!(set.contains(status(599)));
        assert!(!set.contains(status(600)));
        assert!(!set.contains(status(999)));
        assert!(!set.contains(status(200)));
        assert_eq!(
            set.iter().map(|s| s.as_u16()).collect::<Vec<_>>(),
            [100, 599]
        );
        assert!(set.without(status(100)).without(status(599)).is_empty());
        assert!(StatusSet::EMPTY.is_empty());
        let range = StatusSet::EMPTY.with_range(0, 1000);
        assert_eq!(range.iter().count(), 500);
        assert_eq!(StatusSet::EMPTY.with_range(500, 599).iter().count(), 100);
        let collected: StatusSet = [status(503), status(429)].into_iter().collect();
        assert_eq!(format!("{collected:?}"), "{429, 503}");
    }

    #[test]
    fn retry_statuses_by_default() {
        let c = HttpRetryClassifier::new();
        for code in [408, 429, 502, 503, 504] {
            assert_eq!(
                retry(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Failure,
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 422, 500, 501, 505, 599, 600, 999] {
            assert_eq!(
                retry(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Ignored,
                "{code}"
            );
        }
        for code in [100, 200, 201, 204, 301, 304, 399] {
            assert_eq!(
                retry(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Success,
                "{code}"
            );
        }
    }

    #[test]
    fn retry_statuses_are_configurable() {
        let c = HttpRetryClassifier::new()
            .retry_on(StatusCode::INTERNAL_SERVER_ERROR)
            .never_retry(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(c.outcome_for_status(status(500)), Outcome::Failure);
        assert_eq!(c.outcome_for_status(status(429)), Outcome::Ignored);
        assert_eq!(c.outcome_for_status(status(503)), Outcome::Failure);
        let only_503 = HttpRetryClassifier::new().statuses(StatusSet::EMPTY.with(status(503)));
        assert_eq!(only_503.outcome_for_status(status(502)), Outcome::Ignored);
        assert_eq!(only_503.retried_statuses().iter().count(), 1);
        assert_eq!(
            HttpRetryClassifier::default().retried_statuses(),
            HttpRetryClassifier::DEFAULT_STATUSES
        );
    }

    #[test]
    fn breaker_statuses_by_default_and_configured() {
        let c = HttpBreakerClassifier::new();
        for code in [500, 502, 503, 504, 599] {
            assert_eq!(
                breaker(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Failure,
                "{code}"
            );
        }
        for code in [400, 404, 408, 429, 499, 501, 505, 600] {
            assert_eq!(
                breaker(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Ignored,
                "{code}"
            );
        }
        for code in [200, 204, 302] {
            assert_eq!(
                breaker(&c, Ok::<_, Infallible>(response(code))),
                Outcome::Success,
                "{code}"
            );
        }
        let c = c
            .failure_on(StatusCode::TOO_MANY_REQUESTS)
            .failure_on(StatusCode::NOT_IMPLEMENTED)
            .never_failure(StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(c.outcome_for_status(status(429)), Outcome::Failure);
        assert_eq!(c.outcome_for_status(status(501)), Outcome::Failure);
        assert_eq!(c.outcome_for_status(status(500)), Outcome::Ignored);
        assert_eq!(c.failure_statuses().iter().count(), 99);
        let none = HttpBreakerClassifier::default().statuses(StatusSet::EMPTY);
        assert_eq!(none.outcome_for_status(status(500)), Outcome::Ignored);
    }

    #[test]
    fn io_errors_by_kind() {
        let r = HttpRetryClassifier::new();
        let b = HttpBreakerClassifier::new();
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::NotConnected,
            io::ErrorKind::HostUnreachable,
        ] {
            assert_eq!(retry(&r, Err(io(kind))), Outcome::Failure, "{kind:?}");
            assert_eq!(breaker(&b, Err(io(kind))), Outcome::Failure, "{kind:?}");
        }
        for kind in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidInput,
            io::ErrorKind::NotFound,
            io::ErrorKind::Other,
        ] {
            assert_eq!(retry(&r, Err(io(kind))), Outcome::Ignored, "{kind:?}");
            assert_eq!(breaker(&b, Err(io(kind))), Outcome::Failure, "{kind:?}");
        }
    }

    #[test]
    fn a_real_refused_connection_is_a_transport_failure() {
        // Bind, learn the port, close: connecting to it is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(is_transport_failure(&err));
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(err)),
            Outcome::Failure
        );
    }

    #[test]
    fn the_chain_is_walked_and_io_errors_are_looked_into() {
        // io::Error wrapping a wrapper whose source is a reset.
        let reset = Wrapper(Some(Box::new(io(io::ErrorKind::ConnectionReset))));
        let wrapped = io::Error::other(reset);
        assert!(is_transport_failure(&wrapped));
        // A BoxError several layers deep.
        let deep: BoxError = Box::new(Wrapper(Some(Box::new(Wrapper(Some(Box::new(io(
            io::ErrorKind::BrokenPipe,
        ))))))));
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(deep)),
            Outcome::Failure
        );
        // Nothing transient in the chain: an other error.
        let plain: BoxError = Box::new(Wrapper(Some("bad uri".into())));
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(plain)),
            Outcome::Ignored
        );
        let plain: BoxError = Box::new(Wrapper(None));
        assert_eq!(
            breaker(&HttpBreakerClassifier::new(), Err(plain)),
            Outcome::Failure
        );
    }

    #[test]
    fn timeouts_are_transport_failures() {
        let r = HttpRetryClassifier::new();
        let elapsed = tower::timeout::error::Elapsed::new();
        assert_eq!(retry(&r, Err(elapsed)), Outcome::Failure);
        let boxed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(retry(&r, Err(boxed)), Outcome::Failure);
        // A timeout in a user's wrapper, inside a box.
        let nested: BoxError = Box::new(Wrapper(Some(Box::new(
            tower::timeout::error::Elapsed::new(),
        ))));
        assert_eq!(retry(&r, Err(nested)), Outcome::Failure);
        // A timeout wrapped in an `io::Error` (whose `source()` skips it).
        let in_io = io::Error::other(tower::timeout::error::Elapsed::new());
        assert_eq!(in_io.kind(), io::ErrorKind::Other);
        assert_eq!(retry(&r, Err(in_io)), Outcome::Failure);
    }

    #[tokio::test]
    async fn tokio_elapsed_is_a_transport_failure() {
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(elapsed)),
            Outcome::Failure
        );
    }

    #[test]
    fn other_boxes_are_looked_into() {
        let r = HttpRetryClassifier::new();
        let send: Box<dyn Error + Send> = Box::new(io(io::ErrorKind::ConnectionReset));
        assert_eq!(retry(&r, Err(send)), Outcome::Failure);
        let plain: Box<dyn Error> = Box::new(io(io::ErrorKind::InvalidData));
        assert_eq!(retry(&r, Err(plain)), Outcome::Ignored);
        let http_err = http::Request::builder()
            .uri("not a uri\n")
            .body(())
            .unwrap_err();
        assert_eq!(retry(&r, Err(http_err)), Outcome::Ignored);
    }

    #[derive(Debug)]
    struct Opaque;

    #[test]
    fn errors_that_cannot_be_looked_into_are_presumed_transport_failures() {
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(Opaque)),
            Outcome::Failure
        );
        assert_eq!(
            retry(
                &HttpRetryClassifier::new().transport_failures(false),
                Err(Opaque)
            ),
            Outcome::Ignored
        );
        assert_eq!(
            breaker(&HttpBreakerClassifier::new(), Err(Opaque)),
            Outcome::Failure
        );
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err("str")),
            Outcome::Failure
        );
    }

    #[test]
    fn error_type_makes_a_type_visible() {
        let unknown = Wrapper(Some("bad uri".into()));
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(unknown)),
            Outcome::Failure
        );
        let c = HttpRetryClassifier::new().error_type::<Wrapper>();
        let unknown = Wrapper(Some("bad uri".into()));
        assert_eq!(retry(&c, Err(unknown)), Outcome::Ignored);
        let reset = Wrapper(Some(Box::new(io(io::ErrorKind::ConnectionReset))));
        assert_eq!(retry(&c, Err(reset)), Outcome::Failure);
        // Other error types are unaffected.
        assert_eq!(
            retry(&c, Err(io(io::ErrorKind::TimedOut))),
            Outcome::Failure
        );
        assert_eq!(retry(&c, Err(Opaque)), Outcome::Failure);
        assert!(format!("{c:?}").contains("error_type: true"));
    }

    #[test]
    fn error_rules_are_configurable() {
        let r = HttpRetryClassifier::new()
            .transport_failures(false)
            .other_errors(true);
        assert_eq!(
            retry(&r, Err(io(io::ErrorKind::ConnectionReset))),
            Outcome::Ignored
        );
        assert_eq!(
            retry(&r, Err(io(io::ErrorKind::InvalidData))),
            Outcome::Failure
        );
        let b = HttpBreakerClassifier::new()
            .transport_failures(false)
            .other_errors(false)
            .error_type::<Wrapper>();
        assert_eq!(
            breaker(&b, Err(io(io::ErrorKind::ConnectionReset))),
            Outcome::Ignored
        );
        assert_eq!(breaker(&b, Err(Wrapper(None))), Outcome::Ignored);
        assert_eq!(
            b.outcome_for_error(&io(io::ErrorKind::InvalidData)),
            Outcome::Ignored
        );
    }

    #[test]
    fn retry_after_on_every_retried_status_and_no_other() {
        let c = HttpRetryClassifier::new();
        let with_header = |code: u16, value: &'static str| {
            let mut r = response(code);
            r.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static(value),
            );
            Ok::<_, Infallible>(r)
        };
        assert_eq!(
            c.retry_after(&with_header(429, "7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            c.retry_after(&with_header(503, " 2 ")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(c.retry_after(&with_header(503, "soon")), None);
        assert_eq!(
            c.retry_after(&with_header(502, "7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(c.retry_after(&with_header(500, "7")), None); // not retried
        assert_eq!(
            c.retry_on(StatusCode::INTERNAL_SERVER_ERROR)
                .retry_after(&with_header(500, "7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(c.retry_after(&with_header(200, "7")), None);
        assert_eq!(c.retry_after(&Ok::<_, Infallible>(response(503))), None);
        // A date in the past: retry at once.
        assert_eq!(
            c.retry_after(&with_header(503, "Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        let err: Result<Response<()>, BoxError> = Err("x".into());
        assert_eq!(c.retry_after(&err), None);
    }

    #[test]
    fn classifiers_are_plain_data() {
        fn plain<T: Clone + Copy + fmt::Debug + Send + Sync + 'static>(_: T) {}
        plain(HttpRetryClassifier::new());
        plain(HttpBreakerClassifier::new());
        plain(StatusSet::EMPTY);
        const _: HttpRetryClassifier = HttpRetryClassifier::new()
            .retry_on(StatusCode::INTERNAL_SERVER_ERROR)
            .error_type::<io::Error>();
    }

    #[tokio::test]
    async fn classifiers_move_into_a_spawned_task() {
        let c = HttpRetryClassifier::new();
        let b = HttpBreakerClassifier::new();
        let (r, s) = tokio::spawn(async move {
            let result: Result<Response<()>, BoxError> = Ok(response(503));
            (c.classify(&result), b.classify(&result))
        })
        .await
        .unwrap();
        assert_eq!((r, s), (Outcome::Failure, Outcome::Failure));
    }

    // ===== real hyper and hyper-util errors =====

    type Client = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >;

    fn client() -> Client {
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http()
    }

    /// A port on 127.0.0.1 nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        port
    }

    async fn refused() -> hyper_util::client::legacy::Error {
        let uri: http::Uri = format!("http://127.0.0.1:{}/", closed_port())
            .parse()
            .unwrap();
        client().get(uri).await.unwrap_err()
    }

    #[tokio::test]
    async fn a_hyper_util_connect_error() {
        type LegacyError = hyper_util::client::legacy::Error;
        let err = refused().await;
        assert!(err.is_connect());
        assert!(is_transport_failure(&err));

        // Typed, without `error_type`: presumed a transport failure.
        let r = HttpRetryClassifier::new();
        assert_eq!(retry(&r, Err(refused().await)), Outcome::Failure);
        // Typed, with `error_type`: looked into, and found refused.
        let precise = r.error_type::<LegacyError>();
        assert_eq!(retry(&precise, Err(refused().await)), Outcome::Failure);
        let b = HttpBreakerClassifier::new().error_type::<LegacyError>();
        assert_eq!(breaker(&b, Err(refused().await)), Outcome::Failure);
        // Boxed (as behind tower's `Timeout`): looked into without help.
        let boxed: BoxError = Box::new(refused().await);
        assert!(is_transport_failure(&*boxed));
        assert_eq!(retry(&r, Err(boxed)), Outcome::Failure);
    }

    #[tokio::test]
    async fn a_hyper_util_error_that_is_not_a_transport_failure() {
        type LegacyError = hyper_util::client::legacy::Error;
        // A relative URI: the client refuses it before any connection.
        let err = client()
            .get(http::Uri::from_static("/relative"))
            .await
            .unwrap_err();
        assert!(!is_transport_failure(&err));
        let precise = HttpRetryClassifier::new().error_type::<LegacyError>();
        assert_eq!(retry(&precise, Err(err)), Outcome::Ignored);
        let err = client()
            .get(http::Uri::from_static("/relative"))
            .await
            .unwrap_err();
        assert_eq!(
            breaker(
                &HttpBreakerClassifier::new().error_type::<LegacyError>(),
                Err(err)
            ),
            Outcome::Failure
        );
    }

    /// A server that accepts a connection, reads a little and hangs up without answering.
    async fn hang_up_server() -> std::net::SocketAddr {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                drop(stream);
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_response_is_a_transport_failure() {
        let addr = hang_up_server().await;
        let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
        let err = client().get(uri).await.unwrap_err();
        assert!(!err.is_connect());
        assert!(is_transport_failure(&err), "{err:?}");
        let c = HttpRetryClassifier::new().error_type::<hyper_util::client::legacy::Error>();
        assert_eq!(retry(&c, Err(err)), Outcome::Failure);
    }

    #[tokio::test]
    async fn a_bare_hyper_error() {
        use hyper_util::rt::TokioIo;
        let addr = hang_up_server().await;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Empty<bytes::Bytes>,
        >(TokioIo::new(stream))
        .await
        .unwrap();
        tokio::spawn(conn);
        let request = http::Request::get("/")
            .header(http::header::HOST, "localhost")
            .body(http_body_util::Empty::new())
            .unwrap();
        let err: hyper::Error = sender.send_request(request).await.unwrap_err();
        assert!(
            err.is_incomplete_message() || err.is_closed() || err.is_canceled(),
            "{err:?}"
        );
        assert_eq!(
            retry(&HttpRetryClassifier::new(), Err(err)),
            Outcome::Failure
        );
    }
}
