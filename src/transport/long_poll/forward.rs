//! Sessions of other nodes: the seam through which a cluster carries a long-poll
//! request to the node that holds its session, and the answer back.
//!
//! The transport knows nothing of how nodes talk: a cluster implements
//! [`SessionForwarder`] and hands the requests and answers it receives to
//! [`RemoteSessions`](crate::transport::reactor::RemoteSessions). A node that reads a
//! request whose token names another node parks the connection and forwards the request;
//! the owner runs it against the session as it runs a local one (a poll is held there
//! until output or the window's end) and sends back the whole HTTP response, which the
//! forwarding node writes as it came.

use bytes::Bytes;
use std::fmt;

/// What a forwarded request asks of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoteMethod {
    /// A poll.
    Get,
    /// Frames: the body is one frame.
    Post,
    /// Frames: the body is a batch, one frame a line.
    PostBatch,
}

/// A long-poll request for a session on another node.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RemoteRequest {
    pub(crate) method: RemoteMethod,
    /// The index of the mount the request arrived on: a token is good on its own mount only.
    pub(crate) mount: usize,
    pub(crate) token: String,
    /// A `POST`'s body (bounded by the mount's `max_body_bytes`); empty for a poll.
    pub(crate) body: Vec<u8>,
}

/// Names the connection a forwarded request came on, on the node that forwarded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    pub(crate) reactor: usize,
    pub(crate) slot: usize,
    /// The connection's serial, so that an answer never reaches a newer connection in
    /// the same slot.
    pub(crate) serial: u64,
}

/// The node that forwarded a request, and where its answer goes there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Asker {
    pub(crate) node: String,
    /// The run of that node: an answer for an earlier run is dropped.
    pub(crate) incarnation: u64,
    pub(crate) reply_to: ReplyTo,
}

/// The owner's answer to a forwarded request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RemoteAnswer {
    /// The complete HTTP response for the client.
    Response(Bytes),
    /// The token names no session there (it ended, or the node restarted): the
    /// forwarding node answers as for any token that names no session.
    NoSession,
}

/// Why a request could not be forwarded.
// Only a cluster (feature `redis`) forwards.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForwardError {
    /// The node was taken for gone, or this node is cut off from the cluster: the
    /// session cannot be reached.
    Unreachable,
    /// Too much is waiting to be sent to the cluster: try later.
    Busy,
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardError::Unreachable => "the session's node cannot be reached",
            ForwardError::Busy => "the queue to the cluster is full",
        })
    }
}

impl std::error::Error for ForwardError {}

/// Carries requests to the nodes that hold their sessions, and answers back; the
/// cluster implements it. Neither call may block.
pub(crate) trait SessionForwarder: Send + Sync + 'static {
    /// Sends `request` to node `node`; its answer is to reach `reply_to` on this node.
    fn forward(&self, node: &str, reply_to: ReplyTo, request: &RemoteRequest) -> Result<(), ForwardError>;

    /// Sends the answer to a request `asker` forwarded here.
    fn answer(&self, asker: &Asker, answer: &RemoteAnswer);
}
