//! Phoenix Channels for Rust programs without an async runtime.
//!
//! A server built with `phx-channels` speaks the Phoenix Channels wire protocol, so
//! the official `phoenix` JavaScript client (and every other Phoenix client) connects
//! to it unchanged. Application code implements [`Channel`] with Phoenix's callbacks
//! (`join`, `handle_in`, `handle_out`, `handle_info`, `handle_call`, `terminate`) and uses Phoenix's
//! operations (`push`, `reply`, `broadcast`, `broadcast_from`, endpoint `broadcast` and
//! `subscribe`, [`SocketRef`] for replies from elsewhere, [`presence`]).
//!
//! There is no async runtime. Each joined channel runs on its own OS thread, so a
//! callback may block, and a slow or panicking channel holds back nobody else. A few
//! reactor threads (mio) own the sockets; broadcasts are encoded once per wire format
//! and the same bytes are queued on every subscriber's connection.
//!
//! # A complete server
//!
//! ```
//! use phx_channels::client::Client;
//! use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
//! use serde_json::json;
//!
//! struct Room;
//!
//! impl Channel for Room {
//!     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
//!         Ok(Payload::empty())
//!     }
//!
//!     fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
//!         match event {
//!             "new_msg" => {
//!                 socket.broadcast("new_msg", payload).ok();
//!                 Handled::ok()
//!             }
//!             _ => Handled::NoReply,
//!         }
//!     }
//! }
//!
//! let endpoint = Endpoint::builder()
//!     .bind("127.0.0.1:0")
//!     .socket("/socket", UserSocket::new().channel("room:*", |_topic| Room))
//!     .start()?;
//!
//! // Any Phoenix client can connect now; here, the crate's blocking client.
//! let mut client = Client::builder(endpoint.local_addr().to_string()).connect()?;
//! client.join("room:lobby", json!({}))?;
//! client.push("room:lobby", "new_msg", json!({"body": "hello"}))?;
//! let msg = client.recv_event("room:lobby", "new_msg")?;
//! assert_eq!(msg.payload, Payload::Json(json!({"body": "hello"})));
//!
//! endpoint.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Numbers
//!
//! With the default feature `exact-numbers`, a number in a JSON payload is relayed with
//! the digits the client wrote, integers beyond 64 bits included, as Phoenix does. The
//! feature turns on serde_json's `arbitrary_precision` for the whole build; the README
//! says what that changes for other code that uses serde_json.
//!
//! # Where things are
//!
//! - [`Endpoint`] / [`EndpointBuilder`]: the server, its settings, and the broadcast API.
//! - [`UserSocket`]: `connect`, `id`, channel routes and per-socket limits;
//!   [`LongPollSettings`] for the long-poll transport.
//! - [`Channel`], [`Handled`], [`Flow`], [`CallReply`] (and [`CallFrom`], to answer a call later), [`StopReason`], [`Info`]: what you implement.
//! - [`Socket`], [`SocketRef`], [`ChannelHandle`], [`TimerRef`]: what callbacks work with;
//!   [`Assigns`] and [`TypedAssigns`] for typed assigns; [`Endpoint::channels`] finds a
//!   topic's channels from anywhere.
//! - [`PubSub`], [`Subscription`]: broadcasting and subscribing from any thread.
//! - [`presence`]: who is on a topic, for the JS client's `Presence`.
//! - [`serializer`]: the V1, V2 and binary wire formats.
//! - [`client`]: a blocking Phoenix client.
//! - [`token`]: signed tokens, compatible with `Phoenix.Token`.
//! - [`telemetry`]: typed events for dashboards; [`StatsSnapshot`] for counters and Prometheus.
//! - [`Ref`]: message refs, kept exactly as the client sent them.
//! - [`testing`]: unit tests for channels, as Phoenix.ChannelTest, in memory.
//! - Scale-out (feature `redis`): `EndpointBuilder::redis` joins the endpoints that
//!   share a Redis into a cluster; broadcasts, socket-id disconnects and presence reach
//!   every node ([`Adapter`] is the seam, [`PubSub::direct_broadcast`] reaches one node).
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
// Two modules call the OS for what std and mio do not offer (`scheduling.rs`,
// `transport/listener.rs`), each call with its proof of soundness; the rest is safe code.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// First: the macros that gate items on features, for every module below.
#[macro_use]
mod features;

mod assigns;
mod base64;
mod base64url;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals;
mod bounded;
mod call;
mod channel;
mod channel_runtime;
mod channel_thread;
pub mod client;
cfg_redis! {
    mod cluster;
}
mod connect_info;
mod endpoint;
mod error;
mod futex_hash;
mod inbox;
mod info;
mod intercepted;
mod logging;
pub mod message;
mod message_ref;
mod origin;
mod params;
mod payload;
pub mod presence;
mod protocol;
mod pubsub;
mod router;
mod scheduling;
pub mod serializer;
mod socket;
mod spare_threads;
mod stats;
mod stop_reason;
mod subscriber_id;
pub mod telemetry;
pub mod testing;
mod thread_name;
mod timer;
pub mod token;
mod transport;

pub use assigns::{AssignError, Assigns, TypedAssigns};
pub use call::{CallError, CallFrom};
pub use channel::{CallReply, Channel, Flow, Handled, JoinResult};
pub use connect_info::{ConnectInfo, ConnectInfoKey, PeerData, RequestUri};
pub use endpoint::{Endpoint, EndpointBuilder};
pub use error::Error;
pub use info::Info;
pub use message::{Broadcast, Message, Ref, Reply};
pub use origin::{CheckOrigin, Origin};
pub use params::Params;
pub use payload::Payload;
pub use protocol::user_socket::{Refusal, UserSocket};
pub use pubsub::{Adapter, AdapterError, PubSub, RecvTimeoutError, Subscription, SubscriptionIter, TryRecvError};
pub use scheduling::Scheduling;
pub use serializer::Serializer;
pub use socket::{ChannelHandle, Socket, SocketRef};
pub use stats::StatsSnapshot;
pub use stop_reason::StopReason;
pub use subscriber_id::SubscriberId;
pub use timer::TimerRef;
pub use transport::long_poll::LongPollSettings;
pub use transport::outbound::OutboundLimits;
cfg_tls! {
    pub use transport::tls_config::{TlsConfig, TlsError};
}

/// Compiles the README's example as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
