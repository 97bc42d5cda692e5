//! The fallback policy: which errors it answers, who hears of it, and the bare call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::observe::{Event, FallbackEvent, Listener, Listeners, OnFallback};
use crate::error::{BoxError, ErrorKind};

// One bit per kind. `ErrorKind` is non-exhaustive: `ANY` sets every bit, so a kind added
// later is answered by `on_any_error` too.
const fn bit(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::CircuitOpen => 1 << 0,
        ErrorKind::Timeout => 1 << 1,
        ErrorKind::BudgetExhausted => 1 << 2,
        ErrorKind::RateLimited => 1 << 3,
        ErrorKind::BulkheadFull => 1 << 4,
        ErrorKind::Inner => 1 << 5,
        ErrorKind::Throttled => 1 << 6,
    }
}

const REFUSALS: u8 = bit(ErrorKind::CircuitOpen)
    | bit(ErrorKind::BudgetExhausted)
    | bit(ErrorKind::RateLimited)
    | bit(ErrorKind::BulkheadFull)
    | bit(ErrorKind::Throttled);
/// The default: the dependency gave no answer (it was not asked, or did not answer in time).
const DEFAULT: u8 = REFUSALS | bit(ErrorKind::Timeout);
const ANY: u8 = u8::MAX;

type Predicate = Arc<dyn Fn(&BoxError) -> bool + Send + Sync>;

/// Which errors a fallback answers, and who hears of it: the part of a fallback that knows
/// nothing of tower. Used bare with [`Fallback::call`], or through a
/// [`FallbackLayer`](super::FallbackLayer) made with [`Fallback::layer`].
///
/// # Selection
///
/// | method | answers |
/// |---|---|
/// | (none: the default) | refusals and timeouts: [`ErrorKind::is_refusal`] or [`ErrorKind::Timeout`], the cases where the dependency gave no answer |
/// | [`on(kind)`](Self::on) | errors of that [`ErrorKind`] (as told by [`ErrorKind::of`]) |
/// | [`on_refusals()`](Self::on_refusals) | every kind for which [`ErrorKind::is_refusal`] holds |
/// | [`on_any_error()`](Self::on_any_error) | every error, the inner service's own included |
/// | [`when(predicate)`](Self::when) | every error for which `predicate(&err)` holds |
///
/// The first of these calls replaces the default; later ones add to it (an error is answered
/// when any of them selects it). The default leaves out the inner service's own errors
/// ([`ErrorKind::Inner`]): a "not found" or a validation error is an answer the caller should
/// see, not one to paper over. Polly falls back on every exception by default; seawall's
/// default is narrower on purpose, and `on_any_error()` is Polly's.
///
/// Only errors are answered: a response, even one a classifier calls a failure (an HTTP
/// 503), is returned as it is. To fall back on one, turn it into an error below the
/// fallback (a `map_result` over the inner service), and select that error.
///
/// # Observation
///
/// Each time the fallback answers a call, and each time the fallback itself fails, the
/// policy's [`Listener`]s hear of it (see [`Event`]); [`name`](Self::name) names the policy in
/// `tracing` events (feature `tracing`).
///
/// Clones share the predicate, the name and the listeners (one reference count).
#[derive(Clone)]
pub struct Fallback {
    kinds: u8,
    /// Whether a selection was made: the first one replaces the default.
    chosen: bool,
    /// Absent unless a predicate, a name or a listener was given: the default policy is
    /// copied into every call for free.
    shared: Option<Arc<Shared>>,
}

#[derive(Clone, Default)]
struct Shared {
    predicate: Option<Predicate>,
    name: Option<Arc<str>>,
    listeners: Listeners,
}

impl Default for Fallback {
    /// The default selection: refusals and timeouts.
    fn default() -> Self {
        Fallback::new()
    }
}

impl Fallback {
    /// A policy with the default selection (refusals and timeouts) and no listener.
    pub const fn new() -> Self {
        Fallback {
            kinds: DEFAULT,
            chosen: false,
            shared: None,
        }
    }

    fn choose(mut self, kinds: u8) -> Self {
        if !self.chosen {
            self.kinds = 0;
            self.chosen = true;
        }
        self.kinds |= kinds;
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(self.shared.get_or_insert_with(Default::default))
    }

    /// Answers errors of `kind`.
    pub fn on(self, kind: ErrorKind) -> Self {
        self.choose(bit(kind))
    }

    /// Answers seawall's refusals: an open circuit, an exhausted retry budget, a rate limit,
    /// a full bulkhead ([`ErrorKind::is_refusal`]).
    pub fn on_refusals(self) -> Self {
        self.choose(REFUSALS)
    }

    /// Answers every error, the inner service's own included.
    pub fn on_any_error(self) -> Self {
        self.choose(ANY)
    }

    /// Answers every error for which `predicate` holds (downcast it to tell its type). Each
    /// call replaces the previous predicate.
    pub fn when(self, predicate: impl Fn(&BoxError) -> bool + Send + Sync + 'static) -> Self {
        let mut this = self.choose(0);
        this.shared_mut().predicate = Some(Arc::new(predicate));
        this
    }

    /// Adds a listener, called each time the fallback is about to answer, before it is
    /// called. Listeners run in the order they were added. A closure that hears only
    /// [`Event::Used`]; [`listener`](Self::listener) hears every [`Event`].
    pub fn on_fallback(self, f: impl Fn(&FallbackEvent<'_>) + Send + Sync + 'static) -> Self {
        self.listener(OnFallback(f))
    }

    /// Adds a [`Listener`]: it hears every [`Event`] (the fallback used, the fallback
    /// failed), in the order listeners were added. Without any, nothing is emitted.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.shared_mut().listeners.push(Arc::new(listener));
        self
    }

    /// A name, carried by `tracing` events and the `Debug` output.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.shared_mut().name = Some(name.into());
        self
    }

    /// The policy's name, if one was given.
    pub(super) fn given_name(&self) -> Option<&str> {
        self.shared.as_ref().and_then(|s| s.name.as_deref())
    }

    pub(super) fn listeners(&self) -> &[Arc<dyn Listener>] {
        self.shared.as_ref().map_or(&[], |s| &s.listeners[..])
    }

    /// Whether errors of `kind` are answered whatever the predicate says.
    pub const fn selects(&self, kind: ErrorKind) -> bool {
        self.kinds & bit(kind) != 0
    }

    /// Whether `error` is answered; if so, tells the listeners, and returns its kind.
    /// The one decision the bare call and the layer share.
    pub(super) fn decide(&self, error: &BoxError) -> Option<ErrorKind> {
        let kind = ErrorKind::of(&**error);
        let by_predicate = || {
            self.shared
                .as_ref()
                .and_then(|s| s.predicate.as_ref())
                .is_some_and(|p| p(error))
        };
        if !self.selects(kind) && !by_predicate() {
            return None;
        }
        self.emit(&Event::Used(FallbackEvent { kind, error }));
        Some(kind)
    }

    /// Runs `primary`; if it fails with a selected error, answers with `fallback(error)`
    /// instead. Errors are boxed, as the layer boxes them, so both decide alike; a fallback's
    /// own error is the call's error. The closures capture the request themselves, so
    /// nothing is copied.
    ///
    /// ```
    /// use seawall::circuit_breaker::CircuitOpen;
    /// use seawall::fallback::Fallback;
    /// use seawall::BoxError;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let fallback = Fallback::new(); // refusals and timeouts
    /// let answer = fallback
    ///     .call(
    ///         || async { Err::<&str, BoxError>(CircuitOpen::new(Duration::from_secs(1)).into()) },
    ///         |_err| async { Ok::<_, BoxError>("cached") },
    ///     )
    ///     .await;
    /// assert_eq!(answer.unwrap(), "cached");
    ///
    /// // The inner service's own error is not answered by default.
    /// let answer = fallback
    ///     .call(
    ///         || async { Err::<&str, BoxError>("bad request".into()) },
    ///         |_err| async { Ok::<_, BoxError>("cached") },
    ///     )
    ///     .await;
    /// assert_eq!(answer.unwrap_err().to_string(), "bad request");
    /// # }
    /// ```
    pub async fn call<P, PFut, G, GFut, T, E, E2>(
        &self,
        primary: P,
        fallback: G,
    ) -> Result<T, BoxError>
    where
        P: FnOnce() -> PFut,
        PFut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        G: FnOnce(BoxError) -> GFut,
        GFut: Future<Output = Result<T, E2>>,
        E2: Into<BoxError>,
    {
        let error = match primary().await {
            Ok(response) => return Ok(response),
            Err(e) => e.into(),
        };
        let Some(kind) = self.decide(&error) else {
            return Err(error);
        };
        fallback(error).await.map_err(|e| {
            let e = e.into();
            self.failed(kind, &e);
            e
        })
    }

    /// A layer that answers the selected errors of a service with `fallback`, a
    /// `Service<(Req, BoxError)>` (see [`FallbackLayer`](super::FallbackLayer)).
    pub fn layer<F>(&self, fallback: F) -> super::FallbackLayer<F> {
        super::FallbackLayer::with_policy(self.clone(), fallback)
    }
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<ErrorKind> = [
            ErrorKind::CircuitOpen,
            ErrorKind::Timeout,
            ErrorKind::BudgetExhausted,
            ErrorKind::RateLimited,
            ErrorKind::BulkheadFull,
            ErrorKind::Inner,
        ]
        .into_iter()
        .filter(|k| self.selects(*k))
        .collect();
        let shared = self.shared.as_deref();
        f.debug_struct("Fallback")
            .field("name", &self.given_name())
            .field("kinds", &kinds)
            .field("predicate", &shared.is_some_and(|s| s.predicate.is_some()))
            .field("listeners", &shared.map_or(0, |s| s.listeners.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit_breaker::CircuitOpen;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const KINDS: [ErrorKind; 6] = [
        ErrorKind::CircuitOpen,
        ErrorKind::Timeout,
        ErrorKind::BudgetExhausted,
        ErrorKind::RateLimited,
        ErrorKind::BulkheadFull,
        ErrorKind::Inner,
    ];

    #[test]
    fn default_selects_refusals_and_timeouts_not_inner_errors() {
        let f = Fallback::new();
        for kind in KINDS {
            let expected = kind.is_refusal() || kind == ErrorKind::Timeout;
            assert_eq!(f.selects(kind), expected, "{kind}");
        }
    }

    #[test]
    fn the_first_selection_replaces_the_default_and_later_ones_add() {
        let f = Fallback::new()
            .on(ErrorKind::CircuitOpen)
            .on(ErrorKind::Inner);
        let chosen: Vec<_> = KINDS.into_iter().filter(|k| f.selects(*k)).collect();
        assert_eq!(chosen, [ErrorKind::CircuitOpen, ErrorKind::Inner]);
        let f = Fallback::new().on_refusals();
        assert!(!f.selects(ErrorKind::Timeout));
        assert!(KINDS.iter().all(|k| f.selects(*k) == k.is_refusal()));
        let f = Fallback::new().on_any_error();
        assert!(KINDS.iter().all(|k| f.selects(*k)));
    }

    #[test]
    fn a_predicate_alone_selects_only_what_it_matches() {
        let f = Fallback::new().when(|e| e.to_string() == "teapot");
        assert!(KINDS.iter().all(|k| !f.selects(*k)));
        assert_eq!(f.decide(&"teapot".into()), Some(ErrorKind::Inner));
        assert_eq!(f.decide(&"kettle".into()), None);
        let open: BoxError = CircuitOpen::new(Duration::ZERO).into();
        assert_eq!(f.decide(&open), None);
    }

    #[test]
    fn listeners_hear_the_kind_only_when_the_fallback_answers() {
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        let f = Fallback::new().on_fallback(move |e| {
            assert_eq!(e.kind(), ErrorKind::CircuitOpen);
            h.fetch_add(1, Ordering::Relaxed);
        });
        let open: BoxError = CircuitOpen::new(Duration::ZERO).into();
        assert_eq!(f.decide(&open), Some(ErrorKind::CircuitOpen));
        assert_eq!(f.decide(&"inner".into()), None);
        assert_eq!(heard.load(Ordering::Relaxed), 1);
        // A listener does not change the selection.
        assert!(!f.selects(ErrorKind::Inner) && f.selects(ErrorKind::Timeout));
    }
}
