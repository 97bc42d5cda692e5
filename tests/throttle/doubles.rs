//! Test doubles: a throttle on a manual clock with reproducible draws, a backend whose
//! verdicts are scripted, and a way to poll a future by hand.

use crate::prelude::*;

/// A throttle on `time`, with `k`, a 10 s window (buckets of 1 s) and seeded draws.
pub(crate) fn throttle(time: &ManualClock, k: f64) -> AdaptiveThrottle {
    AdaptiveThrottle::builder()
        .k(k)
        .window(Duration::from_secs(10))
        .clock(time.clone())
        .seed(42)
        .build()
        .unwrap()
}

/// The backend's error: it turned the request away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overloaded;

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503 overloaded")
    }
}

impl std::error::Error for Overloaded {}

/// A backend that accepts a request `true` and rejects a request `false`, counting calls.
#[derive(Clone, Default)]
pub(crate) struct Backend {
    calls: Arc<AtomicUsize>,
}

impl Backend {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    pub(crate) fn service(
        &self,
    ) -> impl Service<
        bool,
        Response = u32,
        Error = Overloaded,
        Future = std::future::Ready<Result<u32, Overloaded>>,
    > + Clone {
        let calls = self.calls.clone();
        tower::service_fn(move |accept: bool| {
            calls.fetch_add(1, SeqCst);
            std::future::ready(if accept { Ok(7) } else { Err(Overloaded) })
        })
    }

    /// The same verdict for a bare call.
    pub(crate) fn run(&self, accept: bool) -> std::future::Ready<Result<u32, Overloaded>> {
        self.calls.fetch_add(1, SeqCst);
        std::future::ready(if accept { Ok(7) } else { Err(Overloaded) })
    }
}

/// Polls `fut` once with a no-op waker.
pub(crate) fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    fut.poll(&mut cx)
}

/// Calls `svc` with `req` and polls the response once: for services whose futures are ready.
pub(crate) fn call_now<S: Service<bool>>(svc: &mut S, req: bool) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("the service was not ready"),
    }
    let fut = pin!(svc.call(req));
    match poll_once(fut) {
        Poll::Ready(r) => r,
        Poll::Pending => panic!("the response was not ready"),
    }
}

/// A future that is pending `polls` times, then ready with `result`.
pub(crate) struct PendingFor<T> {
    pub(crate) polls: usize,
    pub(crate) result: Option<T>,
}

impl<T: Unpin> Future for PendingFor<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.polls == 0 {
            return match self.result.take() {
                Some(r) => Poll::Ready(r),
                None => panic!("polled after completion"),
            };
        }
        self.polls -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The decision a call met, for comparing paths: accepted, rejected by the backend, or shed
/// locally (with its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Accepted,
    Failed(ErrorKind),
    Shed(ErrorKind),
}
