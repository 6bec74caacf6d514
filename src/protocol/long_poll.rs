//! The long-poll transport as the protocol sees it: which mount a long-poll path
//! belongs to, the origin check every request on it passes, and what a new session's
//! `connect` is run with. The transport serves the rest (`transport/long_poll/`).

use super::handshake::{self, ConnectRequest, Headers};
use super::routes::Routes;
use crate::transport::handler::{LongPollCheck, LongPollRoute, Peers};
use tungstenite::handshake::server::Request;

/// The header the official client sends its auth token in over long-poll.
const AUTH_TOKEN_HEADER: &str = "x-phoenix-authtoken";

/// Whether `request` is on a long-poll path, and if so, whether its origin passes the
/// socket's `check_origin` (as Phoenix checks it for every long-poll request).
pub(super) fn check(request: &Request, routes: &Routes, peers: Peers) -> Option<LongPollCheck> {
    let (mount, socket_mount, _) = routes.long_poll_mount(request.uri().path())?;
    let settings = &socket_mount.socket.settings;
    if !handshake::origin_allowed(&Headers::of(request, peers), settings, routes) {
        return Some(LongPollCheck::Forbidden);
    }
    Some(LongPollCheck::Serve(LongPollRoute {
        mount,
        settings: settings.long_poll?,
        max_frame_size: settings.max_frame_size,
        limits: settings.outbound,
    }))
}

/// What a new session's `connect` is run with; `None` when it cannot run (an unknown
/// `vsn`), which refuses the session. The auth token comes in `X-Phoenix-AuthToken`.
pub(super) fn connect_request(request: &Request, routes: &Routes, peers: Peers) -> Option<ConnectRequest> {
    let (_, mount, path_params) = routes.long_poll_mount(request.uri().path())?;
    let headers = Headers::of(request, peers);
    let auth_token = if mount.socket.settings.auth_token {
        headers.get(AUTH_TOKEN_HEADER).map(|t| t.as_bytes().to_vec())
    } else {
        None
    };
    handshake::connect_request(request, mount, path_params, &headers, peers, auth_token)
}
