//! Over HTTP, `HttpRetryClassifier` tells the throttle what the backend accepted: the
//! overload signals (408, 429, 502, 503, 504, timeouts) are rejections, any other answer
//! (a 200, a 404, a 500) is an accept.

use crate::prelude::*;
use http::{Response, StatusCode};
use seawall::http::HttpRetryClassifier;

#[test]
fn http_retry_classifier_counts_overload_signals_as_rejections_and_answers_as_accepts() {
    let time = ManualClock::new();
    let t = throttle(&time, 2.0);
    let mut svc = t
        .layer()
        .classifier(HttpRetryClassifier::new())
        .layer(tower::service_fn(|code: u16| {
            std::future::ready(if code == 0 {
                Err::<Response<()>, BoxError>(Box::new(tower::timeout::error::Elapsed::new()))
            } else {
                let mut r = Response::new(());
                *r.status_mut() = StatusCode::from_u16(code).unwrap();
                Ok(r)
            })
        }));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut call = |code: u16| {
        assert!(svc.poll_ready(&mut cx).is_ready());
        let fut = pin!(svc.call(code));
        assert!(poll_once(fut).is_ready());
    };
    for code in [200, 204, 404, 400, 500, 501] {
        call(code);
    }
    let s = t.snapshot();
    assert_eq!((s.requests, s.accepts), (6, 6), "answers are accepts");
    for code in [429, 503, 502, 504, 408, 0] {
        call(code);
    }
    let s = t.snapshot();
    assert_eq!(
        (s.requests, s.accepts),
        (12, 6),
        "overload signals are rejections"
    );
}
