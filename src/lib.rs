//! Phoenix Channels for Rust programs without an async runtime.
#![warn(missing_docs)]

mod channel;
mod channel_thread;
pub mod client;
mod connect_info;
mod endpoint;
mod error;
mod logging;
pub mod message;
mod origin;
mod params;
pub mod payload;
pub mod pubsub;
mod router;
pub mod serializer;
mod socket;
mod stats;
mod transport;
mod user_socket;

pub use channel::{Channel, Flow, Handled, Info, JoinResult, StopReason};
pub use connect_info::{ConnectInfo, ConnectInfoKey, PeerData, RequestUri};
pub use endpoint::{Endpoint, EndpointBuilder};
pub use error::Error;
pub use message::{Broadcast, Message, Reply};
pub use origin::{CheckOrigin, Origin};
pub use params::Params;
pub use payload::Payload;
pub use pubsub::{Adapter, PubSub, SubscriberId, Subscription};
pub use serializer::Serializer;
pub use socket::{Assigns, ChannelHandle, Socket, SocketRef};
pub use stats::StatsSnapshot;
pub use transport::outbound::OutboundLimits;
pub use user_socket::{Refusal, UserSocket};
