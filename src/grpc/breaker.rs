//! A circuit breaker for gRPC that also reads statuses sent at the end of a stream.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::classify::{grpc_status, Code, GrpcBreakerClassifier};
use crate::circuit_breaker::{CircuitBreaker, Permit};
use crate::classify::Outcome;
use crate::error::BoxError;

/// A circuit breaker for gRPC calls that records each call's status wherever it arrives: in
/// the response headers (a Trailers-Only response, how servers answer most errors) at once,
/// or in the trailers at the end of the response stream, when the body reaches them.
///
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) with a [`GrpcBreakerClassifier`]
/// classifies a response when its head arrives, so a stream that ends with INTERNAL counts as
/// a success there; this layer holds the call's permit in the response body until the
/// status comes. A body that ends without a status (a broken stream) or fails is a failure;
/// a body dropped before its end (the caller lost interest) records nothing, like a
/// cancelled call. A half-open probe is settled by the response head (a reply that commits
/// is the answer a probe asks for), so a long stream never holds the breaker half-open.
///
/// The response body becomes a [`GrpcStatusBody`]; tonic accepts it as is.
///
/// ```
/// use seawall::circuit_breaker::CircuitBreaker;
/// use seawall::grpc::{GrpcBreakerClassifier, GrpcBreakerLayer};
///
/// let breaker = CircuitBreaker::builder().failure_threshold(3).build().expect("valid");
/// let layer = GrpcBreakerLayer::new(breaker).classifier(GrpcBreakerClassifier::new());
/// // `ServiceBuilder::new().layer(layer).service(tonic_channel)`
/// # drop(layer);
/// ```
#[derive(Clone, Debug)]
pub struct GrpcBreakerLayer {
    breaker: CircuitBreaker,
    classifier: GrpcBreakerClassifier,
}

impl GrpcBreakerLayer {
    /// Calls go through `breaker`, classified by [`GrpcBreakerClassifier::new`].
    pub fn new(breaker: CircuitBreaker) -> Self {
        GrpcBreakerLayer {
            breaker,
            classifier: GrpcBreakerClassifier::new(),
        }
    }

    /// Which codes and errors count as failures.
    pub fn classifier(mut self, classifier: GrpcBreakerClassifier) -> Self {
        self.classifier = classifier;
        self
    }
}

impl<S> Layer<S> for GrpcBreakerLayer {
    type Service = GrpcBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcBreaker {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier,
        }
    }
}

/// The service of [`GrpcBreakerLayer`].
#[derive(Clone, Debug)]
pub struct GrpcBreaker<S> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: GrpcBreakerClassifier,
}

impl<S> GrpcBreaker<S> {
    /// The breaker in front of the inner service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

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

impl<S, Req, B> Service<Req> for GrpcBreaker<S>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: Into<BoxError> + 'static,
{
    type Response = Response<GrpcStatusBody<B>>;
    type Error = BoxError;
    type Future = GrpcBreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let state = match self.breaker.try_acquire() {
            Ok(permit) => Admission::Admitted {
                future: self.inner.call(req),
                permit: Some(permit),
            },
            Err(open) => Admission::Rejected {
                open: Some(Box::new(open)),
            },
        };
        GrpcBreakerFuture {
            state,
            classifier: self.classifier,
        }
    }
}

pin_project! {
    /// The response future of [`GrpcBreaker`].
    pub struct GrpcBreakerFuture<F> {
        #[pin]
        state: Admission<F>,
        classifier: GrpcBreakerClassifier,
    }
}

pin_project! {
    #[project = AdmissionProj]
    enum Admission<F> {
        Admitted { #[pin] future: F, permit: Option<Permit> },
        Rejected { open: Option<BoxError> },
    }
}

/// Whether the status of `response` is still to come, in the trailers: an HTTP 200 without
/// `grpc-status` in its headers.
fn status_in_trailers<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::OK && grpc_status(response.headers()).is_none()
}

impl<F, B, E> Future for GrpcBreakerFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError> + 'static,
{
    type Output = Result<Response<GrpcStatusBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let classifier = *this.classifier;
        match this.state.project() {
            AdmissionProj::Rejected { open } => Poll::Ready(Err(open
                .take()
                .unwrap_or_else(|| "polled after completion".into()))),
            AdmissionProj::Admitted { future, permit } => {
                let result = ready!(future.poll(cx));
                let Some(permit) = permit.take() else {
                    return Poll::Ready(Err("polled after completion".into()));
                };
                let pending = match &result {
                    // A half-open probe is settled by the head: the dependency answered and
                    // committed to a reply, which is what a probe asks. Holding its slot
                    // until the trailers would keep the breaker half-open, refusing every
                    // other call, for as long as a stream lasts.
                    Ok(response) if status_in_trailers(response) && permit.is_probe() => {
                        permit.record(Outcome::Success);
                        None
                    }
                    Ok(response) if status_in_trailers(response) => Some(permit),
                    _ => {
                        permit.record(crate::classify::outcome_of(&classifier, &result));
                        None
                    }
                };
                Poll::Ready(match result {
                    Ok(response) => Ok(response.map(|body| GrpcStatusBody {
                        body,
                        permit: pending,
                        classifier,
                    })),
                    Err(e) => Err(e.into()),
                })
            }
        }
    }
}

impl<F> fmt::Debug for GrpcBreakerFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBreakerFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// A gRPC response body that records its call's status in the breaker when the trailers
    /// arrive (see [`GrpcBreakerLayer`]). Frames pass through unchanged.
    pub struct GrpcStatusBody<B> {
        #[pin]
        body: B,
        // The call's permit, while its status is still to come.
        permit: Option<Permit>,
        classifier: GrpcBreakerClassifier,
    }
}

impl<B> GrpcStatusBody<B> {
    /// Whether the call's status is still to be recorded.
    pub fn is_pending(&self) -> bool {
        self.permit.is_some()
    }
}

impl<B: Body> Body for GrpcStatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if this.permit.is_some() {
            let outcome = match &frame {
                Some(Ok(frame)) => frame
                    .trailers_ref()
                    // No `grpc-status` in the trailers: the stream is broken (gRPC over
                    // HTTP/2 requires it), as UNKNOWN.
                    .map(|t| {
                        this.classifier
                            .outcome_for_code(grpc_status(t).unwrap_or(Code::Unknown))
                    }),
                // The stream failed, or ended without trailers: no status, a failure.
                Some(Err(_)) | None => Some(Outcome::Failure),
            };
            if let Some(outcome) = outcome {
                if let Some(permit) = this.permit.take() {
                    permit.record(outcome);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        // While the status is still to come, say "not yet": a consumer that trusted the
        // inner body's end would stop polling, and a reply that ended without its status
        // would never be recorded as the failure it is.
        self.permit.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> fmt::Debug for GrpcStatusBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStatusBody")
            .field("pending", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};
    use http_body_util::{BodyExt, StreamBody};
    use tower::{service_fn, ServiceExt};

    type Frames =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

    fn stream(status: Option<&'static str>) -> Frames {
        let mut frames = vec![Ok(Frame::data(Bytes::from_static(b"message")))];
        if let Some(s) = status {
            let mut t = HeaderMap::new();
            t.insert("grpc-status", HeaderValue::from_static(s));
            frames.push(Ok(Frame::trailers(t)));
        }
        StreamBody::new(futures::stream::iter(frames))
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::builder()
            .failure_threshold(2)
            .build()
            .unwrap()
    }

    async fn call(breaker: &CircuitBreaker, status: Option<&'static str>, read: bool) {
        let svc =
            GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(move |_: ()| async move {
                Ok::<_, BoxError>(Response::new(stream(status)))
            }));
        let response = svc.oneshot(()).await.unwrap();
        assert!(response.body().is_pending());
        if read {
            let _ = response.into_body().collect().await;
        }
    }

    #[tokio::test]
    async fn a_status_in_the_trailers_is_recorded_at_the_end_of_the_stream() {
        let b = breaker();
        call(&b, Some("13"), true).await; // INTERNAL
        assert_eq!(b.snapshot().consecutive_failures, 1);
        call(&b, Some("0"), true).await;
        assert_eq!(b.snapshot().consecutive_failures, 0);
        call(&b, Some("3"), true).await; // INVALID_ARGUMENT: ignored
        assert_eq!(b.snapshot().consecutive_failures, 0);
        call(&b, None, true).await; // no trailers: broken stream
        call(&b, Some("14"), true).await;
        assert_eq!(b.state(), crate::circuit_breaker::State::Open);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_records_nothing() {
        let b = breaker();
        call(&b, Some("13"), false).await;
        call(&b, Some("13"), false).await;
        assert_eq!(b.snapshot().consecutive_failures, 0);
        assert_eq!(b.snapshot().calls, 0);
    }

    #[tokio::test]
    async fn a_trailers_only_response_is_recorded_at_once() {
        let b = breaker();
        let svc = GrpcBreakerLayer::new(b.clone()).layer(service_fn(|_: ()| async {
            let mut r = Response::new(stream(None));
            r.headers_mut()
                .insert("grpc-status", HeaderValue::from_static("14"));
            Ok::<_, BoxError>(r)
        }));
        let response = svc.clone().oneshot(()).await.unwrap();
        assert!(!response.body().is_pending());
        assert_eq!(b.snapshot().consecutive_failures, 1);
        drop(svc.clone().oneshot(()).await.unwrap());
        let err = svc.oneshot(()).await.unwrap_err();
        assert_eq!(crate::ErrorKind::of(&*err), crate::ErrorKind::CircuitOpen);
    }
}
