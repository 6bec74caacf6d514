//! Telemetry events and the Prometheus metrics page, over real sockets.

mod common;

use common::*;
use phx_channels::client::Client;
use phx_channels::telemetry::Event;
use phx_channels::{Channel, JoinResult, OutboundLimits, Payload, Socket};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the hook saw, one line per event, with the fields a test checks.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn record(&self, event: &Event<'_>) {
        let line = match event {
            Event::SocketConnected { endpoint_path, transport, params, outcome, duration, .. } => json!({
                "event": "socket_connected", "path": endpoint_path, "transport": transport,
                "params": params, "outcome": format!("{outcome:?}"), "timed": duration > &Duration::ZERO,
            }),
            Event::ChannelJoined { topic, params, outcome, .. } => json!({
                "event": "channel_joined", "topic": topic, "params": params, "outcome": format!("{outcome:?}"),
            }),
            Event::ChannelHandledIn { topic, event, params, duration, .. } => json!({
                "event": "channel_handled_in", "topic": topic, "in": event, "params": params,
                "timed": duration > &Duration::ZERO,
            }),
            Event::ChannelCrashed { topic, callback, .. } => {
                json!({"event": "channel_crashed", "topic": topic, "callback": callback})
            }
            Event::SlowConsumerClosed { .. } => json!({"event": "slow_consumer_closed"}),
            Event::PresenceChanged { topic, joins, leaves } => {
                json!({"event": "presence_changed", "topic": topic, "joins": joins, "leaves": leaves})
            }
            Event::SocketDrain { connections, batch_size, .. } => {
                json!({"event": "socket_drain", "connections": connections, "batch_size": batch_size})
            }
            _ => json!({"event": "other"}),
        };
        self.0.lock().unwrap().push(line);
    }

    fn of(&self, event: &str) -> Vec<Value> {
        self.0.lock().unwrap().iter().filter(|line| line["event"] == event).cloned().collect()
    }

    fn wait_for(&self, event: &str) -> Vec<Value> {
        wait_until(Duration::from_secs(5), || !self.of(event).is_empty());
        self.of(event)
    }
}

fn observed(tweak: impl FnOnce(phx_channels::UserSocket) -> phx_channels::UserSocket + 'static) -> (Server, Seen) {
    let seen = Seen::default();
    let hook = seen.clone();
    let server = server().endpoint(move |b| b.telemetry(move |event| hook.record(event))).socket(tweak).start();
    (server, seen)
}

#[test]
fn connects_joins_and_handled_events_are_reported_with_filtered_parameters() {
    let (server, seen) = observed(|s| s);
    let mut client = server.builder().param("token", "secret").param("user", "ann").connect().unwrap();
    let refused = server.builder().param("refuse", "403").connect();
    assert!(refused.is_err());
    client.join("room:t", json!({"password": "hunter2", "name": "ann"})).unwrap();
    let reply = client.push("room:t", "echo", json!({"password": "x", "body": "hi"})).unwrap();
    assert_eq!(reply.status, "ok");
    let refused_join = client.join("room:refused", json!({"mode": "error"})).unwrap();
    assert_eq!(refused_join.status, "error");

    let connects = seen.wait_for("socket_connected");
    let ok = connects.iter().find(|c| c["outcome"] == "Ok").expect("an accepted connect");
    assert_eq!((ok["path"].as_str(), ok["transport"].as_str()), (Some("/socket"), Some("websocket")));
    assert_eq!(ok["params"]["token"], "[FILTERED]");
    assert_eq!(ok["params"]["user"], "ann");
    assert_eq!(ok["timed"], true);
    assert!(connects.iter().any(|c| c["outcome"] == "Refused"), "{connects:?}");

    let joins = seen.wait_for("channel_joined");
    let joined = joins.iter().find(|j| j["topic"] == "room:t").unwrap();
    assert_eq!(joined["outcome"], "Ok");
    assert_eq!(joined["params"], json!({"password": "[FILTERED]", "name": "ann"}));
    assert!(joins.iter().any(|j| j["topic"] == "room:refused" && j["outcome"] == "Refused"), "{joins:?}");

    let handled = seen.wait_for("channel_handled_in");
    let echo = handled.iter().find(|h| h["in"] == "echo").unwrap();
    assert_eq!(echo["params"], json!({"password": "[FILTERED]", "body": "hi"}));
    assert_eq!(echo["topic"], "room:t");
    assert_eq!(echo["timed"], true);
}

#[test]
fn crashes_in_join_and_in_callbacks_are_reported() {
    let (server, seen) = observed(|s| s);
    let mut client = server.client();
    let reply = client.join("room:joincrash", json!({"mode": "panic"})).unwrap();
    assert_eq!(reply.status, "error");
    client.join("room:crash", json!({})).unwrap();
    client.push_async("room:crash", "boom", json!({})).unwrap();
    client.recv_event("room:crash", "phx_error").unwrap();
    wait_until(Duration::from_secs(5), || seen.of("channel_crashed").len() >= 2);
    let crashes = seen.of("channel_crashed");
    assert!(crashes.contains(&json!({"event": "channel_crashed", "topic": "room:joincrash", "callback": "join"})));
    assert!(crashes.contains(&json!({"event": "channel_crashed", "topic": "room:crash", "callback": "handle_in"})));
    let joins = seen.of("channel_joined");
    assert!(joins.iter().any(|j| j["topic"] == "room:joincrash" && j["outcome"] == "Crashed"), "{joins:?}");
}

#[test]
fn a_slow_consumer_close_is_reported() {
    let limits = OutboundLimits::default().max_frames(20).max_bytes(64 * 1024);
    let (server, seen) = observed(move |s| s.outbound_limits(limits));
    let mut stalled = server.client();
    stalled.join("room:slow", json!({})).unwrap();
    // The client never reads; the server's socket buffer fills, then the queue.
    let pad = "x".repeat(16 * 1024);
    for seq in 0..2000 {
        server.endpoint.broadcast("room:slow", "tick", json!({"seq": seq, "pad": pad})).unwrap();
        if server.endpoint.stats().slow_consumer_closes > 0 {
            break;
        }
    }
    assert_eq!(seen.wait_for("slow_consumer_closed").len(), 1);
    assert_eq!(server.endpoint.stats().slow_consumer_closes, 1);
}

/// Tracks its client under `ann` on its own topic.
struct Tracked;

impl Channel for Tracked {
    fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
        socket.track("ann", json!({"status": "online"})).unwrap();
        Ok(Payload::empty())
    }
}

#[test]
fn presence_changes_and_the_drain_at_shutdown_are_reported() {
    let (server, seen) = observed(|s| s.channel("tracked:*", |_| Tracked));
    let mut client = server.client();
    client.join("tracked:p", json!({})).unwrap();
    let changes = seen.wait_for("presence_changed");
    assert_eq!(changes[0], json!({"event": "presence_changed", "topic": "tracked:p", "joins": 1, "leaves": 0}));
    server.endpoint.shutdown();
    let drains = seen.of("socket_drain");
    assert_eq!(drains.first().map(|d| d["connections"].clone()), Some(json!(1)), "{drains:?}");
    drop(client);
}

#[test]
fn the_metrics_page_serves_the_counters_in_prometheus_text() {
    let server = server().endpoint(|b| b.prometheus_metrics("/metrics")).start();
    let mut client = server.client();
    client.join("room:m", json!({})).unwrap();
    let response = http(&server.addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(response.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let body = &response.body;
    assert!(body.contains("# TYPE phx_channels_connections gauge\nphx_channels_connections 1\n"), "{body}");
    assert!(body.contains("# TYPE phx_channels_joins_total counter\nphx_channels_joins_total 1\n"), "{body}");
    assert!(body.contains("# HELP phx_channels_messages_in_total Messages decoded from clients.\n"), "{body}");
    // Each request renders the counters as they are then.
    client.join("room:m2", json!({})).unwrap();
    let again = http(&server.addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(again.body.contains("phx_channels_joins_total 2\n"), "{}", again.body);
    drop::<Client>(client);
}
