//! The seam between the sockets and the protocol above them.
//!
//! The transport reads requests and frames and writes bytes; what a request or a frame
//! means is decided above, through two small traits. [`RequestHandler`] answers a
//! new connection's HTTP request, endpoint-wide; a [`ConnectionHandler`] is one open
//! connection's protocol state. Nothing in the transport knows about channels, topics
//! or the endpoint.
//!
//! A long-poll session drives a `ConnectionHandler` too: the request handler says
//! which paths are long-poll ones ([`LongPollRoute`]) and opens sessions through a
//! [`SessionLink`]; the transport does the rest.

use super::long_poll::LongPollSettings;
use super::mailbox::{ConnKey, Mailbox};
use super::outbound::{OutItem, Outbound, OutboundLimits};
use super::permessage_deflate::PerMessageDeflate;
use super::write_queue::WriteQueue;
use crate::serializer::RawFrame;
use crate::stats::Stats;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::handshake::server::Request;

/// The two ends of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peers {
    /// The client's address.
    pub(crate) remote: SocketAddr,
    /// The address the client connected to.
    pub(crate) local: SocketAddr,
    /// The connection is TLS: its requests are `https`.
    pub(crate) secure: bool,
}

/// What to do with a request read off a new connection.
pub(crate) enum Answer {
    /// Send these bytes (a complete HTTP response), then close.
    Respond(Bytes),
    /// The application is deciding, off the reactor; its [`Verdict`] will come through
    /// the connection's [`ConnectionLink`]. The connection waits until then.
    Deciding,
}

/// Answers the HTTP requests of new connections; one for the whole endpoint, shared
/// by every reactor. It must not block: work that may (the application's `connect`)
/// goes to other threads, which answer through the link.
pub(crate) trait RequestHandler: Send + Sync + 'static {
    /// Answers a request that parsed as an HTTP/1.1 `GET`.
    fn request(&self, request: &Request, peers: Peers, link: ConnectionLink) -> Answer;

    /// Answers any other request head (another method or HTTP version, or garbage).
    fn unparsed_request(&self, head: &[u8]) -> Bytes;

    /// Whether `request` (of any method) is for a long-poll path, and if so, whether
    /// its origin may use it. Asked before the other two.
    fn long_poll(&self, request: &Request, peers: Peers) -> Option<LongPollCheck>;

    /// Opens a long-poll session for a `GET` without a valid token: runs the socket's
    /// `connect` off the reactor, and answers through `link`.
    fn open_session(&self, request: &Request, peers: Peers, link: SessionLink);
}

/// A socket mount's long-poll transport, as the transport needs to know it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LongPollRoute {
    /// The mount's index: a session's token is good on its own mount only.
    pub(crate) mount: usize,
    pub(crate) settings: LongPollSettings,
    /// The largest frame a client may send.
    pub(crate) max_frame_size: usize,
    /// Bounds of a session's output waiting for a poll (and of its outbound queue).
    pub(crate) limits: OutboundLimits,
}

/// What the layer above says of a request on a long-poll path.
pub(crate) enum LongPollCheck {
    /// Its origin is not allowed: `{"status":403}`.
    Forbidden,
    /// Serve it.
    Serve(LongPollRoute),
}

/// Why an open connection is ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hangup {
    /// The client went away, the connection broke, or it was closed for cause.
    Closed,
    /// The server is shutting down.
    Draining,
}

/// A `disconnect` was asked for the connection: it closes with 1001.
#[derive(Debug)]
pub(crate) struct Disconnect;

/// One open connection's protocol state, driven by its reactor.
pub(crate) trait ConnectionHandler: Send {
    /// Handles one data frame. Frames the connection answers itself (a heartbeat's
    /// reply, say) go into `out` in order. An `Err` closes the connection as invalid
    /// data (1007), with that reason.
    fn receive(&mut self, frame: RawFrame<'_>, out: &mut WriteQueue) -> Result<(), String>;

    /// Applies one item taken from the connection's outbound queue.
    fn apply(&mut self, item: OutItem, out: &mut WriteQueue) -> Result<(), Disconnect>;

    /// The connection is going away; nothing more will be written.
    fn end(&mut self, why: Hangup);
}

/// A connection the application accepted.
pub(crate) struct Opened {
    /// The `101 Switching Protocols` response.
    pub(crate) response: Bytes,
    pub(crate) handler: Box<dyn ConnectionHandler>,
    /// Made with [`ConnectionLink::outbound`].
    pub(crate) outbound: Arc<Outbound>,
    /// Closes the connection after this long without data from the client.
    pub(crate) idle_timeout: Duration,
    /// The largest frame and message the client may send (inflated, if compressed).
    pub(crate) max_frame_size: usize,
    /// permessage-deflate, if the connection negotiated it.
    pub(crate) deflate: Option<PerMessageDeflate>,
}

/// A long-poll session the application accepted.
pub(crate) struct OpenedSession {
    pub(crate) handler: Box<dyn ConnectionHandler>,
    /// Made with [`SessionLink::outbound`].
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) route: LongPollRoute,
    /// The session's serial on the reactor.
    pub(crate) serial: u64,
}

/// The application's verdict on an upgrade or a new long-poll session.
pub(crate) enum Verdict {
    /// Send this HTTP response and close.
    Refuse(Bytes),
    /// Speak WebSocket.
    Open(Box<Opened>),
    /// Start the long-poll session.
    Session(Box<OpenedSession>),
    /// No long-poll session: `{"status":403}`.
    NoSession,
}

/// Where a reactor receives verdicts.
pub(super) type Verdicts = Sender<(ConnKey, Verdict)>;
/// A reactor's end of [`Verdicts`].
pub(super) type VerdictReceiver = Receiver<(ConnKey, Verdict)>;

/// The way back to the reactor that holds a connection waiting for a verdict.
pub(crate) struct WayBack {
    key: ConnKey,
    mailbox: Arc<Mailbox>,
    verdicts: Verdicts,
    stats: Arc<Stats>,
}

impl WayBack {
    pub(super) fn new(key: ConnKey, mailbox: Arc<Mailbox>, verdicts: Verdicts, stats: Arc<Stats>) -> Self {
        WayBack { key, mailbox, verdicts, stats }
    }

    fn deliver(self, verdict: Verdict) {
        // The reactor outlives every link it made, so the receiver is there to take it.
        let _ = self.verdicts.send((self.key, verdict));
        self.mailbox.wake();
    }
}

/// What the application gets to build an open connection with: its outbound queue,
/// and the way back to its reactor.
pub(crate) struct ConnectionLink {
    back: WayBack,
    /// The socket for producers' direct writes; none over TLS.
    stream: Option<Arc<TcpStream>>,
}

impl ConnectionLink {
    pub(super) fn new(back: WayBack, stream: Option<Arc<TcpStream>>) -> Self {
        ConnectionLink { back, stream }
    }

    /// The connection's outbound queue, with `limits`; frames worth it go out
    /// compressed when the connection negotiated `deflate`.
    pub(crate) fn outbound(&self, limits: OutboundLimits, deflate: Option<PerMessageDeflate>) -> Arc<Outbound> {
        let WayBack { key, mailbox, stats, .. } = &self.back;
        Arc::new(Outbound::new(*key, mailbox.clone(), limits, stats.clone(), self.stream.clone(), deflate))
    }

    /// Hands the verdict to the connection's reactor.
    pub(crate) fn deliver(self, verdict: Verdict) {
        self.back.deliver(verdict);
    }
}

/// What the application gets to open a long-poll session with: the session's outbound
/// queue, and the way back to the reactor that holds the request.
pub(crate) struct SessionLink {
    back: WayBack,
    route: LongPollRoute,
    serial: u64,
}

impl SessionLink {
    /// The link of a `GET` asking for session `serial` on `route`.
    pub(super) fn new(back: WayBack, route: LongPollRoute, serial: u64) -> Self {
        SessionLink { back, route, serial }
    }

    /// The session's outbound queue, with the route's limits.
    pub(crate) fn outbound(&self) -> Arc<Outbound> {
        let WayBack { mailbox, stats, .. } = &self.back;
        Arc::new(Outbound::for_session(self.serial, mailbox.clone(), self.route.limits, stats.clone()))
    }

    /// Starts the session, whose protocol state is `handler`.
    pub(crate) fn open(self, handler: Box<dyn ConnectionHandler>, outbound: Arc<Outbound>) {
        let opened = OpenedSession { handler, outbound, route: self.route, serial: self.serial };
        self.back.deliver(Verdict::Session(Box::new(opened)));
    }

    /// Refuses the session.
    pub(crate) fn refuse(self) {
        self.back.deliver(Verdict::NoSession);
    }
}
