//! What [`Client::builder`](super::Client::builder) is given: a bare `host:port`, or a
//! `ws://` or `wss://` URL as the JS client takes it.

use crate::params::decode;
use std::fmt;

/// Why a client's address is not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// A scheme other than `ws` and `wss`.
    Scheme(String),
    /// The URL names no host.
    NoHost,
    /// The port is not a number from 0 to 65535.
    Port(String),
    /// A `wss://` URL without [`ClientBuilder::tls`](super::ClientBuilder::tls).
    NeedsTlsRoots,
    /// A `wss://` URL in a build without the `tls` feature.
    NeedsTlsFeature,
    /// A `ws://` URL with [`ClientBuilder::tls`](super::ClientBuilder::tls): plain and TLS at once.
    PlainWithTls,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme(scheme) => {
                write!(f, "unsupported scheme {scheme:?}: give ws://host:port/path, wss://host:port/path or host:port")
            }
            UrlError::NoHost => f.write_str("the URL names no host"),
            UrlError::Port(port) => write!(f, "invalid port {port:?}"),
            UrlError::NeedsTlsRoots => f.write_str("wss:// needs the certificates to trust: ClientBuilder::tls(roots)"),
            UrlError::NeedsTlsFeature => f.write_str("wss:// needs phx-channels' `tls` feature"),
            UrlError::PlainWithTls => f.write_str("ws:// is plain: use wss:// to connect over TLS"),
        }
    }
}

impl std::error::Error for UrlError {}

/// A parsed address.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target {
    /// `host:port`, to connect to (and, over TLS, the certificate's name).
    pub(super) addr: String,
    /// `Some(true)` for `wss://`, `Some(false)` for `ws://`, `None` for a bare address.
    pub(super) secure: Option<bool>,
    /// The socket's mount path, if the URL has one (`/websocket` taken off).
    pub(super) path: Option<String>,
    /// The URL's query parameters, decoded.
    pub(super) params: Vec<(String, String)>,
}

impl Target {
    pub(super) fn parse(text: &str) -> Result<Target, UrlError> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Target { addr: text.to_owned(), secure: None, path: None, params: Vec::new() });
        };
        let (secure, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ws" => (false, 80),
            "wss" => (true, 443),
            _ => return Err(UrlError::Scheme(scheme.to_owned())),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let authority = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => {
                (host, port.parse::<u16>().map_err(|_| UrlError::Port(port.to_owned()))?)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() || host == "[]" {
            return Err(UrlError::NoHost);
        }
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix("/websocket").unwrap_or(path);
        let params = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key), decode(value))
            })
            .collect();
        Ok(Target {
            addr: format!("{host}:{port}"),
            secure: Some(secure),
            path: (!path.is_empty()).then(|| path.to_owned()),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, secure: Option<bool>, path: Option<&str>, params: &[(&str, &str)]) -> Target {
        let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Target { addr: addr.into(), secure, path: path.map(str::to_owned), params }
    }

    #[test]
    fn urls_give_address_scheme_path_and_params() {
        assert_eq!(Target::parse("127.0.0.1:4000"), Ok(target("127.0.0.1:4000", None, None, &[])));
        assert_eq!(
            Target::parse("ws://localhost:4000/socket"),
            Ok(target("localhost:4000", Some(false), Some("/socket"), &[]))
        );
        assert_eq!(Target::parse("WS://example.com"), Ok(target("example.com:80", Some(false), None, &[])));
        assert_eq!(
            Target::parse("wss://example.com/live/websocket?token=a%2Bb&vsn=2.0.0&x=1+2#frag"),
            Ok(target(
                "example.com:443",
                Some(true),
                Some("/live"),
                &[("token", "a+b"), ("vsn", "2.0.0"), ("x", "1 2")]
            ))
        );
        assert_eq!(
            Target::parse("ws://[::1]:4000/socket/"),
            Ok(target("[::1]:4000", Some(false), Some("/socket"), &[]))
        );
        assert_eq!(Target::parse("ws://[::1]/"), Ok(target("[::1]:80", Some(false), None, &[])));
        assert_eq!(Target::parse("ws://h?bad=%zz%"), Ok(target("h:80", Some(false), None, &[("bad", "%zz%")])));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(Target::parse("http://example.com/socket"), Err(UrlError::Scheme("http".into())));
        assert_eq!(Target::parse("ws:///socket"), Err(UrlError::NoHost));
        assert_eq!(Target::parse("ws://example.com:99999/"), Err(UrlError::Port("99999".into())));
        assert_eq!(Target::parse("ws://example.com:/"), Err(UrlError::Port("".into())));
    }
}
