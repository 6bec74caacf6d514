//! What reaches a channel's `handle_info`: broadcasts on extra topics, values sent
//! through a channel handle, and timers' messages.

use crate::message::Broadcast;
use std::any::Any;
use std::fmt;

/// A message for [`Channel::handle_info`](crate::Channel::handle_info).
pub enum Info {
    /// A broadcast on a topic the channel subscribed to.
    Broadcast(Broadcast),
    /// A value sent with [`ChannelHandle::send`](crate::ChannelHandle::send), or by a
    /// timer of [`Socket::send_after`](crate::Socket::send_after).
    Message(Box<dyn Any + Send>),
}

impl Info {
    /// Takes the sent value out if it is a `T`; gives the `Info` back otherwise.
    pub fn downcast<T: Any>(self) -> Result<T, Info> {
        match self {
            Info::Message(value) => value.downcast::<T>().map(|v| *v).map_err(Info::Message),
            other => Err(other),
        }
    }
}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Info::Broadcast(b) => f.debug_tuple("Broadcast").field(b).finish(),
            Info::Message(_) => f.write_str("Message(..)"),
        }
    }
}
