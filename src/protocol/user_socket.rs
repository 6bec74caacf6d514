//! A socket definition, like a Phoenix `UserSocket` module: `connect`, `id`, channel
//! routes and the per-socket settings.

use crate::channel::Channel;
use crate::connect_info::{ConnectInfo, ConnectInfoKey};
use crate::origin::CheckOrigin;
use crate::params::Params;
use crate::router::Route;
use crate::socket::Assigns;
use crate::transport::long_poll::LongPollSettings;
use crate::transport::outbound::OutboundLimits;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

/// A refused connection: the HTTP status and body the client gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status, 403 by default.
    pub status: u16,
    /// The response body, empty by default.
    pub body: String,
}

impl Refusal {
    /// 403 with an empty body: Phoenix's answer to `connect` returning `:error`.
    pub fn forbidden() -> Self {
        Refusal { status: 403, body: String::new() }
    }

    /// Any status and body, as a Phoenix `error_handler` would send (for example
    /// `Refusal::new(429, "Too many requests")`).
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Refusal { status, body: body.into() }
    }
}

type ConnectFn = dyn Fn(&Params, &ConnectInfo) -> Result<Assigns, Refusal> + Send + Sync;
type IdFn = dyn Fn(&Assigns) -> Option<String> + Send + Sync;

/// Per-socket settings, with Phoenix's defaults.
#[derive(Clone, Debug)]
pub(crate) struct SocketSettings {
    pub(crate) max_channels: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_frame_size: usize,
    pub(crate) check_origin: CheckOrigin,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) auth_token: bool,
    pub(crate) connect_info: Vec<ConnectInfoKey>,
    pub(crate) outbound: OutboundLimits,
    pub(crate) log_connect: Option<log::Level>,
    /// The long-poll transport, off unless set.
    pub(crate) long_poll: Option<LongPollSettings>,
    /// permessage-deflate for WebSocket clients that offer it, off unless set.
    pub(crate) compress: bool,
}

impl Default for SocketSettings {
    fn default() -> Self {
        SocketSettings {
            max_channels: 100,
            idle_timeout: Duration::from_secs(60),
            max_frame_size: 10_000_000,
            check_origin: CheckOrigin::default(),
            subprotocols: Vec::new(),
            auth_token: false,
            connect_info: Vec::new(),
            outbound: OutboundLimits::default(),
            log_connect: Some(log::Level::Info),
            long_poll: None,
            compress: false,
        }
    }
}

/// A socket: how clients connect, and which channels they may join.
///
/// ```
/// use phx_channels::{Channel, JoinResult, Payload, Refusal, Socket, UserSocket};
/// # struct Room;
/// # impl Channel for Room {
/// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
/// # }
/// let socket = UserSocket::new()
///     .connect(|params, _info| match params.get("token").and_then(|t| t.as_str()) {
///         Some(token) => Ok([("user".to_string(), token.into())].into_iter().collect()),
///         None => Err(Refusal::forbidden()),
///     })
///     .id(|assigns| assigns.get("user").and_then(|u| u.as_str()).map(|u| format!("user_socket:{u}")))
///     .channel("room:*", |_topic| Room)
///     .max_channels(100);
/// ```
#[derive(Clone)]
#[must_use = "a socket does nothing until it is mounted with `EndpointBuilder::socket`"]
pub struct UserSocket {
    pub(crate) routes: Vec<Route>,
    pub(crate) connect: Arc<ConnectFn>,
    pub(crate) id: Arc<IdFn>,
    pub(crate) settings: SocketSettings,
    pub(crate) errors: Vec<String>,
}

impl fmt::Debug for UserSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSocket")
            .field("channels", &self.routes.iter().map(|route| route.name).collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for UserSocket {
    fn default() -> Self {
        UserSocket::new()
    }
}

impl UserSocket {
    /// A socket that accepts every connection with empty assigns, has no id and no routes.
    pub fn new() -> Self {
        UserSocket {
            routes: Vec::new(),
            connect: Arc::new(|_, _| Ok(Assigns::new())),
            id: Arc::new(|_| None),
            settings: SocketSettings::default(),
            errors: Vec::new(),
        }
    }

    /// Decides whether a client may connect, from its params (the query string, `vsn`
    /// included) and the [`ConnectInfo`] asked for. Returns the socket assigns, or a
    /// [`Refusal`]. Runs on the endpoint's connect workers, never on a reactor.
    pub fn connect<F>(mut self, connect: F) -> Self
    where
        F: Fn(&Params, &ConnectInfo) -> Result<Assigns, Refusal> + Send + Sync + 'static,
    {
        self.connect = Arc::new(connect);
        self
    }

    /// The socket id, from the assigns `connect` returned. A connection with an id
    /// subscribes to it as a topic; an endpoint broadcast of `disconnect` there closes
    /// every such connection.
    pub fn id<F>(mut self, id: F) -> Self
    where
        F: Fn(&Assigns) -> Option<String> + Send + Sync + 'static,
    {
        self.id = Arc::new(id);
        self
    }

    /// Routes topics matching `pattern` (exact, or a prefix ending in `*`) to channels
    /// made by `factory`. The first matching route wins.
    pub fn channel<C, F>(self, pattern: &str, factory: F) -> Self
    where
        C: Channel,
        F: Fn(&str) -> C + Send + Sync + 'static,
    {
        self.channel_with_assigns(pattern, Assigns::new(), factory)
    }

    /// Like [`channel`](UserSocket::channel), with static assigns merged into the
    /// socket assigns before `join`.
    pub fn channel_with_assigns<C, F>(mut self, pattern: &str, assigns: Assigns, factory: F) -> Self
    where
        C: Channel,
        F: Fn(&str) -> C + Send + Sync + 'static,
    {
        match Route::new(pattern, assigns, factory) {
            Ok(route) => self.routes.push(route),
            Err(err) => self.errors.push(err.to_string()),
        }
        self
    }

    /// Most channels one connection may have joined at once; default 100.
    pub fn max_channels(mut self, max: usize) -> Self {
        self.settings.max_channels = max;
        self
    }

    /// Closes a connection that sent nothing for this long; default 60 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Largest frame or message accepted, in bytes; default 10 000 000.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.max_frame_size = bytes;
        self
    }

    /// Which `Origin` headers are accepted; default [`CheckOrigin::EndpointHost`].
    pub fn check_origin(mut self, check: CheckOrigin) -> Self {
        self.settings.check_origin = check;
        self
    }

    /// Subprotocols to negotiate; the first configured one the client offers is echoed.
    pub fn subprotocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> Self {
        self.settings.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts the JS client's `authToken`, carried in `Sec-WebSocket-Protocol` (over
    /// long-poll, in the `X-Phoenix-AuthToken` header), into [`ConnectInfo::auth_token`].
    pub fn auth_token(mut self, enabled: bool) -> Self {
        self.settings.auth_token = enabled;
        self
    }

    /// The parts of the request `connect` gets in its [`ConnectInfo`].
    pub fn connect_info<I: IntoIterator<Item = ConnectInfoKey>>(mut self, keys: I) -> Self {
        self.settings.connect_info = keys.into_iter().collect();
        self
    }

    /// Bounds of each connection's queue of unwritten frames. A connection that falls
    /// further behind is closed as a slow consumer (close code 1008).
    pub fn outbound_limits(mut self, limits: OutboundLimits) -> Self {
        self.settings.outbound = limits;
        self
    }

    /// The level of `CONNECTED TO` lines, or `None` for none; default info.
    pub fn log_connect(mut self, level: Option<log::Level>) -> Self {
        self.settings.log_connect = level;
        self
    }

    /// Compresses WebSocket messages (permessage-deflate, RFC 7692) for clients that
    /// offer it, as Phoenix's `websocket: [compress: true]`; off by default. Browsers
    /// offer it on every connection.
    ///
    /// ```
    /// use phx_channels::UserSocket;
    ///
    /// let socket = UserSocket::new().compress(true);
    /// ```
    ///
    /// The server compresses each message on its own (it answers every offer with
    /// `server_no_context_takeover`), so a broadcast is compressed once per wire format
    /// and the same bytes go to every compressed subscriber; messages under 128 bytes,
    /// and those compression does not shorten, go out plain. It honours the client's
    /// `client_no_context_takeover`, `client_max_window_bits` and
    /// `server_max_window_bits`, and declines offers it cannot honour. A compressed
    /// message that inflates past [`max_frame_size`](UserSocket::max_frame_size) closes
    /// the connection with 1009, as an oversized frame does, once it passes the limit.
    pub fn compress(mut self, enabled: bool) -> Self {
        self.settings.compress = enabled;
        self
    }

    /// Runs `connect`, then `id` on the assigns it returned: the connection's assigns
    /// and socket id, or the refusal. A panicking `connect` or `id` refuses with 403.
    pub(crate) fn run_connect(
        &self,
        params: &Params,
        info: &ConnectInfo,
    ) -> Result<(Assigns, Option<String>), Refusal> {
        catch_unwind(AssertUnwindSafe(|| {
            (self.connect)(params, info).map(|assigns| {
                let id = (self.id)(&assigns);
                (assigns, id)
            })
        }))
        .unwrap_or_else(|_| {
            log::error!("connect panicked; refusing the connection with 403");
            Err(Refusal::forbidden())
        })
    }

    /// Serves the long-poll transport too, at `<mount>/longpoll`, with `settings`; off
    /// by default. Clients that cannot open a WebSocket (the official client's
    /// `longPollFallbackMs`, or `transport: LongPoll`) poll over plain HTTP instead, with
    /// the same `connect`, `check_origin`, channels, serializers and limits.
    ///
    /// ```
    /// use phx_channels::{LongPollSettings, UserSocket};
    /// use std::time::Duration;
    ///
    /// let socket = UserSocket::new().long_poll(LongPollSettings::new().window(Duration::from_secs(10)));
    /// ```
    ///
    /// A session lives in this process, on the reactor that opened it, for as long as
    /// its client polls; its token is signed with the endpoint's
    /// [`secret_key_base`](crate::EndpointBuilder::secret_key_base). Behind a load
    /// balancer with several servers, a client must keep reaching the same one.
    pub fn long_poll(mut self, settings: LongPollSettings) -> Self {
        self.settings.long_poll = Some(settings);
        self
    }
}
