//! A subscription held by code that is not a channel.

use super::PubSub;
use super::registry::SubscriptionId;
use crate::error::Error;
use crate::message::Broadcast;
use crate::subscriber_id::SubscriberId;
use crossbeam_channel::Receiver;
use std::fmt;
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
///
/// A subscription is also an iterator of its broadcasts, which ends when the endpoint
/// shuts down:
///
/// ```
/// use phx_channels::Endpoint;
///
/// let endpoint = Endpoint::builder().no_listener().start()?;
/// let subscription = endpoint.subscribe("news");
/// let reader = std::thread::spawn(move || {
///     subscription.iter().map(|broadcast| broadcast.event).collect::<Vec<_>>()
/// });
/// endpoint.broadcast("news", "first", serde_json::json!({}))?;
/// endpoint.broadcast("news", "second", serde_json::json!({}))?;
/// endpoint.shutdown();
/// assert_eq!(reader.join().unwrap(), ["first", "second"]);
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

    /// Waits up to `timeout` for the next broadcast.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Broadcast, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout).map_err(|err| match err {
            crossbeam_channel::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            crossbeam_channel::RecvTimeoutError::Disconnected => RecvTimeoutError::Shutdown,
        })
    }

    /// The next broadcast if one is waiting.
    pub fn try_recv(&self) -> Result<Broadcast, TryRecvError> {
        self.receiver.try_recv().map_err(|err| match err {
            crossbeam_channel::TryRecvError::Empty => TryRecvError::Empty,
            crossbeam_channel::TryRecvError::Disconnected => TryRecvError::Shutdown,
        })
    }

    /// The broadcasts as they arrive, waiting for each; the iterator ends when the
    /// endpoint shuts down.
    pub fn iter(&self) -> SubscriptionIter<'_> {
        SubscriptionIter { subscription: self }
    }

    /// The underlying receiver, for `crossbeam_channel::select!`.
    pub fn receiver(&self) -> &Receiver<Broadcast> {
        &self.receiver
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("id", &self.owner)
            .field("waiting", &self.receiver.len())
            .finish_non_exhaustive()
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = Broadcast;
    type IntoIter = SubscriptionIter<'a>;

    fn into_iter(self) -> SubscriptionIter<'a> {
        self.iter()
    }
}

/// The broadcasts of a [`Subscription`], from [`Subscription::iter`]: each call to
/// `next` waits for one, and `None` means the endpoint has shut down.
#[derive(Debug)]
pub struct SubscriptionIter<'a> {
    subscription: &'a Subscription,
}

impl Iterator for SubscriptionIter<'_> {
    type Item = Broadcast;

    fn next(&mut self) -> Option<Broadcast> {
        self.subscription.recv().ok()
    }
}

/// Why [`Subscription::recv_timeout`] returned no broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No broadcast came within the timeout; the subscription is still open.
    Timeout,
    /// The endpoint has shut down: no broadcast will come.
    Shutdown,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("no broadcast came within the timeout"),
            RecvTimeoutError::Shutdown => f.write_str("the endpoint has shut down"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// Why [`Subscription::try_recv`] returned no broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No broadcast is waiting; the subscription is still open.
    Empty,
    /// The endpoint has shut down: no broadcast will come.
    Shutdown,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no broadcast is waiting"),
            TryRecvError::Shutdown => f.write_str("the endpoint has shut down"),
        }
    }
}

impl std::error::Error for TryRecvError {}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pubsub.remove(self.id, &self.topic);
    }
}
