//! Serialisation helpers of the `serde` feature: durations as seconds.

use std::time::Duration;

/// An optional duration as seconds (a float), or `null`.
pub(crate) fn seconds<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => serializer.serialize_some(&d.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}
