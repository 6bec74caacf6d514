//! Presence over real sockets (PROTOCOL.md 8, P89–P93): the `presence_state` and
//! `presence_diff` shapes, updates, several metas per key, cleanup on every way a
//! channel can end, tracking on another topic, one diff per burst of changes, and the
//! endpoint's `presence().list`.
//!
//! The `presence:*` channel ([`Tracker`]) tracks itself from `handle_info` right after its
//! join, as Phoenix applications (and the parity fixture) do, and does whatever else the
//! client asks.

mod common;
/// The parity fixture's own code, started in-process on a free port.
#[allow(dead_code)]
#[path = "../examples/parity.rs"]
mod parity;

use common::*;
use phx_channels::client::Client;
use phx_channels::message::{Message, PHX_JOIN};
use phx_channels::presence::{PRESENCE_DIFF, PRESENCE_STATE, PresenceError};
use phx_channels::{Channel, Flow, Handled, Info, JoinResult, Payload, Socket, Subscription};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The channel.
// ---------------------------------------------------------------------------------------

/// Every `track` result of every `Tracker`, as `("<topic> <key>", result)`, so that tests
/// can check the Rust values and not only what reached the wire.
#[derive(Clone, Default)]
struct TrackLog(Arc<Mutex<Vec<Tracked>>>);

/// One `track` call: its `"<topic> <key>"` and its result.
type Tracked = (String, Result<String, PresenceError>);

impl TrackLog {
    fn record(&self, topic: &str, key: &str, result: &Result<String, PresenceError>) {
        self.0.lock().unwrap().push((format!("{topic} {key}"), result.clone()));
    }

    fn results(&self, topic: &str, key: &str) -> Vec<Result<String, PresenceError>> {
        let label = format!("{topic} {key}");
        self.0.lock().unwrap().iter().filter(|(l, _)| *l == label).map(|(_, r)| r.clone()).collect()
    }
}

/// Sent to itself from `join`, to push and track once joined.
struct AfterJoin;

/// The `presence:*` channel.
///
/// Join payload: `key` (default `anon`), `meta` (default `{}`), `track: false` to only
/// watch, `track_in_join: true` to track inside `join` already, `refuse: true` /
/// `panic: true` to end the join (after that track) with a refusal or a panic.
///
/// Once joined it pushes `presence_state` (the topic's list), then tracks `key` with
/// `meta` (unless told not to), then pushes `ready` `{"phx_ref": ref or null}`.
///
/// Events: `track` / `track_topic` (`topic`, `key`, `meta`), `update` (`key`, `meta`),
/// `untrack` (`key`), `list`, `stop` (`reason`, as [`parse_reason`]), `boom` (panics).
/// Presence errors are answered with status `error` and `{"error": Debug of the error}`.
struct Tracker {
    key: String,
    meta: Value,
    track: bool,
    log: TrackLog,
}

fn presence_reply(result: Result<String, PresenceError>) -> Handled {
    match result {
        Ok(phx_ref) => Handled::reply_ok(json!({ "phx_ref": phx_ref })),
        Err(err) => Handled::reply_error(json!({ "error": format!("{err:?}") })),
    }
}

impl Channel for Tracker {
    fn join(&mut self, topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        self.key = payload.get("key").and_then(Value::as_str).unwrap_or("anon").to_owned();
        self.meta = payload.get("meta").cloned().unwrap_or_else(|| json!({}));
        self.track = payload.get("track").and_then(Value::as_bool) != Some(false);
        let flag = |name| payload.get(name).and_then(Value::as_bool) == Some(true);
        if flag("track_in_join") {
            let result = socket.track(&self.key, self.meta.clone());
            self.log.record(topic, &self.key, &result);
            self.track = false;
        }
        if flag("refuse") {
            return Err(json!({"reason": "refused after tracking"}).into());
        }
        if flag("panic") {
            panic!("join of {topic} panics after tracking, on purpose");
        }
        socket.handle().send(AfterJoin).expect("a joining channel takes messages");
        Ok(Payload::empty())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        if info.downcast::<AfterJoin>().is_ok() {
            socket.push(PRESENCE_STATE, socket.presence_list()).expect("push presence_state");
            let phx_ref = if self.track {
                let result = socket.track(&self.key, self.meta.clone());
                self.log.record(socket.topic(), &self.key, &result);
                Some(result.expect("the first track of a key succeeds"))
            } else {
                None
            };
            socket.push("ready", json!({ "phx_ref": phx_ref })).expect("push ready");
        }
        Flow::Continue
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        let key = payload.get("key").and_then(Value::as_str).unwrap_or(&self.key).to_owned();
        let meta = payload.get("meta").cloned().unwrap_or_else(|| json!({}));
        match event {
            "track" => {
                let result = socket.track(&key, meta);
                self.log.record(socket.topic(), &key, &result);
                presence_reply(result)
            }
            "track_topic" => {
                let topic = payload.get("topic").and_then(Value::as_str).unwrap_or("presence:other").to_owned();
                let result = socket.track_topic(&topic, &key, meta);
                self.log.record(&topic, &key, &result);
                presence_reply(result)
            }
            "update" => presence_reply(socket.update_presence(&key, meta)),
            "untrack" => {
                socket.untrack(&key);
                Handled::ok()
            }
            "list" => Handled::reply_ok(socket.presence_list()),
            "stop" => Handled::stop(parse_reason(payload.get("reason").and_then(Value::as_str).unwrap_or("normal"))),
            "boom" => panic!("handle_in of {} panics on purpose", socket.topic()),
            other => Handled::reply_error(json!({ "unknown": other })),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

/// The test server with `presence:*` routed to [`Tracker`].
fn presence_server() -> (Server, TrackLog) {
    let log = TrackLog::default();
    let for_route = log.clone();
    let server = server()
        .socket(move |s| {
            s.channel("presence:*", move |_| Tracker {
                key: String::new(),
                meta: Value::Null,
                track: true,
                log: for_route.clone(),
            })
        })
        .start();
    (server, log)
}

/// A client joined to `topic` with `payload`, once its channel has pushed `ready`; with
/// the `presence_state` it got and the ref it tracked (if it tracks).
struct Member {
    client: Client,
    topic: String,
    state: Value,
    phx_ref: Option<String>,
}

impl Member {
    fn join(server: &Server, topic: &str, payload: Value) -> Member {
        let mut client = server.client();
        let reply = client.join(topic, payload.clone()).expect("join reply");
        assert_eq!(reply.status, "ok", "join of {topic} with {payload}: {reply:?}");
        let ready = client.recv_event(topic, "ready").expect("the channel pushes ready once joined");
        let phx_ref = json_of(&ready.payload)["phx_ref"].as_str().map(str::to_owned);
        let state = json_of(&client.recv_event(topic, PRESENCE_STATE).expect("presence_state").payload);
        Member { client, topic: topic.to_owned(), state, phx_ref }
    }

    /// A member that tracks `key` with `meta`.
    fn tracking(server: &Server, topic: &str, key: &str, meta: Value) -> Member {
        let member = Member::join(server, topic, json!({"key": key, "meta": meta}));
        assert!(member.phx_ref.is_some(), "{key} is tracked");
        member
    }

    /// A member that only watches.
    fn watching(server: &Server, topic: &str) -> Member {
        Member::join(server, topic, json!({"track": false}))
    }

    fn phx_ref(&self) -> String {
        self.phx_ref.clone().expect("a tracking member")
    }

    fn push(&mut self, event: &str, payload: Value) -> phx_channels::Reply {
        self.client.push(&self.topic, event, payload).unwrap_or_else(|err| panic!("{event}: {err}"))
    }

    /// The next `presence_diff` this member's client gets.
    fn next_diff(&mut self) -> (Message, Value) {
        let msg = self.client.recv_event(&self.topic, PRESENCE_DIFF).expect("a presence_diff");
        let payload = checked_diff(&json_of(&msg.payload));
        (msg, payload)
    }

    /// Takes diffs until one satisfies `check`; returns that one. At most 10 s.
    fn diff_where(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.client.recv_event(&self.topic, PRESENCE_DIFF) {
                Ok(msg) => {
                    let diff = checked_diff(&json_of(&msg.payload));
                    if check(&diff) {
                        return diff;
                    }
                    seen.push(diff);
                }
                Err(err) => panic!("waiting for a diff with {what}: {err}; diffs before: {seen:#?}"),
            }
        }
        panic!("no diff with {what} within 10 s; diffs seen: {seen:#?}")
    }
}

/// P91: a diff has `joins` and `leaves`, both objects, and nothing else.
fn checked_diff(payload: &Value) -> Value {
    let object = payload.as_object().unwrap_or_else(|| panic!("a diff is an object: {payload}"));
    assert!(object["joins"].is_object(), "joins is always present: {payload}");
    assert!(object["leaves"].is_object(), "leaves is always present: {payload}");
    assert_eq!(object.len(), 2, "a diff holds joins and leaves only: {payload}");
    payload.clone()
}

/// The refs of `key`'s metas in a `{key: {"metas": [...]}}` map, in order.
fn refs(map: &Value, key: &str) -> Vec<String> {
    map[key]["metas"]
        .as_array()
        .map(|metas| metas.iter().map(|m| m["phx_ref"].as_str().unwrap_or("?").to_owned()).collect())
        .unwrap_or_default()
}

/// The next diff on a plain subscription, within 5 s.
fn sub_diff(sub: &Subscription) -> Value {
    let broadcast = sub.recv_timeout(Duration::from_secs(5)).expect("a presence_diff on the subscription");
    assert_eq!(broadcast.event, PRESENCE_DIFF);
    checked_diff(&json_of(&broadcast.payload))
}

fn is_url_safe_ref(phx_ref: &str) -> bool {
    phx_ref.len() == 16 && phx_ref.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A watcher and `alice` tracked on `topic`, once the watcher has seen alice arrive.
fn alice_watched(server: &Server, topic: &str) -> (Member, Member) {
    let mut watcher = Member::watching(server, topic);
    let alice = Member::tracking(server, topic, "alice", json!({"status": "online"}));
    let alice_ref = alice.phx_ref();
    watcher.diff_where("alice's join", |d| refs(&d["joins"], "alice") == [alice_ref.clone()]);
    (watcher, alice)
}

/// The watcher gets alice's leave (her meta as tracked, no joins), and she is gone from
/// the endpoint's list.
fn assert_alice_left(server: &Server, watcher: &mut Member, alice_ref: &str) {
    let diff = watcher.diff_where("alice's leave", |d| d["leaves"].get("alice").is_some());
    assert_eq!(diff["leaves"], json!({"alice": {"metas": [{"status": "online", "phx_ref": alice_ref}]}}));
    assert_eq!(diff["joins"], json!({}));
    assert_eq!(server.endpoint.presence().list(&watcher.topic), json!({}), "nobody is left on the topic");
}

// ---------------------------------------------------------------------------------------
// Shapes: P89, P90, P91.
// ---------------------------------------------------------------------------------------

#[test]
fn presence_state_maps_each_key_to_its_metas_with_a_16_character_phx_ref() {
    // P89, P90
    let (server, _) = presence_server();
    let topic = "presence:state";
    let alice = Member::tracking(&server, topic, "alice", json!({"status": "away"}));
    assert_eq!(alice.state, json!({}), "alice pushed the state before tracking herself");
    let alice_ref = alice.phx_ref();
    assert!(is_url_safe_ref(&alice_ref), "phx_ref {alice_ref:?} is 16 url-safe base64 characters");

    let bob = Member::tracking(&server, topic, "bob", json!({}));
    assert_eq!(bob.state, json!({"alice": {"metas": [{"status": "away", "phx_ref": alice_ref}]}}));
    let bob_ref = bob.phx_ref();
    assert!(is_url_safe_ref(&bob_ref));
    assert_ne!(bob_ref, alice_ref, "refs are unique");
}

#[test]
fn the_joiner_and_the_others_get_a_diff_with_both_joins_and_leaves() {
    // P91
    let (server, _) = presence_server();
    let topic = "presence:diff";
    let mut alice = Member::tracking(&server, topic, "alice", json!({"status": "online"}));
    let (msg, own) = alice.next_diff();
    assert_eq!(
        own,
        json!({"joins": {"alice": {"metas": [{"status": "online", "phx_ref": alice.phx_ref()}]}}, "leaves": {}})
    );
    assert_eq!(msg.join_ref, None, "presence_diff is a broadcast, not a push");
    assert_eq!(msg.msg_ref, None);

    let mut bob = Member::tracking(&server, topic, "bob", json!({"status": "busy"}));
    let expected = json!({"joins": {"bob": {"metas": [{"status": "busy", "phx_ref": bob.phx_ref()}]}}, "leaves": {}});
    assert_eq!(bob.next_diff().1, expected, "the joiner sees itself arrive");
    assert_eq!(alice.next_diff().1, expected, "the others see the joiner arrive");
}

// ---------------------------------------------------------------------------------------
// Update: P92.
// ---------------------------------------------------------------------------------------

#[test]
fn an_update_is_one_diff_with_the_new_meta_in_joins_and_the_old_in_leaves() {
    // P92
    let (server, _) = presence_server();
    let topic = "presence:update";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    let old_ref = alice.phx_ref();
    let sub = server.endpoint.subscribe(topic);

    let reply = alice.push("update", json!({"meta": {"status": "busy"}}));
    assert_eq!(reply.status, "ok", "{reply:?}");
    let new_ref = json_of(&reply.response)["phx_ref"].as_str().unwrap().to_owned();
    assert!(is_url_safe_ref(&new_ref));
    assert_ne!(new_ref, old_ref);

    let expected = json!({
        "joins": {"alice": {"metas": [{"status": "busy", "phx_ref": new_ref, "phx_ref_prev": old_ref}]}},
        "leaves": {"alice": {"metas": [{"status": "online", "phx_ref": old_ref}]}},
    });
    assert_eq!(sub_diff(&sub), expected);
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(200)).err(),
        Some(phx_channels::RecvTimeoutError::Timeout),
        "the update is one diff"
    );
    assert_eq!(watcher.next_diff().1, expected, "clients get that same diff");
    assert_eq!(
        server.endpoint.presence().list(topic),
        json!({"alice": {"metas": [{"status": "busy", "phx_ref": new_ref, "phx_ref_prev": old_ref}]}})
    );
}

#[test]
fn updating_a_key_the_channel_does_not_track_is_no_presence() {
    let (server, _) = presence_server();
    let mut alice = Member::tracking(&server, "presence:noupdate", "alice", json!({}));
    let reply = alice.push("update", json!({"key": "bob", "meta": {}}));
    assert_eq!(reply.status, "error");
    assert_eq!(json_of(&reply.response), json!({"error": format!("{:?}", PresenceError::NoPresence)}));
}

// ---------------------------------------------------------------------------------------
// Several trackings: P89.
// ---------------------------------------------------------------------------------------

#[test]
fn tracking_the_same_key_twice_from_one_channel_is_already_tracked() {
    // P89
    let (server, log) = presence_server();
    let topic = "presence:twice";
    let mut alice = Member::tracking(&server, topic, "alice", json!({}));
    let reply = alice.push("track", json!({"key": "alice", "meta": {"again": true}}));
    assert_eq!(reply.status, "error", "{reply:?}");
    let results = log.results(topic, "alice");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], Ok(alice.phx_ref()));
    assert_eq!(results[1], Err(PresenceError::AlreadyTracked { topic: topic.into(), key: "alice".into() }));
    assert_eq!(
        server.endpoint.presence().list(topic),
        json!({"alice": {"metas": [{"phx_ref": alice.phx_ref()}]}}),
        "the first tracking is untouched"
    );
    // The same channel may track another key.
    assert_eq!(alice.push("track", json!({"key": "alias", "meta": {}})).status, "ok");
}

#[test]
fn two_channels_tracking_the_same_key_give_one_key_with_two_metas() {
    // P89, P90
    let (server, _) = presence_server();
    let topic = "presence:devices";
    let mut phone = Member::tracking(&server, topic, "alice", json!({"device": "phone"}));
    let laptop = Member::tracking(&server, topic, "alice", json!({"device": "laptop"}));
    assert_ne!(phone.phx_ref(), laptop.phx_ref());
    let expected = json!({"alice": {"metas": [
        {"device": "phone", "phx_ref": phone.phx_ref()},
        {"device": "laptop", "phx_ref": laptop.phx_ref()},
    ]}});
    assert_eq!(server.endpoint.presence().list(topic), expected);
    let watcher = Member::watching(&server, topic);
    assert_eq!(watcher.state, expected, "presence_state groups them under one key");

    assert_eq!(phone.client.leave(topic).unwrap().status, "ok");
    assert!(
        wait_until(Duration::from_secs(5), || refs(&server.endpoint.presence().list(topic), "alice").len() == 1),
        "the phone's meta goes away"
    );
    assert_eq!(
        server.endpoint.presence().list(topic),
        json!({"alice": {"metas": [{"device": "laptop", "phx_ref": laptop.phx_ref()}]}}),
        "the key stays with the laptop's meta"
    );
}

// ---------------------------------------------------------------------------------------
// Cleanup on every way a channel ends: P93.
// ---------------------------------------------------------------------------------------

#[test]
fn leaving_removes_the_presence_with_a_leaves_diff() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:leave";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    assert_eq!(alice.client.leave(topic).unwrap().status, "ok");
    assert_alice_left(&server, &mut watcher, &alice.phx_ref());
}

#[test]
fn a_graceful_stop_result_removes_the_presence_with_a_leaves_diff() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:stop";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    alice.client.push_async(topic, "stop", json!({"reason": "normal"})).unwrap();
    alice.client.recv_event(topic, "phx_close").expect("phx_close");
    assert_alice_left(&server, &mut watcher, &alice.phx_ref());
}

#[test]
fn an_error_stop_result_removes_the_presence_with_a_leaves_diff() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:stop_error";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    alice.client.push_async(topic, "stop", json!({"reason": "error:bad"})).unwrap();
    alice.client.recv_event(topic, "phx_error").expect("phx_error");
    assert_alice_left(&server, &mut watcher, &alice.phx_ref());
}

#[test]
fn a_panic_removes_the_presence_with_a_leaves_diff() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:panic";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    alice.client.push_async(topic, "boom", json!({})).unwrap();
    alice.client.recv_event(topic, "phx_error").expect("phx_error");
    assert_alice_left(&server, &mut watcher, &alice.phx_ref());
}

#[test]
fn the_connection_dropping_removes_the_presence_with_a_leaves_diff() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:dropped";
    let (mut watcher, alice) = alice_watched(&server, topic);
    let alice_ref = alice.phx_ref();
    drop(alice); // the TCP connection closes without a WebSocket close frame
    assert_alice_left(&server, &mut watcher, &alice_ref);
}

#[test]
fn server_shutdown_removes_every_presence() {
    // P93
    let (server, _) = presence_server();
    let topic = "presence:shutdown";
    let (_watcher, alice) = alice_watched(&server, topic);
    let bob = Member::tracking(&server, topic, "bob", json!({}));
    let sub = server.endpoint.subscribe(topic);
    let before = server.endpoint.presence().list(topic);
    assert_eq!(before.as_object().unwrap().keys().collect::<Vec<_>>(), ["alice", "bob"]);

    server.endpoint.shutdown();
    assert_eq!(server.endpoint.presence().list(topic), json!({}), "nothing is left after shutdown");
    // The clients are gone, but a plain subscriber still hears everyone leave.
    let mut left = BTreeSet::new();
    while let Ok(broadcast) = sub.try_recv() {
        let diff = checked_diff(&json_of(&broadcast.payload));
        left.extend(diff["leaves"].as_object().unwrap().keys().cloned());
    }
    assert_eq!(left, BTreeSet::from(["alice".to_owned(), "bob".to_owned()]), "leaves before shutdown returned");
    drop((alice, bob));
}

#[test]
fn a_duplicate_join_removes_the_old_channels_presence() {
    // P93, PROTOCOL.md 5.4: the old channel is ended without terminate.
    let (server, _) = presence_server();
    let topic = "presence:duplicate";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    let reply = alice.client.join(topic, json!({"key": "alice", "meta": {"status": "again"}})).unwrap();
    assert_eq!(reply.status, "ok");
    let again = alice.client.recv_event(topic, "ready").expect("the new channel is ready");
    let new_ref = json_of(&again.payload)["phx_ref"].as_str().unwrap().to_owned();
    let diff = watcher.diff_where("the old channel's leave", |d| d["leaves"].get("alice").is_some());
    assert_eq!(diff["leaves"], json!({"alice": {"metas": [{"status": "online", "phx_ref": alice.phx_ref()}]}}));
    assert!(
        wait_until(Duration::from_secs(5), || refs(&server.endpoint.presence().list(topic), "alice")
            == [new_ref.clone()]),
        "only the new channel's meta is left: {}",
        server.endpoint.presence().list(topic)
    );
}

#[test]
fn untrack_removes_the_presence_and_the_channel_lives_on() {
    // P93 (untrack)
    let (server, _) = presence_server();
    let topic = "presence:untrack";
    let (mut watcher, mut alice) = alice_watched(&server, topic);
    assert_eq!(alice.push("untrack", json!({})).status, "ok");
    assert_alice_left(&server, &mut watcher, &alice.phx_ref());

    let sub = server.endpoint.subscribe(topic);
    assert_eq!(alice.push("untrack", json!({})).status, "ok", "untrack is idempotent");
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(150)).err(),
        Some(phx_channels::RecvTimeoutError::Timeout),
        "untracking nothing changes nothing"
    );
    assert_alive(&mut alice.client);
    assert_eq!(json_of(&alice.push("list", json!({})).response), json!({}));
}

#[test]
fn a_join_refused_or_crashed_after_tracking_leaves_no_presence_behind() {
    // P93: the join's thread ends, so what it tracked goes.
    let (server, log) = presence_server();
    for (topic, ending) in [("presence:refused", "refuse"), ("presence:join_panic", "panic")] {
        let sub = server.endpoint.subscribe(topic);
        let mut client = server.client();
        let reply = client.join(topic, json!({"key": "ghost", "track_in_join": true, ending: true})).unwrap();
        assert_eq!(reply.status, "error", "{ending}: {reply:?}");
        assert!(log.results(topic, "ghost")[0].is_ok(), "the join tracked before ending");
        assert!(
            wait_until(Duration::from_secs(5), || server.endpoint.presence().list(topic) == json!({})),
            "{ending}: the presence tracked in join goes away"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = false;
        while !left && Instant::now() < deadline {
            left = sub_diff(&sub)["leaves"].get("ghost").is_some();
        }
        assert!(left, "{ending}: subscribers hear the ghost leave");
    }
}

// ---------------------------------------------------------------------------------------
// Another topic, bursts, the endpoint's list.
// ---------------------------------------------------------------------------------------

#[test]
fn track_topic_tracks_on_another_topic_until_the_channel_ends() {
    // P89, P93
    let (server, log) = presence_server();
    let (home, other) = ("presence:home", "presence:elsewhere");
    let mut watcher = Member::watching(&server, other);
    let mut alice = Member::join(&server, home, json!({"track": false}));
    let reply = alice.push("track_topic", json!({"topic": other, "key": "alice", "meta": {"from": home}}));
    assert_eq!(reply.status, "ok", "{reply:?}");
    let alice_ref = json_of(&reply.response)["phx_ref"].as_str().unwrap().to_owned();
    assert_eq!(log.results(other, "alice"), [Ok(alice_ref.clone())]);

    let joined = json!({"alice": {"metas": [{"from": home, "phx_ref": alice_ref}]}});
    assert_eq!(watcher.next_diff().1, json!({"joins": joined, "leaves": {}}));
    assert_eq!(server.endpoint.presence().list(other), joined);
    assert_eq!(server.endpoint.presence().list(home), json!({}), "nothing is tracked on the channel's own topic");
    assert_eq!(
        alice.push("track_topic", json!({"topic": other, "key": "alice"})).status,
        "error",
        "the same key on that topic is already tracked"
    );

    assert_eq!(alice.client.leave(home).unwrap().status, "ok");
    let diff = watcher.diff_where("alice's leave", |d| d["leaves"].get("alice").is_some());
    assert_eq!(diff, json!({"joins": {}, "leaves": joined}));
    assert_eq!(server.endpoint.presence().list(other), json!({}));
}

#[test]
fn a_burst_of_50_joins_arrives_as_a_few_diffs() {
    // P91: diffs are batched per burst of changes, not sent per entry.
    const N: usize = 50;
    let (server, _) = presence_server();
    let topic = "presence:burst";
    let mut watcher = Member::watching(&server, topic);
    let mut clients: Vec<Client> = (0..N).map(|_| server.client()).collect();
    // All joins go out before any reply is read.
    for (i, client) in clients.iter_mut().enumerate() {
        let payload = json!({"key": format!("user{i}"), "meta": {"n": i}});
        let join = Message {
            join_ref: Some("1".into()),
            msg_ref: Some("1".into()),
            topic: topic.into(),
            event: PHX_JOIN.into(),
            payload: payload.into(),
        };
        client.send(&join).unwrap();
    }
    let mut joined = BTreeSet::new();
    let mut diffs = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while joined.len() < N && Instant::now() < deadline {
        let (_, diff) = watcher.next_diff();
        diffs += 1;
        assert_eq!(diff["leaves"], json!({}), "{diff}");
        joined.extend(diff["joins"].as_object().unwrap().keys().cloned());
    }
    let expected: BTreeSet<String> = (0..N).map(|i| format!("user{i}")).collect();
    assert_eq!(joined, expected, "every join reached the watcher");
    assert!(diffs < 10, "{N} joins came as {diffs} diffs; expected a few, one per burst");
    for client in &mut clients {
        assert_eq!(client.wait_reply("1").unwrap().status, "ok");
    }
}

#[test]
fn the_endpoint_lists_a_topic_from_outside_any_channel() {
    // P90
    let (server, _) = presence_server();
    let topic = "presence:outside";
    let alice = Member::tracking(&server, topic, "alice", json!({"status": "away"}));
    let bob = Member::tracking(&server, topic, "bob", json!({"device": "phone"}));
    let expected = json!({
        "alice": {"metas": [{"status": "away", "phx_ref": alice.phx_ref()}]},
        "bob": {"metas": [{"device": "phone", "phx_ref": bob.phx_ref()}]},
    });
    assert_eq!(server.endpoint.presence().list(topic), expected);
    // From any thread, with a clone of the endpoint.
    let endpoint = server.endpoint.clone();
    let listed = std::thread::spawn(move || endpoint.presence().list("presence:outside")).join().unwrap();
    assert_eq!(listed, expected);
    assert_eq!(server.endpoint.presence().list("presence:nobody"), json!({}), "an empty topic lists as {{}}");
}

#[test]
fn the_parity_fixture_tracks_a_null_or_missing_status_as_online() {
    // The fixture tracks the meta `{"status": S or "online"}`; a null S counts as none.
    init_logs();
    let endpoint = parity::start("127.0.0.1:0").expect("the fixture starts");
    let cases = [
        ("alice", json!({"user": "alice", "status": null}), "online"),
        ("bob", json!({"user": "bob"}), "online"),
        ("carol", json!({"user": "carol", "status": "away"}), "away"),
    ];
    for (user, payload, status) in cases {
        // A topic each, so the joiner's first diff is its own arrival.
        let topic = format!("presence:fixture_{user}");
        let mut client = Client::builder(endpoint.local_addr().to_string()).path("/bench").connect().unwrap();
        assert_eq!(client.join(&topic, payload.clone()).unwrap().status, "ok", "join with {payload}");
        let diff = checked_diff(&json_of(&client.recv_event(&topic, PRESENCE_DIFF).expect("a presence_diff").payload));
        let metas = diff["joins"][user]["metas"].as_array().unwrap_or_else(|| panic!("{user} joins: {diff}")).clone();
        let [mut meta] = <[Value; 1]>::try_from(metas).unwrap_or_else(|metas| panic!("one meta: {metas:?}"));
        assert!(meta.as_object_mut().unwrap().remove("phx_ref").is_some_and(|r| r.is_string()), "{diff}");
        assert_eq!(meta, json!({ "status": status }), "joined with {payload}");
    }
    endpoint.shutdown();
}
