//! The `Retry-After` header (RFC 9110 §10.2.3): how long a server asks a client to wait.
//!
//! The value is either delta-seconds (`Retry-After: 120`) or an HTTP-date
//! (`Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`). Anything else is malformed and yields
//! `None`: the caller then falls back to its own backoff.

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` value into the delay it asks for, counted from `now`.
///
/// - delta-seconds (`1*DIGIT`, leading zeros allowed): that many seconds. A value too large
///   for a `u64` saturates at `u64::MAX` seconds, as RFC 9110 §1.2.2 allows, rather than
///   overflowing.
/// - an HTTP-date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept
///   (IMF-fixdate, RFC 850, asctime), parsed with [`httpdate::parse_http_date`]: the time from
///   `now` until then; a date at or before `now` is [`Duration::ZERO`] (retry at once).
/// - optional whitespace (spaces, tabs) around the value is tolerated.
/// - anything else is `None`: empty, negative or signed numbers, fractions, non-ASCII bytes,
///   leading or trailing junk, a date with a wrong day name or zone.
///
/// `now` is a parameter so the parser stays pure and testable; the classifiers pass
/// `SystemTime::now()`.
///
/// ```
/// use seawall::http::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// let v = http::HeaderValue::from_static("120");
/// assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(120)));
/// let v = http::HeaderValue::from_static("Sun, 06 Nov 1994 08:51:37 GMT");
/// assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(120)));
/// let v = http::HeaderValue::from_static("soon");
/// assert_eq!(parse_retry_after(&v, now), None);
/// ```
pub fn parse_retry_after(value: &http::HeaderValue, now: SystemTime) -> Option<Duration> {
    let bytes = trim_ows(value.as_bytes());
    if bytes.is_empty() {
        return None;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        let secs = bytes.iter().fold(0u64, |acc, &b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(Duration::from_secs(secs));
    }
    // An HTTP-date is visible ASCII; anything else (obs-text) is not one.
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.is_ascii() {
        return None;
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The delay asked for by `headers`' `Retry-After`, counted from `now`: see
/// [`parse_retry_after`]. `None` without the header or with a malformed value. The header is
/// a singleton (RFC 9110 §10.2.3): only its first occurrence is read.
pub fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| parse_retry_after(value, now))
}

/// `bytes` without optional whitespace (SP, HTAB) on either side (RFC 9110 §5.6.3).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn parse(s: &str) -> Option<Duration> {
        parse_retry_after(&HeaderValue::from_str(s).unwrap(), now())
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("0"), secs(0));
        assert_eq!(parse("120"), secs(120));
        assert_eq!(parse("007"), secs(7));
        assert_eq!(parse("18446744073709551615"), secs(u64::MAX));
    }

    #[test]
    fn huge_delta_seconds_saturate() {
        assert_eq!(parse("18446744073709551616"), secs(u64::MAX));
        assert_eq!(parse(&"9".repeat(500)), secs(u64::MAX));
    }

    #[test]
    fn whitespace_around_the_value_is_tolerated() {
        assert_eq!(parse(" 120"), secs(120));
        assert_eq!(parse("120 \t"), secs(120));
        assert_eq!(parse("\t Sun, 06 Nov 1994 08:49:38 GMT  "), secs(1));
    }

    #[test]
    fn the_three_date_forms() {
        // Two minutes after `now()`, in IMF-fixdate, RFC 850 and asctime forms.
        assert_eq!(parse("Sun, 06 Nov 1994 08:51:37 GMT"), secs(120));
        assert_eq!(parse("Sunday, 06-Nov-94 08:51:37 GMT"), secs(120));
        assert_eq!(parse("Sun Nov  6 08:51:37 1994"), secs(120));
    }

    #[test]
    fn a_date_in_the_past_or_now_is_zero() {
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), secs(0));
        assert_eq!(parse("Sun, 06 Nov 1994 08:00:00 GMT"), secs(0));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), secs(0));
    }

    #[test]
    fn a_date_centuries_away_is_a_long_duration() {
        let d = parse("Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert!(d > Duration::from_secs(8000 * 365 * 86_400), "{d:?}");
        // Measured from the real clock, too.
        let v = HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(parse_retry_after(&v, SystemTime::now()).is_some());
    }

    #[test]
    fn malformed_values_are_none() {
        for bad in [
            "",
            "   ",
            "-1",
            "+5",
            "1.5",
            "1e3",
            "0x10",
            "12 34",
            "120s",
            "s120",
            "soon",
            "Sun, 06 Nov 1994 08:51:37 GMT junk",
            "junk Sun, 06 Nov 1994 08:51:37 GMT",
            "Sun, 06 Nov 1994 08:51:37 UTC",
            "Mon, 06 Nov 1994 08:51:37 GMT", // the 6th was a Sunday
            "Sun, 32 Nov 1994 08:51:37 GMT",
            "Sun, 06 Nov 1994 25:51:37 GMT",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn non_ascii_is_none() {
        let v = HeaderValue::from_bytes(b"12\xff").unwrap();
        assert_eq!(parse_retry_after(&v, now()), None);
        let v = HeaderValue::from_bytes("Sun, 06 Nov 1994 08:51:37 GMT\u{e9}".as_bytes()).unwrap();
        assert_eq!(parse_retry_after(&v, now()), None);
    }

    #[test]
    fn from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now()), None);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, now()), secs(3));
        headers.append(http::header::RETRY_AFTER, HeaderValue::from_static("9"));
        assert_eq!(retry_after(&headers, now()), secs(3));
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("x"));
        assert_eq!(retry_after(&headers, now()), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                let _ = parse_retry_after(&v, now());
                let _ = parse_retry_after(&v, UNIX_EPOCH);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,40}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let _ = parse_retry_after(&v, now());
            }
        }

        #[test]
        fn every_delta_round_trips(n in any::<u64>(), pad in " {0,2}") {
            let v = HeaderValue::from_str(&format!("{pad}{n}{pad}")).unwrap();
            prop_assert_eq!(parse_retry_after(&v, now()), Some(Duration::from_secs(n)));
        }

        #[test]
        fn date_like_strings_never_panic(
            day in "[A-Za-z]{0,4}",
            d in 0u32..40,
            mon in "[A-Za-z]{0,4}",
            y in 0u32..100_000,
            h in 0u32..30,
            m in 0u32..70,
            s in 0u32..70,
        ) {
            let text = format!("{day}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT");
            let v = HeaderValue::from_str(&text).unwrap();
            let _ = parse_retry_after(&v, now());
        }
    }
}
