use std::fmt;
use std::future::Future;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::select::Fallback;
use crate::error::BoxError;
use crate::retry::CloneRequest;

/// How a fallback service keeps what its fallback needs of a request: a copy of the request
/// ([`WithRequest`]), or nothing ([`ErrorOnly`]).
///
/// With [`WithRequest`] the fallback is a `Service<(Req, BoxError)>`; with [`ErrorOnly`], a
/// `Service<BoxError>`.
pub trait KeepRequest<Req> {
    /// What is kept of the request while the inner service runs.
    type Kept;
    /// What the fallback service is called with.
    type FallbackRequest;

    /// Keeps what the fallback needs, before the request goes to the inner service. `None`
    /// when the request cannot be copied: that call's errors are then returned as they are.
    fn keep(&self, req: &Req) -> Option<Self::Kept>;

    /// The fallback's request, from what was kept and the error it answers.
    fn fallback_request(kept: Self::Kept, error: BoxError) -> Self::FallbackRequest;
}

/// The fallback gets a copy of the request, made by `R`: any [`CloneRequest`], such as
/// [`ByClone`](crate::retry::ByClone) (the default) or a closure `Fn(&Req) -> Option<Req>`.
/// Made by [`FallbackLayer::new`](super::FallbackLayer::new) and
/// [`FallbackLayer::clone_request`](super::FallbackLayer::clone_request).
///
/// A wrapper rather than a blanket implementation over every [`CloneRequest`], so that
/// [`ErrorOnly`] can be a [`KeepRequest`] too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WithRequest<R>(pub R);

impl<R: CloneRequest<Req>, Req> KeepRequest<Req> for WithRequest<R> {
    type Kept = Req;
    type FallbackRequest = (Req, BoxError);

    // `CloneRequest::is_idempotent` is not asked: the fallback does not send the request
    // again to the same dependency, it answers in its place.
    #[inline]
    fn keep(&self, req: &Req) -> Option<Req> {
        self.0.clone_request(req)
    }

    #[inline]
    fn fallback_request(kept: Req, error: BoxError) -> (Req, BoxError) {
        (kept, error)
    }
}

/// The fallback gets only the error, never the request: nothing is copied. For requests
/// that cannot be copied, or fallbacks that do not need them. Made by
/// [`FallbackLayer::error_only`](super::FallbackLayer::error_only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorOnly;

impl<Req> KeepRequest<Req> for ErrorOnly {
    type Kept = ();
    type FallbackRequest = BoxError;

    #[inline]
    fn keep(&self, _: &Req) -> Option<()> {
        Some(())
    }

    #[inline]
    fn fallback_request((): (), error: BoxError) -> BoxError {
        error
    }
}

/// A closure `FnMut(Req, BoxError) -> impl Future<Output = Result<Response, E>>` as a
/// fallback service (always ready). Made by [`fallback_fn`].
#[derive(Clone, Copy)]
pub struct FallbackFn<F> {
    f: F,
}

/// A fallback service from a closure that gets the original request and the error:
/// `fallback_fn(|req, err| async move { ... })`. The closure is cloned into every call (see
/// [`FallbackLayer`](super::FallbackLayer)), so have it capture cheap things (an `Arc`, a
/// channel's sender).
pub fn fallback_fn<F, Req, Fut>(f: F) -> FallbackFn<F>
where
    F: FnMut(Req, BoxError) -> Fut,
{
    FallbackFn { f }
}

impl<F, Req, Fut, T, E> Service<(Req, BoxError)> for FallbackFn<F>
where
    F: FnMut(Req, BoxError) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    #[inline]
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, (req, error): (Req, BoxError)) -> Fut {
        (self.f)(req, error)
    }
}

impl<F> fmt::Debug for FallbackFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackFn").finish_non_exhaustive()
    }
}

/// A service whose selected errors are answered by a fallback service. Built by
/// [`FallbackLayer`](super::FallbackLayer).
///
/// `poll_ready` forwards to the inner service only: the fallback's readiness never holds up
/// the inner service's calls. Its errors are returned as they are (there is no request to
/// fall back for yet). `call` keeps what the fallback needs (a copy of the request, or
/// nothing with [`ErrorOnly`]), sends the request on, and hands a clone of the fallback
/// service to the response future, which readies and calls it only if a selected error comes
/// back.
#[derive(Clone)]
pub struct FallbackService<S, F, R> {
    inner: S,
    fallback: F,
    policy: Fallback,
    keep: R,
}

impl<S, F, R> FallbackService<S, F, R> {
    /// Wraps `inner`, answering the errors `policy` selects with `fallback`; `keep` says what
    /// the fallback gets of the request.
    pub const fn new(inner: S, policy: Fallback, fallback: F, keep: R) -> Self {
        FallbackService {
            inner,
            fallback,
            policy,
            keep,
        }
    }

    /// The policy: which errors are answered.
    pub const fn policy(&self) -> &Fallback {
        &self.policy
    }

    /// A reference to the fallback service.
    pub const fn fallback(&self) -> &F {
        &self.fallback
    }

    /// A reference to the inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, R, Req> Service<Req> for FallbackService<S, F, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    R: KeepRequest<Req>,
    F: Service<R::FallbackRequest, Response = S::Response> + Clone,
    F::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, F, R::Kept, R::FallbackRequest>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let kept = self.keep.keep(&req);
        ResponseFuture::new(
            self.inner.call(req),
            kept,
            self.fallback.clone(),
            self.policy.clone(),
            R::fallback_request,
        )
    }
}

impl<S: fmt::Debug, F: fmt::Debug, R: fmt::Debug> fmt::Debug for FallbackService<S, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackService")
            .field("inner", &self.inner)
            .field("fallback", &self.fallback)
            .field("policy", &self.policy)
            .field("keep", &self.keep)
            .finish()
    }
}
