//! The bulkhead: [`Bulkhead`], a handle to one shared set of [`Slots`], the [`Permit`] that
//! holds one of them, and the one admission decision every path goes through
//! ([`Bulkhead::admit`]).

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use super::config::{Builder, Config};
use super::error::{BulkheadFull, CallError};
use super::observe::Event;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// A bulkhead: at most `max_concurrent` calls run at once; a call that finds every slot busy
/// waits up to `max_wait` for one (default: not at all), then is refused with
/// [`BulkheadFull`].
///
/// Cloning is cheap (a reference count) and clones share one set of slots; every service
/// built by one [`BulkheadLayer`](super::BulkheadLayer), and every layer made from one
/// bulkhead, shares it too. Build a second bulkhead for a second, independent bound.
///
/// # Memory
///
/// The slots (a tokio semaphore, a count of waiting calls, the configuration and listeners)
/// are one allocation, freed when the last handle *and* the last [`Permit`] are dropped: a
/// call in flight keeps its bulkhead alive and gives its slot back when it ends, after
/// every handle is gone. Listeners are handed the bulkhead, so they need not capture it
/// (which would keep it alive forever).
#[derive(Clone)]
pub struct Bulkhead {
    pub(super) slots: Arc<Slots>,
}

/// What every handle and every permit of one bulkhead share.
pub(crate) struct Slots {
    /// One permit per free slot. Permits are taken with `forget` and given back by
    /// [`Permit`]'s `Drop`, so a permit needs this one reference count, not a second one to
    /// the semaphore (tokio's `OwnedSemaphorePermit` would hold an `Arc<Semaphore>` of its
    /// own).
    pub(super) semaphore: Semaphore,
    /// Calls waiting for a slot (only ever written on the wait path).
    pub(super) waiting: AtomicUsize,
    pub(super) config: Config,
}

/// The answer to one call, decided at once: a slot, a refusal, or a wait for a slot.
pub(crate) enum Admission {
    /// A slot was free: the call runs now.
    Admitted(Permit),
    /// Every slot was busy and the bulkhead does not wait (or cannot: no timer).
    Full(BulkheadFull),
    /// Every slot was busy: wait up to `max_wait` for one.
    Wait(Wait),
}

/// A call waiting for a slot, up to `max_wait` from when it arrived. One allocation, made
/// only when a call must wait (tokio's semaphore `acquire` future has no name to store it
/// by). Dropping it leaves the queue; a slot handed to it in the meantime goes back at once
/// (tokio's `Acquire` does that on `Drop`).
pub(crate) struct Wait(Pin<Box<dyn Future<Output = Result<Permit, BulkheadFull>> + Send + Sync>>);

impl Future for Wait {
    type Output = Result<Permit, BulkheadFull>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Bulkhead {
    /// A builder with the defaults: 25 slots, no wait.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        Bulkhead {
            slots: Arc::new(Slots {
                semaphore: Semaphore::new(config.max_concurrent),
                waiting: AtomicUsize::new(0),
                config,
            }),
        }
    }

    /// How many calls may run at once.
    pub fn max_concurrent(&self) -> usize {
        self.slots.config.max_concurrent
    }

    /// How long a call waits for a slot before it is refused (zero: not at all).
    pub fn max_wait(&self) -> Duration {
        self.slots.config.max_wait
    }

    /// The bulkhead's name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.slots.config.name.as_deref()
    }

    /// Whether two handles share one set of slots.
    pub fn same_bulkhead(&self, other: &Bulkhead) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }

    /// Takes a free slot now, or refuses at once with [`BulkheadFull`], whatever `max_wait`
    /// says: the decision of a bulkhead that does not wait. The slot is held until the
    /// [`Permit`] is dropped.
    ///
    /// ```
    /// use seawall::bulkhead::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::builder().max_concurrent(1).build().expect("valid");
    /// let permit = bulkhead.try_acquire().expect("a slot is free");
    /// assert!(bulkhead.try_acquire().is_err()); // the one slot is taken
    /// drop(permit);
    /// assert!(bulkhead.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<Permit, BulkheadFull> {
        match self.try_take() {
            Some(permit) => Ok(permit),
            None => Err(self.rejected(Duration::ZERO)),
        }
    }

    /// Takes a slot, waiting up to `max_wait` for one if all are busy (the decision a
    /// [`BulkheadService`](super::BulkheadService) makes for each call). Dropping the future
    /// while it waits leaves the queue, and takes no slot.
    ///
    /// Waiting needs tokio's timer; without one (no tokio runtime, or one built without
    /// `enable_time`) a call that finds every slot busy is refused at once, so the wait is
    /// never longer than `max_wait`.
    pub async fn acquire(&self) -> Result<Permit, BulkheadFull> {
        match self.admit() {
            Admission::Admitted(permit) => Ok(permit),
            Admission::Full(full) => Err(full),
            Admission::Wait(wait) => wait.await,
        }
    }

    /// Runs `f` in a slot: takes one as [`acquire`](Self::acquire) does (waiting up to
    /// `max_wait`), runs `f` and gives the slot back when `f`'s future ends or is dropped. A
    /// refused call does not run `f`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use seawall::bulkhead::{Bulkhead, CallError};
    ///
    /// let bulkhead = Bulkhead::builder().max_concurrent(2).build().expect("valid");
    /// let r: Result<u32, CallError<&str>> = bulkhead.call(|| async { Ok(7) }).await;
    /// assert_eq!(r, Ok(7));
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let permit = self.acquire().await.map_err(CallError::rejected)?;
        let result = f().await;
        drop(permit);
        result.map_err(CallError::inner)
    }

    /// A layer that puts this bulkhead in front of a service. See
    /// [`BulkheadLayer`](super::BulkheadLayer).
    pub fn layer(&self) -> super::BulkheadLayer {
        super::BulkheadLayer::new(self.clone())
    }

    /// The one admission decision, made at once: the layer's `call` and
    /// [`acquire`](Self::acquire) both make it, so the bare path decides like the layer.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        match self.try_take() {
            Some(permit) => Admission::Admitted(permit),
            None => self.admit_full(),
        }
    }

    /// A free slot, if there is one. tokio's semaphore is fair: while calls wait, a freed
    /// slot goes to the first of them, never to a newcomer, so this cannot overtake them.
    #[inline]
    fn try_take(&self) -> Option<Permit> {
        // The only error is a closed semaphore, and this one is never closed.
        let taken = self.slots.semaphore.try_acquire().ok()?;
        // Given back by `Permit`'s `Drop`, through the same reference to the slots.
        taken.forget();
        Some(self.admitted(Duration::ZERO))
    }

    /// Every slot is busy: refuse at once, or start waiting.
    #[cold]
    #[inline(never)]
    fn admit_full(&self) -> Admission {
        let max_wait = self.max_wait();
        if max_wait.is_zero() {
            return Admission::Full(self.rejected(Duration::ZERO));
        }
        match new_sleep(max_wait) {
            Some(sleep) => Admission::Wait(Wait(Box::pin(self.clone().wait(sleep)))),
            // No timer to bound the wait: refusing now keeps the promise of `max_wait`.
            None => Admission::Full(self.rejected(Duration::ZERO)),
        }
    }

    /// Waits for a slot until `sleep` fires. A slot that frees at the very moment the wait
    /// ends is taken (the semaphore is polled first).
    async fn wait(self, sleep: Sleep) -> Result<Permit, BulkheadFull> {
        let start = Instant::now();
        let waiting = Waiting::enter(&self.slots.waiting);
        let mut sleep = pin!(sleep);
        let mut acquire = pin!(self.slots.semaphore.acquire());
        let taken = poll_fn(|cx| {
            if let Poll::Ready(taken) = acquire.as_mut().poll(cx) {
                return Poll::Ready(taken.ok());
            }
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await;
        drop(waiting);
        match taken {
            Some(taken) => {
                taken.forget();
                Ok(self.admitted(start.elapsed()))
            }
            None => Err(self.rejected(self.max_wait())),
        }
    }

    /// A permit for a slot just taken, announced to the listeners. If a listener panics, the
    /// permit unwinds with it and the slot is given back.
    #[inline]
    fn admitted(&self, waited: Duration) -> Permit {
        let permit = Permit {
            bulkhead: self.clone(),
        };
        if !self.slots.config.listeners.is_empty() {
            self.emit(&Event::Admitted { waited });
        }
        permit
    }

    /// A refusal after `waited`, announced to the listeners and to `tracing`.
    #[cold]
    fn rejected(&self, waited: Duration) -> BulkheadFull {
        let full = BulkheadFull::new(self.max_concurrent(), waited);
        #[cfg(feature = "tracing")]
        tracing::debug!(
            bulkhead = self.name().unwrap_or(""),
            max_concurrent = full.max_concurrent(),
            waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "bulkhead rejected a call"
        );
        self.emit(&Event::Rejected(full));
        full
    }
}

/// Counts a call among the waiting while it lives (a dropped wait leaves the count too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        // Relaxed: the count is only reported, nothing is published through it.
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A tokio timer for `after`, or `None` where there is none (the same test as retry's):
///
/// - no tokio runtime (another executor, or none): asked with `Handle::try_current`, no panic;
/// - a runtime built without `enable_time`: tokio 1.x cannot be asked, and `sleep` panics
///   there, so that one panic is caught (the panic hook still runs and prints it; with
///   `panic = "abort"` the process aborts, as at any tokio timer there).
///
/// `sleep`, not `sleep_until(now + after)`: tokio caps a far deadline instead of overflowing.
#[cold]
fn new_sleep(after: Duration) -> Option<Sleep> {
    tokio::runtime::Handle::try_current().ok()?;
    std::panic::catch_unwind(|| tokio::time::sleep(after)).ok()
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.slots.config.name)
            .field("max_concurrent", &self.max_concurrent())
            .field("max_wait", &self.max_wait())
            .field("available", &self.slots.semaphore.available_permits())
            .finish()
    }
}

// ===== impl Permit =====

/// One slot of a [`Bulkhead`], from [`Bulkhead::try_acquire`] or [`Bulkhead::acquire`]: held
/// until the permit is dropped, whether the call ended, failed, panicked or was cancelled.
///
/// A permit keeps its bulkhead alive: if every handle is dropped while the call runs, the
/// slot is still given back when it ends.
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct Permit {
    bulkhead: Bulkhead,
}

impl Permit {
    /// The bulkhead this slot belongs to.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        // Gives back the permit `forget` kept: a waiting call, if any, gets it first.
        self.bulkhead.slots.semaphore.add_permits(1);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("bulkhead", &self.bulkhead.name())
            .finish()
    }
}
