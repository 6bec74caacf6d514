//! Client-side message helpers: building a message, reading up to a reply, taking
//! the next messages, describing them for order assertions, and proving a connection
//! alive.

use phx_channels::Payload;
use phx_channels::client::Client;
use phx_channels::message::{Message, Reply};
use phx_channels::serializer::ServerMessage;
use serde_json::Value;

/// The JSON of a payload (panics on binary).
pub fn json_of(payload: &Payload) -> Value {
    payload.as_json().cloned().unwrap_or_else(|| panic!("expected JSON, got {payload:?}"))
}

/// A message with the given refs.
pub fn message(join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> Message {
    Message {
        join_ref: join_ref.map(Into::into),
        msg_ref: msg_ref.map(Into::into),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload: payload.into(),
    }
}

/// Everything the server sends up to and including the reply to `msg_ref`, in order.
/// The reply is last.
pub fn until_reply(client: &mut Client, msg_ref: &str) -> (Vec<ServerMessage>, Reply) {
    let mut before = Vec::new();
    loop {
        match client.recv().unwrap_or_else(|err| panic!("waiting for reply {msg_ref}: {err}; got {before:#?}")) {
            ServerMessage::Reply(reply) if reply.msg_ref.as_deref() == Some(msg_ref) => return (before, reply),
            other => before.push(other),
        }
    }
}

/// Sends `event` and returns everything up to and including its reply.
pub fn push_collect(client: &mut Client, topic: &str, event: &str, payload: Value) -> (Vec<ServerMessage>, Reply) {
    let msg_ref = client.push_async(topic, event, payload).unwrap();
    until_reply(client, &msg_ref)
}

/// The next `n` messages from the server.
pub fn recv_n(client: &mut Client, n: usize) -> Vec<ServerMessage> {
    (0..n).map(|i| client.recv().unwrap_or_else(|err| panic!("message {i} of {n}: {err}"))).collect()
}

/// A short description of a server message, for order assertions:
/// `reply:<ref>:<status>` or `<event>`.
pub fn describe(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Reply(r) => format!("reply:{}:{}", r.msg_ref.as_deref().unwrap_or("null"), r.status),
        ServerMessage::Message(m) => m.event.clone(),
    }
}

/// The message inside, or a panic.
pub fn as_message(msg: ServerMessage) -> Message {
    match msg {
        ServerMessage::Message(m) => m,
        other => panic!("expected a push or broadcast, got {other:?}"),
    }
}

/// Sends a heartbeat and asserts it is answered; proves the connection is alive.
pub fn assert_alive(client: &mut Client) {
    let reply = client.heartbeat().expect("heartbeat reply");
    assert_eq!(reply.status, "ok");
}
