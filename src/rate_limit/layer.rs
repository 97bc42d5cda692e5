use std::fmt;
use std::hash::Hash;

use tower_layer::Layer;

use super::keyed::KeyedRateLimiter;
use super::limiter::RateLimiter;
use super::service::{KeyedRateLimitService, RateLimitService};

/// Puts a [`RateLimiter`] in front of a service.
///
/// Every service this layer builds, and every clone of those services, shares the layer's one
/// limit: an axum router that clones its service per connection is still limited as a whole.
/// (tower's own `RateLimit` gives each clone a limit of its own.) Cloning the layer and building
/// a service allocate nothing (one reference count).
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer for `limiter`.
    pub const fn new(limiter: RateLimiter) -> Self {
        RateLimitLayer { limiter }
    }

    /// The limiter this layer shares.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::new(inner, self.limiter.clone())
    }
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.limiter)
            .finish()
    }
}

/// Puts a [`KeyedRateLimiter`] in front of a service: each request is limited by the key a
/// function `Fn(&Request) -> Option<K>` extracts from it (a header, the client's address, an
/// API key); `None` means the request is not limited.
///
/// Every service this layer builds, and all their clones, share the limiter's keys.
#[derive(Clone)]
pub struct KeyedRateLimitLayer<K: Hash + Eq + Clone, F> {
    limiter: KeyedRateLimiter<K>,
    key: F,
}

impl<K: Hash + Eq + Clone, F> KeyedRateLimitLayer<K, F> {
    /// A layer for `limiter`, keying requests with `key`.
    pub const fn new(limiter: KeyedRateLimiter<K>, key: F) -> Self {
        KeyedRateLimitLayer { limiter, key }
    }

    /// The limiter this layer shares.
    pub fn limiter(&self) -> &KeyedRateLimiter<K> {
        &self.limiter
    }
}

impl<S, K: Hash + Eq + Clone, F: Clone> Layer<S> for KeyedRateLimitLayer<K, F> {
    type Service = KeyedRateLimitService<S, K, F>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimitService::new(inner, self.limiter.clone(), self.key.clone())
    }
}

impl<K: Hash + Eq + Clone, F> fmt::Debug for KeyedRateLimitLayer<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}
