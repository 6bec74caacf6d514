//! A message's `ref` or `join_ref`: an opaque value the client chooses and the server
//! echoes exactly.

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::ops::Deref;

/// A `ref` or `join_ref` as the client sent it: any JSON value but `null` (which is
/// `None` wherever a ref is optional).
///
/// The official JavaScript client sends strings; other clients send numbers, and the
/// protocol allows any JSON value. A ref is stored and echoed exactly as received and
/// compared strictly: the string `"1"` and the number `1` are different refs.
///
/// A ref reads as text through [`Deref`]: a string ref is its string, any other ref is
/// its JSON text (so `1` reads as `"1"`). Binary frames carry refs as text.
///
/// ```
/// use phx_channels::Ref;
///
/// let text = Ref::from("1");
/// let number = Ref::from_json(serde_json::json!(1)).expect("not null");
/// assert_eq!(&*text, "1");
/// assert_eq!(&*number, "1");
/// assert_ne!(text, number);
/// assert_eq!(serde_json::to_string(&number).unwrap(), "1");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Ref(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// A JSON string: the common case, kept without a `Value`.
    Text(String),
    /// Any other JSON value, with its JSON text for reading.
    Json { value: Value, text: String },
}

impl Ref {
    /// The ref a JSON value stands for; `None` for `null`.
    pub fn from_json(value: Value) -> Option<Ref> {
        match value {
            Value::Null => None,
            Value::String(text) => Some(Ref(Repr::Text(text))),
            value => {
                let text = value.to_string();
                Some(Ref(Repr::Json { value, text }))
            }
        }
    }

    /// Whether the client sent this ref as a JSON string.
    pub fn is_string(&self) -> bool {
        matches!(self.0, Repr::Text(_))
    }

    /// The ref as a JSON value.
    pub fn to_json(&self) -> Value {
        match &self.0 {
            Repr::Text(text) => Value::String(text.clone()),
            Repr::Json { value, .. } => value.clone(),
        }
    }
}

impl Deref for Ref {
    type Target = str;

    fn deref(&self) -> &str {
        match &self.0 {
            Repr::Text(text) | Repr::Json { text, .. } => text,
        }
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Text(text) => fmt::Debug::fmt(text, f),
            Repr::Json { text, .. } => f.write_str(text),
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl From<&str> for Ref {
    fn from(text: &str) -> Self {
        Ref(Repr::Text(text.to_owned()))
    }
}

impl From<String> for Ref {
    fn from(text: String) -> Self {
        Ref(Repr::Text(text))
    }
}

impl From<u64> for Ref {
    fn from(number: u64) -> Self {
        Ref(Repr::Json { value: Value::from(number), text: number.to_string() })
    }
}

impl PartialEq<str> for Ref {
    fn eq(&self, other: &str) -> bool {
        matches!(&self.0, Repr::Text(text) if text == other)
    }
}

impl PartialEq<&str> for Ref {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Text(text) => serializer.serialize_str(text),
            Repr::Json { value, .. } => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_non_null_value_is_kept_and_echoed_exactly() {
        for value in [json!("1"), json!(1), json!(-7), json!(1.5), json!(true), json!([1, "a"]), json!({"k": 1})] {
            let kept = Ref::from_json(value.clone()).expect("not null");
            assert_eq!(serde_json::to_value(&kept).unwrap(), value);
            assert_eq!(kept.to_json(), value);
        }
        assert_eq!(Ref::from_json(Value::Null), None);
    }

    #[test]
    fn refs_compare_strictly() {
        let text = Ref::from_json(json!("1")).unwrap();
        let number = Ref::from_json(json!(1)).unwrap();
        assert_ne!(text, number);
        assert_eq!(text, Ref::from("1"));
        assert_eq!(number, Ref::from(1u64));
        assert!(text == "1" && number != "1");
    }
}
