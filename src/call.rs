//! A synchronous request into a channel, Phoenix's `GenServer.call` to a channel
//! process: the request and the way back that travel in the channel's mailbox, the
//! caller a channel may answer later, and how a call fails.

use crossbeam_channel::Sender;
use std::any::Any;
use std::fmt;

/// A call waiting in a channel's mailbox: the request, and who waits for the answer.
/// Dropping it unanswered (the channel ended, crashed, or stopped without a reply)
/// tells the caller the channel has ended.
pub(crate) struct Call {
    pub(crate) request: Box<dyn Any + Send>,
    pub(crate) from: CallFrom,
}

/// The caller of a [`ChannelHandle::call`](crate::ChannelHandle::call), waiting for
/// its answer: the `from` of Phoenix's `handle_call/3`, answered with
/// [`reply`](CallFrom::reply) as with `GenServer.reply/2`.
///
/// [`Socket::take_caller`](crate::Socket::take_caller) hands it out in
/// [`handle_call`](crate::Channel::handle_call), which then returns
/// [`CallReply::noreply`](crate::CallReply::noreply) and keeps the caller waiting: the
/// channel may answer from a later callback (keep it in the channel's state) or from
/// another thread (it is `Send`). The caller's own timeout still applies. Dropping a
/// `CallFrom` unanswered tells the caller at once that the channel has ended
/// ([`CallError::ChannelEnded`]), as when the channel ends with it in its state.
///
/// ```
/// use phx_channels::testing;
/// use phx_channels::{CallFrom, CallReply, Channel, Endpoint, Flow, Info, JoinResult, Payload, Socket, UserSocket};
/// use std::any::Any;
/// use std::time::Duration;
///
/// /// Waits for the next tick, then answers every caller with its number.
/// struct Ticker {
///     ticks: u32,
///     waiting: Vec<CallFrom>,
/// }
///
/// /// Asks for the next tick's number.
/// struct NextTick;
/// /// The timer's message.
/// struct Tick;
///
/// impl Channel for Ticker {
///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
///         Ok(Payload::empty())
///     }
///
///     fn handle_call(&mut self, request: Box<dyn Any + Send>, socket: &mut Socket) -> CallReply {
///         if !request.is::<NextTick>() {
///             return CallReply::unhandled();
///         }
///         self.waiting.extend(socket.take_caller());
///         socket.send_after(Duration::from_millis(10), Tick);
///         CallReply::noreply()
///     }
///
///     fn handle_info(&mut self, _info: Info, _socket: &mut Socket) -> Flow {
///         self.ticks += 1;
///         for caller in self.waiting.drain(..) {
///             caller.reply(self.ticks); // false if that caller stopped waiting
///         }
///         Flow::Continue
///     }
/// }
///
/// let socket = UserSocket::new().channel("ticker", |_| Ticker { ticks: 0, waiting: Vec::new() });
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket))?;
/// let (_, ticker) = testing::connect(&endpoint, "/socket", serde_json::json!({}))?.join("ticker", serde_json::json!({}))?;
/// assert_eq!(ticker.handle().call::<u32>(NextTick, Duration::from_secs(5))?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CallFrom {
    reply_to: Sender<Box<dyn Any + Send>>,
}

impl CallFrom {
    pub(crate) fn new(reply_to: Sender<Box<dyn Any + Send>>) -> Self {
        CallFrom { reply_to }
    }

    /// Answers the caller with `answer`, whose type must be the one the caller asks
    /// for. Returns whether the caller was still waiting: `false` once it has timed
    /// out, and the answer is dropped. Never blocks.
    pub fn reply<T: Any + Send>(self, answer: T) -> bool {
        self.answer(Box::new(answer))
    }

    /// Answers with an answer already boxed, as `handle_call` returns it.
    pub(crate) fn answer(self, answer: Box<dyn Any + Send>) -> bool {
        // One answer on a channel of one: the slot is free unless the caller is gone.
        self.reply_to.try_send(answer).is_ok()
    }
}

impl fmt::Debug for CallFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFrom").finish_non_exhaustive()
    }
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
