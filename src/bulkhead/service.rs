use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::slots::{Admission, Bulkhead};
use crate::error::BoxError;

/// A service behind a bulkhead. Built by [`BulkheadLayer`](super::BulkheadLayer).
///
/// `poll_ready` forwards to the inner service and takes no slot: a caller that readies the
/// service and never calls holds nothing of the bulkhead. `call` takes a slot, and the
/// response future holds it until the response is ready or the future is dropped. When every
/// slot is busy, `call` returns a ready [`BulkheadFull`](super::BulkheadFull) error (boxed)
/// without calling the inner service, or, with a `max_wait`, a future that waits for a slot
/// and only then calls the inner service.
///
/// # Readiness while waiting
///
/// A waiting call must call the inner service later, and tower lets a service be called only
/// once it is ready. So `call` hands the readied inner service to the waiting future and
/// keeps a clone for the next call (the inner service must be `Clone`, as for seawall's
/// retry and tower's own `Buffer` users); our caller readies that clone, through
/// `poll_ready`, before its next call, as the contract requires. The waiting future holds
/// the readied service (and whatever its readiness reserved, a buffer slot say) for at most
/// `max_wait`. A call that finds a slot free at once calls the service in place: no clone.
///
/// Clones share the bulkhead: a clone is the inner service's clone plus one reference count.
#[derive(Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Wraps `inner` behind `bulkhead`.
    pub const fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService { inner, bulkhead }
    }

    /// The bulkhead in front of the inner service.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.bulkhead.admit() {
            Admission::Admitted(permit) => ResponseFuture::called(self.inner.call(req), permit),
            Admission::Full(full) => ResponseFuture::rejected(full),
            Admission::Wait(wait) => {
                // The readied service makes this call once a slot frees; the clone left
                // behind must be readied by our caller before the next call.
                let clone = self.inner.clone();
                let svc = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(wait, svc, req)
            }
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead)
            .finish()
    }
}
