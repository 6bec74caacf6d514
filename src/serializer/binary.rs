//! V2 binary frames: a kind byte, one length byte per header field,
//! the fields, then the raw payload with no length prefix.

use super::{DecodeError, EncodeError, Frame, FrameWriter, Opcode, ServerMessage};
use crate::message::{Message, Ref, Reply};
use crate::payload::Payload;
use bytes::Bytes;

const PUSH: u8 = 0;
const REPLY: u8 = 1;
const BROADCAST: u8 = 2;

/// Appends `kind`, the length bytes, the fields and the payload to `out`.
fn write(out: &mut Vec<u8>, kind: u8, fields: &[(&'static str, &str)], payload: &[u8]) -> Result<(), EncodeError> {
    out.push(kind);
    for (field, value) in fields {
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong { field, len: value.len() })?;
        out.push(len);
    }
    for (_, value) in fields {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    Ok(())
}

/// Builds a complete binary WebSocket frame.
fn frame(kind: u8, fields: &[(&'static str, &str)], payload: &[u8]) -> Result<Frame, EncodeError> {
    let header: usize = 1 + fields.iter().map(|(_, v)| 1 + v.len()).sum::<usize>();
    let mut writer = FrameWriter::new(Opcode::Binary, header + payload.len());
    write(writer.buf(), kind, fields, payload)?;
    Ok(writer.finish())
}

/// Splits a frame after its kind byte into `N` length-prefixed string fields and the payload.
fn read<const N: usize>(bytes: &[u8], names: [&'static str; N]) -> Result<([String; N], Bytes), DecodeError> {
    let header = 1 + N;
    if bytes.len() < header {
        return Err(DecodeError::Truncated { needed: header, len: bytes.len() });
    }
    let needed = header + bytes[1..header].iter().map(|&len| len as usize).sum::<usize>();
    if bytes.len() < needed {
        return Err(DecodeError::Truncated { needed, len: bytes.len() });
    }
    let mut at = header;
    let mut fields = [const { String::new() }; N];
    for (i, field) in names.into_iter().enumerate() {
        let len = bytes[1 + i] as usize;
        let text = std::str::from_utf8(&bytes[at..at + len]).map_err(|_| DecodeError::InvalidUtf8 { field })?;
        fields[i] = text.to_owned();
        at += len;
    }
    Ok((fields, Bytes::copy_from_slice(&bytes[at..])))
}

fn or_empty(value: &Option<Ref>) -> &str {
    value.as_deref().unwrap_or("")
}

fn non_empty(value: String) -> Option<Ref> {
    if value.is_empty() { None } else { Some(Ref::from(value)) }
}

/// Decodes a client push (kind 0, 5-byte header). An empty join_ref or ref decodes
/// as `Some("")`, not `None`, as in Phoenix: on a joined topic it counts as stale.
pub(super) fn decode_client_push(bytes: &[u8]) -> Result<Message, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Truncated { needed: 1, len: 0 }),
        Some(&PUSH) => {
            let ([join_ref, msg_ref, topic, event], payload) = read(bytes, ["join_ref", "ref", "topic", "event"])?;
            Ok(Message {
                join_ref: Some(Ref::from(join_ref)),
                msg_ref: Some(Ref::from(msg_ref)),
                topic,
                event,
                payload: Payload::Binary(payload),
            })
        }
        Some(&kind) => Err(DecodeError::UnknownKind(kind)),
    }
}

/// Encodes a client push (kind 0, 5-byte header).
pub(super) fn encode_client_push(msg: &Message, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let fields = [
        ("join_ref", or_empty(&msg.join_ref)),
        ("ref", or_empty(&msg.msg_ref)),
        ("topic", msg.topic.as_str()),
        ("event", msg.event.as_str()),
    ];
    let mut out = Vec::new();
    write(&mut out, PUSH, &fields, payload)?;
    Ok(out)
}

/// Encodes a server push (kind 0, 4-byte header, no ref).
pub(super) fn encode_push(
    join_ref: &Option<Ref>,
    topic: &str,
    event: &str,
    payload: &[u8],
) -> Result<Frame, EncodeError> {
    let fields = [("join_ref", or_empty(join_ref)), ("topic", topic), ("event", event)];
    frame(PUSH, &fields, payload)
}

/// Encodes a reply (kind 1, 5-byte header, the status as a string).
pub(super) fn encode_reply(reply: &Reply, payload: &[u8]) -> Result<Frame, EncodeError> {
    let fields = [
        ("join_ref", or_empty(&reply.join_ref)),
        ("ref", or_empty(&reply.msg_ref)),
        ("topic", reply.topic.as_str()),
        ("status", reply.status.as_str()),
    ];
    frame(REPLY, &fields, payload)
}

/// Encodes a broadcast (kind 2, 3-byte header).
pub(super) fn encode_broadcast(broadcast: &crate::message::Broadcast, payload: &[u8]) -> Result<Frame, EncodeError> {
    frame(BROADCAST, &[("topic", &broadcast.topic), ("event", &broadcast.event)], payload)
}

/// Decodes any server frame (kinds 0, 1 and 2); empty refs decode as `None`.
pub(super) fn decode_server(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Truncated { needed: 1, len: 0 }),
        Some(&PUSH) => {
            let ([join_ref, topic, event], payload) = read(bytes, ["join_ref", "topic", "event"])?;
            let join_ref = non_empty(join_ref);
            Ok(ServerMessage::Message(Message {
                join_ref,
                msg_ref: None,
                topic,
                event,
                payload: Payload::Binary(payload),
            }))
        }
        Some(&REPLY) => {
            let ([join_ref, msg_ref, topic, status], payload) = read(bytes, ["join_ref", "ref", "topic", "status"])?;
            Ok(ServerMessage::Reply(Reply {
                join_ref: non_empty(join_ref),
                msg_ref: non_empty(msg_ref),
                topic,
                status,
                response: Payload::Binary(payload),
            }))
        }
        Some(&BROADCAST) => {
            let ([topic, event], payload) = read(bytes, ["topic", "event"])?;
            Ok(ServerMessage::Message(Message::new(topic, event, Payload::Binary(payload))))
        }
        Some(&kind) => Err(DecodeError::UnknownKind(kind)),
    }
}

#[cfg(test)]
mod tests {
    use crate::message::{Broadcast, Message, Reply};
    use crate::payload::Payload;
    use crate::serializer::{ClientFrame, DecodeError, EncodeError, RawFrame, Serializer, ServerMessage};

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    const CLIENT_PUSH: &str = "00 02 03 05 05 31 32 31 32 33 74 6f 70 69 63 65 76 65 6e 74 65 66 67";
    const SERVER_PUSH: &str = "00 02 05 05 31 32 74 6f 70 69 63 65 76 65 6e 74 65 66 67";
    const REPLY: &str = "01 02 03 05 02 31 32 31 32 33 74 6f 70 69 63 6f 6b 65 66 67";
    const BROADCAST: &str = "02 05 05 74 6f 70 69 63 65 76 65 6e 74 65 66 67";

    fn example_push() -> Message {
        Message {
            join_ref: Some("12".into()),
            msg_ref: Some("123".into()),
            topic: "topic".into(),
            event: "event".into(),
            payload: Payload::from(b"efg".to_vec()),
        }
    }

    #[test]
    fn decodes_the_protocol_client_push_example() {
        let msg = Serializer::V2.decode(RawFrame::Binary(&hex(CLIENT_PUSH))).unwrap();
        assert_eq!(msg, example_push());
    }

    #[test]
    fn encodes_the_protocol_client_push_example() {
        assert_eq!(Serializer::V2.encode_client(&example_push()).unwrap(), ClientFrame::Binary(hex(CLIENT_PUSH)));
    }

    #[test]
    fn encodes_the_protocol_server_push_example() {
        let frame = Serializer::V2.encode_push(&Message { msg_ref: None, ..example_push() }).unwrap();
        assert!(frame.is_binary());
        assert_eq!(frame.as_bytes()[0], 0x82, "FIN + binary opcode");
        assert_eq!(frame.payload(), hex(SERVER_PUSH));
    }

    #[test]
    fn encodes_the_protocol_reply_example() {
        let reply = Reply {
            join_ref: Some("12".into()),
            msg_ref: Some("123".into()),
            topic: "topic".into(),
            status: "ok".into(),
            response: Payload::from(b"efg".to_vec()),
        };
        let frame = Serializer::V2.encode_reply(&reply).unwrap();
        assert!(frame.is_binary());
        assert_eq!(frame.payload(), hex(REPLY));
    }

    #[test]
    fn encodes_the_protocol_broadcast_example() {
        let frame = Serializer::V2.encode_broadcast(&Broadcast::new("topic", "event", b"efg".to_vec())).unwrap();
        assert!(frame.is_binary());
        assert_eq!(frame.payload(), hex(BROADCAST));
    }

    #[test]
    fn null_refs_are_encoded_with_length_zero() {
        let msg = Message::new("t", "e", Payload::from(vec![9u8]));
        let frame = Serializer::V2.encode_push(&msg).unwrap();
        assert_eq!(frame.payload(), [0, 0, 1, 1, b't', b'e', 9]);
    }

    #[test]
    fn empty_client_join_ref_decodes_as_empty_string_not_null() {
        let msg = Serializer::V2.decode(RawFrame::Binary(&[0, 0, 0, 1, 1, b't', b'e'])).unwrap();
        assert_eq!(msg.join_ref.as_deref(), Some(""));
        assert_eq!(msg.payload, Payload::from(Vec::new()));
    }

    #[test]
    fn fields_longer_than_255_bytes_are_refused() {
        let msg = Message::new("t".repeat(256), "e", Payload::from(vec![1u8]));
        assert_eq!(Serializer::V2.encode_push(&msg), Err(EncodeError::FieldTooLong { field: "topic", len: 256 }));
        let msg = Message::new("t".repeat(255), "e", Payload::from(vec![1u8]));
        assert!(Serializer::V2.encode_push(&msg).is_ok());
    }

    #[test]
    fn truncated_frames_are_errors() {
        let full = hex(CLIENT_PUSH);
        for len in 0..19 {
            let err = Serializer::V2.decode(RawFrame::Binary(&full[..len])).unwrap_err();
            assert!(matches!(err, DecodeError::Truncated { .. }), "len {len}: {err:?}");
        }
        // A header whose lengths run past the end.
        assert_eq!(
            Serializer::V2.decode(RawFrame::Binary(&[0, 255, 255, 255, 255])),
            Err(DecodeError::Truncated { needed: 5 + 4 * 255, len: 5 })
        );
    }

    #[test]
    fn other_kinds_from_clients_are_errors() {
        assert_eq!(Serializer::V2.decode(RawFrame::Binary(&hex(REPLY))), Err(DecodeError::UnknownKind(1)));
        assert_eq!(Serializer::V2.decode(RawFrame::Binary(&[7])), Err(DecodeError::UnknownKind(7)));
    }

    #[test]
    fn invalid_utf8_in_a_field_is_an_error() {
        assert_eq!(
            Serializer::V2.decode(RawFrame::Binary(&[0, 0, 0, 1, 1, 0xff, b'e'])),
            Err(DecodeError::InvalidUtf8 { field: "topic" })
        );
    }

    #[test]
    fn server_frames_decode_for_clients() {
        let ServerMessage::Reply(reply) = Serializer::V2.decode_server(RawFrame::Binary(&hex(REPLY))).unwrap() else {
            panic!("expected a reply")
        };
        assert_eq!((reply.status.as_str(), reply.msg_ref.as_deref()), ("ok", Some("123")));
        let ServerMessage::Message(b) = Serializer::V2.decode_server(RawFrame::Binary(&hex(BROADCAST))).unwrap() else {
            panic!("expected a message")
        };
        assert_eq!((b.join_ref, b.msg_ref, b.topic.as_str()), (None, None, "topic"));
    }
}
