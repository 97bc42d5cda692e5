//! Rate limiting (feature `rate-limit`).

mod error;

pub use error::RateLimited;
