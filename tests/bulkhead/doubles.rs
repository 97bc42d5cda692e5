//! Test doubles: a dependency that measures its own concurrency, and small helpers.

use crate::prelude::*;

/// A dependency that counts, itself, how many calls are inside it at once: a call is inside
/// from the moment the service is called until its future ends or is dropped.
#[derive(Clone, Default)]
pub(crate) struct Gauge(Arc<GaugeState>);

#[derive(Default)]
pub(crate) struct GaugeState {
    inside: AtomicUsize,
    max: AtomicUsize,
    calls: AtomicUsize,
    /// The requests in the order the dependency saw them.
    order: Mutex<Vec<u64>>,
}

/// Leaves the gauge when the call's future ends or is dropped.
struct Inside(Arc<GaugeState>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, SeqCst);
    }
}

impl Gauge {
    /// A service answering request `ms` after `ms` milliseconds with `ms`.
    pub(crate) fn service(
        &self,
    ) -> impl Service<
        u64,
        Response = u64,
        Error = BoxError,
        Future = impl std::future::Future<Output = Result<u64, BoxError>> + Send,
    > + Clone
           + Send {
        let state = self.0.clone();
        tower::service_fn(move |ms: u64| {
            let inside = state.enter(ms);
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                drop(inside);
                Ok::<u64, BoxError>(ms)
            }
        })
    }

    /// The same dependency as a bare async call.
    pub(crate) async fn run(&self, ms: u64) -> Result<u64, BoxError> {
        let inside = self.0.enter(ms);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        drop(inside);
        Ok(ms)
    }

    pub(crate) fn inside(&self) -> usize {
        self.0.inside.load(SeqCst)
    }
    pub(crate) fn max(&self) -> usize {
        self.0.max.load(SeqCst)
    }
    pub(crate) fn calls(&self) -> usize {
        self.0.calls.load(SeqCst)
    }
    pub(crate) fn order(&self) -> Vec<u64> {
        self.0.order.lock().unwrap().clone()
    }
}

impl GaugeState {
    fn enter(self: &Arc<Self>, req: u64) -> Inside {
        self.calls.fetch_add(1, SeqCst);
        let now = self.inside.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        self.order.lock().unwrap().push(req);
        Inside(self.clone())
    }
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn bulkhead(max_concurrent: usize, max_wait: Duration) -> Bulkhead {
    Bulkhead::builder()
        .max_concurrent(max_concurrent)
        .max_wait(max_wait)
        .build()
        .unwrap()
}

/// The refusal inside a layer's error, checking its kind on the way.
pub(crate) fn full(err: &BoxError) -> BulkheadFull {
    assert_eq!(ErrorKind::of(&**err), ErrorKind::BulkheadFull, "{err}");
    *err.downcast_ref::<BulkheadFull>().unwrap()
}

/// Every event a bulkhead emits, in order.
#[derive(Clone, Default)]
pub(crate) struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub(crate) fn listen(&self, builder: Builder) -> Builder {
        let events = self.0.clone();
        builder.listener(move |_: &Bulkhead, e: &Event| events.lock().unwrap().push(*e))
    }
    pub(crate) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
