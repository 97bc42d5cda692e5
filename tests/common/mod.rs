//! Helpers shared by the test binaries. Each binary includes it with `mod common;` and uses
//! what it needs.

#![allow(dead_code)]

pub mod alloc;

use std::error::Error;

/// Every message of an error chain, outermost first: what an error report prints.
pub fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        out.push(e.to_string());
        current = e.source();
    }
    out
}
