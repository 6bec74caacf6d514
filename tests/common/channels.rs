//! The channels of the standard socket: `Room` (every callback result chosen by the
//! client), `Bare` (no `handle_info`) and `Named` (says which route started it), with
//! the messages `Room` takes and how stop reasons are written; and `Lobby`, the
//! presence channel of the lobby socket.

use super::events::Ctx;
use phx_channels::presence::PRESENCE_STATE;
use phx_channels::{Channel, Flow, Handled, Info, JoinResult, Payload, Socket, StopReason};
use serde_json::{Value, json};
use std::time::Duration;

/// Messages a test (or the channel itself) sends to `Room::handle_info`.
pub enum Msg {
    /// Push `after_join` (sent from `join` when the payload asks for it).
    AfterJoin,
    /// Push `event` with `payload`.
    Push(String, Value),
    /// Stop with this reason.
    Stop(StopReason),
    /// Panic.
    Boom,
}

/// Parses a stop reason written as `normal`, `shutdown`, `shutdown:<detail>` or
/// `error:<why>`.
pub fn parse_reason(text: &str) -> StopReason {
    match text {
        "normal" => StopReason::Normal,
        "shutdown" => StopReason::Shutdown,
        other => match other.split_once(':') {
            Some(("shutdown", detail)) => StopReason::ShutdownWith(detail.to_owned()),
            Some(("error", why)) => StopReason::Error(why.to_owned()),
            _ => StopReason::Error(other.to_owned()),
        },
    }
}

/// The events `Room` intercepts, and what its `handle_out` does with each.
pub const INTERCEPTED: [&str; 5] = ["out_push", "out_change", "out_drop", "out_stop", "out_boom"];

/// The channel behind `room:*`, `assigned:*` and `phoenix:*`: every callback result
/// can be chosen by the client.
///
/// Join payload: `mode` = `reply` | `error` | `panic` | `probe` | `assigns` | `binary`
/// (default: plain ok); `sleep_ms` to make the join slow; `after_join: true` to push
/// `after_join` from `handle_info` once joined.
///
/// Events (handle_in): `noreply`, `ok`, `status` (custom status from `payload.status`),
/// `echo`, `binary`, `stop` (`reason`, optional `reply`), `boom`, `push` (`event`,
/// `payload`), `burst` (`count` numbered pushes, then reply), `async_reply`,
/// `broadcast` / `broadcast_from` (`event`, `payload`), `subscribe` / `unsubscribe`
/// (`topic`), `assigns`, `info` (a message to self, pushed back as `info`), `info_stop`,
/// `info_boom`, `sleep` (`ms`), `socket_id`, `send_after` / `send_after_cancel` (a
/// timer that pushes `event` with `payload` after `ms`; the second cancels it at once
/// and replies whether it was pending). Anything else is answered ok with
/// `{"unhandled": event}`.
///
/// terminate records `terminate <topic> <reason>` and pushes `you_left`.
pub struct Room {
    topic: String,
    ctx: Ctx,
}

impl Room {
    pub fn new(topic: &str, ctx: Ctx) -> Room {
        Room { topic: topic.to_owned(), ctx }
    }
}

fn err_name(result: Result<(), phx_channels::Error>) -> Value {
    match result {
        Ok(()) => json!("ok"),
        Err(phx_channels::Error::NotJoined) => json!("not_joined"),
        Err(other) => json!(other.to_string()),
    }
}

fn str_of<'a>(payload: &'a Payload, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str)
}

impl Channel for Room {
    fn join(&mut self, topic: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        self.ctx.events.push(format!("join {topic}"));
        self.ctx.handles.lock().unwrap().insert(topic.to_owned(), socket.handle());
        if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if payload.get("after_join").and_then(Value::as_bool) == Some(true) {
            socket.handle().send(Msg::AfterJoin).expect("a joining channel takes messages");
        }
        match str_of(payload, "mode") {
            Some("reply") => Ok(json!({"welcome": topic}).into()),
            Some("error") => Err(json!({"reason": "unauthorized"}).into()),
            Some("panic") => panic!("join of {topic} panics on purpose"),
            Some("binary") => Ok(Payload::Binary(b"\x00joined\xff".to_vec().into())),
            Some("assigns") => Ok(Value::Object(socket.assigns().clone()).into()),
            Some("probe") => {
                let push = err_name(socket.push("in_join", json!({})));
                let broadcast = err_name(socket.broadcast("in_join", json!({})));
                let broadcast_from = err_name(socket.broadcast_from("in_join", json!({})));
                let socket_ref = match socket.socket_ref() {
                    Ok(_) => json!("ok"),
                    Err(phx_channels::Error::NotJoined) => json!("not_joined"),
                    Err(other) => json!(other.to_string()),
                };
                Ok(json!({"push": push, "broadcast": broadcast, "broadcast_from": broadcast_from, "socket_ref": socket_ref})
                    .into())
            }
            _ => Ok(Payload::empty()),
        }
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "noreply" => Handled::NoReply,
            "ok" => Handled::ok(),
            "status" => Handled::reply(str_of(&payload, "status").unwrap_or("custom"), Payload::empty()),
            "echo" => Handled::reply_ok(payload),
            "binary" => match payload {
                Payload::Binary(bytes) => {
                    let mut back = b"got:".to_vec();
                    back.extend_from_slice(&bytes);
                    Handled::reply_ok(back)
                }
                Payload::Json(_) => Handled::reply_ok(b"\x00\x01\x02\xff".to_vec()),
            },
            "stop" => {
                let reason = parse_reason(str_of(&payload, "reason").unwrap_or("normal"));
                match payload.get("reply") {
                    Some(reply) => Handled::stop_with_reply(reason, "ok", reply.clone()),
                    None => Handled::stop(reason),
                }
            }
            "boom" => panic!("handle_in of {} panics on purpose", self.topic),
            "push" => {
                let name = str_of(&payload, "event").unwrap_or("pushed").to_owned();
                let body = payload.get("payload").cloned().unwrap_or(json!({}));
                match socket.push(&name, body) {
                    Ok(()) => Handled::ok(),
                    Err(err) => Handled::reply_error(json!({"error": err.to_string()})),
                }
            }
            "push_binary" => match socket.push("bin", b"\x01\x02\x03".to_vec()) {
                Ok(()) => Handled::ok(),
                Err(err) => Handled::reply_error(json!({"error": err.to_string()})),
            },
            "burst" => {
                let count = payload.get("count").and_then(Value::as_u64).unwrap_or(100);
                for n in 0..count {
                    socket.push("seq", json!({"n": n})).expect("push in a joined channel");
                }
                Handled::reply_ok(json!({"pushed": count}))
            }
            "async_reply" => {
                let socket_ref = socket.socket_ref().expect("socket_ref inside handle_in");
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    socket_ref.reply("ok", json!({"n": 1})).expect("first async reply");
                    socket_ref.reply("later", json!({"n": 2})).expect("second async reply");
                });
                Handled::NoReply
            }
            "broadcast" | "broadcast_from" => {
                let name = str_of(&payload, "event").unwrap_or("shout").to_owned();
                let body = payload.get("payload").cloned().unwrap_or(json!({}));
                let sent = if event == "broadcast" {
                    socket.broadcast(&name, body)
                } else {
                    socket.broadcast_from(&name, body)
                };
                match sent {
                    Ok(()) => Handled::ok(),
                    Err(err) => Handled::reply_error(json!({"error": err.to_string()})),
                }
            }
            "broadcast_burst" => {
                // `count` broadcasts in a row to the others. With `mail_first` the channel
                // first sends itself a message, so it has mail waiting while it fans out.
                if payload.get("mail_first").and_then(Value::as_bool) == Some(true) {
                    socket.handle().send(()).expect("a joined channel takes messages");
                }
                let count = payload.get("count").and_then(Value::as_u64).unwrap_or(1);
                for n in 0..count {
                    socket.broadcast_from("seq", json!({"n": n})).expect("a broadcast from a joined channel");
                }
                Handled::ok()
            }
            "subscribe" => {
                socket.subscribe(str_of(&payload, "topic").unwrap_or("extra"));
                Handled::ok()
            }
            "unsubscribe" => {
                socket.unsubscribe(str_of(&payload, "topic").unwrap_or("extra"));
                Handled::ok()
            }
            "assigns" => Handled::reply_ok(Value::Object(socket.assigns().clone())),
            "join_ref" => Handled::reply_ok(json!({"join_ref": socket.join_ref()})),
            "socket_id" => Handled::reply_ok(json!({"socket_id": socket.socket_id()})),
            "send_after" | "send_after_cancel" => {
                let ms = payload.get("ms").and_then(Value::as_u64).unwrap_or(10);
                let name = str_of(&payload, "event").unwrap_or("timer").to_owned();
                let body = payload.get("payload").cloned().unwrap_or(json!({}));
                let timer = socket.send_after(Duration::from_millis(ms), Msg::Push(name, body));
                if event == "send_after" {
                    Handled::ok()
                } else {
                    Handled::reply_ok(json!({"cancelled": timer.cancel()}))
                }
            }
            "info" => {
                socket
                    .handle()
                    .send(Msg::Push("info".into(), payload.as_json().cloned().unwrap_or(json!({}))))
                    .unwrap();
                Handled::ok()
            }
            "info_stop" => {
                let reason = parse_reason(str_of(&payload, "reason").unwrap_or("normal"));
                socket.handle().send(Msg::Stop(reason)).unwrap();
                Handled::ok()
            }
            "info_boom" => {
                socket.handle().send(Msg::Boom).unwrap();
                Handled::ok()
            }
            "sleep" => {
                let ms = payload.get("ms").and_then(Value::as_u64).unwrap_or(100);
                std::thread::sleep(Duration::from_millis(ms));
                Handled::ok()
            }
            other => Handled::reply_ok(json!({"unhandled": other})),
        }
    }

    fn intercept(&self) -> &[&str] {
        &INTERCEPTED
    }

    fn handle_out(&mut self, event: &str, payload: &Payload, socket: &mut Socket) -> Flow {
        self.ctx.events.push(format!("handle_out {} {event}", self.topic));
        match event {
            "out_push" => {
                socket.push(event, payload.clone()).unwrap();
                Flow::Continue
            }
            "out_change" => {
                let original = payload.as_json().cloned().unwrap_or(Value::Null);
                socket.push("out_changed", json!({"changed": true, "original": original})).unwrap();
                Flow::Continue
            }
            "out_drop" => Flow::Continue,
            "out_stop" => Flow::Stop(StopReason::Normal),
            "out_boom" => panic!("handle_out panics on purpose"),
            _ => Flow::Continue,
        }
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        match info {
            Info::Broadcast(b) => {
                self.ctx.events.push(format!("info {} broadcast {} {}", self.topic, b.topic, b.event));
                let _ = socket.push(&b.event, b.payload);
                Flow::Continue
            }
            Info::Message(_) => match info.downcast::<Msg>() {
                Ok(Msg::AfterJoin) => {
                    socket.push("after_join", json!({"topic": self.topic})).unwrap();
                    Flow::Continue
                }
                Ok(Msg::Push(event, payload)) => {
                    socket.push(&event, payload).unwrap();
                    Flow::Continue
                }
                Ok(Msg::Stop(reason)) => Flow::Stop(reason),
                Ok(Msg::Boom) => panic!("handle_info panics on purpose"),
                Err(_) => Flow::Continue,
            },
        }
    }

    fn terminate(&mut self, reason: &StopReason, socket: &mut Socket) {
        self.ctx.events.push(format!("terminate {} {reason}", self.topic));
        let _ = socket.push("you_left", json!({"reason": reason.to_string()}));
    }
}

/// A channel that defines no `handle_info` (P77): `ping` is answered with `pong`.
pub struct Bare(pub Ctx);

impl Channel for Bare {
    fn join(&mut self, topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
        self.0.handles.lock().unwrap().insert(topic.to_owned(), socket.handle());
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        match event {
            "ping" => Handled::reply_ok(json!({"pong": true})),
            _ => Handled::NoReply,
        }
    }
}

/// A channel that only says which route started it (P44).
pub struct Named(pub &'static str);

impl Channel for Named {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(json!({"channel": self.0}).into())
    }
}

/// Sent by `Lobby` to itself from `join`.
struct AfterJoin;

/// The lobby socket's channel: once joined, pushes the presence state, then tracks the
/// connection's `user` assign with `{"device": "web"}`.
pub struct Lobby;

impl Channel for Lobby {
    fn join(&mut self, _topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
        socket.handle().send(AfterJoin).unwrap();
        Ok(Payload::empty())
    }

    fn handle_info(&mut self, info: Info, socket: &mut Socket) -> Flow {
        if info.downcast::<AfterJoin>().is_ok() {
            socket.push(PRESENCE_STATE, socket.presence_list()).unwrap();
            let user = socket.assigns()["user"].as_str().unwrap().to_owned();
            socket.track(&user, json!({"device": "web"})).unwrap();
        }
        Flow::Continue
    }
}
