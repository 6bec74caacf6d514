//! The Phoenix socket protocol above the transport: the sockets an endpoint mounts,
//! the handshake's checks (the WebSocket's and long-poll's) and the user's `connect`,
//! and each connection's session (Phoenix's `socket.ex`), which starts and routes to
//! channels. It reaches the transport only through the seam in `transport/handler.rs`.

pub(crate) mod connect_pool;
mod handshake;
mod long_poll;
pub(crate) mod routes;
pub(crate) mod session;
pub(crate) mod sockets;
pub(crate) mod user_socket;
