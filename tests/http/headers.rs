//! A response head over hyper's limit: hyper's parse error, no panic; not a transport failure
//! (not retried), but a breaker failure.

use http::Method;
use seawall::http::StandardClientLayer;
use seawall::Outcome;
use tower::{Layer, ServiceExt};

use crate::support::*;

/// Answers every request with a 200 carrying `headers`.
async fn server_with(headers: Vec<(String, String)>) -> Server {
    recording_server(move |_, _| {
        let headers = headers.clone();
        async move {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            response(200, &pairs)
        }
    })
    .await
}

/// The call fails with hyper's parse error, mentioning `what`; sent once, a breaker failure.
async fn check(server: &Server, what: &str) {
    let (breaker_log, builder) = logged_breaker();
    let (log, listener) = recorder();
    let svc = StandardClientLayer::new()
        .retry(fast_retry(3).listener(listener).build().unwrap())
        .breaker(builder.build().unwrap())
        .layer(client::<TestBody>());
    let err = match svc
        .oneshot(request(Method::GET, &server.url("/huge"), "h", empty()))
        .await
    {
        Ok(response) => panic!("a response passed hyper's limits: {}", response.status()),
        Err(err) => err,
    };
    let messages = crate::common::chain(&*err);
    assert!(chain_has::<hyper::Error>(&*err), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains(what)), "{messages:?}");
    // Not a transport failure: not retried (no event: a final error is not a give-up).
    assert_eq!(server.count(), 1);
    assert_eq!(events(&log), []);
    // The dependency answered nonsense: a breaker failure.
    assert_eq!(breaker_log.outcomes(), [Outcome::Failure]);
}

#[tokio::test]
async fn a_1_mib_response_header_is_hypers_too_large_error_final_and_a_breaker_failure() {
    bounded(async {
        // hyper's default read buffer (about 400 KiB) bounds the response head.
        let server = server_with(vec![("x-huge".into(), "h".repeat(1024 * 1024))]).await;
        check(&server, "too large").await;
    })
    .await;
}

#[tokio::test]
async fn a_response_with_200_headers_is_hypers_too_many_headers_error_and_final() {
    bounded(async {
        // hyper's default: at most 100 response headers.
        let headers = (0..200)
            .map(|i| (format!("x-h{i}"), "v".to_string()))
            .collect();
        let server = server_with(headers).await;
        check(&server, "too large").await;
    })
    .await;
}
