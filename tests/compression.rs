//! permessage-deflate (RFC 7692) over real sockets: what each offer is answered,
//! messages compressed both ways, a broadcast deflated once and shared by every
//! compressed subscriber, and the limits (the decompression bomb, RSV1 where no
//! compression was agreed).

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const TARGET: &str = "/socket/websocket?vsn=2.0.0";

fn compressing() -> Server {
    server().socket(|socket| socket.compress(true)).start()
}

/// The answer's `Sec-WebSocket-Extensions` to an upgrade offering `offer`.
fn answer(server: &Server, offer: Option<&str>) -> Option<String> {
    let (response, _stream) = DeflateWs::handshake(&server.addr, TARGET, offer);
    assert_eq!(response.status, 101, "{offer:?}: {response:?}");
    response.header("sec-websocket-extensions").map(str::to_owned)
}

/// A payload long enough to be compressed, and compressible.
fn long_text(n: usize) -> String {
    (0..n).map(|i| format!("message {} of the room; ", i % 7)).collect()
}

fn join(ws: &mut DeflateWs, topic: &str) {
    ws.send_json(&json!(["1", "1", topic, "phx_join", {}]));
    let reply = ws.read().unwrap().json();
    assert_eq!(reply[3], "phx_reply", "{reply}");
    assert_eq!(reply[4]["status"], "ok", "{reply}");
}

#[test]
fn compression_is_off_unless_the_socket_turns_it_on() {
    let server = start();
    assert_eq!(answer(&server, Some("permessage-deflate; client_max_window_bits")), None);
}

#[test]
fn each_offer_is_answered_as_the_rfc_says() {
    let server = compressing();
    let base = "permessage-deflate; server_no_context_takeover";
    let cases: Vec<(String, Option<String>)> = vec![
        ("none".into(), None),
        ("permessage-deflate".into(), Some(base.into())),
        ("permessage-deflate; server_no_context_takeover".into(), Some(base.into())),
        ("permessage-deflate; client_no_context_takeover".into(), Some(format!("{base}; client_no_context_takeover"))),
        ("permessage-deflate; client_max_window_bits".into(), Some(base.into())),
        ("permessage-deflate; client_max_window_bits=10".into(), Some(format!("{base}; client_max_window_bits=10"))),
        (
            "permessage-deflate; client_max_window_bits=\"12\"".into(),
            Some(format!("{base}; client_max_window_bits=12")),
        ),
        ("permessage-deflate; server_max_window_bits".into(), None),
        ("permessage-deflate; server_max_window_bits=7".into(), None),
        ("permessage-deflate; server_max_window_bits=16".into(), None),
        ("permessage-deflate; client_max_window_bits=0".into(), None),
        ("permessage-deflate; client_max_window_bits=abc".into(), None),
        ("permessage-deflate; client_no_context_takeover=yes".into(), None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover".into(), None),
        ("permessage-deflate; zip_it".into(), None),
        ("x-webkit-deflate-frame".into(), None),
        (
            "permessage-deflate; zip_it, permessage-deflate; client_no_context_takeover".into(),
            Some(format!("{base}; client_no_context_takeover")),
        ),
        (
            "permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=10".into(),
            Some(format!("{base}; server_max_window_bits=10")),
        ),
    ]
    .into_iter()
    .chain((8..=15).map(|bits| {
        (
            format!("permessage-deflate; server_max_window_bits={bits}"),
            Some(format!("{base}; server_max_window_bits={bits}")),
        )
    }))
    .collect();
    for (offer, expected) in cases {
        let offered = (offer != "none").then_some(offer.as_str());
        assert_eq!(answer(&server, offered), expected, "offer {offer:?}");
    }
    // Offers may come in several headers: the first acceptable one wins.
    let request = upgrade_request(
        TARGET,
        &[("Sec-WebSocket-Extensions", "permessage-deflate; nope"), ("Sec-WebSocket-Extensions", "permessage-deflate")],
    );
    let (response, _stream) = http_exchange(&server.addr, &request);
    assert_eq!(response.header("sec-websocket-extensions"), Some(base));
}

/// Messages both ways: the client's compressed pushes arrive whole, long replies come
/// back compressed, short ones plain.
fn round_trips(offer: &str) {
    let server = compressing();
    let mut ws = DeflateWs::connect(&server.addr, TARGET, offer);
    join(&mut ws, "room:deflate");
    for n in 0..5 {
        // With context takeover the second and later messages refer to the first.
        let body = long_text(20);
        ws.send_json(&json!(["1", n.to_string(), "room:deflate", "echo", {"body": body, "n": n}]));
        let reply = ws.read().unwrap();
        assert!(reply.compressed, "a long reply is compressed");
        assert!(
            reply.wire.len() < reply.payload.len() / 2,
            "and shorter: {} vs {}",
            reply.wire.len(),
            reply.payload.len()
        );
        assert_eq!(reply.json()[4]["response"], json!({"body": body, "n": n}));
    }
    ws.send_json(&json!(["1", "short", "room:deflate", "echo", {}]));
    let reply = ws.read().unwrap();
    assert!(!reply.compressed, "a short reply goes out plain");
    assert_eq!(reply.json()[1], "short");
    // A plain message on a compressing connection is fine too.
    ws.raw.send_json(&json!(["1", "plain", "room:deflate", "echo", {"x": 1}]));
    assert_eq!(ws.read().unwrap().json()[4]["response"], json!({"x": 1}));
}

#[test]
fn messages_flow_compressed_both_ways_with_context_takeover() {
    round_trips("permessage-deflate; client_max_window_bits");
}

#[test]
fn messages_flow_compressed_both_ways_without_context_takeover() {
    round_trips("permessage-deflate; client_no_context_takeover; client_max_window_bits=9");
}

#[test]
fn a_fragmented_compressed_message_is_reassembled() {
    let server = compressing();
    let mut ws = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
    join(&mut ws, "room:frag");
    let body = long_text(50);
    let text = json!(["1", "2", "room:frag", "echo", {"body": body}]).to_string();
    let compressed = ws.deflate(text.as_bytes());
    let (first, rest) = compressed.split_at(compressed.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    ws.raw.send_frame_raw(false, RSV1 | OP_TEXT, first.len() as u64, first);
    ws.raw.send_frame(OP_PING, b"in between");
    ws.raw.send_frame_raw(false, OP_CONTINUATION, second.len() as u64, second);
    ws.raw.send_frame_raw(true, OP_CONTINUATION, third.len() as u64, third);
    let pong = ws.read().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (OP_PONG, &b"in between"[..]));
    assert_eq!(ws.read().unwrap().json()[4]["response"]["body"], body);
}

#[test]
fn a_broadcast_is_deflated_once_and_shared_by_every_compressed_subscriber() {
    let server = compressing();
    let mut compressed: Vec<DeflateWs> =
        (0..4).map(|_| DeflateWs::connect(&server.addr, TARGET, "permessage-deflate")).collect();
    let mut plain: Vec<DeflateWs> = (0..3).map(|_| DeflateWs::connect(&server.addr, TARGET, "x-other")).collect();
    for ws in compressed.iter_mut().chain(plain.iter_mut()) {
        join(ws, "room:shared");
    }
    assert!(plain.iter().all(|ws| ws.extensions.is_none()));
    let before = server.endpoint.stats();
    let body = long_text(40);
    server.endpoint.broadcast("room:shared", "news", json!({"body": body})).unwrap();
    let after = server.endpoint.stats();
    assert_eq!(after.broadcast_encodes - before.broadcast_encodes, 1, "one encode for the wire format");
    assert_eq!(after.frames_deflated - before.frames_deflated, 1, "one deflate for four compressed subscribers");
    let frames: Vec<ServerFrame> = compressed.iter_mut().map(|ws| ws.read().unwrap()).collect();
    assert!(frames[0].compressed && frames[0].wire.len() < body.len() / 2);
    assert!(frames.iter().all(|frame| frame.wire == frames[0].wire), "the same bytes for every compressed subscriber");
    let plain_frames: Vec<ServerFrame> = plain.iter_mut().map(|ws| ws.read().unwrap()).collect();
    assert!(plain_frames.iter().all(|frame| !frame.compressed && frame.wire == plain_frames[0].wire));
    assert_eq!(frames[0].payload, plain_frames[0].payload, "both inflate to the same message");
    assert_eq!(frames[0].json()[4]["body"], body);
    // A broadcast too short to gain goes out plain to everyone, with no deflate.
    server.endpoint.broadcast("room:shared", "tick", json!({})).unwrap();
    assert_eq!(server.endpoint.stats().frames_deflated, after.frames_deflated);
    for ws in compressed.iter_mut() {
        assert!(!ws.read().unwrap().compressed);
    }
}

#[test]
fn a_small_server_window_keeps_longer_messages_plain() {
    let server = compressing();
    let mut ws = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate; server_max_window_bits=9");
    join(&mut ws, "room:window");
    ws.send_json(&json!(["1", "2", "room:window", "echo", {"body": long_text(5)}]));
    let fits = ws.read().unwrap();
    assert!(fits.payload.len() <= 512 && fits.compressed, "{} bytes fit the 512-byte window", fits.payload.len());
    ws.send_json(&json!(["1", "3", "room:window", "echo", {"body": long_text(40)}]));
    let longer = ws.read().unwrap();
    assert!(longer.payload.len() > 512 && !longer.compressed, "{} bytes would not", longer.payload.len());
}

#[test]
fn a_decompression_bomb_is_closed_as_an_oversized_frame() {
    let server = server().socket(|socket| socket.compress(true).max_frame_size(100_000)).start();
    let mut ws = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
    ws.raw.set_read_timeout(Duration::from_secs(10));
    // 10 MB of zeros deflate to about 10 KB; 1 MB to about 1 KB.
    // Just under the limit inflated: accepted.
    let body = "a".repeat(90_000);
    ws.send_json(&json!(["1", "1", "room:bomb", "phx_join", {}]));
    ws.read().unwrap();
    ws.send_json(&json!(["1", "2", "room:bomb", "echo", {"body": body}]));
    assert_eq!(ws.read().unwrap().json()[4]["response"]["body"], body);
    let bomb = ws.deflate(&vec![0u8; 1_000_000]);
    assert!(bomb.len() < 1100, "{} bytes", bomb.len());
    ws.raw.send_frame(RSV1 | OP_TEXT, &bomb);
    assert_eq!(ws.read_close_code(), Some(1009));
    // The same close as a plain frame over the limit.
    let mut plain = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
    plain.raw.set_read_timeout(Duration::from_secs(10));
    plain.raw.send_frame_raw(true, OP_TEXT, 200_000, b"");
    assert_eq!(plain.read_close_code(), Some(1009));
    // The bomb in fragments: each is small, their sum is not.
    let mut fragments = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
    fragments.raw.set_read_timeout(Duration::from_secs(10));
    let bomb = fragments.deflate(&vec![b'a'; 300_000]);
    let (first, rest) = bomb.split_at(bomb.len() / 2);
    fragments.raw.send_frame_raw(false, RSV1 | OP_TEXT, first.len() as u64, first);
    fragments.raw.send_frame_raw(true, OP_CONTINUATION, rest.len() as u64, rest);
    assert_eq!(fragments.read_close_code(), Some(1009));
}

#[test]
fn a_compressed_connection_keeps_the_protocol_checks() {
    let server = compressing();
    let close_after = |send: &dyn Fn(&mut DeflateWs)| {
        let mut ws = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
        ws.raw.set_read_timeout(Duration::from_secs(10));
        send(&mut ws);
        ws.read_close_code()
    };
    // Invalid UTF-8 inside a compressed text message: 1007.
    assert_eq!(close_after(&|ws| ws.send_compressed(OP_TEXT, b"[\xff\xfe]")), Some(1007));
    // Not deflate data at all: 1007.
    assert_eq!(close_after(&|ws| ws.raw.send_frame(RSV1 | OP_TEXT, &[0xff; 40])), Some(1007));
    // RSV1 on a control frame, or on a continuation: 1002.
    assert_eq!(close_after(&|ws| ws.raw.send_frame(RSV1 | OP_PING, b"")), Some(1002));
    assert_eq!(
        close_after(&|ws| {
            ws.raw.send_frame_raw(false, OP_TEXT, 2, b"[1");
            ws.raw.send_frame_raw(true, RSV1 | OP_CONTINUATION, 1, b"]");
        }),
        Some(1002)
    );
    // A malformed message, compressed: closed as ever.
    assert_eq!(close_after(&|ws| ws.send_compressed(OP_TEXT, b"not json")), Some(1007));
    // Pings are answered, and a close is echoed.
    let mut ws = DeflateWs::connect(&server.addr, TARGET, "permessage-deflate");
    ws.raw.send_frame(OP_PING, b"hi");
    let pong = ws.read().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (OP_PONG, &b"hi"[..]));
    ws.raw.send_frame(OP_CLOSE, &1000u16.to_be_bytes());
    assert_eq!(ws.read_close_code(), Some(1000));
}

#[test]
fn rsv1_without_compression_agreed_closes_the_connection() {
    for server in [start(), compressing()] {
        // No offer (or compression off): nothing was agreed.
        let mut ws = DeflateWs::connect(&server.addr, TARGET, "x-none");
        assert_eq!(ws.extensions, None);
        ws.raw.set_read_timeout(Duration::from_secs(10));
        let compressed = ws.deflate(json!(["1", "1", "room:x", "phx_join", {}]).to_string().as_bytes());
        ws.raw.send_frame(RSV1 | OP_TEXT, &compressed);
        assert_eq!(ws.read_close_code(), Some(1002));
    }
}

#[test]
fn a_join_reply_and_pushes_are_compressed_too() {
    let server = compressing();
    // The join reply carries the socket's assigns, the connect params among them.
    let pad = "abcdefgh".repeat(40);
    let mut ws = DeflateWs::connect(&server.addr, &format!("{TARGET}&pad={pad}"), "permessage-deflate");
    ws.send_json(&json!(["1", "1", "room:push", "phx_join", {"mode": "assigns"}]));
    let reply = ws.read().unwrap();
    assert!(reply.compressed, "a long join reply is compressed");
    assert_eq!(reply.json()[4]["response"]["params"]["pad"], pad);
    let body = long_text(30);
    ws.send_json(&json!(["1", "2", "room:push", "push", {"event": "big", "payload": {"body": body}}]));
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..2 {
        let frame = ws.read().unwrap();
        let message = frame.json();
        if message[3] == "big" {
            assert!(frame.compressed, "a long push is compressed");
            assert_eq!(message[4]["body"], body);
        }
        seen.push(message);
    }
    assert!(seen.iter().any(|m| m[3] == "big"), "{seen:?}");
}
