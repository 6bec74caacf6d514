//! From a parsed HTTP request to a decision: a plain HTTP answer, or a WebSocket
//! upgrade that waits for the socket's `connect`. Here are the socket-level checks:
//! the path, the method, `check_origin`, subprotocols and the auth token, the wire
//! format (`vsn`), and the connect info. The long-poll transport (`long_poll.rs`)
//! makes the same checks with the same functions.

use super::routes::{Mount, PathParams, Routes};
use super::user_socket::SocketSettings;
use crate::connect_info::{ConnectInfo, RequestUri};
use crate::origin::Origin;
use crate::params::{Params, parse_query};
use crate::serializer::Serializer;
use crate::transport::handler::Peers;
use crate::transport::http;
use crate::transport::permessage_deflate::PerMessageDeflate;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use tungstenite::handshake::server::{Request, create_response, write_response};

/// The prefix of the JS client's auth token entry in `Sec-WebSocket-Protocol`.
const TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// What to do with a request.
pub(super) enum Decision {
    /// Answer with these bytes, then close.
    Respond(Bytes),
    /// Run the socket's `connect`; on success, send `upgrade` and speak WebSocket.
    Connect(Box<Upgrade>),
}

/// What a socket's `connect` is run with.
pub(super) struct ConnectRequest {
    pub(super) mount: Arc<Mount>,
    pub(super) params: Params,
    pub(super) info: ConnectInfo,
    pub(super) serializer: Serializer,
}

/// A valid upgrade request, waiting for `connect`.
pub(super) struct Upgrade {
    pub(super) request: ConnectRequest,
    /// The `101 Switching Protocols` response.
    pub(super) response: Bytes,
    /// permessage-deflate, if the socket compresses and the client offered it.
    pub(super) deflate: Option<PerMessageDeflate>,
}

/// A request's headers, and the host and port it was sent to.
pub(super) struct Headers {
    list: Vec<(String, String)>,
    host: String,
    port: u16,
    /// `https` over TLS, `http` otherwise.
    scheme: &'static str,
}

impl Headers {
    pub(super) fn of(request: &Request, peers: Peers) -> Headers {
        let list: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let host = list.iter().find(|(name, _)| name == "host").map_or("", |(_, value)| value.as_str());
        let (host, port) = host_and_port(host, peers.local.port());
        let scheme = if peers.secure { "https" } else { "http" };
        Headers { list, host, port, scheme }
    }

    /// The first value of header `name` (lowercase).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.list.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lowercase), in order.
    pub(super) fn all(&self, name: &'static str) -> impl Iterator<Item = &str> {
        self.list.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub(super) fn decide(request: &Request, routes: &Routes, peers: Peers) -> Decision {
    let path = request.uri().path();
    let is_get = request.method() == "GET";
    if let Some(page) = routes.statics.get(path)
        && (is_get || request.method() == "HEAD")
    {
        return Decision::Respond(http::response(200, &page.content_type, &page.body(), !is_get));
    }
    let Some((mount, path_params)) = routes.mount(path) else {
        return Decision::Respond(http::text(404, "Not Found"));
    };
    if !is_get {
        return Decision::Respond(http::response(400, "text/plain", b"", false));
    }
    let settings = &mount.socket.settings;
    let headers = Headers::of(request, peers);
    if !origin_allowed(&headers, settings, routes) {
        return forbidden();
    }
    let (protocol, auth_token) = match negotiate_protocols(headers.get("sec-websocket-protocol"), settings) {
        Ok(found) => found,
        Err(refusal) => return Decision::Respond(refusal),
    };
    let Some(connect) = connect_request(request, mount, path_params, &headers, peers, auth_token) else {
        return forbidden();
    };
    let mut response = match create_response(request) {
        Ok(response) => response,
        Err(err) => return Decision::Respond(http::text(400, &err.to_string())),
    };
    if let Some(protocol) = protocol
        && let Ok(value) = protocol.parse()
    {
        response.headers_mut().insert("sec-websocket-protocol", value);
    }
    let deflate =
        settings.compress.then(|| PerMessageDeflate::negotiate(headers.all("sec-websocket-extensions"))).flatten();
    if let Some(agreed) = &deflate
        && let Ok(value) = agreed.response().parse()
    {
        response.headers_mut().insert("sec-websocket-extensions", value);
    }
    let mut head = Vec::with_capacity(256);
    if let Err(err) = write_response(&mut head, &response) {
        return Decision::Respond(http::text(400, &err.to_string()));
    }
    Decision::Connect(Box::new(Upgrade { request: connect, response: Bytes::from(head), deflate }))
}

/// The socket's `check_origin` on the request's `Origin` header (a request without one
/// passes). A refusal is logged.
pub(super) fn origin_allowed(headers: &Headers, settings: &SocketSettings, routes: &Routes) -> bool {
    let Some(origin) = headers.get("origin") else { return true };
    let request_origin =
        Origin { scheme: Some(headers.scheme.into()), host: Some(headers.host.clone()), port: Some(headers.port) };
    if settings.check_origin.allows(origin, &routes.host, &request_origin) {
        return true;
    }
    log::error!(
        "Could not check origin for Phoenix.Socket transport.\n\nOrigin of the request: {origin}\n\n\
         This happens when you are attempting a socket connection to a different host than the one \
         configured in your endpoint (phx-channels: EndpointBuilder::host), or the socket's check_origin \
         (UserSocket::check_origin) does not list this origin."
    );
    false
}

/// What `connect` is run with: the params (the query string's and the path's), the
/// wire format their `vsn` asks for, and the connect info. `None` for a `vsn` the
/// socket does not speak (logged).
pub(super) fn connect_request(
    request: &Request,
    mount: &Arc<Mount>,
    path_params: PathParams,
    headers: &Headers,
    peers: Peers,
    auth_token: Option<Vec<u8>>,
) -> Option<ConnectRequest> {
    let (path, query) = (request.uri().path(), request.uri().query().unwrap_or(""));
    let mut params = parse_query(query);
    for (name, value) in path_params {
        params.insert(name, Value::String(value));
    }
    let serializer = match params.get("vsn") {
        None => Ok(Serializer::V1),
        Some(Value::String(vsn)) => Serializer::negotiate(Some(vsn)),
        Some(other) => Err(crate::serializer::VsnError::Invalid(other.to_string())),
    };
    let serializer = serializer.inspect_err(|err| log::warn!("{err}")).ok()?;
    let (host, port) = (headers.host.clone(), headers.port);
    let uri = RequestUri { scheme: headers.scheme.into(), host, port, path: path.to_owned(), query: query.to_owned() };
    let mut info = ConnectInfo::gather(&mount.socket.settings.connect_info, &headers.list, peers.remote, uri);
    info.auth_token = auth_token;
    Some(ConnectRequest { mount: mount.clone(), params, info, serializer })
}

/// The answer to a request tungstenite does not parse (not `GET`, or not HTTP/1.1):
/// a static page for `GET`/`HEAD` of its path, 400 with an empty body on a socket path
///, 405 on a static path, 404 elsewhere, and 400 when there is no request line.
pub(super) fn answer_other(head: &[u8], routes: &Routes) -> Bytes {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return http::text(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return http::text(400, "Bad Request");
    }
    let path = target.split('?').next().unwrap_or("");
    if let Some(page) = routes.statics.get(path) {
        return match method {
            "GET" | "HEAD" => http::response(200, &page.content_type, &page.body(), method == "HEAD"),
            _ => http::text(405, "Method Not Allowed"),
        };
    }
    if routes.mount(path).is_some() {
        return http::response(400, "text/plain", b"", false);
    }
    http::text(404, "Not Found")
}

fn forbidden() -> Decision {
    Decision::Respond(http::response(403, "text/plain", b"", false))
}

/// Splits a `Host` header; the port defaults to the local port.
fn host_and_port(host: &str, local_port: u16) -> (String, u16) {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name.to_owned(), port.parse().unwrap_or(local_port))
        }
        _ => (host.to_owned(), local_port),
    }
}

type Negotiated = (Option<String>, Option<Vec<u8>>);

/// Subprotocol negotiation and the auth token: the protocol to echo, and the
/// token taken out of the header. A refusal is the HTTP answer to send.
fn negotiate_protocols(header: Option<&str>, settings: &SocketSettings) -> Result<Negotiated, Bytes> {
    let mut offered: Vec<&str> = header.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let mut allowed: Vec<&str> = settings.subprotocols.iter().map(String::as_str).collect();
    let mut token = None;
    if settings.auth_token {
        allowed.insert(0, "phoenix");
        if let Some(at) = offered.iter().position(|p| p.starts_with(TOKEN_PREFIX)) {
            let encoded = &offered.remove(at)[TOKEN_PREFIX.len()..];
            match crate::base64::decode(encoded) {
                Some(bytes) => token = Some(bytes),
                None => return Err(http::text(400, "malformed auth token")),
            }
        }
    }
    if allowed.is_empty() || offered.is_empty() {
        return Ok((None, token)); // nothing configured, or nothing offered
    }
    match allowed.iter().find(|p| offered.contains(p)) {
        Some(protocol) => Ok((Some((*protocol).to_owned()), token)),
        None => {
            log::error!(
                "Could not negotiate a WebSocket subprotocol: the client offered {offered:?}, the socket allows {allowed:?}"
            );
            Err(http::response(403, "text/plain", b"", false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_ignored_without_configuration() {
        let settings = SocketSettings::default();
        assert_eq!(negotiate_protocols(Some("foo, bar"), &settings).unwrap(), (None, None));
    }

    #[test]
    fn the_first_configured_match_is_echoed() {
        let settings = SocketSettings { subprotocols: vec!["b".into(), "a".into()], ..Default::default() };
        assert_eq!(negotiate_protocols(Some("a, b"), &settings).unwrap().0.as_deref(), Some("b"));
        assert!(negotiate_protocols(Some("c"), &settings).is_err());
        assert_eq!(negotiate_protocols(None, &settings).unwrap(), (None, None));
    }

    #[test]
    fn the_auth_token_is_taken_out_and_phoenix_echoed() {
        let settings = SocketSettings { auth_token: true, ..Default::default() };
        let (protocol, token) = negotiate_protocols(Some("phoenix, base64url.bearer.phx.c2VjcmV0"), &settings).unwrap();
        assert_eq!(protocol.as_deref(), Some("phoenix"));
        assert_eq!(token.as_deref(), Some(&b"secret"[..]));
    }
}
