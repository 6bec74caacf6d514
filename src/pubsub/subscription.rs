//! A subscription held by code that is not a channel.

use super::PubSub;
use super::registry::SubscriptionId;
use crate::error::Error;
use crate::message::Broadcast;
use crate::subscriber_id::SubscriberId;
use crossbeam_channel::Receiver;
use std::time::Duration;

/// Broadcasts on one topic, for code that is not a channel.
///
/// Unsubscribes when dropped.
///
/// ```
/// use phx_channels::Endpoint;
/// use std::time::Duration;
///
/// let endpoint = Endpoint::builder().bind("127.0.0.1:0").start()?;
/// let subscription = endpoint.subscribe("news");
/// endpoint.broadcast("news", "headline", serde_json::json!({"title": "hello"}))?;
/// let broadcast = subscription.recv_timeout(Duration::from_secs(1)).expect("a broadcast");
/// assert_eq!(broadcast.event, "headline");
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
pub struct Subscription {
    pub(super) id: SubscriptionId,
    pub(super) owner: SubscriberId,
    pub(super) topic: String,
    pub(super) receiver: Receiver<Broadcast>,
    pub(super) pubsub: PubSub,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The id to pass to `broadcast_from` to skip this subscription.
    pub fn id(&self) -> SubscriberId {
        self.owner
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
        self.pubsub.remove(self.id, &self.topic);
    }
}
