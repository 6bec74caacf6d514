//! The crate's error type for operations on a running endpoint and its channels.

use crate::serializer::EncodeError;
use std::fmt;
use std::io;

/// What can go wrong when starting an endpoint, pushing, replying or broadcasting.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Binding the listener or starting a server thread failed.
    Io(io::Error),
    /// The endpoint configuration is invalid (for example a route pattern with `*` in
    /// the middle). The message says what to fix.
    Config(String),
    /// `push`, `broadcast` and `reply` are not available inside `join`.
    NotJoined,
    /// The payload cannot be encoded: a push or broadcast payload that is not a JSON
    /// object or bytes, bytes on a V1 connection, or a binary header field over
    /// 255 bytes.
    Encode(EncodeError),
    /// The client's connection is gone; what was sent to it is dropped.
    ConnectionClosed,
    /// The channel has ended; the message was not delivered.
    ChannelEnded,
    /// The channel's mailbox is full (it is not keeping up); the message was not delivered.
    Overloaded,
    /// A `SocketRef` can only be taken inside `handle_in`, where a message ref exists.
    NoRef,
    /// The endpoint has shut down.
    Shutdown,
    /// The endpoint's [`Adapter`](crate::Adapter) could not pass a broadcast on to the
    /// other nodes (a `broadcast` was still delivered on this node); the adapter's
    /// error says why.
    Adapter(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::Config(why) => write!(f, "invalid configuration: {why}"),
            Error::NotJoined => {
                f.write_str("push, broadcast and reply can only be used after the socket has finished joining")
            }
            Error::Encode(err) => write!(f, "cannot encode the message: {err}"),
            Error::ConnectionClosed => f.write_str("the connection is closed"),
            Error::ChannelEnded => f.write_str("the channel has ended"),
            Error::Overloaded => f.write_str("the channel's mailbox is full"),
            Error::NoRef => f.write_str("a socket_ref can only be taken inside handle_in"),
            Error::Shutdown => f.write_str("the endpoint has shut down"),
            Error::Adapter(err) => write!(f, "the pub/sub adapter failed: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::Encode(err) => Some(err),
            Error::Adapter(err) => Some(&**err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

impl From<EncodeError> for Error {
    fn from(err: EncodeError) -> Self {
        Error::Encode(err)
    }
}
