//! What `connect` may learn about the request besides its params.

use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// The parts of the request a socket asks for with
/// [`UserSocket::connect_info`](crate::UserSocket::connect_info). Only those are filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectInfoKey {
    /// The peer's address and port.
    PeerData,
    /// Every header whose name starts with `x-`.
    XHeaders,
    /// Every header whose name starts with `sec-websocket-`.
    SecWebsocketHeaders,
    /// The `traceparent` and `tracestate` headers.
    TraceContextHeaders,
    /// The request's scheme, host, port, path and query.
    Uri,
    /// The `user-agent` header.
    UserAgent,
    /// Every request header.
    Headers,
}

/// The peer of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerData {
    /// The peer's address and port.
    pub addr: SocketAddr,
}

/// The request URI as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestUri {
    /// Always `http` here (the endpoint does not terminate TLS).
    pub scheme: String,
    /// From the `Host` header.
    pub host: String,
    /// From the `Host` header, or the local port.
    pub port: u16,
    /// The path, for example `/socket/websocket`.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
}

/// Request details handed to `connect`. Header names are lower-case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// With [`ConnectInfoKey::PeerData`].
    pub peer_data: Option<PeerData>,
    /// With [`ConnectInfoKey::XHeaders`].
    pub x_headers: Option<Vec<(String, String)>>,
    /// With [`ConnectInfoKey::SecWebsocketHeaders`].
    pub sec_websocket_headers: Option<Vec<(String, String)>>,
    /// With [`ConnectInfoKey::TraceContextHeaders`].
    pub trace_context_headers: Option<Vec<(String, String)>>,
    /// With [`ConnectInfoKey::Uri`].
    pub uri: Option<RequestUri>,
    /// With [`ConnectInfoKey::UserAgent`]: `Some(None)` when the header is absent.
    pub user_agent: Option<Option<String>>,
    /// With [`ConnectInfoKey::Headers`].
    pub headers: Option<Vec<(String, String)>>,
    /// The token from `Sec-WebSocket-Protocol`, with
    /// [`UserSocket::auth_token`](crate::UserSocket::auth_token).
    pub auth_token: Option<Vec<u8>>,
}

impl ConnectInfo {
    /// Fills in the `keys` from the request.
    pub(crate) fn gather(
        keys: &[ConnectInfoKey],
        headers: &[(String, String)],
        peer: SocketAddr,
        uri: RequestUri,
    ) -> ConnectInfo {
        let pick = |f: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
            headers.iter().filter(|(name, _)| f(name)).cloned().collect()
        };
        let mut info = ConnectInfo::default();
        for key in keys {
            match key {
                ConnectInfoKey::PeerData => info.peer_data = Some(PeerData { addr: peer }),
                ConnectInfoKey::XHeaders => info.x_headers = Some(pick(&|n| n.starts_with("x-"))),
                ConnectInfoKey::SecWebsocketHeaders => {
                    info.sec_websocket_headers = Some(pick(&|n| n.starts_with("sec-websocket-")))
                }
                ConnectInfoKey::TraceContextHeaders => {
                    info.trace_context_headers = Some(pick(&|n| n == "traceparent" || n == "tracestate"))
                }
                ConnectInfoKey::Uri => info.uri = Some(uri.clone()),
                ConnectInfoKey::UserAgent => {
                    info.user_agent = Some(headers.iter().find(|(n, _)| n == "user-agent").map(|(_, v)| v.clone()))
                }
                ConnectInfoKey::Headers => info.headers = Some(headers.to_vec()),
            }
        }
        info
    }

    /// The filled-in parts as JSON, in Phoenix's shapes (handy for echoing or logging).
    pub fn to_json(&self) -> Value {
        let headers = |list: &Vec<(String, String)>| {
            Value::Object(list.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
        };
        let mut out = Map::new();
        if let Some(peer) = &self.peer_data {
            out.insert("peer_data".into(), json!({"address": peer.addr.ip().to_string(), "port": peer.addr.port()}));
        }
        for (name, list) in [
            ("x_headers", &self.x_headers),
            ("sec_websocket_headers", &self.sec_websocket_headers),
            ("trace_context_headers", &self.trace_context_headers),
            ("headers", &self.headers),
        ] {
            if let Some(list) = list {
                out.insert(name.into(), headers(list));
            }
        }
        if let Some(uri) = &self.uri {
            out.insert(
                "uri".into(),
                json!({"scheme": uri.scheme, "host": uri.host, "port": uri.port, "path": uri.path, "query": uri.query}),
            );
        }
        if let Some(agent) = &self.user_agent {
            out.insert("user_agent".into(), json!(agent));
        }
        Value::Object(out)
    }
}
