//! Phoenix Channels for Rust programs without an async runtime.
#![warn(missing_docs)]

pub mod message;
pub mod payload;
pub mod serializer;

pub use message::{Broadcast, Message, Reply};
pub use payload::Payload;
pub use serializer::Serializer;
