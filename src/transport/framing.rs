//! Where a request's body ends (RFC 9112 §6.3): its `Content-Length` or its
//! `Transfer-Encoding`, checked on every request head before anything reads past it.
//!
//! A request whose framing two readers could take two ways is refused with 400 and its
//! connection closed: two `Content-Length` headers (even equal ones: the RFC lets a
//! server refuse them, and refusing is the choice that leaves no doubt), a list or
//! anything but digits in one, or a `Transfer-Encoding` together with a
//! `Content-Length`. Served with either reading, such a request lets a proxy in front
//! of this server that takes the other reading smuggle a request past it.

use std::fmt;
use tungstenite::http::HeaderMap;
use tungstenite::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Neither header: no body.
    NoBody,
    /// A `Content-Length` of this many bytes.
    Length(usize),
    /// A `Transfer-Encoding` (chunked): the body ends where its encoding says.
    TransferEncoding,
}

/// Why a request's framing is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// More than one `Content-Length` header.
    TwoLengths,
    /// A `Content-Length` that is not one number: a list (`5, 6`), a sign, letters.
    BadLength,
    /// `Transfer-Encoding` with `Content-Length`.
    LengthAndTransferEncoding,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::TwoLengths => "more than one Content-Length",
            FramingError::BadLength => "a Content-Length that is not one number",
            FramingError::LengthAndTransferEncoding => "both Transfer-Encoding and Content-Length",
        })
    }
}

impl Framing {
    /// The framing `headers` give, or why it is ambiguous.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Framing, FramingError> {
        let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
        let length = lengths.next();
        if lengths.next().is_some() {
            return Err(FramingError::TwoLengths);
        }
        match (length, headers.contains_key(TRANSFER_ENCODING)) {
            (Some(_), true) => Err(FramingError::LengthAndTransferEncoding),
            (None, true) => Ok(Framing::TransferEncoding),
            (None, false) => Ok(Framing::NoBody),
            (Some(length), false) => {
                let digits = length.as_bytes().trim_ascii();
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(FramingError::BadLength);
                }
                // Digits only, so UTF-8; too many of them overflow and are refused too.
                let length = std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok());
                length.map(Framing::Length).ok_or(FramingError::BadLength)
            }
        }
    }

    /// Whether the request has a body (a `Content-Length` of zero is none).
    pub(crate) fn has_body(self) -> bool {
        !matches!(self, Framing::NoBody | Framing::Length(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(headers: &[(&str, &str)]) -> Result<Framing, FramingError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        Framing::of(&map)
    }

    #[test]
    fn one_length_or_one_transfer_encoding_frames_a_body() {
        assert_eq!(framing(&[]), Ok(Framing::NoBody));
        assert_eq!(framing(&[("content-length", "0")]), Ok(Framing::Length(0)));
        assert_eq!(framing(&[("Content-Length", " 42 ")]), Ok(Framing::Length(42)));
        assert_eq!(framing(&[("transfer-encoding", "chunked")]), Ok(Framing::TransferEncoding));
        assert!(!Framing::NoBody.has_body());
        assert!(!Framing::Length(0).has_body());
        assert!(Framing::Length(1).has_body());
        assert!(Framing::TransferEncoding.has_body());
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        use FramingError::*;
        let cases: [(&[(&str, &str)], FramingError); 10] = [
            (&[("content-length", "5"), ("content-length", "6")], TwoLengths),
            (&[("content-length", "5"), ("Content-Length", "5")], TwoLengths),
            (&[("content-length", "5, 6")], BadLength),
            (&[("content-length", "5,5")], BadLength),
            (&[("content-length", "+5")], BadLength),
            (&[("content-length", "-1")], BadLength),
            (&[("content-length", "0x10")], BadLength),
            (&[("content-length", "")], BadLength),
            (&[("content-length", "99999999999999999999999")], BadLength),
            (&[("transfer-encoding", "chunked"), ("content-length", "5")], LengthAndTransferEncoding),
        ];
        for (headers, error) in cases {
            assert_eq!(framing(headers), Err(error), "{headers:?}");
        }
    }
}
