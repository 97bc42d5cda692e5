//! `Retry-After` on a 429 or 503: honoured, refused when too long, capped on demand; malformed
//! values never panic.

use std::time::Duration;

use http::Method;
use seawall::http::StandardClientLayer;
use seawall::retry::{Backoff, GiveUpReason, Jitter, LongRetryAfter, RetryAfterTooLong};
use seawall::ErrorKind;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::support::*;

/// Answers `status` with `Retry-After: value` the first time on each path, then 200.
fn once_with_retry_after(
    status_code: u16,
    value: &'static str,
) -> impl Fn(Seen, usize) -> std::future::Ready<axum::response::Response> + Clone + Send + Sync {
    move |_, prior| {
        std::future::ready(if prior == 0 {
            response(status_code, &[("retry-after", value)])
        } else {
            response(200, &[])
        })
    }
}

#[tokio::test]
async fn a_429_with_retry_after_1_is_retried_no_sooner_than_one_second_later() {
    bounded(async {
        let server = recording_server(once_with_retry_after(429, "1")).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        let response = svc
            .oneshot(request(
                Method::GET,
                &server.url("/slow-down"),
                "r",
                empty(),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        let gap = gaps(&seen)[0];
        assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
        assert!(gap < Duration::from_secs(3), "retried after {gap:?}");
        assert_eq!(
            events(&log),
            [RetryEv::Retry {
                attempt: 1,
                delay: Duration::from_secs(1),
                retry_after: true
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_over_max_delay_gives_up_at_once_with_retry_after_too_long() {
    bounded(async {
        let server = recording_server(once_with_retry_after(429, "3600")).await;
        let (log, listener) = recorder();
        let policy = fast_retry(3)
            .backoff(
                Backoff::constant(ms(1))
                    .max_delay(Duration::from_secs(30))
                    .jitter(Jitter::None),
            )
            .listener(listener)
            .build()
            .unwrap();
        let svc = stack(StandardClientLayer::new().retry(policy));
        let started = Instant::now();
        let err = svc
            .oneshot(request(Method::GET, &server.url("/later"), "r", empty()))
            .await
            .expect_err("the 429 is replaced by RetryAfterTooLong");
        assert!(started.elapsed() < Duration::from_secs(1));
        let too_long = err
            .downcast_ref::<RetryAfterTooLong>()
            .unwrap_or_else(|| panic!("not RetryAfterTooLong: {err:?}"));
        assert_eq!(too_long.retry_after(), Duration::from_secs(3600));
        // `max_delay`, or a hair less: the stack's 30 s total timeout is the retry's deadline.
        let allowed = too_long.allowed();
        assert!(
            allowed <= Duration::from_secs(30) && allowed > Duration::from_secs(29),
            "{allowed:?}"
        );
        assert!(too_long.last_error().is_none());
        assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
        assert_eq!(server.count(), 1);
        assert_eq!(
            events(&log),
            [RetryEv::GiveUp {
                attempt: 1,
                reason: GiveUpReason::RetryAfterTooLong,
                response: true,
                error: None,
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn a_long_retry_after_is_capped_at_max_delay_with_long_retry_after_cap() {
    bounded(async {
        let server = recording_server(once_with_retry_after(503, "3600")).await;
        let (log, listener) = recorder();
        let policy = fast_retry(3)
            .backoff(
                Backoff::constant(ms(1))
                    .max_delay(ms(100))
                    .jitter(Jitter::None),
            )
            .long_retry_after(LongRetryAfter::Cap)
            .listener(listener)
            .build()
            .unwrap();
        let svc = stack(StandardClientLayer::new().retry(policy));
        let response = svc
            .oneshot(request(Method::GET, &server.url("/cap"), "r", empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        let gap = gaps(&seen)[0];
        assert!(gap >= ms(100), "retried after {gap:?}");
        assert!(gap < Duration::from_secs(1), "retried after {gap:?}");
        assert_eq!(
            events(&log),
            [RetryEv::Retry {
                attempt: 1,
                delay: ms(100),
                retry_after: true
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn malformed_retry_after_values_fall_back_to_the_backoff_without_a_panic() {
    bounded(async {
        for (i, value) in [
            "soon",
            "-5",
            "1.5",
            "+3",
            "",
            "Sun, 06 Nov 1994 08:49:37 XYZ",
        ]
        .into_iter()
        .enumerate()
        {
            let server = recording_server(once_with_retry_after(429, value)).await;
            let (log, listener) = recorder();
            let svc = stack(
                StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
            );
            let response = svc
                .oneshot(request(
                    Method::GET,
                    &server.url("/m"),
                    &i.to_string(),
                    empty(),
                ))
                .await
                .unwrap_or_else(|e| panic!("{value:?}: {e:?}"));
            assert_eq!(response.status(), 200, "{value:?}");
            let seen = server.seen();
            assert_eq!(seen.len(), 2, "{value:?}");
            assert!(gaps(&seen)[0] < Duration::from_secs(1), "{value:?}");
            assert_eq!(
                events(&log),
                [RetryEv::Retry {
                    attempt: 1,
                    delay: ms(1),
                    retry_after: false
                }],
                "{value:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_date_in_the_past_retries_after_the_backoff() {
    bounded(async {
        let server =
            recording_server(once_with_retry_after(503, "Sun, 06 Nov 1994 08:49:37 GMT")).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        let response = svc
            .oneshot(request(Method::GET, &server.url("/past"), "r", empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(gaps(&seen)[0] < Duration::from_secs(1));
        assert_eq!(
            events(&log),
            // The server's wait is the least wait: a date in the past leaves the backoff.
            [RetryEv::Retry {
                attempt: 1,
                delay: ms(1),
                retry_after: true
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_centuries_away_or_overflowing_gives_up_with_retry_after_too_long() {
    bounded(async {
        for value in [
            "Fri, 31 Dec 2500 23:59:59 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "99999999999999999999999999",
        ] {
            let server = recording_server(once_with_retry_after(429, value)).await;
            let svc = stack(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()));
            let started = Instant::now();
            let err = svc
                .oneshot(request(Method::GET, &server.url("/far"), "r", empty()))
                .await
                .expect_err(value);
            assert!(started.elapsed() < Duration::from_secs(1), "{value}");
            let too_long = err
                .downcast_ref::<RetryAfterTooLong>()
                .unwrap_or_else(|| panic!("{value}: {err:?}"));
            assert!(
                too_long.retry_after() > Duration::from_secs(400 * 365 * 86_400),
                "{value}: {:?}",
                too_long.retry_after()
            );
            assert_eq!(server.count(), 1, "{value}");
        }
    })
    .await;
}

#[tokio::test]
async fn retry_after_on_a_502_is_read_like_on_a_503() {
    bounded(async {
        // Every retried status's Retry-After counts: a 502 asking for an hour is not retried
        // a millisecond later.
        let server = recording_server(once_with_retry_after(502, "3600")).await;
        let svc = stack(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()));
        let err = svc
            .oneshot(request(Method::GET, &server.url("/502"), "r", empty()))
            .await
            .unwrap_err();
        let too_long = err.downcast_ref::<RetryAfterTooLong>().unwrap();
        assert_eq!(too_long.retry_after(), Duration::from_secs(3600));
        assert_eq!(server.count(), 1);
    })
    .await;
}
