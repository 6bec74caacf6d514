//! Broadcasting: the endpoint's PubSub, its subscriptions, and the seam for
//! cross-node adapters.

mod fanout;
mod pacer;
mod registry;
mod subscriber;
mod subscription;

pub(crate) use registry::SubscriptionId;
pub(crate) use subscriber::ChannelSubscriber;
pub use subscription::{RecvTimeoutError, Subscription, SubscriptionIter, TryRecvError};

use crate::bounded::BoundedSender;
use crate::error::Error;
use crate::inbox::Inbox;
use crate::message::Broadcast;
use crate::payload::Payload;
use crate::socket::ChannelHandle;
use crate::stats::Stats;
use crate::subscriber_id::SubscriberId;
use crate::transport::outbound::Outbound;
use registry::Registry;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use subscriber::Subscriber;

/// What an [`Adapter`] may fail with.
pub type AdapterError = Box<dyn std::error::Error + Send + Sync>;

/// Forwards broadcasts to other nodes.
///
/// [`PubSub::broadcast`] fans out locally, then calls [`publish`](Adapter::publish);
/// the `local_*` forms never do. An adapter hands broadcasts that arrive from other
/// nodes to [`PubSub::deliver_remote`], which fans out locally only, so nothing loops.
/// With `broadcast_from`, the sender's subscriptions are skipped on its own node only:
/// the other nodes deliver to every subscriber they have.
///
/// The crate has one, over Redis (feature `redis`, see
/// [`EndpointBuilder::redis`](crate::EndpointBuilder)), which also replicates presence.
/// An adapter of your own carries broadcasts only:
///
/// ```
/// use phx_channels::{Adapter, AdapterError, Broadcast, Endpoint};
///
/// /// Prints what would go to the other nodes.
/// struct Print;
///
/// impl Adapter for Print {
///     fn publish(&self, broadcast: &Broadcast) -> Result<(), AdapterError> {
///         println!("to every other node: {} {}", broadcast.topic, broadcast.event);
///         Ok(())
///     }
///
///     fn direct_broadcast(&self, node: &str, broadcast: &Broadcast) -> Result<(), AdapterError> {
///         println!("to {node}: {} {}", broadcast.topic, broadcast.event);
///         Ok(())
///     }
/// }
///
/// let endpoint = Endpoint::builder().bind("127.0.0.1:0").adapter(Print).start()?;
/// endpoint.broadcast("room:lobby", "ping", serde_json::json!({}))?;
/// endpoint.pubsub().direct_broadcast("web-2", "room:lobby", "ping", serde_json::json!({}))?;
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
pub trait Adapter: Send + Sync + 'static {
    /// Sends `broadcast` to every other node. It should not block: a channel thread
    /// may be the caller.
    fn publish(&self, broadcast: &Broadcast) -> Result<(), AdapterError>;

    /// Sends `broadcast` to the node named `node` only (never this one).
    fn direct_broadcast(&self, node: &str, broadcast: &Broadcast) -> Result<(), AdapterError>;
}

/// How far a broadcast goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every node of the cluster.
    Cluster,
    /// This node only.
    Local,
}

struct Inner {
    registry: Registry,
    stats: Arc<Stats>,
    adapter: Option<Arc<dyn Adapter>>,
    ids: AtomicU64,
    subscription_capacity: usize,
    /// This node's name, for `direct_broadcast`.
    node: Arc<str>,
    /// Set at shutdown: subscriptions are closed, and new ones start closed.
    closed: AtomicBool,
}

/// The endpoint's broadcast API, for any thread.
///
/// Phoenix's `!` variants (`broadcast!`, `broadcast_from!`) raise on failure; here every
/// operation returns a `Result`, so `broadcast(..)?` is `broadcast!` and ignoring the
/// result is `broadcast`.
///
/// Cheap to clone. Get one from [`Endpoint::pubsub`](crate::Endpoint::pubsub) or
/// [`Socket::pubsub`](crate::Socket::pubsub).
#[derive(Clone)]
pub struct PubSub {
    inner: Arc<Inner>,
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("node", &self.inner.node)
            .field("adapter", &self.inner.adapter.is_some())
            .field("subscription_capacity", &self.inner.subscription_capacity)
            .finish_non_exhaustive()
    }
}

impl PubSub {
    /// `fanout_writers`: how many threads can write one broadcast in parallel; `node`:
    /// this node's name.
    pub(crate) fn new(
        shards: usize,
        fanout_writers: usize,
        stats: Arc<Stats>,
        adapter: Option<Arc<dyn Adapter>>,
        subscription_capacity: usize,
        node: Arc<str>,
    ) -> Self {
        PubSub {
            inner: Arc::new(Inner {
                registry: Registry::new(shards, fanout_writers),
                stats,
                adapter,
                ids: AtomicU64::new(1),
                subscription_capacity,
                node,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// This node's name (see [`EndpointBuilder::node_name`](crate::EndpointBuilder::node_name)).
    pub fn node_name(&self) -> &str {
        &self.inner.node
    }

    fn next_raw_id(&self) -> u64 {
        self.inner.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh subscriber id, unique for this endpoint: one per channel instance.
    pub(crate) fn next_id(&self) -> SubscriberId {
        SubscriberId(self.next_raw_id())
    }

    /// Broadcasts to every subscriber of `topic`, on every node.
    ///
    /// The payload must be a JSON object or bytes. Bytes reach subscribers on the V2
    /// wire format only.
    ///
    /// When the topic has been quiet, the calling thread writes the frame to idle
    /// subscribers' sockets itself, which is the cheapest way to deliver a broadcast
    /// sent alone: the call then takes a few microseconds per subscriber. When the
    /// topic is busy, the frames are queued and the reactors write them in batches.
    /// The call never blocks on a slow client.
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.send(None, Broadcast::new(topic, event, payload), Reach::Cluster, None)
    }

    /// Like [`broadcast`](PubSub::broadcast), skipping the subscriptions of `from`.
    pub fn broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.send(Some(from), Broadcast::new(topic, event, payload), Reach::Cluster, None)
    }

    /// Like [`broadcast`](PubSub::broadcast), on this node only.
    pub fn local_broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.send(None, Broadcast::new(topic, event, payload), Reach::Local, None)
    }

    /// Like [`broadcast_from`](PubSub::broadcast_from), on this node only.
    pub fn local_broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.send(Some(from), Broadcast::new(topic, event, payload), Reach::Local, None)
    }

    /// Broadcasts to the subscribers of `topic` on the node named `node` only, as
    /// Phoenix.PubSub's `direct_broadcast`. This node's own name delivers here.
    ///
    /// Another node is reached through the endpoint's [`Adapter`]; without one, naming
    /// another node is an [`Error::Config`].
    pub fn direct_broadcast(
        &self,
        node: &str,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        let broadcast = Broadcast::new(topic, event, payload);
        if node == self.node_name() {
            return self.send(None, broadcast, Reach::Local, None);
        }
        if !broadcast.payload.is_pushable() {
            return Err(Error::Encode(crate::serializer::EncodeError::NotAnObject));
        }
        let adapter = self.inner.adapter.as_ref().ok_or_else(|| {
            Error::Config(format!("no cluster adapter is configured, so node {node:?} cannot be reached"))
        })?;
        adapter.direct_broadcast(node, &broadcast).map_err(Error::Adapter)
    }

    /// Fans out a broadcast that an [`Adapter`] received from another node, on this node only.
    pub fn deliver_remote(&self, broadcast: Broadcast) {
        self.inner.registry.dispatch(&Arc::new(broadcast), None, None, &self.inner.stats);
    }

    /// Fans out on this node, then to the other nodes when `reach` says so. `publisher`
    /// is the mailbox of the channel publishing, if one is: a fan-out it writes itself
    /// stops writing once the channel has mail.
    pub(crate) fn send(
        &self,
        from: Option<SubscriberId>,
        broadcast: Broadcast,
        reach: Reach,
        publisher: Option<&Inbox>,
    ) -> Result<(), Error> {
        if !broadcast.payload.is_pushable() {
            return Err(Error::Encode(crate::serializer::EncodeError::NotAnObject));
        }
        let broadcast = Arc::new(broadcast);
        self.inner.registry.dispatch(&broadcast, from, publisher, &self.inner.stats);
        if reach == Reach::Cluster
            && let Some(adapter) = &self.inner.adapter
        {
            adapter.publish(&broadcast).map_err(Error::Adapter)?;
        }
        Ok(())
    }

    /// Subscribes the caller to `topic`: broadcasts arrive on the returned
    /// [`Subscription`] (no fastlane). Subscribing twice means receiving twice.
    ///
    /// The subscription holds at most a bounded number of undelivered broadcasts (set
    /// with [`EndpointBuilder::subscription_capacity`](crate::EndpointBuilder::subscription_capacity));
    /// past that, new ones are dropped and counted in `broadcasts_dropped`.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        let owner = self.next_id();
        let (sender, receiver) = BoundedSender::new(self.inner.subscription_capacity);
        let id = self.add(topic, Subscriber::Plain { owner, sender }, || {});
        // Checked after adding: a shutdown either found this subscription or is seen here.
        if self.inner.closed.load(Ordering::SeqCst) {
            self.remove(id, topic);
        }
        Subscription { id, owner, topic: topic.to_owned(), receiver, pubsub: self.clone() }
    }

    /// Closes every [`Subscription`] at shutdown: each hands out what it holds, then
    /// reports [`Error::Shutdown`] (or its operation's `Shutdown`).
    pub(crate) fn close_subscriptions(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.registry.close_plain();
    }

    /// Ends a subscription (dropping it does the same).
    pub fn unsubscribe(&self, subscription: Subscription) {
        drop(subscription);
    }

    /// Handles of the channels joined to `topic` on this node, to
    /// [`call`](ChannelHandle::call) or [`send`](ChannelHandle::send) them from
    /// anywhere: the role of a `Registry` of channel pids in Phoenix, kept by the
    /// endpoint. A channel is listed from the moment its join succeeds until it ends,
    /// however it ends (leave, stop, crash, closed connection, shutdown); a handle
    /// kept after that answers [`Error::ChannelEnded`].
    ///
    /// ```
    /// use phx_channels::testing;
    /// use phx_channels::{Channel, Endpoint, JoinResult, Payload, Socket, UserSocket};
    /// use serde_json::json;
    ///
    /// struct Room;
    /// impl Channel for Room {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
    ///         Ok(Payload::empty())
    ///     }
    /// }
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new().channel("room:*", |_| Room)))?;
    /// let (_, _room) = testing::connect(&endpoint, "/socket", json!({}))?.join("room:1", json!({}))?;
    /// let found = endpoint.pubsub().channels("room:1");
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].topic(), "room:1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn channels(&self, topic: &str) -> Vec<ChannelHandle> {
        let topic: Arc<str> = topic.into();
        let found = self.inner.registry.channels(&topic);
        found.into_iter().map(|(id, inbox)| ChannelHandle::new(inbox, id, topic.clone())).collect()
    }

    /// How many subscriptions `topic` has on this node.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.registry.count(topic)
    }

    /// Subscribes a joined channel to its own topic, for the fastlane, then runs `then`
    /// before any broadcast can reach it (where the join reply is queued).
    pub(crate) fn subscribe_channel(
        &self,
        topic: &str,
        channel: ChannelSubscriber,
        then: impl FnOnce(),
    ) -> SubscriptionId {
        self.add(topic, Subscriber::Channel(channel), then)
    }

    /// Subscribes channel `owner` to another topic: broadcasts go to its `handle_info`.
    pub(crate) fn subscribe_info(&self, topic: &str, owner: SubscriberId, inbox: Inbox) -> SubscriptionId {
        self.add(topic, Subscriber::Info { owner, inbox }, || {})
    }

    /// Subscribes a connection to its socket id topic: a `disconnect` broadcast there
    /// closes it.
    pub(crate) fn subscribe_connection(&self, topic: &str, outbound: Arc<Outbound>) -> SubscriptionId {
        self.add(topic, Subscriber::Connection(outbound), || {})
    }

    /// Ends one subscription made with a `subscribe_*` method.
    pub(crate) fn remove(&self, id: SubscriptionId, topic: &str) {
        self.inner.registry.unsubscribe(id, topic);
    }

    fn add(&self, topic: &str, subscriber: Subscriber, then: impl FnOnce()) -> SubscriptionId {
        let id = SubscriptionId(self.next_raw_id());
        self.inner.registry.subscribe_then(id, topic, subscriber, then);
        id
    }

    /// The endpoint's counters.
    #[cfg(feature = "bench-internals")]
    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }
}
