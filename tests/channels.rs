//! The life of a channel: routing, join, messages, replies, stops, crashes, leave and
//! terminate (PROTOCOL.md 5.1–5.7, 5.10, 5.12, decisions D1 and D2).
//!
//! Where the wire is the point (refs, frame shapes, ordering on the socket, limits of a
//! TCP connection) the tests use real sockets; where only the channel's behaviour is,
//! they use an in-memory connection (`phx_channels::testing`, via `in_memory()`).

mod common;

use common::*;
use phx_channels::serializer::ServerMessage;
use phx_channels::{Endpoint, Error, Payload, UserSocket};
use serde_json::json;
use std::time::{Duration, Instant};

fn events_of(msgs: &[ServerMessage]) -> Vec<String> {
    msgs.iter().map(describe).collect()
}

/// Waits until no channel thread of `server` is running.
fn wait_no_channel_threads(server: &Server) {
    assert!(
        wait_until(Duration::from_secs(5), || server.endpoint.stats().channel_threads == 0),
        "channel threads still running: {:?}",
        server.endpoint.stats()
    );
    // Let the reactor write what the threads queued last.
    std::thread::sleep(Duration::from_millis(30));
}

// --- P44, P45, P46 ----------------------------------------------------------------------

#[test]
fn routes_match_by_prefix_or_exactly_and_the_first_declared_wins() {
    // P44
    let server = start();
    let mut client = server.client();
    for (topic, expected) in [
        ("food:1", Some("food")),
        ("food", Some("food")),
        ("foo:1", Some("foo")),
        ("fool", Some("foo")),
        ("exact", Some("exact")),
        ("exact:1", None),
        ("fo", None),
    ] {
        let reply = client.join(topic, json!({})).unwrap();
        match expected {
            Some(name) => {
                assert_eq!(reply.status, "ok", "{topic}");
                assert_eq!(json_of(&reply.response), json!({"channel": name}), "{topic}");
            }
            None => assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}), "{topic}"),
        }
    }
    for topic in ["room:", "room:a:b"] {
        assert_eq!(client.join(topic, json!({})).unwrap().status, "ok", "{topic}");
    }
    assert_eq!(client.join("room", json!({})).unwrap().status, "error");
}

#[test]
fn a_star_anywhere_but_the_end_is_a_configuration_error() {
    // P44
    for pattern in ["a*b", "a**", "*x"] {
        let started = Endpoint::builder()
            .bind("127.0.0.1:0")
            .socket("/socket", UserSocket::new().channel(pattern, |_| Named("x")))
            .start();
        match started {
            Err(Error::Config(_)) => {}
            Err(other) => panic!("{pattern}: expected a configuration error, got {other}"),
            Ok(endpoint) => {
                endpoint.shutdown();
                panic!("{pattern}: the endpoint started");
            }
        }
    }
}

#[test]
fn route_assigns_are_merged_into_the_socket_assigns_before_join() {
    // P45
    let server = start();
    let mut client = server.builder().param("user_id", "5").connect().unwrap();
    let reply = client.join("assigned:1", json!({"mode": "assigns"})).unwrap();
    let assigns = json_of(&reply.response);
    assert_eq!(assigns["route_key"], json!("from_route"), "{assigns}");
    assert_eq!(assigns["user_id"], json!("5"), "{assigns}");
    let reply = client.join("room:plain", json!({"mode": "assigns"})).unwrap();
    assert!(json_of(&reply.response).get("route_key").is_none());
}

#[test]
fn a_join_with_no_matching_route_gets_unmatched_topic_with_a_null_join_ref() {
    // P46
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("3"), Some("3"), "nope:1", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("3").unwrap();
    assert_eq!(reply.status, "error");
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
    assert_eq!((reply.join_ref, reply.topic.as_str()), (None, "nope:1"));
}

// --- P47 --------------------------------------------------------------------------------

#[test]
fn a_join_past_max_channels_gets_too_many_channels_joined() {
    // P47
    let server = start();
    let mut client = server.builder().path("/limited").connect().unwrap();
    assert_eq!(client.join("room:1", json!({})).unwrap().status, "ok");
    client.send(&message(Some("jr2"), Some("r2"), "room:2", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("r2").unwrap();
    assert_eq!(reply.status, "error");
    assert_eq!(json_of(&reply.response), json!({"reason": "too many channels joined"}));
    assert_eq!(reply.join_ref.as_deref(), Some("jr2"), "the join_ref is echoed");
    assert_eq!(server.endpoint.stats().refused_joins, 1);
    // The route is checked first.
    let reply = client.join("nope:1", json!({})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
}

#[test]
fn a_duplicate_join_never_hits_the_channel_limit() {
    // P47, 5.4.3
    let server = start();
    let mut client = server.builder().path("/limited").connect().unwrap();
    assert_eq!(client.join("room:1", json!({})).unwrap().status, "ok");
    assert_eq!(client.join("room:1", json!({})).unwrap().status, "ok");
}

#[test]
fn a_channel_in_the_middle_of_leaving_still_counts_toward_the_limit() {
    // P47, 5.2.2: the channel is busy, so the leave waits in its mailbox.
    let server = start();
    let mut client = server.builder().path("/limited").connect().unwrap();
    assert_eq!(client.join("room:1", json!({})).unwrap().status, "ok");
    let busy = client.push_async("room:1", "sleep", json!({"ms": 300})).unwrap();
    let leave = client.push_async("room:1", "phx_leave", json!({})).unwrap();
    client.send(&message(Some("j2"), Some("j2"), "room:2", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("j2").unwrap();
    assert_eq!(json_of(&reply.response), json!({"reason": "too many channels joined"}));
    assert_eq!(client.wait_reply(&busy).unwrap().status, "ok");
    assert_eq!(client.wait_reply(&leave).unwrap().status, "ok");
}

#[test]
fn a_join_past_the_endpoints_channel_thread_cap_is_refused() {
    // D3: the cap on channel threads in total.
    let server = server().endpoint(|e| e.max_channel_threads(2)).start();
    let _a = server.joined("room:cap1");
    let _b = server.joined("room:cap2");
    let mut client = server.client();
    let reply = client.join("room:cap3", json!({})).unwrap();
    assert_eq!(
        (reply.status.as_str(), json_of(&reply.response)),
        ("error", json!({"reason": "too many channel threads"}))
    );
    assert_eq!(reply.join_ref.as_deref(), client.join_ref("room:cap3"));
    assert_alive(&mut client);
}

#[test]
fn leaving_frees_a_place_under_the_channel_limit() {
    // P47
    let server = start();
    let mut client = server.builder().path("/limited").connect().unwrap();
    assert_eq!(client.join("room:1", json!({})).unwrap().status, "ok");
    assert_eq!(client.leave("room:1").unwrap().status, "ok");
    client.recv_event("room:1", "phx_close").unwrap();
    assert_eq!(client.join("room:2", json!({})).unwrap().status, "ok");
}

// --- P48, P49, P50 ----------------------------------------------------------------------

#[test]
fn a_successful_join_replies_ok_with_an_empty_response_and_echoes_the_refs() {
    // P48
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("j1"), Some("r1"), "room:ok", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("r1").unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("ok", json!({})));
    assert_eq!((reply.join_ref.as_deref(), reply.topic.as_str()), (Some("j1"), "room:ok"));
}

#[test]
fn a_join_with_a_reply_sends_it_as_the_response() {
    // P48
    let server = in_memory();
    let socket = server.connect(json!({}));
    let (reply, _) = socket.join("room:welcome", json!({"mode": "reply"})).unwrap();
    assert_eq!(reply, json!({"welcome": "room:welcome"}).into());
    let (reply, _) = socket.join("room:binjoin", json!({"mode": "binary"})).unwrap();
    assert_eq!(reply, Payload::Binary(b"\x00joined\xff".to_vec().into()));
}

#[test]
fn a_refused_join_replies_error_and_runs_terminate_without_phx_close() {
    // P49
    let server = start();
    let mut client = server.client();
    let reply = client.join("room:refused", json!({"mode": "error"})).unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("error", json!({"reason": "unauthorized"})));
    server.wait_terminate("room:refused", "shutdown");
    wait_no_channel_threads(&server);
    let (before, reply) = push_collect(&mut client, "room:refused", "echo", json!({}));
    assert!(before.is_empty(), "no phx_close for a refused join: {:?}", events_of(&before));
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}), "the topic is not joined");
}

#[test]
fn a_crashing_join_replies_join_crashed_without_terminate() {
    // P50, D1
    let server = start();
    let mut client = server.client();
    let reply = client.join("room:crash", json!({"mode": "panic"})).unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("error", json!({"reason": "join crashed"})));
    wait_no_channel_threads(&server);
    assert!(server.terminations("room:crash").is_empty());
    let (before, reply) = push_collect(&mut client, "room:crash", "echo", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
    assert_eq!(client.join("room:crash", json!({})).unwrap().status, "ok", "a fresh join works");
}

// --- P52, P53, P54 ----------------------------------------------------------------------

#[test]
fn the_join_reply_precedes_pushes_made_right_after_joining() {
    // P52, 5.12.1: pushing from handle_info after join.
    let server = start();
    let mut client = server.client();
    let join_ref = client.make_ref();
    client
        .send(&message(Some(&join_ref), Some(&join_ref), "room:aj", "phx_join", json!({"after_join": true})))
        .unwrap();
    let first = client.recv().unwrap();
    assert_eq!(describe(&first), format!("reply:{join_ref}:ok"));
    let push = as_message(client.recv().unwrap());
    assert_eq!((push.event.as_str(), json_of(&push.payload)), ("after_join", json!({"topic": "room:aj"})));
    assert_eq!((push.join_ref.as_deref(), push.msg_ref.as_deref()), (Some(join_ref.as_str()), None));
}

#[test]
fn a_join_with_a_null_join_ref_uses_its_ref_as_the_channels_join_ref() {
    // P53, 5.3 (the stored join_ref stays null)
    let server = start();
    let mut client = server.client();
    client.send(&message(None, Some("7"), "room:nulljr", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("7").unwrap();
    assert_eq!((reply.status.as_str(), reply.join_ref.as_deref()), ("ok", None), "the join's refs are echoed");

    let push = json!({"event": "hello", "payload": {"a": 1}});
    client.send(&message(None, Some("8"), "room:nulljr", "push", push)).unwrap();
    let (before, reply) = until_reply(&mut client, "8");
    assert_eq!(reply.join_ref.as_deref(), Some("7"), "replies carry the channel's join_ref");
    let hello = as_message(before.into_iter().next().expect("the push"));
    assert_eq!((hello.event.as_str(), hello.join_ref.as_deref()), ("hello", Some("7")));

    // A later message carrying "7" differs from the stored (null) join_ref: dropped.
    client.send(&message(Some("7"), Some("9"), "room:nulljr", "echo", json!({}))).unwrap();
    client.send(&message(None, Some("10"), "room:nulljr", "echo", json!({}))).unwrap();
    let (before, reply) = until_reply(&mut client, "10");
    assert!(before.is_empty(), "the message with join_ref 7 was answered: {:?}", events_of(&before));
    assert_eq!(reply.status, "ok");
}

#[test]
fn push_and_broadcast_are_unavailable_inside_join() {
    // P54
    let server = start();
    let mut other = server.joined("room:probe");
    let mut client = server.client();
    let reply = client.join("room:probe", json!({"mode": "probe"})).unwrap();
    assert_eq!(
        json_of(&reply.response),
        json!({"push": "not_joined", "broadcast": "not_joined", "broadcast_from": "not_joined", "socket_ref": "not_joined"})
    );
    let (before, _) = push_collect(&mut client, "room:probe", "echo", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
    let (before, _) = push_collect(&mut other, "room:probe", "echo", json!({}));
    assert!(before.is_empty(), "a broadcast from join arrived: {:?}", events_of(&before));
}

// --- P55–P60 ----------------------------------------------------------------------------

#[test]
fn a_message_on_a_topic_not_joined_gets_unmatched_topic_with_a_null_join_ref() {
    // P55
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("3"), Some("4"), "room:never", "echo", json!({}))).unwrap();
    let reply = client.wait_reply("4").unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("error", json!({"reason": "unmatched topic"})));
    assert_eq!((reply.join_ref, reply.topic.as_str()), (None, "room:never"));
}

#[test]
fn leaving_a_topic_not_joined_replies_ok_without_phx_close() {
    // P56
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("5"), Some("6"), "room:notjoined", "phx_leave", json!({}))).unwrap();
    let reply = client.wait_reply("6").unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("ok", json!({})));
    assert_eq!(reply.join_ref.as_deref(), Some("5"));
    let hb = client.make_ref();
    client.send(&message(None, Some(&hb), "phoenix", "heartbeat", json!({}))).unwrap();
    assert_eq!(describe(&client.recv().unwrap()), format!("reply:{hb}:ok"), "no phx_close");
}

#[test]
fn a_message_with_a_stale_join_ref_is_dropped_silently() {
    // P57
    let server = start();
    let mut client = server.joined("room:stale");
    let join_ref = client.join_ref("room:stale").unwrap().to_owned();
    client.send(&message(Some("999"), Some("s1"), "room:stale", "echo", json!({}))).unwrap();
    client.send(&message(Some("999"), Some("s2"), "room:stale", "phx_leave", json!({}))).unwrap();
    client.send(&message(Some(&join_ref), Some("ok1"), "room:stale", "echo", json!({}))).unwrap();
    let (before, reply) = until_reply(&mut client, "ok1");
    assert!(before.is_empty(), "stale messages were answered: {:?}", events_of(&before));
    assert_eq!(reply.status, "ok", "still joined: the stale leave was dropped");
    assert!(server.terminations("room:stale").is_empty());
}

#[test]
fn a_message_with_a_null_join_ref_on_a_joined_topic_is_accepted() {
    // P58
    let server = start();
    let mut client = server.joined("room:nulls");
    let join_ref = client.join_ref("room:nulls").unwrap().to_owned();
    client.send(&message(None, Some("n1"), "room:nulls", "echo", json!({"k": "v"}))).unwrap();
    let reply = client.wait_reply("n1").unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("ok", json!({"k": "v"})));
    assert_eq!(reply.join_ref.as_deref(), Some(join_ref.as_str()));
    client.send(&message(None, Some("n2"), "room:nulls", "phx_leave", json!({}))).unwrap();
    assert_eq!(client.wait_reply("n2").unwrap().status, "ok");
    client.recv_event("room:nulls", "phx_close").unwrap();
}

#[test]
fn a_duplicate_join_replaces_the_channel_without_terminate_and_closes_the_old_one_after_the_new_reply() {
    // P59, P79 (no terminate on a duplicate join)
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("1"), Some("1"), "room:dup", "phx_join", json!({}))).unwrap();
    assert_eq!(client.wait_reply("1").unwrap().status, "ok");
    client.send(&message(Some("2"), Some("2"), "room:dup", "phx_join", json!({"mode": "reply"}))).unwrap();
    let (before, reply) = until_reply(&mut client, "2");
    assert!(before.is_empty(), "{:?}", events_of(&before));
    assert_eq!((reply.status.as_str(), reply.join_ref.as_deref()), ("ok", Some("2")));
    let close = as_message(client.recv().unwrap());
    assert_eq!(close.event, "phx_close");
    assert_eq!(
        (close.join_ref.as_deref(), close.msg_ref.as_deref(), close.topic.as_str()),
        (Some("1"), Some("1"), "room:dup")
    );
    // The new instance works and is the only one.
    client.send(&message(Some("2"), Some("3"), "room:dup", "echo", json!({}))).unwrap();
    assert_eq!(client.wait_reply("3").unwrap().join_ref.as_deref(), Some("2"));
    assert_eq!(server.events().starting_with("join room:dup").len(), 2);
    assert!(
        wait_until(Duration::from_secs(5), || server.endpoint.stats().channel_threads == 1),
        "the old channel thread did not end"
    );
    assert!(server.terminations("room:dup").is_empty(), "terminate ran: {:?}", server.terminations("room:dup"));
}

#[test]
fn leave_sends_reply_then_close_then_pushes_from_terminate() {
    // P60, P68, P79, P80
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("1"), Some("1"), "room:leave", "phx_join", json!({}))).unwrap();
    assert_eq!(client.wait_reply("1").unwrap().status, "ok");
    client.send(&message(Some("1"), Some("2"), "room:leave", "phx_leave", json!({}))).unwrap();
    let msgs = recv_n(&mut client, 3);
    assert_eq!(events_of(&msgs), ["reply:2:ok", "phx_close", "you_left"]);
    let ServerMessage::Reply(reply) = &msgs[0] else { unreachable!() };
    assert_eq!((reply.join_ref.as_deref(), json_of(&reply.response)), (Some("1"), json!({})));
    let close = as_message(msgs[1].clone());
    assert_eq!(
        (close.join_ref.as_deref(), close.msg_ref.as_deref(), close.topic.as_str()),
        (Some("1"), Some("1"), "room:leave")
    );
    assert_eq!(json_of(&close.payload), json!({}));
    let you_left = as_message(msgs[2].clone());
    assert_eq!(json_of(&you_left.payload), json!({"reason": "{shutdown, left}"}));
    server.wait_terminate("room:leave", "{shutdown, left}");
}

// --- P61–P64 ----------------------------------------------------------------------------

#[test]
fn noreply_sends_nothing() {
    // P61
    let server = in_memory();
    let room = server.test_joined("room:quiet");
    let quiet = room.push("noreply", json!({}));
    let ok = room.push("ok", json!({}));
    room.assert_reply(&ok, "ok");
    room.refute_reply(&quiet, "ok");
    room.refute_reply(&quiet, "error");
}

#[test]
fn a_reply_with_a_status_sends_an_empty_response_with_any_status_name() {
    // P62
    let server = in_memory();
    let room = server.test_joined("room:status");
    let ok = room.push("ok", json!({}));
    assert_eq!(room.assert_reply(&ok, "ok"), json!({}).into());
    for status in ["error", "teapot", "Any Name"] {
        let sent = room.push("status", json!({"status": status}));
        assert_eq!(room.assert_reply(&sent, status), json!({}).into());
    }
}

#[test]
fn a_reply_frame_has_the_exact_v2_shape() {
    // P62, P31, P64
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_json(&json!(["1", "1", "room:shape", "phx_join", {}]));
    assert_eq!(ws.read_json(), json!(["1", "1", "room:shape", "phx_reply", {"response": {}, "status": "ok"}]));
    ws.send_json(&json!(["1", "2", "room:shape", "status", {"status": "teapot"}]));
    assert_eq!(ws.read_json(), json!(["1", "2", "room:shape", "phx_reply", {"response": {}, "status": "teapot"}]));
    ws.send_json(&json!([null, "3", "room:shape", "echo", [1, "two"]]));
    assert_eq!(ws.read_json(), json!(["1", "3", "room:shape", "phx_reply", {"response": [1, "two"], "status": "ok"}]));
}

#[test]
fn a_reply_with_a_payload_sends_it_as_the_response() {
    // P63, P64: any JSON value.
    let server = in_memory();
    let room = server.test_joined("room:payload");
    for payload in [json!({"a": [1, 2, {"b": null}]}), json!("a string"), json!(42), json!([]), json!(null)] {
        let sent = room.push("echo", payload.clone());
        assert_eq!(room.assert_reply(&sent, "ok"), payload.into());
    }
}

#[test]
fn a_binary_push_reaches_handle_in_and_gets_a_binary_reply() {
    // P63, P36, P38, P41
    let server = start();
    let mut client = server.joined("room:bin");
    let join_ref = client.join_ref("room:bin").unwrap().to_owned();
    let reply = client.push("room:bin", "binary", Payload::Binary(vec![0u8, 1, 2, 255].into())).unwrap();
    assert_eq!(reply.status, "ok");
    assert_eq!(reply.response, Payload::Binary(b"got:\x00\x01\x02\xff".to_vec().into()));
    assert_eq!(reply.join_ref.as_deref(), Some(join_ref.as_str()));
    // A JSON push answered with bytes: a binary reply frame too.
    let reply = client.push("room:bin", "binary", json!({})).unwrap();
    assert_eq!(reply.response, Payload::Binary(b"\x00\x01\x02\xff".to_vec().into()));
}

#[test]
fn a_binary_push_from_the_server_is_a_binary_frame() {
    // P37, P41, P70
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_json(&json!(["12", "12", "room:b", "phx_join", {}]));
    ws.read_json();
    ws.send_json(&json!(["12", "13", "room:b", "push_binary", {}]));
    let (opcode, bytes) = ws.read_frame().unwrap();
    assert_eq!(opcode, OP_BINARY);
    let mut expected = vec![0u8, 2, 6, 3];
    expected.extend_from_slice(b"12room:bbin\x01\x02\x03");
    assert_eq!(bytes, expected);
}

// --- P65, P66, P68 ----------------------------------------------------------------------

#[test]
fn a_graceful_stop_sends_the_reply_then_phx_close_then_pushes_from_terminate() {
    // P65, P68, P79, P80
    let server = start();
    let mut client = server.client();
    for (i, reason) in ["normal", "shutdown", "shutdown:x"].iter().enumerate() {
        for with_reply in [false, true] {
            let topic = format!("room:stop{i}{with_reply}");
            let join_ref = client.make_ref();
            client.send(&message(Some(&join_ref), Some(&join_ref), &topic, "phx_join", json!({}))).unwrap();
            assert_eq!(client.wait_reply(&join_ref).unwrap().status, "ok");
            let mut payload = json!({"reason": reason});
            if with_reply {
                payload["reply"] = json!({"bye": true});
            }
            let stop_ref = client.make_ref();
            client.send(&message(Some(&join_ref), Some(&stop_ref), &topic, "stop", payload)).unwrap();
            let msgs = recv_n(&mut client, if with_reply { 3 } else { 2 });
            let mut expected = vec!["phx_close".to_string(), "you_left".to_string()];
            if with_reply {
                expected.insert(0, format!("reply:{stop_ref}:ok"));
                let ServerMessage::Reply(reply) = &msgs[0] else { unreachable!() };
                assert_eq!(json_of(&reply.response), json!({"bye": true}));
            }
            assert_eq!(events_of(&msgs), expected, "{topic}");
            let close = as_message(msgs[msgs.len() - 2].clone());
            assert_eq!(
                (close.join_ref.as_deref(), close.msg_ref.as_deref()),
                (Some(join_ref.as_str()), Some(join_ref.as_str()))
            );
            let expected_reason = match *reason {
                "shutdown:x" => "{shutdown, x}",
                other => other,
            };
            server.wait_terminate(&topic, expected_reason);
        }
    }
}

#[test]
fn an_error_stop_sends_the_reply_then_pushes_from_terminate_then_phx_error() {
    // P66, P68, P79, P80
    let server = start();
    let mut client = server.client();
    for with_reply in [false, true] {
        let topic = format!("room:err{with_reply}");
        client.send(&message(Some("e1"), Some("e1"), &topic, "phx_join", json!({}))).unwrap();
        assert_eq!(client.wait_reply("e1").unwrap().status, "ok");
        let mut payload = json!({"reason": "error:bad_state"});
        if with_reply {
            payload["reply"] = json!({"last": 1});
        }
        client.send(&message(Some("e1"), Some("e2"), &topic, "stop", payload)).unwrap();
        let msgs = recv_n(&mut client, if with_reply { 3 } else { 2 });
        let mut expected = vec!["you_left".to_string(), "phx_error".to_string()];
        if with_reply {
            expected.insert(0, "reply:e2:ok".into());
        }
        assert_eq!(events_of(&msgs), expected);
        let error = as_message(msgs.last().unwrap().clone());
        assert_eq!(json_of(&error.payload), json!({"reason": "channel_crash"}));
        assert_eq!(
            (error.join_ref.as_deref(), error.msg_ref.as_deref(), error.topic.as_str()),
            (Some("e1"), Some("e1"), topic.as_str())
        );
        server.wait_terminate(&topic, "bad_state");
    }
}

#[test]
fn phx_close_carries_a_null_ref_on_v1() {
    // P68, P35: V1 phx_close carries the stored join_ref (null for V1 clients) in ref.
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=1.0.0");
    ws.send_json(&json!({"topic": "room:v1", "event": "phx_join", "payload": {}, "ref": "1"}));
    ws.read_json();
    ws.send_json(&json!({"topic": "room:v1", "event": "phx_leave", "payload": {}, "ref": "2"}));
    assert_eq!(ws.read_json()["ref"], json!("2"));
    assert_eq!(ws.read_json(), json!({"topic": "room:v1", "event": "phx_close", "payload": {}, "ref": null}));
}

// --- P67, D1 ----------------------------------------------------------------------------

#[test]
fn a_panic_in_handle_in_sends_phx_error_and_does_not_run_terminate() {
    // P67, P79 as adapted by D1
    let server = start();
    let mut client = server.joined("room:boom");
    let join_ref = client.join_ref("room:boom").unwrap().to_owned();
    client.push_async("room:boom", "boom", json!({})).unwrap();
    let error = as_message(client.recv().unwrap());
    assert_eq!(error.event, "phx_error", "D1: no you_left before phx_error");
    assert_eq!(json_of(&error.payload), json!({"reason": "channel_crash"}));
    assert_eq!(
        (error.join_ref.as_deref(), error.msg_ref.as_deref()),
        (Some(join_ref.as_str()), Some(join_ref.as_str()))
    );
    wait_no_channel_threads(&server);
    assert!(server.terminations("room:boom").is_empty(), "D1: terminate does not run after a panic");
    assert_eq!(server.endpoint.stats().panics, 1);
}

#[test]
fn a_panic_in_handle_info_sends_phx_error() {
    // P67
    let server = in_memory();
    let room = server.test_joined("room:infoboom");
    room.push("info_boom", json!({}));
    assert_eq!(room.assert_push("phx_error"), json!({"reason": "channel_crash"}).into());
    wait_no_channel_threads(&server);
    assert!(server.terminations("room:infoboom").is_empty());
}

#[test]
fn a_panicking_handler_affects_only_its_own_channel() {
    // P67
    let server = in_memory();
    let socket = server.connect(json!({}));
    let (_, victim) = socket.join("room:victim", json!({})).unwrap();
    let (_, bystander) = socket.join("room:bystander", json!({})).unwrap();
    let neighbour = server.test_joined("room:victim");
    victim.push("boom", json!({}));
    victim.assert_push("phx_error");
    let still = bystander.push("echo", json!({"still": "here"}));
    assert_eq!(bystander.assert_reply(&still, "ok"), json!({"still": "here"}).into());
    let echo = neighbour.push("echo", json!({}));
    neighbour.assert_reply(&echo, "ok");
    assert!(!socket.is_closed());
}

// --- P69, P70, P71 ----------------------------------------------------------------------

#[test]
fn after_phx_close_the_topic_is_not_joined_and_a_join_starts_fresh() {
    // P69
    let server = start();
    let mut client = server.joined("room:again");
    let first_ref = client.join_ref("room:again").unwrap().to_owned();
    client.push_async("room:again", "stop", json!({"reason": "normal"})).unwrap();
    client.recv_event("room:again", "phx_close").unwrap();
    let reply = client.push("room:again", "echo", json!({})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
    let reply = client.join("room:again", json!({})).unwrap();
    assert_eq!(reply.status, "ok");
    assert_ne!(client.join_ref("room:again"), Some(first_ref.as_str()));
    assert_eq!(server.events().starting_with("join room:again").len(), 2);
}

#[test]
fn after_phx_error_the_topic_is_not_joined_and_a_join_starts_fresh() {
    // P69
    let server = start();
    let mut client = server.joined("room:again2");
    client.push_async("room:again2", "boom", json!({})).unwrap();
    client.recv_event("room:again2", "phx_error").unwrap();
    let reply = client.push("room:again2", "echo", json!({})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
    assert_eq!(client.join("room:again2", json!({})).unwrap().status, "ok");
    assert_eq!(client.push("room:again2", "echo", json!({})).unwrap().status, "ok");
}

#[test]
fn a_push_carries_the_channels_join_ref_and_a_null_ref() {
    // P70, P30
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_json(&json!(["4", "4", "room:p", "phx_join", {}]));
    ws.read_json();
    ws.send_json(&json!(["4", "5", "room:p", "push", {"event": "hello", "payload": {"a": 1}}]));
    assert_eq!(ws.read_json(), json!(["4", null, "room:p", "hello", {"a": 1}]));
    assert_eq!(ws.read_json(), json!(["4", "5", "room:p", "phx_reply", {"response": {}, "status": "ok"}]));
}

#[test]
fn a_socket_ref_replies_later_from_another_thread_as_often_as_needed() {
    // P71
    let server = in_memory();
    let room = server.test_joined("room:async");
    let sent = room.push("async_reply", json!({}));
    assert_eq!(room.assert_reply(&sent, "ok"), json!({"n": 1}).into());
    assert_eq!(room.assert_reply(&sent, "later"), json!({"n": 2}).into());
}

// --- P77 --------------------------------------------------------------------------------

#[test]
fn a_message_for_a_channel_without_handle_info_is_dropped() {
    // P77
    let server = in_memory();
    let bare = server.test_joined("bare:1");
    bare.handle().send(42u32).unwrap();
    bare.handle().send("anything").unwrap();
    let ping = bare.push("ping", json!({}));
    assert_eq!(bare.assert_reply(&ping, "ok"), json!({"pong": true}).into());
    bare.refute_push("phx_error");
}

// --- P78, P79 ---------------------------------------------------------------------------

#[test]
fn closing_the_connection_terminates_every_channel_with_shutdown_closed() {
    // P78, P79
    let server = start();
    let mut client = server.joined("room:c1");
    assert_eq!(client.join("room:c2", json!({})).unwrap().status, "ok");
    let mut other = server.joined("room:c1");
    client.close().unwrap();
    server.wait_terminate("room:c1", "{shutdown, closed}");
    server.wait_terminate("room:c2", "{shutdown, closed}");
    assert_eq!(server.terminations("room:c1").len(), 1, "only the closed connection's channel");
    let (before, _) = push_collect(&mut other, "room:c1", "echo", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
}

#[test]
fn dropping_the_tcp_connection_terminates_its_channels() {
    // P78: the transport ends without a close frame.
    let server = start();
    let client = server.joined("room:dropped");
    drop(client);
    server.wait_terminate("room:dropped", "{shutdown, closed}");
}

#[test]
fn terminate_runs_when_handle_info_stops() {
    // P79, P80
    let server = in_memory();
    let room = server.test_joined("room:infostop");
    let sent = room.push("info_stop", json!({"reason": "shutdown:done"}));
    room.assert_reply(&sent, "ok");
    room.assert_push("phx_close");
    assert_eq!(room.assert_push("you_left"), json!({"reason": "{shutdown, done}"}).into());
    server.wait_terminate("room:infostop", "{shutdown, done}");
}

// --- P82 --------------------------------------------------------------------------------

#[test]
fn frames_from_one_channel_keep_their_order() {
    // P82, 5.12.2
    let server = start();
    let mut client = server.joined("room:order");
    let (before, reply) = push_collect(&mut client, "room:order", "burst", json!({"count": 300}));
    assert_eq!(json_of(&reply.response), json!({"pushed": 300}));
    let numbers: Vec<u64> =
        before.into_iter().map(|m| json_of(&as_message(m).payload)["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..300).collect::<Vec<_>>());
    // A reply comes before what a later callback sends.
    let first = client.push_async("room:order", "ok", json!({})).unwrap();
    let second = client.push_async("room:order", "push", json!({"event": "later"})).unwrap();
    let msgs = recv_n(&mut client, 3);
    assert_eq!(events_of(&msgs), [format!("reply:{first}:ok"), "later".into(), format!("reply:{second}:ok")]);
}

// --- D2 ---------------------------------------------------------------------------------

#[test]
fn a_slow_join_does_not_hold_back_heartbeats_or_other_topics() {
    // D2 (departs from P51 on purpose)
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("s"), Some("s"), "room:slow", "phx_join", json!({"sleep_ms": 1500}))).unwrap();
    let began = Instant::now();
    assert_alive(&mut client);
    assert_eq!(client.join("room:fast", json!({})).unwrap().status, "ok");
    assert_eq!(client.push("room:fast", "echo", json!({})).unwrap().status, "ok");
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1000), "other traffic waited {took:?} for the slow join");
    let reply = client.wait_reply("s").unwrap();
    assert_eq!(reply.status, "ok");
    assert!(began.elapsed() >= Duration::from_millis(1400));
}

#[test]
fn messages_for_a_joining_topic_wait_for_its_join_reply() {
    // D2, 5.12.1: a join still holds back its own topic.
    let server = start();
    let mut client = server.client();
    client.send(&message(Some("j"), Some("j"), "room:joining", "phx_join", json!({"sleep_ms": 300}))).unwrap();
    client.send(&message(Some("j"), Some("e"), "room:joining", "echo", json!({"after": "join"}))).unwrap();
    let (before, reply) = until_reply(&mut client, "e");
    assert_eq!(events_of(&before), ["reply:j:ok"]);
    assert_eq!(json_of(&reply.response), json!({"after": "join"}));
}

// --- ChannelHandle ----------------------------------------------------------------------

#[test]
fn a_channel_handle_delivers_to_handle_info_which_may_push() {
    // P76 (handle_info), P70
    let server = in_memory();
    let room = server.test_joined("room:handle");
    server.ctx.handle("room:handle").send(Msg::Push("from_afar".into(), json!({"x": 1}))).unwrap();
    assert_eq!(room.assert_push("from_afar"), json!({"x": 1}).into());
}

#[test]
fn sending_to_an_ended_channel_returns_channel_ended() {
    let server = in_memory();
    let room = server.test_joined("room:ended");
    let handle = room.handle();
    room.leave();
    server.wait_terminate("room:ended", "{shutdown, left}");
    let mut last = Ok(());
    let ended = wait_until(Duration::from_secs(5), || {
        last = handle.send("are you there?");
        last.is_err()
    });
    assert!(ended, "sends to the ended channel kept succeeding");
    assert!(matches!(last, Err(Error::ChannelEnded)), "{last:?}");
}

#[test]
fn reserved_event_names_sent_by_the_client_reach_handle_in() {
    // PROTOCOL.md 3.5: phx_reply, phx_close and phx_error from a client are ordinary events.
    let server = start();
    let mut client = server.joined("room:names");
    for event in ["phx_reply", "phx_close", "phx_error"] {
        let reply = client.push("room:names", event, json!({})).unwrap();
        assert_eq!(json_of(&reply.response), json!({"unhandled": event}));
    }
}

// --- Numbers ------------------------------------------------------------------------------

/// One frame's text, V1 or V2, as the server writes it (keys sorted, V1 without join_ref).
#[cfg(feature = "exact-numbers")]
fn frame_text(v1: bool, join_ref: Option<&str>, msg_ref: Option<&str>, event: &str, payload: &str) -> String {
    let quoted = |r: Option<&str>| r.map_or("null".to_owned(), |r| format!("\"{r}\""));
    let (join_ref, msg_ref) = (quoted(join_ref), quoted(msg_ref));
    if v1 {
        format!(r#"{{"event":"{event}","payload":{payload},"ref":{msg_ref},"topic":"room:numbers"}}"#)
    } else {
        format!(r#"[{join_ref},{msg_ref},"room:numbers","{event}",{payload}]"#)
    }
}

#[cfg(feature = "exact-numbers")]
fn next_text(ws: &mut RawWs) -> String {
    let (opcode, bytes) = ws.read_frame().expect("a frame");
    assert_eq!(opcode, OP_TEXT);
    String::from_utf8(bytes).unwrap()
}

/// Integers beyond 64 bits and floats come back as the client wrote them, in replies and
/// broadcasts, V1 and V2 (Phoenix keeps bignums). Compared as the raw text of each frame.
#[cfg(feature = "exact-numbers")]
#[test]
fn numbers_are_relayed_as_the_client_wrote_them() {
    let server = start();
    // Keys sorted and no spaces, as the server writes an object, so the relayed payload
    // is the sent text byte for byte.
    let sent = concat!(
        r#"{"big":123456789012345678901234567890,"#,
        r#""floats":[0.1,1e300,3.141592653589793,2.50,-0.0,1.5e-7],"#,
        r#""negative":-123456789012345678901234567890,"u64_max_plus_one":18446744073709551616}"#
    );
    // The one spelling serde_json changes: an exponent's sign is written out (the same
    // number; Phoenix writes 1.0e300).
    let relayed = sent.replace("1e300", "1e+300");
    for v1 in [true, false] {
        let vsn = if v1 { "1.0.0" } else { "2.0.0" };
        let mut ws = RawWs::connect(&server.addr, &format!("/socket/websocket?vsn={vsn}"));
        ws.set_read_timeout(Duration::from_secs(5));
        let frame = |join_ref, msg_ref, event, payload: &str| frame_text(v1, join_ref, msg_ref, event, payload);
        let reply = |msg_ref, response: &str| {
            frame(Some("1"), Some(msg_ref), "phx_reply", &format!(r#"{{"response":{response},"status":"ok"}}"#))
        };
        // A client's V1 frame may carry join_ref (P34); the server's never does.
        let request = |msg_ref, event, payload: &str| {
            let text = frame(Some("1"), Some(msg_ref), event, payload);
            if v1 { text.replacen(r#","payload""#, r#","join_ref":"1","payload""#, 1) } else { text }
        };
        ws.send_text(&request("1", "phx_join", "{}"));
        assert_eq!(next_text(&mut ws), reply("1", "{}"), "{vsn}: the join reply");

        ws.send_text(&request("2", "echo", sent));
        assert_eq!(next_text(&mut ws), reply("2", &relayed), "{vsn}: an echo");

        ws.send_text(&request("3", "broadcast", &format!(r#"{{"event":"numbers","payload":{sent}}}"#)));
        let mut got = [next_text(&mut ws), next_text(&mut ws)];
        got.sort();
        let mut expected = [frame(None, None, "numbers", &relayed), reply("3", "{}")];
        expected.sort();
        assert_eq!(got, expected, "{vsn}: a broadcast and its reply");

        let payload: serde_json::Value = serde_json::from_str(sent).unwrap();
        server.endpoint.broadcast("room:numbers", "numbers", payload).unwrap();
        assert_eq!(next_text(&mut ws), frame(None, None, "numbers", &relayed), "{vsn}: an endpoint broadcast");
    }
}
