//! The response future of [`ChaosService`](super::ChaosService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::error::BoxError;

pin_project! {
    /// The response future of [`ChaosService`](super::ChaosService): the injected latency
    /// first (the inner call's future is not polled before it is over), then the inner
    /// call's answer or the injected one.
    pub struct ChaosFuture<F, T> {
        #[pin]
        delay: Option<Sleep>,
        #[pin]
        answer: Answer<F, T>,
    }
}

pin_project! {
    #[project = AnswerProj]
    enum Answer<F, T> {
        Called { #[pin] future: F },
        Injected { result: Option<Result<T, BoxError>> },
    }
}

/// A sleep of `latency`, if any and if there is a timer (without one, latency is skipped).
/// A latency too long for an `Instant` sleeps until thirty years from now, as tokio's own
/// `sleep` saturates.
pub(super) fn delay(latency: Duration) -> Option<Sleep> {
    if latency.is_zero() {
        return None;
    }
    let now = tokio::time::Instant::now();
    let far_future = Duration::from_secs(86_400 * 365 * 30);
    let at = now
        .checked_add(latency.min(far_future))
        .unwrap_or(now + far_future);
    crate::clock::sleep_until(at)
}

impl<F, T> ChaosFuture<F, T> {
    pub(super) fn called(future: F, latency: Duration) -> Self {
        ChaosFuture {
            delay: delay(latency),
            answer: Answer::Called { future },
        }
    }

    pub(super) fn injected(result: Result<T, BoxError>, latency: Duration) -> Self {
        ChaosFuture {
            delay: delay(latency),
            answer: Answer::Injected {
                result: Some(result),
            },
        }
    }
}

impl<F, T, E> Future for ChaosFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(sleep) = this.delay.as_mut().as_pin_mut() {
            ready!(sleep.poll(cx));
            this.delay.set(None);
        }
        match this.answer.project() {
            AnswerProj::Called { future } => future.poll(cx).map_err(Into::into),
            AnswerProj::Injected { result } => match result.take() {
                Some(result) => Poll::Ready(result),
                // Polled after completion: stays pending, like `futures`' `Fuse`.
                None => Poll::Pending,
            },
        }
    }
}

impl<F, T> fmt::Debug for ChaosFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosFuture")
            .field("delayed", &self.delay.is_some())
            .finish_non_exhaustive()
    }
}
