//! Rate limiting (feature `rate-limit`): at most `rate` calls per `per`, in bursts of up to
//! `burst`, with the GCRA of the [`governor`](https://docs.rs/governor) crate.
//!
//! A call over the limit is refused without reaching the inner service, with a
//! [`RateLimited`] error that carries the time until the next slot frees (the `http`
//! feature's `RejectionResponseLayer` answers it 429 with that `Retry-After`), at once or,
//! with [`max_wait`](Builder::max_wait), after waiting that long at most for a slot. seawall's
//! retry never retries it: [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) is a
//! refusal.
//!
//! A [`RateLimiter`] is one limit, shared by every clone, every [`RateLimitLayer`] made from
//! it and every service those build. (tower's own `RateLimit` gives each clone of a service a
//! limit of its own, which a server that clones its service per connection, as axum does,
//! turns into no limit at all.) A [`KeyedRateLimiter`] keeps one limit per key (a client's
//! address, an API key, whatever a function of the request returns), remembering at most
//! `max_keys` keys, so a flood of distinct keys cannot exhaust memory: see [`keyed`](self#keys).
//!
//! The limiter knows nothing of tower: use it through [`RateLimiter::check`] (never waits),
//! [`RateLimiter::acquire`] and [`RateLimiter::call`] (wait up to `max_wait`), or as a tower
//! middleware with [`RateLimitLayer`] / [`KeyedRateLimitLayer`]; they make the same decisions.
//!
//! # Example
//!
//! ```
//! use seawall::rate_limit::{RateLimited, RateLimiter};
//! use seawall::{BoxError, ErrorKind};
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! // 100 calls per second, bursts of 200.
//! let limiter = RateLimiter::builder()
//!     .rate(100)
//!     .per(Duration::from_secs(1))
//!     .burst(200)
//!     .build()
//!     .expect("valid configuration");
//!
//! let svc = ServiceBuilder::new()
//!     .layer(limiter.layer())
//!     .service(service_fn(|_: ()| async { Ok::<_, BoxError>("pong") }));
//!
//! // Clones share the one limit: 200 calls pass at once, the 201st is refused.
//! for _ in 0..200 {
//!     svc.clone().oneshot(()).await.unwrap();
//! }
//! let err = svc.clone().oneshot(()).await.unwrap_err();
//! assert_eq!(ErrorKind::of(&*err), ErrorKind::RateLimited);
//! let limited = err.downcast_ref::<RateLimited>().unwrap();
//! assert_eq!(limited.retry_after(), Duration::from_millis(10));
//!
//! tokio::time::advance(Duration::from_millis(10)).await; // one slot frees every 10 ms
//! assert_eq!(svc.oneshot(()).await.unwrap(), "pong");
//! # }
//! ```
//!
//! # Waiting
//!
//! With `max_wait`, a call that finds no free slot, but whose next slot frees within
//! `max_wait`, waits in its response future on tokio's timer (the service, being `Clone`,
//! lends it the ready inner service), then checks again. There is no reservation: a waiting
//! call can be overtaken by a new one that finds the slot free first; it then waits for the
//! next slot if that one still frees in time, and is refused otherwise. So waiters are not
//! served in order, but none waits past `max_wait`, and none takes a slot it does not use.
//! `poll_ready` never waits for the limit (a slot taken there would be lost if no call
//! followed).
//!
//! # Keys
//!
//! See the [`keyed`] module for how keys are bounded and forgotten; in short: a key
//! whose burst is fully back is forgotten at no cost; at `max_keys`, the keys that owe the
//! least time are forgotten (and get a fresh burst), so a flood of new keys, each owing one
//! interval, does not wash out the limit of a client that has exhausted a burst of two or
//! more. With a burst of one every key owes at most one interval, and at the cap a flood can
//! make the limiter forget a limited client; keep `max_keys` well above the number of
//! clients you expect at once.
//!
//! # Time
//!
//! governor reads time through seawall's [`Clock`](crate::clock::Clock) (tokio's by default),
//! so `tokio::time::pause` and `advance`, or a [`ManualClock`](crate::clock::ManualClock)
//! given to [`Builder::clock`], drive the limiter deterministically in tests.
//!
//! # Cost
//!
//! An admitted call costs one clock read and one compare-exchange on the limit's one atomic
//! word (governor's), plus a keyed limiter's hash and shard lock. A shared limit is one word
//! every core writes, by nature: under contention the cache line moves between cores. The
//! README's cost table has the measured figures and the command that reproduces them.

mod config;
mod error;
mod future;
pub mod keyed;
mod layer;
mod limiter;
mod observe;
mod service;

pub use config::{Builder, KeyedBuilder, LONGEST_WAIT};
pub use error::{CallError, RateLimited};
pub use future::ResponseFuture;
pub use keyed::KeyedRateLimiter;
pub use layer::{KeyedRateLimitLayer, RateLimitLayer};
pub use limiter::RateLimiter;
pub use observe::{Event, Listener};
pub use service::{KeyedRateLimitService, RateLimitService};
