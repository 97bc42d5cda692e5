//! `Retry-After`, `grpc-status` and `grpc-retry-pushback-ms` parsing on arbitrary values, and
//! `ReplayBody` copies driven by arbitrary operations: nothing panics, every parse matches its
//! grammar, every copy replays exactly the source, and nothing leaks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| seawall_fuzz::http::http(data));
