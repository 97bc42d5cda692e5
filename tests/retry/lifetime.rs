//! A call owns what it needs: it outlives the stack that made it (tower's `oneshot`, a config
//! reload dropping the old stack), and nothing of a policy is left once its handles and its
//! calls are gone. Paused time throughout.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::BoxError;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

use crate::common::alloc::live_bytes;

/// A service failing its first `failures` calls; counts the calls.
fn flaky(
    failures: u32,
) -> (
    impl Service<
            (),
            Response = u32,
            Error = BoxError,
            Future = impl std::future::Future<Output = Result<u32, BoxError>> + Send,
        > + Clone
        + Send,
    Arc<AtomicU32>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let svc = service_fn(move |()| {
        let n = c.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            if n <= failures {
                Err::<u32, BoxError>(format!("failure {n}").into())
            } else {
                Ok(n)
            }
        }
    });
    (svc, calls)
}

fn policy(budget: Option<&RetryBudget>, retries: &Arc<AtomicU32>) -> Retry {
    let r = retries.clone();
    let builder = Retry::builder()
        .max_retries(3)
        .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
        .on_retry(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        });
    match budget {
        Some(b) => builder.budget(b.clone()),
        None => builder.no_budget(),
    }
    .build()
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn oneshot_retries_exactly_like_ready_then_call() {
    let retries = Arc::new(AtomicU32::new(0));
    let (svc, calls) = flaky(2);
    let stack = ServiceBuilder::new()
        .layer(policy(None, &retries).layer())
        .service(svc);
    // `oneshot` drops the service, and with it the only handle to the policy, right after
    // `call`: the call must still retry.
    assert_eq!(stack.oneshot(()).await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(retries.load(Ordering::Relaxed), 2);

    let retries = Arc::new(AtomicU32::new(0));
    let (svc, calls) = flaky(2);
    let mut stack = ServiceBuilder::new()
        .layer(policy(None, &retries).layer())
        .service(svc);
    assert_eq!(stack.ready().await.unwrap().call(()).await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(retries.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_running_when_its_stack_is_dropped_still_retries_deposits_and_runs_hooks() {
    let budget = RetryBudget::builder()
        .ratio(1.0)
        .min_per_sec(1)
        .build()
        .unwrap();
    let retries = Arc::new(AtomicU32::new(0));
    let (svc, calls) = flaky(1);
    let mut stack = ServiceBuilder::new()
        .layer(policy(Some(&budget), &retries).layer())
        .service(svc);
    let call = stack.ready().await.unwrap().call(());
    // A config reload: the old stack (and its policy's last handle) goes while a call runs.
    drop(stack);
    assert_eq!(
        call.await.unwrap(),
        2,
        "retried after the stack was dropped"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(retries.load(Ordering::Relaxed), 1, "the hook ran");
    // The floor paid for the retry (1 - 1 = 0) and refilled a little during the backoff;
    // the success deposited 1 (ratio 1): without the deposit the balance would be near 0.
    assert!(
        (1.0..1.1).contains(&budget.balance()),
        "the success was deposited: balance {}",
        budget.balance()
    );
}

/// Live bytes left per round after `rounds` rounds of `f`, warmed up by one round first.
fn left_per_round(rounds: usize, mut f: impl FnMut()) -> i64 {
    f();
    let before = live_bytes();
    for _ in 0..rounds {
        f();
    }
    (live_bytes() - before) / rounds as i64
}

#[test]
fn a_policy_that_made_calls_leaves_nothing_once_its_calls_end() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let left = left_per_round(1000, || {
        rt.block_on(async {
            let retries = Arc::new(AtomicU32::new(0));
            let (svc, _) = flaky(1);
            let mut stack = ServiceBuilder::new()
                .layer(policy(None, &retries).layer())
                .service(svc);
            let call = stack.ready().await.unwrap().call(());
            drop(stack);
            call.await.unwrap();
        })
    });
    assert_eq!(left, 0, "bytes left per policy");
}
