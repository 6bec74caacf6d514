//! `check_origin`, with Phoenix's modes.

use std::fmt;
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
    /// The origin's host must equal the endpoint's host (`check_origin: true`). The default.
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

impl CheckOrigin {
    /// Whether `origin` (the header's value) may connect. `endpoint_host` is the
    /// endpoint's configured host; `request` is the request's own scheme, host and port.
    pub(crate) fn allows(&self, origin: &str, endpoint_host: &str, request: &Origin) -> bool {
        let origin = Origin::parse(origin);
        match self {
            CheckOrigin::Off => true,
            CheckOrigin::Custom(check) => check(&origin),
            // An origin with no host (such as `null`) fails every other mode.
            _ if origin.host.is_none() => false,
            CheckOrigin::EndpointHost => origin.host.as_deref() == Some(endpoint_host),
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

    #[test]
    fn off_allows_anything() {
        assert!(CheckOrigin::Off.allows("http://evil.com", "example.com", &req()));
        assert!(CheckOrigin::Off.allows("null", "example.com", &req()));
    }

    #[test]
    fn endpoint_host_compares_the_host_only() {
        let check = CheckOrigin::EndpointHost;
        assert!(check.allows("https://example.com:8443", "example.com", &req()));
        assert!(check.allows("http://example.com", "example.com", &req()));
        assert!(!check.allows("http://sub.example.com", "example.com", &req()));
    }

    #[test]
    fn list_entries_compare_what_they_name() {
        let check =
            CheckOrigin::Allow(vec!["https://example.com".into(), "//another.com:888".into(), "//*.other.com".into()]);
        let ok = |o| check.allows(o, "x", &req());
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
        assert!(check.allows("http://localhost:4000", "x", &req()));
        assert!(!check.allows("https://localhost:4000", "x", &req()));
        assert!(!check.allows("http://localhost:4001", "x", &req()));
    }

    #[test]
    fn origin_without_host_is_rejected_unless_off_or_custom() {
        for check in [CheckOrigin::EndpointHost, CheckOrigin::Allow(vec!["//*".into()]), CheckOrigin::SameAsRequest] {
            assert!(!check.allows("null", "example.com", &req()), "{check:?}");
        }
        assert!(CheckOrigin::Custom(Arc::new(|o: &Origin| o.host.is_none())).allows("null", "x", &req()));
    }
}
