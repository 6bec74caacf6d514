//! What a test connection has received and not yet matched: the test's mailbox. An
//! assertion takes the first message that matches and leaves the others, in order, as
//! `assert_receive` does in ExUnit; a failing one lists what is there.

use crate::message::{Broadcast, Ref};
use crate::payload::Payload;
use crate::serializer::ServerMessage;
use std::collections::VecDeque;
use std::fmt::Write;

/// Most messages a failure lists.
const LISTED: usize = 50;

/// Server messages in the order they arrived.
#[derive(Default)]
pub(super) struct Received {
    messages: VecDeque<ServerMessage>,
}

impl Received {
    pub(super) fn push(&mut self, msg: ServerMessage) {
        self.messages.push_back(msg);
    }

    /// Takes the first message `pick` accepts.
    pub(super) fn take(&mut self, pick: impl FnMut(&ServerMessage) -> bool) -> Option<ServerMessage> {
        let at = self.messages.iter().position(pick)?;
        self.messages.remove(at)
    }

    /// The first message `pick` accepts, described, leaving it here.
    pub(super) fn find(&self, mut pick: impl FnMut(&ServerMessage) -> bool) -> Option<String> {
        self.messages.iter().find(|m| pick(m)).map(describe)
    }

    /// Every message here, one a line.
    pub(super) fn list(&self) -> String {
        list(self.messages.iter().map(describe))
    }
}

/// A push of `event` on `topic` for the channel joined with `join_ref` (broadcasts,
/// which carry no join ref, included).
pub(super) fn is_push(msg: &ServerMessage, topic: &str, join_ref: &Ref, event: &str) -> bool {
    matches!(msg, ServerMessage::Message(m)
        if m.topic == topic && m.event == event && m.join_ref.as_ref().is_none_or(|r| r == join_ref))
}

/// The reply to `msg_ref` on `topic`, with `status` if one is given.
pub(super) fn is_reply(msg: &ServerMessage, topic: &str, msg_ref: &Ref, status: Option<&str>) -> bool {
    matches!(msg, ServerMessage::Reply(r)
        if r.topic == topic && r.msg_ref.as_ref() == Some(msg_ref) && status.is_none_or(|s| r.status == s))
}

/// A push's payload or a reply's response.
pub(super) fn payload(msg: &ServerMessage) -> &Payload {
    match msg {
        ServerMessage::Message(m) => &m.payload,
        ServerMessage::Reply(r) => &r.response,
    }
}

/// A payload as a failure message shows it.
pub(super) fn show(payload: &Payload) -> String {
    match payload {
        Payload::Json(value) => value.to_string(),
        Payload::Binary(bytes) => format!("<<{} bytes>>", bytes.len()),
    }
}

/// One received message, one line.
fn describe(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Message(m) => format!("push {:?} on {} {}", m.event, m.topic, show(&m.payload)),
        ServerMessage::Reply(r) => {
            let msg_ref = r.msg_ref.as_deref().unwrap_or("null");
            format!("reply {:?} to ref {msg_ref} on {} {}", r.status, r.topic, show(&r.response))
        }
    }
}

/// A broadcast, one line.
pub(super) fn describe_broadcast(broadcast: &Broadcast) -> String {
    format!("broadcast {:?} on {} {}", broadcast.event, broadcast.topic, show(&broadcast.payload))
}

/// Lines, indented, or `(nothing)`; at most [`LISTED`] of them.
pub(super) fn list(lines: impl ExactSizeIterator<Item = String>) -> String {
    let count = lines.len();
    if count == 0 {
        return "  (nothing)".to_owned();
    }
    let mut out = String::new();
    for line in lines.take(LISTED) {
        let _ = writeln!(out, "  {line}");
    }
    if count > LISTED {
        let _ = writeln!(out, "  ... and {} more", count - LISTED);
    }
    out.trim_end().to_owned()
}
