//! Keyed limits: one GCRA limit per key, in a store bounded to `max_keys` keys.
//!
//! governor's algorithm runs unchanged over a [`StateStore`] of seawall's own
//! (`BoundedStore`); governor's keyed stores grow with every key ever seen until someone
//! calls `retain_recent`, which a flood of distinct keys outruns (governor issue #171).
//!
//! **What a key costs.** A key's whole state is its *theoretical arrival time* (TAT), one
//! `u64`. A key whose TAT has passed has its whole burst back: it is *idle*, and forgetting it
//! changes no decision (a new key starts exactly there). Only keys that owe time must be
//! remembered.
//!
//! **Bounded.** The keys live in up to 16 shards (a mutex and a map each), `max_keys` split
//! between them, each shard holding at least 64 keys where `max_keys` allows (fewer shards
//! rather than shards of one or two keys, which would forget a limited key for any new one). A new key that finds its shard full first drops the shard's idle keys
//! (lossless); if every key there still owes time, it forgets the eighth of them that owe
//! *least* (smallest TAT), so the map never grows past `max_keys` and never blocks. Forgetting
//! a key that owes time forgives its debt: that key gets a fresh burst. Forgetting those that
//! owe least is what keeps a flood of distinct keys, each seen once (owing one interval), from
//! washing out the limit of a client that has exhausted its burst (owing a whole burst): LRU
//! would evict that client first. With a burst of one, an exhausted client owes no more than
//! a fresh key, and a flood at the cap can forget it: the bound on memory wins over the limit
//! then.
//!
//! **Idle keys** are also swept, lazily, by the first new key of a shard at least
//! `idle_timeout` after the shard's last sweep: no background task. A shard that sees no new
//! key does not grow, so its idle keys cost no more memory than they already did.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::Quota;

use super::config::KeyedBuilder;
use super::error::{CallError, RateLimited};
use super::layer::KeyedRateLimitLayer;
use super::limiter::{wait_of, Decision, GovernorClock, Policy};
use crate::clock::Clock;

/// Most shards a keyed store is split into.
const MAX_SHARDS: usize = 16;

/// The fewest keys a shard holds when `max_keys` allows (the shard count shrinks first).
const MIN_SHARD_KEYS: usize = 64;

// ===== the store =====

struct Shard<K> {
    /// Each key's TAT, in nanoseconds from governor's start.
    tats: HashMap<K, u64>,
    /// This shard's share of `max_keys`.
    capacity: usize,
    /// When the next idle sweep is due (store nanoseconds).
    next_sweep: u64,
}

impl<K: Hash + Eq> Shard<K> {
    /// Makes room for one more key: drops the idle keys, then, if none was idle, forgets the
    /// keys that owe least (at least an eighth of the shard, so sweeps are amortised).
    /// Returns how many keys that still owed time were forgotten.
    fn make_room(&mut self, now: u64) -> u64 {
        self.tats.retain(|_, tat| *tat > now);
        if self.tats.len() < self.capacity {
            return 0;
        }
        let before = self.tats.len();
        let excess = before + 1 - self.capacity;
        let forget = excess.max(self.capacity / 8).min(before);
        let mut owed: Vec<u64> = self.tats.values().copied().collect();
        let (_, cutoff, _) = owed.select_nth_unstable(forget - 1);
        let cutoff = *cutoff;
        // Ties at the cutoff go too: more room, never less.
        self.tats.retain(|_, tat| *tat > cutoff);
        (before - self.tats.len()) as u64
    }
}

struct Store<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    hasher: RandomState,
    clock: Clock,
    /// governor's start, on the store's clock: set once governor has read its own, so the
    /// store's "now" is never ahead of governor's (an idle check errs on keeping a key).
    start: AtomicU64,
    idle_timeout: u64,
    /// Keys forgotten while they still owed time.
    evicted: AtomicU64,
}

/// The keyed [`StateStore`]: bounded, sharded, see the module docs. A handle: the limiter
/// holds one clone inside governor and one to count and sweep.
pub(crate) struct BoundedStore<K>(Arc<Store<K>>);

impl<K> Clone for BoundedStore<K> {
    fn clone(&self) -> Self {
        BoundedStore(self.0.clone())
    }
}

impl<K: Hash + Eq> BoundedStore<K> {
    fn new(max_keys: usize, idle_timeout: u64, clock: Clock) -> Self {
        // A power of two, at most 16, and at least `MIN_SHARD_KEYS` keys in each shard: a
        // shard of one or two keys would forget a limited key for the next new one.
        let mut n = 1;
        while n * 2 <= MAX_SHARDS && n * 2 * MIN_SHARD_KEYS <= max_keys {
            n *= 2;
        }
        let shards = (0..n)
            .map(|i| {
                let capacity = max_keys / n + usize::from(i < max_keys % n);
                Mutex::new(Shard {
                    tats: HashMap::new(),
                    capacity,
                    next_sweep: idle_timeout,
                })
            })
            .collect();
        BoundedStore(Arc::new(Store {
            shards,
            hasher: RandomState::new(),
            clock,
            start: AtomicU64::new(0),
            idle_timeout,
            evicted: AtomicU64::new(0),
        }))
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K>> {
        let store = &self.0;
        // The shard count is a power of two.
        let i = (store.hasher.hash_one(key) as usize) & (store.shards.len() - 1);
        &store.shards[i]
    }

    /// Nanoseconds since governor's start.
    fn now(&self) -> u64 {
        let start = self.0.start.load(Ordering::Relaxed);
        self.0.clock.now_nanos().saturating_sub(start)
    }

    fn len(&self) -> usize {
        self.0
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tats.len())
            .sum()
    }

    fn sweep(&self) {
        let now = self.now();
        for shard in self.0.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.tats.retain(|_, tat| *tat > now);
            shard.next_sweep = now.saturating_add(self.0.idle_timeout);
        }
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A known key: one map lookup under the shard's lock, no clock read of our own.
        if let Some(tat) = shard.tats.get_mut(key) {
            let (out, next) = f(Some(Nanos::new(*tat)))?;
            *tat = next.as_u64();
            return Ok(out);
        }
        let (out, next) = f(None)?;
        // A new key: the only way the map grows, so the place to keep it bounded.
        let now = self.now();
        if now >= shard.next_sweep {
            shard.tats.retain(|_, tat| *tat > now);
            shard.next_sweep = now.saturating_add(self.0.idle_timeout);
        }
        if shard.tats.len() >= shard.capacity {
            let evicted = shard.make_room(now);
            if evicted > 0 {
                self.0.evicted.fetch_add(evicted, Ordering::Relaxed);
            }
        }
        shard.tats.insert(key.clone(), next.as_u64());
        Ok(out)
    }
}

// ===== the keyed limiter =====

type Keyed<K> = governor::RateLimiter<K, BoundedStore<K>, GovernorClock, NoOpMiddleware<Nanos>>;

struct KeyedLimit<K: Hash + Eq + Clone> {
    governor: Keyed<K>,
    store: BoundedStore<K>,
    quota: Quota,
    max_keys: usize,
    policy: Policy,
}

/// A rate limiter with one limit per key (a client address, an API key, anything `Hash +
/// Eq + Clone`), every key with the same rate and burst, remembering at most `max_keys` keys.
///
/// One key exhausting its limit does not touch another's. Memory is bounded: see the
/// [module docs](self) for how keys are forgotten (idle ones first, which changes no decision;
/// at the cap, those that owe least, which gives them a fresh burst). Clones share the limits.
///
/// ```
/// use seawall::rate_limit::KeyedRateLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let limiter = KeyedRateLimiter::<&str>::builder()
///     .rate(2)
///     .max_keys(1_000)
///     .build()
///     .expect("valid configuration");
/// assert!(limiter.check_key(&"alice").is_ok());
/// assert!(limiter.check_key(&"alice").is_ok());
/// assert!(limiter.check_key(&"alice").is_err());
/// assert!(limiter.check_key(&"bob").is_ok()); // bob has a limit of his own
/// # }
/// ```
pub struct KeyedRateLimiter<K: Hash + Eq + Clone> {
    limit: Arc<KeyedLimit<K>>,
}

impl<K: Hash + Eq + Clone> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            limit: self.limit.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimiter<K> {
    /// A builder, with the defaults in its table.
    pub fn builder() -> KeyedBuilder<K> {
        KeyedBuilder::default()
    }

    pub(crate) fn new(quota: Quota, policy: Policy, max_keys: usize, idle_timeout: u64) -> Self {
        let store = BoundedStore::new(max_keys, idle_timeout, policy.clock.clone());
        let governor =
            governor::RateLimiter::new(quota, store.clone(), GovernorClock(policy.clock.clone()));
        // Read after governor read its start: the store's "now" is never ahead of governor's.
        store
            .0
            .start
            .store(policy.clock.now_nanos(), Ordering::Relaxed);
        KeyedRateLimiter {
            limit: Arc::new(KeyedLimit {
                governor,
                store,
                quota,
                max_keys,
                policy,
            }),
        }
    }

    /// Takes a slot of `key`'s limit if one is free now; never waits.
    #[inline]
    pub fn check_key(&self, key: &K) -> Result<(), RateLimited> {
        self.limit.policy.now_or_never(self.limit.check_slot(key))
    }

    /// Takes a slot of `key`'s limit, waiting up to `max_wait` for one.
    pub async fn acquire_key(&self, key: &K) -> Result<(), RateLimited> {
        self.limit
            .policy
            .acquire(|| self.limit.check_slot(key))
            .await
    }

    /// Runs `f` once a slot of `key`'s limit is taken (waiting up to `max_wait`); a refused
    /// call never runs `f`. The same decisions as the layer.
    pub async fn call_key<F, Fut, T, E>(&self, key: &K, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.limit
            .policy
            .call(|| self.limit.check_slot(key), f)
            .await
    }

    /// A layer limiting each request by the key `key` extracts from it (`None`: the request is
    /// not limited).
    pub fn layer<F>(&self, key: F) -> KeyedRateLimitLayer<K, F> {
        KeyedRateLimitLayer::new(self.clone(), key)
    }

    /// Keys remembered now (locks each shard in turn).
    pub fn len(&self) -> usize {
        self.limit.store.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most keys remembered at once.
    pub fn max_keys(&self) -> usize {
        self.limit.max_keys
    }

    /// Keys forgotten, so far, while they still owed time (each got a fresh burst): a count
    /// that grows means `max_keys` is too small for the traffic, or a flood is under way.
    pub fn evicted(&self) -> u64 {
        self.limit.store.0.evicted.load(Ordering::Relaxed)
    }

    /// Forgets every idle key now (they would be swept lazily anyway): for a timer of your own.
    pub fn sweep_idle(&self) {
        self.limit.store.sweep();
    }

    /// Calls admitted at once for a key after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.limit.quota.burst_size().get()
    }

    /// Time between two slots of one key.
    pub fn interval(&self) -> Duration {
        self.limit.quota.replenish_interval()
    }

    /// How long a call may wait for a slot.
    pub fn max_wait(&self) -> Duration {
        self.limit.policy.max_wait
    }

    /// The limiter's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.limit.policy.name.as_deref()
    }

    /// The first decision on a call (the layer's `call`).
    #[inline]
    pub(crate) fn decide(&self, key: &K) -> Decision {
        self.limit.policy.first(self.limit.check_slot(key))
    }

    /// The decision after a wait.
    pub(crate) fn decide_after_wait(&self, key: &K, deadline: u64) -> Decision {
        self.limit
            .policy
            .after_wait(self.limit.check_slot(key), deadline, false)
    }
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    #[inline]
    fn check_slot(&self, key: &K) -> Result<(), Duration> {
        self.governor
            .check_key(key)
            .map_err(|not_until| wait_of(&not_until, self.governor.clock()))
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.limit.policy.name)
            .field("interval", &self.limit.quota.replenish_interval())
            .field("burst", &self.limit.quota.burst_size())
            .field("max_wait", &self.limit.policy.max_wait)
            .field("max_keys", &self.limit.max_keys)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(capacity: usize, tats: &[(u32, u64)]) -> Shard<u32> {
        Shard {
            tats: tats.iter().copied().collect(),
            capacity,
            next_sweep: 0,
        }
    }

    #[test]
    fn room_is_made_from_idle_keys_first_at_no_cost() {
        let mut s = shard(3, &[(1, 5), (2, 50), (3, 10)]);
        assert_eq!(s.make_room(10), 0); // keys 1 and 3 are idle at 10
        assert_eq!(s.tats.len(), 1);
        assert!(s.tats.contains_key(&2));
    }

    #[test]
    fn at_the_cap_the_keys_that_owe_least_are_forgotten() {
        let tats: Vec<(u32, u64)> = (0..16).map(|k| (k, 100 + u64::from(k))).collect();
        let mut s = shard(16, &tats);
        // An eighth of 16: the two that owe least.
        assert_eq!(s.make_room(0), 2);
        assert_eq!(s.tats.len(), 14);
        assert!(!s.tats.contains_key(&0) && !s.tats.contains_key(&1));
        assert!(s.tats.contains_key(&15));
    }

    #[test]
    fn shards_split_max_keys_exactly() {
        for max_keys in [1, 2, 5, 16, 17, 1000] {
            let store: BoundedStore<u32> = BoundedStore::new(max_keys, 1, Clock::tokio());
            let total: usize = store
                .0
                .shards
                .iter()
                .map(|s| s.lock().unwrap().capacity)
                .sum();
            assert_eq!(total, max_keys);
            assert!(store
                .0
                .shards
                .iter()
                .all(|s| s.lock().unwrap().capacity >= 1));
        }
    }
}
