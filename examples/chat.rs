//! The chat demo: a page at http://127.0.0.1:4000/ where people pick a name and a
//! room, see who is there and who is typing, and talk. The page and its small Phoenix
//! client are served by the same process as the channels.
//!
//! ```text
//! cargo run --release --example chat            # then open http://127.0.0.1:4000/
//! cargo run --release --example chat -- --port 4001
//! ```
//!
//! Presence is keyed by user id (the name, lower-cased), and the display names live in
//! a directory, as they would in a database: the endpoint's presence `fetch` hook
//! resolves each user's name once per outgoing presence message, whatever the number of
//! tabs or clients. "Who is typing" expires on the server with `send_after`: each
//! keystroke report resets the person's timer, and when it fires the room is told they
//! stopped. The tests at the bottom drive the room in memory with `phx_channels::testing`.
//!
//! Two or more demos share rooms and presence through a Redis (feature `redis`):
//!
//! ```text
//! cargo run --release --features redis --example chat -- --port 4000 --redis redis://127.0.0.1:6379/
//! cargo run --release --features redis --example chat -- --port 4001 --redis redis://127.0.0.1:6379/
//! ```

use phx_channels::presence::{PRESENCE_STATE, Presences};
use phx_channels::{
    Channel, CheckOrigin, EndpointBuilder, Flow, Handled, Info, JoinResult, Payload, Socket, StopReason, TimerRef,
    UserSocket,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "shared/flags.rs"]
mod flags;

/// Longest message body accepted, in characters.
const MAX_BODY: usize = 2000;
/// Longest display name accepted, in characters.
const MAX_NAME: usize = 40;
/// How long after their last keystroke report someone stops being shown as typing.
const TYPING_EXPIRES: Duration = Duration::from_secs(3);

/// In a cluster, how long the people of a demo that stopped stay in the others' lists.
const NODE_DOWN_AFTER: Duration = Duration::from_secs(5);

/// Sent by a room to itself so it can push the presence state after its join reply.
struct AfterJoin;

/// A room's typing timer fired: its person stopped typing.
struct StoppedTyping;

/// Display names by user id: the demo's stand-in for a users table.
#[derive(Clone, Default)]
struct Directory(Arc<Mutex<HashMap<String, String>>>);

impl Directory {
    /// Records `name` (as last chosen) and returns its user id.
    fn register(&self, name: &str) -> String {
        let id = name.to_lowercase();
        self.0.lock().unwrap().insert(id.clone(), name.to_owned());
        id
    }

    /// Adds each user's display name to their presence: one lookup per user.
    fn fetch(&self, presences: &mut Presences) {
        let names = self.0.lock().unwrap();
        for (id, presence) in presences.iter_mut() {
            presence["name"] = json!(names.get(id).map_or(id.as_str(), String::as_str));
        }
    }
}

/// One person in one room.
struct Room {
    user_id: String,
    name: String,
    directory: Directory,
    typing_expires: Duration,
    /// While the person is shown as typing: the timer that will stop it.
    typing: Option<TimerRef>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Room {
    fn new(directory: Directory, typing_expires: Duration) -> Room {
        Room { user_id: String::new(), name: String::new(), directory, typing_expires, typing: None }
    }

    /// A keystroke report: tell the others if this starts it, and restart the expiry.
    fn typing(&mut self, socket: &Socket) {
        match self.typing.take() {
            Some(timer) => {
                timer.cancel();
            }
            None => {
                let _ = socket.broadcast_from("typing", json!({"user_id": self.user_id, "name": self.name}));
            }
        }
        self.typing = Some(socket.send_after(self.typing_expires, StoppedTyping));
    }

    /// The person stopped typing (sent a message, went quiet, or left).
    fn stopped_typing(&mut self, socket: &Socket) {
        if let Some(timer) = self.typing.take() {
            timer.cancel();
            let _ = socket.broadcast_from("stopped_typing", json!({"user_id": self.user_id}));
        }
    }
}

impl Channel for Room {
    fn join(&mut self, _topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        let name = payload.get("user").and_then(Value::as_str).unwrap_or("").trim();
        if name.is_empty() {
            return Err(Payload::Json(json!({"reason": "name required"})));
        }
        self.name = name.chars().take(MAX_NAME).collect();
        self.user_id = self.directory.register(&self.name);
        let _ = socket.handle().send(AfterJoin);
        Ok(json!({"user_id": self.user_id}).into())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        let info = match info.downcast::<AfterJoin>() {
            Ok(AfterJoin) => {
                let _ = socket.push(PRESENCE_STATE, socket.presence_list());
                if let Err(err) = socket.track(&self.user_id, json!({"online_at": now_ms().to_string()})) {
                    log::warn!("{} could not be tracked: {err}", self.user_id);
                }
                return Flow::Continue;
            }
            Err(info) => info,
        };
        if info.downcast::<StoppedTyping>().is_ok() {
            // The timer fired, so there is nothing left to cancel.
            self.typing = None;
            let _ = socket.broadcast_from("stopped_typing", json!({"user_id": self.user_id}));
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
                self.stopped_typing(socket);
                let msg = json!({"user_id": self.user_id, "user": self.name, "body": body, "at": now_ms()});
                match socket.broadcast("new_msg", msg) {
                    Ok(()) => Handled::ok(),
                    Err(err) => Handled::reply_error(json!({"reason": err.to_string()})),
                }
            }
            "typing" => {
                self.typing(socket);
                Handled::NoReply
            }
            other => Handled::unhandled(other),
        }
    }

    fn terminate(&mut self, _reason: &StopReason, socket: &mut Socket) {
        self.stopped_typing(socket);
    }
}

/// The demo's endpoint, but for its address and static pages: the rooms, and the
/// presence fetch hook that names the people in them.
/// The demo's socket and presence names on `builder`.
fn chat(builder: EndpointBuilder, typing_expires: Duration, compress: bool) -> EndpointBuilder {
    let directory = Directory::default();
    let rooms = directory.clone();
    builder
        // The page comes from this server, so only its own origin may connect.
        .socket(
            "/socket",
            UserSocket::new()
                .check_origin(CheckOrigin::SameAsRequest)
                .channel("room:*", move |_| Room::new(rooms.clone(), typing_expires))
                .compress(compress),
        )
        .presence_fetch(move |_topic, presences| directory.fetch(presences))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let flags = flags::Flags::parse("chat", 4000)?;
    let js = "text/javascript; charset=utf-8";
    let compress = flags.compress;
    let endpoint = chat(flags.endpoint(NODE_DOWN_AFTER)?, TYPING_EXPIRES, compress)
        .static_response("/", "text/html; charset=utf-8", &include_bytes!("chat/index.html")[..])
        .static_response("/app.js", js, &include_bytes!("chat/app.js")[..])
        .static_response("/phoenix.js", js, &include_bytes!("chat/phoenix.js")[..])
        .static_response("/style.css", "text/css; charset=utf-8", &include_bytes!("chat/style.css")[..])
        .health_check("/health")
        .prometheus_metrics("/metrics")
        .start()?;
    // Ctrl-C (or SIGTERM) drains: every client is closed with 1012 and reconnects elsewhere.
    endpoint.shutdown_on_signals()?;
    println!("chat demo: open http://{}/ in two browser tabs (node {})", endpoint.local_addr(), endpoint.node_name());
    endpoint.wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phx_channels::Endpoint;
    use phx_channels::presence::PRESENCE_DIFF;
    use phx_channels::testing::{self, TestChannel, Timeouts};

    const EXPIRES: Duration = Duration::from_millis(800);

    fn enter(endpoint: &Endpoint, name: &str) -> TestChannel {
        let socket = testing::connect(endpoint, "/socket", json!({})).unwrap();
        socket.set_timeouts(Timeouts { assert: Duration::from_secs(5), ..Timeouts::default() });
        let (reply, room) = socket.subscribe_and_join("room:lobby", json!({"user": name})).unwrap();
        assert_eq!(reply, json!({"user_id": name.to_lowercase()}).into());
        room
    }

    #[test]
    fn presences_carry_the_display_name_fetched_for_each_user() {
        let endpoint = testing::endpoint(chat(Endpoint::builder(), EXPIRES, false)).unwrap();
        let ada = enter(&endpoint, "Ada");
        assert_eq!(ada.assert_push(PRESENCE_STATE), json!({}).into());
        let diff = ada.assert_push(PRESENCE_DIFF);
        assert_eq!(diff.get("joins").unwrap()["ada"]["name"], "Ada");
        let grace = enter(&endpoint, "Grace");
        let state = grace.assert_push(PRESENCE_STATE);
        assert_eq!(state.get("ada").unwrap()["name"], "Ada");
        let diff = ada.assert_push(PRESENCE_DIFF);
        assert_eq!(diff.get("joins").unwrap()["grace"]["name"], "Grace");
        endpoint.shutdown();
    }

    #[test]
    fn typing_is_shown_to_the_others_until_it_expires() {
        let endpoint = testing::endpoint(chat(Endpoint::builder(), EXPIRES, false)).unwrap();
        let ada = enter(&endpoint, "Ada");
        let grace = enter(&endpoint, "Grace");
        ada.push("typing", json!({}));
        assert_eq!(grace.assert_push("typing"), json!({"user_id": "ada", "name": "Ada"}).into());
        ada.refute_push("typing");
        // More keystrokes keep it going without telling anyone again.
        ada.push("typing", json!({}));
        grace.refute_push("typing");
        assert_eq!(grace.assert_push("stopped_typing"), json!({"user_id": "ada"}).into());
        endpoint.shutdown();
    }

    #[test]
    fn sending_or_leaving_stops_typing_at_once() {
        let endpoint = testing::endpoint(chat(Endpoint::builder(), Duration::from_secs(60), false)).unwrap();
        let ada = enter(&endpoint, "Ada");
        let grace = enter(&endpoint, "Grace");
        ada.push("typing", json!({}));
        grace.assert_push("typing");
        let sent = ada.push("new_msg", json!({"body": "hello"}));
        ada.assert_reply(&sent, "ok");
        grace.assert_push("stopped_typing");
        assert_eq!(grace.assert_push("new_msg").get("user"), Some(&json!("Ada")));

        ada.push("typing", json!({}));
        grace.assert_push("typing");
        ada.leave();
        grace.assert_push("stopped_typing");
        endpoint.shutdown();
    }
}
