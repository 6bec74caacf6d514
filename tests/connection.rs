//! One open connection: the socket id and `disconnect`, WebSocket limits and close
//! codes, pings, heartbeats, malformed frames and refs (PROTOCOL.md 2.7–2.9, 3.1, 3.6).

mod common;

use common::*;
use phx_channels::Payload;
use serde_json::json;
use std::time::{Duration, Instant};
use tungstenite::Message as WsMessage;

fn close_code(close: Option<(u16, String)>) -> u16 {
    close.expect("the server sent a close frame with a code").0
}

// --- P22 --------------------------------------------------------------------------------

#[test]
fn disconnect_broadcast_on_the_socket_id_closes_every_connection_of_it_with_1001() {
    // P22, P78
    let server = start();
    let mut first = server.builder().param("user_id", "42").connect().unwrap();
    assert_eq!(first.join("room:disc", json!({})).unwrap().status, "ok");
    let mut second = server.builder().param("user_id", "42").connect().unwrap();
    let mut someone_else = server.builder().param("user_id", "43").connect().unwrap();

    server.endpoint.broadcast("user_socket:42", "disconnect", json!({})).unwrap();

    assert_eq!(close_code(first.wait_close().unwrap()), 1001);
    assert_eq!(close_code(second.wait_close().unwrap()), 1001);
    // No phx_close or phx_error (or pushes from terminate) came before the close.
    assert!(first.recv().is_err(), "a frame was sent before the close");
    server.wait_terminate("room:disc", "{shutdown, closed}");
    assert_alive(&mut someone_else);
}

#[test]
fn other_events_on_the_socket_id_topic_are_ignored() {
    // P22
    let server = start();
    let mut client = server.builder().param("user_id", "7").connect().unwrap();
    assert_eq!(client.join("room:ignored", json!({})).unwrap().status, "ok");
    server.endpoint.broadcast("user_socket:7", "new_msg", json!({"x": 1})).unwrap();
    server.endpoint.broadcast("user_socket:7", "disconnected", json!({})).unwrap();
    // The heartbeat reply is the very next frame: nothing was written for those events.
    let msg_ref = client.make_ref();
    client.send(&message(None, Some(&msg_ref), "phoenix", "heartbeat", json!({}))).unwrap();
    let next = client.recv().unwrap();
    assert_eq!(describe(&next), format!("reply:{msg_ref}:ok"));
    assert!(server.terminations("room:ignored").is_empty());
}

#[test]
fn a_socket_without_an_id_is_not_closed_by_disconnect_broadcasts() {
    // P22: only a socket whose id is the topic subscribes to it.
    let server = start();
    let mut client = server.client();
    server.endpoint.broadcast("user_socket:", "disconnect", json!({})).unwrap();
    server.endpoint.broadcast("user_socket:undefined", "disconnect", json!({})).unwrap();
    assert_alive(&mut client);
}

// --- P23 --------------------------------------------------------------------------------

fn idle_server() -> Server {
    server().socket(|s| s.idle_timeout(Duration::from_millis(200))).start()
}

#[test]
fn an_idle_connection_is_closed_with_a_code_other_than_1000() {
    // P23, P95
    let server = idle_server();
    let mut client = server.client();
    assert_eq!(client.join("room:idle", json!({})).unwrap().status, "ok");
    let began = Instant::now();
    let code = close_code(client.wait_close().unwrap());
    assert_ne!(code, 1000, "the client must reconnect after an idle timeout");
    assert_eq!(code, 1002, "Bandit's code, as PROTOCOL.md recommends");
    assert!(began.elapsed() >= Duration::from_millis(120), "closed after {:?}", began.elapsed());
    server.wait_terminate("room:idle", "{shutdown, closed}");
}

#[test]
fn every_received_frame_resets_the_idle_timeout() {
    // P23
    let server = idle_server();
    let mut client = server.client();
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(80));
        if i % 2 == 0 {
            assert_alive(&mut client);
        } else {
            client.send_raw(WsMessage::Ping(b"keep".to_vec().into())).unwrap();
        }
    }
    assert_alive(&mut client);
}

#[test]
fn sending_to_the_client_does_not_reset_the_idle_timeout() {
    // P23: counts from the last data received.
    let server = idle_server();
    let mut client = server.client();
    assert_eq!(client.join("room:chatty", json!({})).unwrap().status, "ok");
    let pubsub = server.endpoint.pubsub().clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let broadcaster = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = pubsub.broadcast("room:chatty", "tick", json!({}));
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    let began = Instant::now();
    let close = client.wait_close();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    broadcaster.join().unwrap();
    assert_eq!(close_code(close.unwrap()), 1002);
    assert!(began.elapsed() < Duration::from_millis(1500), "closed only after {:?}", began.elapsed());
}

// --- P24 --------------------------------------------------------------------------------

#[test]
fn a_frame_over_max_frame_size_closes_with_1009() {
    // P24
    let server = server().socket(|s| s.max_frame_size(1024)).start();
    let mut client = server.client();
    assert_eq!(client.join("room:big", json!({})).unwrap().status, "ok");
    let small = client.push("room:big", "echo", json!({"data": "x".repeat(500)})).unwrap();
    assert_eq!(small.status, "ok");
    let join_ref = client.join_ref("room:big").unwrap().to_owned();
    let big = json!([join_ref, "99", "room:big", "echo", {"data": "x".repeat(2000)}]).to_string();
    client.send_raw(WsMessage::text(big)).unwrap();
    assert_eq!(close_code(client.wait_close().unwrap()), 1009);
    server.wait_terminate("room:big", "{shutdown, closed}");
}

#[test]
fn the_default_max_frame_size_is_10_000_000_bytes() {
    // P24: a frame announcing 10 000 001 bytes is refused from its header alone.
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_frame_raw(true, OP_TEXT, 10_000_001, b"[null");
    let (code, _) = ws.read_until_close();
    assert_eq!(code, Some(1009));
}

#[test]
fn a_one_megabyte_message_is_accepted_by_default() {
    // P24
    let server = start();
    let mut client = server.joined("room:mega");
    let data = "y".repeat(1_000_000);
    let reply = client.push("room:mega", "echo", json!({"data": data})).unwrap();
    assert_eq!(reply.status, "ok");
    assert_eq!(json_of(&reply.response)["data"].as_str().map(str::len), Some(1_000_000));
}

#[test]
fn a_fragmented_message_over_max_frame_size_closes_with_1009() {
    // P24: the limit holds for messages split across frames too.
    let server = server().socket(|s| s.max_frame_size(1024)).start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    let chunk = vec![b' '; 600];
    ws.send_frame_raw(false, OP_TEXT, chunk.len() as u64, &chunk);
    ws.send_frame_raw(false, OP_CONTINUATION, chunk.len() as u64, &chunk);
    ws.send_frame_raw(true, OP_CONTINUATION, chunk.len() as u64, &chunk);
    let (code, _) = ws.read_until_close();
    assert_eq!(code, Some(1009));
}

// --- P25 --------------------------------------------------------------------------------

#[test]
fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    // P25
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_frame(OP_TEXT, b"[null,\"1\",\"room:x\",\"ev\",{\"a\":\"\xc3\x28\"}]");
    let (code, frames) = ws.read_until_close();
    assert_eq!(code, Some(1007));
    assert!(frames.is_empty(), "{frames:?}");
}

// --- P26 --------------------------------------------------------------------------------

#[test]
fn client_pings_are_answered_with_pongs() {
    // P26
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.set_read_timeout(Duration::from_secs(5));
    ws.send_frame(OP_PING, b"are you there");
    assert_eq!(ws.read_frame().unwrap(), (OP_PONG, b"are you there".to_vec()));
    ws.send_frame(OP_PING, b"");
    assert_eq!(ws.read_frame().unwrap(), (OP_PONG, Vec::new()));
}

#[test]
fn the_server_never_sends_pings_or_heartbeats() {
    // P26
    let server = server().socket(|s| s.idle_timeout(Duration::from_secs(2))).start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_json(&json!(["1", "1", "room:quiet", "phx_join", {}]));
    assert_eq!(ws.read_json()[3], json!("phx_reply"));
    ws.set_read_timeout(Duration::from_millis(700));
    match ws.read_frame() {
        Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("the server sent something unprompted: {other:?}"),
    }
}

// --- P27, P28 ---------------------------------------------------------------------------

#[test]
fn heartbeat_is_answered_with_a_null_join_ref_whatever_was_sent() {
    // P27
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    let expected = |r: &str| json!([null, r, "phoenix", "phx_reply", {"response": {}, "status": "ok"}]);
    ws.send_json(&json!([null, "5", "phoenix", "heartbeat", {}]));
    assert_eq!(ws.read_json(), expected("5"));
    ws.send_json(&json!(["99", "6", "phoenix", "heartbeat", {"ignored": true}]));
    assert_eq!(ws.read_json(), expected("6"));
    // Whatever is joined.
    ws.send_json(&json!(["7", "7", "room:hb", "phx_join", {}]));
    assert_eq!(ws.read_json()[3], json!("phx_reply"));
    ws.send_json(&json!(["7", "8", "phoenix", "heartbeat", {}]));
    assert_eq!(ws.read_json(), expected("8"));
}

#[test]
fn heartbeat_on_v1_is_answered_in_v1() {
    // P27
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=1.0.0");
    ws.send_json(&json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "5", "join_ref": "3"}));
    assert_eq!(
        ws.read_json(),
        json!({"topic": "phoenix", "event": "phx_reply", "payload": {"response": {}, "status": "ok"}, "ref": "5"})
    );
}

#[test]
fn other_events_on_phoenix_are_routed_normally() {
    // P28: no route matches the topic `phoenix`, so it is an unmatched topic.
    let server = start();
    let mut client = server.client();
    client.send(&message(None, Some("p1"), "phoenix", "ping", json!({}))).unwrap();
    let reply = client.wait_reply("p1").unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("error", json!({"reason": "unmatched topic"})));
    assert_eq!(reply.join_ref, None);
}

#[test]
fn heartbeat_on_other_topics_is_routed_normally() {
    // P28
    let server = start();
    let mut client = server.joined("room:beat");
    let reply = client.push("room:beat", "heartbeat", json!({})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"unhandled": "heartbeat"}), "handled by the channel");
    assert_eq!(reply.join_ref.as_deref(), client.join_ref("room:beat"));
    let reply = client.push("room:nobeat", "heartbeat", json!({})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"reason": "unmatched topic"}));
}

// --- P42 --------------------------------------------------------------------------------

/// Sends `frame` after joining a room; the connection must close without any reply,
/// with a code other than 1000, and the channel must terminate.
fn assert_closed_without_reply(server: &Server, vsn: &str, topic: &str, frame: WsMessage) {
    let mut client = server.builder().vsn(Some(vsn)).connect().unwrap();
    assert_eq!(client.join(topic, json!({})).unwrap().status, "ok");
    client.send_raw(frame.clone()).unwrap();
    let close = client.wait_close().unwrap_or_else(|err| panic!("{frame:?}: {err}"));
    let code = close_code(close);
    assert_ne!(code, 1000, "{frame:?}");
    assert!(client.recv().is_err(), "{frame:?}: a frame came before the close");
    assert!(
        server.events().wait_prefix(&format!("terminate {topic} "), Duration::from_secs(5)).is_some(),
        "{frame:?}: the channel did not terminate"
    );
}

#[test]
fn malformed_v2_frames_close_the_connection_without_a_reply() {
    // P42
    let server = start();
    let frames = [
        WsMessage::text("not json"),
        WsMessage::text("[\"1\",\"2\",\"room:m\",\"ev\"]"),
        WsMessage::text("{\"topic\":\"room:m\",\"event\":\"ev\",\"payload\":{},\"ref\":\"1\"}"),
        WsMessage::text("42"),
        WsMessage::binary(vec![5u8, 0, 0, 0, 0]),
        WsMessage::binary(vec![0u8, 2, 3, 5, 5, b'1']),
        WsMessage::binary(vec![0u8]),
    ];
    for (i, frame) in frames.into_iter().enumerate() {
        assert_closed_without_reply(&server, "2.0.0", &format!("room:m{i}"), frame);
    }
}

#[test]
fn malformed_v1_frames_close_the_connection_without_a_reply() {
    // P42
    let server = start();
    let frames = [
        WsMessage::text("{\"topic\":\"room:v\",\"event\":\"ev\",\"payload\":{}}"),
        WsMessage::text("{\"topic\":\"room:v\",\"payload\":{},\"ref\":\"1\"}"),
        WsMessage::text("[null,\"1\",\"room:v\",\"ev\",{}]"),
        WsMessage::text("{"),
        WsMessage::binary(vec![0u8, 0, 0, 1, 1, b't', b'e']),
    ];
    for (i, frame) in frames.into_iter().enumerate() {
        assert_closed_without_reply(&server, "1.0.0", &format!("room:v{i}"), frame);
    }
}

#[test]
fn a_v2_frame_with_extra_elements_is_accepted() {
    // P29 (the counterpart of P42: five elements or more decode)
    let server = start();
    let mut client = server.client();
    client.send_raw(WsMessage::text("[null,\"x1\",\"phoenix\",\"heartbeat\",{},\"extra\",7]")).unwrap();
    assert_eq!(client.wait_reply("x1").unwrap().status, "ok");
}

// --- P43 --------------------------------------------------------------------------------

#[test]
fn refs_are_echoed_exactly_as_received() {
    // P43
    let server = start();
    let mut client = server.client();
    let join_ref = "j:ü 7/\"q\"";
    client.send(&message(Some(join_ref), Some("join ref ✓"), "room:refs", "phx_join", json!({}))).unwrap();
    let reply = client.wait_reply("join ref ✓").unwrap();
    assert_eq!((reply.join_ref.as_deref(), reply.status.as_str()), (Some(join_ref), "ok"));
    for msg_ref in ["  spaced  ", "007", "", "{\"not\":\"json\"}"] {
        client.send(&message(Some(join_ref), Some(msg_ref), "room:refs", "echo", json!({}))).unwrap();
        let reply = client.wait_reply(msg_ref).unwrap();
        assert_eq!(reply.msg_ref.as_deref(), Some(msg_ref));
        assert_eq!(reply.join_ref.as_deref(), Some(join_ref));
    }
}

#[test]
fn binary_payload_replies_keep_the_refs() {
    // P43 with binary frames: the refs in the binary header are echoed too.
    let server = start();
    let mut client = server.joined("room:binrefs");
    let join_ref = client.join_ref("room:binrefs").unwrap().to_owned();
    let msg = phx_channels::Message {
        join_ref: Some(join_ref.as_str().into()),
        msg_ref: Some("bin-ref-☃".into()),
        topic: "room:binrefs".into(),
        event: "binary".into(),
        payload: Payload::Binary(b"abc".to_vec().into()),
    };
    client.send(&msg).unwrap();
    let reply = client.wait_reply("bin-ref-☃").unwrap();
    assert_eq!(reply.join_ref.as_deref(), Some(join_ref.as_str()));
    assert_eq!(reply.response, Payload::Binary(b"got:abc".to_vec().into()));
}

#[test]
fn a_session_whose_connection_is_gone_before_it_opens_leaves_no_socket_id_subscription() {
    // The session is made on the connect worker once `connect` returns. Here the
    // endpoint shuts down while `connect` runs, so the session never reaches its
    // connection; it must still end, or its socket id subscription stays for good.
    let (started, running) = crossbeam_channel::bounded(1);
    let server = server()
        .mount("/slow", move |s| {
            s.connect(move |_params, _info| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(500));
                Ok([("user_id".to_string(), json!("late"))].into_iter().collect())
            })
        })
        .start();
    let request = upgrade_request("/slow/websocket?vsn=2.0.0", &[]);
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    running.recv_timeout(Duration::from_secs(5)).expect("connect runs");
    server.endpoint.shutdown();
    assert_eq!(server.endpoint.pubsub().subscriber_count("user_socket:late"), 0);
    drop(stream);
}
