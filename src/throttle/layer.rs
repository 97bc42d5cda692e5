use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::ledger::AdaptiveThrottle;
use super::service::{ThrottleLanes, ThrottleService};
use crate::classify::DefaultClassifier;

/// Puts an [`AdaptiveThrottle`] in front of a service.
///
/// Every service this layer builds, and every clone of those services, shares the layer's
/// one throttle: one window of requests and accepts. For independent windows (one per
/// dependency), build one throttle, and so one layer, per dependency.
///
/// The layer allocates the handles its services' calls hold the throttle by (one per core,
/// rounded up to a power of two, at most 8, 256 bytes each) once, when it is made: build the
/// layer once, not per connection. Cloning the layer, and building a service with it,
/// allocates nothing (one reference count).
#[derive(Clone)]
pub struct ThrottleLayer<C = DefaultClassifier> {
    lanes: Arc<ThrottleLanes>,
    classifier: C,
}

impl ThrottleLayer {
    /// A layer for `throttle`, with the default classifier (`Ok` is an accept, `Err` a
    /// rejection by the backend).
    pub fn new(throttle: AdaptiveThrottle) -> Self {
        ThrottleLayer {
            lanes: ThrottleLanes::new(throttle),
            classifier: DefaultClassifier,
        }
    }
}

impl<C> ThrottleLayer<C> {
    /// Replaces the classifier, which tells what the backend accepted: any
    /// [`Classify`](crate::classify::Classify) over the inner service's own types, where
    /// `Failure` is a rejection and `Success` and `Ignored` are accepts. It is cloned into
    /// every response future, so keep it cheap to clone. Over HTTP,
    /// `seawall::http::HttpRetryClassifier` fits: its failures (429, 502, 503, 504, 408 and
    /// transport failures) are the overload signals; anything else the backend answered is
    /// an accept.
    pub fn classifier<C2>(self, classifier: C2) -> ThrottleLayer<C2> {
        ThrottleLayer {
            lanes: self.lanes,
            classifier,
        }
    }

    /// The throttle this layer shares.
    pub fn throttle(&self) -> &AdaptiveThrottle {
        self.lanes.throttle()
    }
}

impl<S, C: Clone> Layer<S> for ThrottleLayer<C> {
    type Service = ThrottleService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ThrottleService::with_lanes(inner, self.lanes.clone(), self.classifier.clone())
    }
}

impl<C> fmt::Debug for ThrottleLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleLayer")
            .field("throttle", self.throttle())
            .finish_non_exhaustive()
    }
}
