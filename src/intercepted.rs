//! A broadcast on its way to the `handle_out` of every subscriber that intercepts it,
//! with the payload encodings their pushes share.
//!
//! Most `handle_out`s push the broadcast as it came, or push the same changed payload to
//! many subscribers. Each distinct payload is encoded once, by the first channel that
//! pushes it; the others only write their frame around that text (their join refs
//! differ, so whole frames cannot be shared).

use crate::message::{Broadcast, Ref};
use crate::payload::Payload;
use crate::serializer::{EncodeError, Frame, Serializer};
use parking_lot::Mutex;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};

/// How many distinct changed payloads one broadcast remembers; more are encoded each time.
const MOST_CHANGED_PAYLOADS: usize = 8;

/// An intercepted broadcast, shared by its subscribers' channel threads.
pub(crate) struct Intercepted {
    pub(crate) broadcast: Arc<Broadcast>,
    /// The broadcast's own payload, encoded.
    own: OnceLock<Arc<RawValue>>,
    /// Other payloads pushed from `handle_out`, each encoded.
    changed: Mutex<Vec<(Value, Arc<RawValue>)>>,
}

impl Intercepted {
    pub(crate) fn new(broadcast: Arc<Broadcast>) -> Self {
        Intercepted { broadcast, own: OnceLock::new(), changed: Mutex::new(Vec::new()) }
    }

    /// Encodes a push that `handle_out` makes while handling this broadcast, reusing the
    /// encoding of an equal payload pushed before.
    pub(crate) fn encode_push(
        &self,
        serializer: Serializer,
        join_ref: &Option<Ref>,
        topic: &str,
        event: &str,
        payload: &Payload,
    ) -> Result<Frame, EncodeError> {
        let Payload::Json(value) = payload else {
            return serializer.encode_channel_push(join_ref, topic, event, payload);
        };
        let encoded = self.encoded(value)?;
        serializer.encode_channel_push_encoded(join_ref, topic, event, value, &encoded)
    }

    fn encoded(&self, value: &Value) -> Result<Arc<RawValue>, EncodeError> {
        if let Payload::Json(own) = &self.broadcast.payload
            && (std::ptr::eq(own, value) || encodes_alike(own, value))
        {
            if let Some(encoded) = self.own.get() {
                return Ok(encoded.clone());
            }
            let encoded = encode(value)?;
            return Ok(self.own.get_or_init(|| encoded).clone());
        }
        if let Some((_, encoded)) = self.changed.lock().iter().find(|(seen, _)| encodes_alike(seen, value)) {
            return Ok(encoded.clone());
        }
        let encoded = encode(value)?;
        let mut changed = self.changed.lock();
        if changed.len() < MOST_CHANGED_PAYLOADS {
            changed.push((value.clone(), encoded.clone()));
        }
        Ok(encoded)
    }
}

fn encode(value: &Value) -> Result<Arc<RawValue>, EncodeError> {
    Ok(serde_json::value::to_raw_value(value)?.into())
}

/// Whether two values encode to the same text. `==` almost says it, but it holds
/// `0.0 == -0.0`, which are written differently.
fn encodes_alike(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if a.is_f64() && b.is_f64() => x.to_bits() == y.to_bits(),
            _ => a == b,
        },
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| encodes_alike(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, a), (kb, b))| ka == kb && encodes_alike(a, b))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn intercepted(payload: Value) -> Intercepted {
        Intercepted::new(Arc::new(Broadcast::new("room:1", "news", payload)))
    }

    fn push(out: &Intercepted, serializer: Serializer, join_ref: &str, payload: Value) -> String {
        let frame = out.encode_push(serializer, &Some(join_ref.into()), "room:1", "news", &Payload::Json(payload));
        String::from_utf8(frame.unwrap().payload().to_vec()).unwrap()
    }

    /// What a push encoded on its own gives.
    fn plain(serializer: Serializer, join_ref: &str, payload: Value) -> String {
        let frame = serializer.encode_channel_push(&Some(join_ref.into()), "room:1", "news", &Payload::Json(payload));
        String::from_utf8(frame.unwrap().payload().to_vec()).unwrap()
    }

    #[test]
    fn pushes_of_shared_encodings_are_byte_for_byte_what_a_plain_push_gives() {
        let out = intercepted(json!({"body": "hi", "n": 1}));
        for serializer in [Serializer::V1, Serializer::V2] {
            for join_ref in ["1", "7"] {
                for payload in [json!({"body": "hi", "n": 1}), json!({"body": "changed"}), json!({"n": -0.0})] {
                    let expected = plain(serializer, join_ref, payload.clone());
                    assert_eq!(push(&out, serializer, join_ref, payload.clone()), expected);
                    // Twice: the second comes from the shared encoding.
                    assert_eq!(push(&out, serializer, join_ref, payload), expected);
                }
            }
        }
        assert_eq!(out.changed.lock().len(), 2, "each changed payload is encoded once");
    }

    #[test]
    fn signed_zeros_and_key_order_are_told_apart() {
        let out = intercepted(json!({"n": 0.0}));
        assert!(push(&out, Serializer::V2, "1", json!({"n": 0.0})).contains("0.0"));
        assert!(push(&out, Serializer::V2, "1", json!({"n": -0.0})).contains("-0.0"));
        assert!(!encodes_alike(&json!([1, 2]), &json!([2, 1])));
        assert!(encodes_alike(&json!({"a": [1, {"b": null}]}), &json!({"a": [1, {"b": null}]})));
    }

    #[test]
    fn a_payload_that_cannot_go_out_is_refused_as_a_plain_push_refuses_it() {
        let out = intercepted(json!({}));
        let refused = out.encode_push(Serializer::V2, &None, "room:1", "news", &Payload::Json(json!([1])));
        assert_eq!(refused, Err(EncodeError::NotAnObject));
        let bytes = out.encode_push(Serializer::V1, &None, "room:1", "news", &Payload::Binary(vec![1].into()));
        assert_eq!(bytes, Err(EncodeError::BinaryOnV1));
    }

    #[test]
    fn past_the_limit_payloads_are_encoded_without_being_remembered() {
        let out = intercepted(json!({}));
        for n in 0..MOST_CHANGED_PAYLOADS + 3 {
            push(&out, Serializer::V2, "1", json!({ "n": n }));
        }
        assert_eq!(out.changed.lock().len(), MOST_CHANGED_PAYLOADS);
    }
}
