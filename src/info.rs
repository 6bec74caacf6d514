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
    ///
    /// ```
    /// use phx_channels::Info;
    ///
    /// let info = Info::Message(Box::new(7u32));
    /// let info = info.downcast::<String>().unwrap_err(); // not a String: given back
    /// assert_eq!(info.downcast::<u32>().ok(), Some(7));
    /// ```
    pub fn downcast<T: Any>(self) -> Result<T, Info> {
        match self {
            Info::Message(value) => value.downcast::<T>().map(|v| *v).map_err(Info::Message),
            other => Err(other),
        }
    }

    /// The sent value, if it is a `T`, without taking it out.
    ///
    /// ```
    /// use phx_channels::Info;
    ///
    /// let info = Info::Message(Box::new("tick"));
    /// assert_eq!(info.downcast_ref::<&str>(), Some(&"tick"));
    /// assert_eq!(info.downcast_ref::<u32>(), None);
    /// ```
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match self {
            Info::Message(value) => value.downcast_ref::<T>(),
            Info::Broadcast(_) => None,
        }
    }

    /// Whether this is a sent value of type `T`.
    ///
    /// ```
    /// use phx_channels::Info;
    ///
    /// assert!(Info::Message(Box::new(1u8)).is::<u8>());
    /// assert!(!Info::Message(Box::new(1u8)).is::<u16>());
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        self.downcast_ref::<T>().is_some()
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
