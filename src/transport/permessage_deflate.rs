//! permessage-deflate (RFC 7692): what a connection agreed to, and how it is agreed
//! from the client's `Sec-WebSocket-Extensions` offers.
//!
//! The server always answers with `server_no_context_takeover`: it compresses each
//! message on its own, so one compressed broadcast frame suits every connection. It
//! accepts the first offer whose parameters it can honour and declines the others
//! (a parameter it does not know, one given twice, a value out of range).

use crate::serializer::Frame;

/// The extension's name in the header.
const NAME: &str = "permessage-deflate";

/// The largest window (log2 of its bytes), and the smallest a decompressor here uses:
/// zlib takes no window under 2^9, and a larger window reads a smaller one's output.
const MAX_WINDOW_BITS: u8 = 15;
const MIN_INFLATE_WINDOW_BITS: u8 = 9;

/// The compression a connection agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PerMessageDeflate {
    /// The client compresses each message on its own: the decompressor is dropped after
    /// each message instead of being kept for the next.
    pub(crate) client_no_context_takeover: bool,
    /// The client's window (log2), which the decompressor needs.
    pub(crate) client_window_bits: u8,
    /// The client's decompressor's window (log2). The server compresses with a 32 KiB
    /// window but each message on its own, so a message no longer than this window
    /// never refers further back than it: longer ones under a smaller window go plain.
    pub(crate) server_window_bits: u8,
    /// The client named the window it compresses with: the answer confirms it.
    client_window_named: bool,
    /// The client limited the server's window: the answer must say it keeps to it.
    server_window_named: bool,
}

impl PerMessageDeflate {
    /// Accepts the first offer in `offers` (the `Sec-WebSocket-Extensions` values, in
    /// order) that can be honoured; `None` if there is none.
    pub(crate) fn negotiate<'a>(offers: impl IntoIterator<Item = &'a str>) -> Option<PerMessageDeflate> {
        offers.into_iter().flat_map(split_outside_quotes(',')).find_map(accept)
    }

    /// The answer's `Sec-WebSocket-Extensions` value.
    pub(crate) fn response(&self) -> String {
        let mut response = format!("{NAME}; server_no_context_takeover");
        if self.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if self.client_window_named {
            response.push_str(&format!("; client_max_window_bits={}", self.client_window_bits));
        }
        if self.server_window_named {
            response.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        response
    }

    /// The window the decompressor needs (log2).
    pub(crate) fn inflate_window_bits(&self) -> u8 {
        self.client_window_bits.max(MIN_INFLATE_WINDOW_BITS)
    }

    /// Whether `frame` goes to this connection compressed, once deflated.
    pub(crate) fn wants(&self, frame: &Frame) -> bool {
        frame.worth_deflating() && frame.payload().len() <= 1 << self.server_window_bits
    }
}

/// Splits `text` at `separator`s outside double quotes, trimming each part.
fn split_outside_quotes(separator: char) -> impl Fn(&str) -> Vec<&str> {
    move |text| {
        let mut parts = Vec::new();
        let (mut start, mut quoted, mut escaped) = (0, false, false);
        for (at, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == separator && !quoted => {
                    parts.push(text[start..at].trim());
                    start = at + 1;
                }
                _ => {}
            }
        }
        parts.push(text[start..].trim());
        parts.retain(|part| !part.is_empty());
        parts
    }
}

/// The parameters of one offer, if it is permessage-deflate and can be honoured.
fn accept(offer: &str) -> Option<PerMessageDeflate> {
    let mut params = split_outside_quotes(';')(offer).into_iter();
    if !params.next()?.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let mut seen = Vec::new();
    let mut agreed = PerMessageDeflate {
        client_no_context_takeover: false,
        client_window_bits: MAX_WINDOW_BITS,
        server_window_bits: MAX_WINDOW_BITS,
        client_window_named: false,
        server_window_named: false,
    };
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => {}
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_max_window_bits", Some(value)) => {
                agreed.server_window_bits = window_bits(value)?;
                agreed.server_window_named = true;
            }
            // Without a value the client only says it could take a smaller window;
            // the decompressor here takes any.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(value)) => {
                agreed.client_window_bits = window_bits(value)?;
                agreed.client_window_named = true;
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some(agreed)
}

/// A quoted value's text; `None` for a quote left open.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"'),
        None => Some(value),
    }
}

/// A window size: 8 to 15, digits only, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    let valid = !value.is_empty() && !value.starts_with('0') && value.bytes().all(|b| b.is_ascii_digit());
    let bits: u8 = if valid { value.parse().ok()? } else { return None };
    (8..=MAX_WINDOW_BITS).contains(&bits).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(offers: &[&str]) -> Option<String> {
        PerMessageDeflate::negotiate(offers.iter().copied()).map(|agreed| agreed.response())
    }

    #[test]
    fn a_browser_offer_is_accepted_without_context_takeover_on_the_server() {
        let agreed = PerMessageDeflate::negotiate(["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(agreed.response(), "permessage-deflate; server_no_context_takeover");
        assert_eq!((agreed.client_window_bits, agreed.client_no_context_takeover), (15, false));
    }

    #[test]
    fn each_parameter_is_honoured() {
        let offer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
                     client_max_window_bits=\"10\"; server_max_window_bits=9";
        let agreed = PerMessageDeflate::negotiate([offer]).unwrap();
        assert_eq!(
            agreed.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             client_max_window_bits=10; server_max_window_bits=9"
        );
        assert_eq!((agreed.client_window_bits, agreed.server_window_bits), (10, 9));
        assert!(agreed.client_no_context_takeover);
        assert_eq!(
            PerMessageDeflate::negotiate(["permessage-deflate; client_max_window_bits=8"])
                .unwrap()
                .inflate_window_bits(),
            9
        );
    }

    #[test]
    fn offers_that_cannot_be_honoured_are_declined() {
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=1a",
            "permessage-deflate; client_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(answer(&[offer]), None, "{offer}");
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let offers =
            ["permessage-deflate; unknown, permessage-deflate; client_no_context_takeover", "permessage-deflate"];
        assert_eq!(
            answer(&offers).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(answer(&["foo, permessage-deflate"]).unwrap(), "permessage-deflate; server_no_context_takeover");
    }
}
