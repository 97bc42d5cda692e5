//! Rejections answered as gRPC statuses (the server side).

use std::error::Error;
use std::fmt::Write;
use std::time::Duration;

use http::{header, HeaderValue, Response};

use crate::circuit_breaker::CircuitOpen;
use crate::error::ErrorKind;
use crate::http::{find_in_chain, is_transport_failure};
use crate::retry::RetryAfterTooLong;
use tower::load_shed::error::Overloaded;

/// The Trailers-Only gRPC response that answers `err`.
///
/// The server side for gRPC: seawall's rejections answered as gRPC statuses (a
/// Trailers-Only response: HTTP 200 with `grpc-status` in the headers), with
/// `grpc-retry-pushback-ms` where a client should wait, as gRPC's retry design (A6) reads it.
///
/// | error ([`ErrorKind`]) | `grpc-status` | pushback |
/// |---|---|---|
/// | [`CircuitOpen`] | 14 UNAVAILABLE | the time to the next probe, in ms |
/// | [`RetryAfterTooLong`] | 14 UNAVAILABLE | the wait the dependency asked for |
/// | [`ErrorKind::BudgetExhausted`], [`ErrorKind::BulkheadFull`], [`ErrorKind::Throttled`] | 14 UNAVAILABLE | none |
/// | `RateLimited` (feature `rate-limit`) | 8 RESOURCE_EXHAUSTED | the time to the next free slot |
/// | [`ErrorKind::Timeout`] | 4 DEADLINE_EXCEEDED | none |
/// | tower's `Overloaded`, a transport failure ([`is_transport_failure`](crate::http::is_transport_failure)) | 14 UNAVAILABLE | none |
/// | anything else | 2 UNKNOWN | none |
///
/// Use it through [`RejectionResponseLayer::grpc`](crate::http::RejectionResponseLayer::grpc).
pub fn grpc_rejection_response<B: Default>(err: &(dyn Error + 'static)) -> Response<B> {
    let (status, pushback) = match ErrorKind::of(err) {
        ErrorKind::CircuitOpen => (
            14u16,
            find_in_chain::<CircuitOpen>(err).map(|o| o.retry_in()),
        ),
        ErrorKind::BudgetExhausted | ErrorKind::BulkheadFull | ErrorKind::Throttled => (14, None),
        #[cfg(feature = "rate-limit")]
        ErrorKind::RateLimited => (
            8,
            find_in_chain::<crate::rate_limit::RateLimited>(err).map(|r| r.retry_after()),
        ),
        ErrorKind::Timeout => (4, None),
        _ => match find_in_chain::<RetryAfterTooLong>(err) {
            Some(too_long) => (14, Some(too_long.retry_after())),
            None if find_in_chain::<Overloaded>(err).is_some() || is_transport_failure(err) => {
                (14, None)
            }
            None => (2, None),
        },
    };
    let mut response = Response::new(B::default());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(status));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(&err.to_string())) {
        headers.insert("grpc-message", message);
    }
    if let Some(wait) = pushback {
        headers.insert("grpc-retry-pushback-ms", whole_millis(wait));
    }
    response
}

/// `wait` in whole milliseconds, rounded up.
fn whole_millis(wait: Duration) -> HeaderValue {
    let ms = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    HeaderValue::from(ms)
}

/// `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII, and `%`
/// itself (gRPC over HTTP/2, "Responses").
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxError;

    fn answer(err: BoxError) -> Response<()> {
        grpc_rejection_response(&*err)
    }

    #[test]
    fn each_kind_has_its_status_and_pushback() {
        let open = answer(Box::new(CircuitOpen::new(Duration::from_micros(
            12_500_001,
        ))));
        assert_eq!(open.status(), 200);
        assert_eq!(open.headers()["content-type"], "application/grpc");
        assert_eq!(open.headers()["grpc-status"], "14");
        assert_eq!(open.headers()["grpc-retry-pushback-ms"], "12501");
        let budget = answer(Box::new(crate::retry::BudgetExhausted::new("x")));
        assert_eq!(budget.headers()["grpc-status"], "14");
        assert!(budget.headers().get("grpc-retry-pushback-ms").is_none());
        let timeout = answer(Box::new(tower::timeout::error::Elapsed::new()));
        assert_eq!(timeout.headers()["grpc-status"], "4");
        #[cfg(feature = "rate-limit")]
        {
            let limited = answer(Box::new(crate::rate_limit::RateLimited::new(
                Duration::from_millis(1_200),
            )));
            assert_eq!(limited.headers()["grpc-status"], "8");
            assert_eq!(limited.headers()["grpc-retry-pushback-ms"], "1200");
        }
        let throttled = answer(Box::new(crate::throttle::Throttled::new(100, 10, 0.8)));
        assert_eq!(throttled.headers()["grpc-status"], "14");
        assert!(throttled.headers().get("grpc-retry-pushback-ms").is_none());
        let shed = answer(Box::new(Overloaded::new()));
        assert_eq!(shed.headers()["grpc-status"], "14");
        let reset = answer(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(reset.headers()["grpc-status"], "14");
        let other = answer("naïve 100%".into());
        assert_eq!(other.headers()["grpc-status"], "2");
        assert_eq!(other.headers()["grpc-message"], "na%C3%AFve 100%25");
    }
}
