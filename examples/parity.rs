//! The parity fixture: the server described in the project's FIXTURE.md, which a
//! reference Phoenix app implements identically, so that one black-box suite and one
//! load tool can run against either.
//!
//! ```text
//! cargo run --release --example parity -- --port 4807
//! cargo run --release --features tls --example parity -- --port 4807 --tls-cert cert.pem --tls-key key.pem
//! cargo run --release --features redis --example parity -- --port 4808 \
//!     --redis redis://127.0.0.1:6379/ --node b
//! ```
//!
//! Every mount serves the WebSocket at `<mount>/websocket` and long-poll at
//! `<mount>/longpoll` (2 s window). With `--redis`, fixtures on other ports that use
//! the same Redis form one cluster (sharing a fixed `secret_key_base`, so that a
//! long-poll session is usable through every node); a node silent for 3 s is taken for
//! gone.

use phx_channels::presence::PRESENCE_STATE;
use phx_channels::{
    Assigns, Channel, CheckOrigin, ConnectInfoKey, Endpoint, EndpointBuilder, Flow, Handled, Info, JoinResult,
    LongPollSettings, Payload, Refusal, Socket, StopReason, UserSocket,
};
use serde_json::{Value, json};
use std::time::Duration;

/// A message a channel sends itself to push right after its join reply.
struct AfterJoin;

/// `room:*`: the chat-like channel most tests use.
struct Room;

impl Channel for Room {
    fn join(&mut self, _topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        let user = payload.get("user").cloned().unwrap_or(Value::Null);
        socket.assign("entered_user", user);
        let _ = socket.handle().send(AfterJoin);
        Ok(Payload::empty())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        if info.downcast::<AfterJoin>().is_ok() {
            let user = socket.assigns().get("entered_user").cloned().unwrap_or(Value::Null);
            let _ = socket.broadcast("user_entered", json!({ "user": user }));
            let mut joined = json!({"status": "connected", "user_id": socket.assigns().get("user_id").cloned().unwrap_or(Value::Null)});
            if let Some(info) = socket.assigns().get("connect_info") {
                joined["connect_info"] = info.clone();
            }
            let _ = socket.push("joined", joined);
        }
        Flow::Continue
    }

    fn intercept(&self) -> &[&str] {
        &["new_msg"]
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "new_msg" => {
                let _ = socket.broadcast("new_msg", payload);
                Handled::ok()
            }
            "disconnect_user" => {
                let id = match payload.get("user_id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let _ = socket.pubsub().broadcast(&format!("user_sockets:{id}"), "disconnect", json!({}));
                Handled::ok()
            }
            "boom" => panic!("boom"),
            "binary_event" => match payload {
                Payload::Binary(bytes) => {
                    let _ = socket.push("binary_event", vec![0u8, 1]);
                    let mut reply = bytes.to_vec();
                    reply.extend_from_slice(&[3, 4]);
                    Handled::reply_ok(reply)
                }
                Payload::Json(_) => Handled::Crash("binary_event needs a binary payload".into()),
            },
            other => Handled::unhandled(other),
        }
    }

    fn handle_out(&mut self, event: &str, payload: &Payload, socket: &mut Socket) -> Flow {
        let mut payload = payload.as_json().cloned().unwrap_or_else(|| json!({}));
        payload["transport"] = json!(":websocket");
        let _ = socket.push(event, payload);
        Flow::Continue
    }

    fn terminate(&mut self, _reason: &StopReason, socket: &mut Socket) {
        let _ = socket.push("you_left", json!({"message": "bye!"}));
    }
}

/// `custom:*`: joins that succeed, are refused, or crash, and a graceful stop.
struct Custom;

impl Channel for Custom {
    fn join(&mut self, _topic: &str, payload: &Payload, _socket: &mut Socket) -> JoinResult {
        match payload.get("action").and_then(Value::as_str) {
            Some("ok") => Ok(Payload::Json(json!({"action": "ok"}))),
            Some("ignore") => Err(Payload::Json(json!({"action": "ignore"}))),
            Some("error") => panic!("join asked to crash"),
            other => Err(Payload::Json(json!({"reason": format!("unknown action {other:?}")}))),
        }
    }

    fn handle_in(&mut self, event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        match event {
            "close" => Handled::stop(StopReason::Shutdown),
            other => Handled::unhandled(other),
        }
    }
}

/// `bench:*` and `bench_icpt:*`: what the load tool measures.
struct Bench {
    intercepts: bool,
}

impl Channel for Bench {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn intercept(&self) -> &[&str] {
        if self.intercepts { &["broadcast"] } else { &[] }
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "echo" => Handled::reply_ok(payload),
            "broadcast" => {
                let _ = socket.broadcast("broadcast", payload);
                Handled::ok()
            }
            "broadcast_from" if !self.intercepts => {
                let _ = socket.broadcast_from("broadcast", payload);
                Handled::ok()
            }
            other => Handled::unhandled(other),
        }
    }
}

/// `presence:*`: presence tracking as the official client's `Presence` expects.
struct PresenceChannel {
    user: String,
}

impl Channel for PresenceChannel {
    fn join(&mut self, _topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        match payload.get("user").and_then(Value::as_str) {
            Some(user) if !user.is_empty() => {
                self.user = user.to_owned();
                // A null status counts as none, as `payload["status"] || "online"` does.
                let status = payload.get("status").filter(|s| !s.is_null()).cloned().unwrap_or_else(|| json!("online"));
                socket.assign("status", status);
                let _ = socket.handle().send(AfterJoin);
                Ok(Payload::empty())
            }
            _ => Err(Payload::Json(json!({"reason": "user required"}))),
        }
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        if info.downcast::<AfterJoin>().is_ok() {
            let _ = socket.push(PRESENCE_STATE, socket.presence_list());
            let status = socket.assigns().get("status").cloned().unwrap_or(Value::Null);
            if let Err(err) = socket.track(&self.user, json!({ "status": status })) {
                log::error!("track failed: {err}");
            }
        }
        Flow::Continue
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "update_status" => {
                let status = payload.get("status").cloned().unwrap_or(Value::Null);
                match socket.update_presence(&self.user, json!({ "status": status })) {
                    Ok(_) => Handled::ok(),
                    Err(err) => Handled::reply_error(json!({"reason": err.to_string()})),
                }
            }
            "boom" => panic!("boom"),
            other => Handled::unhandled(other),
        }
    }
}

/// Every mount serves long-poll too, with a 2 s window.
fn long_poll() -> LongPollSettings {
    LongPollSettings::new().window(Duration::from_millis(2000))
}

/// The user socket: origin host example.com, 200 ms heartbeat timeout, `room:*` and `custom:*`.
fn user_socket(with_connect_info: bool) -> UserSocket {
    let socket = UserSocket::new()
        .check_origin(CheckOrigin::Allow(vec!["//example.com".into()]))
        .idle_timeout(Duration::from_millis(200))
        .connect(move |params, info| {
            if params.get("reject").and_then(Value::as_str) == Some("true") {
                return Err(Refusal::forbidden());
            }
            if params.get("ratelimit").and_then(Value::as_str) == Some("true") {
                return Err(Refusal::new(429, "Too many requests"));
            }
            let mut assigns = Assigns::new();
            assigns.insert("user_id".into(), params.get("user_id").cloned().unwrap_or(Value::Null));
            if with_connect_info {
                let peer = info.peer_data.as_ref().map(|p| p.addr.ip().to_string());
                let x_headers: serde_json::Map<String, Value> =
                    info.x_headers.iter().flatten().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                assigns.insert(
                    "connect_info".into(),
                    json!({
                        "x_headers": x_headers,
                        "peer_data": {"address": peer},
                        "uri": {"path": info.uri.as_ref().map(|u| u.path.clone())},
                        "user_agent": info.user_agent.clone().flatten(),
                    }),
                );
            }
            Ok(assigns)
        })
        .id(|assigns| assigns.get("user_id").and_then(Value::as_str).map(|id| format!("user_sockets:{id}")))
        .channel("room:*", |_| Room)
        .channel("custom:*", |_| Custom)
        .long_poll(long_poll());
    if with_connect_info {
        socket.connect_info([
            ConnectInfoKey::XHeaders,
            ConnectInfoKey::PeerData,
            ConnectInfoKey::Uri,
            ConnectInfoKey::UserAgent,
        ])
    } else {
        socket
    }
}

#[path = "shared/flags.rs"]
mod flags;

/// How long a silent node of the cluster stays in presence lists (at most 5 s).
const NODE_DOWN_AFTER: Duration = Duration::from_secs(3);

/// Starts the fixture on `addr` (a test passes port 0 and asks the endpoint for its port).
pub fn start(addr: &str) -> Result<Endpoint, phx_channels::Error> {
    start_with(Endpoint::builder().bind(addr), false)
}

/// Starts the fixture's sockets on `builder` (which says where to listen, and may carry
/// TLS and cluster settings); with `compress`, every mount accepts permessage-deflate.
pub fn start_with(builder: EndpointBuilder, compress: bool) -> Result<Endpoint, phx_channels::Error> {
    let limited = UserSocket::new()
        .check_origin(CheckOrigin::Allow(vec!["//example.com".into()]))
        .idle_timeout(Duration::from_millis(200))
        .channel("room:*", |_| Room)
        .max_channels(1)
        .long_poll(long_poll());
    let bench = UserSocket::new()
        .check_origin(CheckOrigin::Off)
        .idle_timeout(Duration::from_secs(60))
        .log_connect(None)
        .channel("bench:*", |_| Bench { intercepts: false })
        .channel("bench_icpt:*", |_| Bench { intercepts: true })
        .channel("presence:*", |_| PresenceChannel { user: String::new() })
        .long_poll(long_poll());
    builder
        .host("example.com")
        .socket("/ws", user_socket(false).compress(compress))
        .socket("/ws/admin", user_socket(false).compress(compress))
        .socket("/ws/limited", limited.compress(compress))
        .socket("/ws/connect_info", user_socket(true).compress(compress))
        .socket("/bench", bench.compress(compress))
        .start()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let flags = flags::Flags::parse("parity", 4807)?;
    let compress = flags.compress;
    let endpoint = start_with(flags.endpoint(NODE_DOWN_AFTER)?, compress)?;
    println!("parity fixture listening on {} (node {})", endpoint.local_addr(), endpoint.node_name());
    endpoint.wait();
    Ok(())
}
