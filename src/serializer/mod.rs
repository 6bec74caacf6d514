//! Wire formats: V1 JSON objects, V2 JSON arrays and V2 binary frames.
//!
//! A connection's format is fixed at the handshake by its `vsn` parameter
//! ([`Serializer::negotiate`]). Server-side encoders return a complete WebSocket
//! [`Frame`], ready to be shared by every connection that uses the same format; the
//! client-side pair ([`Serializer::encode_client`], [`Serializer::decode_server`]) serves
//! the blocking [`client`](crate::client).

mod binary;
mod deflate;
mod error;
mod frame;
mod v1;
mod v2;

pub use error::{DecodeError, EncodeError, VsnError};
pub use frame::Frame;
pub(crate) use frame::{FrameWriter, Opcode};

use crate::message::{Broadcast, Message, Ref, Reply};
use crate::payload::Payload;
use serde_json::Value;
use serde_json::value::RawValue;

/// The body of one WebSocket data frame, as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFrame<'a> {
    /// A text frame's bytes (validated as UTF-8 by the decoder).
    Text(&'a [u8]),
    /// A binary frame's bytes.
    Binary(&'a [u8]),
}

/// A client-to-server frame body, ready to hand to a WebSocket library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// Send as a text frame.
    Text(String),
    /// Send as a binary frame.
    Binary(Vec<u8>),
}

/// A decoded server-to-client frame.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// A push or a broadcast (`phx_close` and `phx_error` included).
    Message(Message),
    /// A `phx_reply`.
    Reply(Reply),
}

/// What a client's text frame decodes to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decoded {
    /// A message whose topic and event are strings.
    Message(Message),
    /// A message whose topic or event is not a string: no route or `handle_in` clause
    /// can take it, but it is answered as Phoenix answers it.
    Unroutable(Unroutable),
}

/// A message with a topic or event that is not a string, taken as it came.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unroutable {
    pub(crate) join_ref: Option<Ref>,
    pub(crate) msg_ref: Option<Ref>,
    pub(crate) topic: Value,
    pub(crate) event: Value,
}

impl Decoded {
    fn new(join_ref: Option<Ref>, msg_ref: Option<Ref>, topic: Value, event: Value, payload: Payload) -> Decoded {
        match (topic, event) {
            (Value::String(topic), Value::String(event)) => {
                Decoded::Message(Message { join_ref, msg_ref, topic, event, payload })
            }
            (topic, event) => Decoded::Unroutable(Unroutable { join_ref, msg_ref, topic, event }),
        }
    }

    /// The message, or the error the public decoders report for a field that is not a string.
    fn into_message(self) -> Result<Message, DecodeError> {
        match self {
            Decoded::Message(msg) => Ok(msg),
            Decoded::Unroutable(msg) => {
                let field = if msg.topic.is_string() { "event" } else { "topic" };
                Err(DecodeError::WrongType { field, expected: "a string" })
            }
        }
    }
}

/// A wire format, chosen per connection by `vsn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Serializer {
    /// `vsn=1.0.x` or no vsn: JSON objects, no binary frames.
    V1,
    /// `vsn=2.0.x`: JSON arrays, and binary frames for binary payloads.
    V2,
}

impl Serializer {
    /// Picks the serializer for a `vsn` parameter: absent means `1.0.0`;
    /// `1.0.x` is V1, `2.0.x` is V2; anything else is refused.
    pub fn negotiate(vsn: Option<&str>) -> Result<Serializer, VsnError> {
        let Some(vsn) = vsn else { return Ok(Serializer::V1) };
        let invalid = || VsnError::Invalid(vsn.to_owned());
        // Semver, as Elixir's `Version.parse`: numbers without leading zeros, an optional
        // non-empty pre-release after `-`, optional build metadata after `+`.
        let core = vsn.split_once('+').map_or(vsn, |(core, build)| if build.is_empty() { "" } else { core });
        let (numbers, pre) = match core.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (core, None),
        };
        let number = |s: &str| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if digits && (s == "0" || !s.starts_with('0')) { s.parse::<u64>().ok() } else { None }
        };
        let parts: Vec<Option<u64>> = numbers.split('.').map(number).collect();
        let [Some(major), Some(minor), Some(patch)] = parts[..] else { return Err(invalid()) };
        if pre.is_some_and(|pre| {
            pre.split('.').any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        }) {
            return Err(invalid());
        }
        // `~> X.0.0` means >= X.0.0 and < X.1.0: a pre-release of X.0.0 sorts below it.
        match (major, minor) {
            _ if patch == 0 && pre.is_some() => Err(VsnError::Unsupported(vsn.to_owned())),
            (1, 0) => Ok(Serializer::V1),
            (2, 0) => Ok(Serializer::V2),
            _ => Err(VsnError::Unsupported(vsn.to_owned())),
        }
    }

    /// This format's slot in a per-format cache: V1 0, V2 1.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Phoenix's name for this serializer, as it appears in logs.
    pub fn name(self) -> &'static str {
        match self {
            Serializer::V1 => "Phoenix.Socket.V1.JSONSerializer",
            Serializer::V2 => "Phoenix.Socket.V2.JSONSerializer",
        }
    }

    /// Decodes a client-to-server frame. A topic or event that is not a string is a
    /// [`DecodeError::WrongType`] here (the endpoint itself answers such a message as
    /// Phoenix does: `unmatched topic`, or a crash of the channel for a bad event).
    pub fn decode(self, frame: RawFrame<'_>) -> Result<Message, DecodeError> {
        self.decode_routed(frame)?.into_message()
    }

    /// Decodes a client-to-server frame as the server routes it.
    pub(crate) fn decode_routed(self, frame: RawFrame<'_>) -> Result<Decoded, DecodeError> {
        match (self, frame) {
            (Serializer::V1, RawFrame::Text(text)) => v1::decode(parse_json(text)?),
            (Serializer::V2, RawFrame::Text(text)) => v2::decode(parse_json(text)?),
            (Serializer::V1, RawFrame::Binary(_)) => Err(DecodeError::BinaryOnV1),
            (Serializer::V2, RawFrame::Binary(bytes)) => binary::decode_client_push(bytes).map(Decoded::Message),
        }
    }

    /// Encodes a server push: `phx_close` and `phx_error` too, which carry a ref.
    pub fn encode_push(self, msg: &Message) -> Result<Frame, EncodeError> {
        self.encode_push_parts(&msg.join_ref, &msg.msg_ref, &msg.topic, &msg.event, &msg.payload)
    }

    /// Encodes a channel's push (no ref) from borrowed parts.
    pub(crate) fn encode_channel_push(
        self,
        join_ref: &Option<Ref>,
        topic: &str,
        event: &str,
        payload: &Payload,
    ) -> Result<Frame, EncodeError> {
        self.encode_push_parts(join_ref, &None, topic, event, payload)
    }

    fn encode_push_parts(
        self,
        join_ref: &Option<Ref>,
        msg_ref: &Option<Ref>,
        topic: &str,
        event: &str,
        payload: &Payload,
    ) -> Result<Frame, EncodeError> {
        match (payload, self) {
            (Payload::Binary(bytes), Serializer::V2) => binary::encode_push(join_ref, topic, event, bytes),
            (Payload::Binary(_), Serializer::V1) => Err(EncodeError::BinaryOnV1),
            (Payload::Json(value), _) => {
                self.encode_json_push(join_ref, msg_ref, topic, event, value, &RawOrValue::Value(value))
            }
        }
    }

    /// Encodes a channel's push of `payload`, already encoded as `encoded`: only the
    /// frame around it is written.
    pub(crate) fn encode_channel_push_encoded(
        self,
        join_ref: &Option<Ref>,
        topic: &str,
        event: &str,
        payload: &Value,
        encoded: &RawValue,
    ) -> Result<Frame, EncodeError> {
        self.encode_json_push(join_ref, &None, topic, event, payload, &RawOrValue::Raw(encoded))
    }

    /// A JSON push; `payload` is checked, `body` is what is written for it.
    fn encode_json_push(
        self,
        join_ref: &Option<Ref>,
        msg_ref: &Option<Ref>,
        topic: &str,
        event: &str,
        payload: &Value,
        body: &RawOrValue<'_>,
    ) -> Result<Frame, EncodeError> {
        match self {
            Serializer::V1 => v1::encode(topic, event, body, msg_ref),
            Serializer::V2 => {
                require_object(payload)?;
                v2::encode(join_ref, msg_ref, topic, event, body)
            }
        }
    }

    /// Encodes a `phx_reply`. The response may be any JSON value, or bytes on V2.
    pub fn encode_reply(self, reply: &Reply) -> Result<Frame, EncodeError> {
        match (&reply.response, self) {
            (Payload::Binary(bytes), Serializer::V2) => binary::encode_reply(reply, bytes),
            (Payload::Binary(_), Serializer::V1) => Err(EncodeError::BinaryOnV1),
            (Payload::Json(response), _) => {
                self.json_reply(&reply.join_ref, &reply.msg_ref, reply.topic.as_str(), &reply.status, response)
            }
        }
    }

    /// Encodes a JSON `phx_reply` to a message whose topic is any JSON value.
    pub(crate) fn encode_reply_to(
        self,
        msg: &Unroutable,
        join_ref: &Option<Ref>,
        status: &str,
        response: &Value,
    ) -> Result<Frame, EncodeError> {
        self.json_reply(join_ref, &msg.msg_ref, &msg.topic, status, response)
    }

    fn json_reply<T: serde::Serialize + ?Sized>(
        self,
        join_ref: &Option<Ref>,
        msg_ref: &Option<Ref>,
        topic: &T,
        status: &str,
        response: &Value,
    ) -> Result<Frame, EncodeError> {
        let body = reply_body(status, response);
        match self {
            Serializer::V1 => v1::encode(topic, crate::message::PHX_REPLY, &body, msg_ref),
            Serializer::V2 => v2::encode(join_ref, msg_ref, topic, crate::message::PHX_REPLY, &body),
        }
    }

    /// Encodes a fastlane broadcast: no refs.
    pub fn encode_broadcast(self, broadcast: &Broadcast) -> Result<Frame, EncodeError> {
        match (&broadcast.payload, self) {
            (Payload::Binary(bytes), Serializer::V2) => binary::encode_broadcast(broadcast, bytes),
            (Payload::Binary(_), Serializer::V1) => Err(EncodeError::BinaryOnV1),
            (Payload::Json(payload), Serializer::V1) => v1::encode(&broadcast.topic, &broadcast.event, payload, &None),
            (Payload::Json(payload), Serializer::V2) => {
                require_object(payload)?;
                v2::encode(&None, &None, &broadcast.topic, &broadcast.event, payload)
            }
        }
    }

    /// Encodes a client-to-server message (what a Phoenix client sends).
    pub fn encode_client(self, msg: &Message) -> Result<ClientFrame, EncodeError> {
        match (&msg.payload, self) {
            (Payload::Binary(bytes), Serializer::V2) => binary::encode_client_push(msg, bytes).map(ClientFrame::Binary),
            (Payload::Binary(_), Serializer::V1) => Err(EncodeError::BinaryOnV1),
            (Payload::Json(payload), Serializer::V1) => v1::encode_client(msg, payload).map(ClientFrame::Text),
            (Payload::Json(payload), Serializer::V2) => {
                let text = serde_json::to_string(&(&msg.join_ref, &msg.msg_ref, &msg.topic, &msg.event, payload))?;
                Ok(ClientFrame::Text(text))
            }
        }
    }

    /// Decodes a server-to-client frame (what a Phoenix client receives).
    ///
    /// A `phx_reply` becomes [`ServerMessage::Reply`]. In binary frames an empty
    /// `join_ref` or `ref` decodes as `None`, since the server encodes null that way.
    pub fn decode_server(self, frame: RawFrame<'_>) -> Result<ServerMessage, DecodeError> {
        let msg = match (self, frame) {
            (Serializer::V1, RawFrame::Text(text)) => v1::decode(parse_json(text)?)?.into_message()?,
            (Serializer::V2, RawFrame::Text(text)) => v2::decode(parse_json(text)?)?.into_message()?,
            (Serializer::V1, RawFrame::Binary(_)) => return Err(DecodeError::BinaryOnV1),
            (Serializer::V2, RawFrame::Binary(bytes)) => return binary::decode_server(bytes),
        };
        Ok(split_reply(msg))
    }
}

/// Turns a text `phx_reply` message into a [`Reply`]; leaves other messages alone.
fn split_reply(msg: Message) -> ServerMessage {
    if msg.event != crate::message::PHX_REPLY {
        return ServerMessage::Message(msg);
    }
    match msg.payload {
        Payload::Json(Value::Object(mut body)) if body.get("status").is_some_and(Value::is_string) => {
            let Some(Value::String(status)) = body.remove("status") else { unreachable!("checked above") };
            ServerMessage::Reply(Reply {
                join_ref: msg.join_ref,
                msg_ref: msg.msg_ref,
                topic: msg.topic,
                status,
                response: Payload::Json(body.remove("response").unwrap_or(Value::Null)),
            })
        }
        payload => ServerMessage::Message(Message { payload, ..msg }),
    }
}

fn parse_json(text: &[u8]) -> Result<Value, DecodeError> {
    let text = std::str::from_utf8(text).map_err(|_| DecodeError::InvalidUtf8 { field: "frame" })?;
    serde_json::from_str(text).map_err(|err| DecodeError::InvalidJson(err.to_string()))
}

/// Serializes `value` as the payload of a text frame.
fn json_frame<T: serde::Serialize>(value: &T) -> Result<Frame, EncodeError> {
    let mut writer = FrameWriter::new(Opcode::Text, 128);
    serde_json::to_writer(writer.buf(), value)?;
    Ok(writer.finish())
}

/// A JSON payload to write: as a value, or as text encoded earlier.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum RawOrValue<'a> {
    Value(&'a Value),
    Raw(&'a RawValue),
}

fn require_object(payload: &Value) -> Result<(), EncodeError> {
    if payload.is_object() { Ok(()) } else { Err(EncodeError::NotAnObject) }
}

/// The payload of a text reply, keys in Phoenix's order.
fn reply_body<'a>(status: &'a str, response: &'a Value) -> ReplyBody<'a> {
    ReplyBody { response, status }
}

#[derive(serde::Serialize)]
struct ReplyBody<'a> {
    response: &'a Value,
    status: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_vsn_selects_v1() {
        assert_eq!(Serializer::negotiate(None), Ok(Serializer::V1));
    }

    #[test]
    fn vsn_1_0_x_selects_v1_and_2_0_x_selects_v2() {
        assert_eq!(Serializer::negotiate(Some("1.0.0")), Ok(Serializer::V1));
        assert_eq!(Serializer::negotiate(Some("1.0.7")), Ok(Serializer::V1));
        assert_eq!(Serializer::negotiate(Some("2.0.0")), Ok(Serializer::V2));
        assert_eq!(Serializer::negotiate(Some("2.0.12")), Ok(Serializer::V2));
        assert_eq!(Serializer::negotiate(Some("2.0.1-rc.1")), Ok(Serializer::V2));
        assert_eq!(Serializer::negotiate(Some("2.0.0+build.5")), Ok(Serializer::V2));
    }

    #[test]
    fn invalid_or_unmatched_vsn_is_refused() {
        for bad in ["2.0", "", "abc", "2..0", "2.0.x", "1.0.0.0", "02.0.0", "2.00.0", "2.0.0-", "2.0.0+", "2.0.1-a..b"]
        {
            assert!(matches!(Serializer::negotiate(Some(bad)), Err(VsnError::Invalid(_))), "{bad}");
        }
        for unmatched in ["123.1.1", "2.1.0", "1.1.0", "3.0.0", "0.0.1", "2.0.0-rc.1"] {
            assert!(matches!(Serializer::negotiate(Some(unmatched)), Err(VsnError::Unsupported(_))), "{unmatched}");
        }
    }
}
