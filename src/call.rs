//! A synchronous request into a channel, Phoenix's `GenServer.call` to a channel
//! process: the request and the way back that travel in the channel's mailbox, and how
//! a call fails.

use crossbeam_channel::Sender;
use std::any::Any;
use std::fmt;

/// A call waiting in a channel's mailbox: the request, and where the answer goes.
/// Dropping it unanswered (the channel ended, crashed, or stopped without a reply)
/// tells the caller the channel has ended.
pub(crate) struct Call {
    pub(crate) request: Box<dyn Any + Send>,
    pub(crate) reply_to: Sender<Box<dyn Any + Send>>,
}

/// Why [`ChannelHandle::call`](crate::ChannelHandle::call) got no answer.
///
/// ```
/// use phx_channels::{CallError, ChannelHandle};
/// use std::time::Duration;
///
/// fn count(channel: &ChannelHandle) -> Option<u64> {
///     match channel.call::<u64>("count", Duration::from_secs(1)) {
///         Ok(count) => Some(count),
///         Err(CallError::ChannelEnded) => None, // it left, or crashed: nothing to count
///         Err(err) => panic!("{err}"),
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// No answer came within the timeout. The channel may still answer later; the
    /// answer is dropped.
    Timeout,
    /// The channel had ended, or ended (stopped or crashed) before it answered.
    ChannelEnded,
    /// The channel's mailbox is full; the request was not delivered.
    Overloaded,
    /// The answer is not of the type asked for.
    UnexpectedReply {
        /// The type the caller asked for.
        expected: &'static str,
    },
    /// A channel called itself: it would wait for its own answer forever.
    CalledSelf,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("the channel did not answer the call in time"),
            CallError::ChannelEnded => f.write_str("the channel ended before it answered the call"),
            CallError::Overloaded => f.write_str("the channel's mailbox is full"),
            CallError::UnexpectedReply { expected } => write!(f, "the channel's answer is not a {expected}"),
            CallError::CalledSelf => f.write_str("a channel cannot call itself"),
        }
    }
}

impl std::error::Error for CallError {}
