//! The gRPC classifiers, codes and pushback: see the module docs in `mod.rs`.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderMap, Response, StatusCode};

use crate::classify::{Classify, Outcome};
use crate::http::ErrorRules;

/// The `grpc-status` field name.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// The `grpc-retry-pushback-ms` field name.
const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

// ===== Code =====

/// A gRPC status code. Variants are named as gRPC names the codes (`UNAVAILABLE` is
/// [`Code::Unavailable`]; [`Code::name`] gives the canonical spelling), with gRPC's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// `OK` (0): not an error.
    Ok = 0,
    /// `CANCELLED` (1): the operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// `UNKNOWN` (2): an unknown error (also what an unknown or malformed code means).
    Unknown = 2,
    /// `INVALID_ARGUMENT` (3): the client specified an invalid argument.
    InvalidArgument = 3,
    /// `DEADLINE_EXCEEDED` (4): the deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// `NOT_FOUND` (5): some requested entity was not found.
    NotFound = 5,
    /// `ALREADY_EXISTS` (6): the entity a client tried to create already exists.
    AlreadyExists = 6,
    /// `PERMISSION_DENIED` (7): the caller may not execute the operation.
    PermissionDenied = 7,
    /// `RESOURCE_EXHAUSTED` (8): some resource (a quota, disk space) has been exhausted.
    ResourceExhausted = 8,
    /// `FAILED_PRECONDITION` (9): the system is not in a state the operation requires.
    FailedPrecondition = 9,
    /// `ABORTED` (10): the operation was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// `OUT_OF_RANGE` (11): the operation was attempted past the valid range.
    OutOfRange = 11,
    /// `UNIMPLEMENTED` (12): the operation is not implemented or supported.
    Unimplemented = 12,
    /// `INTERNAL` (13): an internal error; an invariant of the system is broken.
    Internal = 13,
    /// `UNAVAILABLE` (14): the service is currently unavailable; most likely transient.
    Unavailable = 14,
    /// `DATA_LOSS` (15): unrecoverable data loss or corruption.
    DataLoss = 15,
    /// `UNAUTHENTICATED` (16): the request lacks valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code with number `code`; a number gRPC does not define is [`Code::Unknown`] (as
    /// gRPC implementations, tonic's included, treat it).
    pub const fn from_i32(code: i32) -> Code {
        if code >= 0 && code < Code::ALL.len() as i32 {
            Code::ALL[code as usize]
        } else {
            Code::Unknown
        }
    }

    /// The code's number.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code's canonical name, e.g. `"DEADLINE_EXCEEDED"`.
    pub const fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code of a `grpc-status` value: ASCII digits (optional whitespace around them
    /// tolerated); anything else, or a number gRPC does not define, is [`Code::Unknown`].
    pub fn from_bytes(value: &[u8]) -> Code {
        let digits = trim_ows(value);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Code::Unknown;
        }
        // Leading zeros say nothing: `0000000014` is 14, as the other parsers read numbers.
        let first = digits
            .iter()
            .position(|&b| b != b'0')
            .unwrap_or(digits.len());
        let digits = &digits[first..];
        if digits.len() > 9 {
            return Code::Unknown;
        }
        let n = digits
            .iter()
            .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'));
        Code::from_i32(n)
    }

    /// The code of a response without `grpc-status` that has HTTP status `status`, per
    /// gRPC's HTTP to gRPC status mapping: 400 `INTERNAL`, 401 `UNAUTHENTICATED`, 403
    /// `PERMISSION_DENIED`, 404 `UNIMPLEMENTED`, 429, 502, 503 and 504 `UNAVAILABLE`, any
    /// other `UNKNOWN`. (200 is `UNKNOWN` too: a 200 without `grpc-status` in its headers
    /// has its status in the trailers; the classifiers do not ask then.)
    pub const fn from_http_status(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<i32> for Code {
    fn from(code: i32) -> Code {
        Code::from_i32(code)
    }
}

/// The status code in `headers`' (or trailers') `grpc-status` field, or `None` without one.
/// A malformed value is [`Code::Unknown`] (see [`Code::from_bytes`]).
///
/// ```
/// use seawall::grpc::{grpc_status, Code};
///
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(grpc_status(&headers), None);
/// headers.insert("grpc-status", http::HeaderValue::from_static("14"));
/// assert_eq!(grpc_status(&headers), Some(Code::Unavailable));
/// ```
pub fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get(GRPC_STATUS)
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The code of a response, from its head: `grpc-status` in its headers, else its HTTP
/// status if that is not 200, else `None` (the status will come in the trailers).
fn response_code<B>(response: &Response<B>) -> Option<Code> {
    match grpc_status(response.headers()) {
        Some(code) => Some(code),
        None if response.status() != StatusCode::OK => {
            Some(Code::from_http_status(response.status()))
        }
        None => None,
    }
}

// ===== Pushback =====

/// A server's `grpc-retry-pushback-ms`: how long to wait before retrying, or not to retry.
///
/// As gRPC's retry design (A6) specifies: a non-negative integer is a delay in milliseconds
/// (a value too large for a `u64` saturates); a negative value, or one that does not parse,
/// asks the client not to retry at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pushback {
    /// Retry after this delay (and not after the computed backoff).
    After(Duration),
    /// Do not retry.
    DoNotRetry,
}

impl Pushback {
    /// Parses a `grpc-retry-pushback-ms` value (optional whitespace around it tolerated).
    pub fn from_bytes(value: &[u8]) -> Pushback {
        let digits = trim_ows(value);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Pushback::DoNotRetry;
        }
        let ms = digits.iter().fold(0u64, |acc, &b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        Pushback::After(Duration::from_millis(ms))
    }

    /// The delay asked for, or `None` for [`Pushback::DoNotRetry`].
    pub const fn delay(self) -> Option<Duration> {
        match self {
            Pushback::After(d) => Some(d),
            Pushback::DoNotRetry => None,
        }
    }
}

/// The pushback in `headers`' `grpc-retry-pushback-ms`, or `None` without one.
///
/// ```
/// use seawall::grpc::{pushback, Pushback};
/// use std::time::Duration;
///
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(pushback(&headers), None);
/// headers.insert("grpc-retry-pushback-ms", http::HeaderValue::from_static("250"));
/// assert_eq!(pushback(&headers), Some(Pushback::After(Duration::from_millis(250))));
/// headers.insert("grpc-retry-pushback-ms", http::HeaderValue::from_static("-1"));
/// assert_eq!(pushback(&headers), Some(Pushback::DoNotRetry));
/// ```
pub fn pushback(headers: &HeaderMap) -> Option<Pushback> {
    headers
        .get(GRPC_RETRY_PUSHBACK_MS)
        .map(|value| Pushback::from_bytes(value.as_bytes()))
}

/// `bytes` without optional whitespace (SP, HTAB) on either side.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

// ===== CodeSet =====

/// A set of gRPC codes, one bit per code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
struct CodeSet(u32);

impl CodeSet {
    const EMPTY: CodeSet = CodeSet(0);

    const fn with(self, code: Code) -> CodeSet {
        CodeSet(self.0 | 1 << code as u32)
    }

    const fn without(self, code: Code) -> CodeSet {
        CodeSet(self.0 & !(1 << code as u32))
    }

    const fn contains(self, code: Code) -> bool {
        self.0 & 1 << code as u32 != 0
    }
}

impl fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                Code::ALL
                    .iter()
                    .filter(|c| self.contains(**c))
                    .map(|c| c.name()),
            )
            .finish()
    }
}

// ===== GrpcRetryClassifier =====

/// Decides which gRPC results retry tries again, as gRPC's retry design (A6) does.
///
/// By default, from a Trailers-Only response's `grpc-status`:
///
/// - `OK`: `Success`;
/// - a negative or malformed `grpc-retry-pushback-ms`: `Ignored` (final), whatever the code:
///   the server asked not to retry;
/// - `UNAVAILABLE`: `Failure` (retried);
/// - `RESOURCE_EXHAUSTED`: retried only with a non-negative pushback (the server said when
///   its quota frees up; without that, retrying only adds to the load);
/// - `DEADLINE_EXCEEDED`: final (the call's time is spent; opt in with
///   [`retry_on`](Self::retry_on));
/// - every other code: final (`Ignored`).
///
/// A response whose headers carry no `grpc-status` is `Success`: the server committed to a
/// response, and A6 never retries a committed call. One with an HTTP status other than 200
/// and no `grpc-status` gets its code from the HTTP status (a proxy's 503 is
/// `UNAVAILABLE`). Errors are classified as by [`HttpRetryClassifier`](crate::http::HttpRetryClassifier):
/// [transport failures](crate::http::HttpRetryClassifier#transport-failures) retried, other errors final.
///
/// [`retry_after`](Classify::retry_after) returns the non-negative pushback, which replaces
/// the computed backoff.
#[derive(Debug, Clone, Copy)]
pub struct GrpcRetryClassifier {
    retry: CodeSet,
    with_pushback: CodeSet,
    errors: ErrorRules,
}

impl GrpcRetryClassifier {
    /// The defaults: see the [type docs](Self).
    pub const fn new() -> Self {
        GrpcRetryClassifier {
            retry: CodeSet::EMPTY.with(Code::Unavailable),
            with_pushback: CodeSet::EMPTY.with(Code::ResourceExhausted),
            errors: ErrorRules::new(true, false),
        }
    }

    /// Retries `code` (e.g. [`Code::DeadlineExceeded`]), unless the server pushes back
    /// negatively. `OK` is never retried.
    #[must_use]
    pub const fn retry_on(mut self, code: Code) -> Self {
        self.retry = self.retry.with(code);
        self.with_pushback = self.with_pushback.without(code);
        self
    }

    /// Retries `code` only when the server gives a non-negative pushback (the default for
    /// [`Code::ResourceExhausted`]).
    #[must_use]
    pub const fn retry_on_pushback(mut self, code: Code) -> Self {
        self.retry = self.retry.without(code);
        self.with_pushback = self.with_pushback.with(code);
        self
    }

    /// Never retries `code`, even with a pushback.
    #[must_use]
    pub const fn never_retry(mut self, code: Code) -> Self {
        self.retry = self.retry.without(code);
        self.with_pushback = self.with_pushback.without(code);
        self
    }

    /// Whether transport failures (and errors it cannot look into) are retried (default
    /// `true`). See [`HttpRetryClassifier::transport_failures`](crate::http::HttpRetryClassifier::transport_failures).
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

    /// Looks into errors of type `T` too: see
    /// [`HttpRetryClassifier::error_type`](crate::http::HttpRetryClassifier::error_type).
    #[must_use]
    pub const fn error_type<T: Error + 'static>(mut self) -> Self {
        self.errors = self.errors.error_type::<T>();
        self
    }

    /// The outcome of a call that ended with status number `code` (unknown numbers are
    /// `UNKNOWN`) and the server's pushback, if any: for classifying a tonic `Status`
    /// (`status.code() as i32`) without a tonic dependency.
    pub const fn outcome_for(&self, code: i32, pushback: Option<Pushback>) -> Outcome {
        self.outcome_for_code(Code::from_i32(code), pushback)
    }

    /// Like [`outcome_for`](Self::outcome_for), with a [`Code`].
    pub const fn outcome_for_code(&self, code: Code, pushback: Option<Pushback>) -> Outcome {
        if matches!(code, Code::Ok) {
            return Outcome::Success;
        }
        match pushback {
            Some(Pushback::DoNotRetry) => Outcome::Ignored,
            Some(Pushback::After(_)) if self.with_pushback.contains(code) => Outcome::Failure,
            _ if self.retry.contains(code) => Outcome::Failure,
            _ => Outcome::Ignored,
        }
    }

    /// The outcome of an error (no response).
    pub fn outcome_for_error<E: 'static>(&self, err: &E) -> Outcome {
        self.errors.outcome(err)
    }
}

impl Default for GrpcRetryClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for GrpcRetryClassifier {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => match response_code(response) {
                None | Some(Code::Ok) => Outcome::Success,
                Some(code) => self.outcome_for_code(code, pushback(response.headers())),
            },
            Err(e) => self.outcome_for_error(e),
        }
    }

    fn retry_after(&self, result: &Result<Response<B>, E>) -> Option<Duration> {
        match result {
            Ok(response) => pushback(response.headers()).and_then(Pushback::delay),
            Err(_) => None,
        }
    }

    fn is_unsent(&self, result: &Result<Response<B>, E>) -> bool {
        matches!(result, Err(e) if self.errors.is_unsent(e))
    }
}

// ===== GrpcBreakerClassifier =====

/// Decides which gRPC results count against a dependency's health.
///
/// By default, `Failure`: `UNAVAILABLE`, `INTERNAL`, `UNKNOWN`, `DEADLINE_EXCEEDED`,
/// `DATA_LOSS` (the server is down, broken or too slow) and every error (as
/// [`HttpBreakerClassifier`](crate::http::HttpBreakerClassifier)); `Ignored`: every other
/// code (they describe the request, not the server's health: `NOT_FOUND`,
/// `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED` (a quota, the server is alive)...); `Success`:
/// `OK`, and a response whose headers carry no `grpc-status` (its status comes in the
/// trailers, after the layer has classified it). A non-200 HTTP status without
/// `grpc-status` is mapped to a code (see [`Code::from_http_status`]).
#[derive(Debug, Clone, Copy)]
pub struct GrpcBreakerClassifier {
    failures: CodeSet,
    errors: ErrorRules,
}

impl GrpcBreakerClassifier {
    /// The defaults: see the [type docs](Self).
    pub const fn new() -> Self {
        GrpcBreakerClassifier {
            failures: CodeSet::EMPTY
                .with(Code::Unavailable)
                .with(Code::Internal)
                .with(Code::Unknown)
                .with(Code::DeadlineExceeded)
                .with(Code::DataLoss),
            errors: ErrorRules::new(true, true),
        }
    }

    /// Counts `code` as a failure (e.g. [`Code::ResourceExhausted`]). `OK` never is.
    #[must_use]
    pub const fn failure_on(mut self, code: Code) -> Self {
        self.failures = self.failures.with(code);
        self
    }

    /// Never counts `code` as a failure: it becomes `Ignored`.
    #[must_use]
    pub const fn never_failure(mut self, code: Code) -> Self {
        self.failures = self.failures.without(code);
        self
    }

    /// Whether transport failures (and errors it cannot look into) are failures (default
    /// `true`).
    #[must_use]
    pub const fn transport_failures(mut self, failure: bool) -> Self {
        self.errors = self.errors.transport(failure);
        self
    }

    /// Whether errors that are visibly not transport failures are failures (default `true`).
    #[must_use]
    pub const fn other_errors(mut self, failure: bool) -> Self {
        self.errors = self.errors.other(failure);
        self
    }

    /// Looks into errors of type `T` too: see
    /// [`HttpRetryClassifier::error_type`](crate::http::HttpRetryClassifier::error_type).
    #[must_use]
    pub const fn error_type<T: Error + 'static>(mut self) -> Self {
        self.errors = self.errors.error_type::<T>();
        self
    }

    /// The outcome of a call that ended with status number `code` (unknown numbers are
    /// `UNKNOWN`): for classifying a tonic `Status` (`status.code() as i32`) without a tonic
    /// dependency.
    pub const fn outcome_for(&self, code: i32) -> Outcome {
        self.outcome_for_code(Code::from_i32(code))
    }

    /// Like [`outcome_for`](Self::outcome_for), with a [`Code`].
    pub const fn outcome_for_code(&self, code: Code) -> Outcome {
        if matches!(code, Code::Ok) {
            Outcome::Success
        } else if self.failures.contains(code) {
            Outcome::Failure
        } else {
            Outcome::Ignored
        }
    }

    /// The outcome of an error (no response).
    pub fn outcome_for_error<E: 'static>(&self, err: &E) -> Outcome {
        self.errors.outcome(err)
    }
}

impl Default for GrpcBreakerClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for GrpcBreakerClassifier {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => match response_code(response) {
                None => Outcome::Success,
                Some(code) => self.outcome_for_code(code),
            },
            Err(e) => self.outcome_for_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxError;
    use http::HeaderValue;
    use std::convert::Infallible;
    use std::io;

    fn response(grpc_status: Option<&'static str>, pushback: Option<&'static str>) -> Response<()> {
        let mut r = Response::new(());
        if let Some(s) = grpc_status {
            r.headers_mut()
                .insert("grpc-status", HeaderValue::from_static(s));
        }
        if let Some(p) = pushback {
            r.headers_mut()
                .insert("grpc-retry-pushback-ms", HeaderValue::from_static(p));
        }
        r
    }

    fn ok(r: Response<()>) -> Result<Response<()>, Infallible> {
        Ok(r)
    }

    fn ms(n: u64) -> Option<Pushback> {
        Some(Pushback::After(Duration::from_millis(n)))
    }

    #[test]
    fn codes_round_trip_and_are_named() {
        for (i, code) in Code::ALL.iter().enumerate() {
            assert_eq!(code.as_i32(), i as i32);
            assert_eq!(Code::from_i32(i as i32), *code);
            assert_eq!(Code::from(i as i32), *code);
        }
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(i32::MAX), Code::Unknown);
        assert_eq!(Code::DeadlineExceeded.to_string(), "DEADLINE_EXCEEDED");
        assert_eq!(Code::Ok.name(), "OK");
    }

    #[test]
    fn grpc_status_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        for (value, code) in [
            ("0", Code::Ok),
            ("14", Code::Unavailable),
            (" 8 ", Code::ResourceExhausted),
            ("016", Code::Unauthenticated),
            ("17", Code::Unknown),
            ("-1", Code::Unknown),
            ("", Code::Unknown),
            ("abc", Code::Unknown),
            ("1 4", Code::Unknown),
            ("99999999999999999999", Code::Unknown),
        ] {
            h.insert("grpc-status", HeaderValue::from_static(value));
            assert_eq!(grpc_status(&h), Some(code), "{value:?}");
        }
    }

    #[test]
    fn pushback_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(pushback(&h), None);
        for (value, expected) in [
            ("0", Pushback::After(Duration::ZERO)),
            ("250", Pushback::After(Duration::from_millis(250))),
            (" 10\t", Pushback::After(Duration::from_millis(10))),
            (
                "99999999999999999999999",
                Pushback::After(Duration::from_millis(u64::MAX)),
            ),
            ("-1", Pushback::DoNotRetry),
            ("-0", Pushback::DoNotRetry),
            ("", Pushback::DoNotRetry),
            ("soon", Pushback::DoNotRetry),
            ("1.5", Pushback::DoNotRetry),
            ("+5", Pushback::DoNotRetry),
        ] {
            h.insert("grpc-retry-pushback-ms", HeaderValue::from_static(value));
            assert_eq!(pushback(&h), Some(expected), "{value:?}");
        }
        assert_eq!(Pushback::DoNotRetry.delay(), None);
        assert_eq!(Pushback::from_bytes(b"\xff"), Pushback::DoNotRetry);
    }

    #[test]
    fn retry_by_code_and_pushback() {
        let c = GrpcRetryClassifier::new();
        assert_eq!(c.outcome_for(0, None), Outcome::Success);
        assert_eq!(
            c.outcome_for(0, Some(Pushback::DoNotRetry)),
            Outcome::Success
        );
        assert_eq!(c.outcome_for(14, None), Outcome::Failure);
        assert_eq!(c.outcome_for(14, ms(5)), Outcome::Failure);
        assert_eq!(
            c.outcome_for(14, Some(Pushback::DoNotRetry)),
            Outcome::Ignored
        );
        assert_eq!(c.outcome_for(8, None), Outcome::Ignored);
        assert_eq!(c.outcome_for(8, ms(100)), Outcome::Failure);
        assert_eq!(
            c.outcome_for(8, Some(Pushback::DoNotRetry)),
            Outcome::Ignored
        );
        assert_eq!(c.outcome_for(4, None), Outcome::Ignored);
        for code in [1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 42, -3] {
            assert_eq!(c.outcome_for(code, None), Outcome::Ignored, "{code}");
            assert_eq!(c.outcome_for(code, ms(1)), Outcome::Ignored, "{code}");
        }
    }

    #[test]
    fn retry_codes_are_configurable() {
        let c = GrpcRetryClassifier::default()
            .retry_on(Code::DeadlineExceeded)
            .retry_on(Code::ResourceExhausted)
            .retry_on_pushback(Code::Aborted)
            .never_retry(Code::Unavailable)
            .retry_on(Code::Ok);
        assert_eq!(
            c.outcome_for_code(Code::DeadlineExceeded, None),
            Outcome::Failure
        );
        assert_eq!(
            c.outcome_for_code(Code::ResourceExhausted, None),
            Outcome::Failure
        );
        assert_eq!(c.outcome_for_code(Code::Aborted, None), Outcome::Ignored);
        assert_eq!(c.outcome_for_code(Code::Aborted, ms(1)), Outcome::Failure);
        assert_eq!(
            c.outcome_for_code(Code::Unavailable, None),
            Outcome::Ignored
        );
        assert_eq!(
            c.outcome_for_code(Code::Unavailable, ms(1)),
            Outcome::Ignored
        );
        assert_eq!(c.outcome_for_code(Code::Ok, None), Outcome::Success);
        let never = GrpcRetryClassifier::new().never_retry(Code::ResourceExhausted);
        assert_eq!(
            never.outcome_for_code(Code::ResourceExhausted, ms(1)),
            Outcome::Ignored
        );
    }

    #[test]
    fn retry_from_trailers_only_responses() {
        let c = GrpcRetryClassifier::new();
        assert_eq!(
            c.classify(&ok(response(Some("14"), None))),
            Outcome::Failure
        );
        assert_eq!(c.retry_after(&ok(response(Some("14"), None))), None);
        let pushed = ok(response(Some("14"), Some("300")));
        assert_eq!(c.classify(&pushed), Outcome::Failure);
        assert_eq!(c.retry_after(&pushed), Some(Duration::from_millis(300)));
        let refused = ok(response(Some("14"), Some("-1")));
        assert_eq!(c.classify(&refused), Outcome::Ignored);
        assert_eq!(c.retry_after(&refused), None);
        assert_eq!(c.classify(&ok(response(Some("8"), None))), Outcome::Ignored);
        let quota = ok(response(Some("8"), Some("1000")));
        assert_eq!(c.classify(&quota), Outcome::Failure);
        assert_eq!(c.retry_after(&quota), Some(Duration::from_secs(1)));
        assert_eq!(c.classify(&ok(response(Some("4"), None))), Outcome::Ignored);
        assert_eq!(c.classify(&ok(response(Some("5"), None))), Outcome::Ignored);
        assert_eq!(c.classify(&ok(response(Some("0"), None))), Outcome::Success);
        assert_eq!(
            c.classify(&ok(response(Some("garbage"), None))),
            Outcome::Ignored
        );
    }

    #[test]
    fn a_response_without_grpc_status_is_committed() {
        let c = GrpcRetryClassifier::new();
        let b = GrpcBreakerClassifier::new();
        assert_eq!(c.classify(&ok(response(None, None))), Outcome::Success);
        assert_eq!(b.classify(&ok(response(None, None))), Outcome::Success);
        // Even with a pushback header: the status is still to come.
        assert_eq!(
            c.classify(&ok(response(None, Some("-1")))),
            Outcome::Success
        );
    }

    #[test]
    fn a_non_200_without_grpc_status_is_mapped() {
        let with_status = |code: u16| {
            let mut r = response(None, None);
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            ok(r)
        };
        let c = GrpcRetryClassifier::new();
        let b = GrpcBreakerClassifier::new();
        for code in [429, 502, 503, 504] {
            assert_eq!(c.classify(&with_status(code)), Outcome::Failure, "{code}");
            assert_eq!(b.classify(&with_status(code)), Outcome::Failure, "{code}");
        }
        // 400 INTERNAL, 500 UNKNOWN: failures for the breaker, final for retry.
        for code in [400, 500] {
            assert_eq!(c.classify(&with_status(code)), Outcome::Ignored, "{code}");
            assert_eq!(b.classify(&with_status(code)), Outcome::Failure, "{code}");
        }
        // 401, 403, 404: about the request.
        for code in [401, 403, 404] {
            assert_eq!(c.classify(&with_status(code)), Outcome::Ignored, "{code}");
            assert_eq!(b.classify(&with_status(code)), Outcome::Ignored, "{code}");
        }
        // A grpc-status wins over the HTTP status.
        let mut r = response(Some("0"), None);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(c.classify(&ok(r)), Outcome::Success);
    }

    #[test]
    fn breaker_by_code() {
        let b = GrpcBreakerClassifier::new();
        for code in [
            Code::Unavailable,
            Code::Internal,
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::DataLoss,
        ] {
            assert_eq!(b.outcome_for_code(code), Outcome::Failure, "{code}");
            assert_eq!(b.outcome_for(code.as_i32()), Outcome::Failure, "{code}");
        }
        for code in Code::ALL {
            let expected = match code {
                Code::Ok => Outcome::Success,
                Code::Unavailable
                | Code::Internal
                | Code::Unknown
                | Code::DeadlineExceeded
                | Code::DataLoss => Outcome::Failure,
                _ => Outcome::Ignored,
            };
            assert_eq!(b.outcome_for_code(code), expected, "{code}");
        }
        assert_eq!(b.outcome_for(99), Outcome::Failure); // UNKNOWN
        assert_eq!(
            b.classify(&ok(response(Some("13"), None))),
            Outcome::Failure
        );
        assert_eq!(b.classify(&ok(response(Some("8"), None))), Outcome::Ignored);
        assert_eq!(b.classify(&ok(response(Some("0"), None))), Outcome::Success);
        let b = b
            .failure_on(Code::ResourceExhausted)
            .never_failure(Code::DeadlineExceeded)
            .failure_on(Code::Ok);
        assert_eq!(
            b.outcome_for_code(Code::ResourceExhausted),
            Outcome::Failure
        );
        assert_eq!(b.outcome_for_code(Code::DeadlineExceeded), Outcome::Ignored);
        assert_eq!(b.outcome_for_code(Code::Ok), Outcome::Success);
        assert!(format!("{b:?}").contains("RESOURCE_EXHAUSTED"));
    }

    #[test]
    fn errors_as_the_http_classifiers() {
        let c = GrpcRetryClassifier::new();
        let b = GrpcBreakerClassifier::new();
        let reset: Result<Response<()>, io::Error> =
            Err(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(c.classify(&reset), Outcome::Failure);
        assert_eq!(b.classify(&reset), Outcome::Failure);
        assert_eq!(c.retry_after(&reset), None);
        let other: Result<Response<()>, BoxError> = Err("bad request".into());
        assert_eq!(c.classify(&other), Outcome::Ignored);
        assert_eq!(b.classify(&other), Outcome::Failure);
        let timeout: Result<Response<()>, BoxError> =
            Err(Box::new(tower::timeout::error::Elapsed::new()));
        assert_eq!(c.classify(&timeout), Outcome::Failure);
        let c = c
            .transport_failures(false)
            .other_errors(true)
            .error_type::<io::Error>();
        assert_eq!(c.classify(&reset), Outcome::Ignored);
        assert_eq!(c.classify(&other), Outcome::Failure);
        let b = b
            .transport_failures(false)
            .other_errors(false)
            .error_type::<io::Error>();
        assert_eq!(b.classify(&reset), Outcome::Ignored);
        assert_eq!(b.classify(&other), Outcome::Ignored);
    }

    #[test]
    fn plain_data() {
        fn plain<T: Clone + Copy + fmt::Debug + Send + Sync + 'static>(_: T) {}
        plain(GrpcRetryClassifier::new());
        plain(GrpcBreakerClassifier::new());
        const _: GrpcRetryClassifier = GrpcRetryClassifier::new().retry_on(Code::DeadlineExceeded);
    }

    // ===== with tonic's own types (a dev-dependency) =====

    fn tonic_pushback(status: &tonic::Status) -> Option<Pushback> {
        let value = status.metadata().get("grpc-retry-pushback-ms")?;
        Some(Pushback::from_bytes(value.as_bytes()))
    }

    #[test]
    fn around_a_bare_tonic_call() {
        const BREAKER: GrpcBreakerClassifier = GrpcBreakerClassifier::new();
        const RETRY: GrpcRetryClassifier = GrpcRetryClassifier::new();
        let breaker = |r: &Result<tonic::Response<()>, tonic::Status>| match r {
            Ok(_) => Outcome::Success,
            Err(status) => BREAKER.outcome_for(status.code() as i32),
        };
        let retry = |r: &Result<tonic::Response<()>, tonic::Status>| match r {
            Ok(_) => Outcome::Success,
            Err(s) => RETRY.outcome_for(s.code() as i32, tonic_pushback(s)),
        };
        let unavailable = Err(tonic::Status::unavailable("down"));
        assert_eq!(breaker.classify(&unavailable), Outcome::Failure);
        assert_eq!(retry.classify(&unavailable), Outcome::Failure);
        let not_found = Err(tonic::Status::not_found("nope"));
        assert_eq!(breaker.classify(&not_found), Outcome::Ignored);
        assert_eq!(retry.classify(&not_found), Outcome::Ignored);
        let mut quota = tonic::Status::resource_exhausted("quota");
        quota
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
        assert_eq!(tonic_pushback(&quota), ms(1500));
        let quota = Err(quota);
        assert_eq!(breaker.classify(&quota), Outcome::Ignored);
        assert_eq!(retry.classify(&quota), Outcome::Failure);
        assert_eq!(
            breaker.classify(&Ok(tonic::Response::new(()))),
            Outcome::Success
        );
        // tonic's numbering is gRPC's.
        for code in Code::ALL {
            assert_eq!(
                tonic::Code::from_i32(code.as_i32()) as i32,
                code.as_i32(),
                "{code}"
            );
        }
    }

    #[test]
    fn a_tonic_status_as_a_trailers_only_response() {
        // tonic turns a `Status` into exactly the Trailers-Only headers a server sends.
        let mut status = tonic::Status::unavailable("draining");
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "20".parse().unwrap());
        let response: Result<Response<tonic::body::Body>, Infallible> = Ok(status.into_http());
        let c = GrpcRetryClassifier::new();
        assert_eq!(c.classify(&response), Outcome::Failure);
        assert_eq!(c.retry_after(&response), Some(Duration::from_millis(20)));
        assert_eq!(
            GrpcBreakerClassifier::new().classify(&response),
            Outcome::Failure
        );
    }
}
