//! V2 JSON: one array `[join_ref, ref, topic, event, payload]` per text frame.

use super::{DecodeError, Decoded, EncodeError, Frame, json_frame};
use crate::message::Ref;
use crate::payload::Payload;
use serde::Serialize;
use serde_json::Value;

/// Decodes an array of at least 5 elements; elements after the fifth are ignored. The
/// first five are taken as they are: a topic or event that is not a string makes the
/// message [`Decoded::Unroutable`].
pub(super) fn decode(value: Value) -> Result<Decoded, DecodeError> {
    let Value::Array(items) = value else { return Err(DecodeError::NotAnArray) };
    if items.len() < 5 {
        return Err(DecodeError::TooFewElements { found: items.len() });
    }
    let mut items = items.into_iter();
    let mut next = || items.next().unwrap_or(Value::Null);
    let join_ref = Ref::from_json(next());
    let msg_ref = Ref::from_json(next());
    let (topic, event) = (next(), next());
    Ok(Decoded::new(join_ref, msg_ref, topic, event, Payload::Json(next())))
}

/// Encodes `[join_ref, ref, topic, event, payload]`.
pub(super) fn encode<T: Serialize + ?Sized, P: Serialize>(
    join_ref: &Option<Ref>,
    msg_ref: &Option<Ref>,
    topic: &T,
    event: &str,
    payload: &P,
) -> Result<Frame, EncodeError> {
    json_frame(&(join_ref, msg_ref, topic, event, payload))
}

#[cfg(test)]
mod tests {
    use crate::message::{Broadcast, Message, Ref, Reply};
    use crate::payload::Payload;
    use crate::serializer::{DecodeError, EncodeError, RawFrame, Serializer, ServerMessage};
    use serde_json::json;

    fn decode(text: &str) -> Result<Message, DecodeError> {
        Serializer::V2.decode(RawFrame::Text(text.as_bytes()))
    }

    fn push(join_ref: Option<&str>, msg_ref: Option<&str>, event: &str, payload: serde_json::Value) -> Message {
        Message {
            join_ref: join_ref.map(Into::into),
            msg_ref: msg_ref.map(Into::into),
            topic: "room:1".into(),
            event: event.into(),
            payload: Payload::Json(payload),
        }
    }

    #[test]
    fn decodes_a_five_element_array() {
        let msg = decode(r#"["1","2","room:1","new_msg",{"body":"hi"}]"#).unwrap();
        assert_eq!(msg, push(Some("1"), Some("2"), "new_msg", json!({"body":"hi"})));
    }

    #[test]
    fn extra_elements_are_ignored() {
        let msg = decode(r#"["1","2","room:1","new_msg",{"body":"hi"},"extra",[1,2]]"#).unwrap();
        assert_eq!(msg, push(Some("1"), Some("2"), "new_msg", json!({"body":"hi"})));
    }

    #[test]
    fn fewer_than_five_elements_is_an_error() {
        assert_eq!(decode(r#"["1","2","room:1","e"]"#), Err(DecodeError::TooFewElements { found: 4 }));
        assert_eq!(decode("[]"), Err(DecodeError::TooFewElements { found: 0 }));
    }

    #[test]
    fn non_arrays_are_errors() {
        assert_eq!(decode(r#"{"topic":"t"}"#), Err(DecodeError::NotAnArray));
        assert_eq!(decode("42"), Err(DecodeError::NotAnArray));
        assert!(matches!(decode("[1,"), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(
            Serializer::V2.decode(RawFrame::Text(b"[\"\xff\"]")),
            Err(DecodeError::InvalidUtf8 { field: "frame" })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("[null,null,\"t\",\"e\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(decode(&deep), Err(DecodeError::InvalidJson(_))));
    }

    #[test]
    fn refs_of_any_json_type_are_kept_as_sent() {
        let msg = decode(r#"[1,[2],"t","e",{}]"#).unwrap();
        assert_eq!(msg.join_ref, Ref::from_json(json!(1)));
        assert_eq!(msg.msg_ref, Ref::from_json(json!([2])));
    }

    #[test]
    fn a_topic_or_event_that_is_not_a_string_is_refused_by_the_public_decoder() {
        assert!(matches!(decode(r#"["1","2",null,"e",{}]"#), Err(DecodeError::WrongType { field: "topic", .. })));
        assert!(matches!(decode(r#"["1","2","t",{},{}]"#), Err(DecodeError::WrongType { field: "event", .. })));
    }

    #[test]
    fn any_payload_reaches_the_channel_unchanged() {
        let msg = decode(r#"[null,"1","t","e",[1,"two",null]]"#).unwrap();
        assert_eq!(msg.payload, Payload::Json(json!([1, "two", null])));
    }

    #[test]
    fn push_frame_has_join_ref_and_null_ref() {
        let frame = Serializer::V2.encode_push(&push(Some("1"), None, "new_msg", json!({"body":"hi"}))).unwrap();
        assert!(!frame.is_binary());
        assert_eq!(frame.payload(), br#"["1",null,"room:1","new_msg",{"body":"hi"}]"#);
    }

    #[test]
    fn reply_frame_shape() {
        let reply = Reply {
            join_ref: Some("1".into()),
            msg_ref: Some("4".into()),
            topic: "room:1".into(),
            status: "ok".into(),
            response: Payload::Json(json!({"id":9})),
        };
        let frame = Serializer::V2.encode_reply(&reply).unwrap();
        assert_eq!(frame.payload(), br#"["1","4","room:1","phx_reply",{"response":{"id":9},"status":"ok"}]"#);
    }

    #[test]
    fn heartbeat_reply_has_null_join_ref() {
        let reply = Reply {
            join_ref: None,
            msg_ref: Some("7".into()),
            topic: "phoenix".into(),
            status: "ok".into(),
            response: Payload::empty(),
        };
        let frame = Serializer::V2.encode_reply(&reply).unwrap();
        assert_eq!(frame.payload(), br#"[null,"7","phoenix","phx_reply",{"response":{},"status":"ok"}]"#);
    }

    #[test]
    fn broadcast_frame_has_null_refs() {
        let frame =
            Serializer::V2.encode_broadcast(&Broadcast::new("room:1", "new_msg", json!({"body":"hi"}))).unwrap();
        assert_eq!(frame.payload(), br#"[null,null,"room:1","new_msg",{"body":"hi"}]"#);
    }

    #[test]
    fn close_and_error_frames_repeat_the_join_ref_as_ref() {
        let frame = Serializer::V2
            .encode_push(&push(Some("1"), Some("1"), "phx_error", json!({"reason":"channel_crash"})))
            .unwrap();
        assert_eq!(frame.payload(), br#"["1","1","room:1","phx_error",{"reason":"channel_crash"}]"#);
    }

    #[test]
    fn pushes_and_broadcasts_need_object_payloads_but_replies_do_not() {
        assert_eq!(Serializer::V2.encode_push(&push(Some("1"), None, "e", json!([1]))), Err(EncodeError::NotAnObject));
        assert_eq!(
            Serializer::V2.encode_broadcast(&Broadcast::new("t", "e", json!("s"))),
            Err(EncodeError::NotAnObject)
        );
        let reply = Reply {
            join_ref: None,
            msg_ref: Some("1".into()),
            topic: "t".into(),
            status: "ok".into(),
            response: Payload::Json(json!([1, 2])),
        };
        assert!(Serializer::V2.encode_reply(&reply).is_ok());
    }

    #[test]
    fn refs_are_opaque_and_echoed_exactly() {
        let msg = decode(r#"["  j ","ref-\u00e9-1","t","e",{}]"#).unwrap();
        assert_eq!(msg.join_ref.as_deref(), Some("  j "));
        assert_eq!(msg.msg_ref.as_deref(), Some("ref-é-1"));
    }

    #[test]
    fn server_replies_decode_as_replies() {
        let decoded = Serializer::V2
            .decode_server(RawFrame::Text(br#"["1","4","room:1","phx_reply",{"response":{"id":9},"status":"ok"}]"#))
            .unwrap();
        let ServerMessage::Reply(reply) = decoded else { panic!("expected a reply") };
        assert_eq!(reply.status, "ok");
        assert_eq!(reply.response, Payload::Json(json!({"id":9})));
    }
}
