//! Sockets and bytes: the acceptor, the reactors (mio), each connection's state and
//! writer, the outbound queues other threads hand frames to, and the long-poll
//! transport (`long_poll/`), whose sessions the reactors hold.
//!
//! Nothing here knows about channels, topics or the endpoint: what a request or a
//! frame means is decided by the layer above, through the traits in `handler.rs`.

pub(crate) mod acceptor;
mod conn;
mod framing;
pub(crate) mod handler;
pub(crate) mod http;
mod inflate;
pub(crate) mod listener;
pub(crate) mod long_poll;
pub(crate) mod mailbox;
pub(crate) mod outbound;
pub(crate) mod permessage_deflate;
pub(crate) mod reactor;
pub(crate) mod settings;
mod socket_writer;
mod stream;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub(crate) mod tls_config;
pub(crate) mod write_queue;
