//! A blocking Phoenix Channels client, for Rust programs without async (and for this
//! crate's tests and load tool).
//!
//! ```no_run
//! use phx_channels::client::Client;
//! use serde_json::json;
//!
//! let mut client = Client::builder("ws://127.0.0.1:4000/socket?token=abc").connect()?;
//! let reply = client.join("room:lobby", json!({}))?;
//! assert_eq!(reply.status, "ok");
//! client.push("room:lobby", "new_msg", json!({"body": "hi"}))?;
//! let msg = client.recv_event("room:lobby", "new_msg")?;
//! println!("{:?}", msg.payload);
//! client.leave("room:lobby")?;
//! # Ok::<(), phx_channels::client::ClientError>(())
//! ```
//!
//! The address is a socket's URL, as the JS client takes it, or a bare `host:port` with
//! [`ClientBuilder::path`] and [`ClientBuilder::param`]. With the `tls` feature,
//! `ClientBuilder::tls` connects over `wss://`.

mod stream;
#[cfg(feature = "tls")]
mod tls;
mod url;

#[cfg(feature = "tls")]
pub use tls::TlsRoots;
pub use url::UrlError;

use crate::message::{Message, PHX_JOIN, PHX_LEAVE, Ref, Reply};
use crate::payload::Payload;
use crate::serializer::{ClientFrame, DecodeError, EncodeError, RawFrame, Serializer, ServerMessage};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stream::ClientStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::{HandshakeError, Message as WsMessage, WebSocket};
use url::Target;

/// What can go wrong for a client.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection failed.
    Io(io::Error),
    /// The server refused the WebSocket upgrade with this HTTP status and body.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The WebSocket layer failed.
    WebSocket(tungstenite::Error),
    /// A server frame could not be decoded.
    Decode(DecodeError),
    /// A message could not be encoded.
    Encode(EncodeError),
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection, with this close code and reason if it sent one.
    Closed(Option<(u16, String)>),
    /// The address given to [`Client::builder`] is not usable.
    InvalidUrl(UrlError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(err) => write!(f, "I/O error: {err}"),
            ClientError::Refused { status, body } => write!(f, "connection refused with HTTP {status}: {body:?}"),
            ClientError::WebSocket(err) => write!(f, "WebSocket error: {err}"),
            ClientError::Decode(err) => write!(f, "cannot decode a server frame: {err}"),
            ClientError::Encode(err) => write!(f, "cannot encode the message: {err}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Closed(Some((code, reason))) => write!(f, "closed by the server: {code} {reason:?}"),
            ClientError::Closed(None) => f.write_str("closed by the server"),
            ClientError::InvalidUrl(err) => write!(f, "invalid address: {err}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(err: io::Error) -> Self {
        ClientError::Io(err)
    }
}

impl From<UrlError> for ClientError {
    fn from(err: UrlError) -> Self {
        ClientError::InvalidUrl(err)
    }
}

impl From<EncodeError> for ClientError {
    fn from(err: EncodeError) -> Self {
        ClientError::Encode(err)
    }
}

impl From<tungstenite::Error> for ClientError {
    fn from(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Io(err)
                if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                ClientError::Timeout
            }
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => ClientError::Closed(None),
            err => ClientError::WebSocket(err),
        }
    }
}

/// Connection settings for a [`Client`].
#[must_use = "a client builder does nothing until `connect` is called"]
pub struct ClientBuilder {
    /// `host:port`, or why the address given is not usable.
    addr: Result<String, UrlError>,
    /// From the URL's scheme: `Some(true)` for `wss://`; `None` for a bare address.
    secure: Option<bool>,
    path: String,
    params: Vec<(String, String)>,
    vsn: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<TlsRoots>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ClientBuilder");
        f.field("addr", &self.addr).field("path", &self.path).field("vsn", &self.vsn).field("timeout", &self.timeout);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some());
        // Params and headers may carry tokens: only their names.
        let names = |pairs: &[(String, String)]| pairs.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>();
        f.field("params", &names(&self.params)).field("headers", &names(&self.headers)).finish()
    }
}

impl ClientBuilder {
    /// The socket's mount path; default `/socket` (the client adds `/websocket`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.trim_end_matches('/').to_owned();
        self
    }

    /// Adds a connect param to the query string.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `vsn` param: `2.0.0` (V2) by default, `1.0.0` for V1, `None` to send none.
    pub fn vsn(mut self, vsn: Option<&str>) -> Self {
        self.vsn = vsn.map(str::to_owned);
        self
    }

    /// Adds a request header (for example `Origin` or `x-request-id`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// How long each wait for the server may take; default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects over TLS (`wss://`), trusting `roots` (feature `tls`). The server's
    /// certificate must name the host given to [`Client::builder`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, roots: TlsRoots) -> Self {
        self.tls = Some(roots);
        self
    }

    /// Connects and performs the WebSocket handshake.
    pub fn connect(self) -> Result<Client, ClientError> {
        let addr = self.addr.clone()?;
        #[cfg(feature = "tls")]
        match (self.secure, &self.tls) {
            (Some(true), None) => return Err(UrlError::NeedsTlsRoots.into()),
            (Some(false), Some(_)) => return Err(UrlError::PlainWithTls.into()),
            _ => {}
        }
        #[cfg(not(feature = "tls"))]
        if self.secure == Some(true) {
            return Err(UrlError::NeedsTlsFeature.into());
        }
        let serializer = match self.vsn.as_deref() {
            None => Serializer::V1,
            Some(vsn) => Serializer::negotiate(Some(vsn)).unwrap_or(Serializer::V2),
        };
        let mut query: Vec<String> = self.params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        if let Some(vsn) = &self.vsn {
            query.push(format!("vsn={}", encode(vsn)));
        }
        #[cfg(feature = "tls")]
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        #[cfg(not(feature = "tls"))]
        let scheme = "ws";
        let url = format!("{scheme}://{addr}{}/websocket?{}", self.path, query.join("&"));
        let mut request = url.into_client_request()?;
        for (name, value) in &self.headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|err| ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, err)))?;
            let value =
                value.parse().map_err(|err| ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, err)))?;
            request.headers_mut().append(name, value);
        }
        let stream = TcpStream::connect(&addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(self.timeout))?;
        #[cfg(feature = "tls")]
        let stream = match &self.tls {
            Some(roots) => ClientStream::tls(stream, &addr, roots)?,
            None => ClientStream::Plain(stream),
        };
        #[cfg(not(feature = "tls"))]
        let stream = ClientStream::Plain(stream);
        let ws = match tungstenite::client::client(request, stream) {
            Ok((ws, _response)) => ws,
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body = response.into_body().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                return Err(ClientError::Refused { status, body });
            }
            Err(HandshakeError::Failure(err)) => return Err(err.into()),
            Err(HandshakeError::Interrupted(_)) => return Err(ClientError::Timeout),
        };
        Ok(Client { ws, serializer, next_ref: 0, inbox: VecDeque::new(), joins: HashMap::new(), timeout: self.timeout })
    }
}

/// Percent-encodes a query string component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blocking Phoenix Channels client over one WebSocket connection.
///
/// Every wait is bounded by the builder's timeout. Messages that arrive while waiting
/// for something else are kept, in order, for [`recv`](Client::recv).
pub struct Client {
    ws: WebSocket<ClientStream>,
    serializer: Serializer,
    next_ref: u64,
    inbox: VecDeque<ServerMessage>,
    joins: HashMap<String, String>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("serializer", &self.serializer)
            .field("joined", &self.joins.keys().collect::<Vec<_>>())
            .field("waiting", &self.inbox.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for the server at `addr`: a socket's URL as the JS
    /// client takes it (`ws://host:port/socket`, `wss://host/socket?token=abc`; the
    /// path, without `/websocket`, and the query's params, `vsn` included, are taken
    /// from it), or a bare `host:port` (then the path is `/socket`, and
    /// [`tls`](ClientBuilder::tls) decides the scheme). A URL that is not usable (a
    /// scheme other than `ws` and `wss`, no host, a bad port; `wss://` without
    /// [`tls`](ClientBuilder::tls) or without the `tls` feature) makes
    /// [`connect`](ClientBuilder::connect) fail with [`ClientError::InvalidUrl`].
    ///
    /// ```no_run
    /// use phx_channels::client::Client;
    ///
    /// let client = Client::builder("ws://127.0.0.1:4000/socket?token=abc").connect()?;
    /// let same = Client::builder("127.0.0.1:4000").path("/socket").param("token", "abc").connect()?;
    /// # Ok::<(), phx_channels::client::ClientError>(())
    /// ```
    pub fn builder(addr: impl Into<String>) -> ClientBuilder {
        let (addr, secure, path, mut params) = match Target::parse(&addr.into()) {
            Ok(Target { addr, secure, path, params }) => (Ok(addr), secure, path, params),
            Err(err) => (Err(err), None, None, Vec::new()),
        };
        let vsn = match params.iter().position(|(key, _)| key == "vsn") {
            Some(at) => Some(params.remove(at).1),
            None => Some("2.0.0".into()),
        };
        ClientBuilder {
            addr,
            secure,
            path: path.unwrap_or_else(|| "/socket".into()),
            params,
            vsn,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The connection's wire format.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// A fresh ref.
    pub fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// The join ref of the current join of `topic`.
    pub fn join_ref(&self, topic: &str) -> Option<&str> {
        self.joins.get(topic).map(String::as_str)
    }

    /// Joins `topic` and waits for the reply.
    pub fn join(&mut self, topic: &str, payload: impl Into<Payload>) -> Result<Reply, ClientError> {
        let join_ref = self.make_ref();
        self.joins.insert(topic.to_owned(), join_ref.clone());
        let msg = Message {
            join_ref: Some(Ref::from(join_ref.as_str())),
            msg_ref: Some(Ref::from(join_ref.as_str())),
            topic: topic.to_owned(),
            event: PHX_JOIN.to_owned(),
            payload: payload.into(),
        };
        self.send(&msg)?;
        self.wait_reply(&join_ref)
    }

    /// Pushes `event` to `topic` and waits for the reply.
    pub fn push(&mut self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<Reply, ClientError> {
        let msg_ref = self.push_async(topic, event, payload)?;
        self.wait_reply(&msg_ref)
    }

    /// Pushes `event` to `topic` without waiting; returns the message's ref.
    pub fn push_async(&mut self, topic: &str, event: &str, payload: impl Into<Payload>) -> Result<String, ClientError> {
        let msg_ref = self.make_ref();
        let msg = Message {
            join_ref: self.joins.get(topic).map(|join_ref| Ref::from(join_ref.as_str())),
            msg_ref: Some(Ref::from(msg_ref.as_str())),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: payload.into(),
        };
        self.send(&msg)?;
        Ok(msg_ref)
    }

    /// Leaves `topic` and waits for the reply.
    pub fn leave(&mut self, topic: &str) -> Result<Reply, ClientError> {
        let reply = self.push(topic, PHX_LEAVE, Payload::empty());
        self.joins.remove(topic);
        reply
    }

    /// Sends a heartbeat and waits for the reply.
    pub fn heartbeat(&mut self) -> Result<Reply, ClientError> {
        let msg_ref = self.make_ref();
        let msg = Message {
            msg_ref: Some(Ref::from(msg_ref.as_str())),
            ..Message::new("phoenix", "heartbeat", Payload::empty())
        };
        self.send(&msg)?;
        self.wait_reply(&msg_ref)
    }

    /// Sends any message exactly as given.
    pub fn send(&mut self, msg: &Message) -> Result<(), ClientError> {
        let frame = match self.serializer.encode_client(msg)? {
            ClientFrame::Text(text) => WsMessage::text(text),
            ClientFrame::Binary(bytes) => WsMessage::binary(bytes),
        };
        self.ws.send(frame)?;
        Ok(())
    }

    /// Sends a raw WebSocket message (for testing how a server handles bad input).
    pub fn send_raw(&mut self, msg: WsMessage) -> Result<(), ClientError> {
        self.ws.send(msg)?;
        Ok(())
    }

    /// The next message from the server: a push, a broadcast, or a reply not yet taken.
    pub fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(msg) = self.inbox.pop_front() {
            return Ok(msg);
        }
        self.read(Instant::now() + self.timeout)
    }

    /// Waits for a push or broadcast of `event` on `topic`; other messages are kept.
    pub fn recv_event(&mut self, topic: &str, event: &str) -> Result<Message, ClientError> {
        let is_it = |m: &ServerMessage| matches!(m, ServerMessage::Message(m) if m.topic == topic && m.event == event);
        let ServerMessage::Message(msg) = self.wait_for(is_it)? else { unreachable!("matched in wait_for") };
        Ok(msg)
    }

    /// Waits for the reply with `msg_ref`; other messages are kept.
    pub fn wait_reply(&mut self, msg_ref: &str) -> Result<Reply, ClientError> {
        let is_it = |m: &ServerMessage| matches!(m, ServerMessage::Reply(r) if r.msg_ref.as_ref().is_some_and(|r| *r == *msg_ref));
        let ServerMessage::Reply(reply) = self.wait_for(is_it)? else { unreachable!("matched in wait_for") };
        Ok(reply)
    }

    /// The first kept message that `is_it` accepts, or else the first one read that it
    /// accepts; the others read meanwhile are kept, in order.
    fn wait_for(&mut self, is_it: impl Fn(&ServerMessage) -> bool) -> Result<ServerMessage, ClientError> {
        if let Some(at) = self.inbox.iter().position(&is_it) {
            return Ok(self.inbox.remove(at).expect("position found it"));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self.read(deadline)?;
            if is_it(&msg) {
                return Ok(msg);
            }
            self.inbox.push_back(msg);
        }
    }

    /// Reads until the server closes the connection; returns its close code and reason.
    /// Messages read meanwhile are kept.
    pub fn wait_close(&mut self) -> Result<Option<(u16, String)>, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read(deadline) {
                Ok(msg) => self.inbox.push_back(msg),
                Err(ClientError::Closed(close)) => return Ok(close),
                Err(err) => return Err(err),
            }
        }
    }

    /// Closes the connection with a close frame (code 1000).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.ws.close(None)?;
        // Read until the server's close reply ends the connection.
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn read(&mut self, deadline: Instant) -> Result<ServerMessage, ClientError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            self.ws.get_ref().tcp().set_read_timeout(Some(left))?;
            let frame = match self.ws.read()? {
                WsMessage::Text(text) => self.serializer.decode_server(RawFrame::Text(text.as_bytes())),
                WsMessage::Binary(bytes) => self.serializer.decode_server(RawFrame::Binary(&bytes)),
                WsMessage::Close(close) => {
                    return Err(ClientError::Closed(
                        close.map(|CloseFrame { code, reason }| (code.into(), reason.to_string())),
                    ));
                }
                _ => continue,
            };
            return frame.map_err(ClientError::Decode);
        }
    }
}
