use tower_layer::Layer;

use std::sync::Arc;

use super::breaker::CircuitBreaker;
use super::service::{BreakerLanes, CircuitBreakerService};
use crate::classify::DefaultClassifier;

/// Puts a [`CircuitBreaker`] in front of a service.
///
/// Every service this layer builds, and every clone of those services, shares the layer's one
/// breaker: a layer is one circuit. For independent circuits (one per dependency), build one
/// breaker, and so one layer, per dependency.
///
/// The layer allocates the handles its services' calls hold the breaker by (one per core, rounded up
/// to a power of two, at most 8, 256 bytes each; see the [module docs](super#memory)) once, when it is made: build
/// the layer once, not per connection. Cloning the layer, and building a service with it,
/// allocates nothing (one reference count).
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    lanes: Arc<BreakerLanes>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer for `breaker`, with the default classifier (`Ok` is a success, `Err` a failure).
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            lanes: BreakerLanes::new(breaker),
            classifier: DefaultClassifier,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Replaces the classifier: any [`Classify`](crate::classify::Classify), such as a closure
    /// `Fn(&Result<Response, Error>) -> Outcome` over the inner service's own types. It is
    /// cloned into every response future, so keep it cheap to clone (closures usually are).
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            lanes: self.lanes,
            classifier,
        }
    }

    /// The breaker this layer shares.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.lanes.breaker()
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::with_lanes(inner, self.lanes.clone(), self.classifier.clone())
    }
}

impl<C> std::fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", self.breaker())
            .finish_non_exhaustive()
    }
}
