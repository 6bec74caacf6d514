//! Why a channel stopped: Phoenix's exit reasons, which decide between `phx_close`
//! and `phx_error`.

use std::fmt;

/// Why a channel stopped, as Phoenix's exit reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `:normal`: graceful, the client gets `phx_close`.
    Normal,
    /// `:shutdown`: graceful.
    Shutdown,
    /// `{:shutdown, detail}`: graceful; `left`, `closed` and `draining` are the server's own.
    ShutdownWith(String),
    /// Any other reason: the client gets `phx_error`, and the stop is logged as an error.
    Error(String),
}

impl StopReason {
    /// `{shutdown, left}`: the client left the channel.
    pub fn left() -> Self {
        StopReason::ShutdownWith("left".into())
    }

    /// `{shutdown, closed}`: the connection closed.
    pub fn closed() -> Self {
        StopReason::ShutdownWith("closed".into())
    }

    /// `{shutdown, draining}`: the server is shutting down.
    pub fn draining() -> Self {
        StopReason::ShutdownWith("draining".into())
    }

    /// Whether the client gets `phx_close` (graceful) rather than `phx_error`.
    pub fn is_graceful(&self) -> bool {
        !matches!(self, StopReason::Error(_))
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Normal => f.write_str("normal"),
            StopReason::Shutdown => f.write_str("shutdown"),
            StopReason::ShutdownWith(detail) => write!(f, "{{shutdown, {detail}}}"),
            StopReason::Error(why) => f.write_str(why),
        }
    }
}
