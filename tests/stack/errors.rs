//! The error model across patterns: every error seawall makes has its kind, through boxes,
//! the bare API's typed errors and nesting; chains print each message once and keep causes.
//! (Grown from an adversarial review; each test here failed on the code it reviewed, or
//! records an attack that held.)

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seawall::circuit_breaker::{CallError, CircuitOpen};
use seawall::error::HasErrorKind;
use seawall::retry::RetryError;
use seawall::{BoxError, CircuitBreaker, ErrorKind, Retry, RetryBudget};

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

use crate::common::chain;

// ===== kinds =====

/// Every error seawall creates has its kind: the bare API's `RetryError` included (it used to
/// classify as `Inner`).
#[test]
fn retry_error_kinds_are_recognised() {
    let timeout: RetryError<std::io::Error> = RetryError::Timeout;
    let refused: RetryError<std::io::Error> =
        RetryError::BudgetExhausted(Some(std::io::Error::other("flaky")));
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
async fn a_bare_budget_refusal_boxed_is_budget_exhausted() {
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

/// Nested retries must not multiply: an inner bare retry's budget refusal is a refusal, and
/// the outer retry does not retry it.
#[tokio::test(start_paused = true)]
async fn an_outer_retry_does_not_retry_an_inner_bare_budget_refusal() {
    let inner_budget = RetryBudget::builder()
        .ratio(0.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    assert!(inner_budget.withdraw()); // empty now
    let inner = Retry::builder().budget(inner_budget).build().unwrap();
    let outer = Retry::builder().no_budget().build().unwrap();
    let calls = AtomicU32::new(0);
    let err = outer
        .call(|| {
            inner.call(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(std::io::Error::other("flaky"))
            })
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 1, "the refusal was retried");
    assert_eq!(err.kind(), ErrorKind::BudgetExhausted);
}

/// A timeout one link down the call's own error is still a timeout once a `CallError` wraps
/// it: `ErrorKind::of` walks the whole chain. (`CallError::kind`, for any `E`, sees only what
/// `ErrorKind::of_any` sees of `E` until `of` has met the type: documented on `kind`.)
#[tokio::test]
async fn a_call_error_does_not_hide_a_timeout_among_its_errors_causes() {
    let plain = UpstreamError(tower::timeout::error::Elapsed::new());
    assert_eq!(ErrorKind::of(&plain), ErrorKind::Timeout);

    let breaker = CircuitBreaker::builder().build().unwrap();
    let err = breaker
        .call(|| async { Err::<(), _>(UpstreamError(tower::timeout::error::Elapsed::new())) })
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err), ErrorKind::Timeout);
    assert_eq!(ErrorKind::of_any(&err), ErrorKind::Timeout);
}

/// A breaker wrapped around a bare retry: the refusal inside is seen through.
#[tokio::test(start_paused = true)]
async fn a_call_error_around_a_retry_refusal_is_budget_exhausted() {
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

/// `CallError`'s variants are public, so users build them (fakes in tests, `map_err`). Such a
/// `CallError<E>` is known to `of_any` once a breaker made one with that `E`, or once it is
/// registered by hand, as `CallError`'s docs say.
#[test]
fn a_hand_built_call_error_is_known_to_of_any_once_registered() {
    #[derive(Debug)]
    struct NotAnError; // E need not be an Error for `CallError<E>` to be used
    let rejected: CallError<NotAnError> = CallError::Rejected(CircuitOpen::new(Duration::ZERO));
    assert_eq!(rejected.kind(), ErrorKind::CircuitOpen);
    ErrorKind::register_any::<CallError<NotAnError>>();
    assert_eq!(ErrorKind::of_any(&rejected), ErrorKind::CircuitOpen);
    let nested: CallError<CallError<NotAnError>> = CallError::Inner(rejected);
    assert_eq!(nested.kind(), ErrorKind::CircuitOpen);
}

/// A retried call's error keeps its own causes in the chain, each printed once.
#[test]
fn a_retry_error_keeps_its_errors_causes_in_the_chain() {
    let err: RetryError<UpstreamError> =
        RetryError::Inner(UpstreamError(tower::timeout::error::Elapsed::new()));
    let lines = chain(&err);
    assert_eq!(
        lines,
        ["upstream call failed", "request timed out"],
        "the cause of the call's error is gone from the chain"
    );
}

// ===== attacks that held =====

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
fn reentrant_probes_and_parallel_first_registrations_neither_deadlock_nor_misclassify() {
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
async fn nested_call_errors_and_boxes_are_seen_through() {
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
