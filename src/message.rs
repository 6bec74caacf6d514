//! The three shapes of a Phoenix message: a message (push), a reply and a broadcast.

pub use crate::message_ref::Ref;

use crate::payload::Payload;

/// Topic of the connection-level heartbeat.
pub const PHOENIX_TOPIC: &str = "phoenix";
/// Heartbeat event, on [`PHOENIX_TOPIC`].
pub const HEARTBEAT: &str = "heartbeat";
/// Join event.
pub const PHX_JOIN: &str = "phx_join";
/// Leave event.
pub const PHX_LEAVE: &str = "phx_leave";
/// Reply event.
pub const PHX_REPLY: &str = "phx_reply";
/// Graceful channel close, sent by the server.
pub const PHX_CLOSE: &str = "phx_close";
/// Abnormal channel exit, sent by the server.
pub const PHX_ERROR: &str = "phx_error";

/// One Phoenix message: what a client pushes, and what a server pushes to a client.
///
/// Refs are opaque ([`Ref`]): compared strictly and echoed exactly as received. In
/// frames a ref may be `null`, which is `None` here.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The ref of the join that created the channel instance this message belongs to.
    pub join_ref: Option<Ref>,
    /// The message's own ref, echoed by replies.
    pub msg_ref: Option<Ref>,
    /// The topic, for example `room:lobby`.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The payload.
    pub payload: Payload,
}

impl Message {
    /// A message with both refs `None`.
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: impl Into<Payload>) -> Self {
        Message { join_ref: None, msg_ref: None, topic: topic.into(), event: event.into(), payload: payload.into() }
    }

    /// Whether this is a connection heartbeat (`heartbeat` on `phoenix`).
    pub fn is_heartbeat(&self) -> bool {
        self.topic == PHOENIX_TOPIC && self.event == HEARTBEAT
    }
}

/// A `phx_reply`: the answer to one client message, carrying its ref.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The channel's join ref (or the request's, see).
    pub join_ref: Option<Ref>,
    /// The ref of the message being answered.
    pub msg_ref: Option<Ref>,
    /// The topic of the message being answered.
    pub topic: String,
    /// The status, usually `ok` or `error`; any name is allowed.
    pub status: String,
    /// The response; any JSON value, or bytes on V2.
    pub response: Payload,
}

/// A broadcast: an event for every subscriber of a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct Broadcast {
    /// The topic it was broadcast on.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The payload: a JSON object or bytes.
    pub payload: Payload,
}

impl Broadcast {
    /// A broadcast of `event` with `payload` on `topic`.
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: impl Into<Payload>) -> Self {
        Broadcast { topic: topic.into(), event: event.into(), payload: payload.into() }
    }
}
