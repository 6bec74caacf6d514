//! Phoenix-style log lines: durations, and parameters with secrets filtered; and lines
//! that must not flood the log.

mod throttled;

pub(crate) use throttled::{Throttled, left_out, log_throttled};

use serde_json::Value;
use std::time::Duration;

/// Phoenix's default filter: keys containing these words are logged as `[FILTERED]`.
pub(crate) const DEFAULT_FILTER: [&str; 2] = ["password", "token"];

/// A duration as Phoenix logs it: whole µs up to 1000 µs, whole ms above.
pub(crate) fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros <= 1000 { format!("{micros}µs") } else { format!("{}ms", d.as_millis()) }
}

/// A copy of `value` fit for logs: under a key that contains one of `words` (case
/// sensitive) the value becomes `"[FILTERED]"`, and so does a string value containing
/// `word=`; objects and arrays are walked.
pub(crate) fn filter(value: &Value, words: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let hidden = words.iter().any(|word| key.contains(word.as_str()));
                    (key.clone(), if hidden { filtered() } else { filter(value, words) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| filter(item, words)).collect()),
        Value::String(s) if words.iter().any(|word| s.contains(&format!("{word}="))) => filtered(),
        other => other.clone(),
    }
}

fn filtered() -> Value {
    Value::String("[FILTERED]".into())
}

/// Whether a topic is exempt from channel logging.
pub(crate) fn is_quiet_topic(topic: &str) -> bool {
    topic.starts_with("phoenix")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words() -> Vec<String> {
        DEFAULT_FILTER.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn keys_containing_password_or_token_are_filtered_recursively() {
        let params =
            json!({"join": "yes", "password": "no", "nested": {"auth_token": "x", "list": [{"password2": 1}]}});
        assert_eq!(
            filter(&params, &words()),
            json!({"join": "yes", "password": "[FILTERED]", "nested": {"auth_token": "[FILTERED]", "list": [{"password2": "[FILTERED]"}]}})
        );
    }

    #[test]
    fn matching_is_case_sensitive_and_catches_word_equals_in_values() {
        let params = json!({"Password": "shown", "q": "a=1&token=abc"});
        assert_eq!(filter(&params, &words()), json!({"Password": "shown", "q": "[FILTERED]"}));
    }

    #[test]
    fn durations_print_like_phoenix() {
        assert_eq!(duration(Duration::from_micros(850)), "850µs");
        assert_eq!(duration(Duration::from_micros(3400)), "3ms");
    }
}
