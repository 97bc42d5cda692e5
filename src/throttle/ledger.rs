//! The throttle: [`AdaptiveThrottle`], a handle to one shared [`Ledger`], the [`Permit`] a
//! call holds, and the one admission decision every path goes through.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::config::{Builder, Config};
use super::error::{CallError, Throttled};
use super::observe::Event;
use super::probability::{draw_rejects, threshold, Counts, BUCKETS};
use super::window::{Settled, Window};
use crate::classify::{Classify, DefaultClassifier, Outcome};
use crate::clock::{duration_to_nanos, Clock};
use crate::sync::{thread_index, Arc, AtomicU64, Lane, Ordering};

/// Client-side adaptive throttling (Google SRE): sheds calls locally, with probability
/// `max(0, (requests − k × accepts) / (requests + 1))` over the last `window`, when the
/// dependency has been rejecting most of them.
///
/// Cloning is cheap (a reference count) and clones share one window; every service built by
/// one [`ThrottleLayer`](super::ThrottleLayer) shares it too. Build one throttle per
/// dependency (per backend, as the SRE book keeps one per client and backend).
///
/// # Memory
///
/// A throttle is its ledger (one allocation: 16 stripes of 128 bytes, the buckets, the
/// configuration and listeners) reached through the handle's lane (a small allocation of its
/// own), all freed when the last handle *and* the last [`Permit`] are dropped: a call in
/// flight keeps its throttle alive and still counts its verdict.
#[derive(Clone)]
pub struct AdaptiveThrottle {
    pub(super) lane: Arc<Lane<Ledger>>,
}

/// What every handle and every permit of one throttle share.
pub(crate) struct Ledger {
    pub(super) window: Window,
    pub(super) clock: Clock,
    /// The seeded sequence's next index, when seeded.
    draws: Option<(u64, AtomicU64)>,
    pub(super) config: Config,
}

impl AdaptiveThrottle {
    /// A builder with the defaults: `k` = 2, a window of 2 minutes.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let bucket_nanos = (duration_to_nanos(config.window) / BUCKETS).max(1);
        let ledger = Ledger {
            window: Window::new(config.k, bucket_nanos),
            clock: config.clock.clone().unwrap_or_default(),
            draws: config.seed.map(|seed| (seed, AtomicU64::new(0))),
            config,
        };
        AdaptiveThrottle {
            lane: Lane::new(Arc::new(ledger)),
        }
    }

    /// The multiplier `k`.
    pub fn k(&self) -> f64 {
        self.lane.config.k
    }

    /// How far back requests and accepts count.
    pub fn window(&self) -> Duration {
        self.lane.config.window
    }

    /// The throttle's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.lane.config.name.as_deref()
    }

    /// Whether two handles share one window.
    pub fn same_throttle(&self, other: &AdaptiveThrottle) -> bool {
        Arc::ptr_eq(self.lane.target(), other.lane.target())
    }

    /// The current rejection probability, as the last settlement published it (one load).
    pub fn probability(&self) -> f64 {
        self.lane.window.probability()
    }

    /// Asks to make one call: a [`Permit`], or [`Throttled`] when the call is shed locally.
    ///
    /// Reads the clock once. While the throttle sheds nothing (the usual case) there is no
    /// draw; while it sheds, one draw decides. Report the backend's verdict with
    /// [`Permit::record`]; a permit dropped without one counts nothing.
    ///
    /// ```
    /// use seawall::clock::ManualClock;
    /// use seawall::throttle::AdaptiveThrottle;
    /// use seawall::Outcome;
    ///
    /// let throttle = AdaptiveThrottle::builder()
    ///     .clock(ManualClock::new())
    ///     .build()
    ///     .expect("valid");
    /// let permit = throttle.try_acquire().expect("a fresh throttle sheds nothing");
    /// permit.record(Outcome::Failure); // the backend rejected it: 1 request, 0 accepts
    /// assert_eq!(throttle.probability(), 0.5); // (1 - 2 × 0) / (1 + 1)
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, Throttled> {
        Self::admit(&self.lane)
    }

    /// The admission decision of every path: a permit holding the throttle by `lane` (a
    /// layered service's calls pass the lane of their thread).
    #[inline(always)]
    pub(super) fn admit(lane: &Arc<Lane<Ledger>>) -> Result<Permit, Throttled> {
        let ledger: &Ledger = lane;
        let now = ledger.clock.now_nanos();
        if ledger.window.needs_settling(now) {
            Self::roll(lane, now);
        }
        let p = ledger.window.probability();
        if p > 0.0 && draw_rejects(ledger.draw(), threshold(p)) {
            return Err(Self::shed(lane, now, p));
        }
        Ok(Permit {
            throttle: AdaptiveThrottle { lane: lane.clone() },
        })
    }

    /// The first call of a new bucket settles the window (old buckets leave it), as does the
    /// first call after a settling caller left counts behind.
    #[cold]
    #[inline(never)]
    fn roll(lane: &Arc<Lane<Ledger>>, now: u64) {
        if let Some(settled) = lane.window.settle(lane.window.epoch(now), Counts::ZERO) {
            Self::announce(lane, &settled);
        }
    }

    /// A local rejection: counted as a request, announced.
    #[cold]
    #[inline(never)]
    fn shed(lane: &Arc<Lane<Ledger>>, now: u64, probability: f64) -> Throttled {
        let settled = lane.window.settle(lane.window.epoch(now), Counts::REJECTED);
        let counts = match settled {
            Some(s) => s.counts,
            None => lane.window.counts(),
        };
        let throttled = Throttled::new(counts.requests, counts.accepts, probability);
        #[cfg(feature = "tracing")]
        tracing::debug!(
            throttle = lane.config.name.as_deref().unwrap_or(""),
            requests = throttled.requests(),
            accepts = throttled.accepts(),
            probability = throttled.probability(),
            "throttle shed a call locally"
        );
        if !lane.config.listeners.is_empty() {
            let handle = AdaptiveThrottle { lane: lane.clone() };
            handle.emit(&Event::Rejected(throttled));
        }
        if let Some(settled) = settled {
            Self::announce(lane, &settled);
        }
        throttled
    }

    /// Tells the listeners (and `tracing`) when a settlement started or stopped shedding.
    fn announce(lane: &Arc<Lane<Ledger>>, settled: &Settled) {
        let (before, after) = (settled.probability_before, settled.probability);
        let event = if before == 0.0 && after > 0.0 {
            Event::SheddingStarted {
                probability: after,
                requests: settled.counts.requests,
                accepts: settled.counts.accepts,
            }
        } else if before > 0.0 && after == 0.0 {
            Event::SheddingStopped
        } else {
            return;
        };
        #[cfg(feature = "tracing")]
        tracing::debug!(
            throttle = lane.config.name.as_deref().unwrap_or(""),
            event = ?event,
            "throttle changed"
        );
        if !lane.config.listeners.is_empty() {
            AdaptiveThrottle { lane: lane.clone() }.emit(&event);
        }
    }

    /// Settles the window now (one clock read) and returns its counts: the last published
    /// ones if another caller is settling.
    pub(super) fn settle(&self) -> Counts {
        let epoch = self.lane.epoch_now();
        match self.lane.window.settle(epoch, Counts::ZERO) {
            Some(settled) => {
                Self::announce(&self.lane, &settled);
                settled.counts
            }
            None => self.lane.window.counts(),
        }
    }

    /// Records a verdict without a permit, as if a call admitted now had ended with it. For
    /// callers that make their own calls and only report; prefer
    /// [`try_acquire`](Self::try_acquire), which also sheds. A verdict that arrives while
    /// the draw would shed a call now is not recorded: the local rejection is counted
    /// instead (one request either way, and an accept only if it was admitted).
    pub fn record(&self, outcome: Outcome) {
        if let Ok(permit) = self.try_acquire() {
            permit.record(outcome);
        }
    }

    /// Runs `f` behind the throttle, with the default classification: `Ok` is an accept,
    /// `Err` a rejection by the backend. A call shed locally does not run `f`. Dropping the
    /// returned future before `f`'s completes counts nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use seawall::throttle::{AdaptiveThrottle, CallError};
    ///
    /// let throttle = AdaptiveThrottle::builder().build().expect("valid");
    /// let r: Result<u32, CallError<&str>> = throttle.call(|| async { Ok(7) }).await;
    /// assert_eq!(r, Ok(7));
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.call_with(&DefaultClassifier, f).await
    }

    /// Like [`call`](Self::call), with a classifier that decides what the backend accepted
    /// (see [`Permit::record`]: `Failure` is a rejection, `Success` and `Ignored` accepts).
    /// One of seawall's refusals from inside the call (an open circuit, a full bulkhead: the
    /// backend was not asked) counts nothing, whatever the classifier says.
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, CallError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let permit = self.try_acquire().map_err(CallError::rejected)?;
        let result = f().await;
        match verdict(classifier, &result) {
            Some(outcome) => permit.record(outcome),
            None => drop(permit),
        }
        result.map_err(CallError::inner)
    }

    /// A layer that puts this throttle in front of a service. See
    /// [`ThrottleLayer`](super::ThrottleLayer).
    pub fn layer(&self) -> super::ThrottleLayer {
        super::ThrottleLayer::new(self.clone())
    }
}

impl fmt::Debug for AdaptiveThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("name", &self.name())
            .field("k", &self.k())
            .field("window", &self.window())
            .field("probability", &self.probability())
            .finish()
    }
}

impl Ledger {
    /// The bucket the clock is in now.
    fn epoch_now(&self) -> u64 {
        self.window.epoch(self.clock.now_nanos())
    }

    /// Random bits for one draw: the seeded sequence, or this thread's generator.
    #[inline]
    fn draw(&self) -> u64 {
        match &self.draws {
            // Relaxed: only the index is shared, and every draw gets a distinct one.
            Some((seed, next)) => mix(seed.wrapping_add(next.fetch_add(1, Ordering::Relaxed))),
            None => thread_draw(),
        }
    }

    /// An accept: dated by a clock read, like a rejection (an accept dated earlier than its
    /// rejections, say at the previous settlement, would leave the window a call's length
    /// early and bias a throttle of slow calls towards shedding). On the stripe while
    /// nothing is shed and the bucket is current; settled at once otherwise, so recovery
    /// lowers the probability for the very next call.
    #[inline(always)]
    fn accept(lane: &Arc<Lane<Ledger>>) {
        let ledger: &Ledger = lane;
        let now = ledger.clock.now_nanos();
        if ledger.window.probability() == 0.0 && !ledger.window.needs_settling(now) {
            if ledger.window.add(Counts::ACCEPTED) {
                Self::settle_now(lane, ledger.window.epoch(now), Counts::ZERO);
            }
        } else {
            Self::settle_now(lane, ledger.window.epoch(now), Counts::ACCEPTED);
        }
    }

    /// A request the backend did not accept: settled at once, dated by a clock read.
    #[cold]
    #[inline(never)]
    fn reject(lane: &Arc<Lane<Ledger>>) {
        Self::settle_now(lane, lane.epoch_now(), Counts::REJECTED);
    }

    #[cold]
    #[inline(never)]
    fn settle_now(lane: &Arc<Lane<Ledger>>, epoch: u64, own: Counts) {
        if let Some(settled) = lane.window.settle(epoch, own) {
            AdaptiveThrottle::announce(lane, &settled);
        }
    }
}

/// Permission to make one call, from [`AdaptiveThrottle::try_acquire`].
///
/// Report what the backend did with [`Permit::record`]. A permit dropped without a verdict
/// (the call was cancelled: an outer timeout, a hedge that lost, a dropped request) counts
/// nothing, neither a request nor an accept: a cancellation says nothing about the backend,
/// as for the circuit breaker. (Put a per-attempt timeout *inside* the throttle, so a call
/// that hangs ends as a rejection, not as a cancellation.)
///
/// A permit keeps its throttle alive: if every handle is dropped while the call runs, the
/// verdict is still counted.
#[must_use = "a permit counts nothing unless `record` is called"]
pub struct Permit {
    throttle: AdaptiveThrottle,
}

impl Permit {
    /// Counts the call's verdict and consumes the permit: [`Outcome::Failure`] is a request
    /// the backend rejected; [`Outcome::Success`] and [`Outcome::Ignored`] are requests it
    /// accepted (it answered: for the throttle, a 404 or a validation error is an accept,
    /// unlike the breaker, where `Ignored` counts for nothing).
    #[inline]
    pub fn record(self, outcome: Outcome) {
        match outcome {
            Outcome::Failure => Ledger::reject(&self.throttle.lane),
            Outcome::Success | Outcome::Ignored => Ledger::accept(&self.throttle.lane),
        }
    }

    /// The throttle that admitted this call.
    pub fn throttle(&self) -> &AdaptiveThrottle {
        &self.throttle
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// What a call's result counts as: the classifier's outcome, or nothing for one of
/// seawall's refusals made further in (an open circuit, a full bulkhead, a rate limit, a
/// nested throttle: the backend was not asked, and counting it as a rejection would keep
/// shedding after the backend recovered, for as long as the window remembers the refusals).
#[inline]
pub(super) fn verdict<C, T, E>(classifier: &C, result: &Result<T, E>) -> Option<Outcome>
where
    C: Classify<T, E> + ?Sized,
    E: 'static,
{
    if crate::classify::never_reached_dependency(result) {
        return None;
    }
    Some(classifier.classify(result))
}

// ===== randomness =====

/// splitmix64's output function: a well-mixed `u64` from a counter.
#[inline]
const fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

thread_local! {
    /// This thread's draw counter; 0 until first used.
    static DRAWS: Cell<u64> = const { Cell::new(0) };
}

/// The next draw of this thread's generator: a counter from a per-process, per-thread
/// start, mixed (no lock, no shared line).
#[inline]
fn thread_draw() -> u64 {
    DRAWS
        .try_with(|cell| {
            let mut n = cell.get();
            if n == 0 {
                n = thread_seed();
            }
            n = n.wrapping_add(1) | 1;
            cell.set(n);
            mix(n)
        })
        // A thread being torn down: any bits will do.
        .unwrap_or_else(|_| mix(thread_index() as u64))
}

/// A start that differs between threads and processes without a system call: std's
/// per-process random hasher keys, and the thread's index.
#[cold]
fn thread_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(thread_index());
    h.finish()
}

#[cfg(all(test, not(seawall_loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn throttle(time: &ManualClock) -> AdaptiveThrottle {
        AdaptiveThrottle::builder()
            .clock(time.clone())
            .window(Duration::from_secs(10))
            .seed(7)
            .build()
            .unwrap()
    }

    #[test]
    fn probability_follows_verdicts_and_a_dropped_permit_counts_nothing() {
        let time = ManualClock::new();
        let t = throttle(&time);
        for _ in 0..4 {
            t.try_acquire().unwrap().record(Outcome::Success);
        }
        drop(t.try_acquire().unwrap());
        assert_eq!(t.probability(), 0.0);
        // 4 accepts: shedding starts past 8 requests.
        for _ in 0..4 {
            t.record(Outcome::Failure);
        }
        assert_eq!(t.probability(), 0.0, "8 requests, 4 accepts: 8 <= 2 × 4");
        t.try_acquire().unwrap().record(Outcome::Failure);
        assert_eq!(t.probability(), 1.0 / 10.0, "(9 - 8) / (9 + 1)");
    }

    #[test]
    fn seeded_draws_repeat() {
        let a: Vec<u64> = {
            let t = throttle(&ManualClock::new());
            (0..4).map(|_| t.lane.draw()).collect()
        };
        let t = throttle(&ManualClock::new());
        let b: Vec<u64> = (0..4).map(|_| t.lane.draw()).collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        assert_ne!(thread_draw(), thread_draw());
    }
}
