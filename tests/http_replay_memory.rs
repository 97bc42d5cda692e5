//! Memory a `ReplayBody` holds (counting allocator, per thread): bounded in bytes and in frames, and nothing left once every copy is dropped.
#![cfg(feature = "http")]

#[path = "common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use common::alloc::live_bytes;
use http_body::{Body, Frame};
use seawall::http::ReplayBody;
use seawall::BoxError;

/// A source of `left` zero-length data chunks (as an HTTP/2 peer may send empty DATA frames,
/// 9 bytes each on the wire), produced lazily so that only the ReplayBody's memory is counted.
struct EmptyChunks {
    left: usize,
}

impl Body for EmptyChunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

#[test]
fn empty_chunks_cannot_grow_the_replay_buffer_past_its_frame_bound() {
    let limit = 1024;
    let chunks = 200_000;
    let before = live_bytes();
    let original = ReplayBody::new(EmptyChunks { left: chunks }, limit);
    // The retry keeps the original while the first attempt streams a copy.
    let mut attempt = original.try_clone().expect("replayable");
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Some(frame)) = Pin::new(&mut attempt).poll_frame(&mut cx) {
        frame.expect("no error");
    }
    // Past `limit / 64` frames (at least 16) the body is sent once, as one over the limit.
    assert!(!original.is_replayable(), "too many frames: not replayable");
    let held = live_bytes() - before;
    drop((original, attempt));
    assert!(
        live_bytes() - before <= 0,
        "memory left after every copy is dropped"
    );
    assert!(
        held < 16 * 1024,
        "a replay limit of {limit} bytes held {held} bytes for {chunks} empty chunks"
    );
}

/// A source of `left` one-byte data chunks (HTTP/2 DATA frames of one byte, 10 bytes each on
/// the wire; h2 drops empty DATA frames, not tiny ones).
struct TinyChunks {
    left: usize,
}

impl Body for TinyChunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

#[test]
fn tiny_frames_hold_no_more_than_a_few_times_the_limit() {
    let limit = seawall::http::DEFAULT_REPLAY_LIMIT;
    let before = live_bytes();
    let original = ReplayBody::new(TinyChunks { left: limit }, limit);
    let mut attempt = original.try_clone().expect("replayable");
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Some(frame)) = Pin::new(&mut attempt).poll_frame(&mut cx) {
        frame.expect("no error");
    }
    assert!(!original.is_replayable(), "too many frames: not replayable");
    let held = live_bytes() - before;
    drop((original, attempt));
    assert!(
        held < 4 * limit as i64,
        "a replay limit of {limit} bytes held {held} bytes for one-byte frames"
    );
}

#[test]
fn nothing_is_left_after_a_replayed_body_and_its_copies_are_dropped() {
    use http_body_util::Full;
    let before = live_bytes();
    {
        let original = ReplayBody::new(Full::new(Bytes::from(vec![7u8; 4096])), 8192);
        let mut a = original.try_clone().unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        while let Poll::Ready(Some(f)) = Pin::new(&mut a).poll_frame(&mut cx) {
            f.unwrap();
        }
        let mut b = original.try_clone().unwrap();
        while let Poll::Ready(Some(f)) = Pin::new(&mut b).poll_frame(&mut cx) {
            f.unwrap();
        }
    }
    assert_eq!(live_bytes() - before, 0);
}
