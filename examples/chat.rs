//! The chat demo: a page at http://127.0.0.1:4000/ where people pick a name and a
//! room, see who is there, and talk. The page and its small Phoenix client are served
//! by the same process as the channels.
//!
//! ```text
//! cargo run --release --example chat            # then open http://127.0.0.1:4000/
//! cargo run --release --example chat -- --port 4001
//! ```
//!
//! Two or more demos share rooms and presence through a Redis (feature `redis`):
//!
//! ```text
//! cargo run --release --features redis --example chat -- --port 4000 --redis redis://127.0.0.1:6379/
//! cargo run --release --features redis --example chat -- --port 4001 --redis redis://127.0.0.1:6379/
//! ```

use phx_channels::presence::PRESENCE_STATE;
use phx_channels::{Channel, CheckOrigin, Flow, Handled, Info, JoinResult, Payload, Socket, StopReason, UserSocket};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "shared/flags.rs"]
mod flags;

/// Longest message body accepted, in characters.
const MAX_BODY: usize = 2000;
/// Longest display name accepted, in characters.
const MAX_NAME: usize = 40;
/// In a cluster, how long the people of a demo that stopped stay in the others' lists.
const NODE_DOWN_AFTER: Duration = Duration::from_secs(5);

/// Sent by a room to itself so it can push the presence state after its join reply.
struct AfterJoin;

/// One person in one room.
#[derive(Default)]
struct Room {
    user: String,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Channel for Room {
    fn join(&mut self, _topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        let name = payload.get("user").and_then(Value::as_str).unwrap_or("").trim();
        if name.is_empty() {
            return Err(Payload::Json(json!({"reason": "name required"})));
        }
        self.user = name.chars().take(MAX_NAME).collect();
        let _ = socket.handle().send(AfterJoin);
        Ok(Payload::empty())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        if info.downcast::<AfterJoin>().is_ok() {
            let _ = socket.push(PRESENCE_STATE, socket.presence_list());
            if let Err(err) = socket.track(&self.user, json!({"online_at": now_ms().to_string()})) {
                log::warn!("{} could not be tracked: {err}", self.user);
            }
        }
        Flow::Continue
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "new_msg" => {
                let body = payload.get("body").and_then(Value::as_str).unwrap_or("").trim();
                if body.is_empty() {
                    return Handled::reply_error(json!({"reason": "empty message"}));
                }
                if body.chars().count() > MAX_BODY {
                    return Handled::reply_error(json!({"reason": "message too long"}));
                }
                match socket.broadcast("new_msg", json!({"user": self.user, "body": body, "at": now_ms()})) {
                    Ok(()) => Handled::ok(),
                    Err(err) => Handled::reply_error(json!({"reason": err.to_string()})),
                }
            }
            other => Handled::stop(StopReason::Error(format!("unknown event {other:?}"))),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let flags = flags::Flags::parse("chat", 4000)?;
    let js = "text/javascript; charset=utf-8";
    let endpoint = flags
        .endpoint(NODE_DOWN_AFTER)?
        // The page comes from this server, so only its own origin may connect.
        .socket(
            "/socket",
            UserSocket::new().check_origin(CheckOrigin::SameAsRequest).channel("room:*", |_| Room::default()),
        )
        .static_response("/", "text/html; charset=utf-8", &include_bytes!("chat/index.html")[..])
        .static_response("/app.js", js, &include_bytes!("chat/app.js")[..])
        .static_response("/phoenix.js", js, &include_bytes!("chat/phoenix.js")[..])
        .static_response("/style.css", "text/css; charset=utf-8", &include_bytes!("chat/style.css")[..])
        .health_check("/health")
        .start()?;
    println!("chat demo: open http://{}/ in two browser tabs (node {})", endpoint.local_addr(), endpoint.node_name());
    endpoint.wait();
    Ok(())
}
