//! The `http` fuzz target's logic, shared by the cargo-fuzz binary (`fuzz/fuzz_targets/http.rs`)
//! and the main crate's proptest-driven test (`tests/fuzz_http.rs`, which includes this file
//! with `#[path]`; it needs seawall's `grpc` feature).
//!
//! Deterministic: no clock (every `now` is `UNIX_EPOCH` plus seconds decoded from the input),
//! no network, no randomness, no allocator tricks. Memory is accounted for with drop counters:
//! every data chunk of a test body is a `Bytes` whose owner counts itself, and so does the
//! source body; what the replay buffer keeps is checked against them.
//!
//! # Input encoding
//!
//! Decoded by hand, like `targets.rs`; a read past the end gives zeros, so every input means
//! something. Byte 0 is `n`, the length of the **header section** (the next `n` bytes, fewer if
//! the input is shorter); the rest is the **body section**.
//!
//! **Header section**: checks, each an opcode byte (`% 4`) then its operands, to the section's
//! end:
//!
//! - `0`: `now`, a value, two time shifts: `parse_retry_after` (and `retry_after` on a map).
//! - `1`: a value: `Code::from_bytes`.
//! - `2`: a value: `Pushback::from_bytes`.
//! - `3`: a count byte (`% 6` entries), then per entry a name byte (`% 6`, from [`NAMES`]) and
//!   a value; then `now`: `grpc_status`, `pushback` and `retry_after` on the `HeaderMap`.
//!
//! A *value* is a form byte (top two bits: the form; low six: a length), its bytes, then an OWS
//! byte (bits 0-1: spaces or tabs before, bits 2-3: after, bit 4: tabs rather than spaces):
//! form 0, `len` raw bytes; form 1, `len` decimal digits (each input byte `% 10`); form 2, an
//! HTTP-date: 5 bytes of seconds since the epoch (`%` the end of year 9999), then a byte whose
//! bits 0-1 pick IMF-fixdate, RFC 850 or asctime and bit 2 asks for one byte overwritten (a
//! position byte and a byte follow); form 3, digits as in form 1 with one of them replaced by
//! a junk byte (a position byte and the byte follow). A `now` is a selector byte: top bits 0,
//! an entry of [`SPECIAL_NOW`]; 1, `low` days; 2, 8 raw bytes; 3, 4 raw bytes (seconds).
//!
//! **Body section**: a limit selector byte (top bits: 0, `low` bytes; 1, an entry of a table
//! relative to the body's total, [`limit`]; 2, a raw `u32`; 3, `low * 256 + byte`), a hint
//! byte (`% 3`: the source's size hint unknown as `StreamBody`'s, exact and honest, or a fixed
//! lie `(a, a + b)` from two more bytes), a chunk count byte (`% 41`: past 16, the fewest frames a body keeps), each chunk a size byte
//! (top bit set: `(size & 0x7f) * 16`, else `size % 33`) then that many content bytes (each
//! XORed with its offset in the body, so a zero input still gives distinct bytes); a tail byte
//! (bit 0: trailers follow, a count byte `% 4` and per trailer a name byte and a value byte;
//! bit 1: the stream fails, at the item given by one more byte `%` (items + 1), the error
//! replacing everything from there). Then operations, an opcode byte (`% 8`) and a copy index
//! byte each, to the end (at most [`MAX_OPS`]): 0 `try_clone`, 1-4 poll one frame, 5 poll to
//! the end, 6 drop, 7 check `is_end_stream`/`size_hint`. A last byte (odd: read every copy
//! to its end) before every copy is dropped.
//!
//! # What is checked
//!
//! - Headers: nothing panics; a delta-seconds value (digits, OWS around) is exactly that many
//!   seconds, saturating; a value with anything else that is not shaped like an HTTP-date is
//!   `None`; a generated HTTP-date is exactly its distance from `now` (zero if past); the
//!   result does not depend on OWS, is the same twice, moves with `now` exactly as a date
//!   should (and not at all for delta-seconds); `Code::from_bytes` and `Pushback::from_bytes`
//!   match their documented grammar; the map functions read the first value of their field.
//! - `ReplayBody`: a model of the body predicts every poll of every copy (the frame, the
//!   source's error, a `BodyNotReplayable`, or the end) and every `try_clone`/`is_replayable`;
//!   a copy that ends cleanly has yielded exactly the source's bytes then its trailers; a copy
//!   that reports `is_end_stream()` then ends, and one that ended reports it; `size_hint` is
//!   ordered, exact (0) at the end and, for an honest source, brackets what is left; the
//!   chunks alive are exactly those still in the source plus, while the body is replayable,
//!   those kept; and once every copy is dropped, nothing is alive.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::bytes::Bytes;
use ::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use ::http::HeaderMap;
use ::http_body::{Body, Frame, SizeHint};
use ::http_body_util::StreamBody;
use futures::stream;

use seawall::grpc::{grpc_status, pushback, Code, Pushback};
use seawall::http::{parse_retry_after, retry_after, BodyNotReplayable, ReplayBody};
use seawall::BoxError;

/// Most body operations per input.
pub const MAX_OPS: usize = 512;
/// Most live copies of the body at once (a clone beyond it is checked, then dropped).
const MAX_COPIES: usize = 4;
/// The first second of year 10000: HTTP-dates end just before it.
const END_OF_9999: u64 = 253_402_300_800;

/// Header names a map entry may have.
pub const NAMES: &[&str] = &[
    "grpc-status",
    "grpc-retry-pushback-ms",
    "retry-after",
    "Grpc-Status",
    "Retry-After",
    "x-other",
];

/// Seconds since the epoch for a `now`.
pub const SPECIAL_NOW: &[u64] = &[
    0,
    1,
    784_111_777, // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example
    951_782_400, // 2000-02-29
    1_700_000_000,
    3_155_760_000, // 2070-01-01: RFC 850 years wrap before it
    END_OF_9999 - 1,
    END_OF_9999,
    u32::MAX as u64,
    i64::MAX as u64,
    u64::MAX,
];

// ===== decoding =====

/// A cursor over the fuzzer's bytes; reads past the end give zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    /// The next `n` bytes (fewer at the end) as an input of their own.
    fn split(&mut self, n: usize) -> Input<'a> {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        Input { data: head }
    }

    /// Seconds since the epoch.
    fn now_secs(&mut self) -> u64 {
        let sel = self.byte();
        let low = sel & 0x3f;
        match sel >> 6 {
            0 => SPECIAL_NOW[usize::from(low) % SPECIAL_NOW.len()],
            1 => u64::from(low) * 86_400,
            2 => u64::from_le_bytes(self.bytes()),
            _ => u64::from(u32::from_le_bytes(self.bytes())),
        }
    }

    /// A header value's bytes, and the date it was generated from (if it is an unmodified
    /// generated HTTP-date).
    fn value(&mut self) -> (Vec<u8>, Option<u64>) {
        let sel = self.byte();
        let len = usize::from(sel & 0x3f);
        let mut date = None;
        let mut bytes = match sel >> 6 {
            0 => (0..len).map(|_| self.byte()).collect(),
            1 => self.digits(len),
            2 => {
                let mut raw = [0; 8];
                raw[..5].copy_from_slice(&self.bytes::<5>());
                let secs = u64::from_le_bytes(raw) % END_OF_9999;
                let how = self.byte();
                let mut text = format_date(secs, how % 4).into_bytes();
                if how & 4 != 0 {
                    let at = usize::from(self.byte()) % text.len();
                    text[at] = self.byte();
                } else if how % 4 != 1 || (1970..2070).contains(&civil(secs).0) {
                    // (An RFC 850 date's two-digit year means 1970-2069 only.)
                    date = Some(secs);
                }
                text
            }
            _ => {
                let mut digits = self.digits(len.max(1));
                let at = usize::from(self.byte()) % digits.len();
                digits[at] = self.byte();
                digits
            }
        };
        let ows = self.byte();
        let pad = if ows & 0x10 != 0 { b'\t' } else { b' ' };
        let mut out = vec![pad; usize::from(ows & 3)];
        out.append(&mut bytes);
        out.extend(std::iter::repeat_n(pad, usize::from(ows >> 2 & 3)));
        (out, date)
    }

    fn digits(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| b'0' + self.byte() % 10).collect()
    }
}

// ===== HTTP-dates, written out for the parser to read =====

/// (year, month 1-12, day 1-31, weekday 0 = Sunday) of a day since the epoch's second.
fn civil(secs: u64) -> (u64, u64, u64, u64) {
    // Howard Hinnant's days-to-civil, for days >= 0.
    let days = secs / 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, (days + 4) % 7)
}

/// `secs` as an HTTP-date: 0 IMF-fixdate, 1 RFC 850, 2 and 3 asctime.
fn format_date(secs: u64, form: u8) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const WEEKDAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, wday) = civil(secs);
    let (wday, mon) = (wday as usize, MONTHS[month as usize - 1]);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match form {
        0 => format!(
            "{}, {day:02} {mon} {year:04} {h:02}:{m:02}:{s:02} GMT",
            DAYS[wday]
        ),
        1 => format!(
            "{}, {day:02}-{mon}-{:02} {h:02}:{m:02}:{s:02} GMT",
            WEEKDAYS[wday],
            year % 100
        ),
        _ => format!(
            "{} {mon} {day:>2} {h:02}:{m:02}:{s:02} {year:04}",
            DAYS[wday]
        ),
    }
}

/// Whether `t` has the shape of one of the three HTTP-date forms (length and day name).
fn date_shaped(t: &[u8]) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    if !t.is_ascii() {
        return false;
    }
    let imf = t.len() == 29
        && DAYS
            .iter()
            .any(|d| t.starts_with(format!("{d}, ").as_bytes()));
    let asctime = t.len() == 24
        && DAYS
            .iter()
            .any(|d| t.starts_with(format!("{d} ").as_bytes()));
    let rfc850 = WEEKDAYS.iter().any(|d| {
        let prefix = format!("{d}, ");
        t.starts_with(prefix.as_bytes()) && t.len() == prefix.len() + 22
    });
    imf || asctime || rfc850
}

/// `bytes` without SP and HTAB on either side.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The number `digits` spells, saturating at `u64::MAX`.
fn saturating_number(digits: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &d in digits {
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(n) => n,
            None => return u64::MAX,
        };
    }
    n
}

fn is_digits(t: &[u8]) -> bool {
    !t.is_empty() && t.iter().all(u8::is_ascii_digit)
}

fn epoch_plus(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

// ===== header checks =====

/// `parse_retry_after` on `bytes` at `now_secs`.
fn check_retry_after(bytes: &[u8], generated: Option<u64>, now_secs: u64) {
    let Ok(value) = HeaderValue::from_bytes(bytes) else {
        return;
    };
    let Some(now) = epoch_plus(now_secs) else {
        return;
    };
    let parsed = parse_retry_after(&value, now);
    assert_eq!(
        parse_retry_after(&value.clone(), now),
        parsed,
        "not the same twice"
    );

    let t = trim_ows(bytes);
    if is_digits(t) {
        assert_eq!(
            parsed,
            Some(Duration::from_secs(saturating_number(t))),
            "delta-seconds {bytes:?}"
        );
    } else if !date_shaped(t) {
        assert_eq!(parsed, None, "junk that is no HTTP-date parsed: {bytes:?}");
    } else if let Some(d) = parsed {
        // A date is at most the end of year 9999.
        assert!(
            d.as_secs() < END_OF_9999.saturating_sub(now_secs).max(1),
            "{bytes:?} at {now_secs} is {d:?} away"
        );
        assert_eq!(d.subsec_nanos(), 0);
    }
    if let Some(date) = generated {
        assert_eq!(
            parsed,
            Some(Duration::from_secs(date.saturating_sub(now_secs))),
            "the generated date {:?} for {date} at {now_secs}",
            String::from_utf8_lossy(bytes)
        );
    }

    // OWS around the value changes nothing.
    let mut padded = b" \t".to_vec();
    padded.extend_from_slice(bytes);
    padded.extend_from_slice(b"\t ");
    let padded = HeaderValue::from_bytes(&padded).expect("OWS keeps a value valid");
    assert_eq!(
        parse_retry_after(&padded, now),
        parsed,
        "OWS changed {bytes:?}"
    );

    // Later, a date is that much nearer (never below zero); delta-seconds do not move.
    for shift in [1, 86_400 * 365] {
        let Some(later) = now_secs.checked_add(shift).and_then(epoch_plus) else {
            continue;
        };
        let expected = parsed.map(|d| {
            if is_digits(t) {
                d
            } else {
                d.saturating_sub(Duration::from_secs(shift))
            }
        });
        assert_eq!(
            parse_retry_after(&value, later),
            expected,
            "{bytes:?} {shift}s later"
        );
    }

    // Through a map: the same.
    let mut map = HeaderMap::new();
    map.insert(RETRY_AFTER, value);
    assert_eq!(retry_after(&map, now), parsed);
}

/// `Code::from_bytes`: digits (OWS around) naming a code are that code, whatever their leading
/// zeros; anything else is `Unknown`.
fn check_code(bytes: &[u8]) {
    let code = Code::from_bytes(bytes);
    assert_eq!(Code::from_bytes(bytes), code);
    assert_eq!(Code::from_i32(code.as_i32()), code);
    let t = trim_ows(bytes);
    if is_digits(t) {
        let n = saturating_number(t);
        let expected = Code::ALL
            .get(usize::try_from(n).unwrap_or(usize::MAX))
            .copied()
            .unwrap_or(Code::Unknown);
        assert_eq!(code, expected, "grpc-status {bytes:?}");
    } else {
        assert_eq!(code, Code::Unknown, "grpc-status {bytes:?}");
    }
    assert_eq!(Code::from_bytes(code.as_i32().to_string().as_bytes()), code);
    assert_eq!(code.to_string(), code.name());
}

/// `Pushback::from_bytes`: digits (OWS around) are that many milliseconds, saturating;
/// anything else asks not to retry.
fn check_pushback(bytes: &[u8]) {
    let parsed = Pushback::from_bytes(bytes);
    let t = trim_ows(bytes);
    let expected = if is_digits(t) {
        Pushback::After(Duration::from_millis(saturating_number(t)))
    } else {
        Pushback::DoNotRetry
    };
    assert_eq!(parsed, expected, "grpc-retry-pushback-ms {bytes:?}");
    assert_eq!(
        parsed.delay(),
        match expected {
            Pushback::After(d) => Some(d),
            Pushback::DoNotRetry => None,
        }
    );
}

/// The map functions read the first value of their field, whatever the name's case was.
fn check_map(input: &mut Input<'_>) {
    let mut map = HeaderMap::new();
    for _ in 0..input.byte() % 6 {
        let name = NAMES[usize::from(input.byte()) % NAMES.len()];
        let (bytes, _) = input.value();
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid name");
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            map.append(name, value);
        }
    }
    let now_secs = input.now_secs();
    let first = |name: &str| map.get(name).map(HeaderValue::as_bytes);
    assert_eq!(
        grpc_status(&map),
        first("grpc-status").map(Code::from_bytes)
    );
    assert_eq!(
        pushback(&map),
        first("grpc-retry-pushback-ms").map(Pushback::from_bytes)
    );
    if let Some(now) = epoch_plus(now_secs) {
        assert_eq!(
            retry_after(&map, now),
            map.get("retry-after")
                .and_then(|v| parse_retry_after(v, now))
        );
    }
}

fn headers(mut input: Input<'_>) {
    while !input.is_empty() {
        match input.byte() % 4 {
            0 => {
                let now = input.now_secs();
                let (bytes, date) = input.value();
                check_retry_after(&bytes, date, now);
            }
            1 => check_code(&input.value().0),
            2 => check_pushback(&input.value().0),
            _ => check_map(&mut input),
        }
    }
}

// ===== ReplayBody =====

/// A live-object counter: each `Alive` adds one while it exists.
#[derive(Debug)]
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Alive(Arc::clone(count))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A chunk's memory, counted.
struct Chunk {
    bytes: Vec<u8>,
    _alive: Alive,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The source's own error.
#[derive(Debug)]
struct SourceError;

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the source failed")
    }
}

impl Error for SourceError {}

type Frames = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hint {
    /// `StreamBody`'s: `(0, None)`, never at its end.
    Unknown,
    /// Exactly the data bytes left, at its end when no item is left.
    Exact,
    /// A fixed `(lower, upper)`, whatever is left (a lie, most of the time).
    Fixed(u64, u64),
}

/// The body under test: a `StreamBody` over the decoded items, with a size hint.
struct Source {
    frames: Frames,
    hint: Hint,
    items_left: usize,
    bytes_left: u64,
    _alive: Alive,
}

impl Body for Source {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.frames).poll_frame(cx);
        if let Poll::Ready(Some(item)) = &polled {
            this.items_left -= 1;
            if let Some(data) = item.as_ref().ok().and_then(Frame::data_ref) {
                this.bytes_left -= data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.hint != Hint::Unknown && self.items_left == 0
    }

    fn size_hint(&self) -> SizeHint {
        match self.hint {
            Hint::Unknown => SizeHint::default(),
            Hint::Exact => SizeHint::with_exact(self.bytes_left),
            Hint::Fixed(lower, upper) => {
                let mut hint = SizeHint::new();
                hint.set_lower(lower);
                hint.set_upper(upper);
                hint
            }
        }
    }
}

/// What the source yields, in order.
#[derive(Debug)]
enum Item {
    Data(Vec<u8>),
    Trailers(HeaderMap),
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// The source was at its end when wrapped.
    Empty,
    /// Its size hint was over the limit: streamed through, never kept.
    Passthrough,
    /// Shared among copies.
    Shared,
}

/// What the test knows of the body.
struct Model {
    items: Vec<Item>,
    limit: usize,
    mode: Mode,
    honest: bool,
    /// Items taken from the source so far.
    head: usize,
    /// Chunks alive, sources alive.
    chunks: Arc<AtomicUsize>,
    sources: Arc<AtomicUsize>,
}

/// The next poll of a copy, as predicted.
#[derive(Debug, PartialEq)]
enum Expect {
    Item(usize),
    SourceError,
    NotReplayable,
    End,
}

impl Model {
    fn bytes_before(&self, k: usize) -> u64 {
        self.items[..k]
            .iter()
            .map(|item| match item {
                Item::Data(d) => d.len() as u64,
                _ => 0,
            })
            .sum()
    }

    fn data_frames_before(&self, k: usize) -> usize {
        self.items[..k]
            .iter()
            .filter(|item| matches!(item, Item::Data(_)))
            .count()
    }

    fn data(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for item in &self.items {
            if let Item::Data(d) = item {
                all.extend_from_slice(d);
            }
        }
        all
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.items.iter().find_map(|item| match item {
            Item::Trailers(t) => Some(t),
            _ => None,
        })
    }

    /// The source failed, and a copy read its error.
    fn failed(&self) -> bool {
        self.items[..self.head]
            .iter()
            .any(|item| matches!(item, Item::Error))
    }

    /// The body cannot be replayed (any more).
    fn lost(&self) -> bool {
        match self.mode {
            Mode::Empty => false,
            Mode::Passthrough => true,
            Mode::Shared => {
                self.failed()
                    || self.bytes_before(self.head) > self.limit as u64
                    || self.data_frames_before(self.head) > max_frames(self.limit)
            }
        }
    }

    fn at(&self, k: usize) -> Expect {
        match self.items.get(k) {
            None => Expect::End,
            Some(Item::Error) => Expect::SourceError,
            Some(_) => Expect::Item(k),
        }
    }

    fn expect(&self, copy: &Replica) -> Expect {
        if copy.ended {
            return Expect::End;
        }
        match self.mode {
            Mode::Empty => Expect::End,
            Mode::Passthrough => self.at(copy.pos),
            Mode::Shared if copy.pos < self.head && self.lost() => Expect::NotReplayable,
            Mode::Shared if copy.pos == self.head && self.failed() => Expect::NotReplayable,
            Mode::Shared => self.at(copy.pos),
        }
    }

    /// Chunks the body must hold now: those still in the source, and those kept.
    fn chunks_held(&self, copies: usize) -> usize {
        let data = |items: &[Item]| items.iter().filter(|i| matches!(i, Item::Data(_))).count();
        match self.mode {
            _ if copies == 0 => 0,
            Mode::Empty => 0,
            Mode::Passthrough => data(&self.items[self.head..]),
            Mode::Shared => {
                let kept = if self.lost() {
                    0
                } else {
                    data(&self.items[..self.head])
                };
                data(&self.items[self.head..]) + kept
            }
        }
    }
}

/// One copy of the body and what it has yielded.
struct Replica {
    body: ReplayBody<Source>,
    /// Items yielded (an error included).
    pos: usize,
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    ended: bool,
}

impl Replica {
    fn new(body: ReplayBody<Source>) -> Self {
        Replica {
            body,
            pos: 0,
            data: Vec::new(),
            trailers: None,
            ended: false,
        }
    }
}

/// The most data frames a `ReplayBody` keeps (its documented bound: `limit / 64`, at least 16).
fn max_frames(limit: usize) -> usize {
    (limit / 64).max(16)
}

/// `limit`'s table, relative to the body's `total` bytes.
fn limit(sel: u8, total: usize) -> usize {
    let table = [
        0,
        1,
        total.saturating_sub(1),
        total,
        total + 1,
        total / 2,
        64 * 1024,
        usize::MAX,
    ];
    table[usize::from(sel) % table.len()]
}

fn body(mut input: Input<'_>) {
    let chunks = Arc::new(AtomicUsize::new(0));
    let sources = Arc::new(AtomicUsize::new(0));

    // Decode the body.
    let limit_sel = input.byte();
    let hint = match input.byte() % 3 {
        0 => Hint::Unknown,
        1 => Hint::Exact,
        _ => {
            let lower = u64::from(input.byte());
            Hint::Fixed(lower, lower + u64::from(input.byte()))
        }
    };
    let mut items = Vec::new();
    let mut offset = 0usize;
    for _ in 0..input.byte() % 41 {
        let size = input.byte();
        let size = if size & 0x80 != 0 {
            usize::from(size & 0x7f) * 16
        } else {
            usize::from(size % 33)
        };
        let bytes: Vec<u8> = (0..size)
            .map(|i| input.byte() ^ (offset + i) as u8)
            .collect();
        offset += size;
        items.push(Item::Data(bytes));
    }
    let tail = input.byte();
    if tail & 1 != 0 {
        let mut trailers = HeaderMap::new();
        for _ in 0..input.byte() % 4 {
            let name = NAMES[usize::from(input.byte()) % NAMES.len()];
            let value = HeaderValue::from(u16::from(input.byte()) % 20);
            trailers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
        items.push(Item::Trailers(trailers));
    }
    if tail & 2 != 0 {
        let at = usize::from(input.byte()) % (items.len() + 1);
        items.truncate(at);
        items.push(Item::Error);
    }
    let total: usize = items
        .iter()
        .map(|i| match i {
            Item::Data(d) => d.len(),
            _ => 0,
        })
        .sum();
    let limit = {
        let low = limit_sel & 0x3f;
        match limit_sel >> 6 {
            0 => usize::from(low),
            1 => limit(low, total),
            2 => u32::from_le_bytes(input.bytes()) as usize,
            _ => usize::from(low) * 256 + usize::from(input.byte()),
        }
    };

    let frames: Vec<Result<Frame<Bytes>, BoxError>> = items
        .iter()
        .map(|item| match item {
            Item::Data(d) => Ok(Frame::data(Bytes::from_owner(Chunk {
                bytes: d.clone(),
                _alive: Alive::new(&chunks),
            }))),
            Item::Trailers(t) => Ok(Frame::trailers(t.clone())),
            Item::Error => Err(Box::new(SourceError) as BoxError),
        })
        .collect();
    let source = Source {
        frames: StreamBody::new(stream::iter(frames)),
        hint,
        items_left: items.len(),
        bytes_left: total as u64,
        _alive: Alive::new(&sources),
    };
    let mode = if source.is_end_stream() {
        Mode::Empty
    } else if source.size_hint().lower() > limit as u64 {
        Mode::Passthrough
    } else {
        Mode::Shared
    };
    let mut model = Model {
        items,
        limit,
        mode,
        honest: !matches!(hint, Hint::Fixed(..)),
        head: 0,
        chunks,
        sources,
    };
    let mut copies = vec![Replica::new(ReplayBody::new(source, limit))];
    if mode == Mode::Empty {
        assert_eq!(
            model.sources.load(Ordering::Relaxed),
            0,
            "an empty body keeps its source"
        );
    }
    check_memory(&model, &copies);
    check_copy(&model, &copies[0]);

    // Operations.
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS && !copies.is_empty() {
        ops += 1;
        let op = input.byte() % 8;
        let i = usize::from(input.byte()) % copies.len();
        match op {
            0 => {
                let clone = copies[i].body.try_clone();
                let replayable = match model.mode {
                    Mode::Empty => true,
                    Mode::Passthrough => false,
                    Mode::Shared => !model.lost(),
                };
                assert_eq!(
                    clone.is_some(),
                    replayable,
                    "try_clone, mode {:?}",
                    model.mode
                );
                assert_eq!(copies[i].body.is_replayable(), replayable);
                if let Some(clone) = clone {
                    let copy = Replica::new(clone);
                    check_copy(&model, &copy);
                    if copies.len() < MAX_COPIES {
                        copies.push(copy);
                    }
                }
            }
            1..=4 => poll(&mut model, &mut copies[i]),
            5 => {
                for _ in 0..model.items.len() + 2 {
                    poll(&mut model, &mut copies[i]);
                }
                assert!(copies[i].ended, "a copy ends after every item");
            }
            6 => drop(copies.swap_remove(i)),
            _ => check_copy(&model, &copies[i]),
        }
        check_memory(&model, &copies);
    }
    if input.byte() % 2 == 1 {
        for copy in &mut copies {
            for _ in 0..model.items.len() + 2 {
                poll(&mut model, copy);
            }
            assert!(copy.ended);
        }
        check_memory(&model, &copies);
    }
    drop(copies);
    assert_eq!(
        model.sources.load(Ordering::Relaxed),
        0,
        "the source outlived every copy"
    );
    assert_eq!(
        model.chunks.load(Ordering::Relaxed),
        0,
        "a chunk outlived every copy"
    );
}

/// Polls `copy` once (with a no-op waker: the source is always ready) and checks the result
/// against the model.
fn poll(model: &mut Model, copy: &mut Replica) {
    let expected = model.expect(copy);
    let said_end = copy.body.is_end_stream();
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(polled) = Pin::new(&mut copy.body).poll_frame(&mut cx) else {
        panic!("pending, with a source that is always ready");
    };
    if said_end {
        assert!(
            polled.is_none(),
            "is_end_stream() but a frame or an error came"
        );
    }
    // (A passthrough body has one copy: always at the head.)
    let at_head = copy.pos == model.head;
    match (polled, expected) {
        (None, Expect::End) => {
            if !copy.ended {
                assert_eq!(
                    copy.data,
                    model.data(),
                    "a copy ended early or with other bytes"
                );
                assert_eq!(copy.trailers.as_ref(), model.trailers());
            }
            copy.ended = true;
        }
        (Some(Ok(frame)), Expect::Item(k)) => {
            assert!(copy.trailers.is_none(), "a frame after the trailers");
            match (frame.into_data(), &model.items[k]) {
                (Ok(data), Item::Data(want)) => {
                    assert_eq!(&data[..], &want[..], "frame {k}: other bytes");
                    copy.data.extend_from_slice(&data);
                }
                (Err(frame), Item::Trailers(want)) => {
                    let got = frame.into_trailers().expect("data or trailers");
                    assert_eq!(&got, want, "frame {k}: other trailers");
                    copy.trailers = Some(got);
                }
                (got, want) => panic!("frame {k}: got {got:?}, expected {want:?}"),
            }
            copy.pos += 1;
            if at_head {
                model.head += 1;
            }
        }
        (Some(Err(error)), Expect::SourceError) => {
            assert!(error.is::<SourceError>(), "not the source's error: {error}");
            assert_eq!(copy.data, model.data(), "the error came before the data");
            copy.pos += 1;
            copy.ended = true;
            model.head += 1;
        }
        (Some(Err(error)), Expect::NotReplayable) => {
            assert!(error.is::<BodyNotReplayable>(), "{error}");
            assert!(model.lost());
            copy.ended = true;
        }
        (got, want) => panic!(
            "copy at item {} (head {}, mode {:?}, limit {}, lost {}): got {got:?}, expected \
             {want:?}; items {:?}",
            copy.pos,
            model.head,
            model.mode,
            model.limit,
            model.lost(),
            model.items
        ),
    }
    check_copy(model, copy);
}

/// `is_end_stream` and `size_hint` of one copy.
fn check_copy(model: &Model, copy: &Replica) {
    let hint = copy.body.size_hint();
    if let Some(upper) = hint.upper() {
        assert!(hint.lower() <= upper, "size hint {hint:?}");
    }
    if copy.ended {
        assert!(copy.body.is_end_stream(), "an ended copy is not at its end");
        if model.mode != Mode::Passthrough || model.honest {
            assert_eq!(hint.exact(), Some(0), "an ended copy's size hint");
        }
        return;
    }
    if model.mode == Mode::Empty {
        assert!(copy.body.is_end_stream());
    }
    if model.honest && (model.mode == Mode::Passthrough || !model.lost()) {
        let left = model.bytes_before(model.items.len()) - model.bytes_before(copy.pos);
        assert!(
            hint.lower() <= left && hint.upper().is_none_or(|u| left <= u),
            "{left} bytes left, size hint {hint:?}"
        );
    }
}

/// The chunks alive are those the body must hold, plus none.
fn check_memory(model: &Model, copies: &[Replica]) {
    assert_eq!(
        model.chunks.load(Ordering::Relaxed),
        model.chunks_held(copies.len()),
        "chunks alive (mode {:?}, head {}, lost {})",
        model.mode,
        model.head,
        model.lost()
    );
}

// ===== the target =====

/// The target: byte 0 is the header section's length, the rest the body section (see the
/// module docs).
pub fn http(data: &[u8]) {
    let mut input = Input::new(data);
    let n = usize::from(input.byte());
    headers(input.split(n));
    body(input);
}
