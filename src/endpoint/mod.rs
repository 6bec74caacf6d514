//! The endpoint: the handle of a running server, with the broadcast API, presence,
//! counters and shutdown. `builder.rs` configures and starts one.

mod builder;
mod config;
mod running;

pub use builder::EndpointBuilder;

use crate::error::Error;
use crate::payload::Payload;
use crate::presence::Presence;
use crate::pubsub::{PubSub, Subscription};
use crate::stats::StatsSnapshot;
use crate::subscriber_id::SubscriberId;
use running::Running;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running server. Cheap to clone; the server stops when [`shutdown`](Endpoint::shutdown)
/// is called or the last handle is dropped.
///
/// ```no_run
/// use phx_channels::{Endpoint, UserSocket};
/// # use phx_channels::{Channel, JoinResult, Payload, Socket};
/// # struct Room;
/// # impl Channel for Room {
/// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
/// # }
/// let endpoint = Endpoint::builder()
///     .bind("127.0.0.1:4000")
///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
///     .start()?;
/// endpoint.broadcast("room:lobby", "new_msg", serde_json::json!({"body": "hi"}))?;
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    running: Arc<Running>,
}

impl Endpoint {
    /// A builder with the defaults.
    pub fn builder() -> EndpointBuilder {
        EndpointBuilder::new()
    }

    fn new(running: Running) -> Self {
        Endpoint { running: Arc::new(running) }
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    /// The broadcast API, to hand to other threads.
    pub fn pubsub(&self) -> &PubSub {
        &self.running.sockets.runtime.pubsub
    }

    /// Broadcasts to every subscriber of `topic`. See [`PubSub::broadcast`].
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.pubsub().broadcast(topic, event, payload)
    }

    /// Broadcasts to every subscriber but those of `from`. See [`PubSub::broadcast_from`].
    pub fn broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.pubsub().broadcast_from(from, topic, event, payload)
    }

    /// This node's name (see [`EndpointBuilder::node_name`]).
    pub fn node_name(&self) -> &str {
        self.pubsub().node_name()
    }

    /// Broadcasts on this node only. See [`PubSub::local_broadcast`].
    pub fn local_broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.pubsub().local_broadcast(topic, event, payload)
    }

    /// Subscribes the calling code to `topic`. See [`PubSub::subscribe`].
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.pubsub().subscribe(topic)
    }

    /// Ends a subscription. See [`PubSub::unsubscribe`].
    pub fn unsubscribe(&self, subscription: Subscription) {
        self.pubsub().unsubscribe(subscription)
    }

    /// Presence: who is on which topic.
    pub fn presence(&self) -> &Presence {
        &self.running.sockets.runtime.presence
    }

    /// The endpoint's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.running.sockets.runtime.stats.snapshot()
    }

    /// Stops the server in order: no more connections are accepted; every channel
    /// terminates with `{shutdown, draining}`; every connection closes with 1012 so
    /// clients reconnect elsewhere. Returns once every thread the endpoint
    /// started has ended, or the shutdown timeout has passed (a channel stuck in a
    /// callback is reported and left behind). Calling it again does nothing.
    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    /// Blocks until the endpoint has been shut down (from another thread or handle).
    pub fn wait(&self) {
        self.running.wait();
    }
}
