//! Unit tests for channels, as Phoenix.ChannelTest: connect a socket, join channels,
//! push to them and assert what they reply, push and broadcast, all in memory.
//!
//! A test connection is the real connection state (the session that routes messages,
//! starts channel threads and turns their exits into `phx_close` and `phx_error`) with
//! no socket beneath it: the test's calls play the part of the client and of the
//! connection's reactor, and the test sees exactly the messages a client would. Channels
//! run on their own threads with their whole lifecycle (`join`, `handle_in`,
//! `handle_out`, `handle_info`, `terminate`, crashes, presence), as in production.
//! The endpoint comes from [`endpoint`], which starts everything but the listener.
//!
//! | Phoenix.ChannelTest | phx-channels |
//! |---|---|
//! | `connect(UserSocket, params, connect_info: info)` | [`connect`], [`connect_with_info`] |
//! | `socket(UserSocket, id, assigns)` | [`socket`] |
//! | `subscribe_and_join(socket, topic, payload)` | [`TestSocket::subscribe_and_join`] |
//! | `join(socket, topic, payload)` | [`TestSocket::join`] |
//! | `push(socket, event, payload)` | [`TestChannel::push`] |
//! | `leave(socket)`, `close(socket)` | [`TestChannel::leave`], [`TestChannel::close`] |
//! | `broadcast_from(socket, event, payload)` | [`TestChannel::broadcast_from`] |
//! | `assert_reply ref, :ok` | [`TestChannel::assert_reply`] |
//! | `assert_reply ref, :ok, %{"id" => 7}` | [`TestChannel::assert_reply_with`]`(&r, "ok", json!({"id": 7}))` |
//! | `assert_push "ev"`, `assert_broadcast "ev"` | [`TestChannel::assert_push`], [`TestChannel::assert_broadcast`] |
//! | `assert_push "ev", %{"by" => "bob"}`, `assert_broadcast ...` | [`TestChannel::assert_push_with`]`("ev", json!({"by": "bob"}))`, [`TestChannel::assert_broadcast_with`] |
//! | `assert_push "ev", %{"n" => n} when n > 1` | [`TestChannel::assert_push_with`]`("ev", `[`matching`]`(\|p\| ...))` |
//! | `refute_reply`, `refute_push`, `refute_broadcast` | [`TestChannel::refute_reply`], [`TestChannel::refute_push`], [`TestChannel::refute_broadcast`], and their `_with` forms |
//! | `config :ex_unit, assert_receive_timeout: ms` | [`set_default_timeouts`] |
//! | `@endpoint.broadcast(topic, event, payload)` | [`Endpoint::broadcast`] |
//! | `send(socket.channel_pid, msg)` | [`TestChannel::handle`], then [`ChannelHandle::send`](crate::ChannelHandle::send) |
//!
//! An assertion matches the event (and the ref and status of a reply), and in its
//! `_with` form the payload too, as Phoenix's patterns do: a JSON object is a map
//! pattern (the keys it names, with equal values; other keys allowed), [`equals`] is
//! the exact payload and [`matching`] a predicate (see [`PayloadPattern`]). Messages
//! that do not match are skipped and stay for later assertions. An assertion returns
//! the payload it matched. Assertions wait up to 100 ms by default, as Phoenix's; see
//! [`Timeouts`] and [`set_default_timeouts`].
//!
//! # Example
//!
//! ```
//! use phx_channels::testing;
//! use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
//! use serde_json::json;
//!
//! struct Counter {
//!     count: u64,
//! }
//!
//! impl Channel for Counter {
//!     fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
//!         Ok(json!({"count": self.count}).into())
//!     }
//!
//!     fn handle_in(&mut self, event: &str, _payload: Payload, socket: &mut Socket) -> Handled {
//!         match event {
//!             "inc" => {
//!                 self.count += 1;
//!                 socket.push("count", json!({"count": self.count})).ok();
//!                 Handled::reply_ok(json!({"count": self.count}))
//!             }
//!             _ => Handled::unhandled(event),
//!         }
//!     }
//! }
//!
//! // In a test, this is the body of a `#[test]` function.
//! let socket = UserSocket::new().channel("counter:*", |_| Counter { count: 0 });
//! let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket))?;
//! let socket = testing::connect(&endpoint, "/socket", json!({}))?;
//!
//! let (reply, counter) = socket.subscribe_and_join("counter:1", json!({}))?;
//! assert_eq!(reply, json!({"count": 0}).into());
//!
//! let inc = counter.push("inc", json!({}));
//! assert_eq!(counter.assert_reply(&inc, "ok"), json!({"count": 1}).into());
//! assert_eq!(counter.assert_push("count"), json!({"count": 1}).into());
//! counter.refute_push("count");
//!
//! let leave = counter.leave();
//! counter.assert_reply(&leave, "ok");
//! counter.assert_push("phx_close");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod pattern;
mod received;
mod test_channel;
mod test_socket;
mod timeouts;
mod wire;

pub use error::{ConnectError, JoinError};
pub use pattern::{PayloadPattern, contains, equals, matching};
pub use test_channel::TestChannel;
pub use test_socket::TestSocket;
pub use timeouts::{Timeouts, default_timeouts, set_default_timeouts};

use crate::connect_info::ConnectInfo;
use crate::endpoint::{Endpoint, EndpointBuilder};
use crate::error::Error;
use crate::protocol::routes::{Mount, PathParams};
use crate::protocol::session::Session;
use crate::socket::Assigns;
use crate::transport::mailbox::{ConnKey, Mailbox};
use crate::transport::outbound::Outbound;
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::Arc;
use wire::{SERIALIZER, Wire};

/// Starts `builder`'s endpoint without a listener: pubsub, presence, channel threads
/// and everything else run as usual, but no port is bound and no client can connect
/// over the network; tests connect with [`connect`]. Shut it down (or drop every
/// handle) as any endpoint.
///
/// ```
/// use phx_channels::{Endpoint, testing};
///
/// let endpoint = testing::endpoint(Endpoint::builder())?;
/// endpoint.broadcast("room:lobby", "news", serde_json::json!({}))?; // nobody listens yet
/// endpoint.shutdown();
/// # Ok::<(), phx_channels::Error>(())
/// ```
pub fn endpoint(builder: EndpointBuilder) -> Result<Endpoint, Error> {
    builder.start_without_listener()
}

/// Connects to the socket mounted at `path` (as a client's `new Socket(path)`) with
/// `params`, a JSON object: runs the socket's `connect` and `id`, then opens the
/// connection in memory. A refusal is what `connect` returned. Phoenix.ChannelTest's
/// `connect/3`.
///
/// ```
/// use phx_channels::testing::{self, ConnectError};
/// use phx_channels::{Endpoint, Refusal, UserSocket};
/// use serde_json::json;
///
/// let socket = UserSocket::new().connect(|params, _info| match params.get("token") {
///     Some(_) => Ok(Default::default()),
///     None => Err(Refusal::forbidden()),
/// });
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket))?;
/// assert!(testing::connect(&endpoint, "/socket", json!({"token": "abc"})).is_ok());
/// let refused = testing::connect(&endpoint, "/socket", json!({})).err();
/// assert_eq!(refused, Some(ConnectError::Refused(Refusal::forbidden())));
/// # Ok::<(), phx_channels::Error>(())
/// ```
///
/// # Panics
///
/// When `params` is not a JSON object.
pub fn connect(endpoint: &Endpoint, path: &str, params: Value) -> Result<TestSocket, ConnectError> {
    connect_with_info(endpoint, path, params, ConnectInfo::default())
}

/// Like [`connect`], with the [`ConnectInfo`] the socket's `connect` gets (which over
/// the network would come from the request).
///
/// ```
/// use phx_channels::testing;
/// use phx_channels::{ConnectInfo, Endpoint, Refusal, UserSocket};
/// use serde_json::json;
///
/// let socket = UserSocket::new().connect(|_params, info| match &info.user_agent {
///     Some(Some(_)) => Ok(Default::default()),
///     _ => Err(Refusal::new(400, "who are you?")),
/// });
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", socket))?;
/// let mut info = ConnectInfo::default();
/// info.user_agent = Some(Some("a test".to_owned()));
/// assert!(testing::connect_with_info(&endpoint, "/socket", json!({}), info).is_ok());
/// # Ok::<(), phx_channels::Error>(())
/// ```
///
/// # Panics
///
/// When `params` is not a JSON object.
pub fn connect_with_info(
    endpoint: &Endpoint,
    path: &str,
    params: Value,
    info: ConnectInfo,
) -> Result<TestSocket, ConnectError> {
    let Value::Object(mut params) = params else { panic!("connect params must be a JSON object, got {params}") };
    let (mount, path_params) = mount(endpoint, path)?;
    for (name, value) in path_params {
        params.insert(name, Value::String(value));
    }
    let (assigns, id) = mount.socket.run_connect(&params, &info).map_err(ConnectError::Refused)?;
    Ok(open(endpoint, mount, assigns, id))
}

/// A connection to the socket mounted at `path` with the given socket id and assigns,
/// without running `connect`. Phoenix.ChannelTest's `socket/3`.
///
/// ```
/// use phx_channels::testing;
/// use phx_channels::{Endpoint, UserSocket};
///
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new()))?;
/// let assigns = [("user_id".to_string(), 7.into())].into_iter().collect();
/// let _socket = testing::socket(&endpoint, "/socket", Some("user_socket:7"), assigns)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn socket(endpoint: &Endpoint, path: &str, id: Option<&str>, assigns: Assigns) -> Result<TestSocket, ConnectError> {
    let (mount, _) = mount(endpoint, path)?;
    Ok(open(endpoint, mount, assigns, id.map(str::to_owned)))
}

/// The socket mounted at `path`, and the params its path captures.
fn mount(endpoint: &Endpoint, path: &str) -> Result<(Arc<Mount>, PathParams), ConnectError> {
    let ws_path = format!("{}/websocket", path.trim_end_matches('/'));
    let routes = &endpoint.sockets().routes;
    let (mount, params) = routes.mount(&ws_path).ok_or_else(|| ConnectError::NotMounted(path.to_owned()))?;
    Ok((mount.clone(), params))
}

/// Opens a connection in memory: its session, its outbound queue and the mailbox the
/// queue wakes the test through.
fn open(endpoint: &Endpoint, mount: Arc<Mount>, assigns: Assigns, id: Option<String>) -> TestSocket {
    let runtime = endpoint.sockets().runtime.clone();
    let poll = mio::Poll::new().expect("an epoll instance for a test connection");
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("a waker for a test connection");
    let mailbox = Arc::new(Mailbox::new(waker));
    let limits = mount.socket.settings.outbound;
    let key = ConnKey { slot: 0, serial: 0 };
    let outbound = Arc::new(Outbound::new(key, mailbox.clone(), limits, runtime.stats.clone(), None, None));
    let pubsub = runtime.pubsub.clone();
    let session = Session::new(runtime, mount, SERIALIZER, assigns, id, outbound.clone());
    let slot = Arc::new(Mutex::new(Some(session)));
    endpoint.in_memory().add(&slot);
    TestSocket::new(Arc::new(Wire::new(slot, outbound, mailbox, poll)), pubsub)
}
