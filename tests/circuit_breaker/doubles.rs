//! Test doubles: a scriptable backend, helpers to send, build and record.

#![allow(dead_code)]

use crate::prelude::*;

// ===== test doubles =====

pub(crate) type Reply = Result<&'static str, io::Error>;

/// What the inner service should do with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Req {
    /// Succeed at once.
    Ok,
    /// Fail at once with an `io::Error` of kind `Other`.
    Fail,
    /// Fail at once with an `io::Error` of kind `NotFound`.
    NotFound,
    /// Succeed after sleeping this many milliseconds (tokio time).
    SleepOk(u64),
    /// Wait until the test releases the call with [`Backend::release`].
    Gated,
}

/// An inner service that counts its calls and can hold calls open until the test releases them.
#[derive(Clone, Default)]
pub(crate) struct Backend {
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) gates: Arc<Mutex<VecDeque<oneshot::Sender<Reply>>>>,
}

impl Backend {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.gates.lock().unwrap().len()
    }

    /// Completes the oldest gated call with `reply` (a no-op if that call was dropped).
    pub(crate) fn release(&self, reply: Reply) {
        let tx = self
            .gates
            .lock()
            .unwrap()
            .pop_front()
            .expect("a gated call is waiting");
        let _ = tx.send(reply);
    }
}

impl Service<Req> for Backend {
    type Response = &'static str;
    type Error = io::Error;
    type Future = BoxFuture<'static, Reply>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.calls.fetch_add(1, SeqCst);
        match req {
            Req::Ok => Box::pin(async { Ok("ok") }),
            Req::Fail => Box::pin(async { Err(io::Error::other("boom")) }),
            Req::NotFound => Box::pin(async { Err(io::Error::from(io::ErrorKind::NotFound)) }),
            Req::SleepOk(ms) => Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok("slow")
            }),
            Req::Gated => {
                let (tx, rx) = oneshot::channel();
                self.gates.lock().unwrap().push_back(tx);
                Box::pin(async move {
                    rx.await
                        .unwrap_or_else(|_| Err(io::Error::other("gate dropped")))
                })
            }
        }
    }
}

/// One call through a service: `ready` then `call`.
pub(crate) async fn send<S>(svc: &mut S, req: Req) -> Result<&'static str, BoxError>
where
    S: Service<Req, Response = &'static str, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

/// Asserts that `result` is a boxed [`CircuitOpen`] rejection and returns it.
#[track_caller]
pub(crate) fn rejection<T: std::fmt::Debug>(result: Result<T, BoxError>) -> CircuitOpen {
    let err = result.expect_err("expected a circuit-open rejection");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::CircuitOpen, "got: {err}");
    *err.downcast_ref::<CircuitOpen>()
        .expect("the rejection is a boxed CircuitOpen")
}

/// Asserts that `result` is the inner service's own error, not a rejection.
#[track_caller]
pub(crate) fn inner_error<T: std::fmt::Debug>(result: Result<T, BoxError>) -> BoxError {
    let err = result.expect_err("expected the inner service's error");
    assert_eq!(ErrorKind::of(&*err), ErrorKind::Inner, "got: {err}");
    err
}

pub(crate) fn build(builder: Builder) -> CircuitBreaker {
    builder.build().expect("valid configuration")
}

/// A breaker driven by a manual clock.
pub(crate) fn manual(builder: Builder) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = build(builder.clock(Clock::from(clock.clone())));
    (breaker, clock)
}

#[track_caller]
pub(crate) fn record(breaker: &CircuitBreaker, outcome: Outcome) {
    breaker
        .try_acquire()
        .expect("the breaker admits the call")
        .record(outcome);
}

pub(crate) const SEC: Duration = Duration::from_secs(1);

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
