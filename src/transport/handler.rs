//! The seam between the sockets and the protocol above them.
//!
//! The transport reads requests and frames and writes bytes; what a request or a frame
//! means is decided above, through two small traits. [`RequestHandler`] answers a
//! new connection's HTTP request, endpoint-wide; a [`ConnectionHandler`] is one open
//! connection's protocol state. Nothing in the transport knows about channels, topics
//! or the endpoint.

use super::mailbox::{ConnKey, Mailbox};
use super::outbound::{OutItem, Outbound, OutboundLimits};
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
    /// The largest frame and message the client may send.
    pub(crate) max_frame_size: usize,
}

/// The application's verdict on an upgrade.
pub(crate) enum Verdict {
    /// Send this HTTP response and close.
    Refuse(Bytes),
    /// Speak WebSocket.
    Open(Box<Opened>),
}

/// Where a reactor receives verdicts.
pub(super) type Verdicts = Sender<(ConnKey, Verdict)>;
/// A reactor's end of [`Verdicts`].
pub(super) type VerdictReceiver = Receiver<(ConnKey, Verdict)>;

/// What the application gets to build an open connection with: its outbound queue,
/// and the way back to its reactor.
pub(crate) struct ConnectionLink {
    key: ConnKey,
    mailbox: Arc<Mailbox>,
    verdicts: Verdicts,
    /// The socket for producers' direct writes; none over TLS.
    stream: Option<Arc<TcpStream>>,
    stats: Arc<Stats>,
}

impl ConnectionLink {
    pub(super) fn new(
        key: ConnKey,
        mailbox: Arc<Mailbox>,
        verdicts: Verdicts,
        stream: Option<Arc<TcpStream>>,
        stats: Arc<Stats>,
    ) -> Self {
        ConnectionLink { key, mailbox, verdicts, stream, stats }
    }

    /// The connection's outbound queue, with `limits`.
    pub(crate) fn outbound(&self, limits: OutboundLimits) -> Arc<Outbound> {
        Arc::new(Outbound::new(self.key, self.mailbox.clone(), limits, self.stats.clone(), self.stream.clone()))
    }

    /// Hands the verdict to the connection's reactor.
    pub(crate) fn deliver(self, verdict: Verdict) {
        // The reactor outlives every link it made, so the receiver is there to take it.
        let _ = self.verdicts.send((self.key, verdict));
        self.mailbox.wake();
    }
}
