//! What can go wrong when a test connects or joins.

use crate::payload::Payload;
use crate::protocol::user_socket::Refusal;
use std::fmt;

/// Why [`testing::connect`](super::connect) gave no socket.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The socket's `connect` refused: what a client would get over HTTP.
    Refused(Refusal),
    /// The endpoint mounts no socket at this path.
    NotMounted(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused(refusal) => {
                write!(f, "connect refused with HTTP {}: {:?}", refusal.status, refusal.body)
            }
            ConnectError::NotMounted(path) => write!(f, "no socket is mounted at {path:?}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why a test's join gave no channel.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JoinError {
    /// The join was answered `error` with this response: the channel's refusal, or the
    /// connection's (`{"reason": "unmatched topic"}` for a topic no route takes).
    Refused(Payload),
    /// No reply came within the join timeout ([`Timeouts::sync`](super::Timeouts::sync)).
    Timeout,
    /// The connection has ended.
    Closed,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Refused(response) => write!(f, "the join was refused: {}", super::received::show(response)),
            JoinError::Timeout => f.write_str("no join reply came in time"),
            JoinError::Closed => f.write_str("the connection has ended"),
        }
    }
}

impl std::error::Error for JoinError {}
