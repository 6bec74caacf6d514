//! What can go wrong when a test connects or joins.

use crate::payload::Payload;
use crate::protocol::user_socket::Refusal;
use std::fmt;

/// Why [`testing::connect`](super::connect) gave no socket.
///
/// ```
/// use phx_channels::testing::{self, ConnectError};
/// use phx_channels::Endpoint;
///
/// let endpoint = testing::endpoint(Endpoint::builder())?;
/// let missing = testing::connect(&endpoint, "/socket", serde_json::json!({})).err();
/// assert_eq!(missing, Some(ConnectError::NotMounted("/socket".into())));
/// # Ok::<(), phx_channels::Error>(())
/// ```
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
///
/// ```
/// use phx_channels::testing::{self, JoinError};
/// use phx_channels::{Endpoint, UserSocket};
/// use serde_json::json;
///
/// let endpoint = testing::endpoint(Endpoint::builder().socket("/socket", UserSocket::new()))?;
/// let socket = testing::connect(&endpoint, "/socket", json!({}))?;
/// let unmatched = socket.join("room:1", json!({})).err();
/// assert_eq!(unmatched, Some(JoinError::Refused(json!({"reason": "unmatched topic"}).into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
