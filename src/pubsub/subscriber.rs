//! Who receives a topic's broadcasts, and how each kind takes them.

use crate::bounded::BoundedSender;
use crate::inbox::Inbox;
use crate::message::Broadcast;
use crate::serializer::Serializer;
use crate::subscriber_id::SubscriberId;
use crate::transport::outbound::Outbound;
use std::sync::Arc;

/// One subscription on a topic.
pub(crate) enum Subscriber {
    /// A joined channel on its own topic: the fastlane, unless it intercepts the event.
    Channel(ChannelSubscriber),
    /// A channel's extra topic: broadcasts arrive in its `handle_info`.
    Info { owner: SubscriberId, inbox: Inbox },
    /// Code that is not a channel, holding a [`Subscription`](crate::Subscription).
    Plain { owner: SubscriberId, sender: BoundedSender<Broadcast> },
    /// A connection subscribed to its socket id: a `disconnect` broadcast closes it.
    Connection(Arc<Outbound>),
}

impl Subscriber {
    /// Whose subscription this is, for `broadcast_from`.
    pub(super) fn owner(&self) -> Option<SubscriberId> {
        match self {
            Subscriber::Channel(channel) => Some(channel.owner),
            Subscriber::Info { owner, .. } | Subscriber::Plain { owner, .. } => Some(*owner),
            Subscriber::Connection(_) => None,
        }
    }
}

/// What the fastlane needs of a joined channel.
pub(crate) struct ChannelSubscriber {
    pub(crate) owner: SubscriberId,
    /// The channel's connection.
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) serializer: Serializer,
    /// Events that go to the channel's `handle_out` instead of the fastlane.
    pub(crate) intercepts: Arc<[String]>,
    pub(crate) inbox: Inbox,
}

impl ChannelSubscriber {
    pub(super) fn intercepts(&self, event: &str) -> bool {
        self.intercepts.iter().any(|intercepted| intercepted == event)
    }
}
