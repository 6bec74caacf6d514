//! The transport's limits, set once for the whole endpoint.

use std::time::Duration;

/// Limits every reactor applies to the connections it holds.
#[derive(Clone, Debug)]
pub(crate) struct TransportSettings {
    /// Time a client has to send its HTTP request.
    pub(crate) handshake_timeout: Duration,
    /// Largest HTTP request head; larger ones get 431. Over TLS, also the most bytes a
    /// client may send before its handshake completes.
    pub(crate) max_header_bytes: usize,
    /// Most TCP connections at once, in any state; past that, new ones get 503.
    pub(crate) max_connections: usize,
    /// Most long-poll sessions at once; past that, a new one gets 503.
    pub(crate) max_sessions: usize,
    /// How long a stopping reactor waits for its connections to close.
    pub(crate) shutdown_timeout: Duration,
    /// How often deadlines (idle, handshake, closing, long-poll windows) are checked.
    pub(crate) tick: Duration,
    /// Serves TLS only, with this configuration (feature `tls`).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}
