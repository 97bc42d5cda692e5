//! A server that closes the connection: transport failures retry a GET, never a POST, and the
//! final error still holds hyper's.

use http::Method;
use seawall::http::StandardClientLayer;
use seawall::retry::GiveUpReason;
use tower::ServiceExt;

use crate::support::*;

async fn call(
    server: &RawServer,
    method: Method,
    retries: u32,
) -> (Result<http::StatusCode, seawall::BoxError>, Vec<RetryEv>) {
    let (log, listener) = recorder();
    let svc = stack(
        StandardClientLayer::new().retry(fast_retry(retries).listener(listener).build().unwrap()),
    );
    let result = svc
        .oneshot(request(method, &server.url("/gone"), "t", full("payload")))
        .await
        .map(|r| r.status());
    (result, events(&log))
}

#[tokio::test]
async fn a_get_is_retried_when_the_server_closes_the_connection_and_fails_with_hypers_error() {
    bounded(async {
        let server = raw_server(Misbehave::Close).await;
        let (result, events) = call(&server, Method::GET, 2).await;
        let err = result.expect_err("every attempt failed");
        assert!(
            chain_has::<hyper::Error>(&*err),
            "{:?}",
            crate::common::chain(&*err)
        );
        assert_eq!(server.count(), 3);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, RetryEv::Retry { .. }))
                .count(),
            2
        );
        assert!(matches!(
            events.last(),
            Some(RetryEv::GiveUp {
                attempt: 3,
                reason: GiveUpReason::RetriesUsedUp,
                response: false,
                error: Some(_),
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn a_post_is_not_retried_when_the_server_closes_the_connection() {
    bounded(async {
        let server = raw_server(Misbehave::Close).await;
        let (result, events) = call(&server, Method::POST, 3).await;
        let err = result.expect_err("the attempt failed");
        assert!(
            chain_has::<hyper::Error>(&*err),
            "{:?}",
            crate::common::chain(&*err)
        );
        assert_eq!(server.count(), 1);
        assert!(matches!(
            events[..],
            [RetryEv::GiveUp {
                attempt: 1,
                reason: GiveUpReason::NotIdempotent,
                ..
            }]
        ));
    })
    .await;
}

#[tokio::test]
async fn a_get_is_retried_when_the_response_head_is_truncated() {
    bounded(async {
        let server = raw_server(Misbehave::TruncatedHead).await;
        let (result, _) = call(&server, Method::GET, 3).await;
        let err = result.expect_err("every attempt failed");
        let hyper_error = {
            let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&*err);
            let mut found = None;
            while let Some(e) = current {
                if let Some(h) = e.downcast_ref::<hyper::Error>() {
                    found = Some(h);
                    break;
                }
                current = e.source();
            }
            found.expect("hyper's error in the chain")
        };
        assert!(hyper_error.is_incomplete_message(), "{hyper_error:?}");
        assert_eq!(server.count(), 4);
    })
    .await;
}

#[tokio::test]
async fn a_truncated_response_body_is_the_callers_to_read_and_is_not_retried() {
    bounded(async {
        // The head arrived whole: the call succeeded as far as the stack can tell; the body
        // fails when read, after the stack has returned.
        let server = raw_server(Misbehave::TruncatedBody).await;
        let svc = stack(StandardClientLayer::new().retry(fast_retry(3).build().unwrap()));
        let response = svc
            .oneshot(request(Method::GET, &server.url("/short"), "t", empty()))
            .await
            .expect("the head arrived");
        assert_eq!(response.status(), 200);
        let err = body_of(response).await.expect_err("the body was cut short");
        let io = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(server.count(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_fails_with_the_connect_error() {
    bounded(async {
        // A port nobody listens on: bind one, then free it.
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (log, listener) = recorder();
        let svc = stack(
            StandardClientLayer::new().retry(fast_retry(2).listener(listener).build().unwrap()),
        );
        let err = svc
            .oneshot(request(
                Method::GET,
                &format!("http://{addr}/"),
                "t",
                empty(),
            ))
            .await
            .expect_err("refused");
        assert!(
            chain_has::<std::io::Error>(&*err),
            "{:?}",
            crate::common::chain(&*err)
        );
        assert_eq!(
            events(&log)
                .iter()
                .filter(|e| matches!(e, RetryEv::Retry { .. }))
                .count(),
            2
        );
    })
    .await;
}
