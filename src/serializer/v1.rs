//! V1 JSON: one object per text frame.

use super::{DecodeError, Decoded, EncodeError, Frame, json_frame};
use crate::message::{Message, Ref};
use crate::payload::Payload;
use serde::Serialize;
use serde_json::Value;

/// A server frame, keys in Phoenix's (sorted) order. V1 output never has `join_ref`.
#[derive(Serialize)]
struct ServerFrame<'a, T: Serialize + ?Sized, P: Serialize> {
    event: &'a str,
    payload: &'a P,
    #[serde(rename = "ref")]
    msg_ref: &'a Option<Ref>,
    topic: &'a T,
}

/// A client frame: like a server frame, plus `join_ref` when there is one.
#[derive(Serialize)]
struct ClientFrame<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    join_ref: &'a Option<Ref>,
    payload: &'a Value,
    #[serde(rename = "ref")]
    msg_ref: &'a Option<Ref>,
    topic: &'a str,
}

/// Decodes an object with `topic`, `event`, `payload` and `ref` present (values may be
/// null where the type allows) and `join_ref` optional.
pub(super) fn decode(value: Value) -> Result<Decoded, DecodeError> {
    let Value::Object(mut map) = value else { return Err(DecodeError::NotAnObject) };
    let mut take = |key: &'static str| map.remove(key).ok_or(DecodeError::MissingKey(key));
    let topic = take("topic")?;
    let event = take("event")?;
    let payload = take("payload")?;
    let msg_ref = Ref::from_json(take("ref")?);
    let join_ref = map.remove("join_ref").and_then(Ref::from_json);
    Ok(Decoded::new(join_ref, msg_ref, topic, event, Payload::Json(payload)))
}

/// Encodes a server frame: a push (ref null), a broadcast, a reply, or `phx_close` /
/// `phx_error` with the stored join_ref in `ref`.
pub(super) fn encode<T: Serialize + ?Sized, P: Serialize>(
    topic: &T,
    event: &str,
    payload: &P,
    msg_ref: &Option<Ref>,
) -> Result<Frame, EncodeError> {
    json_frame(&ServerFrame { event, payload, msg_ref, topic })
}

/// Encodes a client frame.
pub(super) fn encode_client(msg: &Message, payload: &Value) -> Result<String, EncodeError> {
    let frame =
        ClientFrame { event: &msg.event, join_ref: &msg.join_ref, payload, msg_ref: &msg.msg_ref, topic: &msg.topic };
    Ok(serde_json::to_string(&frame)?)
}

#[cfg(test)]
mod tests {
    use crate::message::{Broadcast, Message, Ref, Reply};
    use crate::payload::Payload;
    use crate::serializer::{DecodeError, EncodeError, RawFrame, Serializer};
    use serde_json::{Value, json};

    fn decode(text: &str) -> Result<Message, DecodeError> {
        Serializer::V1.decode(RawFrame::Text(text.as_bytes()))
    }

    fn text(frame: &crate::serializer::Frame) -> Value {
        serde_json::from_slice(frame.payload()).unwrap()
    }

    #[test]
    fn decodes_an_object_with_all_keys() {
        let msg = decode(r#"{"topic":"room:1","event":"new_msg","payload":{"a":1},"ref":"3","join_ref":"1"}"#).unwrap();
        assert_eq!(msg.topic, "room:1");
        assert_eq!(msg.event, "new_msg");
        assert_eq!(msg.payload, Payload::Json(json!({"a":1})));
        assert_eq!(msg.msg_ref.as_deref(), Some("3"));
        assert_eq!(msg.join_ref.as_deref(), Some("1"));
    }

    #[test]
    fn join_ref_is_optional_and_values_may_be_null() {
        let msg = decode(r#"{"topic":"t","event":"e","payload":null,"ref":null}"#).unwrap();
        assert_eq!(msg.join_ref, None);
        assert_eq!(msg.msg_ref, None);
        assert_eq!(msg.payload, Payload::Json(Value::Null));
    }

    #[test]
    fn each_required_key_is_required() {
        for key in ["topic", "event", "payload", "ref"] {
            let mut obj = json!({"topic":"t","event":"e","payload":{},"ref":"1"});
            obj.as_object_mut().unwrap().remove(key);
            assert_eq!(decode(&obj.to_string()), Err(DecodeError::MissingKey(key)));
        }
    }

    #[test]
    fn non_objects_and_wrong_types_are_refused() {
        assert_eq!(decode("[1,2,3,4,5]"), Err(DecodeError::NotAnObject));
        assert!(matches!(
            decode(r#"{"topic":1,"event":"e","payload":{},"ref":"1"}"#),
            Err(DecodeError::WrongType { field: "topic", .. })
        ));
    }

    #[test]
    fn refs_of_any_json_type_are_kept_as_sent() {
        let msg = decode(r#"{"topic":"t","event":"e","payload":{},"ref":5,"join_ref":{"a":[1]}}"#).unwrap();
        assert_eq!(msg.msg_ref, Ref::from_json(json!(5)));
        assert_eq!(msg.join_ref, Ref::from_json(json!({"a": [1]})));
    }

    #[test]
    fn refs_are_echoed_exactly() {
        let msg = decode(r#"{"topic":"t","event":"e","payload":{},"ref":" 007 ","join_ref":"x"}"#).unwrap();
        let reply = Reply {
            join_ref: msg.join_ref,
            msg_ref: msg.msg_ref,
            topic: msg.topic,
            status: "ok".into(),
            response: Payload::empty(),
        };
        let frame = Serializer::V1.encode_reply(&reply).unwrap();
        assert_eq!(text(&frame)["ref"], " 007 ");
    }

    #[test]
    fn output_never_includes_join_ref() {
        let msg = Message {
            join_ref: Some("1".into()),
            msg_ref: None,
            topic: "room:1".into(),
            event: "new_msg".into(),
            payload: Payload::Json(json!({"body":"hi"})),
        };
        let frame = Serializer::V1.encode_push(&msg).unwrap();
        assert_eq!(frame.payload(), br#"{"event":"new_msg","payload":{"body":"hi"},"ref":null,"topic":"room:1"}"#);
    }

    #[test]
    fn pushes_and_broadcasts_have_a_null_ref() {
        let b = Broadcast::new("room:1", "new_msg", json!({"body":"hi"}));
        let frame = Serializer::V1.encode_broadcast(&b).unwrap();
        assert_eq!(frame.payload(), br#"{"event":"new_msg","payload":{"body":"hi"},"ref":null,"topic":"room:1"}"#);
    }

    #[test]
    fn close_and_error_carry_the_stored_join_ref_in_ref() {
        let close = Message {
            join_ref: Some("4".into()),
            msg_ref: Some("4".into()),
            topic: "room:1".into(),
            event: "phx_close".into(),
            payload: Payload::empty(),
        };
        let frame = Serializer::V1.encode_push(&close).unwrap();
        assert_eq!(frame.payload(), br#"{"event":"phx_close","payload":{},"ref":"4","topic":"room:1"}"#);
    }

    #[test]
    fn reply_frame_shape() {
        let reply = Reply {
            join_ref: None,
            msg_ref: Some("2".into()),
            topic: "room:1".into(),
            status: "ok".into(),
            response: Payload::empty(),
        };
        let frame = Serializer::V1.encode_reply(&reply).unwrap();
        assert_eq!(
            frame.payload(),
            br#"{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"room:1"}"#
        );
    }

    #[test]
    fn non_object_payloads_are_allowed_in_v1() {
        let b = Broadcast::new("t", "e", json!([1, 2]));
        assert!(Serializer::V1.encode_broadcast(&b).is_ok());
    }

    #[test]
    fn binary_payloads_are_refused_in_v1() {
        let b = Broadcast::new("t", "e", Payload::from(vec![1u8, 2]));
        assert_eq!(Serializer::V1.encode_broadcast(&b), Err(EncodeError::BinaryOnV1));
        assert_eq!(Serializer::V1.decode(RawFrame::Binary(&[0, 0])), Err(DecodeError::BinaryOnV1));
    }
}
