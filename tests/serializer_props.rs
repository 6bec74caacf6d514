//! Property tests for the wire formats (PROTOCOL.md 3): whatever one side encodes, the
//! other side decodes back, up to what each format can carry, and no input makes a
//! decoder panic.

use bytes::Bytes;
use phx_channels::message::{PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, PHX_REPLY};
use phx_channels::serializer::{ClientFrame, DecodeError, EncodeError, RawFrame, ServerMessage};
use phx_channels::{Broadcast, Message, Payload, Ref, Reply, Serializer};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

/// The longest string a binary frame header can carry: lengths are one byte (P40).
const MAX_FIELD: usize = 255;

/// Any Unicode string of up to `max_chars` chars, control characters and astral planes
/// included, since those are what JSON escaping and UTF-8 lengths get wrong.
fn text(max_chars: usize) -> impl Strategy<Value = String> + Clone {
    vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

/// A string that fits a binary header field: up to 80 chars, cut to 255 bytes.
fn field_text() -> impl Strategy<Value = String> + Clone {
    text(80).prop_map(|mut s| {
        while s.len() > MAX_FIELD {
            s.pop();
        }
        s
    })
}

/// An event: often a reserved one, otherwise any string.
fn event(field: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![select(vec![PHX_JOIN, PHX_LEAVE, PHX_CLOSE, PHX_ERROR, PHX_REPLY]).prop_map(String::from), field]
}

/// An event for a server push or broadcast. `phx_reply` is left out because a text frame
/// with that event and a `status` string is, by design, read back as a [`Reply`].
fn push_event(field: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    event(field).prop_filter("a phx_reply push reads back as a reply", |e| e != PHX_REPLY)
}

/// Any JSON value of modest depth and size.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| Number::from_f64(f).map(Value::Number)),
        text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![vec(inner.clone(), 0..6).prop_map(Value::Array), object_of(inner)]
    })
}

fn object_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    btree_map(text(8), values, 0..6).prop_map(|map| Value::Object(Map::from_iter(map)))
}

/// A JSON object, the only JSON payload a V2 push or broadcast may carry (P33).
fn json_object() -> impl Strategy<Value = Value> {
    object_of(json())
}

fn non_object_json() -> impl Strategy<Value = Value> {
    json().prop_filter("not an object", |v| !v.is_object())
}

fn json_payload(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Payload> {
    value.prop_map(Payload::Json)
}

fn binary_payload() -> impl Strategy<Value = Payload> {
    vec(any::<u8>(), 0..300).prop_map(Payload::from)
}

fn message(
    field: impl Strategy<Value = String> + Clone,
    event: impl Strategy<Value = String>,
    payload: impl Strategy<Value = Payload>,
) -> impl Strategy<Value = Message> {
    let opt_ref = proptest::option::of(field.clone().prop_map(Ref::from));
    (opt_ref.clone(), opt_ref, field, event, payload).prop_map(|(join_ref, msg_ref, topic, event, payload)| Message {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
    })
}

fn reply(
    field: impl Strategy<Value = String> + Clone,
    response: impl Strategy<Value = Payload>,
) -> impl Strategy<Value = Reply> {
    let opt_ref = proptest::option::of(field.clone().prop_map(Ref::from));
    (opt_ref.clone(), opt_ref, field.clone(), field, response)
        .prop_map(|(join_ref, msg_ref, topic, status, response)| Reply { join_ref, msg_ref, topic, status, response })
}

fn broadcast(
    field: impl Strategy<Value = String> + Clone,
    payload: impl Strategy<Value = Payload>,
) -> impl Strategy<Value = Broadcast> {
    (field.clone(), push_event(field), payload).prop_map(|(topic, event, payload)| Broadcast { topic, event, payload })
}

/// The client-side frame as the server receives it.
fn raw(frame: &ClientFrame) -> RawFrame<'_> {
    match frame {
        ClientFrame::Text(text) => RawFrame::Text(text.as_bytes()),
        ClientFrame::Binary(bytes) => RawFrame::Binary(bytes),
    }
}

/// Decodes a server frame the way a client receives it: the frame minus its WebSocket header.
fn decode_server(serializer: Serializer, frame: &phx_channels::serializer::Frame) -> ServerMessage {
    let body = if frame.is_binary() { RawFrame::Binary(frame.payload()) } else { RawFrame::Text(frame.payload()) };
    serializer.decode_server(body).expect("a frame the server encoded decodes")
}

/// What a binary server frame carries for a ref: null is written as length 0, so both
/// `None` and `Some("")` read back as `None`.
fn binary_ref(value: &Option<Ref>) -> Option<Ref> {
    value.clone().filter(|s| !s.is_empty())
}

proptest! {
    #[test]
    fn v1_client_messages_round_trip(msg in message(text(24), event(text(24)), json_payload(json()))) {
        let frame = Serializer::V1.encode_client(&msg).unwrap();
        prop_assert!(matches!(frame, ClientFrame::Text(_)));
        prop_assert_eq!(Serializer::V1.decode(raw(&frame)).unwrap(), msg);
    }

    #[test]
    fn v2_json_client_messages_round_trip(msg in message(text(24), event(text(24)), json_payload(json()))) {
        let frame = Serializer::V2.encode_client(&msg).unwrap();
        prop_assert!(matches!(frame, ClientFrame::Text(_)));
        prop_assert_eq!(Serializer::V2.decode(raw(&frame)).unwrap(), msg);
    }

    /// A null ref is written as length 0, and the server reads length 0 as the empty
    /// string, not null, as Phoenix does (PROTOCOL.md 3.4: on a joined topic an empty
    /// join_ref counts as stale). So `None` comes back as `Some("")`.
    #[test]
    fn v2_binary_client_messages_round_trip(msg in message(field_text(), event(field_text()), binary_payload())) {
        let frame = Serializer::V2.encode_client(&msg).unwrap();
        prop_assert!(matches!(frame, ClientFrame::Binary(_)));
        let expected = Message {
            join_ref: Some(msg.join_ref.clone().unwrap_or_else(|| Ref::from(""))),
            msg_ref: Some(msg.msg_ref.clone().unwrap_or_else(|| Ref::from(""))),
            ..msg.clone()
        };
        prop_assert_eq!(Serializer::V2.decode(raw(&frame)).unwrap(), expected);
    }

    /// V1 output has no join_ref (P34), so it reads back as `None`.
    #[test]
    fn json_server_pushes_round_trip(msg in message(text(24), push_event(text(24)), json_payload(json_object()))) {
        for serializer in [Serializer::V1, Serializer::V2] {
            let frame = serializer.encode_push(&msg).unwrap();
            prop_assert!(!frame.is_binary());
            let join_ref = if serializer == Serializer::V1 { None } else { msg.join_ref.clone() };
            let expected = ServerMessage::Message(Message { join_ref, ..msg.clone() });
            prop_assert_eq!(decode_server(serializer, &frame), expected, "{:?}", serializer);
        }
    }

    #[test]
    fn json_server_replies_round_trip(reply in reply(text(24), json_payload(json()))) {
        for serializer in [Serializer::V1, Serializer::V2] {
            let frame = serializer.encode_reply(&reply).unwrap();
            prop_assert!(!frame.is_binary());
            let join_ref = if serializer == Serializer::V1 { None } else { reply.join_ref.clone() };
            let expected = ServerMessage::Reply(Reply { join_ref, ..reply.clone() });
            prop_assert_eq!(decode_server(serializer, &frame), expected, "{:?}", serializer);
        }
    }

    #[test]
    fn json_server_broadcasts_round_trip(b in broadcast(text(24), json_payload(json_object()))) {
        for serializer in [Serializer::V1, Serializer::V2] {
            let frame = serializer.encode_broadcast(&b).unwrap();
            prop_assert!(!frame.is_binary());
            let expected = Message::new(b.topic.clone(), b.event.clone(), b.payload.clone());
            prop_assert_eq!(decode_server(serializer, &frame), ServerMessage::Message(expected), "{:?}", serializer);
        }
    }

    /// V1 carries any JSON payload; V2 refuses a push or broadcast that is not an object (P33).
    #[test]
    fn only_v2_refuses_non_object_pushes(
        msg in message(text(8), push_event(text(8)), json_payload(non_object_json())),
    ) {
        let b = Broadcast::new(msg.topic.clone(), msg.event.clone(), msg.payload.clone());
        prop_assert_eq!(Serializer::V2.encode_push(&msg), Err(EncodeError::NotAnObject));
        prop_assert_eq!(Serializer::V2.encode_broadcast(&b), Err(EncodeError::NotAnObject));
        let frame = Serializer::V1.encode_push(&msg).unwrap();
        let ServerMessage::Message(pushed) = decode_server(Serializer::V1, &frame) else {
            panic!("a V1 push decodes as a message")
        };
        prop_assert_eq!(pushed.payload, msg.payload);
    }

    /// A binary server push has no ref (P37); empty refs read back as `None`.
    #[test]
    fn binary_server_pushes_round_trip(msg in message(field_text(), event(field_text()), binary_payload())) {
        let frame = Serializer::V2.encode_push(&msg).unwrap();
        prop_assert!(frame.is_binary());
        let expected = Message { join_ref: binary_ref(&msg.join_ref), msg_ref: None, ..msg.clone() };
        prop_assert_eq!(decode_server(Serializer::V2, &frame), ServerMessage::Message(expected));
    }

    #[test]
    fn binary_server_replies_round_trip(reply in reply(field_text(), binary_payload())) {
        let frame = Serializer::V2.encode_reply(&reply).unwrap();
        prop_assert!(frame.is_binary());
        let expected =
            Reply { join_ref: binary_ref(&reply.join_ref), msg_ref: binary_ref(&reply.msg_ref), ..reply.clone() };
        prop_assert_eq!(decode_server(Serializer::V2, &frame), ServerMessage::Reply(expected));
    }

    #[test]
    fn binary_server_broadcasts_round_trip(b in broadcast(field_text(), binary_payload())) {
        let frame = Serializer::V2.encode_broadcast(&b).unwrap();
        prop_assert!(frame.is_binary());
        let expected = Message::new(b.topic.clone(), b.event.clone(), b.payload.clone());
        prop_assert_eq!(decode_server(Serializer::V2, &frame), ServerMessage::Message(expected));
        prop_assert_eq!(Serializer::V1.encode_broadcast(&b), Err(EncodeError::BinaryOnV1));
    }

    /// Every binary header field is limited to 255 bytes and a longer one is refused,
    /// naming the field (P40), whichever side encodes it.
    #[test]
    fn binary_fields_over_255_bytes_are_refused(
        // 256 or more chars, each one or two bytes: always over 255 bytes.
        long in "[a-zé]{256,300}",
        which in 0..4usize,
    ) {
        let mut msg = Message {
            join_ref: Some("1".into()),
            msg_ref: Some("2".into()),
            topic: "t".into(),
            event: "e".into(),
            payload: Payload::from(vec![1u8]),
        };
        match which {
            0 => msg.join_ref = Some(long.clone().into()),
            1 => msg.msg_ref = Some(long.clone().into()),
            2 => msg.topic = long.clone(),
            _ => msg.event = long.clone(),
        }
        let field = ["join_ref", "ref", "topic", "event"][which];
        let too_long = EncodeError::FieldTooLong { field, len: long.len() };
        prop_assert_eq!(Serializer::V2.encode_client(&msg), Err(too_long.clone()));
        // A server push has no ref field, so a long ref does not matter there.
        let pushed = Serializer::V2.encode_push(&msg);
        if field == "ref" { prop_assert!(pushed.is_ok()) } else { prop_assert_eq!(pushed, Err(too_long)) }
    }

    /// Every prefix of a binary client frame either is refused as truncated (header cut)
    /// or decodes with the payload cut to match: the payload has no length prefix.
    #[test]
    fn truncated_binary_client_frames(msg in message(field_text(), event(field_text()), binary_payload())) {
        let ClientFrame::Binary(full) = Serializer::V2.encode_client(&msg).unwrap() else { panic!("binary payload") };
        let payload_len = msg.payload.as_binary().unwrap().len();
        let header = full.len() - payload_len;
        for cut in 0..full.len() {
            let decoded = Serializer::V2.decode(RawFrame::Binary(&full[..cut]));
            if cut < header {
                prop_assert!(matches!(decoded, Err(DecodeError::Truncated { .. })), "cut {}: {:?}", cut, decoded);
            } else {
                let payload = Bytes::copy_from_slice(&full[header..cut]);
                prop_assert_eq!(decoded.unwrap().payload, Payload::Binary(payload));
            }
        }
    }

    /// No bytes make a decoder panic, on either side, in any format. Text that is not
    /// UTF-8 and binary frames on V1 are refused with the error that says so.
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let utf8 = std::str::from_utf8(&bytes).is_ok();
        for serializer in [Serializer::V1, Serializer::V2] {
            let client = serializer.decode(RawFrame::Text(&bytes)).map(drop);
            let server = serializer.decode_server(RawFrame::Text(&bytes)).map(drop);
            if !utf8 {
                prop_assert_eq!(client, Err(DecodeError::InvalidUtf8 { field: "frame" }));
                prop_assert_eq!(server, Err(DecodeError::InvalidUtf8 { field: "frame" }));
            }
            let client = serializer.decode(RawFrame::Binary(&bytes));
            let server = serializer.decode_server(RawFrame::Binary(&bytes));
            if serializer == Serializer::V1 {
                prop_assert_eq!(client, Err(DecodeError::BinaryOnV1));
                prop_assert_eq!(server, Err(DecodeError::BinaryOnV1));
            } else {
                assert_binary_is_canonical(&bytes, client.ok(), server.ok())?;
            }
        }
    }

    /// Valid frames with one byte changed reach deeper into the decoders than random
    /// bytes do. Whatever decodes must survive re-encoding unchanged.
    #[test]
    fn decoders_never_panic_on_mutated_frames(
        msg in message(field_text(), event(field_text()), prop_oneof![json_payload(json()), binary_payload()]),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        for serializer in [Serializer::V1, Serializer::V2] {
            let Ok(frame) = serializer.encode_client(&msg) else { continue };
            let mut bytes = match frame {
                ClientFrame::Text(text) => text.into_bytes(),
                ClientFrame::Binary(bytes) => bytes,
            };
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if msg.payload.as_binary().is_some() {
                let client = serializer.decode(RawFrame::Binary(&bytes)).ok();
                let server = serializer.decode_server(RawFrame::Binary(&bytes)).ok();
                assert_binary_is_canonical(&bytes, client, server)?;
            } else if let Ok(decoded) = serializer.decode(RawFrame::Text(&bytes)) {
                let again = serializer.encode_client(&decoded).unwrap();
                prop_assert_eq!(serializer.decode(raw(&again)).unwrap(), decoded);
            }
        }
    }
}

/// The binary format has one encoding per message, so a frame that decodes re-encodes
/// to the very same bytes, on the client side and the server side.
fn assert_binary_is_canonical(
    bytes: &[u8],
    client: Option<Message>,
    server: Option<ServerMessage>,
) -> Result<(), TestCaseError> {
    if let Some(msg) = client {
        prop_assert_eq!(Serializer::V2.encode_client(&msg).unwrap(), ClientFrame::Binary(bytes.to_vec()));
    }
    let frame = match server {
        None => return Ok(()),
        Some(ServerMessage::Reply(reply)) => Serializer::V2.encode_reply(&reply),
        // A broadcast (kind 2) decodes with no refs and a push (kind 0) has no ref field.
        Some(ServerMessage::Message(msg)) if bytes[0] == 2 => {
            Serializer::V2.encode_broadcast(&Broadcast::new(msg.topic, msg.event, msg.payload))
        }
        Some(ServerMessage::Message(msg)) => Serializer::V2.encode_push(&msg),
    };
    let frame = frame.unwrap();
    prop_assert_eq!(frame.payload(), bytes);
    Ok(())
}
