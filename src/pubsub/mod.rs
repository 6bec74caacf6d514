//! Broadcasting: the endpoint's PubSub, its subscriptions, and the seam for
//! cross-node adapters.
//!
//! Phoenix's `!` variants (`broadcast!`, `broadcast_from!`) raise on failure; here every
//! operation returns a `Result`, so `broadcast(..)?` is `broadcast!` and ignoring the
//! result is `broadcast`.

mod pacer;
mod registry;

pub(crate) use registry::{ChannelSubscriber, Registry, Subscriber, SubscriptionId};

use crate::error::Error;
use crate::inbox::Inbox;
use crate::message::Broadcast;
use crate::payload::Payload;
use crate::stats::Stats;
use crossbeam_channel::Receiver;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Names whoever owns subscriptions (a channel, or one [`Subscription`]), so that
/// `broadcast_from` can skip it (P73).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberId(pub(crate) u64);

/// Forwards broadcasts to other nodes (for example over Redis pub/sub).
///
/// [`PubSub::broadcast`] fans out locally, then calls [`publish`](Adapter::publish);
/// the `local_*` forms never do. An adapter hands broadcasts that arrive from other
/// nodes to [`PubSub::deliver_remote`], which fans out locally only, so nothing loops.
pub trait Adapter: Send + Sync + 'static {
    /// Sends `broadcast` to the other nodes.
    fn publish(&self, broadcast: &Broadcast) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) stats: Arc<Stats>,
    adapter: Option<Arc<dyn Adapter>>,
    ids: AtomicU64,
    subscription_capacity: usize,
}

/// The endpoint's broadcast API, for any thread (PROTOCOL.md 6, P83).
///
/// Cheap to clone. Get one from [`Endpoint::pubsub`](crate::Endpoint::pubsub) or
/// [`Socket::pubsub`](crate::Socket::pubsub).
#[derive(Clone)]
pub struct PubSub {
    pub(crate) inner: Arc<Inner>,
}

impl PubSub {
    /// `fanout_writers`: how many threads can write one broadcast in parallel.
    pub(crate) fn new(
        shards: usize,
        fanout_writers: usize,
        stats: Arc<Stats>,
        adapter: Option<Arc<dyn Adapter>>,
        subscription_capacity: usize,
    ) -> Self {
        PubSub {
            inner: Arc::new(Inner {
                registry: Registry::new(shards, fanout_writers),
                stats,
                adapter,
                ids: AtomicU64::new(1),
                subscription_capacity,
            }),
        }
    }

    /// A fresh id, unique for this endpoint (used for subscriptions and owners alike).
    pub(crate) fn next_id(&self) -> u64 {
        self.inner.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Broadcasts to every subscriber of `topic`, on every node (P72, P83).
    ///
    /// The payload must be a JSON object or bytes (P33). Bytes reach V2 subscribers only.
    ///
    /// When the topic has been quiet, the calling thread writes the frame to idle
    /// subscribers' sockets itself, which is the cheapest way to deliver a broadcast
    /// sent alone: the call then takes a few microseconds per subscriber. When the
    /// topic is busy, the frames are queued and the reactors write them in batches.
    /// The call never blocks on a slow client.
    pub fn broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.send(None, Broadcast::new(topic, event, payload), true, None)
    }

    /// Like [`broadcast`](PubSub::broadcast), skipping the subscriptions of `from` (P73).
    pub fn broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.send(Some(from), Broadcast::new(topic, event, payload), true, None)
    }

    /// Broadcasts on this node only.
    pub fn local_broadcast(&self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.send(None, Broadcast::new(topic, event, payload), false, None)
    }

    /// Broadcasts on this node only, skipping the subscriptions of `from`.
    pub fn local_broadcast_from(
        &self,
        from: SubscriberId,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        self.send(Some(from), Broadcast::new(topic, event, payload), false, None)
    }

    /// Fans out a broadcast that an [`Adapter`] received from another node, on this node only.
    pub fn deliver_remote(&self, broadcast: Broadcast) {
        self.inner.registry.dispatch(&Arc::new(broadcast), None, None, &self.inner.stats);
    }

    /// Fans out locally, then to other nodes if `remote`. `publisher` is the mailbox of
    /// the channel publishing, if one is (see `Registry::dispatch`).
    pub(crate) fn send(
        &self,
        from: Option<SubscriberId>,
        broadcast: Broadcast,
        remote: bool,
        publisher: Option<&Inbox>,
    ) -> Result<(), Error> {
        if !broadcast.payload.is_pushable() {
            return Err(Error::Encode(crate::serializer::EncodeError::NotAnObject));
        }
        let broadcast = Arc::new(broadcast);
        self.inner.registry.dispatch(&broadcast, from.map(|f| f.0), publisher, &self.inner.stats);
        if remote && let Some(adapter) = &self.inner.adapter {
            adapter.publish(&broadcast).map_err(|err| Error::Io(std::io::Error::other(err)))?;
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
        let id = self.next_id();
        let (sender, receiver) = crossbeam_channel::unbounded();
        let capacity = self.inner.subscription_capacity;
        self.inner.registry.subscribe(id, topic, Subscriber::Plain { owner: id, sender, capacity });
        Subscription { id, topic: topic.to_owned(), receiver, pubsub: self.clone() }
    }

    /// Ends a subscription (dropping it does the same).
    pub fn unsubscribe(&self, subscription: Subscription) {
        drop(subscription);
    }

    /// How many subscriptions `topic` has on this node.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.registry.count(topic)
    }
}

/// Broadcasts on one topic, for code that is not a channel (P83).
///
/// Unsubscribes when dropped.
pub struct Subscription {
    id: SubscriptionId,
    topic: String,
    receiver: Receiver<Broadcast>,
    pubsub: PubSub,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The id to pass to `broadcast_from` to skip this subscription.
    pub fn id(&self) -> SubscriberId {
        SubscriberId(self.id)
    }

    /// Waits for the next broadcast.
    pub fn recv(&self) -> Result<Broadcast, Error> {
        self.receiver.recv().map_err(|_| Error::Shutdown)
    }

    /// Waits up to `timeout` for the next broadcast; `None` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Broadcast> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next broadcast if one is waiting.
    pub fn try_recv(&self) -> Option<Broadcast> {
        self.receiver.try_recv().ok()
    }

    /// The underlying receiver, for `crossbeam_channel::select!`.
    pub fn receiver(&self) -> &Receiver<Broadcast> {
        &self.receiver
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pubsub.inner.registry.unsubscribe(self.id, &self.topic);
    }
}
