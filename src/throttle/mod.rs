//! Client-side adaptive throttling (Google SRE): shed calls locally, first attempts
//! included, while the dependency is rejecting most of them.
//!
//! An [`AdaptiveThrottle`] counts, over a trailing `window` (default 2 minutes), the
//! *requests* its client made and the *accepts*: requests the backend accepted. A new call
//! is shed locally, with [`Throttled`] ([`ErrorKind::Throttled`](crate::ErrorKind::Throttled))
//! and without reaching the inner service, with probability
//!
//! ```text
//! max(0, (requests − k × accepts) / (requests + 1))
//! ```
//!
//! ([`rejection_probability`]; `k` defaults to 2). While the backend accepts at least one
//! request in `k`, nothing is shed. When it rejects nearly everything, the probability
//! nears 1 and most calls fail at once, locally, costing the backend nothing; the few that
//! still go through tell the throttle when the backend recovers. This is the "client request
//! rejection probability" of *Site Reliability Engineering* (O'Reilly, 2016), chapter 21,
//! "Handling Overload", section "Client-side throttling".
//!
//! **Recovery is slow by design.** Shed calls count as requests (as in the book), so once
//! more than half the calls are shed (with `k` = 2), the accepts of the calls that still go
//! through cannot bring the probability down: it falls only as the outage's rejections leave
//! the window. After a long outage the throttle keeps shedding for up to one `window` (two
//! minutes by default) after the backend is healthy again; after a short one, a few seconds
//! (the storm simulation, `cargo run --example storm`, shows both). Choose the window for
//! that trade, and prefer the retry budget alone when goodput right after recovery matters.
//!
//! The throttle knows nothing of tower: use it around any async call with
//! [`AdaptiveThrottle::call`], by hand with [`AdaptiveThrottle::try_acquire`] and
//! [`Permit::record`], or as a tower middleware with [`ThrottleLayer`]; every path makes the
//! same decision. Clones of a throttle, of its layers and of the services they build share
//! one window. A local rejection is one of seawall's refusals: seawall's retry does not retry
//! it unless told to.
//!
//! # Example
//!
//! ```
//! use seawall::throttle::{AdaptiveThrottle, Throttled};
//! use seawall::{BoxError, ErrorKind};
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let throttle = AdaptiveThrottle::builder()
//!     .k(2.0)
//!     .seed(7) // reproducible draws
//!     .build()
//!     .expect("valid configuration");
//!
//! // A backend that rejects everything (an overload error, say).
//! let mut svc = ServiceBuilder::new()
//!     .layer(throttle.layer())
//!     .service(service_fn(|_: ()| async { Err::<(), BoxError>("503 overloaded".into()) }));
//!
//! let mut shed = 0;
//! for _ in 0..1_000 {
//!     let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
//!     if ErrorKind::of(&*err) == ErrorKind::Throttled {
//!         shed += 1;
//!         let throttled = err.downcast_ref::<Throttled>().expect("kind said so");
//!         assert_eq!(throttled.accepts(), 0);
//!     }
//! }
//! // With no accepts, the probability is requests / (requests + 1): nearly every call is
//! // shed locally, and only a few reach the backend.
//! assert!(shed > 950, "{shed}");
//! assert!(throttle.probability() > 0.99);
//! # }
//! ```
//!
//! # In a simulation
//!
//! The bare API on a [`ManualClock`](crate::clock::ManualClock) with a
//! [`seed`](Builder::seed) is deterministic: the same calls in the same order make the same
//! decisions, so a simulation can step time and script the backend's answers.
//!
//! ```
//! use seawall::clock::ManualClock;
//! use seawall::throttle::AdaptiveThrottle;
//! use seawall::Outcome;
//! use std::time::Duration;
//!
//! let time = ManualClock::new();
//! let throttle = AdaptiveThrottle::builder()
//!     .clock(time.clone())
//!     .window(Duration::from_secs(2))
//!     .seed(1)
//!     .build()
//!     .expect("valid configuration");
//! // 10 requests every 100 ms; from the 20th tick on, the backend can take only 3 of them.
//! let (mut sent, mut accepted, mut shed) = (0, 0, 0);
//! for tick in 0..100 {
//!     time.advance(Duration::from_millis(100));
//!     let mut taken = 0;
//!     for _ in 0..10 {
//!         match throttle.try_acquire() {
//!             Ok(permit) => {
//!                 let accept = tick < 20 || taken < 3;
//!                 taken += 1;
//!                 if tick >= 80 {
//!                     sent += 1;
//!                     accepted += u32::from(accept);
//!                 }
//!                 permit.record(if accept { Outcome::Success } else { Outcome::Failure });
//!             }
//!             Err(_) => shed += 1,
//!         }
//!     }
//! }
//! // Over the last 2 s the backend got about k = 2 requests per accept, not 10 per 3.
//! assert!(shed > 200, "{shed} shed");
//! assert_eq!(accepted, 60);
//! assert!((100..=140).contains(&sent), "{sent} sent");
//! let s = throttle.snapshot();
//! assert_eq!(s.probability, seawall::throttle::rejection_probability(s.requests, s.accepts, 2.0));
//! assert!(s.probability > 0.3 && s.probability < 0.5, "{s:?}");
//! ```
//!
//! # Throttle or retry budget
//!
//! Both keep a client from piling load onto a sick dependency; they act on different calls.
//! A [`RetryBudget`](crate::retry::RetryBudget) limits *retries* to a share of recent
//! successes: first attempts always go through, so a client whose every first attempt fails
//! still sends its full traffic. The throttle sheds *first attempts too*, in proportion to
//! how much of the traffic the backend is turning away, so the load a struggling backend sees
//! from this client falls to about `k` × what it accepts. Use the budget always (retries
//! must be bounded); add the throttle in front of a dependency that can be overloaded, where
//! rejecting a request still costs it work (the SRE book's case: enough cheap rejections
//! overload a backend anyway, and only the clients can stop sending them).
//!
//! Unlike a circuit breaker, the throttle never stops all traffic: the probability stays
//! below 1, and it falls as accepts come back, with no open period to wait out. Unlike a
//! rate limit, it has no fixed rate: it follows what the backend accepts.
//!
//! # Where it goes in a stack
//!
//! Outermost first: rate limit, overall timeout, retry, **throttle**, circuit breaker,
//! bulkhead, per-attempt timeout, the service. Inside retry, every attempt is a request, as
//! the backend sees it (the SRE book's throttle sits under the application's retries), and an
//! attempt shed locally is one of seawall's refusals, so the call ends there instead of
//! retrying into an overloaded backend. Outside the breaker, an open circuit's rejections
//! reach the throttle, which counts nothing for them (nor for any seawall refusal from
//! further in: the backend was not asked, and counting them would keep the throttle shedding
//! after the circuit closes; an inner retry's exhausted budget does count, as the failure it
//! carries). The per-attempt timeout inside it makes a hung call a rejection rather than a
//! cancellation, which would count nothing: a tower `Timeout` inside the throttle, not
//! retry's own `attempt_timeout`, which sits outside it.
//!
//! # What counts
//!
//! - A *request* is counted when its verdict is: the backend's answer ([`Permit::record`],
//!   or the layer's classifier on the inner result), or a local rejection (counted as a
//!   request and not an accept, as the SRE book does: "requests" are what the application
//!   attempted, throttled ones included, and that is what keeps the probability up while
//!   the backend rejects).
//! - An *accept* is a request whose outcome the classifier does not call
//!   [`Failure`](crate::Outcome::Failure): `Success`, and `Ignored` too (a 404 or a
//!   validation error was still accepted and processed by the backend). The default
//!   classifier takes every `Err` for a rejection; choose one that keeps the overload signals
//!   (429, 503, timeouts, refused connections) as failures and the rest as accepts. Over
//!   HTTP, `seawall::http::HttpRetryClassifier` is that classifier (its failures are 408, 429,
//!   502, 503, 504 and transport failures; any other answer is an accept);
//!   `HttpBreakerClassifier` is not (it takes every 5xx for a failure, and ignores a 429,
//!   the very signal of overload, which the throttle then counts as an accept).
//! - A call cancelled before its verdict (its future or permit dropped) counts nothing: a
//!   cancellation says nothing about the backend, as for the breaker.
//! - One of seawall's refusals from further in that never reached the backend counts
//!   nothing (see above).
//!
//! # The window
//!
//! Ten buckets of a tenth of the window each: a verdict is forgotten between 0.9 × and
//! 1 × `window` after it was counted, never later. A call is drawn against the probability
//! of the last *settlement* of the window: made by the first call of each bucket, by each
//! rejection (by the backend or local), and, while calls are shed, by each accept. So a
//! rejection raises the probability for the very next call, and while calls are shed an
//! accept lowers it at once. An accept while nothing is shed is only counted (it cannot
//! lower a probability of zero); the next settlement folds it in. Under concurrency, a
//! verdict recorded while another caller settles is folded by that caller before it leaves,
//! or, if it has already settled several times in a row for others, by the next call, before
//! it decides. Single-threaded on a [`ManualClock`](crate::clock::ManualClock), with a
//! [`seed`](Builder::seed), every decision is reproducible: the shape for simulations.
//!
//! # Cost
//!
//! An admitted call reads the clock once (to move the window along) and loads the published
//! probability: while it is zero, there is no draw. Its accept is one atomic add on a
//! per-thread cache-padded stripe. Holding the throttle while the call runs is one reference
//! count on a per-thread lane (as the breaker's calls do). No lock, no allocation, no shared
//! cache line written. A rejection by the backend, a local rejection, the first call of each
//! bucket, and every accept while calls are shed settle the window: a try-lock nobody waits
//! on, a read of the 16 stripes, arithmetic over 10 buckets, nothing allocated.
//! `benches/throttle.rs` measures the success path against a bare service; the README's
//! cost table is the place for its figures.
//!
//! The clock read is most of the cost. Reading no clock when the window is healthy was
//! considered and refused: the stripes carry no time, so the clock is what dates them;
//! without it, the accepts of a long healthy spell would be dated either to its start (and a
//! single rejection after it would shed half the calls: `(1 − 0) / (1 + 1)`) or to its end
//! (and hide the onset of an outage behind old accepts for a whole window). Where the read
//! matters, give the throttle a [`ManualClock`](crate::clock::ManualClock) that a task
//! advances every few milliseconds: a call then loads a number instead of reading a clock,
//! and the window's edges move in those steps.
//!
//! # Memory
//!
//! Nothing is leaked: a throttle is one reference-counted allocation (the stripes, the
//! buckets, the configuration, the listeners: about 3 KiB, most of it the 16 cache-padded
//! stripes), held by every handle, layer, service and [`Permit`], and freed when the last
//! of them goes. A layer adds one 256-byte lane per core (at most 8), shared by every
//! service it builds.

mod config;
mod error;
mod future;
mod layer;
mod ledger;
mod observe;
mod probability;
mod service;
mod window;

pub use config::{Builder, MIN_WINDOW};
pub use error::{CallError, Throttled};
pub use future::ResponseFuture;
pub use layer::ThrottleLayer;
pub use ledger::{AdaptiveThrottle, Permit};
pub use observe::{Event, Listener, Snapshot};
pub use probability::rejection_probability;
pub use service::ThrottleService;
pub use window::STRIPES;
