use std::fmt;

use tower_layer::Layer;

use super::service::BulkheadService;
use super::slots::Bulkhead;

/// Puts a [`Bulkhead`] in front of a service.
///
/// Every service this layer builds, and every clone of those services, shares the layer's
/// one bulkhead: the bound is on all of their calls together. For independent bounds (one
/// per dependency), build one bulkhead, and so one layer, per dependency. Cloning the layer
/// and building a service with it allocate nothing (one reference count).
#[derive(Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer for `bulkhead`.
    pub const fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }

    /// The bulkhead this layer shares.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}

impl fmt::Debug for BulkheadLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadLayer")
            .field("bulkhead", &self.bulkhead)
            .finish()
    }
}
