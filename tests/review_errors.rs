//! Adversarial review of `src/error.rs` and `src/circuit_breaker/error.rs` (and of
//! `RetryError`, which `src/error.rs` claims to recognise).
//!
//! `defect_*` tests fail on the reviewed code; `probe_*` tests pass and record what held.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seawall::circuit_breaker::{CallError, CircuitOpen};
use seawall::error::HasErrorKind;
use seawall::retry::{DefaultRetryClassifier, RetryError};
use seawall::{BoxError, CircuitBreaker, Classify, ErrorKind, Outcome, Retry, RetryBudget};

/// A user's error with a `#[source]`-style cause: the usual shape of an application error.
#[derive(Debug)]
struct UpstreamError(tower::timeout::error::Elapsed);
impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upstream call failed")
    }
}
impl Error for UpstreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        out.push(e.to_string());
        current = e.source();
    }
    out
}

// ===== defects =====

/// `src/error.rs`: "Recognises ... every seawall error type (the bare API's `CallError` and
/// `RetryError` included)"; issue 11: "Every error seawall creates has its kind ... a
/// `RetryError::BudgetExhausted` or `RetryError::Timeout` classifies as `Inner` today".
/// `RetryError` implements no `HasErrorKind` and is never registered.
#[test]
fn defect_retry_error_kinds_are_not_recognised() {
    let timeout: RetryError<std::io::Error> = RetryError::Timeout;
    let refused: RetryError<std::io::Error> =
        RetryError::BudgetExhausted(std::io::Error::other("flaky"));
    let got = (
        ErrorKind::of(&timeout),
        ErrorKind::of(&refused),
        ErrorKind::of_any(&timeout),
        ErrorKind::of_any(&refused),
    );
    assert_eq!(
        got,
        (
            ErrorKind::Timeout,
            ErrorKind::BudgetExhausted,
            ErrorKind::Timeout,
            ErrorKind::BudgetExhausted
        )
    );
}

/// The same, end to end: a real budget refusal from `Retry::call`, then boxed (as a user
/// handing it to axum or anyhow would).
#[tokio::test(start_paused = true)]
async fn defect_a_real_budget_refusal_from_retry_call_is_inner() {
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    assert!(budget.withdraw()); // spend the floor: the next retry is refused
    let retry = Retry::builder().budget(budget).build().unwrap();
    let r: Result<(), RetryError<std::io::Error>> = retry
        .call(|| async { Err(std::io::Error::other("flaky")) })
        .await;
    let err = r.unwrap_err();
    assert!(err.is_budget_exhausted());
    let boxed: BoxError = Box::new(err);
    assert_eq!(ErrorKind::of(&*boxed), ErrorKind::BudgetExhausted);
}

/// Nested retries must not multiply (DefaultRetryClassifier's doc: "a refusal by an inner
/// retry budget"), yet the bare API's refusal is retried by an outer retry.
#[test]
fn defect_outer_retry_retries_an_inner_bare_budget_refusal() {
    let inner: Result<(), RetryError<std::io::Error>> =
        Err(RetryError::BudgetExhausted(std::io::Error::other("flaky")));
    assert_eq!(DefaultRetryClassifier.classify(&inner), Outcome::Ignored);
}

/// `CallError` doc: "see through the call's error: a timeout is still a timeout". A timeout
/// one link down the call's own error is found without the `CallError`, and lost with it:
/// `CallError`'s probe answers `of_any(e)`, which cannot walk `e`'s chain, says `Inner`, and
/// "the outermost match wins" stops `ErrorKind::of` there.
#[tokio::test]
async fn defect_call_error_hides_a_timeout_in_the_call_errors_chain() {
    let plain = UpstreamError(tower::timeout::error::Elapsed::new());
    assert_eq!(ErrorKind::of(&plain), ErrorKind::Timeout);

    let breaker = CircuitBreaker::builder().build().unwrap();
    let err = breaker
        .call(|| async { Err::<(), _>(UpstreamError(tower::timeout::error::Elapsed::new())) })
        .await
        .unwrap_err();
    assert_eq!(
        (ErrorKind::of(&err), err.kind()),
        (ErrorKind::Timeout, ErrorKind::Timeout),
        "wrapping in CallError turned a timeout into Inner"
    );
}

/// The same root cause the other way round: a breaker wrapped around a bare retry. The
/// refusal inside is invisible to `CallError::kind`, `of` and `of_any`.
#[tokio::test(start_paused = true)]
async fn defect_call_error_around_a_retry_refusal_is_inner() {
    let budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    assert!(budget.withdraw());
    let retry = Retry::builder().budget(budget).build().unwrap();
    let breaker = CircuitBreaker::builder().build().unwrap();
    let err = breaker
        .call(|| retry.call(|| async { Err::<(), _>(std::io::Error::other("flaky")) }))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExhausted);
}

/// `CallError`'s variants are public, so users build them (fakes in tests, `map_err`), but
/// only the crate-private constructors register the type for `of_any`. A rejection built
/// by hand, in a generic classifier, is then the inner service's error.
#[test]
fn defect_a_hand_built_call_error_rejection_is_inner_for_of_any() {
    #[derive(Debug)]
    struct NotAnError; // E need not be an Error for `CallError<E>` to be used
    let rejected: CallError<NotAnError> = CallError::Rejected(CircuitOpen::new(Duration::ZERO));
    assert_eq!(rejected.kind(), ErrorKind::CircuitOpen); // the inherent method knows...
    assert_eq!(ErrorKind::of_any(&rejected), ErrorKind::CircuitOpen); // ...of_any does not
}

/// Same root cause through `kind()`: a hand-built nested `CallError` (say, a test fake of
/// an inner breaker) hides the rejection even from the outer `CallError::kind`.
#[test]
fn defect_a_hand_built_nested_call_error_hides_the_rejection() {
    #[derive(Debug)]
    struct Fake;
    let nested: CallError<CallError<Fake>> =
        CallError::Inner(CallError::Rejected(CircuitOpen::new(Duration::ZERO)));
    assert_eq!(nested.kind(), ErrorKind::CircuitOpen);
}

/// `RetryError` drops its error's causes from the chain (`#[error("{0}")]` with no
/// `#[source]`): an error report of a retried call loses "why".
#[test]
fn defect_retry_error_drops_the_cause_chain() {
    let err: RetryError<UpstreamError> =
        RetryError::Inner(UpstreamError(tower::timeout::error::Elapsed::new()));
    let lines = chain(&err);
    assert_eq!(
        lines,
        ["upstream call failed", "deadline has elapsed"],
        "the cause of the call's error is gone from the chain"
    );
}

// ===== probes that held =====

/// A user type whose probe registers another type and classifies a nested error while
/// `ErrorKind::of` is walking the registry: no deadlock, no poisoning.
#[derive(Debug)]
struct Reentrant(BoxError);
impl fmt::Display for Reentrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reentrant")
    }
}
impl Error for Reentrant {}
impl HasErrorKind for Reentrant {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::register::<Other>();
        ErrorKind::of(&*self.0)
    }
}
#[derive(Debug)]
struct Other;
impl fmt::Display for Other {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("other")
    }
}
impl Error for Other {}
impl HasErrorKind for Other {
    fn error_kind(&self) -> ErrorKind {
        panic!("a user probe that panics")
    }
}

#[test]
fn probe_reentrant_probes_and_parallel_first_registrations() {
    ErrorKind::register::<Reentrant>();
    let e = Reentrant(Box::new(CircuitOpen::new(Duration::ZERO)));
    assert_eq!(ErrorKind::of(&e), ErrorKind::CircuitOpen);
    // A panicking probe poisons nothing (no lock is held while it runs).
    let r = std::panic::catch_unwind(|| ErrorKind::of(&Other));
    assert!(r.is_err());
    assert_eq!(ErrorKind::of(&e), ErrorKind::CircuitOpen);
    // Parallel first registrations of many generic instantiations.
    let n = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let a: CallError<std::io::Error> =
                    CallError::Rejected(CircuitOpen::new(Duration::ZERO));
                let b: CallError<CallError<std::io::Error>> = CallError::Inner(a);
                for _ in 0..1000 {
                    if ErrorKind::of(&b) == ErrorKind::CircuitOpen {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(n.load(Ordering::Relaxed), 8000);
}

#[tokio::test]
async fn probe_nested_call_errors_and_boxes() {
    let open = || CircuitOpen::new(Duration::ZERO);
    // Real nested breakers (the constructors register): the inner rejection is found.
    let outer = CircuitBreaker::builder().build().unwrap();
    let inner = CircuitBreaker::builder().build().unwrap();
    inner.force_open();
    let err = outer
        .call(|| inner.call(|| async { Ok::<(), BoxError>(()) }))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(ErrorKind::of_any(&err), ErrorKind::CircuitOpen);
    let b: Box<dyn Error + Send> = Box::new(open());
    assert_eq!(ErrorKind::of_any(&b), ErrorKind::CircuitOpen);
    let b: Box<dyn Error> = Box::new(open());
    assert_eq!(ErrorKind::of_any(&b), ErrorKind::CircuitOpen);
    let rejected: CallError<std::io::Error> = CallError::Rejected(open());
    assert_eq!(chain(&rejected), ["circuit open; next probe in 0ns"]);
}
