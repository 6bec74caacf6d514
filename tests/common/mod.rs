//! The test server shared by the integration tests: one socket definition whose
//! channels exercise every behaviour of PROTOCOL.md, helpers to start it on a free
//! port, raw HTTP and raw WebSocket access for what the blocking client cannot do, and
//! counters of the test process's threads and open files.
//!
//! Every test starts its own [`Server`]; dropping it shuts the endpoint down.
#![allow(dead_code)]

use phx_channels::client::{Client, ClientBuilder};
use phx_channels::message::{Message, Reply};
use phx_channels::serializer::ServerMessage;
use phx_channels::{
    Assigns, Channel, ChannelHandle, Endpoint, EndpointBuilder, Flow, Handled, Info, JoinResult, Payload, Refusal,
    Socket, StopReason, UserSocket,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts `env_logger` once per test binary.
pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}

// ---------------------------------------------------------------------------------------
// What the channels and `connect` record, for the tests to inspect.
// ---------------------------------------------------------------------------------------

/// Lines recorded by the server's callbacks: `connect {json}`, `join <topic>`,
/// `terminate <topic> <reason>`, `handle_out <topic> <event>`, `info <topic> ...`.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub fn push(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Lines starting with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> Vec<String> {
        self.all().into_iter().filter(|l| l.starts_with(prefix)).collect()
    }

    pub fn contains(&self, line: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l == line)
    }

    /// Waits up to `timeout` for `line` to be recorded.
    pub fn wait_for(&self, line: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.contains(line))
    }

    /// Waits up to `timeout` for a line starting with `prefix`; returns it.
    pub fn wait_prefix(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.starting_with(prefix).into_iter().next() {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The JSON recorded by every `connect` call so far.
    pub fn connects(&self) -> Vec<Value> {
        self.starting_with("connect ").iter().map(|l| serde_json::from_str(&l["connect ".len()..]).unwrap()).collect()
    }
}

/// What the channels share with the test: the event log and each topic's latest handle.
#[derive(Clone, Default)]
pub struct Ctx {
    pub events: Events,
    pub handles: Arc<Mutex<HashMap<String, ChannelHandle>>>,
}

impl Ctx {
    /// The `ChannelHandle` of the latest join of `topic` (recorded in `join`).
    pub fn handle(&self, topic: &str) -> ChannelHandle {
        self.handles.lock().unwrap().get(topic).cloned().unwrap_or_else(|| panic!("no channel handle for {topic}"))
    }
}

// ---------------------------------------------------------------------------------------
// Channels.
// ---------------------------------------------------------------------------------------

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
/// `info_boom`, `sleep` (`ms`). Anything else is answered ok with
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

/// The socket every mount starts from: connect with params, refusals on request, the
/// socket id `user_socket:<user_id>`, and the routes.
///
/// Connect params: `refuse=403` refuses with 403, `refuse=429` with 429
/// `Too many requests`, `refuse=panic` panics; `user_id` sets the socket id. The assigns
/// are `{"params": params, "info": connect_info, "user_id": ...}`.
pub fn standard_socket(ctx: &Ctx) -> UserSocket {
    let events = ctx.events.clone();
    let room = |ctx: &Ctx| {
        let ctx = ctx.clone();
        move |topic: &str| Room::new(topic, ctx.clone())
    };
    let route_assigns: Assigns = [("route_key".to_string(), json!("from_route"))].into_iter().collect();
    UserSocket::new()
        .connect(move |params, info| {
            let token = info.auth_token.as_ref().map(|t| String::from_utf8_lossy(t).into_owned());
            let token_bytes = info.auth_token.clone();
            events.push(format!(
                "connect {}",
                json!({"params": params, "info": info.to_json(), "auth_token": token, "auth_token_bytes": token_bytes})
            ));
            match params.get("refuse").and_then(Value::as_str) {
                Some("403") => return Err(Refusal::forbidden()),
                Some("429") => return Err(Refusal::new(429, "Too many requests")),
                Some("panic") => panic!("connect panics on purpose"),
                _ => {}
            }
            let mut assigns = Assigns::new();
            assigns.insert("params".into(), Value::Object(params.clone()));
            assigns.insert("info".into(), info.to_json());
            if let Some(user) = params.get("user_id") {
                assigns.insert("user_id".into(), user.clone());
            }
            Ok(assigns)
        })
        .id(|assigns| assigns.get("user_id").and_then(Value::as_str).map(|u| format!("user_socket:{u}")))
        .channel("room:*", room(ctx))
        .channel("phoenix:*", room(ctx))
        .channel_with_assigns("assigned:*", route_assigns, room(ctx))
        .channel("bare:*", {
            let ctx = ctx.clone();
            move |_| Bare(ctx.clone())
        })
        .channel("food*", |_| Named("food"))
        .channel("foo*", |_| Named("foo"))
        .channel("exact", |_| Named("exact"))
}

// ---------------------------------------------------------------------------------------
// The server.
// ---------------------------------------------------------------------------------------

type SocketTweak = Box<dyn FnOnce(UserSocket) -> UserSocket>;
type EndpointTweak = Box<dyn FnOnce(EndpointBuilder) -> EndpointBuilder>;

/// Configures a test [`Server`].
///
/// Mounts: `/socket` (the standard socket, changed by [`socket`](ServerBuilder::socket)),
/// `/limited` (`max_channels(1)`), `/ws/:user_id` (path params), and any added with
/// [`mount`](ServerBuilder::mount).
pub struct ServerBuilder {
    socket: SocketTweak,
    endpoint: EndpointTweak,
    mounts: Vec<(String, SocketTweak)>,
}

impl ServerBuilder {
    /// Changes the `/socket` mount's settings.
    pub fn socket(mut self, tweak: impl FnOnce(UserSocket) -> UserSocket + 'static) -> Self {
        self.socket = Box::new(tweak);
        self
    }

    /// Changes the endpoint's settings.
    pub fn endpoint(mut self, tweak: impl FnOnce(EndpointBuilder) -> EndpointBuilder + 'static) -> Self {
        self.endpoint = Box::new(tweak);
        self
    }

    /// Mounts the standard socket, changed by `tweak`, at `path` too.
    pub fn mount(mut self, path: &str, tweak: impl FnOnce(UserSocket) -> UserSocket + 'static) -> Self {
        self.mounts.push((path.to_owned(), Box::new(tweak)));
        self
    }

    pub fn start(self) -> Server {
        init_logs();
        let ctx = Ctx::default();
        let mut builder = Endpoint::builder()
            .bind("127.0.0.1:0")
            .shutdown_timeout(Duration::from_secs(5))
            .socket("/socket", (self.socket)(standard_socket(&ctx)))
            .socket("/limited", standard_socket(&ctx).max_channels(1))
            .socket("/ws/:user_id", standard_socket(&ctx));
        for (path, tweak) in self.mounts {
            builder = builder.socket(&path, tweak(standard_socket(&ctx)));
        }
        let endpoint = (self.endpoint)(builder).start().expect("the test endpoint starts");
        let addr = endpoint.local_addr().to_string();
        Server { endpoint, addr, ctx }
    }
}

/// A running test endpoint on 127.0.0.1 and a free port. Shut down when dropped.
pub struct Server {
    pub endpoint: Endpoint,
    pub addr: String,
    pub ctx: Ctx,
}

/// A server with the standard settings.
pub fn start() -> Server {
    server().start()
}

/// A builder for a server with other settings.
pub fn server() -> ServerBuilder {
    ServerBuilder { socket: Box::new(|s| s), endpoint: Box::new(|e| e), mounts: Vec::new() }
}

impl Server {
    pub fn events(&self) -> &Events {
        &self.ctx.events
    }

    /// A client builder for this server (V2, `/socket`, 5 s timeout).
    pub fn builder(&self) -> ClientBuilder {
        Client::builder(&self.addr)
    }

    /// A connected V2 client.
    pub fn client(&self) -> Client {
        self.builder().connect().expect("a V2 client connects")
    }

    /// A connected V1 client.
    pub fn client_v1(&self) -> Client {
        self.builder().vsn(Some("1.0.0")).connect().expect("a V1 client connects")
    }

    /// A V2 client that has joined `topic` (with an ok reply).
    pub fn joined(&self, topic: &str) -> Client {
        let mut client = self.client();
        let reply = client.join(topic, json!({})).expect("join reply");
        assert_eq!(reply.status, "ok", "join of {topic}: {reply:?}");
        client
    }

    /// Waits for `terminate <topic> <reason>` to be recorded.
    pub fn wait_terminate(&self, topic: &str, reason: &str) {
        let line = format!("terminate {topic} {reason}");
        assert!(
            self.events().wait_for(&line, Duration::from_secs(5)),
            "expected {line:?}; recorded: {:#?}",
            self.events().all()
        );
    }

    /// Every `terminate` line recorded for `topic`.
    pub fn terminations(&self, topic: &str) -> Vec<String> {
        self.events().starting_with(&format!("terminate {topic} "))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.endpoint.shutdown();
    }
}

// ---------------------------------------------------------------------------------------
// Client helpers.
// ---------------------------------------------------------------------------------------

/// The JSON of a payload (panics on binary).
pub fn json_of(payload: &Payload) -> Value {
    payload.as_json().cloned().unwrap_or_else(|| panic!("expected JSON, got {payload:?}"))
}

/// A message with the given refs.
pub fn message(join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> Message {
    Message {
        join_ref: join_ref.map(str::to_owned),
        msg_ref: msg_ref.map(str::to_owned),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload: payload.into(),
    }
}

/// Everything the server sends up to and including the reply to `msg_ref`, in order.
/// The reply is last.
pub fn until_reply(client: &mut Client, msg_ref: &str) -> (Vec<ServerMessage>, Reply) {
    let mut before = Vec::new();
    loop {
        match client.recv().unwrap_or_else(|err| panic!("waiting for reply {msg_ref}: {err}; got {before:#?}")) {
            ServerMessage::Reply(reply) if reply.msg_ref.as_deref() == Some(msg_ref) => return (before, reply),
            other => before.push(other),
        }
    }
}

/// Sends `event` and returns everything up to and including its reply.
pub fn push_collect(client: &mut Client, topic: &str, event: &str, payload: Value) -> (Vec<ServerMessage>, Reply) {
    let msg_ref = client.push_async(topic, event, payload).unwrap();
    until_reply(client, &msg_ref)
}

/// The next `n` messages from the server.
pub fn recv_n(client: &mut Client, n: usize) -> Vec<ServerMessage> {
    (0..n).map(|i| client.recv().unwrap_or_else(|err| panic!("message {i} of {n}: {err}"))).collect()
}

/// A short description of a server message, for order assertions:
/// `reply:<ref>:<status>` or `<event>`.
pub fn describe(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Reply(r) => format!("reply:{}:{}", r.msg_ref.as_deref().unwrap_or("null"), r.status),
        ServerMessage::Message(m) => m.event.clone(),
    }
}

/// The message inside, or a panic.
pub fn as_message(msg: ServerMessage) -> Message {
    match msg {
        ServerMessage::Message(m) => m,
        other => panic!("expected a push or broadcast, got {other:?}"),
    }
}

/// Sends a heartbeat and asserts it is answered; proves the connection is alive.
pub fn assert_alive(client: &mut Client) {
    let reply = client.heartbeat().expect("heartbeat reply");
    assert_eq!(reply.status, "ok");
}

/// Polls `check` every 5 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP.
// ---------------------------------------------------------------------------------------

/// An HTTP response head and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A valid WebSocket upgrade request for `target` (path and query), with extra headers.
pub fn upgrade_request(target: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Sends `request` as is and reads the response head (and body, by content-length).
/// Leaves the stream open; a 101 response is followed by WebSocket frames.
pub fn http_exchange(addr: &str, request: &str) -> (HttpResponse, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("TCP connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(err) => panic!("reading the response head: {err}; read so far {:?}", String::from_utf8_lossy(&head)),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("no HTTP status in {text:?}");
    });
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() }, stream)
}

/// Sends `request` and returns the response (the stream is dropped).
pub fn http(addr: &str, request: &str) -> HttpResponse {
    http_exchange(addr, request).0
}

/// Standard base64 without padding, as the JS client's `btoa` with `=` removed.
pub fn btoa_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Raw WebSocket, for frames the client library will not send.
// ---------------------------------------------------------------------------------------

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A WebSocket connection driven byte by byte: frames are built and parsed here.
pub struct RawWs {
    pub stream: TcpStream,
}

impl RawWs {
    /// Performs the handshake on `target` (path and query); panics unless it gets 101.
    pub fn connect(addr: &str, target: &str) -> RawWs {
        RawWs::connect_with(addr, target, &[])
    }

    pub fn connect_with(addr: &str, target: &str, headers: &[(&str, &str)]) -> RawWs {
        let (response, stream) = http_exchange(addr, &upgrade_request(target, headers));
        assert_eq!(response.status, 101, "handshake on {target}: {response:?}");
        RawWs { stream }
    }

    /// Sends one masked frame with FIN set.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send_frame_raw(true, opcode, payload.len() as u64, payload);
    }

    /// Sends a frame header announcing `length` bytes, followed by `payload` (which may
    /// be shorter, to announce a huge frame cheaply).
    pub fn send_frame_raw(&mut self, fin: bool, opcode: u8, length: u64, payload: &[u8]) {
        let mut frame = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if length < 126 {
            frame.push(0x80 | length as u8);
        } else if length <= u16::MAX as u64 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&length.to_be_bytes());
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may close before taking it all; that is what some tests expect.
        let _ = self.stream.write_all(&frame);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(OP_TEXT, text.as_bytes());
    }

    pub fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string());
    }

    /// Reads one frame: (opcode, payload). Errors on timeout or a closed stream.
    pub fn read_frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head)?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut length = (head[1] & 0x7f) as u64;
        if length == 126 {
            let mut ext = [0u8; 2];
            self.stream.read_exact(&mut ext)?;
            length = u16::from_be_bytes(ext) as u64;
        } else if length == 127 {
            let mut ext = [0u8; 8];
            self.stream.read_exact(&mut ext)?;
            length = u64::from_be_bytes(ext);
        }
        let mut mask = [0u8; 4];
        if masked {
            self.stream.read_exact(&mut mask)?;
        }
        let mut payload = vec![0u8; length as usize];
        self.stream.read_exact(&mut payload)?;
        if masked {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
        }
        Ok((opcode, payload))
    }

    /// Reads one text frame as JSON (panics on anything else).
    pub fn read_json(&mut self) -> Value {
        let (opcode, payload) = self.read_frame().expect("a frame");
        assert_eq!(opcode, OP_TEXT, "expected a text frame, got opcode {opcode} {payload:?}");
        serde_json::from_slice(&payload).expect("JSON text frame")
    }

    /// Reads frames until a close frame; returns its code and the data frames before it.
    pub fn read_until_close(&mut self) -> (Option<u16>, Vec<(u8, Vec<u8>)>) {
        let mut before = Vec::new();
        loop {
            match self.read_frame() {
                Ok((OP_CLOSE, payload)) => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return (code, before);
                }
                Ok(frame) => before.push(frame),
                Err(err) => panic!("the connection ended without a close frame ({err}); frames: {before:?}"),
            }
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Process resources.
// ---------------------------------------------------------------------------------------

/// The test process's thread count (`Threads:` in /proc/self/status).
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/self/status")
}

/// The test process's open file descriptors (entries of /proc/self/fd).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
