use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::policy::{DefaultHedgeClassifier, Hedge};
use super::service::{HedgeService, PolicyLanes};
use crate::retry::ByClone;

/// Hedges the slow calls of a service through a [`Hedge`] policy.
///
/// Every service this layer builds, and every clone of those, shares the layer's one policy,
/// latency histogram and budget. The layer allocates the handles its services' calls hold
/// the policy by once, when it is made: build the layer once, not per connection.
#[derive(Clone)]
pub struct HedgeLayer<C = DefaultHedgeClassifier, R = ByClone> {
    lanes: Arc<PolicyLanes>,
    classifier: C,
    clone_request: R,
}

impl HedgeLayer {
    /// A layer for `hedge`, with the default classifier (the first `Ok` wins) and requests
    /// copied by `Clone`.
    pub fn new(hedge: Hedge) -> Self {
        HedgeLayer {
            lanes: PolicyLanes::new(hedge),
            classifier: DefaultHedgeClassifier,
            clone_request: ByClone,
        }
    }
}

impl<C, R> HedgeLayer<C, R> {
    /// Replaces the classifier: any [`Classify`](crate::classify::Classify) over the inner
    /// service's own types. The first answer it does not call
    /// [`Outcome::Failure`](crate::Outcome::Failure) wins.
    pub fn classifier<C2>(self, classifier: C2) -> HedgeLayer<C2, R> {
        HedgeLayer {
            lanes: self.lanes,
            classifier,
            clone_request: self.clone_request,
        }
    }

    /// Replaces how requests are copied for a hedge, and which may be hedged at all: any
    /// [`CloneRequest`](crate::retry::CloneRequest) (with the `http` feature,
    /// `seawall::http::HttpRequests`: only idempotent methods). A request it calls not
    /// idempotent, or cannot copy, is sent once and never hedged.
    pub fn clone_request<R2>(self, clone_request: R2) -> HedgeLayer<C, R2> {
        HedgeLayer {
            lanes: self.lanes,
            classifier: self.classifier,
            clone_request,
        }
    }

    /// The policy this layer shares.
    pub fn hedge(&self) -> &Hedge {
        self.lanes.hedge()
    }

    /// How this layer copies requests, and decides which may be hedged.
    pub fn request_copier(&self) -> &R {
        &self.clone_request
    }
}

impl<S, C: Clone, R: Clone> Layer<S> for HedgeLayer<C, R> {
    type Service = HedgeService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        HedgeService::with_lanes(
            inner,
            self.lanes.clone(),
            self.classifier.clone(),
            self.clone_request.clone(),
        )
    }
}

impl<C: fmt::Debug, R: fmt::Debug> fmt::Debug for HedgeLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeLayer")
            .field("hedge", self.hedge())
            .field("classifier", &self.classifier)
            .field("clone_request", &self.clone_request)
            .finish()
    }
}
