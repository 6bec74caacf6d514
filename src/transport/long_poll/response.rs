//! The long-poll transport's answers. As in Phoenix, every JSON answer is HTTP 200
//! with the logical status in its body (`{"status":410,"token":...,"messages":[]}`)
//! and `cache-control: no-store`, and every answer allows any origin: the origin is
//! checked on every request instead.

use crate::transport::http;
use bytes::Bytes;

const ALLOW_ANY_ORIGIN: (&str, &str) = ("access-control-allow-origin", "*");
const JSON: &str = "application/json; charset=utf-8";

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// `{"status":status}`.
pub(crate) fn status(status: u16) -> Bytes {
    http::response_with(200, JSON, &[ALLOW_ANY_ORIGIN], format!("{{\"status\":{status}}}").as_bytes(), false)
}

/// `{"status":status,"token":token,"messages":[...]}`, each message a JSON string.
pub(crate) fn messages<'m>(status: u16, token: &str, messages: impl Iterator<Item = &'m [u8]>) -> Bytes {
    let mut body = format!("{{\"status\":{status},\"token\":").into_bytes();
    // Writing JSON strings to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, token);
    body.extend_from_slice(b",\"messages\":[");
    for (i, message) in messages.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut body, &String::from_utf8_lossy(message));
    }
    body.extend_from_slice(b"]}");
    http::response_with(200, JSON, &[ALLOW_ANY_ORIGIN], &body, false)
}

/// The answer to a CORS preflight that asks to send `headers`.
pub(crate) fn preflight(headers: &str) -> Bytes {
    let allow = [
        ALLOW_ANY_ORIGIN,
        ("access-control-allow-headers", headers),
        ("access-control-allow-methods", "get, post, options"),
        ("access-control-max-age", "3600"),
    ];
    http::response_with(200, "text/plain; charset=utf-8", &allow, b"", false)
}

/// A plain-text answer with another HTTP status (a bad method or body, too many sessions).
pub(crate) fn plain(status: u16, body: &str) -> Bytes {
    http::response_with(status, "text/plain; charset=utf-8", &[ALLOW_ANY_ORIGIN], body.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Bytes) -> serde_json::Value {
        let text = std::str::from_utf8(response).unwrap();
        serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap()
    }

    #[test]
    fn messages_are_json_strings() {
        let frames: [&[u8]; 2] = [br#"["1","2","t","e",{"a":"\u00e9"}]"#, "é".as_bytes()];
        let response = messages(200, "tok", frames.into_iter());
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(
            body(&response),
            serde_json::json!({"status": 200, "token": "tok", "messages": [r#"["1","2","t","e",{"a":"\u00e9"}]"#, "é"]})
        );
    }

    #[test]
    fn every_answer_allows_any_origin_and_is_not_stored() {
        for response in [status(410), messages(204, "t", std::iter::empty()), preflight("x"), plain(400, "")] {
            let head = std::str::from_utf8(&response).unwrap().split_once("\r\n\r\n").unwrap().0.to_owned();
            assert!(head.contains("\r\naccess-control-allow-origin: *\r\n"), "{head}");
            assert!(head.contains("\r\ncache-control: no-store\r\n"), "{head}");
        }
    }
}
