//! Builder settings from arbitrary bytes: `build()` never panics, and either builds or returns
//! a `ConfigError` naming a setting that breaks a documented constraint.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| seawall_fuzz::targets::builder(data));
