//! seawall's fuzz targets. The logic lives in [`targets`], shared with the main crate's
//! `tests/fuzz_targets.rs`; the binaries in `fuzz_targets/` only hand libFuzzer's bytes to it.

pub mod targets;
