//! HTTP (feature `http`): response classifiers, `Retry-After`, idempotent-only retries,
//! replayable request bodies, rejections answered as responses, and a standard client stack.

mod body;
mod classify;
mod request;
mod response;
mod retry_after;
mod stack;

pub use body::*;
pub use classify::*;
pub use request::*;
pub use response::*;
pub use retry_after::*;
pub use stack::*;
