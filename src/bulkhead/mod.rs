//! Bulkhead: a bound on the calls in flight to one dependency.

mod error;

pub use error::BulkheadFull;
