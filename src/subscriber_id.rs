//! The one id of whoever receives broadcasts and sends frames: a joined channel, or a
//! [`Subscription`](crate::Subscription).

/// Names one joined channel or one [`Subscription`](crate::Subscription), so that
/// [`PubSub::broadcast_from`](crate::PubSub::broadcast_from) can skip it and a
/// connection can tell which channel instance a frame came from.
///
/// Ids are unique for the lifetime of an endpoint: a channel that rejoins the same
/// topic gets a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberId(pub(crate) u64);
