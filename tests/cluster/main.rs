//! Scale-out over Redis (feature `redis`): two or three parity fixtures, each a process
//! of its own, form a cluster on one Redis, and clients of the crate's blocking client
//! check over real sockets that broadcasts, socket-id disconnects and presence cross
//! nodes, that a killed node's presences leave, that a Redis restart is survived, and
//! (`long_poll.rs`) that a long-poll session is usable through any node.
//! A few tests run a node inside the test process too, to read its counters and call
//! the endpoint API (`direct_broadcast`, `local_broadcast`).
//!
//! Needs `PHX_TEST_REDIS_URL` (see `redis.rs`; `scripts/test.sh` starts a Redis) and the
//! parity binary built with the feature: `cargo build --features redis --example parity`.

// For `wait_until`, the polling wait every integration test uses.
#[allow(dead_code)]
#[path = "../common/events.rs"]
mod events;
// The raw HTTP and long-poll clients of the other tests.
#[allow(dead_code)]
#[path = "../common/http.rs"]
mod http;
mod long_poll;
#[allow(dead_code)]
#[path = "../common/long_poll.rs"]
mod lp;
mod nodes;
mod redis;

use events::wait_until;
use nodes::{Node, join_keeping_alive, keep_waiting, keep_waiting_close, push_keeping_alive, unique};
use phx_channels::client::{Client, ClientError};
use phx_channels::{Channel, Endpoint, Error, JoinResult, LongPollSettings, Payload, Socket, UserSocket};
use redis::{OwnRedis, free_port, shared_redis};
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The tests that start endpoints in this process run one at a time (one of them
/// counts this process's cluster threads).
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// A fixture takes a silent node for gone after 3 s (FIXTURE.md: at most 5 s).
const DOWN_AFTER: Duration = Duration::from_secs(3);

fn sentinel() -> Value {
    json!({"end": true})
}

/// The payloads of the `broadcast` events `client` receives on `topic`, in order, up
/// to the sentinel.
fn broadcasts_until_sentinel(client: &mut Client, topic: &str) -> Vec<Payload> {
    let mut got = Vec::new();
    loop {
        let msg = client.recv_event(topic, "broadcast").unwrap_or_else(|err| panic!("after {got:?}: {err}"));
        if msg.payload.as_json() == Some(&sentinel()) {
            return got;
        }
        got.push(msg.payload);
    }
}

/// Two nodes on the shared Redis, `<tag>-a` and `<tag>-b` (or a skip, see `shared_redis`).
fn two_nodes(test: &str, tag: &str) -> Option<(String, Node, Node)> {
    let redis = shared_redis(test)?;
    let (a, b) = (Node::start(&redis, &unique(&format!("{tag}-a"))), Node::start(&redis, &unique(&format!("{tag}-b"))));
    Some((redis, a, b))
}

/// `presence_state` of a fresh presence member `user` on `node`'s `topic`.
fn presence_state(node: &Node, topic: &str, user: &str) -> Value {
    let mut client = node.bench(Duration::from_secs(5));
    assert_eq!(client.join(topic, json!({"user": user})).unwrap().status, "ok");
    let state = client.recv_event(topic, "presence_state").unwrap().payload;
    state.as_json().cloned().unwrap()
}

fn keys(state: &Value) -> Vec<String> {
    state.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Waits until a fresh member on `node` sees exactly `expected` keys (besides its own
/// `watcher`), joining again every 100 ms; returns the state.
fn wait_for_keys(node: &Node, topic: &str, expected: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let mut n = 0;
    loop {
        n += 1;
        let state = presence_state(node, topic, &format!("watcher{n}"));
        let seen: Vec<String> = keys(&state).into_iter().filter(|k| !k.starts_with("watcher")).collect();
        if seen == expected {
            return state;
        }
        assert!(Instant::now() < deadline, "{} still sees {seen:?}, not {expected:?}", node.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next `presence_diff` on `topic` whose joins or leaves (`side`) hold `key`.
fn diff_with(client: &mut Client, topic: &str, side: &str, key: &str) -> Value {
    loop {
        let msg = client.recv_event(topic, "presence_diff").unwrap_or_else(|err| panic!("{side} {key}: {err}"));
        let diff = msg.payload.as_json().cloned().unwrap();
        if diff[side].get(key).is_some() {
            return diff;
        }
    }
}

#[test]
fn broadcasts_reach_every_node_once_in_order_and_never_echo() {
    let Some(redis) = shared_redis("broadcasts_reach_every_node_once_in_order_and_never_echo") else { return };
    let nodes: Vec<Node> =
        ["a", "b", "c"].iter().map(|n| Node::start(&redis, &unique(&format!("order-{n}")))).collect();
    let topic = format!("bench:{}", unique("order"));
    let mut clients: Vec<Client> = (0..4).map(|i| nodes[i % 3].bench(Duration::from_secs(5))).collect();
    for client in &mut clients {
        assert_eq!(client.join(&topic, json!({})).unwrap().status, "ok");
    }
    for i in 0..50 {
        clients[0].push(&topic, "broadcast", json!({"i": i})).unwrap();
    }
    clients[0].push(&topic, "broadcast", sentinel()).unwrap();
    let expected: Vec<Payload> = (0..50).map(|i| Payload::Json(json!({"i": i}))).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(broadcasts_until_sentinel(client, &topic), expected, "client {i} on node {}", i % 3);
    }
    // Nothing arrives twice, not even later.
    let mut late = nodes[1].bench(Duration::from_secs(1));
    late.join(&topic, json!({})).unwrap();
    clients[0].push(&topic, "broadcast", json!({"last": true})).unwrap();
    assert_eq!(late.recv_event(&topic, "broadcast").unwrap().payload, Payload::Json(json!({"last": true})));
    assert!(matches!(late.recv_event(&topic, "broadcast"), Err(ClientError::Timeout)));
}

#[test]
fn broadcast_from_skips_the_sender_only() {
    let Some((_, a, b)) = two_nodes("broadcast_from_skips_the_sender_only", "from") else { return };
    let topic = format!("bench:{}", unique("from"));
    let mut clients =
        [a.bench(Duration::from_secs(5)), a.bench(Duration::from_secs(5)), b.bench(Duration::from_secs(5))];
    for client in &mut clients {
        client.join(&topic, json!({})).unwrap();
    }
    clients[0].push(&topic, "broadcast_from", json!({"x": 1})).unwrap();
    clients[0].push(&topic, "broadcast", sentinel()).unwrap();
    assert_eq!(broadcasts_until_sentinel(&mut clients[0], &topic), Vec::<Payload>::new());
    for client in &mut clients[1..] {
        assert_eq!(broadcasts_until_sentinel(client, &topic), vec![Payload::Json(json!({"x": 1}))]);
    }
}

#[test]
fn intercepted_events_go_through_handle_out_and_binary_payloads_cross() {
    let Some((_, a, b)) = two_nodes("intercepted_events_cross", "icpt") else {
        return;
    };
    // room:* intercepts new_msg; its handle_out adds "transport".
    let room = format!("room:{}", unique("icpt"));
    let mut bob = b.user(&unique("icpt-bob"));
    join_keeping_alive(&mut bob, &room, json!({}));
    let mut alice = a.user(&unique("icpt-alice"));
    join_keeping_alive(&mut alice, &room, json!({}));
    assert_eq!(push_keeping_alive(&mut alice, &room, "new_msg", json!({"body": "hi"})).status, "ok");
    let msg = keep_waiting(&mut bob, &room, "new_msg", Duration::from_secs(5));
    assert_eq!(msg.payload, Payload::Json(json!({"body": "hi", "transport": ":websocket"})));
    // bench_icpt:* intercepts broadcast and pushes it unchanged; bench:* is fastlaned.
    for prefix in ["bench_icpt", "bench"] {
        let topic = format!("{prefix}:{}", unique("binary"));
        let (mut sender, mut receiver) = (a.bench(Duration::from_secs(5)), b.bench(Duration::from_secs(5)));
        sender.join(&topic, json!({})).unwrap();
        receiver.join(&topic, json!({})).unwrap();
        sender.push(&topic, "broadcast", vec![0u8, 1, 2, 255]).unwrap();
        let msg = receiver.recv_event(&topic, "broadcast").unwrap();
        assert_eq!(msg.payload, Payload::from(vec![0u8, 1, 2, 255]), "{prefix}");
        // A push from handle_out carries the channel's join ref; a fastlane broadcast none.
        let pushed = msg.join_ref.as_deref() == receiver.join_ref(&topic);
        assert_eq!(pushed, prefix == "bench_icpt", "{prefix}: {msg:?}");
    }
}

#[test]
fn a_socket_id_disconnect_closes_that_id_on_every_node() {
    let Some((_, a, b)) = two_nodes("a_socket_id_disconnect_closes_that_id_on_every_node", "dc") else { return };
    let user = unique("dc-user");
    let mut on_b = b.user(&user);
    let mut on_a = a.user(&user);
    let room = format!("room:{}", unique("dc"));
    let mut admin = a.user(&unique("dc-admin"));
    join_keeping_alive(&mut admin, &room, json!({}));
    assert_eq!(push_keeping_alive(&mut admin, &room, "disconnect_user", json!({"user_id": user})).status, "ok");
    // 1001 is the disconnect close; an idle close would be 1002.
    assert_eq!(keep_waiting_close(&mut on_b, Duration::from_secs(5)), Some(1001), "closed on the other node");
    assert_eq!(keep_waiting_close(&mut on_a, Duration::from_secs(5)), Some(1001), "closed on the same node");
}

#[test]
fn presence_replicates_lists_agree_and_a_late_node_gets_the_full_state() {
    let Some((redis, a, b)) = two_nodes("presence_replicates", "pres") else {
        return;
    };
    let topic = format!("presence:{}", unique("pres"));
    let mut watcher = b.bench(Duration::from_secs(5));
    watcher.join(&topic, json!({"user": "watcher0"})).unwrap();
    let mut alice = a.bench(Duration::from_secs(5));
    alice.join(&topic, json!({"user": "alice", "status": "away"})).unwrap();
    // The diff on b holds alice once: a's own presence_diff is a local broadcast and
    // does not cross (b makes its own from the replicated change).
    let diff = diff_with(&mut watcher, &topic, "joins", "alice");
    assert_eq!(diff["joins"]["alice"]["metas"][0]["status"], "away");
    let mut bob = b.bench(Duration::from_secs(5));
    bob.join(&topic, json!({"user": "bob"})).unwrap();
    alice.push(&topic, "update_status", json!({"status": "busy"})).unwrap();
    let update = diff_with(&mut watcher, &topic, "joins", "alice");
    assert_eq!(update["joins"]["alice"]["metas"][0]["status"], "busy");
    assert_eq!(update["leaves"]["alice"]["metas"][0]["status"], "away");
    let mut counting = b.bench(Duration::from_millis(500));
    counting.join(&topic, json!({"user": "watcher-count"})).unwrap();
    alice.push(&topic, "update_status", json!({"status": "back"})).unwrap();
    diff_with(&mut counting, &topic, "joins", "alice");
    let again = std::iter::from_fn(|| counting.recv_event(&topic, "presence_diff").ok())
        .filter(|m| m.payload.as_json().unwrap()["joins"].get("alice").is_some())
        .count();
    assert_eq!(again, 0, "one diff per change on each node");

    // Every node lists the topic the same way, with the same refs.
    let on_a = wait_for_keys(&a, &topic, &["alice", "bob"], Duration::from_secs(2));
    let on_b = wait_for_keys(&b, &topic, &["alice", "bob"], Duration::from_secs(2));
    assert_eq!(on_a["alice"], on_b["alice"]);
    assert_eq!(on_a["bob"], on_b["bob"]);
    // A node that starts now receives the whole state.
    let c = Node::start(&redis, &unique("pres-c"));
    let on_c = wait_for_keys(&c, &topic, &["alice", "bob"], Duration::from_secs(2));
    assert_eq!(on_c["alice"], on_a["alice"]);
    assert_eq!(on_c["bob"]["metas"][0]["status"], "online");
    // Leaving is replicated too.
    alice.leave(&topic).unwrap();
    wait_for_keys(&c, &topic, &["bob"], Duration::from_secs(2));
    wait_for_keys(&b, &topic, &["bob"], Duration::from_secs(2));
}

/// `alice` tracked on node `a` (on `presence:<tag>`), and a member on node `b` that has
/// seen her join: the topic, that member's client and alice's.
fn alice_watched(a: &Node, b: &Node, tag: &str) -> (String, Client, Client) {
    let topic = format!("presence:{}", unique(tag));
    let mut watcher = b.bench(Duration::from_secs(10));
    watcher.join(&topic, json!({"user": "watcher"})).unwrap();
    let mut alice = a.bench(Duration::from_secs(5));
    alice.join(&topic, json!({"user": "alice"})).unwrap();
    diff_with(&mut watcher, &topic, "joins", "alice");
    (topic, watcher, alice)
}

#[test]
fn a_killed_node_leaves_presence_within_the_down_period_and_is_merged_again_when_back() {
    let Some(redis) = shared_redis("a_killed_node_leaves_presence_within_the_down_period") else { return };
    let name = unique("kill-a");
    let (mut a, b) = (Node::start(&redis, &name), Node::start(&redis, &unique("kill-b")));
    let (topic, mut watcher, _alice) = alice_watched(&a, &b, "kill");
    let killed = Instant::now();
    a.kill();
    diff_with(&mut watcher, &topic, "leaves", "alice");
    let took = killed.elapsed();
    assert!(took >= DOWN_AFTER - Duration::from_millis(700), "left after {took:?}, before the down period");
    assert!(took <= DOWN_AFTER + Duration::from_secs(2), "left after {took:?}");
    eprintln!("a SIGKILLed node's presence left the others {took:?} after the kill");
    // The same node, started again, is merged again.
    let a = Node::start(&redis, &name);
    let mut carol = a.bench(Duration::from_secs(5));
    carol.join(&topic, json!({"user": "carol"})).unwrap();
    diff_with(&mut watcher, &topic, "joins", "carol");
    wait_for_keys(&a, &topic, &["carol"], Duration::from_secs(2));
}

#[test]
fn a_frozen_node_is_taken_for_gone_and_merged_again_when_it_wakes() {
    let Some((_, a, b)) = two_nodes("a_frozen_node_is_taken_for_gone", "frozen") else { return };
    let (topic, mut watcher, _alice) = alice_watched(&a, &b, "frozen");
    // A node that stops (a long pause, a cut network) stops heartbeating.
    a.freeze();
    let frozen = Instant::now();
    diff_with(&mut watcher, &topic, "leaves", "alice");
    assert!(frozen.elapsed() >= DOWN_AFTER - Duration::from_millis(700), "left after {:?}", frozen.elapsed());
    a.thaw();
    let thawed = Instant::now();
    diff_with(&mut watcher, &topic, "joins", "alice");
    eprintln!(
        "a frozen node's presences left after {:?}, came back {:?} after it woke",
        thawed - frozen,
        thawed.elapsed()
    );
    wait_for_keys(&a, &topic, &["alice"], Duration::from_secs(3));
}

#[test]
fn a_redis_restart_mid_run_loses_nothing_locally_and_cross_node_traffic_resumes() {
    if shared_redis("a_redis_restart_mid_run").is_none() {
        return;
    }
    let mut redis = OwnRedis::start();
    let (a, b) = (Node::start(&redis.url(), &unique("restart-a")), Node::start(&redis.url(), &unique("restart-b")));
    let topic = format!("bench:{}", unique("restart"));
    let presence = format!("presence:{}", unique("restart"));
    let (mut sender, mut local, mut remote) =
        (a.bench(Duration::from_secs(5)), a.bench(Duration::from_secs(5)), b.bench(Duration::from_millis(200)));
    for client in [&mut sender, &mut local, &mut remote] {
        client.join(&topic, json!({})).unwrap();
    }
    sender.push(&topic, "broadcast", json!({"before": true})).unwrap();
    assert_eq!(remote.recv_event(&topic, "broadcast").unwrap().payload, Payload::Json(json!({"before": true})));
    let mut alice = a.bench(Duration::from_secs(5));
    alice.join(&presence, json!({"user": "alice"})).unwrap();
    wait_for_keys(&b, &presence, &["alice"], Duration::from_secs(2));

    redis.halt();
    // Local delivery goes on, and publishing does not block the channel.
    for i in 0..20 {
        let started = Instant::now();
        sender.push(&topic, "broadcast", json!({"during": i})).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "a broadcast took {:?}", started.elapsed());
    }
    sender.push(&topic, "broadcast", sentinel()).unwrap();
    let mut expected: Vec<Payload> = vec![Payload::Json(json!({"before": true}))];
    expected.extend((0..20).map(|i| Payload::Json(json!({"during": i}))));
    assert_eq!(broadcasts_until_sentinel(&mut local, &topic), expected);
    let mut bob = a.bench(Duration::from_secs(5));
    bob.join(&presence, json!({"user": "bob"})).unwrap();
    std::thread::sleep(Duration::from_millis(500));

    redis.resume();
    let back = Instant::now();
    let mut probe = 0;
    let resumed = wait_until(Duration::from_secs(10), || {
        probe += 1;
        sender.push(&topic, "broadcast", json!({"probe": probe})).unwrap();
        std::iter::from_fn(|| remote.recv_event(&topic, "broadcast").ok())
            .any(|m| m.payload.as_json().is_some_and(|p| p.get("probe").is_some()))
    });
    assert!(resumed, "cross-node broadcasts did not resume");
    eprintln!("cross-node broadcasts resumed {:?} after Redis came back", back.elapsed());
    // Presence is synced again: bob, tracked while Redis was away, reaches b.
    wait_for_keys(&b, &presence, &["alice", "bob"], Duration::from_secs(5));
    eprintln!("presence re-synced {:?} after Redis came back", back.elapsed());
}

/// The channel of nodes inside the test process: it joins, and tracks the join
/// payload's `user` if it has one.
struct Member;

impl Channel for Member {
    fn join(&mut self, _topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        if let Some(user) = payload.get("user").and_then(Value::as_str) {
            socket.track(user, json!({})).unwrap();
        }
        Ok(Payload::empty())
    }
}

/// For a test that starts endpoints in this process: the shared Redis's URL (or a
/// skip, see `shared_redis`), and the lock that keeps such tests one at a time.
fn in_process_test(test: &str) -> Option<(String, MutexGuard<'static, ()>)> {
    let redis = shared_redis(test)?;
    Some((redis, IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner())))
}

/// An endpoint in this process, in the cluster on `redis` as node `name`.
fn in_process(redis: &str, name: &str) -> Endpoint {
    Endpoint::builder()
        .bind("127.0.0.1:0")
        .socket("/socket", UserSocket::new().channel("bench:*", |_| Member))
        .node_name(name)
        .redis(redis)
        .node_down_after(DOWN_AFTER)
        .start()
        .unwrap()
}

#[test]
fn a_cluster_node_with_long_poll_needs_a_secret_key_base() {
    let Some((redis, _alone)) = in_process_test("a_cluster_node_with_long_poll_needs_a_secret_key_base") else {
        return;
    };
    let builder = || {
        let socket = UserSocket::new().channel("bench:*", |_| Member).long_poll(LongPollSettings::new());
        Endpoint::builder().bind("127.0.0.1:0").socket("/socket", socket).node_name(unique("secret")).redis(&redis)
    };
    // A random secret per node would make every node's tokens unreadable to the others.
    match builder().start() {
        Err(Error::Config(message)) => assert!(message.contains("secret_key_base"), "{message}"),
        other => panic!("started without a shared secret: {:?}", other.map(|e| e.node_name().to_owned())),
    }
    let node = builder().secret_key_base("shared by every node").start().unwrap();
    node.shutdown();
}

#[test]
fn a_node_counts_the_long_poll_requests_it_forwards() {
    let Some((redis, _alone)) = in_process_test("a_node_counts_the_long_poll_requests_it_forwards") else { return };
    let node = |name: &str| {
        let socket = UserSocket::new().channel("bench:*", |_| Member).long_poll(LongPollSettings::new());
        Endpoint::builder()
            .bind("127.0.0.1:0")
            .socket("/socket", socket)
            .node_name(unique(name))
            .redis(&redis)
            .secret_key_base("shared by every node")
            .start()
            .unwrap()
    };
    let (a, b) = (node("count-a"), node("count-b"));
    let mut lp = lp::LongPoll::new(&a.local_addr().to_string(), "/socket/longpoll?vsn=2.0.0");
    lp.connect();
    lp.addr = b.local_addr().to_string();
    let heartbeat = lp::v2(None, "1", "phoenix", "heartbeat", json!({}));
    assert_eq!(lp.post(&heartbeat), json!({"status": 200}));
    let reply = lp.messages();
    assert_eq!((&reply[0][1], &reply[0][3]), (&json!("1"), &json!("phx_reply")), "{reply:?}");
    let (on_a, on_b) = (a.stats(), b.stats());
    assert_eq!((on_b.long_poll_forwarded, on_b.long_poll_forward_timeouts), (2, 0), "{on_b:?}");
    assert_eq!((on_a.long_poll_forwarded, on_a.long_poll_sessions, on_b.long_poll_sessions), (0, 1, 0), "{on_a:?}");
    b.shutdown();
    a.shutdown();
}

#[test]
fn start_returns_subscribed_and_direct_and_local_broadcasts_reach_only_their_nodes() {
    let Some((redis, _alone)) = in_process_test("start_returns_subscribed_and_direct_and_local_broadcasts") else {
        return;
    };
    let (b, c) = (Node::start(&redis, &unique("direct-b")), Node::start(&redis, &unique("direct-c")));
    let topic = format!("bench:{}", unique("direct"));
    let (mut on_b, mut on_c) = (b.bench(Duration::from_secs(5)), c.bench(Duration::from_secs(5)));
    on_b.join(&topic, json!({})).unwrap();
    on_c.join(&topic, json!({})).unwrap();
    let node = in_process(&redis, &unique("direct-n"));
    assert_eq!(node.node_name(), unique("direct-n"));
    // Right after start, a broadcast crosses.
    node.broadcast(&topic, "broadcast", json!({"first": true})).unwrap();
    node.pubsub().direct_broadcast(&b.name, &topic, "broadcast", json!({"only": "b"})).unwrap();
    node.local_broadcast(&topic, "broadcast", json!({"only": "here"})).unwrap();
    node.broadcast(&topic, "broadcast", sentinel()).unwrap();
    let first = Payload::Json(json!({"first": true}));
    assert_eq!(broadcasts_until_sentinel(&mut on_b, &topic), vec![first.clone(), Payload::Json(json!({"only": "b"}))]);
    assert_eq!(broadcasts_until_sentinel(&mut on_c, &topic), vec![first]);
    // The other way: b's broadcast reaches a plain subscription here.
    let subscription = node.subscribe(&topic);
    on_b.push(&topic, "broadcast", json!({"from": "b"})).unwrap();
    let got = subscription.recv_timeout(Duration::from_secs(5)).expect("b's broadcast");
    assert_eq!(got.payload, Payload::Json(json!({"from": "b"})));
    let stats = node.stats();
    assert_eq!((stats.redis_connected, stats.cluster_broadcasts_lost), (1, 0), "{stats:?}");
    assert!(stats.cluster_broadcasts_sent >= 3 && stats.cluster_broadcasts_received >= 1, "{stats:?}");
    node.shutdown();
}

#[test]
fn an_unreachable_redis_at_start_leaves_the_node_serving_locally_and_retrying() {
    let Some((_, _alone)) = in_process_test("an_unreachable_redis_at_start") else { return };
    let started = Instant::now();
    let node = in_process(&format!("redis://127.0.0.1:{}/", free_port()), &unique("unreachable"));
    assert!(started.elapsed() < Duration::from_secs(3), "start took {:?}", started.elapsed());
    let mut client = Client::builder(node.local_addr().to_string()).connect().unwrap();
    client.join("bench:local", json!({})).unwrap();
    node.broadcast("bench:local", "broadcast", json!({"x": 1})).unwrap();
    assert_eq!(client.recv_event("bench:local", "broadcast").unwrap().payload, Payload::Json(json!({"x": 1})));
    assert!(wait_until(Duration::from_secs(5), || node.stats().redis_reconnects >= 2), "{:?}", node.stats());
    let stats = node.stats();
    assert_eq!(stats.redis_connected, 0);
    assert!(stats.cluster_broadcasts_lost >= 1, "{stats:?}");
    node.shutdown();
}

#[test]
fn publishing_never_waits_for_a_hung_redis_and_the_node_reconnects() {
    let Some((_, _alone)) = in_process_test("publishing_never_waits_for_a_hung_redis") else { return };
    let redis = OwnRedis::start();
    let node = in_process(&redis.url(), &unique("hung"));
    assert_eq!(node.stats().redis_connected, 1);
    let subscription = node.subscribe("bench:hung");
    // A hung Redis keeps its connections open and answers nothing: a publisher that
    // waited for it would wait its I/O timeout (2 s) or, once the socket buffers are
    // full, for ever. 20,000 broadcasts of ~100 bytes are more than those buffers.
    redis.freeze();
    let mut slowest = Duration::ZERO;
    for i in 0..20_000 {
        let started = Instant::now();
        node.broadcast("bench:hung", "tick", json!({"i": i, "pad": "x".repeat(80)})).unwrap();
        slowest = slowest.max(started.elapsed());
        if i % 2_000 == 0 {
            while subscription.try_recv().is_ok() {}
        }
    }
    assert!(slowest < Duration::from_millis(1500), "the slowest of 20,000 broadcasts took {slowest:?}");
    assert!(wait_until(Duration::from_secs(10), || node.stats().cluster_broadcasts_lost > 0), "{:?}", node.stats());
    assert!(wait_until(Duration::from_secs(10), || node.stats().redis_connected == 0), "{:?}", node.stats());
    redis.thaw();
    assert!(wait_until(Duration::from_secs(10), || node.stats().redis_connected == 1), "{:?}", node.stats());
    // Cross-node traffic resumes: a node of the same Redis hears this one again.
    let other = in_process(&redis.url(), &unique("hung-other"));
    let heard = other.subscribe("bench:hung");
    node.broadcast("bench:hung", "tick", json!({"after": true})).unwrap();
    assert!(heard.recv_timeout(Duration::from_secs(5)).is_ok());
    eprintln!("the slowest of 20,000 broadcasts with Redis hung took {slowest:?}; {:?}", node.stats());
    other.shutdown();
    node.shutdown();
}

#[test]
fn a_remote_broadcast_is_encoded_once_per_wire_format_on_the_receiving_node() {
    let Some((redis, _alone)) = in_process_test("a_remote_broadcast_is_encoded_once") else { return };
    let b = Node::start(&redis, &unique("encode-b"));
    let node = in_process(&redis, &unique("encode-n"));
    let topic = format!("bench:{}", unique("encode"));
    let mut here: Vec<Client> = ["2.0.0", "2.0.0", "2.0.0", "1.0.0", "1.0.0"]
        .iter()
        .map(|vsn| Client::builder(node.local_addr().to_string()).vsn(Some(vsn)).connect().unwrap())
        .collect();
    for client in &mut here {
        client.join(&topic, json!({})).unwrap();
    }
    let mut sender = b.bench(Duration::from_secs(5));
    sender.join(&topic, json!({})).unwrap();
    let before = node.stats().broadcast_encodes;
    sender.push(&topic, "broadcast", json!({"x": 1})).unwrap();
    for client in &mut here {
        assert_eq!(client.recv_event(&topic, "broadcast").unwrap().payload, Payload::Json(json!({"x": 1})));
    }
    assert_eq!(node.stats().broadcast_encodes - before, 2, "one frame for V1, one for V2");
    node.shutdown();
}

#[test]
fn a_node_that_shuts_down_takes_its_presences_along_at_once() {
    let Some((redis, _alone)) = in_process_test("a_node_that_shuts_down_takes_its_presences_along") else { return };
    let b = Node::start(&redis, &unique("bye-b"));
    let topic = format!("bench:{}", unique("bye"));
    let mut watcher = b.bench(Duration::from_secs(5));
    watcher.join(&topic, json!({})).unwrap();
    let node = in_process(&redis, &unique("bye-n"));
    let mut alice = Client::builder(node.local_addr().to_string()).connect().unwrap();
    alice.join(&topic, json!({"user": "alice"})).unwrap();
    diff_with(&mut watcher, &topic, "joins", "alice");
    let stopped = Instant::now();
    node.shutdown();
    diff_with(&mut watcher, &topic, "leaves", "alice");
    assert!(stopped.elapsed() < DOWN_AFTER, "left after {:?}: not before the down period", stopped.elapsed());
}

/// This process's cluster threads (`phx-cluster-*`).
fn cluster_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    let names = tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok());
    names.filter(|name| name.starts_with("phx-cluster")).count()
}

/// This process's open TCP connections to `port` on the loopback.
fn connections_to(port: u16) -> usize {
    let ours: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| Some(link.to_str()?.strip_prefix("socket:[")?.trim_end_matches(']').to_owned()))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str())
                && fields.get(9).is_some_and(|inode| ours.iter().any(|o| o == inode))
        })
        .count()
}

#[test]
fn shutdown_ends_the_cluster_threads_and_closes_their_connections() {
    let Some((redis, _alone)) = in_process_test("shutdown_ends_the_cluster_threads") else { return };
    let port: u16 = redis.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    for i in 0..3 {
        let node = in_process(&redis, &unique(&format!("threads-{i}")));
        assert_eq!(cluster_threads(), 4);
        assert_eq!(connections_to(port), 2, "one connection publishes, one is subscribed");
        node.shutdown();
        assert_eq!(cluster_threads(), 0, "every cluster thread ended with the endpoint");
        assert!(wait_until(Duration::from_secs(2), || connections_to(port) == 0), "connections left to Redis");
    }
}
