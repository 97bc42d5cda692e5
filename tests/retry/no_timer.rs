//! Without a tokio timer (no runtime at all, or one built without `enable_time`) the retry
//! never panics: a call that needs no wait needs no timer, and one that needs a wait fails
//! with `TimerUnavailable`, carrying the last error. Outside a runtime nothing panics at
//! all; in a runtime without its time driver, tokio's one panic is caught, and the panic hook
//! runs once per call that needs a wait.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use seawall::retry::{Backoff, Retry, RetryError, TimerUnavailable};
use seawall::{BoxError, ErrorKind};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

thread_local! {
    static PANICS: Cell<u32> = const { Cell::new(0) };
}

/// The panics the hook saw on this thread (the tests of this file run on parallel threads);
/// the previous hook still runs.
fn panics_seen() -> u32 {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
    PANICS.with(Cell::get)
}

fn policy(backoff: Duration) -> Retry {
    Retry::builder()
        .max_retries(2)
        .no_budget()
        .backoff(Backoff::constant(backoff))
        .build()
        .unwrap()
}

/// A layered call that fails once then succeeds; returns (result, attempts).
async fn layered(retry: &Retry) -> (Result<u32, BoxError>, u32) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut svc = ServiceBuilder::new()
        .layer(retry.layer())
        .service(service_fn(move |()| {
            let n = c.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    Err::<u32, BoxError>("flaky".into())
                } else {
                    Ok(n)
                }
            }
        }));
    let r = svc.ready().await.unwrap().call(()).await;
    (r, calls.load(Ordering::Relaxed))
}

async fn bare(retry: &Retry) -> (Result<u32, RetryError<std::io::Error>>, u32) {
    let calls = AtomicU32::new(0);
    let r = retry
        .call(|| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    Err(std::io::Error::other("flaky"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
    (r, calls.load(Ordering::Relaxed))
}

fn check_no_wait_needed(
    retry: &Retry,
    run: impl Fn(
        &Retry,
    ) -> (
        (Result<u32, BoxError>, u32),
        (Result<u32, RetryError<std::io::Error>>, u32),
    ),
) {
    let ((r, n), (b, m)) = run(retry);
    assert_eq!((r.unwrap(), n), (1, 2), "the layer retried without a timer");
    assert_eq!(
        (b.unwrap(), m),
        (1, 2),
        "the bare call retried without a timer"
    );
}

fn check_wait_needed(
    retry: &Retry,
    run: impl Fn(
        &Retry,
    ) -> (
        (Result<u32, BoxError>, u32),
        (Result<u32, RetryError<std::io::Error>>, u32),
    ),
) {
    let ((r, n), (b, m)) = run(retry);
    let err = r.unwrap_err();
    assert_eq!(n, 1);
    let no_timer = err
        .downcast_ref::<TimerUnavailable>()
        .expect("a typed error");
    assert_eq!(no_timer.last_error().unwrap().to_string(), "flaky");
    assert_eq!(
        ErrorKind::of(&*err),
        ErrorKind::Inner,
        "the last error's kind"
    );
    assert_eq!(m, 1);
    match b.unwrap_err() {
        RetryError::TimerUnavailable(Some(e)) => assert_eq!(e.to_string(), "flaky"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn under_a_plain_executor() {
    let before = panics_seen();
    let run = |retry: &Retry| {
        futures::executor::block_on(async { (layered(retry).await, bare(retry).await) })
    };
    check_no_wait_needed(&policy(Duration::ZERO), run);
    check_wait_needed(&policy(Duration::from_millis(10)), run);
    assert_eq!(panics_seen(), before, "no runtime is told without a panic");
}

#[test]
fn under_a_tokio_runtime_without_timers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = |retry: &Retry| rt.block_on(async { (layered(retry).await, bare(retry).await) });
    let before = panics_seen();
    check_no_wait_needed(&policy(Duration::ZERO), run);
    assert_eq!(panics_seen(), before, "no wait, no timer, no panic");
    check_wait_needed(&policy(Duration::from_millis(10)), run);
    // tokio cannot be asked whether its time driver is on: its panic is caught, one per call
    // that needs a wait (the layered call and the bare one).
    assert_eq!(panics_seen(), before + 2);
}

#[test]
fn a_per_attempt_timeout_without_a_timer_is_refused_not_panicked() {
    let retry = Retry::builder()
        .no_budget()
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let before = panics_seen();
    let (r, _) = futures::executor::block_on(layered(&retry));
    let err = r.unwrap_err();
    let no_timer = err
        .downcast_ref::<TimerUnavailable>()
        .expect("a typed error");
    assert!(no_timer.last_error().is_none(), "no attempt could be made");
    let (b, _) = futures::executor::block_on(bare(&retry));
    assert!(
        matches!(b, Err(RetryError::TimerUnavailable(None))),
        "{b:?}"
    );
    assert_eq!(panics_seen(), before, "no runtime is told without a panic");
}
