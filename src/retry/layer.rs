use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::policy::{ByClone, DefaultRetryClassifier, Retry};
use super::service::{PolicyLanes, RetryService};

/// Retries the calls of a service through a [`Retry`] policy.
///
/// Every service this layer builds, and every clone of those, shares the layer's one policy
/// and budget. A second policy has a budget of its own, unless it is given the same one
/// with [`Builder::budget`](super::Builder::budget).
///
/// The layer allocates the handles its services' calls hold the policy by (one per core, rounded up
/// to a power of two, at most 8, 256 bytes each; see the [module docs](super#memory)) once, when it is made: build
/// the layer once, not per connection. Cloning the layer, and building a service with it,
/// allocates nothing (one reference count).
#[derive(Clone)]
pub struct RetryLayer<C = DefaultRetryClassifier, R = ByClone> {
    lanes: Arc<PolicyLanes>,
    classifier: C,
    clone_request: R,
}

impl RetryLayer {
    /// A layer for `retry`, with the default classifier and requests copied by `Clone`.
    pub fn new(retry: Retry) -> Self {
        RetryLayer {
            lanes: PolicyLanes::new(retry),
            classifier: DefaultRetryClassifier,
            clone_request: ByClone,
        }
    }
}

impl<C, R> RetryLayer<C, R> {
    /// Replaces the classifier: any [`Classify`](crate::classify::Classify) over the inner
    /// service's own types; [`Outcome::Failure`](crate::Outcome::Failure) is retryable, and
    /// its [`retry_after`](crate::Classify::retry_after) replaces the backoff. It is cloned
    /// into every response future, so keep it cheap to clone.
    pub fn classifier<C2>(self, classifier: C2) -> RetryLayer<C2, R> {
        RetryLayer {
            lanes: self.lanes,
            classifier,
            clone_request: self.clone_request,
        }
    }

    /// Replaces how requests are copied for another attempt: any
    /// [`CloneRequest`](super::CloneRequest), such as `|req: &Req| -> Option<Req>`. A request
    /// it cannot copy is sent once.
    pub fn clone_request<R2>(self, clone_request: R2) -> RetryLayer<C, R2> {
        RetryLayer {
            lanes: self.lanes,
            classifier: self.classifier,
            clone_request,
        }
    }

    /// The policy this layer shares.
    pub fn retry(&self) -> &Retry {
        self.lanes.retry()
    }
}

impl<S, C: Clone, R: Clone> Layer<S> for RetryLayer<C, R> {
    type Service = RetryService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::with_lanes(
            inner,
            self.lanes.clone(),
            self.classifier.clone(),
            self.clone_request.clone(),
        )
    }
}

impl<C: fmt::Debug, R: fmt::Debug> fmt::Debug for RetryLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("retry", self.retry())
            .field("classifier", &self.classifier)
            .field("clone_request", &self.clone_request)
            .finish()
    }
}
