//! Broadcasts: from channels and from the endpoint, the fastlane, intercepts and
//! handle_out, extra topics, mixed wire formats and slow consumers (PROTOCOL.md 5.8,
//! 5.9, 6).

mod common;

use common::*;
use phx_channels::client::Client;
use phx_channels::serializer::{Serializer, ServerMessage};
use phx_channels::{
    Adapter, AdapterError, Broadcast, Endpoint, Error, OutboundLimits, Payload, RecvTimeoutError, TryRecvError,
};
use serde_json::{Value, json};
use std::time::Duration;

fn events_of(msgs: &[ServerMessage]) -> Vec<String> {
    msgs.iter().map(describe).collect()
}

/// The next message must be `event` on `topic`, sent as a fastlane broadcast.
fn expect_broadcast(client: &mut Client, topic: &str, event: &str, payload: Value) {
    let msg = as_message(client.recv().unwrap());
    assert_eq!((msg.topic.as_str(), msg.event.as_str()), (topic, event));
    assert_eq!(json_of(&msg.payload), payload);
    assert_eq!((msg.join_ref, msg.msg_ref), (None, None), "a fastlane broadcast has null refs");
}

// --- P72, P73 ---------------------------------------------------------------------------

#[test]
fn broadcast_reaches_every_subscriber_including_the_senders_client() {
    // P72, P32
    let server = start();
    let mut clients: Vec<Client> = (0..3).map(|_| server.joined("room:b")).collect();
    let sent = json!({"event": "shout", "payload": {"x": 1}});
    let msg_ref = clients[0].push_async("room:b", "broadcast", sent).unwrap();
    let (before, reply) = until_reply(&mut clients[0], &msg_ref);
    assert_eq!(reply.status, "ok");
    // The sender's own copy was queued before its reply.
    assert_eq!(events_of(&before), ["shout"]);
    for client in &mut clients[1..] {
        expect_broadcast(client, "room:b", "shout", json!({"x": 1}));
    }
}

#[test]
fn broadcast_from_reaches_every_subscriber_except_the_sender() {
    // P73
    let server = start();
    let mut sender = server.joined("room:bf");
    let mut others: Vec<Client> = (0..2).map(|_| server.joined("room:bf")).collect();
    let (before, reply) =
        push_collect(&mut sender, "room:bf", "broadcast_from", json!({"event": "shout", "payload": {"y": 2}}));
    assert_eq!(reply.status, "ok");
    assert!(before.is_empty(), "the sender got its own broadcast_from: {:?}", events_of(&before));
    for client in &mut others {
        expect_broadcast(client, "room:bf", "shout", json!({"y": 2}));
    }
    let (before, _) = push_collect(&mut sender, "room:bf", "ok", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
}

#[test]
fn a_broadcast_that_is_not_an_object_is_refused() {
    // P33
    let server = start();
    let mut client = server.joined("room:notobj");
    let reply = client.push("room:notobj", "broadcast", json!({"event": "e", "payload": [1, 2]})).unwrap();
    assert_eq!(reply.status, "error", "{reply:?}");
    assert!(matches!(server.endpoint.broadcast("room:notobj", "e", json!("text")), Err(Error::Encode(_))));
}

// --- P74 --------------------------------------------------------------------------------

#[test]
fn a_broadcast_is_encoded_once_per_wire_format_and_skips_the_channel_threads() {
    // P74
    let server = start();
    let mut v2: Vec<Client> = (0..3).map(|_| server.joined("room:fl")).collect();
    let mut v1: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = server.client_v1();
            assert_eq!(c.join("room:fl", json!({})).unwrap().status, "ok");
            c
        })
        .collect();
    let before = server.endpoint.stats();
    server.endpoint.broadcast("room:fl", "news", json!({"n": 1})).unwrap();
    let after = server.endpoint.stats();
    assert_eq!(after.broadcast_encodes - before.broadcast_encodes, 2, "one encode per format");
    assert_eq!(after.fastlane_deliveries - before.fastlane_deliveries, 6);
    for client in v2.iter_mut().chain(v1.iter_mut()) {
        expect_broadcast(client, "room:fl", "news", json!({"n": 1}));
    }
    assert!(server.events().starting_with("handle_out").is_empty(), "no channel callback ran");
    assert!(server.events().starting_with("info").is_empty(), "no channel callback ran");
}

#[test]
fn a_broadcast_to_one_wire_format_is_encoded_once() {
    // P74
    let server = start();
    let mut clients: Vec<Client> = (0..4).map(|_| server.joined("room:one")).collect();
    let before = server.endpoint.stats().broadcast_encodes;
    server.endpoint.broadcast("room:one", "news", json!({})).unwrap();
    assert_eq!(server.endpoint.stats().broadcast_encodes - before, 1);
    for client in &mut clients {
        expect_broadcast(client, "room:one", "news", json!({}));
    }
}

#[test]
fn v1_and_v2_subscribers_each_get_their_own_format() {
    // P74, P32, P34, P35
    let server = start();
    let mut v1 = RawWs::connect(&server.addr, "/socket/websocket?vsn=1.0.0");
    v1.send_json(&json!({"topic": "room:mix", "event": "phx_join", "payload": {}, "ref": "1", "join_ref": "1"}));
    assert_eq!(v1.read_json()["payload"]["status"], json!("ok"));
    let mut v2 = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    v2.send_json(&json!(["1", "1", "room:mix", "phx_join", {}]));
    assert_eq!(v2.read_json()[4]["status"], json!("ok"));
    server.endpoint.broadcast("room:mix", "news", json!({"body": "hi"})).unwrap();
    assert_eq!(v1.read_json(), json!({"topic": "room:mix", "event": "news", "payload": {"body": "hi"}, "ref": null}));
    assert_eq!(v2.read_json(), json!([null, null, "room:mix", "news", {"body": "hi"}]));
}

#[test]
fn a_binary_broadcast_reaches_v2_subscribers_as_a_binary_frame() {
    // P39, P41
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket?vsn=2.0.0");
    ws.send_json(&json!(["1", "1", "room:bb", "phx_join", {}]));
    ws.read_json();
    server.endpoint.broadcast("room:bb", "blob", Payload::Binary(b"\x01\x02".to_vec().into())).unwrap();
    let (opcode, bytes) = ws.read_frame().unwrap();
    assert_eq!(opcode, OP_BINARY);
    let mut expected = vec![2u8, 7, 4];
    expected.extend_from_slice(b"room:bbblob\x01\x02");
    assert_eq!(bytes, expected);
}

// --- P75 --------------------------------------------------------------------------------

#[test]
fn an_intercepted_event_goes_through_handle_out_and_arrives_as_a_push() {
    // P75, 11.9
    let server = start();
    let mut a = server.joined("room:out");
    let mut b = server.joined("room:out");
    server.endpoint.broadcast("room:out", "out_push", json!({"v": 1})).unwrap();
    for client in [&mut a, &mut b] {
        let msg = client.recv_event("room:out", "out_push").unwrap();
        assert_eq!(json_of(&msg.payload), json!({"v": 1}));
        assert_eq!(msg.join_ref.as_deref(), client.join_ref("room:out"), "a push carries the join_ref");
        assert_eq!(msg.msg_ref, None);
    }
    assert_eq!(server.events().starting_with("handle_out room:out out_push").len(), 2, "once per subscriber");
}

#[test]
fn handle_out_may_change_the_event_and_payload() {
    // P75
    let server = start();
    let mut client = server.joined("room:change");
    server.endpoint.broadcast("room:change", "out_change", json!({"v": 2})).unwrap();
    let msg = client.recv_event("room:change", "out_changed").unwrap();
    assert_eq!(json_of(&msg.payload), json!({"changed": true, "original": {"v": 2}}));
}

#[test]
fn handle_out_may_drop_the_event() {
    // P75
    let server = start();
    let mut client = server.joined("room:drop");
    server.endpoint.broadcast("room:drop", "out_drop", json!({})).unwrap();
    // The channel handles the broadcast before this later message.
    let (before, _) = push_collect(&mut client, "room:drop", "ok", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
    assert_eq!(server.events().starting_with("handle_out room:drop out_drop").len(), 1);
}

#[test]
fn handle_out_may_stop_the_channel() {
    // P75, P65
    let server = start();
    let mut client = server.joined("room:outstop");
    server.endpoint.broadcast("room:outstop", "out_stop", json!({})).unwrap();
    let msgs = recv_n(&mut client, 2);
    assert_eq!(events_of(&msgs), ["phx_close", "you_left"]);
    server.wait_terminate("room:outstop", "normal");
}

#[test]
fn a_panic_in_handle_out_sends_phx_error_to_that_subscriber() {
    // P67, P75
    let server = start();
    let mut client = server.joined("room:outboom");
    server.endpoint.broadcast("room:outboom", "out_boom", json!({})).unwrap();
    let error = client.recv_event("room:outboom", "phx_error").unwrap();
    assert_eq!(json_of(&error.payload), json!({"reason": "channel_crash"}));
}

#[test]
fn a_run_of_intercepted_broadcasts_arrives_whole_and_in_order_before_a_later_reply() {
    // P75, 11.9: each subscriber's pushes carry its own join ref and the right payload,
    // in both wire formats, although the payloads' encodings are shared and a channel
    // thread that finds several broadcasts waiting writes their pushes together.
    let server = start();
    let mut v2 = server.joined("room:run");
    let mut later = server.client();
    later.join("room:other", json!({})).unwrap();
    later.join("room:run", json!({})).unwrap();
    assert_ne!(later.join_ref("room:run"), v2.join_ref("room:run"), "two different join refs");
    let mut v1 = server.client_v1();
    v1.join("room:run", json!({})).unwrap();
    let mut expected = Vec::new();
    for n in 0..200 {
        if n % 3 == 0 {
            server.endpoint.broadcast("room:run", "out_change", json!({"n": n})).unwrap();
            expected.push(("out_changed".to_owned(), json!({"changed": true, "original": {"n": n}})));
        } else {
            server.endpoint.broadcast("room:run", "out_push", json!({"n": n})).unwrap();
            expected.push(("out_push".to_owned(), json!({"n": n})));
        }
    }
    for client in [&mut v2, &mut later, &mut v1] {
        let join_ref = client.join_ref("room:run").map(str::to_owned);
        let (before, reply) = push_collect(client, "room:run", "ok", json!({}));
        assert_eq!(reply.status, "ok");
        let got: Vec<(String, Value)> = before
            .iter()
            .map(|msg| match msg {
                ServerMessage::Message(msg) => {
                    assert_eq!(msg.topic, "room:run");
                    if client.serializer() == Serializer::V2 {
                        assert_eq!(
                            msg.join_ref.as_deref(),
                            join_ref.as_deref(),
                            "a push carries its own channel's join ref"
                        );
                    }
                    (msg.event.clone(), json_of(&msg.payload))
                }
                other => panic!("only pushes come before the reply: {other:?}"),
            })
            .collect();
        assert_eq!(got, expected);
    }
}

#[test]
fn intercepting_and_fastlane_subscribers_mix_on_one_topic() {
    // P74, P75: events that are not intercepted still take the fastlane.
    let server = start();
    let mut client = server.joined("room:both");
    server.endpoint.broadcast("room:both", "plain", json!({})).unwrap();
    expect_broadcast(&mut client, "room:both", "plain", json!({}));
    assert!(server.events().starting_with("handle_out").is_empty());
}

// --- P76 --------------------------------------------------------------------------------

#[test]
fn broadcasts_on_an_extra_topic_reach_handle_info_and_are_pushed_on_the_channels_topic() {
    // P76
    let server = start();
    let mut client = server.joined("room:x");
    assert_eq!(client.push("room:x", "subscribe", json!({"topic": "product:9"})).unwrap().status, "ok");
    server.endpoint.broadcast("product:9", "price", json!({"v": 10})).unwrap();
    let msg = as_message(client.recv().unwrap());
    assert_eq!((msg.topic.as_str(), msg.event.as_str()), ("room:x", "price"));
    assert_eq!(json_of(&msg.payload), json!({"v": 10}));
    assert_eq!(msg.join_ref.as_deref(), client.join_ref("room:x"));
    assert!(server.events().contains("info room:x broadcast product:9 price"));
}

#[test]
fn subscribing_twice_to_an_extra_topic_delivers_twice() {
    // P76
    let server = start();
    let mut client = server.joined("room:twice");
    for _ in 0..2 {
        client.push("room:twice", "subscribe", json!({"topic": "product:2"})).unwrap();
    }
    server.endpoint.broadcast("product:2", "price", json!({})).unwrap();
    let msgs = recv_n(&mut client, 2);
    assert_eq!(events_of(&msgs), ["price", "price"]);
}

#[test]
fn unsubscribing_from_an_extra_topic_stops_delivery() {
    // P76
    let server = start();
    let mut client = server.joined("room:unsub");
    client.push("room:unsub", "subscribe", json!({"topic": "product:3"})).unwrap();
    client.push("room:unsub", "unsubscribe", json!({"topic": "product:3"})).unwrap();
    server.endpoint.broadcast("product:3", "price", json!({})).unwrap();
    let (before, _) = push_collect(&mut client, "room:unsub", "ok", json!({}));
    assert!(before.is_empty(), "{:?}", events_of(&before));
    assert_eq!(server.endpoint.pubsub().subscriber_count("product:3"), 0);
}

#[test]
fn a_channels_extra_subscriptions_end_when_it_exits() {
    // P76
    let server = start();
    let mut client = server.joined("room:extraend");
    client.push("room:extraend", "subscribe", json!({"topic": "product:4"})).unwrap();
    assert_eq!(server.endpoint.pubsub().subscriber_count("product:4"), 1);
    client.leave("room:extraend").unwrap();
    server.wait_terminate("room:extraend", "{shutdown, left}");
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.pubsub().subscriber_count("product:4") == 0));
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.pubsub().subscriber_count("room:extraend") == 0));
}

// --- P83 --------------------------------------------------------------------------------

#[test]
fn an_endpoint_subscription_receives_broadcast_values() {
    // P83
    let server = start();
    let sub = server.endpoint.subscribe("room:api");
    assert_eq!(sub.topic(), "room:api");
    server.endpoint.broadcast("room:api", "e1", json!({"a": 1})).unwrap();
    let got = sub.recv_timeout(Duration::from_secs(5)).expect("a broadcast");
    assert_eq!((got.topic.as_str(), got.event.as_str()), ("room:api", "e1"));
    assert_eq!(got.payload, Payload::Json(json!({"a": 1})));
    // From a channel too.
    let mut client = server.joined("room:api");
    client.push("room:api", "broadcast", json!({"event": "e2", "payload": {}})).unwrap();
    assert_eq!(sub.recv_timeout(Duration::from_secs(5)).expect("a broadcast").event, "e2");
}

#[test]
fn subscribing_twice_from_the_endpoint_receives_twice() {
    // P83
    let server = start();
    let first = server.endpoint.subscribe("t:twice");
    let second = server.endpoint.subscribe("t:twice");
    assert_eq!(server.endpoint.pubsub().subscriber_count("t:twice"), 2);
    server.endpoint.broadcast("t:twice", "e", json!({})).unwrap();
    assert!(first.recv_timeout(Duration::from_secs(5)).is_ok());
    assert!(second.recv_timeout(Duration::from_secs(5)).is_ok());
}

#[test]
fn unsubscribe_ends_an_endpoint_subscription() {
    // P83
    let server = start();
    let kept = server.endpoint.subscribe("t:unsub");
    let gone = server.endpoint.subscribe("t:unsub");
    server.endpoint.unsubscribe(gone);
    assert_eq!(server.endpoint.pubsub().subscriber_count("t:unsub"), 1);
    server.endpoint.broadcast("t:unsub", "e", json!({})).unwrap();
    assert!(kept.recv_timeout(Duration::from_secs(5)).is_ok());
    drop(kept);
    assert_eq!(server.endpoint.pubsub().subscriber_count("t:unsub"), 0, "dropping unsubscribes too");
}

#[test]
fn endpoint_broadcast_from_skips_the_given_subscriber() {
    // P83, P73
    let server = start();
    let skipped = server.endpoint.subscribe("room:from");
    let reached = server.endpoint.subscribe("room:from");
    let mut client = server.joined("room:from");
    let mut skipped_client = server.joined("room:from");
    let handle = server.ctx.handle("room:from"); // the latest join: skipped_client's channel
    server.endpoint.broadcast_from(skipped.id(), "room:from", "e", json!({"n": 1})).unwrap();
    assert!(reached.recv_timeout(Duration::from_secs(5)).is_ok());
    assert_eq!(skipped.try_recv().err(), Some(TryRecvError::Empty));
    expect_broadcast(&mut client, "room:from", "e", json!({"n": 1}));
    expect_broadcast(&mut skipped_client, "room:from", "e", json!({"n": 1}));

    server.endpoint.broadcast_from(handle.subscriber_id(), "room:from", "f", json!({})).unwrap();
    expect_broadcast(&mut client, "room:from", "f", json!({}));
    let (before, _) = push_collect(&mut skipped_client, "room:from", "ok", json!({}));
    assert!(before.is_empty(), "the skipped channel's client got {:?}", events_of(&before));
    assert!(skipped.recv_timeout(Duration::from_secs(5)).is_ok());
}

#[test]
fn local_broadcast_and_local_broadcast_from_deliver_on_this_node() {
    // P83
    let server = start();
    let sub = server.endpoint.subscribe("room:local");
    let other = server.endpoint.subscribe("room:local");
    let mut client = server.joined("room:local");
    server.endpoint.local_broadcast("room:local", "l1", json!({})).unwrap();
    expect_broadcast(&mut client, "room:local", "l1", json!({}));
    assert_eq!(sub.recv_timeout(Duration::from_secs(5)).unwrap().event, "l1");
    assert_eq!(other.recv_timeout(Duration::from_secs(5)).unwrap().event, "l1");
    server.endpoint.pubsub().local_broadcast_from(sub.id(), "room:local", "l2", json!({})).unwrap();
    expect_broadcast(&mut client, "room:local", "l2", json!({}));
    assert_eq!(other.recv_timeout(Duration::from_secs(5)).unwrap().event, "l2");
    assert_eq!(sub.try_recv().err(), Some(TryRecvError::Empty));
}

#[test]
fn a_subscription_tells_a_timeout_from_a_shutdown_and_iterates_until_the_shutdown() {
    // P83
    let endpoint = Endpoint::builder().no_listener().start().unwrap();
    let sub = endpoint.subscribe("news");
    assert_eq!(sub.try_recv().err(), Some(TryRecvError::Empty));
    assert_eq!(sub.recv_timeout(Duration::from_millis(10)).err(), Some(RecvTimeoutError::Timeout));
    endpoint.broadcast("news", "first", json!({})).unwrap();
    endpoint.broadcast("news", "second", json!({})).unwrap();
    endpoint.shutdown();
    // What was queued before the shutdown still comes, then the end.
    let events: Vec<String> = sub.iter().map(|broadcast| broadcast.event).collect();
    assert_eq!(events, ["first", "second"]);
    assert_eq!(sub.recv_timeout(Duration::from_secs(5)).err(), Some(RecvTimeoutError::Shutdown));
    assert_eq!(sub.try_recv().err(), Some(TryRecvError::Shutdown));
    assert!(matches!(sub.recv(), Err(Error::Shutdown)));
    // A subscription taken after the shutdown is closed from the start.
    let late = endpoint.subscribe("news");
    assert_eq!(late.recv_timeout(Duration::from_secs(5)).err(), Some(RecvTimeoutError::Shutdown));
    assert_eq!((&late).into_iter().count(), 0);
}

/// An adapter whose other nodes are unreachable.
struct Unreachable;

impl Adapter for Unreachable {
    fn publish(&self, _broadcast: &Broadcast) -> Result<(), AdapterError> {
        Err("the other nodes are unreachable".into())
    }

    fn direct_broadcast(&self, _node: &str, _broadcast: &Broadcast) -> Result<(), AdapterError> {
        Err("the other nodes are unreachable".into())
    }
}

#[test]
fn an_adapter_failure_is_an_adapter_error_after_the_local_delivery() {
    let endpoint = Endpoint::builder().no_listener().adapter(Unreachable).start().unwrap();
    let sub = endpoint.subscribe("room:a");
    let err = endpoint.broadcast("room:a", "e", json!({})).unwrap_err();
    assert!(matches!(err, Error::Adapter(_)), "{err:?}");
    assert_eq!(err.to_string(), "the pub/sub adapter failed: the other nodes are unreachable");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(sub.recv_timeout(Duration::from_secs(5)).unwrap().event, "e", "delivered here all the same");
    let err = endpoint.pubsub().direct_broadcast("elsewhere", "room:a", "e", json!({})).unwrap_err();
    assert!(matches!(err, Error::Adapter(_)), "{err:?}");
    endpoint.local_broadcast("room:a", "l", json!({})).expect("a local broadcast never reaches the adapter");
    endpoint.shutdown();
}

// --- Who writes a broadcast ---------------------------------------------------------------

/// Each of `clients` must next receive the `seq` broadcasts 0..count on `topic`, in order.
fn expect_sequence(clients: &mut [Client], topic: &str, count: u64) {
    for client in clients {
        for n in 0..count {
            expect_broadcast(client, topic, "seq", json!({"n": n}));
        }
    }
}

#[test]
fn a_lone_broadcast_is_written_by_its_publisher_and_a_burst_mostly_by_the_reactors() {
    let server = start();
    let topic = "room:pacing";
    let mut publisher = server.joined(topic);
    let mut subscribers: Vec<Client> = (0..30).map(|_| server.joined(topic)).collect();
    // Let every reactor finish with the join replies, so each connection is idle.
    std::thread::sleep(Duration::from_millis(100));

    let before = server.endpoint.stats();
    let reply = publisher.push(topic, "broadcast_burst", json!({"count": 1})).unwrap();
    assert_eq!(reply.status, "ok");
    expect_sequence(&mut subscribers, topic, 1);
    let lone = server.endpoint.stats();
    assert_eq!(lone.fastlane_deliveries - before.fastlane_deliveries, 30);
    let direct = lone.fastlane_direct - before.fastlane_direct;
    assert!(direct >= 20, "a lone broadcast to idle connections went through the reactors: {direct} of 30 direct");

    // 100 broadcasts back to back: the topic is busy, so frames queue and are batched.
    let reply = publisher.push(topic, "broadcast_burst", json!({"count": 100})).unwrap();
    assert_eq!(reply.status, "ok");
    expect_sequence(&mut subscribers, topic, 100);
    let burst = server.endpoint.stats();
    assert_eq!(burst.fastlane_deliveries - lone.fastlane_deliveries, 3000);
    let direct = burst.fastlane_direct - lone.fastlane_direct;
    assert!(direct < 1500, "a burst was written mostly by its publisher: {direct} of 3000 direct");
}

#[test]
fn a_publisher_with_mail_waiting_hands_the_rest_of_its_fan_out_to_the_reactors() {
    let server = start();
    let topic = "room:handoff";
    let mut publisher = server.joined(topic);
    let mut subscribers: Vec<Client> = (0..200).map(|_| server.joined(topic)).collect();
    std::thread::sleep(Duration::from_millis(100));

    let before = server.endpoint.stats();
    let reply = publisher.push(topic, "broadcast_burst", json!({"count": 1, "mail_first": true})).unwrap();
    assert_eq!(reply.status, "ok");
    expect_sequence(&mut subscribers, topic, 1);
    let after = server.endpoint.stats();
    assert_eq!(after.fastlane_deliveries - before.fastlane_deliveries, 200);
    let direct = after.fastlane_direct - before.fastlane_direct;
    assert!(direct < 100, "the publisher kept writing with mail waiting: {direct} of 200 direct");
}

// --- Slow consumers ---------------------------------------------------------------------

#[test]
fn a_client_that_never_reads_is_closed_with_1008_while_others_keep_receiving() {
    // D3 (outbound queue limit), P72
    let server = server()
        .mount("/slow", |s| s.outbound_limits(OutboundLimits::default().max_frames(64).max_bytes(64 * 1024)))
        .start();
    let mut slow = RawWs::connect(&server.addr, "/slow/websocket?vsn=2.0.0");
    slow.send_json(&json!(["1", "1", "room:flood", "phx_join", {}]));
    assert_eq!(slow.read_json()[4]["status"], json!("ok"));
    // From here on, the slow client reads nothing.

    let mut good = server.builder().timeout(Duration::from_secs(10)).connect().unwrap();
    assert_eq!(good.join("room:flood", json!({})).unwrap().status, "ok");
    let filler = "z".repeat(4096);
    let mut sent = 0u64;
    let max = 5_000u64;
    while sent < max && server.endpoint.stats().slow_consumer_closes == 0 {
        for _ in 0..20 {
            server.endpoint.broadcast("room:flood", "bulk", json!({"n": sent, "filler": filler})).unwrap();
            sent += 1;
        }
        // The good client keeps up.
        for _ in 0..20 {
            let msg = good.recv_event("room:flood", "bulk").unwrap();
            assert!(msg.payload.get("n").is_some());
        }
    }
    assert_eq!(
        server.endpoint.stats().slow_consumer_closes,
        1,
        "the slow client was not closed after {sent} broadcasts"
    );
    slow.set_read_timeout(Duration::from_secs(5));
    let (code, _) = slow.read_until_close();
    assert_eq!(code, Some(1008));
    // The good client is unaffected.
    server.endpoint.broadcast("room:flood", "after", json!({"still": true})).unwrap();
    let msg = good.recv_event("room:flood", "after").unwrap();
    assert_eq!(json_of(&msg.payload), json!({"still": true}));
    assert_alive(&mut good);
    server.wait_terminate("room:flood", "{shutdown, closed}");
}

#[test]
fn a_broadcast_written_in_part_to_a_slow_client_is_finished_before_the_close_frame() {
    // Large broadcasts, each alone, written by the publisher to a client that reads
    // nothing, until the queue overflows. Whatever reached the socket, in whole or in
    // part, must be finished: the client reads whole broadcasts in order, then 1008.
    // (The write-queue unit tests pin the case of a frame written in part.)
    let server = server()
        .mount("/slow", |s| s.outbound_limits(OutboundLimits::default().max_frames(2).max_bytes(1 << 24)))
        .start();
    let mut slow = RawWs::connect(&server.addr, "/slow/websocket?vsn=2.0.0");
    slow.send_json(&json!(["1", "1", "room:big", "phx_join", {}]));
    assert_eq!(slow.read_json()[4]["status"], json!("ok"));
    std::thread::sleep(Duration::from_millis(50));

    let filler = "b".repeat(256 * 1024);
    let mut sent = 0u64;
    while sent < 400 && server.endpoint.stats().slow_consumer_closes == 0 {
        server.endpoint.broadcast("room:big", "big", json!({"n": sent, "filler": filler})).unwrap();
        sent += 1;
        // Quiet in between, so that each broadcast is written by the publisher.
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(server.endpoint.stats().slow_consumer_closes, 1, "not closed after {sent} broadcasts");
    assert!(server.endpoint.stats().fastlane_direct > 0, "no broadcast was written by its publisher");

    slow.set_read_timeout(Duration::from_secs(10));
    let mut next = 0u64;
    loop {
        match slow.read_frame() {
            Ok((OP_CLOSE, payload)) => {
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1008);
                break;
            }
            Ok((opcode, payload)) => {
                let frame: Value = serde_json::from_slice(&payload)
                    .unwrap_or_else(|err| panic!("broadcast {next} arrived broken ({err}), opcode {opcode}"));
                assert_eq!(frame[4]["n"], json!(next), "broadcasts arrive whole and in order");
                next += 1;
            }
            Err(err) => panic!("the connection ended without a close frame after {next} broadcasts ({err})"),
        }
    }
    assert!(next > 0 && next < sent, "{next} of {sent} broadcasts arrived");
}
