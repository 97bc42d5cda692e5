//! Only idempotent requests are sent twice: a POST is not retried unless it carries an
//! `Idempotency-Key` or POST is opted in.

use http::Method;
use seawall::http::{HttpRequests, StandardClientLayer};
use seawall::retry::GiveUpReason;
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn a_post_answered_503_is_returned_as_the_503_response_after_one_attempt() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        let response = svc
            .oneshot(request(
                Method::POST,
                &server.url("/orders"),
                "p-1",
                full("order"),
            ))
            .await
            .expect("the 503 response, not an error");
        assert_eq!(response.status(), 503);
        assert_eq!(body_of(response).await.unwrap(), "status 503");
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body.as_deref(), Some(&b"order"[..]));
        assert_eq!(
            events(&log),
            [RetryEv::GiveUp {
                attempt: 1,
                reason: GiveUpReason::NotIdempotent,
                response: true,
                error: None,
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried_with_the_same_key_and_body() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 201)).await;
        let svc = stack(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()));
        let mut req = request(Method::POST, &server.url("/orders"), "p-2", full("order"));
        req.headers_mut()
            .insert("idempotency-key", "key-42".parse().unwrap());
        let response = svc.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 201);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(s.method, Method::POST);
            assert_eq!(s.headers["idempotency-key"], "key-42");
            assert_eq!(s.body.as_deref(), Some(&b"order"[..]));
        }
    })
    .await;
}

#[tokio::test]
async fn a_post_is_retried_when_post_is_opted_in() {
    bounded(async {
        let server = recording_server(fail_first(2, 503, 200)).await;
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .requests(HttpRequests::default().retry_method(Method::POST)),
        );
        let response = svc
            .oneshot(request(Method::POST, &server.url("/p"), "p-3", full("x")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(server.count(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_patch_is_not_retried_and_a_put_opted_out_is_not_either() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .requests(HttpRequests::default().never_retry_method(Method::PUT)),
        );
        for (method, path) in [(Method::PATCH, "/patch"), (Method::PUT, "/put")] {
            let response = svc
                .clone()
                .oneshot(request(method, &server.url(path), path, full("x")))
                .await
                .unwrap();
            assert_eq!(response.status(), 503, "{path}");
            assert_eq!(server.seen_on(path).len(), 1, "{path}");
        }
        // The same stack still retries a DELETE.
        let response = svc
            .oneshot(request(
                Method::DELETE,
                &server.url("/delete"),
                "d",
                empty(),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(server.seen_on("/delete").len(), 2);
    })
    .await;
}
