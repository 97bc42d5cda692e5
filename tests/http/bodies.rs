//! Request bodies: a streamed body within the replay limit is replayed whole; one over the
//! limit is sent once; one that fails mid-stream is never resent truncated.

use http::Method;
use seawall::http::{HttpRetryClassifier, StandardClientLayer};
use seawall::retry::{GiveUpReason, RequestNotCopied};
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn a_streamed_put_within_the_replay_limit_is_resent_whole_and_identical() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .replay_limit(16 * 1024),
        );
        let parts = chunks(6, 1000);
        let response = svc
            .oneshot(request(
                Method::PUT,
                &server.url("/doc"),
                "put-1",
                streamed(parts.clone(), None),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        let expected = concat(&parts);
        for s in &seen {
            assert_eq!(s.method, Method::PUT);
            assert_eq!(
                s.body.as_ref(),
                Some(&expected),
                "attempt sent a different body"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_streamed_put_over_the_replay_limit_is_sent_once_and_its_503_returned() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).listener(listener).build().unwrap())
                .replay_limit(1024),
        );
        let parts = chunks(8, 1024);
        let result = svc
            .oneshot(request(
                Method::PUT,
                &server.url("/big"),
                "put-2",
                streamed(parts.clone(), None),
            ))
            .await;
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{seen:#?}");
        assert_eq!(seen[0].body.as_ref(), Some(&concat(&parts)));
        match result {
            Ok(response) => {
                assert_eq!(response.status(), 503);
                assert_eq!(
                    events(&log),
                    [RetryEv::GiveUp {
                        attempt: 1,
                        reason: GiveUpReason::RequestNotCopied,
                        response: true,
                        error: None,
                    }]
                );
            }
            // A transport error instead of the response: it says why it was not retried.
            Err(err) => assert!(err.is::<RequestNotCopied>(), "{err:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_body_of_known_size_over_the_limit_is_sent_once() {
    bounded(async {
        let server = recording_server(fail_first(1, 503, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).listener(listener).build().unwrap())
                .replay_limit(1024),
        );
        let data = vec![b'z'; 4096];
        let response = svc
            .oneshot(request(
                Method::PUT,
                &server.url("/sized"),
                "s",
                full(data.clone()),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body.as_deref(), Some(&data[..]));
        assert!(matches!(
            events(&log)[..],
            [RetryEv::GiveUp {
                reason: GiveUpReason::RequestNotCopied,
                response: true,
                ..
            }]
        ));
    })
    .await;
}

#[tokio::test]
async fn a_body_failing_mid_stream_fails_the_call_and_is_never_resent() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 200, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(3).listener(listener).build().unwrap()),
        );
        let body = streamed(chunks(1, 100), Some("the body's source broke".into()));
        let err = svc
            .oneshot(request(Method::PUT, &server.url("/broken"), "b-1", body))
            .await
            .expect_err("the body failed");
        // The body's own error is in the chain.
        let messages = crate::common::chain(&*err);
        assert!(
            messages
                .iter()
                .any(|m| m.contains("the body's source broke")),
            "{messages:?}"
        );
        // A body error is not a transport failure: not retried, so no event.
        assert_eq!(events(&log), []);
        let seen = server.seen();
        assert!(seen.len() <= 1, "{seen:#?}");
        assert!(
            seen.iter().all(|s| s.body.is_none()),
            "a truncated body was accepted whole"
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_failing_mid_stream_under_a_classifier_that_retries_it_is_request_not_copied() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 200, 200)).await;
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).listener(listener).build().unwrap())
                .retry_classifier(HttpRetryClassifier::new().other_errors(true)),
        );
        let body = streamed(chunks(2, 100), Some("source broke".into()));
        let err = svc
            .oneshot(request(Method::PUT, &server.url("/broken"), "b-2", body))
            .await
            .expect_err("the body failed");
        assert!(err.is::<RequestNotCopied>(), "{err:?}");
        assert!(matches!(
            events(&log)[..],
            [RetryEv::GiveUp {
                attempt: 1,
                reason: GiveUpReason::RequestNotCopied,
                response: false,
                ..
            }]
        ));
        let seen = server.seen();
        assert!(seen.len() <= 1, "{seen:#?}");
        assert!(seen.iter().all(|s| s.body.is_none()));
    })
    .await;
}

#[tokio::test]
async fn a_503_answered_before_the_body_was_read_is_retried_with_the_whole_body() {
    bounded(async {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        // The first attempt is answered at once, its body unread (as a load shedder does),
        // while the body's source is still pending; the retry must send the whole body.
        let calls = Arc::new(AtomicUsize::new(0));
        let bodies: Arc<std::sync::Mutex<Vec<Option<bytes::Bytes>>>> = Arc::default();
        let (c, b) = (calls.clone(), bodies.clone());
        let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    return response(503, &[]);
                }
                let body = axum::body::to_bytes(req.into_body(), usize::MAX).await.ok();
                b.lock().unwrap().push(body);
                response(200, &[])
            }
        });
        let addr = serve_router(router).await;
        let (tx, rx) = futures::channel::mpsc::unbounded::<
            Result<http_body::Frame<bytes::Bytes>, seawall::BoxError>,
        >();
        let body = http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(rx));
        let feeder = tokio::spawn(async move {
            for part in chunks(4, 500) {
                if tx.unbounded_send(Ok(http_body::Frame::data(part))).is_err() {
                    return;
                }
                tokio::time::sleep(ms(50)).await;
            }
        });
        let svc = stack(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()));
        let response = svc
            .oneshot(request(
                Method::PUT,
                &format!("http://{addr}/early"),
                "e",
                body,
            ))
            .await
            .expect("a response");
        assert_eq!(response.status(), 200);
        feeder.await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            bodies.lock().unwrap().clone(),
            [Some(concat(&chunks(4, 500)))]
        );
    })
    .await;
}
