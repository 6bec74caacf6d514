//! Protocol fidelity over a raw WebSocket, frame by frame, in V1 and V2: pipelined joins,
//! refs of any JSON type, topics and events that are not strings, and unhandled events.
//! Where Phoenix's behaviour is cited, the file is `lib/phoenix/socket.ex` of Phoenix 1.8.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// One decoded server frame, whatever the wire format.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    join_ref: Value,
    msg_ref: Value,
    topic: Value,
    event: String,
    payload: Value,
}

impl Frame {
    fn is_reply_to(&self, msg_ref: &Value) -> bool {
        self.event == "phx_reply" && self.msg_ref == *msg_ref
    }

    fn status(&self) -> &str {
        self.payload["status"].as_str().unwrap_or("")
    }
}

/// A raw connection that speaks V1 objects or V2 arrays, with any JSON in every field.
struct Wire {
    ws: RawWs,
    v2: bool,
}

impl Wire {
    fn connect(server: &Server, v2: bool) -> Wire {
        let vsn = if v2 { "2.0.0" } else { "1.0.0" };
        let ws = RawWs::connect(&server.addr, &format!("/socket/websocket?vsn={vsn}"));
        ws.set_read_timeout(Duration::from_secs(5));
        Wire { ws, v2 }
    }

    fn send(&mut self, join_ref: Value, msg_ref: Value, topic: Value, event: Value, payload: Value) {
        let frame = if self.v2 {
            json!([join_ref, msg_ref, topic, event, payload])
        } else {
            json!({"join_ref": join_ref, "ref": msg_ref, "topic": topic, "event": event, "payload": payload})
        };
        self.ws.send_json(&frame);
    }

    fn recv(&mut self) -> Frame {
        let value = self.ws.read_json();
        if self.v2 {
            let [join_ref, msg_ref, topic, event, payload] = <[Value; 5]>::try_from(value.as_array().unwrap().clone())
                .unwrap_or_else(|v| panic!("a 5-element array, got {v:?}"));
            Frame { join_ref, msg_ref, topic, event: event.as_str().unwrap().to_owned(), payload }
        } else {
            // V1 frames never carry a join_ref.
            Frame {
                join_ref: Value::Null,
                msg_ref: value["ref"].clone(),
                topic: value["topic"].clone(),
                event: value["event"].as_str().unwrap().to_owned(),
                payload: value["payload"].clone(),
            }
        }
    }

    /// Every frame up to and including the reply to `msg_ref`.
    fn until_reply(&mut self, msg_ref: &Value) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv();
            let done = frame.is_reply_to(msg_ref);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// A heartbeat and its reply: proves the connection is open and every frame the
    /// server wrote before the reply has been read.
    fn heartbeat(&mut self, msg_ref: &str) -> Vec<Frame> {
        self.send(Value::Null, json!(msg_ref), json!("phoenix"), json!("heartbeat"), json!({}));
        self.until_reply(&json!(msg_ref))
    }
}

fn both_formats(test: impl Fn(bool)) {
    for v2 in [false, true] {
        test(v2);
    }
}

fn events(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| if f.event == "phx_reply" { format!("reply {}", f.msg_ref) } else { f.event.clone() })
        .collect()
}

#[test]
fn an_event_sent_behind_its_join_is_handled_after_the_frames_the_channel_sent_itself_during_join() {
    // In Phoenix the connection reads nothing while a join runs, so a message the channel
    // sends itself inside `join` is in its mailbox before any later client message.
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        let join = json!({"after_join": true, "sleep_ms": 100});
        wire.send(json!("1"), json!("1"), json!("room:pipe"), json!("phx_join"), join);
        wire.send(json!("1"), json!("2"), json!("room:pipe"), json!("echo"), json!({"n": 1}));
        // A slow join holds back only its own topic: a heartbeat is answered at once.
        wire.send(Value::Null, json!("hb"), json!("phoenix"), json!("heartbeat"), json!({}));
        let frames = wire.until_reply(&json!("2"));
        assert_eq!(events(&frames), ["reply \"hb\"", "reply \"1\"", "after_join", "reply \"2\""], "v2: {v2}");
        assert_eq!(frames[3].payload["response"], json!({"n": 1}));
    });
}

#[test]
fn join_and_leave_pairs_sent_back_to_back_each_get_a_join_reply_and_one_close() {
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        let topic = json!("room:pairs");
        for i in 0..20 {
            let join_ref = json!(format!("j{i}"));
            wire.send(join_ref.clone(), join_ref.clone(), topic.clone(), json!("phx_join"), json!({}));
            wire.send(join_ref, json!(format!("l{i}")), topic.clone(), json!("phx_leave"), json!({}));
        }
        wire.send(json!("last"), json!("last"), topic.clone(), json!("phx_join"), json!({}));
        wire.send(json!("last"), json!("ping"), topic.clone(), json!("echo"), json!({"alive": true}));
        let mut frames = wire.until_reply(&json!("ping"));
        frames.extend(wire.heartbeat("settled"));
        for i in 0..20 {
            let join_ref = json!(format!("j{i}"));
            let joins = frames.iter().filter(|f| f.is_reply_to(&join_ref)).collect::<Vec<_>>();
            assert_eq!(joins.len(), 1, "v2 {v2}: one reply to join {i}: {frames:#?}");
            assert_eq!(joins[0].status(), "ok");
            // phx_close carries the instance's join_ref in `ref` (and in `join_ref` on V2).
            let closes = frames.iter().filter(|f| f.event == "phx_close" && f.msg_ref == join_ref).count();
            assert_eq!(closes, 1, "v2 {v2}: instance {i} closed once: {frames:#?}");
        }
        assert!(frames.iter().all(|f| f.event != "phx_error"), "v2 {v2}: {frames:#?}");
        let last = frames.iter().find(|f| f.is_reply_to(&json!("last"))).expect("the last join's reply");
        assert_eq!(last.status(), "ok");
        let echo = frames.iter().find(|f| f.is_reply_to(&json!("ping"))).unwrap();
        assert_eq!(echo.payload["response"], json!({"alive": true}));
    });
}

#[test]
fn refs_of_any_json_type_are_echoed_exactly_and_compared_strictly() {
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        let heartbeat_ref = json!(7);
        wire.send(Value::Null, heartbeat_ref.clone(), json!("phoenix"), json!("heartbeat"), json!({}));
        assert_eq!(wire.recv().msg_ref, heartbeat_ref);

        let join_ref = json!(1);
        let object_ref = json!({"ref": [1, "two"]});
        wire.send(join_ref.clone(), object_ref.clone(), json!("room:refs"), json!("phx_join"), json!({}));
        let reply = wire.recv();
        assert_eq!((reply.msg_ref.clone(), reply.status()), (object_ref, "ok"));
        if v2 {
            assert_eq!(reply.join_ref, join_ref);
        }
        // The string "1" is not the number 1: on a joined topic it is stale, dropped.
        wire.send(json!("1"), json!("stale"), json!("room:refs"), json!("echo"), json!({}));
        for msg_ref in [json!(true), json!(-2.5), json!(["a"]), json!("s")] {
            wire.send(join_ref.clone(), msg_ref.clone(), json!("room:refs"), json!("echo"), json!({}));
            let reply = wire.recv();
            assert!(reply.is_reply_to(&msg_ref), "v2 {v2}: {reply:?} answers {msg_ref}");
            if v2 {
                assert_eq!(reply.join_ref, join_ref);
            }
        }
        let rest = wire.heartbeat("end");
        assert_eq!(events(&rest), ["reply \"end\""], "v2 {v2}: the stale echo got no reply");
    });
}

#[test]
fn a_topic_that_is_not_a_string_is_unmatched_and_echoed_as_sent() {
    // socket.ex routes by `Map.get(state.channels, topic)`: nothing matches such a topic,
    // so a leave is answered ok (the `handle_in(nil, phx_leave)` clause) and anything
    // else `unmatched topic`, with the topic as sent.
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        for (i, topic) in [json!(123), json!(null), json!({"room": 1}), json!(["room:1"])].into_iter().enumerate() {
            for event in ["phx_join", "new_msg"] {
                let msg_ref = json!(format!("{event}-{i}"));
                wire.send(json!("j"), msg_ref.clone(), topic.clone(), json!(event), json!({}));
                let reply = wire.recv();
                assert!(reply.is_reply_to(&msg_ref), "{reply:?}");
                assert_eq!((reply.topic.clone(), reply.status()), (topic.clone(), "error"), "v2 {v2}");
                assert_eq!(reply.payload["response"], json!({"reason": "unmatched topic"}));
                assert_eq!(reply.join_ref, Value::Null);
            }
            let msg_ref = json!(format!("leave-{i}"));
            wire.send(json!("j"), msg_ref.clone(), topic.clone(), json!("phx_leave"), json!({}));
            let reply = wire.recv();
            assert_eq!((reply.topic.clone(), reply.status()), (topic, "ok"), "v2 {v2}");
            if v2 {
                assert_eq!(reply.join_ref, json!("j"));
            }
        }
        assert_eq!(events(&wire.heartbeat("alive")), ["reply \"alive\""]);
    });
}

#[test]
fn an_event_that_is_not_a_string_is_unmatched_on_a_topic_not_joined_and_crashes_a_joined_channel() {
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        wire.send(json!("1"), json!("a"), json!("room:free"), json!(42), json!({}));
        let reply = wire.recv();
        assert_eq!((reply.topic.clone(), reply.status()), (json!("room:free"), "error"));
        assert_eq!(reply.payload["response"], json!({"reason": "unmatched topic"}));

        wire.send(json!("1"), json!("1"), json!("room:crash"), json!("phx_join"), json!({}));
        assert_eq!(wire.recv().status(), "ok");
        wire.send(json!("1"), json!("2"), json!("room:crash"), json!({"not": "a string"}), json!({}));
        let error = wire.recv();
        assert_eq!((error.event.as_str(), error.topic.clone()), ("phx_error", json!("room:crash")), "v2 {v2}");
        assert_eq!(error.msg_ref, json!("1"));
        assert_eq!(events(&wire.heartbeat("alive")), ["reply \"alive\""], "v2 {v2}: no you_left");
        assert!(server.terminations("room:crash").is_empty(), "terminate must not run after a crash");
        assert_eq!(server.endpoint.stats().panics, 1);
    });
}

#[test]
fn an_event_the_channel_does_not_handle_crashes_it_without_terminate() {
    // `foo:*` runs a channel with the default `handle_in`, as a Phoenix channel with no
    // matching clause: the client gets phx_error; terminate does not run.
    both_formats(|v2| {
        let server = start();
        let mut wire = Wire::connect(&server, v2);
        wire.send(json!("7"), json!("7"), json!("foo:1"), json!("phx_join"), json!({}));
        assert_eq!(wire.recv().status(), "ok");
        wire.send(json!("7"), json!("8"), json!("foo:1"), json!("no_such_event"), json!({}));
        let error = wire.recv();
        assert_eq!((error.event.as_str(), error.msg_ref.clone()), ("phx_error", json!("7")), "v2 {v2}");
        assert_eq!(error.payload, json!({"reason": "channel_crash"}));
        assert_eq!(server.endpoint.stats().panics, 1, "counted with the panics");
        // The topic counts as not joined afterwards.
        wire.send(json!("7"), json!("9"), json!("foo:1"), json!("again"), json!({}));
        assert_eq!(wire.recv().payload["response"], json!({"reason": "unmatched topic"}));
    });
}
