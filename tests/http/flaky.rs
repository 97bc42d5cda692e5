//! A flaky dependency: retryable statuses are retried with the same request; final statuses
//! and retries used up return the last response.

use http::Method;
use seawall::http::StandardClientLayer;
use seawall::retry::GiveUpReason;
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn a_get_answered_503_twice_then_200_returns_200_after_three_identical_attempts() {
    bounded(async {
        let server = recording_server(fail_first(2, 503, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        let response = svc
            .oneshot(request(
                Method::GET,
                &server.url("/flaky?q=1"),
                "req-1",
                empty(),
            ))
            .await
            .expect("a response");
        assert_eq!(response.status(), 200);
        assert_eq!(body_of(response).await.unwrap(), "status 200");

        let seen = server.seen();
        assert_eq!(seen.len(), 3, "{seen:#?}");
        for s in &seen {
            assert_eq!(s.method, Method::GET);
            assert_eq!(s.path, "/flaky");
            assert_eq!(s.request_id.as_deref(), Some("req-1"));
            assert_eq!(s.headers["x-custom"], "kept");
            assert_eq!(s.body.as_deref(), Some(&b""[..]));
        }
        let retries = [1, 2].map(|attempt| RetryEv::Retry {
            attempt,
            delay: ms(1),
            retry_after: false,
        });
        assert_eq!(events(&log), retries);
    })
    .await;
}

#[tokio::test]
async fn a_get_answered_503_forever_returns_the_last_503_after_max_retries() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 503, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(2).listener(listener).build().unwrap()),
        );
        let response = svc
            .oneshot(request(Method::GET, &server.url("/down"), "r", empty()))
            .await
            .expect("the last response, not an error");
        assert_eq!(response.status(), 503);
        assert_eq!(server.count(), 3);
        assert_eq!(
            events(&log).last(),
            Some(&RetryEv::GiveUp {
                attempt: 3,
                reason: GiveUpReason::RetriesUsedUp,
                response: true,
                error: None,
            })
        );
    })
    .await;
}

#[tokio::test]
async fn a_500_and_a_404_are_final_and_sent_once() {
    bounded(async {
        let server = recording_server(|seen: Seen, _| async move {
            response(if seen.path == "/500" { 500 } else { 404 }, &[])
        })
        .await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        for (path, code) in [("/500", 500), ("/404", 404)] {
            let response = svc
                .clone()
                .oneshot(request(Method::GET, &server.url(path), path, empty()))
                .await
                .unwrap();
            assert_eq!(response.status(), code);
            assert_eq!(server.seen_on(path).len(), 1, "{path}");
        }
        assert_eq!(events(&log), []);
    })
    .await;
}
