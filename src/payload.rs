//! The body of a message: JSON or raw bytes.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// The payload of a push, reply or broadcast.
///
/// Phoenix payloads are JSON values, or, on V2 connections only, raw bytes carried in
/// binary WebSocket frames (Phoenix's `{:binary, bytes}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A JSON value. Pushes and broadcasts should carry objects.
    Json(Value),
    /// Raw bytes, sent as a binary frame (V2 only).
    Binary(Bytes),
}

impl Payload {
    /// The empty JSON object `{}`, Phoenix's default payload.
    pub fn empty() -> Self {
        Payload::Json(Value::Object(Default::default()))
    }

    /// Serializes any `Serialize` value into a JSON payload.
    ///
    /// Fails only where `serde_json` would (for example a map with non-string keys).
    pub fn json<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_value(value).map(Payload::Json)
    }

    /// The JSON value, if this is a JSON payload.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Payload::Json(value) => Some(value),
            Payload::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary payload.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Payload::Binary(bytes) => Some(bytes),
            Payload::Json(_) => None,
        }
    }

    /// Whether this payload may be pushed or broadcast: a JSON object or bytes.
    pub fn is_pushable(&self) -> bool {
        matches!(self, Payload::Binary(_) | Payload::Json(Value::Object(_)))
    }

    /// Looks up `key` in a JSON object payload.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_json().and_then(|value| value.get(key))
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::empty()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload::Json(value)
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Payload::Binary(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Binary(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(bytes: &'static [u8]) -> Self {
        Payload::Binary(Bytes::from_static(bytes))
    }
}
