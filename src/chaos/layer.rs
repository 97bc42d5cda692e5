//! The tower glue: [`ChaosLayer`] and [`ChaosService`], and what a fault answers with.

use std::fmt;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::future::ChaosFuture;
use super::{Chaos, InjectedFault};
use crate::error::BoxError;

/// What an injected fault answers with, for a service responding `T`.
pub trait Inject<T> {
    /// The answer of a call that fails by injection.
    fn inject(&self) -> Result<T, BoxError>;
}

/// The default answer: an [`InjectedFault`] error.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectError;

impl<T> Inject<T> for InjectError {
    fn inject(&self) -> Result<T, BoxError> {
        Err(Box::new(InjectedFault::new()))
    }
}

/// An error of your own, made by a closure (see [`ChaosLayer::error_with`]).
#[derive(Clone, Copy)]
pub struct InjectErrorWith<F>(F);

impl<T, F: Fn() -> BoxError> Inject<T> for InjectErrorWith<F> {
    fn inject(&self) -> Result<T, BoxError> {
        Err((self.0)())
    }
}

/// A fixed response, made by a closure (see [`ChaosLayer::respond_with`]).
#[derive(Clone, Copy)]
pub struct RespondWith<F>(F);

impl<T, F: Fn() -> T> Inject<T> for RespondWith<F> {
    fn inject(&self) -> Result<T, BoxError> {
        Ok((self.0)())
    }
}

/// A layer injecting a [`Chaos`]'s faults and latency.
#[derive(Clone)]
pub struct ChaosLayer<I = InjectError> {
    chaos: Chaos,
    inject: I,
}

impl ChaosLayer {
    /// Faults answer with [`InjectedFault`].
    pub fn new(chaos: Chaos) -> Self {
        ChaosLayer {
            chaos,
            inject: InjectError,
        }
    }
}

impl<I> ChaosLayer<I> {
    /// Faults answer with the error `f` makes (a `std::io::Error` of kind
    /// `ConnectionReset`, say, to rehearse what a transport failure does to a stack).
    pub fn error_with<F: Fn() -> BoxError>(self, f: F) -> ChaosLayer<InjectErrorWith<F>> {
        ChaosLayer {
            chaos: self.chaos,
            inject: InjectErrorWith(f),
        }
    }

    /// Faults answer with the response `f` makes (an HTTP 503, say): the call succeeds at
    /// the transport level and the classifiers decide what it means.
    pub fn respond_with<F>(self, f: F) -> ChaosLayer<RespondWith<F>> {
        ChaosLayer {
            chaos: self.chaos,
            inject: RespondWith(f),
        }
    }

    /// The `Chaos` deciding.
    pub fn chaos(&self) -> &Chaos {
        &self.chaos
    }
}

impl<S, I: Clone> Layer<S> for ChaosLayer<I> {
    type Service = ChaosService<S, I>;

    fn layer(&self, inner: S) -> Self::Service {
        ChaosService {
            inner,
            chaos: self.chaos.clone(),
            inject: self.inject.clone(),
        }
    }
}

impl<I> fmt::Debug for ChaosLayer<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosLayer")
            .field("chaos", &self.chaos)
            .finish_non_exhaustive()
    }
}

/// The service of [`ChaosLayer`].
#[derive(Clone)]
pub struct ChaosService<S, I = InjectError> {
    inner: S,
    chaos: Chaos,
    inject: I,
}

impl<S, I> ChaosService<S, I> {
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

impl<S, I, Req> Service<Req> for ChaosService<S, I>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    I: Inject<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ChaosFuture<S::Future, S::Response>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let decision = self.chaos.decide();
        if decision.fault {
            ChaosFuture::injected(self.inject.inject(), decision.latency)
        } else {
            ChaosFuture::called(self.inner.call(req), decision.latency)
        }
    }
}

impl<S: fmt::Debug, I> fmt::Debug for ChaosService<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosService")
            .field("inner", &self.inner)
            .field("chaos", &self.chaos)
            .finish_non_exhaustive()
    }
}
