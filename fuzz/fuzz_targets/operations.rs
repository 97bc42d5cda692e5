//! Arbitrary operation sequences on a built breaker (manual clock): nothing panics and the
//! snapshot invariants hold after every operation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| seawall_fuzz::targets::operations(data));
