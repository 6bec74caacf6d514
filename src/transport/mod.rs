//! Sockets and bytes: the acceptor, the reactors (mio), the handshake, and the
//! per-connection protocol state machine. Nothing here runs user code except the
//! connect workers, which exist so that reactors never do.

pub(crate) mod acceptor;
pub(crate) mod connect_pool;
mod handshake;
pub(crate) mod http;
pub(crate) mod mailbox;
pub(crate) mod outbound;
pub(crate) mod reactor;
mod session;
mod write_queue;
