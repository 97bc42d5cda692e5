//! Rejections answered as HTTP responses (the server side).

use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use tower::load_shed::error::Overloaded;

use super::classify::is_transport_failure;
use crate::circuit_breaker::CircuitOpen;
use crate::error::{BoxError, ErrorKind};
use crate::retry::RetryAfterTooLong;

/// The response that answers `err`.
///
/// The server side: seawall's rejections answered as HTTP responses, so an axum router
/// needs no hand-written `HandleErrorLayer`.
///
/// | error ([`ErrorKind`]) | response |
/// |---|---|
/// | [`CircuitOpen`] | 503 Service Unavailable, `Retry-After`: the time to the next probe in whole seconds, rounded up (at least 1) |
/// | [`RetryAfterTooLong`] | 503, `Retry-After`: the wait the dependency asked for, rounded up |
/// | [`ErrorKind::BudgetExhausted`], [`ErrorKind::BulkheadFull`], [`ErrorKind::Throttled`] | 503, no `Retry-After` |
/// | `RateLimited` (feature `rate-limit`) | 429 Too Many Requests, `Retry-After`: the time to the next free slot, rounded up |
/// | [`ErrorKind::Timeout`] | 504 Gateway Timeout |
/// | tower's `Overloaded` (`LoadShed`: the service was not ready) | 503, no `Retry-After` |
/// | a transport failure calling a dependency ([`is_transport_failure`](super::is_transport_failure): refused, reset, closed) | 502 Bad Gateway |
/// | anything else | 500 Internal Server Error |
///
/// Status codes as RFC 9110 defines them (sections 15.6.4 and 15.6.5; `Retry-After`: 10.2.3).
/// The body is empty (`B::default()`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use seawall::circuit_breaker::CircuitBreaker;
/// use seawall::http::RejectionResponseLayer;
/// use seawall::BoxError;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// let breaker = CircuitBreaker::builder().failure_threshold(1).build().expect("valid");
/// let svc = ServiceBuilder::new()
///     .layer(RejectionResponseLayer::new())
///     .layer(breaker.layer())
///     .service(service_fn(|_: http::Request<String>| async {
///         Err::<http::Response<String>, BoxError>("database down".into())
///     }));
/// let req = || http::Request::new(String::new());
/// // The handler's own error: 500. It opened the circuit: 503 with a Retry-After.
/// assert_eq!(svc.clone().oneshot(req()).await.unwrap().status(), 500);
/// let rejected = svc.oneshot(req()).await.unwrap();
/// assert_eq!(rejected.status(), 503);
/// assert_eq!(rejected.headers()["retry-after"], "30");
/// # }
/// ```
pub fn rejection_response<B: Default>(err: &(dyn Error + 'static)) -> Response<B> {
    let (status, retry_after) = match ErrorKind::of(err) {
        ErrorKind::CircuitOpen => (
            StatusCode::SERVICE_UNAVAILABLE,
            find_in_chain::<CircuitOpen>(err).map(|open| open.retry_in()),
        ),
        ErrorKind::BudgetExhausted | ErrorKind::BulkheadFull | ErrorKind::Throttled => {
            (StatusCode::SERVICE_UNAVAILABLE, None)
        }
        #[cfg(feature = "rate-limit")]
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            find_in_chain::<crate::rate_limit::RateLimited>(err).map(|r| r.retry_after()),
        ),
        ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        _ => match find_in_chain::<RetryAfterTooLong>(err) {
            Some(too_long) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(too_long.retry_after()),
            ),
            None if find_in_chain::<Overloaded>(err).is_some() => {
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
            None if is_transport_failure(err) => (StatusCode::BAD_GATEWAY, None),
            None => (StatusCode::INTERNAL_SERVER_ERROR, None),
        },
    };
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if let Some(wait) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, whole_seconds(wait));
    }
    response
}

/// `wait` in whole seconds, rounded up, at least 1: a client told 0 would come back at once.
fn whole_seconds(wait: Duration) -> HeaderValue {
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    HeaderValue::from(secs.max(1))
}

/// The first error of type `T` in `err`'s chain.
pub(crate) fn find_in_chain<'a, T: Error + 'static>(
    err: &'a (dyn Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(err);
    for _ in 0..crate::error::MAX_CHAIN {
        let e = current?;
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        current = e.source();
    }
    None
}

/// Answers the inner service's errors with [`rejection_response`] (or, made with
/// [`grpc`](Self::grpc), with `grpc_rejection_response`), so the stack's error type is
/// `Infallible`, as axum's `Router::route_service` and `Router::layer` want.
///
/// On an axum route, give the breaker inside it an
/// [`HttpBreakerClassifier`](super::HttpBreakerClassifier): axum handlers answer their own
/// errors as `Ok` responses (a 500), which the default classifier counts as successes.
///
/// The one-line alternative, inside axum's own `HandleErrorLayer`:
/// `HandleErrorLayer::new(|e: BoxError| async move { rejection_response::<Body>(&*e) })`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectionResponseLayer {
    protocol: Protocol,
}

/// How a rejection is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Protocol {
    #[default]
    Http,
    #[cfg(feature = "grpc")]
    Grpc,
}

impl Protocol {
    fn answer<B: Default>(self, err: &(dyn Error + 'static)) -> Response<B> {
        match self {
            Protocol::Http => rejection_response(err),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => crate::grpc::grpc_rejection_response(err),
        }
    }
}

impl RejectionResponseLayer {
    /// Answers with HTTP statuses ([`rejection_response`]).
    pub const fn new() -> Self {
        RejectionResponseLayer {
            protocol: Protocol::Http,
        }
    }

    /// Answers with gRPC statuses (`grpc_rejection_response`: UNAVAILABLE with
    /// `grpc-retry-pushback-ms` for an open circuit). Feature `grpc`.
    #[cfg(feature = "grpc")]
    pub const fn grpc() -> Self {
        RejectionResponseLayer {
            protocol: Protocol::Grpc,
        }
    }
}

impl<S> Layer<S> for RejectionResponseLayer {
    type Service = RejectionResponse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RejectionResponse {
            inner,
            protocol: self.protocol,
            not_ready: None,
        }
    }
}

/// The service of [`RejectionResponseLayer`].
#[derive(Debug)]
pub struct RejectionResponse<S> {
    inner: S,
    protocol: Protocol,
    // The inner service's `poll_ready` error, answered by the next call.
    not_ready: Option<BoxError>,
}

impl<S: Clone> Clone for RejectionResponse<S> {
    /// A clone polls its own readiness: a pending `poll_ready` error stays with the original.
    fn clone(&self) -> Self {
        RejectionResponse {
            inner: self.inner.clone(),
            protocol: self.protocol,
            not_ready: None,
        }
    }
}

impl<S> RejectionResponse<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, B> Service<Req> for RejectionResponse<S>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Default,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = RejectionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.not_ready.is_some() {
            return Poll::Ready(Ok(()));
        }
        // tower's convention: a `poll_ready` error means the inner service is gone for good.
        // The error type here is `Infallible`, so the error is kept and answered, as a
        // response, by the next call, which does not reach the inner service.
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                self.not_ready = Some(e.into());
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let state = match self.not_ready.take() {
            Some(error) => Answer::NotReady { error: Some(error) },
            None => Answer::Called {
                future: self.inner.call(req),
            },
        };
        RejectionFuture {
            state,
            protocol: self.protocol,
        }
    }
}

pin_project! {
    /// The response future of [`RejectionResponse`].
    pub struct RejectionFuture<F> {
        #[pin]
        state: Answer<F>,
        protocol: Protocol,
    }
}

pin_project! {
    #[project = AnswerProj]
    enum Answer<F> {
        Called { #[pin] future: F },
        NotReady { error: Option<BoxError> },
    }
}

impl<F, B, E> Future for RejectionFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Default,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let error = match this.state.project() {
            AnswerProj::Called { future } => match ready!(future.poll(cx)) {
                Ok(response) => return Poll::Ready(Ok(response)),
                Err(e) => e.into(),
            },
            AnswerProj::NotReady { error } => match error.take() {
                Some(e) => e,
                // Polled again after completion: stays pending, like `futures`' `Fuse`.
                None => return Poll::Pending,
            },
        };
        Poll::Ready(Ok(this.protocol.answer(&*error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::timeout::error::Elapsed;

    fn answer(err: BoxError) -> Response<()> {
        rejection_response(&*err)
    }

    #[test]
    fn each_kind_has_its_status() {
        let open = answer(Box::new(CircuitOpen::new(Duration::from_millis(12_500))));
        assert_eq!(open.status(), 503);
        assert_eq!(open.headers()[header::RETRY_AFTER], "13");
        let half_open = answer(Box::new(CircuitOpen::new(Duration::ZERO)));
        assert_eq!(half_open.headers()[header::RETRY_AFTER], "1");
        let budget = answer(Box::new(crate::retry::BudgetExhausted::new("boom")));
        assert_eq!(budget.status(), 503);
        assert!(budget.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(answer(Box::new(Elapsed::new())).status(), 504);
        assert_eq!(answer("boom".into()).status(), 500);
        assert_eq!(answer(Box::new(Overloaded::new())).status(), 503);
        let full = answer(Box::new(crate::bulkhead::BulkheadFull::new(
            2,
            Duration::ZERO,
        )));
        assert_eq!(full.status(), 503);
        #[cfg(feature = "rate-limit")]
        {
            let limited = answer(Box::new(crate::rate_limit::RateLimited::new(
                Duration::from_millis(1_200),
            )));
            assert_eq!(limited.status(), 429);
            assert_eq!(limited.headers()[header::RETRY_AFTER], "2");
        }
        let throttled = answer(Box::new(crate::throttle::Throttled::new(100, 10, 0.8)));
        assert_eq!(throttled.status(), 503);
        assert!(throttled.headers().get(header::RETRY_AFTER).is_none());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(answer(Box::new(refused)).status(), 502);
        let too_long = answer(Box::new(RetryAfterTooLong::new(
            Duration::from_secs(120),
            Duration::from_secs(30),
            None,
        )));
        assert_eq!(too_long.status(), 503);
        assert_eq!(too_long.headers()[header::RETRY_AFTER], "120");
    }
}
