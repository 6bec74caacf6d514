//! The endpoint's HTTP routes: the sockets mounted at their paths (`/socket` serves
//! the WebSocket at `/socket/websocket`, and long-poll at `/socket/longpoll` when the
//! socket enables it), and the static responses.

use super::user_socket::UserSocket;
use crate::origin::EndpointHosts;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// A response the endpoint serves for a fixed path (see
/// [`EndpointBuilder::static_response`](crate::EndpointBuilder::static_response)).
#[derive(Clone)]
pub(crate) struct StaticResponse {
    pub(crate) content_type: String,
    pub(crate) body: Body,
}

/// What a fixed path answers with.
#[derive(Clone)]
pub(crate) enum Body {
    /// The same bytes every time.
    Fixed(Bytes),
    /// Bytes made for each request (the metrics page).
    Generated(Arc<dyn Fn() -> Bytes + Send + Sync>),
}

impl StaticResponse {
    /// The body to send now.
    pub(crate) fn body(&self) -> Bytes {
        match &self.body {
            Body::Fixed(bytes) => bytes.clone(),
            Body::Generated(make) => make(),
        }
    }
}

/// The params a mount's path captures (`:name` segments), in order.
pub(crate) type PathParams = Vec<(String, String)>;

/// Every path the endpoint answers.
pub(crate) struct Routes {
    pub(crate) mounts: Vec<Arc<Mount>>,
    pub(crate) statics: HashMap<String, StaticResponse>,
    /// The endpoint's host, for origin checks.
    pub(crate) host: EndpointHosts,
}

impl Routes {
    /// The socket whose WebSocket path is `path`, with the params its path captures.
    pub(crate) fn mount(&self, path: &str) -> Option<(&Arc<Mount>, PathParams)> {
        self.mounts.iter().find_map(|mount| mount.matches(path, WEBSOCKET).map(|params| (mount, params)))
    }

    /// The socket whose long-poll path is `path`, if it enables long-poll: its index,
    /// the mount, and the params its path captures.
    pub(crate) fn long_poll_mount(&self, path: &str) -> Option<(usize, &Arc<Mount>, PathParams)> {
        self.mounts.iter().enumerate().find_map(|(index, mount)| {
            mount.socket.settings.long_poll?;
            mount.matches(path, LONG_POLL).map(|params| (index, mount, params))
        })
    }
}

/// The last segment of a mount's WebSocket path.
const WEBSOCKET: &str = "websocket";
/// The last segment of a mount's long-poll path.
const LONG_POLL: &str = "longpoll";

/// A socket mounted at a path.
pub(crate) struct Mount {
    /// The mount path, as configured (for logs).
    pub(crate) path: String,
    /// The mount path's segments; `:name` segments capture connect params.
    segments: Vec<String>,
    pub(crate) socket: Arc<UserSocket>,
}

impl Mount {
    pub(crate) fn new(path: &str, socket: UserSocket) -> Mount {
        let segments = path.trim_end_matches('/').split('/').map(str::to_owned).collect();
        Mount { path: path.to_owned(), segments, socket: Arc::new(socket) }
    }

    /// The path params if `path` is this mount's path followed by `/<transport>`.
    fn matches(&self, path: &str, transport: &str) -> Option<PathParams> {
        let (path, last) = path.rsplit_once('/')?;
        let parts: Vec<&str> = path.split('/').collect();
        if last != transport || parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment.strip_prefix(':') {
                Some(name) if !part.is_empty() => params.push((name.to_owned(), crate::params::decode(part))),
                _ if segment == part => {}
                _ => return None,
            }
        }
        Some(params)
    }
}
