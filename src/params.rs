//! Query strings into connect params, Plug style: `a[b]=1` is `{"a":{"b":"1"}}` and
//! every value is a string.

use serde_json::{Map, Value};

/// Connect parameters: the query string's keys and values, nested Plug style.
pub type Params = Map<String, Value>;

/// Parses a query string (without the `?`).
pub(crate) fn parse_query(query: &str) -> Params {
    let mut params = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key), decode(value));
        let (head, path) = split_key(&key);
        if head.is_empty() {
            continue;
        }
        insert(&mut params, head, &path, value);
    }
    params
}

/// `a[b][]` -> ("a", ["b", ""]).
fn split_key(key: &str) -> (&str, Vec<&str>) {
    let Some(open) = key.find('[') else { return (key, Vec::new()) };
    let mut path = Vec::new();
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else { break };
        path.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    (&key[..open], path)
}

fn insert(map: &mut Params, key: &str, path: &[&str], value: String) {
    match path.split_first() {
        None => {
            map.insert(key.to_owned(), Value::String(value));
        }
        Some((&"", _)) => {
            let slot = map.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = slot {
                items.push(Value::String(value));
            } else {
                *slot = Value::Array(vec![Value::String(value)]);
            }
        }
        Some((next, rest)) => {
            let slot = map.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                insert(inner, next, rest, value);
            }
        }
    }
}

/// Percent-decoding, with `+` as a space; invalid escapes are kept as they are.
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_params_are_strings_and_vsn_is_one_of_them() {
        let params = parse_query("token=abc&vsn=2.0.0&n=5");
        assert_eq!(Value::Object(params), json!({"token": "abc", "vsn": "2.0.0", "n": "5"}));
    }

    #[test]
    fn nested_keys_follow_plug() {
        let params = parse_query("a[b]=1&a[c][d]=2&list[]=x&list[]=y");
        assert_eq!(Value::Object(params), json!({"a": {"b": "1", "c": {"d": "2"}}, "list": ["x", "y"]}));
    }

    #[test]
    fn values_are_percent_decoded() {
        let params = parse_query("name=J%C3%BCrgen+M&bad=%zz&end=%4");
        assert_eq!(Value::Object(params), json!({"name": "Jürgen M", "bad": "%zz", "end": "%4"}));
    }
}
