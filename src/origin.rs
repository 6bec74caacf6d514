//! `check_origin`, with Phoenix's modes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The parts of an origin (or of an allowed-origin entry) that are compared. A part
/// left out of an entry is a wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `http`, `https`, ...
    pub scheme: Option<String>,
    /// The host; an origin such as `null` has none.
    pub host: Option<String>,
    /// The port, filled in from the scheme's default when absent.
    pub port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host:port`, `//host` or `host`, filling in default ports.
    pub fn parse(text: &str) -> Origin {
        let (scheme, rest) = match text.split_once("//") {
            Some((scheme, rest)) => (scheme.strip_suffix(':').filter(|s| !s.is_empty()).map(str::to_owned), rest),
            None => (None, text),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => match port.parse::<u16>() {
                Ok(port) => (host, Some(port)),
                Err(_) => (authority, None),
            },
            _ => (authority, None),
        };
        let port = port.or(match scheme.as_deref() {
            Some("http" | "ws") => Some(80),
            Some("https" | "wss") => Some(443),
            _ => None,
        });
        let host = (!host.is_empty() && text.contains("//")).then(|| host.to_owned());
        Origin { scheme, host, port }
    }

    fn allowed_by(&self, entry: &Origin) -> bool {
        let host_ok = match (&entry.host, &self.host) {
            (None, _) => true,
            (Some(pattern), Some(host)) => match pattern.strip_prefix("*.") {
                Some(base) => host == base || host.ends_with(&format!(".{base}")),
                None => host == pattern,
            },
            (Some(_), None) => false,
        };
        host_ok
            && entry.scheme.as_ref().is_none_or(|s| self.scheme.as_ref() == Some(s))
            && entry.port.is_none_or(|p| self.port == Some(p))
    }
}

/// Which `Origin` headers a socket accepts. A request without `Origin` is always
/// accepted; a rejected one gets HTTP 403 before `connect` runs.
#[derive(Clone, Default)]
pub enum CheckOrigin {
    /// Any origin (`check_origin: false`).
    Off,
    /// The origin's host must be the endpoint's host (`check_origin: true`). The default.
    ///
    /// A host set with [`EndpointBuilder::host`](crate::EndpointBuilder::host) is the
    /// only one that passes: any other origin gets 403. While the host is the default
    /// `localhost`, the host each request was sent to (its `Host` header: a page served
    /// by this server, or by another port of the same host) passes too, and, on a
    /// listener bound to a loopback address, every loopback origin (`localhost`,
    /// `*.localhost`, `127.0.0.0/8`, `[::1]`), as Phoenix's generated development config
    /// turns the check off: a page at `http://127.0.0.1:8080/` reaches a socket at
    /// `ws://localhost:4000/socket`.
    #[default]
    EndpointHost,
    /// Any of these entries, such as `https://example.com`, `//another.com:888` or
    /// `//*.other.com`.
    Allow(Vec<String>),
    /// Same scheme, host and port as the request itself (`:conn`).
    SameAsRequest,
    /// A function of the parsed origin.
    Custom(Arc<dyn Fn(&Origin) -> bool + Send + Sync>),
}

impl fmt::Debug for CheckOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckOrigin::Off => f.write_str("Off"),
            CheckOrigin::EndpointHost => f.write_str("EndpointHost"),
            CheckOrigin::Allow(list) => f.debug_tuple("Allow").field(list).finish(),
            CheckOrigin::SameAsRequest => f.write_str("SameAsRequest"),
            CheckOrigin::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What [`CheckOrigin::EndpointHost`] compares an origin's host with.
#[derive(Clone, Debug)]
pub(crate) enum EndpointHosts {
    /// A host the program set: only it passes.
    Configured(String),
    /// The default, `localhost`: the host each request was sent to passes too, and
    /// every loopback host when the listener is bound to a loopback address.
    Default {
        /// Whether the listener is bound to a loopback address.
        loopback_listener: bool,
    },
}

impl EndpointHosts {
    fn allow(&self, host: &str, request: &Origin) -> bool {
        match self {
            EndpointHosts::Configured(configured) => host.eq_ignore_ascii_case(configured),
            EndpointHosts::Default { loopback_listener } => {
                host.eq_ignore_ascii_case("localhost")
                    || request.host.as_deref().is_some_and(|own| host.eq_ignore_ascii_case(own))
                    || (*loopback_listener && is_loopback(host))
            }
        }
    }
}

/// `localhost`, a name under it, or a loopback address (IPv6 in brackets, as in a URL).
fn is_loopback(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
}

impl CheckOrigin {
    /// Whether `origin` (the header's value) may connect. `endpoint` is what the
    /// endpoint's host allows; `request` is the request's own scheme, host and port.
    pub(crate) fn allows(&self, origin: &str, endpoint: &EndpointHosts, request: &Origin) -> bool {
        let origin = Origin::parse(origin);
        match self {
            CheckOrigin::Off => true,
            CheckOrigin::Custom(check) => check(&origin),
            // An origin with no host (such as `null`) fails every other mode.
            _ if origin.host.is_none() => false,
            CheckOrigin::EndpointHost => origin.host.as_deref().is_some_and(|host| endpoint.allow(host, request)),
            CheckOrigin::Allow(entries) => entries.iter().any(|entry| origin.allowed_by(&Origin::parse(entry))),
            CheckOrigin::SameAsRequest => &origin == request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Origin {
        Origin { scheme: Some("http".into()), host: Some("localhost".into()), port: Some(4000) }
    }

    fn host(name: &str) -> EndpointHosts {
        EndpointHosts::Configured(name.into())
    }

    #[test]
    fn off_allows_anything() {
        assert!(CheckOrigin::Off.allows("http://evil.com", &host("example.com"), &req()));
        assert!(CheckOrigin::Off.allows("null", &host("example.com"), &req()));
    }

    #[test]
    fn endpoint_host_compares_the_host_only() {
        let check = CheckOrigin::EndpointHost;
        assert!(check.allows("https://example.com:8443", &host("example.com"), &req()));
        assert!(check.allows("http://example.com", &host("example.com"), &req()));
        assert!(!check.allows("http://sub.example.com", &host("example.com"), &req()));
    }

    #[test]
    fn the_default_host_allows_the_request_own_host_and_a_configured_one_does_not() {
        let check = CheckOrigin::EndpointHost;
        let request = Origin { scheme: Some("http".into()), host: Some("app.example".into()), port: Some(80) };
        let default = EndpointHosts::Default { loopback_listener: false };
        assert!(check.allows("https://app.example:8443", &default, &request));
        assert!(check.allows("http://APP.example", &default, &request));
        assert!(check.allows("http://localhost:3000", &default, &request));
        assert!(!check.allows("http://evil.example", &default, &request));
        assert!(!check.allows("http://127.0.0.1:3000", &default, &request));
        assert!(!check.allows("http://app.example", &host("example.com"), &request));
    }

    #[test]
    fn loopback_origins_pass_only_with_the_default_host_on_a_loopback_listener() {
        let check = CheckOrigin::EndpointHost;
        let request = Origin { scheme: Some("http".into()), host: Some("127.0.0.1".into()), port: Some(4000) };
        let dev = EndpointHosts::Default { loopback_listener: true };
        let origins = ["http://127.0.0.1:8080", "http://127.1.2.3", "http://[::1]:3000", "http://app.localhost"];
        for origin in origins {
            assert!(check.allows(origin, &dev, &request), "{origin}");
            assert!(!check.allows(origin, &host("example.com"), &request), "{origin}");
        }
        for origin in ["http://evil.com", "http://127.0.0.1.evil.com", "http://localhost.evil.com", "null"] {
            assert!(!check.allows(origin, &dev, &request), "{origin}");
        }
    }

    #[test]
    fn list_entries_compare_what_they_name() {
        let check =
            CheckOrigin::Allow(vec!["https://example.com".into(), "//another.com:888".into(), "//*.other.com".into()]);
        let ok = |o| check.allows(o, &host("x"), &req());
        assert!(ok("https://example.com"));
        assert!(ok("https://example.com:443"));
        assert!(!ok("http://example.com"));
        assert!(!ok("https://example.com:8443"));
        assert!(ok("http://another.com:888") && ok("https://another.com:888"));
        assert!(!ok("http://another.com"));
        assert!(ok("http://other.com") && ok("https://a.b.other.com:1"));
        assert!(!ok("http://notother.com"));
    }

    #[test]
    fn same_as_request_needs_scheme_host_and_port() {
        let check = CheckOrigin::SameAsRequest;
        assert!(check.allows("http://localhost:4000", &host("x"), &req()));
        assert!(!check.allows("https://localhost:4000", &host("x"), &req()));
        assert!(!check.allows("http://localhost:4001", &host("x"), &req()));
    }

    #[test]
    fn origin_without_host_is_rejected_unless_off_or_custom() {
        for check in [CheckOrigin::EndpointHost, CheckOrigin::Allow(vec!["//*".into()]), CheckOrigin::SameAsRequest] {
            assert!(!check.allows("null", &host("example.com"), &req()), "{check:?}");
        }
        assert!(CheckOrigin::Custom(Arc::new(|o: &Origin| o.host.is_none())).allows("null", &host("x"), &req()));
    }
}
