//! A request body that a retry can send again.
//!
//! Retrying an [`http::Request`] needs its body a second time, and a streamed body (hyper's
//! `Incoming`, axum's `Body`, tonic's body) can be read only once. [`ReplayBody`] wraps such a
//! body: the first attempt streams it while keeping a copy of up to `limit` bytes, and a copy
//! made with [`ReplayBody::try_clone`] replays what was kept and then continues with whatever
//! the source has not yielded yet. A body that grows past the limit is sent once and cannot be
//! replayed; a body whose source fails mid-stream cannot be replayed either (a retry must not
//! send a truncated body).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use seawall::http::ReplayBody;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let request = http::Request::new(Full::new(Bytes::from("hello")));
//! // Keep a copy of up to 64 KiB of the body for retries.
//! let request = request.map(|body| ReplayBody::new(body, 64 * 1024));
//! let retry = request.body().try_clone().expect("within the limit: replayable");
//!
//! // The first attempt sends the body...
//! let first = request.into_body().collect().await.unwrap().to_bytes();
//! // ...and the retry sends it again, from the start.
//! let second = retry.collect().await.unwrap().to_bytes();
//! assert_eq!(first, "hello");
//! assert_eq!(second, "hello");
//! # }
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;

/// A request body that keeps a bounded copy of itself, so that a retry can send it again.
///
/// Made with [`ReplayBody::new`]; each [`ReplayBody::try_clone`] is a copy that replays the
/// body from its start, then continues with what the source has not yielded yet.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use seawall::http::ReplayBody;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let body = ReplayBody::new(Full::new(Bytes::from("hello")), 1024);
/// let retry = body.try_clone().expect("within the limit: replayable");
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// assert_eq!(retry.collect().await.unwrap().to_bytes(), "hello");
///
/// // Known to be over the limit: sent once, never kept.
/// let big = ReplayBody::new(Full::new(Bytes::from(vec![0u8; 2048])), 1024);
/// assert!(big.try_clone().is_none());
/// # }
/// ```
///
/// # Cost
///
/// - A body that is already at its end when wrapped (empty) keeps nothing, and its copies are
///   free.
/// - A body whose size hint already says it is over the limit is boxed and streamed straight
///   through: no buffer and no lock, and [`ReplayBody::try_clone`] is `None` from the start.
/// - Any other body shares one state among its copies (an `Arc<Mutex<..>>` holding the boxed
///   source, the frames seen so far and a few flags); data chunks are kept as [`Bytes`], so a
///   chunk that already is `Bytes` is shared rather than copied. When the body outgrows the
///   limit, the kept frames are freed at once.
///
/// # Copies in flight
///
/// Each copy keeps its own read position. A copy that is behind replays the kept frames; a copy
/// at the head reads the source. Two copies may be alive at once (hyper may still hold the
/// previous attempt's body while the next attempt is polled): this stays correct. A copy that
/// needs frames that are gone (the body outgrew the limit, or its source failed, after the copy
/// was made) yields a [`BodyNotReplayable`] error rather than skipping data. Copies waiting
/// at the head from different tasks are all woken when one of them takes a frame, or when a
/// copy goes away.
///
/// The limit bounds the bytes kept, and the frames too: at most `limit / 64` data frames (at
/// least 16), so a body sent in many tiny frames cannot hold many times its limit in
/// bookkeeping; past either bound it is sent once.
pub struct ReplayBody<B> {
    inner: Inner<B>,
}

enum Inner<B> {
    /// The body was at its end when wrapped: nothing to send, nothing kept.
    Empty,
    /// The body is known to be over the limit: streamed straight through, never kept.
    Passthrough(Pin<Box<B>>),
    /// The body may need a copy: the shared state and this copy's read position.
    Shared {
        shared: Arc<Mutex<Shared<B>>>,
        cursor: Cursor,
    },
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        // A copy that goes away may have been the one the source would wake: wake the copies
        // waiting at the head, so one of them polls the source itself.
        if let Inner::Shared { shared, .. } = &self.inner {
            let waiting = match shared.lock() {
                Ok(mut shared) => std::mem::take(&mut shared.waiting),
                Err(poisoned) => std::mem::take(&mut poisoned.into_inner().waiting),
            };
            for waker in waiting {
                waker.wake();
            }
        }
    }
}

/// One copy's read position in the shared body.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    /// Frames this copy has yielded (an index into the kept frames).
    pos: usize,
    /// Data bytes this copy has yielded.
    read: u64,
    /// This copy has ended (end of stream or an error): it yields nothing more.
    ended: bool,
}

/// What the copies of one body share.
struct Shared<B> {
    /// The source; `None` once it has ended, failed or panicked.
    source: Option<Pin<Box<B>>>,
    /// The frames taken from the source so far, while the body is replayable; emptied (and
    /// freed) as soon as it is not.
    frames: Vec<Kept>,
    /// Frames taken from the source so far (the head position), kept or not.
    yielded: usize,
    /// Data bytes taken from the source so far, kept or not.
    bytes_seen: u64,
    /// Why the body cannot be replayed, once it cannot.
    lost: Option<Reason>,
    /// Most bytes kept for replays.
    limit: usize,
    /// Data frames taken from the source so far: at most [`max_frames`]`(limit)` are kept.
    data_frames: usize,
    /// The tasks of copies waiting at the head for the source; woken when a frame is taken
    /// (the source wakes only the last task that polled it) or a copy goes away.
    waiting: Vec<Waker>,
}

/// The most data frames a body keeps for replays: `limit / 64`, at least 16. Each kept frame
/// costs some bookkeeping besides its bytes (about 64 bytes), so a body sent in many tiny
/// frames would otherwise hold many times its limit; past this count it is sent once, as a
/// body over the limit is.
pub(crate) const fn max_frames(limit: usize) -> usize {
    let frames = limit / 64;
    if frames < 16 {
        16
    } else {
        frames
    }
}

/// A kept frame.
enum Kept {
    Data(Bytes),
    Trailers(HeaderMap),
}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body`, keeping a copy of up to `limit` bytes for replays.
    ///
    /// A body already at its end keeps nothing and clones for free; a body whose size hint
    /// says it is over `limit` is streamed straight through and cannot be replayed.
    pub fn new(body: B, limit: usize) -> Self {
        if body.is_end_stream() {
            return ReplayBody {
                inner: Inner::Empty,
            };
        }
        if body.size_hint().lower() > to_u64(limit) {
            return ReplayBody {
                inner: Inner::Passthrough(Box::pin(body)),
            };
        }
        let shared = Shared {
            source: Some(Box::pin(body)),
            frames: Vec::new(),
            yielded: 0,
            bytes_seen: 0,
            lost: None,
            limit,
            data_frames: 0,
            waiting: Vec::new(),
        };
        ReplayBody {
            inner: Inner::Shared {
                shared: Arc::new(Mutex::new(shared)),
                cursor: Cursor::default(),
            },
        }
    }

    /// A copy that replays the body from its start, or `None` if it cannot be replayed
    /// (it outgrew the limit, its source failed mid-stream, or it is known to be over the limit).
    pub fn try_clone(&self) -> Option<Self> {
        let inner = match &self.inner {
            Inner::Empty => Inner::Empty,
            Inner::Passthrough(_) => return None,
            Inner::Shared { shared, .. } => {
                if lock(shared).lost.is_some() {
                    return None;
                }
                Inner::Shared {
                    shared: Arc::clone(shared),
                    cursor: Cursor::default(),
                }
            }
        };
        Some(ReplayBody { inner })
    }

    /// Whether `try_clone` would succeed now.
    pub fn is_replayable(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Passthrough(_) => false,
            Inner::Shared { shared, .. } => lock(shared).lost.is_none(),
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Inner::Empty => Poll::Ready(None),
            Inner::Passthrough(source) => source.as_mut().poll_frame(cx).map(|frame| {
                frame.map(|frame| match frame {
                    Ok(frame) => Ok(frame.map_data(into_bytes)),
                    Err(error) => Err(error.into()),
                })
            }),
            Inner::Shared { shared, cursor } => poll_shared(shared, cursor, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Passthrough(source) => source.is_end_stream(),
            Inner::Shared { shared, cursor } => {
                if cursor.ended {
                    return true;
                }
                let shared = lock(shared);
                if cursor.pos < shared.yielded {
                    // Frames to replay, or an error to report if they are gone.
                    return false;
                }
                match &shared.source {
                    Some(source) => source.is_end_stream(),
                    // At the head of a source that has ended: the end, unless the source
                    // failed (an error is still to come).
                    None => matches!(
                        shared.lost,
                        None | Some(Reason::Overflowed { .. } | Reason::TooManyFrames { .. })
                    ),
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Passthrough(source) => source.size_hint(),
            Inner::Shared { shared, cursor } => {
                if cursor.ended {
                    return SizeHint::with_exact(0);
                }
                let shared = lock(shared);
                // What the source has yielded that this copy has not, plus what the source
                // has still to yield.
                let behind = shared.bytes_seen.saturating_sub(cursor.read);
                let (lower, upper) = match &shared.source {
                    Some(source) => {
                        let hint = source.size_hint();
                        (hint.lower(), hint.upper())
                    }
                    None => (0, Some(0)),
                };
                let lower = behind.saturating_add(lower);
                let mut hint = SizeHint::new();
                hint.set_lower(lower);
                if let Some(upper) = upper {
                    hint.set_upper(behind.saturating_add(upper).max(lower));
                }
                hint
            }
        }
    }
}

/// One poll of a copy of a shared body.
fn poll_shared<B>(
    shared: &Mutex<Shared<B>>,
    cursor: &mut Cursor,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if cursor.ended {
        return Poll::Ready(None);
    }
    let mut shared = lock(shared);

    // Behind the head: replay a kept frame, or report that it is gone.
    if cursor.pos < shared.yielded {
        let frame = match shared.frames.get(cursor.pos) {
            Some(Kept::Data(data)) => {
                cursor.read = cursor.read.saturating_add(to_u64(data.len()));
                Frame::data(data.clone())
            }
            Some(Kept::Trailers(trailers)) => Frame::trailers(trailers.clone()),
            None => {
                cursor.ended = true;
                return Poll::Ready(Some(Err(shared.not_replayable().into())));
            }
        };
        cursor.pos += 1;
        return Poll::Ready(Some(Ok(frame)));
    }

    // At the head: read the source.
    let Some(source) = shared.source.as_mut() else {
        // The source has ended, failed or panicked, and this copy has yielded every frame it
        // gave: the end, unless the body is truncated.
        cursor.ended = true;
        return match shared.lost {
            None | Some(Reason::Overflowed { .. } | Reason::TooManyFrames { .. }) => {
                Poll::Ready(None)
            }
            Some(_) => Poll::Ready(Some(Err(shared.not_replayable().into()))),
        };
    };
    let polled = source.as_mut().poll_frame(cx);
    if polled.is_pending() {
        // Another copy may take the next frame; this one must hear of it then.
        if !shared.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            shared.waiting.push(cx.waker().clone());
        }
        return Poll::Pending;
    }
    // A frame (or the end) was taken: the copies waiting at the head have something to read.
    for waker in shared.waiting.drain(..) {
        waker.wake();
    }
    match polled {
        Poll::Pending => Poll::Pending,
        Poll::Ready(None) => {
            shared.source = None;
            cursor.ended = true;
            Poll::Ready(None)
        }
        Poll::Ready(Some(Err(error))) => {
            shared.source = None;
            shared.lose(Reason::SourceFailed);
            cursor.ended = true;
            Poll::Ready(Some(Err(error.into())))
        }
        Poll::Ready(Some(Ok(frame))) => {
            let frame = frame.map_data(into_bytes);
            let len = frame.data_ref().map_or(0, |data| to_u64(data.len()));
            shared.keep(&frame, len);
            cursor.pos += 1;
            cursor.read = cursor.read.saturating_add(len);
            Poll::Ready(Some(Ok(frame)))
        }
    }
}

impl<B> Shared<B> {
    /// Records a frame just taken from the source (`len` data bytes).
    fn keep(&mut self, frame: &Frame<Bytes>, len: u64) {
        self.yielded += 1;
        self.bytes_seen = self.bytes_seen.saturating_add(len);
        if self.lost.is_some() {
            return;
        }
        if let Some(data) = frame.data_ref() {
            self.data_frames += 1;
            if self.bytes_seen > to_u64(self.limit) {
                self.lose(Reason::Overflowed { limit: self.limit });
            } else if self.data_frames > max_frames(self.limit) {
                self.lose(Reason::TooManyFrames {
                    max: max_frames(self.limit),
                });
            } else {
                self.frames.push(Kept::Data(data.clone()));
            }
        } else if let Some(trailers) = frame.trailers_ref() {
            self.frames.push(Kept::Trailers(trailers.clone()));
        } else {
            // http-body 1 has no other kind of frame; one that cannot be kept cannot be
            // replayed.
            self.lose(Reason::UnknownFrame);
        }
    }

    /// Marks the body as not replayable (the first reason stays) and frees the kept frames.
    fn lose(&mut self, reason: Reason) {
        self.lost.get_or_insert(reason);
        self.frames = Vec::new();
    }

    /// The error for a copy that needs frames that are gone.
    fn not_replayable(&self) -> BodyNotReplayable {
        BodyNotReplayable {
            reason: self.lost.unwrap_or(Reason::SourceFailed),
        }
    }
}

/// Locks the shared state. A poisoned lock means a poll of the source panicked while it was
/// held: the source is dropped and the body is marked as not replayable, so every copy then
/// ends with a [`BodyNotReplayable`] error instead of a panic.
fn lock<B>(shared: &Mutex<Shared<B>>) -> MutexGuard<'_, Shared<B>> {
    match shared.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.source = None;
            guard.lost = Some(Reason::Panicked);
            guard.frames = Vec::new();
            shared.clear_poison();
            guard
        }
    }
}

/// A data chunk as `Bytes`: free when it already is `Bytes`.
fn into_bytes<D: Buf>(mut data: D) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Empty => f
                .debug_struct("ReplayBody")
                .field("kind", &"empty")
                .finish(),
            Inner::Passthrough(_) => f
                .debug_struct("ReplayBody")
                .field("kind", &"over the limit, not replayable")
                .finish(),
            Inner::Shared { shared, cursor } => {
                let mut d = f.debug_struct("ReplayBody");
                d.field("kind", &"shared").field("cursor", cursor);
                // `try_lock`: formatting never waits for, nor clears, a lock.
                if let Ok(shared) = shared.try_lock() {
                    d.field("limit", &shared.limit)
                        .field("kept_frames", &shared.frames.len())
                        .field("bytes_seen", &shared.bytes_seen)
                        .field("source_ended", &shared.source.is_none())
                        .field("lost", &shared.lost);
                }
                d.finish()
            }
        }
    }
}

/// The error a copy of a [`ReplayBody`] yields when it needs data that is no longer kept:
/// the body outgrew its replay limit, or its source failed, after the copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyNotReplayable {
    reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Overflowed { limit: usize },
    TooManyFrames { max: usize },
    SourceFailed,
    Panicked,
    UnknownFrame,
}

impl fmt::Display for BodyNotReplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body cannot be replayed: ")?;
        match self.reason {
            Reason::Overflowed { limit } => {
                write!(f, "it outgrew the replay limit of {limit} bytes")
            }
            Reason::TooManyFrames { max } => {
                write!(f, "it came in more than {max} frames")
            }
            Reason::SourceFailed => f.write_str("its source failed while it was being sent"),
            Reason::Panicked => f.write_str("a read of its source panicked"),
            Reason::UnknownFrame => {
                f.write_str("it carried a frame that is neither data nor trailers")
            }
        }
    }
}

impl std::error::Error for BodyNotReplayable {}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use http::HeaderValue;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};
    use std::convert::Infallible;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::task::Waker;

    type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

    /// A body streaming `chunks` (size hint unknown), then `tail` if any.
    fn streamed(chunks: &[&'static str], tail: Option<Result<Frame<Bytes>, BoxError>>) -> Chunks {
        let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        frames.extend(tail);
        StreamBody::new(stream::iter(frames))
    }

    fn trailers() -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", HeaderValue::from_static("0"));
        map
    }

    /// Polls once with a no-op waker (every test body is ready at once).
    fn poll<B>(body: &mut ReplayBody<B>) -> Option<Result<Frame<Bytes>, BoxError>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => panic!("test bodies are always ready"),
        }
    }

    fn next_data<B>(body: &mut ReplayBody<B>) -> Bytes
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        poll(body)
            .expect("a frame")
            .expect("not an error")
            .into_data()
            .expect("a data frame")
    }

    /// Reads the whole body: its data and its trailers (panics on an error).
    fn read_all<B>(mut body: ReplayBody<B>) -> (Vec<u8>, Option<HeaderMap>)
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let mut data = Vec::new();
        let mut trailers = None;
        while let Some(frame) = poll(&mut body) {
            match frame.expect("not an error").into_data() {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        (data, trailers)
    }

    /// Reads until the first error, and returns it.
    fn first_error<B>(body: &mut ReplayBody<B>) -> BoxError
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        loop {
            match poll(body) {
                Some(Ok(_)) => continue,
                Some(Err(error)) => return error,
                None => panic!("the body ended without an error"),
            }
        }
    }

    fn kept_frames<B>(body: &ReplayBody<B>) -> Option<(usize, usize)> {
        match &body.inner {
            Inner::Shared { shared, .. } => {
                let shared = lock(shared);
                Some((shared.frames.len(), shared.frames.capacity()))
            }
            _ => None,
        }
    }

    #[test]
    fn an_empty_body_allocates_nothing_and_replays_for_free() {
        for body in [
            ReplayBody::new(Full::new(Bytes::new()), 16),
            ReplayBody::new(Full::new(Bytes::new()), 0),
        ] {
            assert!(matches!(body.inner, Inner::Empty));
            assert!(body.is_replayable());
            let copy = body.try_clone().expect("an empty body replays");
            assert!(matches!(copy.inner, Inner::Empty));
            assert!(copy.is_end_stream());
            assert_eq!(copy.size_hint().exact(), Some(0));
            assert_eq!(read_all(body).0, b"");
            assert_eq!(read_all(copy).0, b"");
        }
        let empty = ReplayBody::new(Empty::<Bytes>::new(), 16);
        assert!(matches!(empty.inner, Inner::Empty));
    }

    #[test]
    fn a_full_body_within_the_limit_replays_identically_twice() {
        let body = ReplayBody::new(Full::new(Bytes::from_static(b"hello world")), 64);
        let second = body.try_clone().expect("replayable");
        let third = body.try_clone().expect("replayable");
        assert_eq!(read_all(body).0, b"hello world");
        assert!(second.is_replayable());
        assert_eq!(read_all(second).0, b"hello world");
        assert_eq!(read_all(third).0, b"hello world");
    }

    #[tokio::test]
    async fn a_body_replays_through_collect() {
        let body = ReplayBody::new(streamed(&["ab", "cd"], None), 64);
        let copy = body.try_clone().expect("replayable");
        assert_eq!(body.collect().await.expect("ok").to_bytes(), "abcd");
        assert_eq!(copy.collect().await.expect("ok").to_bytes(), "abcd");
    }

    #[test]
    fn a_copy_made_halfway_through_a_stream_reads_everything_and_the_first_finishes_too() {
        let mut first = ReplayBody::new(streamed(&["one ", "two ", "three ", "four"], None), 64);
        assert_eq!(next_data(&mut first), "one ");
        assert_eq!(next_data(&mut first), "two ");
        // The first attempt is not dropped (hyper may still hold it) when the retry runs.
        let second = first.try_clone().expect("replayable");
        assert_eq!(read_all(second).0, b"one two three four");
        // The first copy is now behind the head: it continues from the kept frames.
        assert_eq!(read_all(first).0, b"three four");
    }

    #[test]
    fn a_body_of_exactly_the_limit_stays_replayable() {
        let body = ReplayBody::new(streamed(&["abc", "def"], None), 6);
        let copy = body.try_clone().expect("replayable");
        assert_eq!(read_all(body).0, b"abcdef");
        assert!(copy.is_replayable());
        assert_eq!(read_all(copy).0, b"abcdef");
    }

    #[test]
    fn a_body_over_the_limit_streams_fully_once_and_is_not_replayable() {
        let mut body = ReplayBody::new(streamed(&["abc", "def", "ghi"], None), 5);
        assert!(body.is_replayable());
        assert_eq!(next_data(&mut body), "abc");
        assert!(matches!(kept_frames(&body), Some((1, capacity)) if capacity > 0));
        assert_eq!(next_data(&mut body), "def");
        // Over the limit: the kept copy is freed and no copy can be made.
        assert_eq!(kept_frames(&body), Some((0, 0)));
        assert!(!body.is_replayable());
        assert!(body.try_clone().is_none());
        assert_eq!(next_data(&mut body), "ghi");
        assert!(poll(&mut body).is_none());
        assert!(body.is_end_stream());
        assert!(body.try_clone().is_none());
    }

    #[test]
    fn a_known_size_body_over_the_limit_is_never_kept() {
        let body = ReplayBody::new(Full::new(Bytes::from_static(b"0123456789")), 9);
        assert!(matches!(body.inner, Inner::Passthrough(_)));
        assert!(!body.is_replayable());
        assert!(body.try_clone().is_none());
        assert_eq!(body.size_hint().exact(), Some(10));
        assert_eq!(read_all(body).0, b"0123456789");
    }

    #[test]
    fn a_copy_behind_the_head_after_an_overflow_errors_with_body_not_replayable() {
        let mut first = ReplayBody::new(streamed(&["abc", "def", "ghi"], None), 5);
        let mut second = first.try_clone().expect("replayable");
        assert_eq!(
            read_all(first.try_clone().expect("replayable")).0,
            b"abcdefghi"
        );
        // The copy that read past the limit was the only one at the head.
        let error = first_error(&mut first);
        let error = error
            .downcast_ref::<BodyNotReplayable>()
            .expect("a BodyNotReplayable");
        assert_eq!(
            error.to_string(),
            "request body cannot be replayed: it outgrew the replay limit of 5 bytes"
        );
        assert!(second.size_hint().lower() > 0);
        assert!(!second.is_end_stream());
        let error = first_error(&mut second);
        assert!(error.is::<BodyNotReplayable>());
        // After its error, the copy ends.
        assert!(poll(&mut second).is_none());
        assert!(second.is_end_stream());
    }

    #[test]
    fn a_source_error_mid_stream_makes_the_body_not_replayable() {
        let tail = Some(Err::<Frame<Bytes>, BoxError>("connection reset".into()));
        let mut first = ReplayBody::new(streamed(&["abc"], tail), 64);
        let mut earlier = first.try_clone().expect("replayable");
        assert_eq!(next_data(&mut first), "abc");
        assert!(first.is_replayable());
        // The copy that read the error gets the source's own error.
        let error = first_error(&mut first);
        assert_eq!(error.to_string(), "connection reset");
        assert!(!first.is_replayable());
        assert!(first.try_clone().is_none());
        assert!(poll(&mut first).is_none());
        // A copy made earlier must not send a truncated body.
        let error = first_error(&mut earlier);
        let error = error
            .downcast_ref::<BodyNotReplayable>()
            .expect("a BodyNotReplayable");
        assert_eq!(
            error.to_string(),
            "request body cannot be replayed: its source failed while it was being sent"
        );
    }

    #[test]
    fn a_source_error_before_any_data_fails_a_copy_at_the_head_too() {
        let tail = Some(Err::<Frame<Bytes>, BoxError>("refused".into()));
        let mut first = ReplayBody::new(streamed(&[], tail), 64);
        let mut second = first.try_clone().expect("replayable");
        assert_eq!(first_error(&mut first).to_string(), "refused");
        assert!(!second.is_end_stream());
        assert!(first_error(&mut second).is::<BodyNotReplayable>());
    }

    #[test]
    fn trailers_are_replayed_after_the_data() {
        let tail = Some(Ok(Frame::trailers(trailers())));
        let body = ReplayBody::new(streamed(&["ab", "cd"], tail), 64);
        let copy = body.try_clone().expect("replayable");
        assert_eq!(read_all(body), (b"abcd".to_vec(), Some(trailers())));
        assert_eq!(read_all(copy), (b"abcd".to_vec(), Some(trailers())));
    }

    #[test]
    fn a_copy_started_after_the_source_ended_replays_the_trailers() {
        let tail = Some(Ok(Frame::trailers(trailers())));
        let body = ReplayBody::new(streamed(&["ab"], tail), 64);
        assert_eq!(
            read_all(body.try_clone().expect("replayable")).1,
            Some(trailers())
        );
        let mut copy = body.try_clone().expect("replayable");
        assert_eq!(next_data(&mut copy), "ab");
        let frame = poll(&mut copy).expect("a frame").expect("not an error");
        assert_eq!(frame.into_trailers().ok(), Some(trailers()));
        assert!(copy.is_end_stream());
        assert!(poll(&mut copy).is_none());
    }

    #[test]
    fn size_hint_and_is_end_stream_follow_each_copy() {
        let mut first = ReplayBody::new(Full::new(Bytes::from_static(b"hello")), 64);
        assert_eq!(first.size_hint().exact(), Some(5));
        assert!(!first.is_end_stream());
        assert_eq!(next_data(&mut first), "hello");
        assert_eq!(first.size_hint().exact(), Some(0));
        assert!(first.is_end_stream());

        let mut second = first.try_clone().expect("replayable");
        assert_eq!(second.size_hint().exact(), Some(5));
        assert!(!second.is_end_stream());
        assert_eq!(next_data(&mut second), "hello");
        assert_eq!(second.size_hint().exact(), Some(0));
        assert!(second.is_end_stream());
        assert!(poll(&mut second).is_none());

        // A stream of unknown size: a fresh copy knows at least what has been read so far.
        let mut first = ReplayBody::new(streamed(&["abc", "de"], None), 64);
        assert_eq!(first.size_hint().lower(), 0);
        assert_eq!(next_data(&mut first), "abc");
        let third = first.try_clone().expect("replayable");
        assert_eq!(third.size_hint().lower(), 3);
        assert!(!third.is_end_stream());
        assert_eq!(read_all(first).0, b"de");
        assert_eq!(third.size_hint().exact(), Some(5));
    }

    #[test]
    fn bytes_chunks_are_shared_not_copied() {
        let data = Bytes::from_static(b"shared chunk");
        let mut body = ReplayBody::new(Full::new(data.clone()), 64);
        let mut copy = body.try_clone().expect("replayable");
        assert_eq!(next_data(&mut body).as_ptr(), data.as_ptr());
        assert_eq!(next_data(&mut copy).as_ptr(), data.as_ptr());
    }

    /// A body whose every poll panics.
    struct Panicking;

    impl Body for Panicking {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            panic!("the source panicked")
        }
    }

    #[test]
    fn a_source_that_panics_leaves_the_copies_erroring_not_panicking() {
        let mut first = ReplayBody::new(Panicking, 64);
        let mut second = first.try_clone().expect("replayable");
        let panicked = catch_unwind(AssertUnwindSafe(|| poll(&mut first)));
        assert!(panicked.is_err());
        assert!(!second.is_replayable());
        assert!(second.try_clone().is_none());
        let error = first_error(&mut second);
        assert_eq!(
            error.to_string(),
            "request body cannot be replayed: a read of its source panicked"
        );
        assert!(first_error(&mut first).is::<BodyNotReplayable>());
    }

    #[test]
    fn replay_body_is_send_unpin_and_static_even_around_a_body_that_is_not_unpin() {
        fn assert_send_unpin_static<T: Send + Unpin + 'static>(_: &T) {}
        let full = ReplayBody::new(Full::new(Bytes::from_static(b"x")), 64);
        assert_send_unpin_static(&full);
        // An `async` block is not `Unpin`, so neither is this body.
        let not_unpin = StreamBody::new(stream::once(async {
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"pinned")))
        }));
        let body = ReplayBody::new(not_unpin, 64);
        assert_send_unpin_static(&body);
        let copy = body.try_clone().expect("replayable");
        assert_eq!(read_all(body).0, b"pinned");
        assert_eq!(read_all(copy).0, b"pinned");
    }

    #[test]
    fn debug_shows_the_state_without_the_body() {
        let body = ReplayBody::new(streamed(&["abc"], None), 64);
        let text = format!("{body:?}");
        assert!(text.contains("limit: 64"), "{text}");
        assert!(format!("{:?}", ReplayBody::new(Empty::<Bytes>::new(), 1)).contains("empty"));
    }
}
