//! The long-poll transport: Phoenix's fallback for clients that cannot open a
//! WebSocket, served at `<mount>/longpoll` when the socket enables it.
//!
//! A session is a protocol session (the `ConnectionHandler` a WebSocket connection
//! drives, unchanged) that lives across many short HTTP requests. Its client finds it
//! again with a signed token (`token.rs`): a `GET` polls for output and is held until
//! there is some or the window ends; a `POST` sends frames (`batch.rs`). The session
//! lives on one reactor of one node, named in its token; a request that arrives on
//! another reactor is handed over to it ([`HandOver`]), and one that arrives on another
//! node of a cluster is forwarded to it (`forward.rs`). The reactor's side is
//! `reactor/long_poll.rs`.

mod batch;
mod forward;
mod messages;
mod request;
pub(crate) mod response;
mod session;
mod settings;
mod token;

pub(crate) use batch::{NotBase64, frames};
pub(crate) use forward::{Asker, ForwardError, RemoteAnswer, RemoteMethod, RemoteRequest, ReplyTo, SessionForwarder};
pub(crate) use request::{BodyError, LongPollRequest, Method, parse_head};
pub(crate) use session::{End, LongPollSession, Poll, Waiter};
pub use settings::LongPollSettings;
pub(crate) use token::{SessionAt, SessionId, SessionTokens};

use super::stream::Stream;
use std::net::SocketAddr;

/// A request read by one reactor for a session another holds: the connection moves to
/// the session's reactor, which answers it.
pub(crate) struct HandOver {
    pub(crate) stream: Stream,
    pub(crate) peer: SocketAddr,
    pub(crate) request: Box<LongPollRequest>,
    pub(crate) session: SessionId,
    pub(crate) token: String,
}

/// A request another node forwarded for a session this reactor holds.
pub(crate) struct RemoteCall {
    pub(crate) asker: Asker,
    pub(crate) request: RemoteRequest,
    pub(crate) session: SessionId,
}
