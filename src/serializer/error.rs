//! What can go wrong turning frames into messages and back.

use std::fmt;

/// Why a frame could not be decoded into a message.
///
/// Every decoder returns one of these for bad input; none panics. Phoenix closes the
/// connection on any of them, without a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A text frame, or a string field of a binary frame, is not valid UTF-8.
    InvalidUtf8 {
        /// Which part: `frame`, `join_ref`, `ref`, `topic`, `event` or `status`.
        field: &'static str,
    },
    /// The text is not JSON (or nests deeper than 128 levels).
    InvalidJson(String),
    /// A V2 text frame is not a JSON array.
    NotAnArray,
    /// A V2 text frame has fewer than 5 elements.
    TooFewElements {
        /// How many it had.
        found: usize,
    },
    /// A V1 frame is not a JSON object.
    NotAnObject,
    /// A V1 frame lacks a required key (`topic`, `event`, `payload` or `ref`).
    MissingKey(&'static str),
    /// A field has the wrong JSON type.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A binary frame is shorter than its header says.
    Truncated {
        /// Bytes the header calls for.
        needed: usize,
        /// Bytes the frame has.
        len: usize,
    },
    /// A binary frame's first byte is not a kind this side accepts.
    UnknownKind(u8),
    /// A binary frame arrived on a V1 connection, which has no binary format.
    BinaryOnV1,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidUtf8 { field } => write!(f, "{field} is not valid UTF-8"),
            DecodeError::InvalidJson(why) => write!(f, "invalid JSON: {why}"),
            DecodeError::NotAnArray => f.write_str("a V2 text frame must be a JSON array"),
            DecodeError::TooFewElements { found } => {
                write!(f, "a V2 frame needs 5 elements [join_ref, ref, topic, event, payload], found {found}")
            }
            DecodeError::NotAnObject => f.write_str("a V1 frame must be a JSON object"),
            DecodeError::MissingKey(key) => write!(f, "a V1 frame must have the key \"{key}\""),
            DecodeError::WrongType { field, expected } => write!(f, "{field} must be {expected}"),
            DecodeError::Truncated { needed, len } => {
                write!(f, "binary frame truncated: header calls for {needed} bytes, frame has {len}")
            }
            DecodeError::UnknownKind(kind) => write!(f, "unknown binary frame kind {kind}"),
            DecodeError::BinaryOnV1 => f.write_str("binary frames need the V2 serializer (vsn=2.0.0)"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a message could not be encoded into a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A V2 push or broadcast payload is JSON but not an object.
    NotAnObject,
    /// A binary payload on a V1 connection, which has no binary frames.
    BinaryOnV1,
    /// A binary frame header field is longer than 255 bytes.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// `serde_json` refused the value.
    Json(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NotAnObject => f.write_str("push and broadcast payloads must be JSON objects or binary"),
            EncodeError::BinaryOnV1 => f.write_str("binary payloads need the V2 serializer (vsn=2.0.0)"),
            EncodeError::FieldTooLong { field, len } => {
                write!(f, "unable to convert {field} to binary: {len} bytes, at most 255")
            }
            EncodeError::Json(why) => write!(f, "JSON encoding failed: {why}"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl From<serde_json::Error> for EncodeError {
    fn from(err: serde_json::Error) -> Self {
        EncodeError::Json(err.to_string())
    }
}

/// Why a `vsn` was refused: the server answers HTTP 403.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VsnError {
    /// Not a full `MAJOR.MINOR.PATCH` version.
    Invalid(String),
    /// A version no serializer accepts (only `1.0.x` and `2.0.x` are).
    Unsupported(String),
}

impl fmt::Display for VsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsnError::Invalid(vsn) => write!(f, "the client sent an invalid transport version {vsn:?}"),
            VsnError::Unsupported(vsn) => write!(
                f,
                "the client's requested transport version {vsn:?} does not match the server's requirements (~> 1.0.0 or ~> 2.0.0)"
            ),
        }
    }
}

impl std::error::Error for VsnError {}
