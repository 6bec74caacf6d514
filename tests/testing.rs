//! The in-memory test API (`phx_channels::testing`, Phoenix.ChannelTest's
//! counterpart): connecting and refusals, joins, pushes and the assertions (and how
//! they fail), and the channel lifecycle as a test sees it: handle_out, handle_info,
//! crashes, leave, close, presence, disconnects and shutdown. No TCP anywhere.

mod common;

use common::*;
use phx_channels::presence::{PRESENCE_DIFF, PRESENCE_STATE};
use phx_channels::testing::{self, ConnectError, JoinError, Timeouts};
use phx_channels::{Endpoint, Payload, Refusal};
use serde_json::json;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// The panic message of `f`, which must panic.
fn panic_text(f: impl FnOnce()) -> String {
    let panic = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion fails");
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// Short timeouts, for assertions that are meant to fail.
const SHORT: Timeouts =
    Timeouts { assert: Duration::from_millis(50), refute: Duration::from_millis(50), sync: Duration::from_secs(5) };

#[test]
fn connect_runs_connect_and_id_and_a_refusal_is_visible() {
    let server = in_memory();
    let refused = testing::connect(&server.endpoint, "/socket", json!({"refuse": "429"})).err();
    assert_eq!(refused, Some(ConnectError::Refused(Refusal::new(429, "Too many requests"))));
    let panicked = testing::connect(&server.endpoint, "/socket", json!({"refuse": "panic"})).err();
    assert_eq!(panicked, Some(ConnectError::Refused(Refusal::forbidden())));
    let missing = testing::connect(&server.endpoint, "/nowhere", json!({})).err();
    assert_eq!(missing, Some(ConnectError::NotMounted("/nowhere".into())));

    let socket = server.connect(json!({"user_id": "7", "extra": 1}));
    let (reply, room) = socket.join("room:a", json!({"mode": "assigns"})).unwrap();
    let assigns = reply.as_json().unwrap();
    assert_eq!(assigns["params"], json!({"user_id": "7", "extra": 1}), "{assigns}");
    let ids = room.push("socket_id", json!({}));
    assert_eq!(room.assert_reply(&ids, "ok"), json!({"socket_id": "user_socket:7"}).into());

    // Path params become connect params, as over the network.
    let socket = testing::connect(&server.endpoint, "/ws/42", json!({})).unwrap();
    let (reply, _) = socket.join("room:b", json!({"mode": "assigns"})).unwrap();
    assert_eq!(reply.as_json().unwrap()["user_id"], json!("42"));
}

#[test]
fn a_socket_made_without_connect_has_the_given_id_and_assigns() {
    let server = in_memory();
    let assigns = [("who".to_string(), json!("test"))].into_iter().collect();
    let socket = testing::socket(&server.endpoint, "/socket", Some("user_socket:x"), assigns).unwrap();
    socket.set_timeouts(TEST_TIMEOUTS);
    let (reply, room) = socket.join("room:a", json!({"mode": "assigns"})).unwrap();
    assert_eq!(reply, json!({"who": "test"}).into());
    let ids = room.push("socket_id", json!({}));
    assert_eq!(room.assert_reply(&ids, "ok"), json!({"socket_id": "user_socket:x"}).into());
    let socket = testing::socket(&server.endpoint, "/socket", None, Default::default()).unwrap();
    socket.set_timeouts(TEST_TIMEOUTS);
    let (_, room) = socket.join("room:b", json!({})).unwrap();
    let ids = room.push("socket_id", json!({}));
    assert_eq!(room.assert_reply(&ids, "ok"), json!({"socket_id": null}).into());
}

#[test]
fn a_join_returns_its_reply_or_its_refusal() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    let (reply, room) = socket.subscribe_and_join("room:welcome", json!({"mode": "reply"})).unwrap();
    assert_eq!(reply, json!({"welcome": "room:welcome"}).into());
    assert_eq!(room.topic(), "room:welcome");
    let refused = socket.join("room:no", json!({"mode": "error"})).err();
    assert_eq!(refused, Some(JoinError::Refused(json!({"reason": "unauthorized"}).into())));
    server.wait_terminate("room:no", "shutdown");
    let unmatched = socket.join("nope:1", json!({})).err();
    assert_eq!(unmatched, Some(JoinError::Refused(json!({"reason": "unmatched topic"}).into())));
    let crashed = socket.join("room:crash", json!({"mode": "panic"})).err();
    assert_eq!(crashed, Some(JoinError::Refused(json!({"reason": "join crashed"}).into())));
}

#[test]
fn pushes_replies_and_broadcasts_are_seen_as_a_client_and_a_subscriber_see_them() {
    let server = in_memory();
    let room = server.test_joined("room:see");
    let echo = room.push("echo", json!({"n": 1}));
    assert_eq!(room.assert_reply(&echo, "ok"), json!({"n": 1}).into());
    let custom = room.push("status", json!({"status": "teapot"}));
    assert_eq!(room.assert_reply(&custom, "teapot"), json!({}).into());

    room.push("push", json!({"event": "hello", "payload": {"a": 1}}));
    assert_eq!(room.assert_push("hello"), json!({"a": 1}).into());
    room.push("push_binary", json!({}));
    assert_eq!(room.assert_push("bin"), Payload::Binary(b"\x01\x02\x03".to_vec().into()));

    // A broadcast from the channel: every subscriber (the test) and the client.
    room.push("broadcast", json!({"event": "shout", "payload": {"b": 2}}));
    assert_eq!(room.assert_broadcast("shout"), json!({"b": 2}).into());
    assert_eq!(room.assert_push("shout"), json!({"b": 2}).into());
    // broadcast_from skips the channel, not the test.
    room.push("broadcast_from", json!({"event": "quiet", "payload": {}}));
    room.assert_broadcast("quiet");
    room.refute_push("quiet");

    // Unmatched messages wait for a later assertion, in order.
    room.push("push", json!({"event": "first", "payload": {}}));
    room.push("push", json!({"event": "second", "payload": {}}));
    room.assert_push("second");
    room.assert_push("first");
}

#[test]
fn endpoint_broadcasts_reach_the_channel_and_the_test() {
    let server = in_memory();
    let room = server.test_joined("room:ep");
    server.endpoint.broadcast("room:ep", "news", json!({"n": 1})).unwrap();
    assert_eq!(room.assert_push("news"), json!({"n": 1}).into());
    assert_eq!(room.assert_broadcast("news"), json!({"n": 1}).into());
    // Intercepted: handle_out decides.
    server.endpoint.broadcast("room:ep", "out_change", json!({"x": 1})).unwrap();
    assert_eq!(room.assert_push("out_changed"), json!({"changed": true, "original": {"x": 1}}).into());
    room.assert_broadcast("out_change");
}

#[test]
fn broadcast_from_the_test_reaches_the_channels_handle_out_but_not_the_test() {
    let server = in_memory();
    let room = server.test_joined("room:from");
    room.broadcast_from("out_change", json!({"y": 2})).unwrap();
    assert_eq!(room.assert_push("out_changed"), json!({"changed": true, "original": {"y": 2}}).into());
    assert!(server.events().contains("handle_out room:from out_change"));
    room.refute_broadcast("out_change");
    room.broadcast_from("out_drop", json!({})).unwrap();
    room.refute_push("out_drop");
}

#[test]
fn the_channels_handle_reaches_handle_info() {
    let server = in_memory();
    let room = server.test_joined("room:info");
    room.handle().send(Msg::Push("from_test".into(), json!({"ok": true}))).unwrap();
    assert_eq!(room.assert_push("from_test"), json!({"ok": true}).into());
    room.handle().send(Msg::Stop(phx_channels::StopReason::Normal)).unwrap();
    room.assert_push("phx_close");
    server.wait_terminate("room:info", "normal");
}

#[test]
fn a_crash_is_phx_error_without_terminate() {
    let server = in_memory();
    let room = server.test_joined("room:boom");
    room.push("boom", json!({}));
    assert_eq!(room.assert_push("phx_error"), json!({"reason": "channel_crash"}).into());
    let room = server.test_joined("room:unhandled_info");
    room.push("info_boom", json!({}));
    room.assert_push("phx_error");
    let room = server.test_joined("room:out_boom");
    server.endpoint.broadcast("room:out_boom", "out_boom", json!({})).unwrap();
    room.assert_push("phx_error");
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.events().starting_with("terminate ").is_empty(), "{:?}", server.events().all());
}

#[test]
fn leave_replies_then_closes_then_terminates() {
    let server = in_memory();
    let room = server.test_joined("room:leave");
    let leave = room.leave();
    room.assert_reply(&leave, "ok");
    room.assert_push("phx_close");
    assert_eq!(room.assert_push("you_left"), json!({"reason": "{shutdown, left}"}).into());
    server.wait_terminate("room:leave", "{shutdown, left}");
}

#[test]
fn close_terminates_every_channel_with_closed_before_it_returns() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    let (_, a) = socket.join("room:c1", json!({})).unwrap();
    socket.join("room:c2", json!({})).unwrap();
    a.close();
    assert!(server.events().contains("terminate room:c1 {shutdown, closed}"));
    assert!(server.events().contains("terminate room:c2 {shutdown, closed}"));
    assert!(socket.is_closed());
    // What terminate pushes goes nowhere: the client is gone.
    a.refute_push("you_left");
    assert_eq!(socket.join("room:c3", json!({})).err(), Some(JoinError::Closed));
}

#[test]
fn a_disconnect_broadcast_on_the_socket_id_closes_the_connection() {
    let server = in_memory();
    let socket = server.connect(json!({"user_id": "9"}));
    socket.join("room:dc", json!({})).unwrap();
    server.endpoint.broadcast("user_socket:9", "disconnect", json!({})).unwrap();
    assert!(wait_until(Duration::from_secs(5), || socket.is_closed()));
    server.wait_terminate("room:dc", "{shutdown, closed}");
}

#[test]
fn shutting_the_endpoint_down_drains_test_connections() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.join("room:drain", json!({})).unwrap();
    server.endpoint.shutdown();
    assert!(server.events().contains("terminate room:drain {shutdown, draining}"));
    assert!(socket.is_closed());
}

#[test]
fn a_failing_assertion_lists_what_did_arrive() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    let (_, room) = socket.subscribe_and_join("room:fail", json!({})).unwrap();
    room.push("push", json!({"event": "other", "payload": {"k": "v"}}));
    let echo = room.push("echo", json!({"e": 1}));
    room.assert_reply(&echo, "ok");
    socket.set_timeouts(SHORT);
    let text = panic_text(|| {
        room.assert_push("expected");
    });
    assert!(text.starts_with("assert_push: no push of \"expected\" on room:fail within 50ms"), "{text}");
    assert!(text.contains(r#"push "other" on room:fail {"k":"v"}"#), "{text}");

    let error = room.push("status", json!({"status": "error"}));
    let text = panic_text(|| {
        room.assert_reply(&error, "ok");
    });
    assert!(text.contains(&format!(r#"reply "error" to ref {} on room:fail {{}}"#, &*error)), "{text}");

    room.push("broadcast", json!({"event": "heard", "payload": {}}));
    let text = panic_text(|| {
        room.assert_broadcast("unheard");
    });
    assert!(text.contains(r#"broadcast "heard" on room:fail {}"#), "{text}");

    let text = panic_text(|| room.refute_push("other"));
    assert_eq!(text, r#"refute_push: the channel pushed "other" on room:fail: push "other" on room:fail {"k":"v"}"#);

    let (_, unsubscribed) = socket.join("room:unsub", json!({})).unwrap();
    let text = panic_text(|| {
        unsubscribed.assert_broadcast("any");
    });
    assert!(text.contains("without subscribe_and_join"), "{text}");
}

#[test]
fn assertions_wait_as_long_as_the_timeouts_say() {
    let server = in_memory();
    let socket = testing::connect(&server.endpoint, "/socket", json!({})).unwrap();
    assert_eq!(socket.timeouts(), Timeouts::default());
    assert_eq!(Timeouts::default().assert, Duration::from_millis(100), "Phoenix's default");
    let (_, room) = socket.join("room:wait", json!({})).unwrap();
    let began = Instant::now();
    room.refute_push("never");
    assert!(began.elapsed() >= Duration::from_millis(100));
    socket.set_timeouts(Timeouts { refute: Duration::from_millis(300), ..Timeouts::default() });
    let began = Instant::now();
    room.refute_push("never");
    assert!(began.elapsed() >= Duration::from_millis(300));
    // An assertion returns as soon as its message is in.
    socket.set_timeouts(Timeouts { assert: Duration::from_secs(30), ..Timeouts::default() });
    let began = Instant::now();
    room.push("sleep", json!({"ms": 10}));
    room.push("push", json!({"event": "soon", "payload": {}}));
    room.assert_push("soon");
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[test]
fn presence_state_and_diffs_reach_the_test() {
    let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", lobby_socket())).unwrap();
    let ada = testing::connect(&endpoint, "/socket", json!({"user": "ada"})).unwrap();
    ada.set_timeouts(TEST_TIMEOUTS);
    let (_, ada_lobby) = ada.subscribe_and_join("lobby", json!({})).unwrap();
    assert_eq!(ada_lobby.assert_push(PRESENCE_STATE), json!({}).into());
    let diff = ada_lobby.assert_push(PRESENCE_DIFF);
    assert_eq!(
        diff.get("joins").and_then(|j| j.get("ada")).and_then(|a| a["metas"][0].get("device")),
        Some(&json!("web"))
    );
    ada_lobby.assert_broadcast(PRESENCE_DIFF);

    let grace = testing::connect(&endpoint, "/socket", json!({"user": "grace"})).unwrap();
    grace.set_timeouts(TEST_TIMEOUTS);
    let (_, grace_lobby) = grace.join("lobby", json!({})).unwrap();
    let state = grace_lobby.assert_push(PRESENCE_STATE);
    assert_eq!(state.as_json().unwrap().as_object().unwrap().keys().collect::<Vec<_>>(), ["ada"]);
    let diff = ada_lobby.assert_push(PRESENCE_DIFF);
    assert!(diff.get("joins").and_then(|j| j.get("grace")).is_some(), "{diff:?}");

    grace.close();
    let diff = ada_lobby.assert_push(PRESENCE_DIFF);
    assert!(diff.get("leaves").and_then(|j| j.get("grace")).is_some(), "{diff:?}");
    endpoint.shutdown();
}

#[test]
fn endpoint_local_broadcast_from_skips_the_given_subscriber() {
    let server = in_memory();
    let skipped = server.endpoint.subscribe("room:lb");
    let reached = server.endpoint.subscribe("room:lb");
    let room = server.test_joined("room:lb");
    server.endpoint.local_broadcast_from(skipped.id(), "room:lb", "l", json!({"n": 1})).unwrap();
    assert_eq!(reached.recv_timeout(Duration::from_secs(5)).unwrap().event, "l");
    assert_eq!(room.assert_push("l"), json!({"n": 1}).into());
    assert_eq!(skipped.try_recv().err(), Some(phx_channels::TryRecvError::Empty));
}

#[test]
fn test_sockets_and_channels_can_be_shared_with_other_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<testing::TestSocket>();
    shareable::<testing::TestChannel>();
    let server = in_memory();
    let room = std::sync::Arc::new(server.test_joined("room:threads"));
    let pusher = room.clone();
    let sent = std::thread::spawn(move || pusher.push("echo", json!({"from": "a thread"}))).join().unwrap();
    assert_eq!(room.assert_reply(&sent, "ok"), json!({"from": "a thread"}).into());
}

// --- Payload patterns -------------------------------------------------------------------

#[test]
fn assert_broadcast_with_skips_broadcasts_whose_payload_does_not_match() {
    // Two users change the board; the test waits for bob's change whoever came first.
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.set_timeouts(TEST_TIMEOUTS);
    let (_, room) = socket.subscribe_and_join("room:board", json!({})).unwrap();
    let (_, other) = server.connect(json!({})).join("room:board", json!({})).unwrap();
    other.push("broadcast", json!({"event": "changed", "payload": {"by": "ann", "to": 1}}));
    room.push("broadcast", json!({"event": "changed", "payload": {"by": "bob", "to": 2}}));
    let bob = room.assert_broadcast_with("changed", json!({"by": "bob"}));
    assert_eq!(bob, json!({"by": "bob", "to": 2}).into());
    // Ann's stayed, for a later assertion; the fastlane's copies too, in order.
    assert_eq!(room.assert_broadcast("changed"), json!({"by": "ann", "to": 1}).into());
    assert_eq!(room.assert_push_with("changed", json!({"to": 2})), json!({"by": "bob", "to": 2}).into());
    assert_eq!(room.assert_push("changed"), json!({"by": "ann", "to": 1}).into());
}

#[test]
fn push_and_reply_patterns_match_subsets_exact_payloads_and_predicates() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.set_timeouts(TEST_TIMEOUTS);
    let (_, room) = socket.join("room:patterns", json!({})).unwrap();
    for n in 1..=3 {
        room.push("push", json!({"event": "tick", "payload": {"n": n, "at": {"x": n, "y": 0}}}));
    }
    let third = testing::matching(|p| p.get("n").and_then(|n| n.as_u64()) == Some(3));
    assert_eq!(room.assert_push_with("tick", third), json!({"n": 3, "at": {"x": 3, "y": 0}}).into());
    room.assert_push_with("tick", json!({"at": {"x": 2}}));
    room.assert_push_with("tick", testing::equals(json!({"n": 1, "at": {"x": 1, "y": 0}})));
    room.refute_push("tick");

    let echo = room.push("echo", json!({"id": 7, "body": "hi"}));
    room.refute_reply_with(&echo, "ok", json!({"id": 8}));
    assert_eq!(room.assert_reply_with(&echo, "ok", json!({"id": 7})), json!({"id": 7, "body": "hi"}).into());
}

#[test]
fn a_pattern_that_matches_nothing_fails_and_lists_what_arrived() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.set_timeouts(SHORT);
    let (_, room) = socket.subscribe_and_join("room:nomatch", json!({})).unwrap();
    room.push("broadcast", json!({"event": "changed", "payload": {"by": "ann"}}));
    let text = panic_text(|| {
        room.assert_broadcast_with("changed", json!({"by": "bob"}));
    });
    assert!(text.contains(r#"no broadcast of "changed" containing {"by":"bob"} on room:nomatch"#), "{text}");
    assert!(text.contains(r#"broadcast "changed" on room:nomatch {"by":"ann"}"#), "{text}");
    let text = panic_text(|| {
        room.assert_push_with("changed", testing::equals(json!({})));
    });
    assert!(text.contains(r#"no push of "changed" equal to {} on room:nomatch"#), "{text}");
    assert!(text.contains(r#"push "changed" on room:nomatch {"by":"ann"}"#), "{text}");
}

#[test]
fn refute_failures_show_the_payload_that_arrived() {
    let server = in_memory();
    let socket = server.connect(json!({}));
    socket.set_timeouts(SHORT);
    let (_, room) = socket.subscribe_and_join("room:refuted", json!({})).unwrap();
    room.push("broadcast", json!({"event": "changed", "payload": {"by": "ann"}}));
    // A payload that does not match passes a refute_*_with.
    room.refute_broadcast_with("changed", json!({"by": "bob"}));
    room.refute_push_with("changed", json!({"by": "bob"}));
    let text = panic_text(|| room.refute_broadcast("changed"));
    assert_eq!(text, r#"refute_broadcast: broadcast "changed" on room:refuted {"by":"ann"}"#);
    let text = panic_text(|| room.refute_push_with("changed", json!({"by": "ann"})));
    assert_eq!(
        text,
        r#"refute_push: the channel pushed "changed" containing {"by":"ann"} on room:refuted: push "changed" on room:refuted {"by":"ann"}"#
    );
    let echo = room.push("echo", json!({"n": 1}));
    let text = panic_text(|| room.refute_reply(&echo, "ok"));
    assert!(text.ends_with(r#"reply "ok" to ref 3 on room:refuted {"n":1}"#), "{text}");
}
