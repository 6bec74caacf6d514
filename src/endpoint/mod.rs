//! The endpoint: the handle of a running server, with the broadcast API, presence,
//! counters and shutdown. `builder.rs` configures and starts one.

mod builder;
mod config;
mod features;
pub(crate) mod in_memory;
mod running;
mod signals;
mod system_limits;

pub use builder::EndpointBuilder;

use crate::error::Error;
use crate::payload::Payload;
use crate::presence::Presence;
use crate::protocol::sockets::Sockets;
use crate::pubsub::{PubSub, Subscription};
use crate::socket::ChannelHandle;
use crate::stats::StatsSnapshot;
use crate::subscriber_id::SubscriberId;
use in_memory::InMemoryConnections;
use running::Running;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
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

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.running.local_addr)
            .field("node", &self.node_name())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A builder with the defaults.
    pub fn builder() -> EndpointBuilder {
        EndpointBuilder::new()
    }

    fn new(running: Running) -> Self {
        Endpoint { running: Arc::new(running) }
    }

    /// The address the endpoint listens on; `0.0.0.0:0` for an endpoint without a
    /// listener ([`EndpointBuilder::no_listener`], [`testing::endpoint`](crate::testing::endpoint)).
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr.unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into())
    }

    /// The sockets the endpoint serves, with the runtime its channels share.
    pub(crate) fn sockets(&self) -> &Arc<Sockets> {
        &self.running.sockets
    }

    /// Where in-memory connections register, so that shutdown ends them.
    pub(crate) fn in_memory(&self) -> &InMemoryConnections {
        &self.running.in_memory
    }

    /// Takes over a connection that another HTTP server of the program accepted, with
    /// `head`, the bytes it has read of it: its request head, and maybe more. The
    /// connection goes on exactly as if the endpoint had accepted it and read those
    /// bytes itself: a WebSocket upgrade on a mounted socket path, or whatever other
    /// answer the endpoint gives that request. So a program with its own HTTP server
    /// serves channels on the same port; see `examples/embedded.rs`.
    ///
    /// The stream is set non-blocking and the endpoint owns it from here. It is plain
    /// TCP, even on an endpoint that serves TLS on its own listener. `head` is bounded
    /// like any request head ([`max_header_bytes`](EndpointBuilder::max_header_bytes)),
    /// and the handshake timeout runs from now. Fails with [`Error::Shutdown`] once the
    /// endpoint is shutting down, and with [`Error::Io`] if the stream is unusable.
    ///
    /// The endpoint's traffic threads (reactors, connect workers, channel threads) run
    /// under Linux's `SCHED_BATCH` by default ([`Scheduling`](crate::Scheduling)): a
    /// change to those threads of the program's process, which any thread a callback
    /// spawns inherits, and which the endpoint's start log line states. The program's
    /// own threads keep their policy. A program that embeds the endpoint next to
    /// latency-sensitive work of its own may prefer
    /// [`Scheduling::Unchanged`](crate::Scheduling::Unchanged).
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use std::net::TcpListener;
    /// # use phx_channels::{Channel, JoinResult, Payload, Socket, UserSocket};
    /// # struct Room;
    /// # impl Channel for Room {
    /// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
    /// # }
    /// let endpoint = phx_channels::Endpoint::builder()
    ///     .no_listener()
    ///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
    ///     .start()?;
    /// let listener = TcpListener::bind("127.0.0.1:8080")?;
    /// for stream in listener.incoming() {
    ///     let mut stream = stream?;
    ///     // The program's own server reads the request head (one read, for brevity)...
    ///     let mut head = vec![0u8; 8192];
    ///     let n = stream.read(&mut head)?;
    ///     head.truncate(n);
    ///     // ...and hands socket requests to the endpoint.
    ///     if head.starts_with(b"GET /socket/") {
    ///         endpoint.adopt(stream, &head)?;
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn adopt(&self, stream: std::net::TcpStream, head: &[u8]) -> Result<(), Error> {
        self.running.adopt(stream, head)
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

    /// Broadcasts on this node only, to every subscriber but those of `from`. See
    /// [`PubSub::local_broadcast_from`].
    ///
    /// ```
    /// use phx_channels::{Endpoint, testing};
    /// use std::time::Duration;
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder())?;
    /// let me = endpoint.subscribe("news");
    /// let other = endpoint.subscribe("news");
    /// endpoint.local_broadcast_from(me.id(), "news", "headline", serde_json::json!({}))?;
    /// assert!(other.recv_timeout(Duration::from_secs(1)).is_ok());
    /// assert_eq!(me.try_recv().err(), Some(phx_channels::TryRecvError::Empty));
    /// # Ok::<(), phx_channels::Error>(())
    /// ```
    pub fn local_broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.pubsub().local_broadcast_from(from, topic, event, payload)
    }

    /// Subscribes the calling code to `topic`. See [`PubSub::subscribe`].
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.pubsub().subscribe(topic)
    }

    /// Ends a subscription. See [`PubSub::unsubscribe`].
    pub fn unsubscribe(&self, subscription: Subscription) {
        self.pubsub().unsubscribe(subscription)
    }

    /// Handles of the channels joined to `topic` on this node, for the rest of the
    /// program to [`call`](ChannelHandle::call) or [`send`](ChannelHandle::send) them
    /// (Phoenix apps keep a `Registry` of channel pids for this). Listed from a
    /// successful join until the channel ends, however it ends. See
    /// [`PubSub::channels`].
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{CallReply, Channel, Endpoint, JoinResult, Payload, Socket, UserSocket};
    /// use std::any::Any;
    /// use std::time::Duration;
    ///
    /// struct Counter(u64);
    ///
    /// impl Channel for Counter {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
    ///         Ok(Payload::empty())
    ///     }
    ///
    ///     fn handle_call(&mut self, _request: Box<dyn Any + Send>, _socket: &mut Socket) -> CallReply {
    ///         CallReply::reply(self.0)
    ///     }
    /// }
    ///
    /// let socket = UserSocket::new().channel("counter:*", |_| Counter(3));
    /// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket))?;
    /// let (_, _joined) = testing::connect(&endpoint, "/socket", serde_json::json!({}))?.join("counter:1", serde_json::json!({}))?;
    /// for channel in endpoint.channels("counter:1") {
    ///     assert_eq!(channel.call::<u64>("count?", Duration::from_secs(1))?, 3);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn channels(&self, topic: &str) -> Vec<ChannelHandle> {
        self.pubsub().channels(topic)
    }

    /// Presence: who is on which topic.
    pub fn presence(&self) -> &Arc<Presence> {
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

    /// Shuts the endpoint down in order, as [`shutdown`](Endpoint::shutdown), when the
    /// process gets SIGTERM (from a supervisor, `docker stop`, `kill`) or SIGINT
    /// (Ctrl-C): channels terminate with `{shutdown, draining}` and clients are closed
    /// with 1012, so they reconnect elsewhere. A second signal during the drain exits
    /// the process at once. With [`wait`](Endpoint::wait) after it, `main` returns once
    /// the drain is done:
    ///
    /// ```no_run
    /// let endpoint = phx_channels::Endpoint::builder().start()?;
    /// endpoint.shutdown_on_signals()?;
    /// endpoint.wait(); // returns after SIGTERM or Ctrl-C, once drained
    /// # Ok::<(), phx_channels::Error>(())
    /// ```
    ///
    /// Opt-in, because the handlers are the whole process's: they replace those of
    /// SIGTERM and SIGINT, whatever set them, and a program with its own (or several
    /// endpoints to stop in another order) shuts down itself. Every endpoint that asks is
    /// drained, one after another. Linux only; elsewhere it fails with an
    /// [`Error::Io`] of kind `Unsupported`.
    pub fn shutdown_on_signals(&self) -> Result<(), Error> {
        Ok(signals::drain_on_signals(&self.running)?)
    }

    /// Blocks until the endpoint has been shut down (from another thread or handle).
    pub fn wait(&self) {
        self.running.wait();
    }
}
