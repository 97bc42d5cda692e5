//! The builder, which fixes the order, and the layer it builds.

use std::fmt;
use std::time::Duration;

use tower::timeout::TimeoutLayer;
use tower_layer::{Identity, Layer};

use super::check::{check, Part};
use super::error::StackError;
use crate::bulkhead::{Bulkhead, BulkheadLayer};
use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
use crate::error::ConfigError;
use crate::hedge::{DefaultHedgeClassifier, Hedge, HedgeLayer};
use crate::retry::{ByClone, Idempotent, KnowsIdempotency};
use crate::retry::{Retry, RetryLayer};

/// What the checks read, kept beside the layers (which hide their settings behind type
/// parameters): the parts set, in the builder's fixed order.
#[derive(Clone, Debug, Default)]
struct Plan {
    timeout: Option<Duration>,
    fallback: bool,
    retry: Option<Retry>,
    hedge: Option<Hedge>,
    /// The hedge's request copier decides which requests may be sent twice.
    hedge_knows_idempotency: bool,
    breaker: bool,
    bulkhead: Option<Bulkhead>,
    attempt_timeout: Option<Duration>,
}

impl Plan {
    fn check(&self) -> Result<(), StackError> {
        if self.hedge.is_some() && !self.hedge_knows_idempotency {
            return Err(StackError::HedgeOfAnyRequest);
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Zero { field: "timeout" }.into());
        }
        if self.attempt_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Zero {
                field: "attempt_timeout",
            }
            .into());
        }
        // The rate limiter is outermost and no rule reads it.
        let parts: Vec<Part<'_>> = [
            self.timeout.map(Part::Timeout),
            self.fallback.then_some(Part::Fallback),
            self.retry.as_ref().map(Part::Retry),
            self.hedge.as_ref().map(Part::Hedge),
            self.breaker.then_some(Part::Breaker),
            self.bulkhead.as_ref().map(Part::Bulkhead),
            self.attempt_timeout.map(Part::Timeout),
        ]
        .into_iter()
        .flatten()
        .collect();
        check(&parts)
    }
}

/// Builds a [`StackLayer`] in the recommended order, whatever order its methods are called
/// in, and checks the composition at [`build`](Self::build). Every part is optional; a part
/// set twice keeps the last.
///
/// | part, outermost first | set with | default |
/// |---|---|---|
/// | rate limit | `rate_limit` (feature `rate-limit`) | none |
/// | overall timeout (tower's `Timeout`) | [`timeout`](Self::timeout) | none |
/// | fallback | [`fallback`](Self::fallback) | none |
/// | retry | [`retry`](Self::retry), [`retry_layer`](Self::retry_layer) | none |
/// | hedging | [`hedge`](Self::hedge), [`hedge_layer`](Self::hedge_layer) | none |
/// | circuit breaker | [`breaker`](Self::breaker), [`breaker_layer`](Self::breaker_layer) | none |
/// | bulkhead | [`bulkhead`](Self::bulkhead) | none |
/// | per-attempt timeout (tower's `Timeout`) | [`attempt_timeout`](Self::attempt_timeout) | none |
///
/// The type parameters are the layers, outermost first (`tower_layer::Identity` for a part
/// not set); they change as parts are set, and are never spelled out by hand.
#[must_use]
pub struct Builder<
    RL = Identity,
    T = Identity,
    F = Identity,
    R = Identity,
    H = Identity,
    B = Identity,
    BH = Identity,
    AT = Identity,
> {
    layers: Layers<RL, T, F, R, H, B, BH, AT>,
    plan: Plan,
}

#[derive(Clone, Debug)]
struct Layers<RL, T, F, R, H, B, BH, AT> {
    rate_limit: RL,
    timeout: T,
    fallback: F,
    retry: R,
    hedge: H,
    breaker: B,
    bulkhead: BH,
    attempt_timeout: AT,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with no part set: its stack is the inner service itself.
    pub fn new() -> Self {
        Builder {
            layers: Layers {
                rate_limit: Identity::new(),
                timeout: Identity::new(),
                fallback: Identity::new(),
                retry: Identity::new(),
                hedge: Identity::new(),
                breaker: Identity::new(),
                bulkhead: Identity::new(),
                attempt_timeout: Identity::new(),
            },
            plan: Plan::default(),
        }
    }
}

impl<RL, T, F, R, H, B, BH, AT> Builder<RL, T, F, R, H, B, BH, AT> {
    /// A rate limit, outermost: a refused call costs nothing further down, and waits for a
    /// slot (its `max_wait`) are not cut by the overall timeout.
    #[cfg(feature = "rate-limit")]
    pub fn rate_limit(
        self,
        limiter: crate::rate_limit::RateLimiter,
    ) -> Builder<crate::rate_limit::RateLimitLayer, T, F, R, H, B, BH, AT> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: limiter.layer(),
                timeout: l.timeout,
                fallback: l.fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: self.plan,
        }
    }

    /// The overall timeout of a call, retries and their waits included (tower's `Timeout`).
    /// It sits outside the fallback: a call it cuts is not answered by the fallback, which
    /// answers what retry and the breaker give up on (timed-out attempts included).
    pub fn timeout(self, timeout: Duration) -> Builder<RL, TimeoutLayer, F, R, H, B, BH, AT> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: TimeoutLayer::new(timeout),
                fallback: l.fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                timeout: Some(timeout),
                ..self.plan
            },
        }
    }

    /// A fallback layer, outside retry and the breaker, so it answers what they give up on:
    /// any `Layer`, usually a [`FallbackLayer`](crate::fallback::FallbackLayer).
    pub fn fallback<F2>(self, fallback: F2) -> Builder<RL, T, F2, R, H, B, BH, AT> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                fallback: true,
                ..self.plan
            },
        }
    }

    /// A retry with this policy, the default classifier and requests copied with `Clone`.
    pub fn retry(self, retry: Retry) -> Builder<RL, T, F, RetryLayer, H, B, BH, AT> {
        self.retry_layer(retry.layer())
    }

    /// A retry layer with a classifier or a request copier of its own (for example the
    /// `http` feature's); its policy is checked like [`retry`](Self::retry)'s.
    pub fn retry_layer<C, CR>(
        self,
        layer: RetryLayer<C, CR>,
    ) -> Builder<RL, T, F, RetryLayer<C, CR>, H, B, BH, AT> {
        let l = self.layers;
        let retry = layer.retry().clone();
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback: l.fallback,
                retry: layer,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                retry: Some(retry),
                ..self.plan
            },
        }
    }

    /// Hedging inside retry and outside the breaker, with the default classifier (the first
    /// `Ok` wins) and requests copied with `Clone`, **declared** safe to send twice
    /// ([`Idempotent`]`(ByClone)`): every slow request is hedged. Use it only for a request
    /// type whose every request may be repeated; otherwise use
    /// [`hedge_layer`](Self::hedge_layer) with a request copier that tells them apart (see
    /// [what the builder checks of hedging](super#hedging)).
    ///
    /// With a retry, the hedge must draw from the retry's budget:
    /// `Hedge::builder().budget(retry.budget().cloned().unwrap())` (see
    /// [`StackError::HedgeBudgetNotShared`]).
    pub fn hedge(
        self,
        hedge: Hedge,
    ) -> Builder<RL, T, F, R, HedgeLayer<DefaultHedgeClassifier, Idempotent>, B, BH, AT> {
        self.hedge_layer(hedge.layer().clone_request(Idempotent(ByClone)))
    }

    /// A hedge layer with a classifier or a request copier of its own (for example the
    /// `http` feature's `HttpRequests`, which hedges only RFC 9110's idempotent methods and
    /// requests carrying an `Idempotency-Key`); its policy is checked like
    /// [`hedge`](Self::hedge)'s. In the stack, the classifier sees the breaker's answer: the
    /// inner service's response as it is, and a `BoxError`.
    ///
    /// The copier must say which requests may be sent twice ([`KnowsIdempotency`]): a layer
    /// left with [`ByClone`] is refused at `build()`
    /// ([`StackError::HedgeOfAnyRequest`]); declare them all safe with
    /// [`Idempotent`]`(ByClone)` where that is true.
    pub fn hedge_layer<C, CR: KnowsIdempotency>(
        self,
        layer: HedgeLayer<C, CR>,
    ) -> Builder<RL, T, F, R, HedgeLayer<C, CR>, B, BH, AT> {
        let l = self.layers;
        let hedge = layer.hedge().clone();
        let hedge_knows_idempotency = layer.request_copier().knows_idempotency();
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback: l.fallback,
                retry: l.retry,
                hedge: layer,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                hedge: Some(hedge),
                hedge_knows_idempotency,
                ..self.plan
            },
        }
    }

    /// A circuit breaker inside retry and hedging (each attempt, hedges included, is admitted
    /// and recorded on its own, and an open circuit ends the call at once), with the default
    /// classifier.
    pub fn breaker(
        self,
        breaker: CircuitBreaker,
    ) -> Builder<RL, T, F, R, H, CircuitBreakerLayer, BH, AT> {
        self.breaker_layer(breaker.layer())
    }

    /// A circuit breaker layer with a classifier of its own. In the stack, the classifier
    /// sees the inner service's response as it is, and its error boxed when a bulkhead or an
    /// attempt timeout sits between (downcast it).
    pub fn breaker_layer<C>(
        self,
        layer: CircuitBreakerLayer<C>,
    ) -> Builder<RL, T, F, R, H, CircuitBreakerLayer<C>, BH, AT> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback: l.fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: layer,
                bulkhead: l.bulkhead,
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                breaker: true,
                ..self.plan
            },
        }
    }

    /// A bulkhead inside the breaker: its refusal never counts against the dependency, and an
    /// open circuit refuses a call before it takes a slot.
    pub fn bulkhead(self, bulkhead: Bulkhead) -> Builder<RL, T, F, R, H, B, BulkheadLayer, AT> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback: l.fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: bulkhead.layer(),
                attempt_timeout: l.attempt_timeout,
            },
            plan: Plan {
                bulkhead: Some(bulkhead),
                ..self.plan
            },
        }
    }

    /// The timeout of each attempt (tower's `Timeout`), innermost: inside the breaker, so a
    /// timed-out attempt counts as a failure, and inside the bulkhead, so it bounds how long
    /// an attempt holds a slot.
    pub fn attempt_timeout(
        self,
        timeout: Duration,
    ) -> Builder<RL, T, F, R, H, B, BH, TimeoutLayer> {
        let l = self.layers;
        Builder {
            layers: Layers {
                rate_limit: l.rate_limit,
                timeout: l.timeout,
                fallback: l.fallback,
                retry: l.retry,
                hedge: l.hedge,
                breaker: l.breaker,
                bulkhead: l.bulkhead,
                attempt_timeout: TimeoutLayer::new(timeout),
            },
            plan: Plan {
                attempt_timeout: Some(timeout),
                ..self.plan
            },
        }
    }

    /// Checks the composition and builds the layer; refuses, with the [`StackError`] naming
    /// the problem, a composition known to misbehave (see the [module docs](super#the-checks)).
    // One type parameter per part is the design: the stack is the plain nesting of its layers.
    #[allow(clippy::type_complexity)]
    pub fn build(self) -> Result<StackLayer<RL, T, F, R, H, B, BH, AT>, StackError> {
        self.plan.check()?;
        Ok(StackLayer {
            layers: self.layers,
        })
    }
}

impl<RL, T, F, R, H, B, BH, AT> fmt::Debug for Builder<RL, T, F, R, H, B, BH, AT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("timeout", &self.plan.timeout)
            .field("fallback", &self.plan.fallback)
            .field("retry", &self.plan.retry)
            .field("hedge", &self.plan.hedge)
            .field("breaker", &self.plan.breaker)
            .field("bulkhead", &self.plan.bulkhead)
            .field("attempt_timeout", &self.plan.attempt_timeout)
            .finish_non_exhaustive()
    }
}

/// A checked stack of layers in the recommended order, built by [`Builder::build`]: rate
/// limit, overall timeout, fallback, retry, hedging, circuit breaker, bulkhead, per-attempt
/// timeout, then the inner service.
///
/// The service it builds is exactly what `ServiceBuilder` would build from the same layers in
/// that order (no wrapper, no boxing); its error is `BoxError` once any part is set. Cloning
/// the layer shares every part's state (one circuit, one budget, one set of slots).
#[derive(Clone)]
pub struct StackLayer<
    RL = Identity,
    T = Identity,
    F = Identity,
    R = Identity,
    H = Identity,
    B = Identity,
    BH = Identity,
    AT = Identity,
> {
    layers: Layers<RL, T, F, R, H, B, BH, AT>,
}

impl<S, RL, T, F, R, H, B, BH, AT> Layer<S> for StackLayer<RL, T, F, R, H, B, BH, AT>
where
    AT: Layer<S>,
    BH: Layer<AT::Service>,
    B: Layer<BH::Service>,
    H: Layer<B::Service>,
    R: Layer<H::Service>,
    F: Layer<R::Service>,
    T: Layer<F::Service>,
    RL: Layer<T::Service>,
{
    type Service = RL::Service;

    fn layer(&self, inner: S) -> Self::Service {
        let l = &self.layers;
        let svc = l.attempt_timeout.layer(inner);
        let svc = l.bulkhead.layer(svc);
        let svc = l.breaker.layer(svc);
        let svc = l.hedge.layer(svc);
        let svc = l.retry.layer(svc);
        let svc = l.fallback.layer(svc);
        let svc = l.timeout.layer(svc);
        l.rate_limit.layer(svc)
    }
}

impl<RL, T, F, R, H, B, BH, AT> fmt::Debug for StackLayer<RL, T, F, R, H, B, BH, AT>
where
    RL: fmt::Debug,
    T: fmt::Debug,
    F: fmt::Debug,
    R: fmt::Debug,
    H: fmt::Debug,
    B: fmt::Debug,
    BH: fmt::Debug,
    AT: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackLayer")
            .field("rate_limit", &self.layers.rate_limit)
            .field("timeout", &self.layers.timeout)
            .field("fallback", &self.layers.fallback)
            .field("retry", &self.layers.retry)
            .field("hedge", &self.layers.hedge)
            .field("breaker", &self.layers.breaker)
            .field("bulkhead", &self.layers.bulkhead)
            .field("attempt_timeout", &self.layers.attempt_timeout)
            .finish()
    }
}
