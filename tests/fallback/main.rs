//! The fallback: which errors it answers (each kind produced by the real thing where seawall
//! or tower has it), what the fallback sees, whose error wins, a whole stack, cancellation at
//! every poll, and the bare call against the layer. Time is tokio's paused clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::bulkhead::BulkheadFull;
use seawall::circuit_breaker::{CircuitBreaker, CircuitOpen, State};
use seawall::fallback::{fallback_fn, Fallback, FallbackLayer};
use seawall::retry::{Backoff, Jitter, Retry, RetryBudget};
use seawall::{BoxError, ErrorKind};
use tower::util::BoxService;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

mod events;

// ===== where each kind of error comes from =====

/// Each kind of error, and how to get it from a real layer where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A real `CircuitBreaker` layer, forced open.
    CircuitOpen,
    /// tower's `Timeout` layer over a service slower than it.
    Timeout,
    /// A real retry layer whose budget refuses the retry.
    BudgetExhausted,
    /// `RateLimited::new(..)`, returned by the inner service.
    #[cfg(feature = "rate-limit")]
    RateLimited,
    /// `BulkheadFull::new(..)`, returned by the inner service.
    BulkheadFull,
    /// The inner service's own error.
    Inner,
}

const SOURCES: &[Source] = &[
    Source::CircuitOpen,
    Source::Timeout,
    Source::BudgetExhausted,
    #[cfg(feature = "rate-limit")]
    Source::RateLimited,
    Source::BulkheadFull,
    Source::Inner,
];

impl Source {
    fn kind(self) -> ErrorKind {
        match self {
            Source::CircuitOpen => ErrorKind::CircuitOpen,
            Source::Timeout => ErrorKind::Timeout,
            Source::BudgetExhausted => ErrorKind::BudgetExhausted,
            #[cfg(feature = "rate-limit")]
            Source::RateLimited => ErrorKind::RateLimited,
            Source::BulkheadFull => ErrorKind::BulkheadFull,
            Source::Inner => ErrorKind::Inner,
        }
    }

    /// A service whose every call fails with this kind of error.
    fn failing(self) -> BoxService<u32, String, BoxError> {
        let fails = |make: fn() -> BoxError| {
            service_fn(move |_: u32| std::future::ready(Err::<String, BoxError>(make())))
        };
        match self {
            Source::CircuitOpen => {
                let breaker = CircuitBreaker::default();
                breaker.force_open();
                BoxService::new(breaker.layer().layer(service_fn(|n: u32| async move {
                    Ok::<_, BoxError>(format!("paid {n}"))
                })))
            }
            Source::Timeout => BoxService::new(
                ServiceBuilder::new()
                    .timeout(Duration::from_secs(1))
                    .service(service_fn(|n: u32| async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok::<_, BoxError>(format!("paid {n}"))
                    })),
            ),
            Source::BudgetExhausted => {
                let retry = Retry::builder()
                    .max_retries(3)
                    .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None))
                    .budget(
                        RetryBudget::builder()
                            .min_per_sec(1)
                            .ratio(0.0)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap();
                // The floor's one token goes on a first call's retry: from then on, every
                // retry is refused.
                let budget = retry.budget().unwrap().clone();
                assert!(budget.withdraw());
                BoxService::new(retry.layer().layer(fails(|| "flaky".into())))
            }
            #[cfg(feature = "rate-limit")]
            Source::RateLimited => BoxService::new(fails(|| {
                seawall::rate_limit::RateLimited::new(Duration::from_secs(1)).into()
            })),
            Source::BulkheadFull => {
                BoxService::new(fails(|| BulkheadFull::new(4, Duration::ZERO).into()))
            }
            Source::Inner => BoxService::new(fails(|| "card declined".into())),
        }
    }

    /// The error a bare call of this kind fails with (for the bare API).
    fn error(self) -> BoxError {
        match self {
            Source::CircuitOpen => CircuitOpen::new(Duration::from_secs(1)).into(),
            Source::Timeout => tower::timeout::error::Elapsed::new().into(),
            Source::BudgetExhausted => seawall::retry::BudgetExhausted::new("flaky").into(),
            #[cfg(feature = "rate-limit")]
            Source::RateLimited => {
                seawall::rate_limit::RateLimited::new(Duration::from_secs(1)).into()
            }
            Source::BulkheadFull => BulkheadFull::new(4, Duration::ZERO).into(),
            Source::Inner => "card declined".into(),
        }
    }
}

/// The selections under test, each with the kinds it must answer.
/// A named selection, and the kinds it must answer.
type Selection = (&'static str, Fallback, fn(ErrorKind) -> bool);

fn selections() -> Vec<Selection> {
    vec![
        ("default", Fallback::new(), |k| {
            k.is_refusal() || k == ErrorKind::Timeout
        }),
        (
            "open circuit and timeout",
            Fallback::new()
                .on(ErrorKind::CircuitOpen)
                .on(ErrorKind::Timeout),
            |k| matches!(k, ErrorKind::CircuitOpen | ErrorKind::Timeout),
        ),
        ("refusals", Fallback::new().on_refusals(), |k| {
            k.is_refusal()
        }),
        ("any error", Fallback::new().on_any_error(), |_| true),
        (
            "budget exhausted",
            Fallback::new().on(ErrorKind::BudgetExhausted),
            |k| k == ErrorKind::BudgetExhausted,
        ),
        (
            "predicate: a declined card",
            Fallback::new().when(|e| e.to_string() == "card declined"),
            |k| k == ErrorKind::Inner,
        ),
    ]
}

/// What a call answered: `Ok(fallback's answer)` or `Err(kind)`.
type Answer = Result<String, ErrorKind>;

fn answer(r: Result<String, BoxError>) -> Answer {
    r.map_err(|e| ErrorKind::of(&*e))
}

fn queued() -> impl Service<
    (u32, BoxError),
    Response = String,
    Error = BoxError,
    Future = impl Future<Output = Result<String, BoxError>> + Send,
> + Clone
       + Send {
    fallback_fn(|order: u32, err: BoxError| async move {
        Ok::<_, BoxError>(format!("queued {order} after {}", ErrorKind::of(&*err)))
    })
}

// ===== selection =====

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_exactly_the_selected_kinds() {
    for (name, policy, answered) in selections() {
        for &source in SOURCES {
            let mut svc = policy.layer(queued()).layer(source.failing());
            let got = answer(svc.ready().await.unwrap().call(7).await);
            let kind = source.kind();
            let expected = if answered(kind) {
                Ok(format!("queued 7 after {kind}"))
            } else {
                Err(kind)
            };
            assert_eq!(got, expected, "selection {name:?}, source {source:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_layer_builder_selects_as_the_policy_does() {
    let mut svc = FallbackLayer::new(queued())
        .on(ErrorKind::CircuitOpen)
        .on(ErrorKind::Timeout)
        .layer(Source::BulkheadFull.failing());
    let r = answer(svc.ready().await.unwrap().call(1).await);
    assert_eq!(r, Err(ErrorKind::BulkheadFull));
    let mut svc = FallbackLayer::new(queued())
        .on_refusals()
        .layer(Source::BulkheadFull.failing());
    assert!(svc.ready().await.unwrap().call(1).await.is_ok());
    let mut svc = FallbackLayer::new(queued())
        .on_any_error()
        .layer(Source::Inner.failing());
    assert!(svc.ready().await.unwrap().call(1).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_success_is_never_answered_by_the_fallback() {
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let mut svc = FallbackLayer::new(fallback_fn(move |_: u32, _: BoxError| {
        c.fetch_add(1, SeqCst);
        async { Ok::<_, BoxError>("fallback".to_string()) }
    }))
    .on_any_error()
    .layer(service_fn(|n: u32| async move {
        Ok::<_, BoxError>(format!("paid {n}"))
    }));
    assert_eq!(svc.ready().await.unwrap().call(3).await.unwrap(), "paid 3");
    assert_eq!(called.load(SeqCst), 0);
}

// ===== what the fallback sees, and whose error wins =====

#[derive(Debug, PartialEq)]
struct Order {
    id: u32,
    items: Vec<&'static str>,
}

impl Clone for Order {
    fn clone(&self) -> Self {
        Order {
            id: self.id,
            items: self.items.clone(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_fallback_sees_the_original_request_and_the_error() {
    let seen: Arc<Mutex<Vec<(Order, bool, ErrorKind)>>> = Arc::default();
    let s = seen.clone();
    let breaker = CircuitBreaker::default();
    breaker.force_open();
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(fallback_fn(
            move |order: Order, err: BoxError| {
                let open = err.downcast_ref::<CircuitOpen>().is_some();
                s.lock().unwrap().push((order, open, ErrorKind::of(&*err)));
                async { Ok::<_, BoxError>("queued") }
            },
        )))
        .layer(breaker.layer())
        .service(service_fn(|_: Order| async { Ok::<_, BoxError>("paid") }));

    let order = Order {
        id: 42,
        items: vec!["tea", "cake"],
    };
    assert_eq!(
        svc.ready()
            .await
            .unwrap()
            .call(order.clone())
            .await
            .unwrap(),
        "queued"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, order);
    assert!(seen[0].1, "the concrete error, downcastable");
    assert_eq!(seen[0].2, ErrorKind::CircuitOpen);
}

#[derive(Debug)]
struct QueueFull;
impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("order queue full")
    }
}
impl std::error::Error for QueueFull {}

#[tokio::test(start_paused = true)]
async fn a_fallback_error_is_the_calls_error() {
    let mut svc = FallbackLayer::new(fallback_fn(|_: u32, _: BoxError| async {
        Err::<String, _>(QueueFull)
    }))
    .layer(Source::CircuitOpen.failing());
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert!(err.is::<QueueFull>(), "{err}");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_that_is_not_ready_for_good_fails_the_call_with_its_readiness_error() {
    #[derive(Clone)]
    struct Closed;
    impl Service<(u32, BoxError)> for Closed {
        type Response = String;
        type Error = BoxError;
        type Future = std::future::Ready<Result<String, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Err("fallback closed".into()))
        }
        fn call(&mut self, _: (u32, BoxError)) -> Self::Future {
            unreachable!("never ready")
        }
    }
    let mut svc = FallbackLayer::new(Closed).layer(Source::CircuitOpen.failing());
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err.to_string(), "fallback closed");
}

#[tokio::test(start_paused = true)]
async fn the_fallbacks_readiness_never_holds_up_the_inner_service() {
    /// A fallback that is never ready.
    #[derive(Clone)]
    struct Never;
    impl Service<(u32, BoxError)> for Never {
        type Response = String;
        type Error = BoxError;
        type Future = std::future::Ready<Result<String, BoxError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Pending
        }
        fn call(&mut self, _: (u32, BoxError)) -> Self::Future {
            unreachable!("never ready")
        }
    }
    let mut svc = FallbackLayer::new(Never).layer(service_fn(|n: u32| async move {
        Ok::<_, BoxError>(format!("paid {n}"))
    }));
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), "paid 1");
}

// ===== copying the request =====

/// A request that cannot be copied.
#[derive(Debug)]
struct Upload(Vec<u8>);

#[tokio::test(start_paused = true)]
async fn error_only_takes_requests_that_cannot_be_copied() {
    let breaker = CircuitBreaker::default();
    breaker.force_open();
    let mut svc = ServiceBuilder::new()
        .layer(FallbackLayer::error_only(service_fn(
            |err: BoxError| async move {
                Ok::<_, BoxError>(format!("later ({})", ErrorKind::of(&*err)))
            },
        )))
        .layer(breaker.layer())
        .service(service_fn(|u: Upload| async move {
            Ok::<_, BoxError>(format!("{} bytes", u.0.len()))
        }));
    let r = svc.ready().await.unwrap().call(Upload(vec![1, 2, 3])).await;
    assert_eq!(r.unwrap(), "later (circuit open)");
}

#[tokio::test(start_paused = true)]
async fn a_request_the_copier_cannot_copy_is_not_answered() {
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let mut svc = FallbackLayer::new(fallback_fn(move |_: u32, _: BoxError| {
        c.fetch_add(1, SeqCst);
        async { Ok::<_, BoxError>("fallback".to_string()) }
    }))
    .clone_request(|n: &u32| n.is_multiple_of(2).then_some(*n))
    .layer(Source::CircuitOpen.failing());
    // Odd requests cannot be copied: their error is returned.
    let r = answer(svc.ready().await.unwrap().call(1).await);
    assert_eq!(r, Err(ErrorKind::CircuitOpen));
    assert_eq!(called.load(SeqCst), 0);
    let r = answer(svc.ready().await.unwrap().call(2).await);
    assert_eq!(r, Ok("fallback".to_string()));
    assert_eq!(called.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn each_call_copies_its_request_once_and_error_only_copies_nothing() {
    static COPIES: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug)]
    struct Counted(u32);
    impl Clone for Counted {
        fn clone(&self) -> Self {
            COPIES.fetch_add(1, SeqCst);
            Counted(self.0)
        }
    }
    let ok = || service_fn(|c: Counted| async move { Ok::<_, BoxError>(c.0) });
    let mut svc = FallbackLayer::new(fallback_fn(|c: Counted, _: BoxError| async move {
        Ok::<_, BoxError>(c.0)
    }))
    .layer(ok());
    for i in 0..3 {
        svc.ready().await.unwrap().call(Counted(i)).await.unwrap();
    }
    assert_eq!(COPIES.load(SeqCst), 3);
    let mut svc =
        FallbackLayer::error_only(service_fn(|_: BoxError| async { Ok::<_, BoxError>(0) }))
            .layer(ok());
    for i in 0..3 {
        svc.ready().await.unwrap().call(Counted(i)).await.unwrap();
    }
    assert_eq!(COPIES.load(SeqCst), 3, "error_only copied a request");
}

// ===== events =====

#[tokio::test(start_paused = true)]
async fn listeners_hear_each_answer_with_its_kind() {
    let heard: Arc<Mutex<Vec<ErrorKind>>> = Arc::default();
    let h = heard.clone();
    let layer = FallbackLayer::new(queued()).on_fallback(move |e| h.lock().unwrap().push(e.kind()));
    for &source in SOURCES {
        let mut svc = layer.layer(source.failing());
        let _ = svc.ready().await.unwrap().call(1).await;
    }
    let expected: Vec<ErrorKind> = SOURCES
        .iter()
        .map(|s| s.kind())
        .filter(|k| *k != ErrorKind::Inner)
        .collect();
    assert_eq!(*heard.lock().unwrap(), expected);
}

// ===== a whole stack =====

#[tokio::test(start_paused = true)]
async fn a_stack_of_fallback_retry_and_breaker_has_one_error_type_and_spawns() {
    let breaker = CircuitBreaker::builder()
        .failure_threshold(2)
        .wait_in_open(Duration::from_secs(10))
        .build()
        .unwrap();
    let retry = Retry::builder()
        .max_retries(1)
        .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None))
        .build()
        .unwrap();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let d = down.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(queued()))
        .layer(retry.layer())
        .layer(breaker.layer())
        .service(service_fn(move |n: u32| {
            c.fetch_add(1, SeqCst);
            let down = d.load(SeqCst);
            async move {
                if down {
                    Err::<String, BoxError>("payment down".into())
                } else {
                    Ok(format!("paid {n}"))
                }
            }
        }));
    // One error type for the whole stack, and the service and its futures are Send.
    let mut svc: BoxService<u32, String, BoxError> = BoxService::new(svc);

    // Two failed attempts (the call and its retry) open the breaker; the inner error is
    // not selected by default, so it is the answer.
    let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err.to_string(), "payment down");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(calls.load(SeqCst), 2);

    // Open: retry does not retry the refusal, the fallback answers it, from a spawned task.
    let fut = svc.ready().await.unwrap().call(2);
    let answered = tokio::spawn(fut).await.unwrap().unwrap();
    assert_eq!(answered, "queued 2 after circuit open");
    assert_eq!(calls.load(SeqCst), 2, "the dependency was not asked");

    // Once the dependency is back and the wait is over, calls go through again.
    down.store(false, SeqCst);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(svc.ready().await.unwrap().call(3).await.unwrap(), "paid 3");
}

// ===== cancellation =====

/// Counts the futures alive, so a test can tell that a dropped call left none behind.
#[derive(Clone, Default)]
struct Alive(Arc<AtomicUsize>);

/// A future that stays pending for `left` polls (waking itself), then answers `result`.
struct Steps {
    left: usize,
    result: Option<Result<String, BoxError>>,
    _alive: Token,
}

struct Token(Arc<AtomicUsize>);
impl Alive {
    fn token(&self) -> Token {
        self.0.fetch_add(1, SeqCst);
        Token(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}
impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Future for Steps {
    type Output = Result<String, BoxError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.left == 0 {
            return Poll::Ready(
                self.result
                    .take()
                    .unwrap_or_else(|| Err("polled again".into())),
            );
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

const STEPS: usize = 3;

/// A fallback that is pending once in `poll_ready` for each call, and whose call takes
/// `STEPS` polls: every state of the response future is visited.
#[derive(Clone)]
struct SlowFallback {
    alive: Alive,
    ready_next: bool,
    answered: Arc<AtomicUsize>,
}

impl Service<(u32, BoxError)> for SlowFallback {
    type Response = String;
    type Error = BoxError;
    type Future = Steps;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready_next {
            return Poll::Ready(Ok(()));
        }
        self.ready_next = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
    fn call(&mut self, (n, _): (u32, BoxError)) -> Steps {
        self.ready_next = false;
        self.answered.fetch_add(1, SeqCst);
        Steps {
            left: STEPS,
            result: Some(Ok(format!("fallback {n}"))),
            _alive: self.alive.token(),
        }
    }
}

/// Polls `fut` up to `n` times with a no-op waker, then drops it. Returns whether it finished.
fn poll_n_then_drop<F: Future>(fut: F, n: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    (0..n).any(|_| fut.as_mut().poll(&mut cx).is_ready())
}

#[test]
fn cancellation_at_every_poll_leaves_nothing_behind() {
    let alive = Alive::default();
    let answered = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    let inner_alive = alive.clone();
    let fallback = SlowFallback {
        alive: alive.clone(),
        ready_next: false,
        answered: answered.clone(),
    };
    let mut svc = FallbackLayer::new(fallback)
        .on_fallback(move |_| {
            h.fetch_add(1, SeqCst);
        })
        .layer(service_fn(move |_: u32| Steps {
            left: STEPS,
            result: Some(Err(CircuitOpen::new(Duration::ZERO).into())),
            _alive: inner_alive.token(),
        }));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    // Inner: STEPS pendings, then the error (poll STEPS + 1), heard, and the fallback is
    // not ready; poll STEPS + 2 readies and calls it; STEPS more polls to its answer.
    let polls_to_finish = 2 * STEPS + 2;
    let (mut expect_heard, mut expect_answered) = (0, 0);
    for n in 0..=polls_to_finish + 1 {
        assert!(svc.poll_ready(&mut cx).is_ready());
        let done = poll_n_then_drop(svc.call(n as u32), n);
        assert_eq!(done, n >= polls_to_finish, "{n}");
        assert_eq!(
            alive.count(),
            0,
            "dropped after {n} polls: a future lives on"
        );
        expect_heard += usize::from(n > STEPS);
        expect_answered += usize::from(n > STEPS + 1);
        assert_eq!(heard.load(SeqCst), expect_heard, "{n}");
        assert_eq!(answered.load(SeqCst), expect_answered, "{n}");
    }

    // After all those drops, a call behaves as a fresh one: the service kept no state.
    let before = (heard.load(SeqCst), answered.load(SeqCst));
    assert!(svc.poll_ready(&mut cx).is_ready());
    assert!(poll_n_then_drop(svc.call(99), polls_to_finish));
    assert_eq!(
        (heard.load(SeqCst), answered.load(SeqCst)),
        (before.0 + 1, before.1 + 1)
    );
    assert_eq!(alive.count(), 0);
}

#[test]
fn cancellation_counts_a_listener_call_only_for_errors_that_came_back() {
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    let alive = Alive::default();
    let inner_alive = alive.clone();
    let mut svc = FallbackLayer::new(SlowFallback {
        alive: alive.clone(),
        ready_next: true,
        answered: Arc::default(),
    })
    .on_fallback(move |_| {
        h.fetch_add(1, SeqCst);
    })
    .layer(service_fn(move |_: u32| Steps {
        left: STEPS,
        result: Some(Err(CircuitOpen::new(Duration::ZERO).into())),
        _alive: inner_alive.token(),
    }));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    for n in 0..=STEPS {
        assert!(svc.poll_ready(&mut cx).is_ready());
        poll_n_then_drop(svc.call(1), n);
    }
    assert_eq!(
        heard.load(SeqCst),
        0,
        "cancelled before the error came back"
    );
    assert!(svc.poll_ready(&mut cx).is_ready());
    poll_n_then_drop(svc.call(1), STEPS + 1);
    assert_eq!(heard.load(SeqCst), 1);
    assert_eq!(alive.count(), 0);
}

// ===== the bare call =====

#[tokio::test(start_paused = true)]
async fn the_bare_call_agrees_with_the_layer() {
    for (name, policy, _) in selections() {
        for &source in SOURCES {
            let bare = policy
                .call(
                    || async move { Err::<String, BoxError>(source.error()) },
                    |err| async move {
                        Ok::<_, BoxError>(format!("queued 7 after {}", ErrorKind::of(&*err)))
                    },
                )
                .await;
            let mut svc = policy.layer(queued()).layer(source.failing());
            let layered = svc.ready().await.unwrap().call(7).await;
            assert_eq!(
                answer(bare),
                answer(layered),
                "selection {name:?}, source {source:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_bare_call_returns_the_fallbacks_error_and_skips_it_on_success() {
    let f = Fallback::new();
    let err = f
        .call(
            || async { Err::<(), BoxError>(CircuitOpen::new(Duration::ZERO).into()) },
            |_| async { Err::<(), _>(QueueFull) },
        )
        .await
        .unwrap_err();
    assert!(err.is::<QueueFull>());
    let answered = AtomicUsize::new(0);
    let ok = f
        .call(
            || async { Ok::<_, BoxError>(1) },
            |_| async {
                answered.fetch_add(1, SeqCst);
                Ok::<_, BoxError>(2)
            },
        )
        .await;
    assert_eq!(ok.unwrap(), 1);
    assert_eq!(answered.load(SeqCst), 0, "a success is never answered");
}
