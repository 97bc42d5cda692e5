//! An outage (503 for everything) and the breaker inside the retry: it opens, the server sees
//! nothing more, and after `wait_in_open` probes close it again. 404s and 429s never open it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::Method;
use seawall::circuit_breaker::{CircuitOpen, State};
use seawall::http::StandardClientLayer;
use seawall::{ErrorKind, Outcome};
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn an_outage_opens_the_breaker_then_a_probe_after_wait_in_open_closes_it() {
    bounded(async {
        let healthy = Arc::new(AtomicBool::new(false));
        let flag = healthy.clone();
        let server = recording_server(move |_, _| {
            let code = if flag.load(Ordering::SeqCst) {
                200
            } else {
                503
            };
            async move { response(code, &[]) }
        })
        .await;
        let (breaker_log, builder) = logged_breaker();
        let breaker = builder
            .failure_threshold(3)
            .wait_in_open(ms(200))
            .build()
            .unwrap();
        let layer = StandardClientLayer::new()
            .retry(fast_retry(3).build().unwrap())
            .breaker(breaker.clone());
        let svc = stack(layer);
        let get = |id: &str| request(Method::GET, &server.url("/dep"), id, empty());

        // The first call: three 503s trip the breaker, the fourth attempt is refused by it
        // and the refusal is not retried.
        let err = svc
            .clone()
            .oneshot(get("c-0"))
            .await
            .expect_err("the circuit opened during the call");
        assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
        assert_eq!(server.count(), 3);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker_log.outcomes(), [Outcome::Failure; 3]);

        // While open: refused at once, the server sees nothing.
        for i in 1..=5 {
            let err = svc
                .clone()
                .oneshot(get(&format!("c-{i}")))
                .await
                .expect_err("open");
            assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
            let open = err.downcast_ref::<CircuitOpen>().expect("a CircuitOpen");
            assert!(open.retry_in() <= ms(200), "{:?}", open.retry_in());
        }
        assert_eq!(server.count(), 3);
        assert_eq!(breaker_log.rejected(), 6);

        // The server recovers; after wait_in_open the probes go through and close it.
        healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(ms(250)).await;
        for i in 0..5 {
            let response = svc
                .clone()
                .oneshot(get(&format!("p-{i}")))
                .await
                .expect("recovered");
            assert_eq!(response.status(), 200);
        }
        assert_eq!(server.count(), 8);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.snapshot().consecutive_failures, 0);
    })
    .await;
}

#[tokio::test]
async fn a_breaker_reopens_when_the_probe_after_wait_in_open_fails() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 503, 200)).await;
        let breaker = seawall::CircuitBreaker::builder()
            .failure_threshold(2)
            .wait_in_open(ms(100))
            .build()
            .unwrap();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(0).build().unwrap())
                .breaker(breaker.clone()),
        );
        let get = || request(Method::GET, &server.url("/dep"), "x", empty());
        for _ in 0..2 {
            let response = svc.clone().oneshot(get()).await.unwrap();
            assert_eq!(response.status(), 503);
        }
        assert_eq!(breaker.state(), State::Open);
        tokio::time::sleep(ms(150)).await;
        // The probe reaches the server, fails, and the breaker opens again.
        let response = svc.clone().oneshot(get()).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(server.count(), 3);
        assert_eq!(breaker.state(), State::Open);
        let err = svc.clone().oneshot(get()).await.expect_err("open again");
        assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen);
        assert_eq!(server.count(), 3);
    })
    .await;
}

#[tokio::test]
async fn many_404s_do_not_open_the_breaker() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 404, 200)).await;
        let (breaker_log, builder) = logged_breaker();
        let breaker = builder.failure_threshold(3).build().unwrap();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(3).build().unwrap())
                .breaker(breaker.clone()),
        );
        for i in 0..10 {
            let response = svc
                .clone()
                .oneshot(request(
                    Method::GET,
                    &server.url("/missing"),
                    &i.to_string(),
                    empty(),
                ))
                .await
                .unwrap();
            assert_eq!(response.status(), 404);
        }
        assert_eq!(server.count(), 10);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker_log.outcomes(), [Outcome::Ignored; 10]);
    })
    .await;
}

#[tokio::test]
async fn many_429s_are_retried_but_do_not_open_the_breaker() {
    bounded(async {
        let server = recording_server(fail_first(usize::MAX, 429, 200)).await;
        let (breaker_log, builder) = logged_breaker();
        let breaker = builder.failure_threshold(3).build().unwrap();
        let svc = stack(
            StandardClientLayer::new()
                .retry(fast_retry(2).build().unwrap())
                .breaker(breaker.clone()),
        );
        for i in 0..4 {
            let response = svc
                .clone()
                .oneshot(request(
                    Method::GET,
                    &server.url("/busy"),
                    &i.to_string(),
                    empty(),
                ))
                .await
                .unwrap();
            assert_eq!(response.status(), 429);
        }
        // 4 calls of 3 attempts each: all reached the server.
        assert_eq!(server.count(), 12);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker_log.outcomes(), [Outcome::Ignored; 12]);
        assert_eq!(breaker_log.rejected(), 0);
    })
    .await;
}
