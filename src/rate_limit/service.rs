use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::keyed::KeyedRateLimiter;
use super::limiter::{Decision, RateLimiter};
use crate::error::BoxError;

/// A service behind a [`RateLimiter`]. Built by [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` forwards to the inner service and never fails, nor waits, for the limit (an
/// error there tells a balancer or a buffer the service is gone for good, and a slot taken in
/// `poll_ready` would be lost if the caller never calls). The check happens in `call`: a call
/// over the limit gets a ready [`RateLimited`](super::RateLimited) error (boxed) without
/// reaching the inner service; with `max_wait`, a call whose slot frees in time waits in its
/// response future and then calls the inner service.
///
/// Waiting needs the inner service after `call` has returned, so the service is `Clone`: a
/// call that waits takes the ready service with it and leaves a clone in its place (the
/// clone is polled ready before the next call, as usual). A call that does not wait clones
/// nothing.
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimitService<S> {
    /// Wraps `inner` behind `limiter`.
    pub const fn new(inner: S, limiter: RateLimiter) -> Self {
        RateLimitService { inner, limiter }
    }

    /// The limiter in front of the inner service.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
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

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.decide() {
            Decision::Admit => ResponseFuture::called(self.inner.call(req)),
            Decision::Refuse(limited) => ResponseFuture::refused(limited),
            Decision::Wait { wait, deadline } => {
                let limiter = self.limiter.clone();
                ResponseFuture::waiting(
                    take_ready(&mut self.inner),
                    req,
                    wait,
                    Box::new(move || limiter.decide_after_wait(deadline)),
                )
            }
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish()
    }
}

/// A service behind a [`KeyedRateLimiter`]. Built by
/// [`KeyedRateLimitLayer`](super::KeyedRateLimitLayer); behaves as [`RateLimitService`], with
/// the limit of the request's key (a request without a key is not limited).
#[derive(Clone)]
pub struct KeyedRateLimitService<S, K: Hash + Eq + Clone, F> {
    inner: S,
    limiter: KeyedRateLimiter<K>,
    key: F,
}

impl<S, K: Hash + Eq + Clone, F> KeyedRateLimitService<S, K, F> {
    /// Wraps `inner` behind `limiter`, keying requests with `key`.
    pub const fn new(inner: S, limiter: KeyedRateLimiter<K>, key: F) -> Self {
        KeyedRateLimitService {
            inner,
            limiter,
            key,
        }
    }

    /// The limiter in front of the inner service.
    pub fn limiter(&self) -> &KeyedRateLimiter<K> {
        &self.limiter
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
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

impl<S, K, F, Req> Service<Req> for KeyedRateLimitService<S, K, F>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&Req) -> Option<K>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let Some(key) = (self.key)(&req) else {
            return ResponseFuture::called(self.inner.call(req));
        };
        match self.limiter.decide(&key) {
            Decision::Admit => ResponseFuture::called(self.inner.call(req)),
            Decision::Refuse(limited) => ResponseFuture::refused(limited),
            Decision::Wait { wait, deadline } => {
                let limiter = self.limiter.clone();
                ResponseFuture::waiting(
                    take_ready(&mut self.inner),
                    req,
                    wait,
                    Box::new(move || limiter.decide_after_wait(&key, deadline)),
                )
            }
        }
    }
}

impl<S: fmt::Debug, K: Hash + Eq + Clone, F> fmt::Debug for KeyedRateLimitService<S, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// The ready service, for a call that waits; a clone stays behind for the next call.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
