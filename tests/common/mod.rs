//! Helpers shared by the test binaries. Each binary includes it with `mod common;` and uses
//! what it needs.

#![allow(dead_code)]

pub mod alloc;
