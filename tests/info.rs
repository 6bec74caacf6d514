//! `Info::is` and `Info::downcast_ref`: a channel's `handle_info` tells several message
//! types apart without taking the value out, and the channel gets each message, sent
//! from outside, as its client sees it.

use phx_channels::testing;
use phx_channels::{Broadcast, Channel, Endpoint, Flow, Info, JoinResult, Payload, Socket, UserSocket};
use serde_json::json;

struct Ping;
struct Note(String);

struct Listener;

impl Channel for Listener {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        let seen = if info.is::<Ping>() {
            json!({"kind": "ping"})
        } else if let Some(Note(text)) = info.downcast_ref::<Note>() {
            json!({"kind": "note", "text": text})
        } else if let Info::Broadcast(Broadcast { event, .. }) = &info {
            json!({"kind": "broadcast", "event": event})
        } else {
            json!({"kind": "other"})
        };
        let _ = socket.push("seen", seen);
        Flow::Continue
    }
}

#[test]
fn handle_info_tells_message_types_apart_by_reference() {
    let socket = UserSocket::new().channel("inbox", |_| Listener);
    let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket)).unwrap();
    let (_, inbox) = testing::connect(&endpoint, "/socket", json!({})).unwrap().join("inbox", json!({})).unwrap();
    let channel = inbox.handle();
    channel.send(Ping).unwrap();
    channel.send(Note("hi".into())).unwrap();
    channel.send(42u8).unwrap();
    assert_eq!(inbox.assert_push("seen"), json!({"kind": "ping"}).into());
    assert_eq!(inbox.assert_push("seen"), json!({"kind": "note", "text": "hi"}).into());
    assert_eq!(inbox.assert_push("seen"), json!({"kind": "other"}).into());
}

#[test]
fn a_broadcast_is_no_sent_value() {
    let info = Info::Broadcast(Broadcast::new("t", "e", json!({})));
    assert!(!info.is::<Broadcast>());
    assert!(info.downcast_ref::<Broadcast>().is_none());
    let sent = Info::Message(Box::new(Note("x".into())));
    assert!(sent.is::<Note>() && !sent.is::<Ping>());
    assert_eq!(sent.downcast_ref::<Note>().map(|n| n.0.as_str()), Some("x"));
}
