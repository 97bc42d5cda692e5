use tower_layer::Layer;

use super::breaker::CircuitBreaker;
use super::service::CircuitBreakerService;
use crate::classify::DefaultClassifier;

/// Puts a [`CircuitBreaker`] in front of a service.
///
/// Every service this layer builds, and every clone of those services, shares the layer's one
/// breaker: a layer is one circuit. For independent circuits (one per dependency), build one
/// breaker, and so one layer, per dependency.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer for `breaker`, with the default classifier (`Ok` is a success, `Err` a failure).
    pub const fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
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
            breaker: self.breaker,
            classifier,
        }
    }

    /// The breaker this layer shares.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
