use std::fmt;

use tower_layer::Layer;

use super::observe::{FallbackEvent, Listener};
use super::select::Fallback;
use super::service::{ErrorOnly, FallbackService, WithRequest};
use crate::error::{BoxError, ErrorKind};
use crate::retry::ByClone;

/// Answers the selected errors of a service with a fallback service.
///
/// The fallback is a `Service<(Req, BoxError)>` (made from a closure by
/// [`fallback_fn`](super::fallback_fn), or `tower::service_fn(|(req, err)| ..)`) returning
/// the inner service's `Response`: it gets the original request and the error. Its own error
/// is the call's error. With [`error_only`](Self::error_only) it is a `Service<BoxError>`,
/// and the request is not copied.
///
/// The selection and listener methods are [`Fallback`]'s (see there for the default: refusals
/// and timeouts). The fallback service, the selection and the request copier are cloned into
/// every service the layer builds; the fallback service is cloned again for every call, so
/// keep it cheap to clone.
#[derive(Clone)]
pub struct FallbackLayer<F, R = WithRequest<ByClone>> {
    policy: Fallback,
    fallback: F,
    keep: R,
}

impl<F> FallbackLayer<F> {
    /// Answers the default selection (refusals and timeouts) with `fallback`, which gets a
    /// copy of each request, made with `Clone`.
    pub const fn new(fallback: F) -> Self {
        Self::with_policy(Fallback::new(), fallback)
    }

    pub(super) const fn with_policy(policy: Fallback, fallback: F) -> Self {
        FallbackLayer {
            policy,
            fallback,
            keep: WithRequest(ByClone),
        }
    }
}

impl<F> FallbackLayer<F, ErrorOnly> {
    /// Answers the default selection with `fallback`, a `Service<BoxError>` that gets only the
    /// error: nothing is copied, for requests that are not `Clone` or fallbacks that do not
    /// need them.
    pub const fn error_only(fallback: F) -> Self {
        FallbackLayer {
            policy: Fallback::new(),
            fallback,
            keep: ErrorOnly,
        }
    }
}

impl<F, R> FallbackLayer<F, R> {
    fn map_policy(self, f: impl FnOnce(Fallback) -> Fallback) -> Self {
        FallbackLayer {
            policy: f(self.policy),
            ..self
        }
    }

    /// Answers errors of `kind` (see [`Fallback::on`]).
    pub fn on(self, kind: ErrorKind) -> Self {
        self.map_policy(|p| p.on(kind))
    }

    /// Answers seawall's refusals (see [`Fallback::on_refusals`]).
    pub fn on_refusals(self) -> Self {
        self.map_policy(Fallback::on_refusals)
    }

    /// Answers every error (see [`Fallback::on_any_error`]).
    pub fn on_any_error(self) -> Self {
        self.map_policy(Fallback::on_any_error)
    }

    /// Answers every error for which `predicate` holds (see [`Fallback::when`]).
    pub fn when(self, predicate: impl Fn(&BoxError) -> bool + Send + Sync + 'static) -> Self {
        self.map_policy(|p| p.when(predicate))
    }

    /// Adds a listener, called each time the fallback answers (see [`Fallback::on_fallback`]).
    pub fn on_fallback(self, f: impl Fn(&FallbackEvent<'_>) + Send + Sync + 'static) -> Self {
        self.map_policy(|p| p.on_fallback(f))
    }

    /// Adds a [`Listener`] for every [`Event`](super::Event) (see [`Fallback::listener`]).
    pub fn listener(self, listener: impl Listener) -> Self {
        self.map_policy(|p| p.listener(listener))
    }

    /// Names the policy (see [`Fallback::name`]).
    pub fn name(self, name: impl Into<std::sync::Arc<str>>) -> Self {
        self.map_policy(|p| p.name(name))
    }

    /// Replaces how requests are copied for the fallback: any
    /// [`CloneRequest`](crate::retry::CloneRequest), such as `|req: &Req| -> Option<Req>`.
    /// A request it cannot copy is not answered by the fallback: its error is returned.
    pub fn clone_request<R2>(self, clone_request: R2) -> FallbackLayer<F, WithRequest<R2>> {
        FallbackLayer {
            policy: self.policy,
            fallback: self.fallback,
            keep: WithRequest(clone_request),
        }
    }

    /// The policy: which errors are answered.
    pub const fn policy(&self) -> &Fallback {
        &self.policy
    }
}

impl<S, F: Clone, R: Clone> Layer<S> for FallbackLayer<F, R> {
    type Service = FallbackService<S, F, R>;

    fn layer(&self, inner: S) -> Self::Service {
        FallbackService::new(
            inner,
            self.policy.clone(),
            self.fallback.clone(),
            self.keep.clone(),
        )
    }
}

impl<F, R: fmt::Debug> fmt::Debug for FallbackLayer<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("policy", &self.policy)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}
