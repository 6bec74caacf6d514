//! What an assertion expects of a payload: Phoenix's map patterns (`assert_broadcast
//! "changed", %{"by" => "bob"}`), exact payloads and predicates.

use super::received::show;
use crate::payload::Payload;
use serde_json::Value;
use std::fmt;

/// What `assert_*_with` and `refute_*_with` expect of a payload; messages whose
/// payload does not match are skipped and stay for later assertions.
///
/// - [`contains`] (and a bare `serde_json::Value`, through `From`): Phoenix's map
///   pattern, `%{"by" => "bob"}`. Every key of an expected object must be in the
///   payload's object with a matching value (recursively, so nested objects match the
///   same way); keys the pattern does not name are allowed. Arrays match element by
///   element and must have the same length; other values must be equal.
/// - [`equals`]: the whole payload, exactly (JSON or binary).
/// - [`matching`]: a predicate of the payload.
///
/// ```
/// use phx_channels::Payload;
/// use phx_channels::testing::{contains, equals, matching};
/// use serde_json::json;
///
/// let payload: Payload = json!({"by": "bob", "count": 2, "at": {"x": 1, "y": 2}}).into();
/// assert!(contains(json!({"by": "bob"})).matches(&payload));
/// assert!(contains(json!({"at": {"x": 1}})).matches(&payload));
/// assert!(!contains(json!({"by": "ann"})).matches(&payload));
/// assert!(!equals(json!({"by": "bob"})).matches(&payload));
/// assert!(matching(|p| p.get("count").and_then(|c| c.as_u64()) > Some(1)).matches(&payload));
/// ```
pub struct PayloadPattern {
    kind: Kind,
}

enum Kind {
    Anything,
    Contains(Value),
    Equals(Payload),
    Matching(Box<dyn Fn(&Payload) -> bool + Send + Sync>),
}

/// A payload that holds `pattern` as Phoenix's map patterns do: see [`PayloadPattern`].
pub fn contains(pattern: impl Into<Value>) -> PayloadPattern {
    PayloadPattern { kind: Kind::Contains(pattern.into()) }
}

/// A payload equal to `payload`.
pub fn equals(payload: impl Into<Payload>) -> PayloadPattern {
    PayloadPattern { kind: Kind::Equals(payload.into()) }
}

/// A payload for which `predicate` is true.
pub fn matching(predicate: impl Fn(&Payload) -> bool + Send + Sync + 'static) -> PayloadPattern {
    PayloadPattern { kind: Kind::Matching(Box::new(predicate)) }
}

impl PayloadPattern {
    /// Any payload: what the assertions without `_with` expect.
    pub(super) fn anything() -> Self {
        PayloadPattern { kind: Kind::Anything }
    }

    /// Whether `payload` matches.
    pub fn matches(&self, payload: &Payload) -> bool {
        match &self.kind {
            Kind::Anything => true,
            Kind::Contains(pattern) => payload.as_json().is_some_and(|value| holds(value, pattern)),
            Kind::Equals(expected) => payload == expected,
            Kind::Matching(predicate) => predicate(payload),
        }
    }
}

impl From<Value> for PayloadPattern {
    /// [`contains`]: Phoenix's map pattern.
    fn from(pattern: Value) -> Self {
        contains(pattern)
    }
}

/// Said after the event in a failure message: "" for any payload.
impl fmt::Display for PayloadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Anything => Ok(()),
            Kind::Contains(pattern) => write!(f, " containing {pattern}"),
            Kind::Equals(expected) => write!(f, " equal to {}", show(expected)),
            Kind::Matching(_) => f.write_str(" matching the predicate"),
        }
    }
}

impl fmt::Debug for PayloadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Anything => f.write_str("PayloadPattern::Anything"),
            Kind::Contains(pattern) => f.debug_tuple("PayloadPattern::Contains").field(pattern).finish(),
            Kind::Equals(expected) => f.debug_tuple("PayloadPattern::Equals").field(expected).finish(),
            Kind::Matching(_) => f.write_str("PayloadPattern::Matching(..)"),
        }
    }
}

/// Whether `value` holds `pattern`: objects by the pattern's keys, arrays element by
/// element, anything else by equality.
fn holds(value: &Value, pattern: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(expected), Value::Object(actual)) => {
            expected.iter().all(|(key, want)| actual.get(key).is_some_and(|got| holds(got, want)))
        }
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len() && expected.iter().zip(actual).all(|(want, got)| holds(got, want))
        }
        _ => pattern == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn map_patterns_match_as_in_elixir() {
        let value = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}});
        assert!(holds(&value, &json!({})));
        assert!(holds(&value, &json!({"b": {"c": [1, {"d": 2}]}})));
        assert!(!holds(&value, &json!({"b": {"c": [1]}})), "lists keep their length");
        assert!(!holds(&value, &json!({"z": null})), "a missing key is no null");
        assert!(!holds(&value, &json!({"a": "1"})));
        assert!(!holds(&json!([1]), &json!({})));
    }

    #[test]
    fn binary_payloads_match_equals_and_predicates_only() {
        let bytes = Payload::Binary(vec![1u8, 2].into());
        assert!(!contains(json!({})).matches(&bytes));
        assert!(equals(Payload::Binary(vec![1u8, 2].into())).matches(&bytes));
        assert!(matching(|p| p.as_binary().is_some_and(|b| b.len() == 2)).matches(&bytes));
    }
}
