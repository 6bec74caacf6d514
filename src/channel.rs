//! The `Channel` trait: the callbacks of a Phoenix channel, and what they return.

use crate::message::Broadcast;
use crate::payload::Payload;
use crate::socket::Socket;
use std::any::Any;
use std::fmt;

/// What `join` returns: `Ok(reply)` joins (the reply is usually [`Payload::empty`]),
/// `Err(reply)` refuses the join with that response (P48, P49).
pub type JoinResult = Result<Payload, Payload>;

/// A channel: one instance per joined topic per connection, running on its own thread.
///
/// The callbacks mirror Phoenix's `Phoenix.Channel` behaviour. Each runs on the
/// channel's thread, so it may block (on a database, a lock, a computation) without
/// holding back any other channel or connection. A panic in any callback ends this
/// channel alone: its client gets `phx_error` and may rejoin (P67).
///
/// | Phoenix | phx-channels |
/// |---|---|
/// | `join/3` | [`join`](Channel::join) (required) |
/// | `handle_in/3` | [`handle_in`](Channel::handle_in) |
/// | `intercept/1` + `handle_out/3` | [`intercept`](Channel::intercept) + [`handle_out`](Channel::handle_out) |
/// | `handle_info/2` | [`handle_info`](Channel::handle_info) |
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
    /// Decides whether a client may join `topic` (P48–P50).
    ///
    /// `push`, `broadcast` and `reply` are not available yet (P54): they return
    /// [`Error::NotJoined`](crate::Error::NotJoined). To push right after joining, send
    /// yourself a message with [`Socket::handle`] and push from `handle_info`.
    /// A panic here answers the client with `{"reason":"join crashed"}`.
    fn join(&mut self, topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult;

    /// Handles an event pushed by the client (P61–P66).
    ///
    /// The default answers no event: it stops the channel with an error, so the client
    /// gets `phx_error`, as Phoenix does for an event with no matching clause.
    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        let _ = (payload, socket);
        Handled::stop(StopReason::Error(format!("no handle_in clause for event {event:?}")))
    }

    /// The events this channel intercepts: broadcasts of these call
    /// [`handle_out`](Channel::handle_out) on this channel's thread instead of going
    /// straight to the client (P75). Every other event takes the fastlane (P74).
    /// Called once, right after the channel is created.
    fn intercept(&self) -> &[&str] {
        &[]
    }

    /// Handles an intercepted broadcast: push it as is, change it, drop it, or stop.
    ///
    /// The default pushes it unchanged.
    fn handle_out(&mut self, event: &str, payload: &Payload, socket: &mut Socket) -> Flow {
        if let Err(err) = socket.push(event, payload.clone()) {
            log::warn!("handle_out could not push {event:?} on {}: {err}", socket.topic());
        }
        Flow::Continue
    }

    /// Handles a message that is not from the client: a broadcast on a topic the channel
    /// subscribed to with [`Socket::subscribe`] (P76), or a value sent through a
    /// [`ChannelHandle`](crate::ChannelHandle).
    ///
    /// The default logs a warning and drops the message (P77).
    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        log::warn!("{} received unexpected message in handle_info: {info:?}", socket.topic());
        Flow::Continue
    }

    /// Runs when the channel stops in an orderly way: the client left
    /// ([`StopReason::left`]), the connection closed ([`StopReason::closed`]), a callback
    /// returned a stop, the server is shutting down ([`StopReason::draining`]), or
    /// `join` refused the client (reason `shutdown`).
    ///
    /// It does **not** run after a panic (PROTOCOL.md decision D1): the channel's state
    /// may be broken, and the client is told with `phx_error`. `Drop` still runs while
    /// the panic unwinds, so resources are released. Pushes made here reach the client
    /// while its connection is open (after `phx_close` on graceful stops, P80).
    fn terminate(&mut self, reason: &StopReason, socket: &mut Socket) {
        let _ = (reason, socket);
    }
}

/// What [`Channel::handle_in`] returns (PROTOCOL.md 5.6).
#[derive(Clone, Debug, PartialEq)]
pub enum Handled {
    /// Send nothing (P61). A reply may still come later through a
    /// [`SocketRef`](crate::SocketRef) (P71).
    NoReply,
    /// Reply with `status` and `response` (P62, P63).
    Reply {
        /// Any status name; `ok` and `error` are the usual ones.
        status: String,
        /// The response: any JSON value, or bytes on V2.
        response: Payload,
    },
    /// Stop the channel, after an optional reply (P65, P66).
    Stop {
        /// Graceful reasons send `phx_close`; others send `phx_error`.
        reason: StopReason,
        /// A reply to send first, as `(status, response)`.
        reply: Option<(String, Payload)>,
    },
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

/// Why a channel stopped, as Phoenix's exit reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `:normal`: graceful, the client gets `phx_close`.
    Normal,
    /// `:shutdown`: graceful.
    Shutdown,
    /// `{:shutdown, detail}`: graceful; `left`, `closed` and `draining` are the server's own.
    ShutdownWith(String),
    /// Any other reason: the client gets `phx_error`, and the stop is logged as an error.
    Error(String),
}

impl StopReason {
    /// `{shutdown, left}`: the client left the channel.
    pub fn left() -> Self {
        StopReason::ShutdownWith("left".into())
    }

    /// `{shutdown, closed}`: the connection closed (P78).
    pub fn closed() -> Self {
        StopReason::ShutdownWith("closed".into())
    }

    /// `{shutdown, draining}`: the server is shutting down (P81).
    pub fn draining() -> Self {
        StopReason::ShutdownWith("draining".into())
    }

    /// Whether the client gets `phx_close` (graceful) rather than `phx_error`.
    pub fn is_graceful(&self) -> bool {
        !matches!(self, StopReason::Error(_))
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Normal => f.write_str("normal"),
            StopReason::Shutdown => f.write_str("shutdown"),
            StopReason::ShutdownWith(detail) => write!(f, "{{shutdown, {detail}}}"),
            StopReason::Error(why) => f.write_str(why),
        }
    }
}

/// A message for [`Channel::handle_info`].
pub enum Info {
    /// A broadcast on a topic the channel subscribed to (P76).
    Broadcast(Broadcast),
    /// A value sent with [`ChannelHandle::send`](crate::ChannelHandle::send).
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
