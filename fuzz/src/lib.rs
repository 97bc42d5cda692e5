//! seawall's fuzz targets. The logic lives in [`targets`] and [`http`], shared with the main
//! crate's `tests/fuzz_targets.rs` and `tests/fuzz_http.rs`; the binaries in `fuzz_targets/`
//! only hand libFuzzer's bytes to it.

pub mod http;
pub mod targets;
