//! A request on a long-poll path: its head (of any method), its body, and what the
//! transport reads from them. A WebSocket upgrade is always a `GET`; long-poll
//! requests are also `POST` with a body, `OPTIONS`, or anything else.

use crate::params::parse_query;
use crate::transport::framing::Framing;
use crate::transport::handler::LongPollRoute;
use serde_json::Value;
use tungstenite::handshake::server::Request;
use tungstenite::http::{self, HeaderMap, HeaderName, HeaderValue};

/// The most headers a request may have, as for a WebSocket upgrade.
const MAX_HEADERS: usize = 124;
/// Where a client that has the header sends its session token.
const TOKEN_HEADER: &str = "x-phoenix-longpoll-token";
/// The content type of a batch of frames, one a line.
const BATCH: &str = "application/x-ndjson";

/// What a long-poll request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// A poll, or a new session.
    Get,
    /// Frames for the session.
    Post,
    /// A CORS preflight.
    Options,
    /// Anything else: refused with 400.
    Other,
}

/// Why a request's body cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// `Transfer-Encoding` (chunked) instead of a `Content-Length`.
    NoLength,
    /// Longer than the route allows.
    TooLarge,
}

/// A request on a long-poll path, with its route and, once read, its body.
pub(crate) struct LongPollRequest {
    pub(crate) head: Request,
    pub(crate) route: LongPollRoute,
    pub(crate) body: Vec<u8>,
}

/// Parses a complete request head of any method and HTTP/1 version. Returns its length
/// and the request, or `None` when `buf` holds no complete, valid head.
pub(crate) fn parse_head(buf: &[u8]) -> Option<(usize, Request)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = raw.parse(buf).ok()? else { return None };
    let version = if raw.version? == 0 { http::Version::HTTP_10 } else { http::Version::HTTP_11 };
    let mut request = Request::new(());
    *request.method_mut() = http::Method::from_bytes(raw.method?.as_bytes()).ok()?;
    *request.uri_mut() = raw.path?.parse().ok()?;
    *request.version_mut() = version;
    let mut map = HeaderMap::with_capacity(raw.headers.len());
    for header in raw.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        map.append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    *request.headers_mut() = map;
    Some((len, request))
}

impl LongPollRequest {
    pub(crate) fn method(&self) -> Method {
        match *self.head.method() {
            http::Method::GET => Method::Get,
            http::Method::POST => Method::Post,
            http::Method::OPTIONS => Method::Options,
            _ => Method::Other,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.headers().get(name).and_then(|value| value.to_str().ok())
    }

    /// The session token: the header's, else the `token` query param's.
    pub(crate) fn token(&self) -> Option<String> {
        if let Some(token) = self.header(TOKEN_HEADER) {
            return Some(token.to_owned());
        }
        match parse_query(self.head.uri().query().unwrap_or("")).remove("token") {
            Some(Value::String(token)) => Some(token),
            _ => None,
        }
    }

    /// The length of the body to read, framed as the head said (checked already).
    pub(crate) fn body_length(&self, framing: Framing) -> Result<usize, BodyError> {
        let length = match framing {
            Framing::NoBody => 0,
            Framing::Length(length) => length,
            Framing::TransferEncoding => return Err(BodyError::NoLength),
        };
        if length > self.route.settings.max_body_bytes {
            return Err(BodyError::TooLarge);
        }
        Ok(length)
    }

    /// Whether the client waits for `100 Continue` before it sends its body.
    pub(crate) fn expects_continue(&self) -> bool {
        self.header("expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    }

    /// Whether the body is a batch of frames, one a line.
    pub(crate) fn is_batch(&self) -> bool {
        let media_type = self.header("content-type").and_then(|value| value.split(';').next()).unwrap_or("");
        media_type.trim().eq_ignore_ascii_case(BATCH)
    }

    /// The headers a CORS preflight asks to send, joined.
    pub(crate) fn preflight_headers(&self) -> String {
        let values = self.head.headers().get_all("access-control-request-headers").iter();
        values.filter_map(|value| value.to_str().ok()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_of_any_method_parse() {
        let head = b"POST /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
        let (len, request) = parse_head(head).unwrap();
        assert_eq!(&head[len..], b"body");
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().path(), "/socket/longpoll");
        assert_eq!(request.headers()["content-length"], "4");
        let (_, request) = parse_head(b"OPTIONS / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(request.version(), http::Version::HTTP_10);
    }

    #[test]
    fn incomplete_or_garbage_heads_do_not() {
        assert!(parse_head(b"POST / HTTP/1.1\r\nHost: x\r\n").is_none());
        assert!(parse_head(b"\x16\x03\x01 hello\r\n\r\n").is_none());
    }
}
