//! Raw long-poll requests, as the official client's `LongPoll` makes them: a `GET` to
//! connect or to poll, a `POST` of frames, each on a connection of its own.

use super::http::{HttpResponse, http_exchange_within};
use serde_json::{Value, json};
use std::time::Duration;

/// A long-poll client of one path (`/socket/longpoll?vsn=2.0.0`) and, once connected,
/// its session token, which it sends in the `x-phoenix-longpoll-token` header.
pub struct LongPoll {
    pub addr: String,
    pub target: String,
    pub token: Option<String>,
    /// Headers sent with every request.
    pub headers: Vec<(String, String)>,
}

/// A V2 text frame.
pub fn v2(join_ref: Option<&str>, msg_ref: &str, topic: &str, event: &str, payload: Value) -> String {
    json!([join_ref, msg_ref, topic, event, payload]).to_string()
}

/// The JSON body of a long-poll answer, which must be HTTP 200, JSON, not to be stored,
/// and open to any origin.
pub fn json_body(response: &HttpResponse) -> Value {
    assert_eq!(response.status, 200, "a long-poll answer is HTTP 200: {response:?}");
    assert_eq!(response.header("content-type"), Some("application/json; charset=utf-8"), "{response:?}");
    assert_eq!(response.header("cache-control"), Some("no-store"), "{response:?}");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"), "{response:?}");
    serde_json::from_str(&response.body).unwrap_or_else(|err| panic!("{err}: {response:?}"))
}

impl LongPoll {
    pub fn new(addr: &str, target: &str) -> LongPoll {
        LongPoll { addr: addr.to_owned(), target: target.to_owned(), token: None, headers: Vec::new() }
    }

    /// Sends a header with every request.
    pub fn header(mut self, name: &str, value: &str) -> LongPoll {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends `method` with the token header (once connected), the client's headers,
    /// `extra` and `body` (with its length).
    pub fn request(&self, method: &str, extra: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut request = format!("{method} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", self.target);
        let token = self.token.iter().map(|token| ("x-phoenix-longpoll-token", token.as_str()));
        let own = self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        for (name, value) in token.chain(own).chain(extra.iter().copied()) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            request.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        http_exchange_within(&self.addr, &request, Duration::from_secs(30)).0
    }

    /// A `GET`; a token in the answer becomes the client's.
    pub fn get(&mut self) -> Value {
        let body = json_body(&self.request("GET", &[], ""));
        if let Some(token) = body["token"].as_str() {
            self.token = Some(token.to_owned());
        }
        body
    }

    /// Connects: a `GET` that must be answered 410 with a token.
    pub fn connect(&mut self) -> String {
        let body = self.get();
        assert_eq!(body["status"], 410, "connected: {body}");
        assert_eq!(body["messages"], json!([]), "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// A `GET` on a thread of its own, with the client's token; returns after giving
    /// the server time to hold it (300 ms).
    pub fn poll_in_background(&self) -> std::thread::JoinHandle<Value> {
        let mut other = LongPoll {
            addr: self.addr.clone(),
            target: self.target.clone(),
            token: self.token.clone(),
            headers: self.headers.clone(),
        };
        let poll = std::thread::spawn(move || other.get());
        std::thread::sleep(Duration::from_millis(300));
        poll
    }

    /// A `POST` of one frame, as the body.
    pub fn post(&self, frame: &str) -> Value {
        json_body(&self.request("POST", &[], frame))
    }

    /// A `POST` of a batch: one frame a line.
    pub fn post_batch(&self, lines: &[String]) -> Value {
        json_body(&self.request("POST", &[("content-type", "application/x-ndjson")], &lines.join("\n")))
    }

    /// Polls until an answer carries messages; returns them, decoded.
    pub fn messages(&mut self) -> Vec<Value> {
        for _ in 0..20 {
            let body = self.get();
            match body["status"].as_u64() {
                Some(200) => {
                    let messages = body["messages"].as_array().expect("messages").iter();
                    return messages.map(|m| serde_json::from_str(m.as_str().expect("a string")).unwrap()).collect();
                }
                Some(204) => continue,
                _ => panic!("a poll answered {body}"),
            }
        }
        panic!("twenty polls without messages");
    }

    /// Polls until one of the messages matches `pred`; returns every message seen.
    pub fn messages_until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        while !seen.iter().any(&mut pred) {
            seen.extend(self.messages());
        }
        seen
    }

    /// Joins `topic` (V2) and returns its reply.
    pub fn join(&mut self, topic: &str, join_ref: &str) -> Value {
        assert_eq!(self.post(&v2(Some(join_ref), join_ref, topic, "phx_join", json!({})))["status"], 200);
        let seen = self.messages_until(|m| m[1] == join_ref && m[3] == "phx_reply");
        seen.into_iter().find(|m| m[1] == join_ref && m[3] == "phx_reply").unwrap()
    }
}
