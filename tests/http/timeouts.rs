//! A slow server: the per-attempt timeout cuts an attempt, which the breaker counts as a
//! failure and the retry retries; the overall timeout ends the call.

use std::time::Duration;

use http::Method;
use seawall::http::StandardClientLayer;
use seawall::{ErrorKind, Outcome};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn an_attempt_over_the_attempt_timeout_is_retried_and_counted_as_a_breaker_failure() {
    bounded(async {
        let server = recording_server(|_, prior| async move {
            if prior == 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            response(200, &[])
        })
        .await;
        let (breaker_log, builder) = logged_breaker();
        let breaker = builder.failure_threshold(5).build().unwrap();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .breaker(breaker.clone())
                .attempt_timeout(ms(100)),
        );
        let started = Instant::now();
        let response = svc
            .oneshot(request(Method::GET, &server.url("/slow"), "s", empty()))
            .await
            .expect("the second attempt answers");
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        let gap = gaps(&seen)[0];
        assert!(gap >= ms(100) && gap < Duration::from_secs(1), "{gap:?}");
        assert_eq!(breaker_log.outcomes(), [Outcome::Failure, Outcome::Success]);
    })
    .await;
}

#[tokio::test]
async fn the_total_timeout_ends_a_call_whose_attempts_all_hang() {
    bounded(async {
        let server = recording_server(|_, _| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            response(200, &[])
        })
        .await;
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(10).build().unwrap())
                .attempt_timeout(ms(100))
                .total_timeout(ms(350)),
        );
        let started = Instant::now();
        let err = svc
            .oneshot(request(Method::GET, &server.url("/hang"), "h", empty()))
            .await
            .expect_err("timed out");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= ms(350) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Timeout);
        // Three or four attempts of 100 ms fit in 350 ms.
        assert!((3..=4).contains(&server.count()), "{}", server.count());
    })
    .await;
}
