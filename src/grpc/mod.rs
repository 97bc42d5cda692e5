//! gRPC (feature `grpc`): status classifiers from headers and trailers, and
//! `grpc-retry-pushback-ms`, as gRPC's retry design (A6) specifies.

mod classify;
mod response;

pub use classify::*;
pub use response::*;
