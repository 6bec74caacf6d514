//! The `Channel` trait: the callbacks of a Phoenix channel, and what they return.

use crate::info::Info;
use crate::payload::Payload;
use crate::socket::Socket;
use crate::stop_reason::StopReason;
use std::any::Any;
use std::fmt;

/// What `join` returns: `Ok(reply)` joins (the reply is usually [`Payload::empty`]),
/// `Err(reply)` refuses the join with that response.
pub type JoinResult = Result<Payload, Payload>;

/// A channel: one instance per joined topic per connection, running on its own thread.
///
/// The callbacks mirror Phoenix's `Phoenix.Channel` behaviour. Each runs on the
/// channel's thread, so it may block (on a database, a lock, a computation) without
/// holding back any other channel or connection. A panic in any callback ends this
/// channel alone: its client gets `phx_error` and may rejoin.
///
/// | Phoenix | phx-channels |
/// |---|---|
/// | `join/3` | [`join`](Channel::join) (required) |
/// | `handle_in/3` | [`handle_in`](Channel::handle_in) |
/// | `intercept/1` + `handle_out/3` | [`intercept`](Channel::intercept) + [`handle_out`](Channel::handle_out) |
/// | `handle_info/2` | [`handle_info`](Channel::handle_info) |
/// | `handle_call/3` (a `GenServer.call` to the channel) | [`handle_call`](Channel::handle_call), answering [`ChannelHandle::call`](crate::ChannelHandle::call) |
/// | `{:noreply, socket}` from `handle_call/3`, then `GenServer.reply(from, answer)` | [`CallReply::noreply`] after [`Socket::take_caller`], then [`CallFrom::reply`](crate::CallFrom::reply) from any callback or thread |
/// | `handle_cast/2` (a `GenServer.cast` to the channel) | [`ChannelHandle::send`](crate::ChannelHandle::send), handled in [`handle_info`](Channel::handle_info) |
/// | a channel's pid, found in a `Registry` the app keeps | [`Endpoint::channels(topic)`](crate::Endpoint::channels) (the endpoint keeps it), [`Socket::handle`] for the channel's own |
/// | several `handle_info/2` clauses | one enum of the channel's messages, matched after [`Info::downcast`] (see [`handle_info`](Channel::handle_info)) |
/// | `terminate/2` | [`terminate`](Channel::terminate) |
/// | `code_change/3` | none: Rust has no hot code upgrade; deploy a new binary and let clients reconnect (the drain at shutdown closes them with 1012 so they do) |
///
/// # Example
///
/// ```
/// use phx_channels::{Channel, Handled, JoinResult, Payload, Socket};
///
/// struct Room;
///
/// impl Channel for Room {
///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
///         Ok(Payload::empty())
///     }
///
///     fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
///         match event {
///             "new_msg" => {
///                 let _ = socket.broadcast("new_msg", payload);
///                 Handled::ok()
///             }
///             _ => Handled::NoReply,
///         }
///     }
/// }
/// ```
pub trait Channel: Send + 'static {
    /// Decides whether a client may join `topic`.
    ///
    /// `push`, `broadcast` and `reply` are not available yet: they return
    /// [`Error::NotJoined`](crate::Error::NotJoined). To push right after joining, send
    /// yourself a message with [`Socket::handle`] and push from `handle_info`.
    /// A panic here answers the client with `{"reason":"join crashed"}`.
    fn join(&mut self, topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult;

    /// Handles an event pushed by the client.
    ///
    /// The default handles no event: it crashes the channel ([`Handled::Crash`]), as a
    /// Phoenix channel crashes on an event no `handle_in` clause matches. Return
    /// [`Handled::unhandled`] from your own catch-all arm to do the same.
    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        let _ = (payload, socket);
        Handled::unhandled(event)
    }

    /// The events this channel intercepts: broadcasts of these call
    /// [`handle_out`](Channel::handle_out) on this channel's thread instead of going
    /// straight to the client. Every other event takes the fastlane.
    /// Called once, right after the channel is created.
    fn intercept(&self) -> &[&str] {
        &[]
    }

    /// Handles an intercepted broadcast: push it as is, change it, drop it, or stop.
    ///
    /// The default pushes it unchanged.
    fn handle_out(&mut self, event: &str, payload: &Payload, socket: &mut Socket) -> Flow {
        if let Err(err) = socket.push_payload(event, payload) {
            log::warn!("handle_out could not push {event:?} on {}: {err}", socket.topic());
        }
        Flow::Continue
    }

    /// Handles a message that is not from the client: a broadcast on a topic the channel
    /// subscribed to with [`Socket::subscribe`], a value sent through a
    /// [`ChannelHandle`](crate::ChannelHandle), or a timer's message
    /// ([`Socket::send_after`]).
    ///
    /// The default logs a warning and drops the message.
    ///
    /// Where a Phoenix channel has one `handle_info` clause per message shape, give the
    /// channel one enum of every message it is sent (by timers, by other threads), send
    /// only that, and match it after one [`Info::downcast`]: the compiler then checks
    /// that every message is handled. [`Info::is`] and [`Info::downcast_ref`] look
    /// without taking the value out.
    ///
    /// ```
    /// use phx_channels::{Channel, Flow, Info, JoinResult, Payload, Socket};
    /// use std::time::Duration;
    ///
    /// /// Everything the board is sent.
    /// enum BoardMsg {
    ///     Tick,
    ///     Reset { by: String },
    /// }
    ///
    /// struct Board {
    ///     count: u64,
    /// }
    ///
    /// impl Channel for Board {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
    ///         socket.send_after(Duration::from_secs(1), BoardMsg::Tick);
    ///         Ok(Payload::empty())
    ///     }
    ///
    ///     fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
    ///         match info.downcast::<BoardMsg>() {
    ///             Ok(BoardMsg::Tick) => {
    ///                 self.count += 1;
    ///                 socket.send_after(Duration::from_secs(1), BoardMsg::Tick);
    ///             }
    ///             Ok(BoardMsg::Reset { by }) => {
    ///                 self.count = 0;
    ///                 let _ = socket.push("reset", serde_json::json!({"by": by}));
    ///             }
    ///             Err(Info::Broadcast(broadcast)) => {
    ///                 let _ = socket.push(&broadcast.event, broadcast.payload);
    ///             }
    ///             Err(other) => log::warn!("{}: unexpected {other:?}", socket.topic()),
    ///         }
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        log::warn!("{} received unexpected message in handle_info: {info:?}", socket.topic());
        Flow::Continue
    }

    /// Answers a [`ChannelHandle::call`](crate::ChannelHandle::call): Phoenix's
    /// `handle_call/3` for a `GenServer.call` to the channel's process. `request` is
    /// what the caller passed; downcast it to the types the channel answers. The
    /// answer's type must be the one the caller asks for.
    ///
    /// To answer later, as Phoenix's `{:noreply, socket}` followed by
    /// `GenServer.reply(from, answer)`: take the caller with [`Socket::take_caller`],
    /// return [`CallReply::noreply`], and answer with
    /// [`CallFrom::reply`](crate::CallFrom::reply) from another callback or thread.
    ///
    /// The default answers nothing and crashes the channel, as a `GenServer` without a
    /// matching `handle_call` clause does: the caller gets
    /// [`CallError::ChannelEnded`](crate::CallError::ChannelEnded) and the client
    /// `phx_error`. A panic here is a crash too.
    fn handle_call(&mut self, request: Box<dyn Any + Send>, socket: &mut Socket) -> CallReply {
        let _ = (request, socket);
        CallReply::unhandled()
    }

    /// Runs when the channel stops in an orderly way: the client left
    /// ([`StopReason::left`]), the connection closed ([`StopReason::closed`]), a callback
    /// returned a stop, the server is shutting down ([`StopReason::draining`]), or
    /// `join` refused the client (reason `shutdown`).
    ///
    /// It does **not** run after a panic: the channel's state
    /// may be broken, and the client is told with `phx_error`. `Drop` still runs while
    /// the panic unwinds, so resources are released. Pushes made here reach the client
    /// while its connection is open (after `phx_close` on graceful stops).
    fn terminate(&mut self, reason: &StopReason, socket: &mut Socket) {
        let _ = (reason, socket);
    }
}

/// What [`Channel::handle_in`] returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Handled {
    /// Send nothing. A reply may still come later through a
    /// [`SocketRef`](crate::SocketRef).
    NoReply,
    /// Reply with `status` and `response`.
    Reply {
        /// Any status name; `ok` and `error` are the usual ones.
        status: String,
        /// The response: any JSON value, or bytes on V2.
        response: Payload,
    },
    /// Stop the channel, after an optional reply.
    Stop {
        /// Graceful reasons send `phx_close`; others send `phx_error`.
        reason: StopReason,
        /// A reply to send first, as `(status, response)`.
        reply: Option<(String, Payload)>,
    },
    /// Crash the channel, as an exception in a Phoenix callback does: the client gets
    /// `phx_error`, [`terminate`](Channel::terminate) does not run (as after a panic),
    /// and the crash is logged as an error with this text and counted with the panics.
    /// Unlike a panic, it prints no panic message.
    Crash(String),
}

impl Handled {
    /// Reply `ok` with `{}`.
    pub fn ok() -> Self {
        Handled::reply("ok", Payload::empty())
    }

    /// Reply `ok` with `response`.
    pub fn reply_ok(response: impl Into<Payload>) -> Self {
        Handled::reply("ok", response)
    }

    /// Reply `error` with `response`.
    pub fn reply_error(response: impl Into<Payload>) -> Self {
        Handled::reply("error", response)
    }

    /// Reply with any status and response.
    pub fn reply(status: impl Into<String>, response: impl Into<Payload>) -> Self {
        Handled::Reply { status: status.into(), response: response.into() }
    }

    /// Stop without a reply.
    pub fn stop(reason: StopReason) -> Self {
        Handled::Stop { reason, reply: None }
    }

    /// A crash for an event this channel does not handle, as Phoenix's missing
    /// `handle_in` clause: the default of [`Channel::handle_in`].
    ///
    /// ```
    /// use phx_channels::{Channel, Handled, JoinResult, Payload, Socket};
    ///
    /// struct Room;
    ///
    /// impl Channel for Room {
    ///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
    ///         Ok(Payload::empty())
    ///     }
    ///
    ///     fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
    ///         match event {
    ///             "ping" => Handled::reply_ok(payload),
    ///             _ => Handled::unhandled(event),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn unhandled(event: &str) -> Self {
        Handled::Crash(format!("no handle_in clause for event {event:?}"))
    }

    /// Reply, then stop.
    pub fn stop_with_reply(reason: StopReason, status: impl Into<String>, response: impl Into<Payload>) -> Self {
        Handled::Stop { reason, reply: Some((status.into(), response.into())) }
    }
}

/// What [`Channel::handle_out`] and [`Channel::handle_info`] return.
#[derive(Clone, Debug, PartialEq)]
pub enum Flow {
    /// Keep the channel running.
    Continue,
    /// Stop the channel (stop handling as for [`Handled::Stop`]).
    Stop(StopReason),
}

/// What [`Channel::handle_call`] returns: the answer, no answer yet, a stop, or a crash.
///
/// ```
/// use phx_channels::{CallReply, Channel, JoinResult, Payload, Socket, StopReason};
/// use std::any::Any;
///
/// /// Asks how far the job is.
/// struct Progress;
/// /// Asks the job to finish; it answers, then stops.
/// struct Finish;
///
/// struct Job {
///     percent: u8,
/// }
///
/// impl Channel for Job {
///     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
///         Ok(Payload::empty())
///     }
///
///     fn handle_call(&mut self, request: Box<dyn Any + Send>, _socket: &mut Socket) -> CallReply {
///         if request.is::<Progress>() {
///             CallReply::reply(self.percent)
///         } else if request.is::<Finish>() {
///             CallReply::stop_with_reply(StopReason::Normal, "finished")
///         } else {
///             CallReply::unhandled()
///         }
///     }
/// }
/// ```
pub enum CallReply {
    /// Answer the caller with this value.
    Reply(Box<dyn Any + Send>),
    /// Answer later: `handle_call` took the caller with [`Socket::take_caller`] and
    /// answers through it ([`CallFrom`](crate::CallFrom)). A caller not taken gets
    /// [`CallError::ChannelEnded`](crate::CallError::ChannelEnded) at once.
    NoReply,
    /// Stop the channel (stop handling as for [`Handled::Stop`]), answering the caller
    /// first if there is an answer; without one the caller gets
    /// [`CallError::ChannelEnded`](crate::CallError::ChannelEnded).
    Stop {
        /// Graceful reasons send `phx_close`; others send `phx_error`.
        reason: StopReason,
        /// The answer, if any.
        reply: Option<Box<dyn Any + Send>>,
    },
    /// Crash the channel, as [`Handled::Crash`]; the caller gets
    /// [`CallError::ChannelEnded`](crate::CallError::ChannelEnded).
    Crash(String),
}

impl CallReply {
    /// Answer the caller with `value`.
    pub fn reply<T: Any + Send>(value: T) -> Self {
        CallReply::Reply(Box::new(value))
    }

    /// No answer yet: Phoenix's `{:noreply, socket}` in `handle_call/3`. Take the
    /// caller first with [`Socket::take_caller`] to answer it later.
    pub fn noreply() -> Self {
        CallReply::NoReply
    }

    /// Stop without answering (a caller taken with [`Socket::take_caller`] may still
    /// be answered through it).
    pub fn stop(reason: StopReason) -> Self {
        CallReply::Stop { reason, reply: None }
    }

    /// Answer, then stop.
    pub fn stop_with_reply<T: Any + Send>(reason: StopReason, value: T) -> Self {
        CallReply::Stop { reason, reply: Some(Box::new(value)) }
    }

    /// A crash for a request this channel does not answer: the default of
    /// [`Channel::handle_call`].
    pub fn unhandled() -> Self {
        CallReply::Crash("no handle_call clause for the request".to_owned())
    }
}

impl fmt::Debug for CallReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallReply::Reply(_) => f.write_str("Reply(..)"),
            CallReply::NoReply => f.write_str("NoReply"),
            CallReply::Stop { reason, reply } => {
                f.debug_struct("Stop").field("reason", reason).field("reply", &reply.as_ref().map(|_| "..")).finish()
            }
            CallReply::Crash(why) => f.debug_tuple("Crash").field(why).finish(),
        }
    }
}
