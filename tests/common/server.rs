//! The test server: the standard socket every mount starts from, the
//! `ServerBuilder` that changes its settings, and the running `Server` with its client
//! shortcuts. Dropping a `Server` shuts the endpoint down.

use super::channels::{Bare, Lobby, Named, Room};
use super::events::{Ctx, Events};
use super::logs::init_logs;
use phx_channels::client::{Client, ClientBuilder};
use phx_channels::testing::{self, TestChannel, TestSocket, Timeouts};
use phx_channels::{Assigns, Endpoint, EndpointBuilder, Refusal, UserSocket};
use serde_json::{Value, json};
use std::time::Duration;

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

/// A socket whose `connect` keeps the `user` param as an assign, with [`Lobby`] at `lobby`.
pub fn lobby_socket() -> UserSocket {
    UserSocket::new()
        .connect(|params, _| Ok([("user".to_string(), params["user"].clone())].into_iter().collect()))
        .channel("lobby", |_| Lobby)
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

    /// Starts the server on a free port.
    pub fn start(self) -> Server {
        let (builder, ctx) = self.configured();
        let endpoint = builder.start().expect("the test endpoint starts");
        let addr = endpoint.local_addr().to_string();
        Server { endpoint, addr, ctx }
    }

    /// Starts the server without a listener, for [`Server::connect`] (in memory).
    pub fn start_in_memory(self) -> Server {
        let (builder, ctx) = self.configured();
        let endpoint = testing::endpoint(builder).expect("the test endpoint starts");
        Server { endpoint, addr: String::new(), ctx }
    }

    fn configured(self) -> (EndpointBuilder, Ctx) {
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
        ((self.endpoint)(builder), ctx)
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

/// A server with the standard settings and no listener: connect with [`Server::connect`].
pub fn in_memory() -> Server {
    server().start_in_memory()
}

/// Assertions wait long enough for a machine busy with other work; refutations as Phoenix's.
pub const TEST_TIMEOUTS: Timeouts =
    Timeouts { assert: Duration::from_secs(5), refute: Duration::from_millis(100), sync: Duration::from_secs(5) };

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

    /// An in-memory connection to `/socket` with `params` (see [`TEST_TIMEOUTS`]).
    pub fn connect(&self, params: Value) -> TestSocket {
        let socket = testing::connect(&self.endpoint, "/socket", params).expect("the test socket connects");
        socket.set_timeouts(TEST_TIMEOUTS);
        socket
    }

    /// An in-memory connection that has joined `topic` and subscribed to it.
    pub fn test_joined(&self, topic: &str) -> TestChannel {
        let (_, channel) = self.connect(json!({})).subscribe_and_join(topic, json!({})).expect("the join succeeds");
        channel
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
