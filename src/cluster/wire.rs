//! The messages nodes exchange on the cluster's Redis channel (ARCHITECTURE.md, "The
//! format on Redis"), version 1.
//!
//! ```text
//! message  = version:u8 kind:u8 origin:str incarnation:u64be target:str body
//! str      = len:varint bytes (UTF-8)        bytes = len:varint bytes
//! varint   = unsigned LEB128
//! target   = "" for every node, else the one node that acts on the message
//!
//! kind 1 broadcast      topic:str event:str type:u8 payload (to the end: JSON text
//!                       when type is 0, raw bytes when 1)
//! kind 2 heartbeat      seq:varint
//! kind 3 presence delta seq:varint count:varint change*
//!        change         1 (join) topic:str key:str meta:bytes
//!                     | 2 (leave) topic:str phx_ref:str
//!                     | 3 (update) topic:str key:str prev_ref:str meta:bytes
//! kind 4 presence state seq:varint topics:varint (topic:str count:varint (key:str meta:bytes)*)*
//! kind 5 state request  (no body)
//! kind 6 long-poll request  reactor:varint slot:varint serial:varint method:u8 (0 GET,
//!                       1 POST, 2 POST of a batch) mount:varint token:str body (to the end)
//! kind 7 long-poll answer   incarnation:u64be reactor:varint slot:varint serial:varint
//!                       answer:u8 (0 no such session, 1 response) response (to the end:
//!                       the whole HTTP response)
//! ```
//!
//! Metas are JSON objects (their text). A node ignores a message of another version.
//! Kinds 6 and 7 always have a target: the node that holds the session, and the node
//! that forwarded the request (with its incarnation in the body: an answer for an
//! earlier run of that node is dropped).

use crate::message::Broadcast;
use crate::payload::Payload;
use crate::presence::remote::{Change, NodeState, TopicEntries};
use crate::transport::long_poll::{Asker, RemoteAnswer, RemoteMethod, RemoteRequest, ReplyTo};
use serde_json::{Map, Value};
use std::fmt;

/// The format's version, the first byte of every message.
pub(super) const VERSION: u8 = 1;

const JSON: u8 = 0;
const BINARY: u8 = 1;
const JOIN: u8 = 1;
const LEAVE: u8 = 2;
const UPDATE: u8 = 3;
const NO_SESSION: u8 = 0;
const RESPONSE: u8 = 1;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Broadcast = 1,
    Heartbeat = 2,
    Delta = 3,
    State = 4,
    StateRequest = 5,
    LongPollRequest = 6,
    LongPollAnswer = 7,
}

/// Why a message could not be read.
#[derive(Debug)]
pub(super) enum WireError {
    /// It ends before its last field.
    Truncated,
    /// Another version of the format.
    Version(u8),
    /// An unknown kind, change or payload type.
    Unknown(&'static str, u8),
    /// A string that is not UTF-8.
    Utf8,
    /// A payload or meta that is not JSON.
    Json(serde_json::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("the message is truncated"),
            WireError::Version(v) => write!(f, "format version {v} (this node reads {VERSION})"),
            WireError::Unknown(what, v) => write!(f, "unknown {what} {v}"),
            WireError::Utf8 => f.write_str("a string is not UTF-8"),
            WireError::Json(err) => write!(f, "bad JSON: {err}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Json(err) => Some(err),
            _ => None,
        }
    }
}

/// This node, as its messages name it.
#[derive(Clone, Debug)]
pub(super) struct Origin {
    pub(super) node: String,
    /// Tells this run of the node from earlier runs under the same name.
    pub(super) incarnation: u64,
}

impl Origin {
    fn start(&self, kind: Kind, target: &str) -> Writer {
        let mut w = Writer(Vec::with_capacity(64));
        w.0.push(VERSION);
        w.0.push(kind as u8);
        w.str(&self.node);
        w.0.extend_from_slice(&self.incarnation.to_be_bytes());
        w.str(target);
        w
    }

    /// A broadcast for every node (`target` "") or one.
    pub(super) fn broadcast(&self, target: &str, broadcast: &Broadcast) -> Vec<u8> {
        let mut w = self.start(Kind::Broadcast, target);
        w.str(&broadcast.topic);
        w.str(&broadcast.event);
        match &broadcast.payload {
            Payload::Json(value) => {
                w.0.push(JSON);
                w.json(value);
            }
            Payload::Binary(bytes) => {
                w.0.push(BINARY);
                w.0.extend_from_slice(bytes);
            }
        }
        w.0
    }

    /// "I am alive, and my last presence message was `seq`."
    pub(super) fn heartbeat(&self, seq: u64) -> Vec<u8> {
        let mut w = self.start(Kind::Heartbeat, "");
        w.varint(seq);
        w.0
    }

    /// This node's presence changes since message `seq - 1`.
    pub(super) fn delta(&self, seq: u64, changes: &[Change]) -> Vec<u8> {
        let mut w = self.start(Kind::Delta, "");
        w.varint(seq);
        w.varint(changes.len() as u64);
        for change in changes {
            match change {
                Change::Join { topic, key, meta } => {
                    w.0.push(JOIN);
                    w.str(topic);
                    w.str(key);
                    w.meta(meta);
                }
                Change::Leave { topic, phx_ref } => {
                    w.0.push(LEAVE);
                    w.str(topic);
                    w.str(phx_ref);
                }
                Change::Update { topic, key, prev_ref, meta } => {
                    w.0.push(UPDATE);
                    w.str(topic);
                    w.str(key);
                    w.str(prev_ref);
                    w.meta(meta);
                }
            }
        }
        w.0
    }

    /// All of this node's presence entries as of message `seq`, for `target` ("" for all).
    pub(super) fn state(&self, target: &str, seq: u64, state: &NodeState) -> Vec<u8> {
        let mut w = self.start(Kind::State, target);
        w.varint(seq);
        w.varint(state.len() as u64);
        for topic in state {
            w.str(&topic.topic);
            w.varint(topic.entries.len() as u64);
            for (key, meta) in &topic.entries {
                w.str(key);
                w.meta(meta);
            }
        }
        w.0
    }

    /// "Send me your presence state" (`target` "" asks every node).
    pub(super) fn state_request(&self, target: &str) -> Vec<u8> {
        self.start(Kind::StateRequest, target).0
    }

    /// A long-poll request for a session of node `target`, to be answered for `reply_to`.
    pub(super) fn long_poll_request(&self, target: &str, reply_to: ReplyTo, request: &RemoteRequest) -> Vec<u8> {
        let mut w = self.start(Kind::LongPollRequest, target);
        w.0.reserve(request.token.len() + request.body.len() + 16);
        w.reply_to(reply_to);
        w.0.push(match request.method {
            RemoteMethod::Get => 0,
            RemoteMethod::Post => 1,
            RemoteMethod::PostBatch => 2,
        });
        w.varint(request.mount as u64);
        w.str(&request.token);
        w.0.extend_from_slice(&request.body);
        w.0
    }

    /// The answer to a long-poll request `asker` forwarded.
    pub(super) fn long_poll_answer(&self, asker: &Asker, answer: &RemoteAnswer) -> Vec<u8> {
        let mut w = self.start(Kind::LongPollAnswer, &asker.node);
        w.0.extend_from_slice(&asker.incarnation.to_be_bytes());
        w.reply_to(asker.reply_to);
        match answer {
            RemoteAnswer::NoSession => w.0.push(NO_SESSION),
            RemoteAnswer::Response(response) => {
                w.0.push(RESPONSE);
                w.0.extend_from_slice(response);
            }
        }
        w.0
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn json(&mut self, value: &Value) {
        // Writing a `Value` to a Vec cannot fail: its map keys are strings.
        serde_json::to_writer(&mut self.0, value).expect("a JSON value serializes");
    }

    fn meta(&mut self, meta: &Map<String, Value>) {
        let text = serde_json::to_vec(meta).expect("a JSON object serializes");
        self.varint(text.len() as u64);
        self.0.extend_from_slice(&text);
    }

    fn reply_to(&mut self, reply_to: ReplyTo) {
        self.varint(reply_to.reactor as u64);
        self.varint(reply_to.slot as u64);
        self.varint(reply_to.serial);
    }
}

/// A message's header, read without its body.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    pub(super) kind: Kind,
    pub(super) origin: &'a str,
    pub(super) incarnation: u64,
    /// "" when every node should act on it.
    pub(super) target: &'a str,
    body: Reader<'a>,
}

/// A presence message's body.
#[derive(Debug, PartialEq)]
pub(super) enum Replication {
    Heartbeat { seq: u64 },
    Delta { seq: u64, changes: Vec<Change> },
    State { seq: u64, state: NodeState },
    StateRequest,
}

impl<'a> Envelope<'a> {
    pub(super) fn decode(bytes: &'a [u8]) -> Result<Envelope<'a>, WireError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let kind = match r.u8()? {
            1 => Kind::Broadcast,
            2 => Kind::Heartbeat,
            3 => Kind::Delta,
            4 => Kind::State,
            5 => Kind::StateRequest,
            6 => Kind::LongPollRequest,
            7 => Kind::LongPollAnswer,
            other => return Err(WireError::Unknown("kind", other)),
        };
        let origin = r.str()?;
        let incarnation = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let target = r.str()?;
        Ok(Envelope { kind, origin, incarnation, target, body: r })
    }

    /// The topic of a `Kind::Broadcast` message, read without its payload.
    pub(super) fn topic(&self) -> Result<&'a str, WireError> {
        Reader(self.body.0).str()
    }

    /// The broadcast a `Kind::Broadcast` message carries.
    pub(super) fn broadcast(self) -> Result<Broadcast, WireError> {
        let mut r = self.body;
        let topic = r.str()?;
        let event = r.str()?;
        let payload = match r.u8()? {
            JSON => Payload::Json(serde_json::from_slice(r.0).map_err(WireError::Json)?),
            BINARY => Payload::Binary(bytes::Bytes::copy_from_slice(r.0)),
            other => return Err(WireError::Unknown("payload type", other)),
        };
        Ok(Broadcast::new(topic, event, payload))
    }

    /// The request a `Kind::LongPollRequest` message carries, and who asks.
    pub(super) fn long_poll_request(self) -> Result<(Asker, RemoteRequest), WireError> {
        let mut r = self.body;
        let reply_to = r.reply_to()?;
        let method = match r.u8()? {
            0 => RemoteMethod::Get,
            1 => RemoteMethod::Post,
            2 => RemoteMethod::PostBatch,
            other => return Err(WireError::Unknown("long-poll method", other)),
        };
        let mount = r.usize()?;
        let token = r.string()?;
        let request = RemoteRequest { method, mount, token, body: r.0.to_vec() };
        Ok((Asker { node: self.origin.to_owned(), incarnation: self.incarnation, reply_to }, request))
    }

    /// The answer a `Kind::LongPollAnswer` message carries: the run of this node it is
    /// for, the connection it is for, and the answer.
    pub(super) fn long_poll_answer(self) -> Result<(u64, ReplyTo, RemoteAnswer), WireError> {
        let mut r = self.body;
        let incarnation = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let reply_to = r.reply_to()?;
        let answer = match r.u8()? {
            NO_SESSION => RemoteAnswer::NoSession,
            RESPONSE => RemoteAnswer::Response(bytes::Bytes::copy_from_slice(r.0)),
            other => return Err(WireError::Unknown("long-poll answer", other)),
        };
        Ok((incarnation, reply_to, answer))
    }

    /// The presence message any other kind carries.
    pub(super) fn replication(self) -> Result<Replication, WireError> {
        let mut r = self.body;
        Ok(match self.kind {
            Kind::Heartbeat => Replication::Heartbeat { seq: r.varint()? },
            Kind::Delta => {
                let seq = r.varint()?;
                let count = r.varint()?;
                let mut changes = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    changes.push(match r.u8()? {
                        JOIN => Change::Join { topic: r.string()?, key: r.string()?, meta: r.meta()? },
                        LEAVE => Change::Leave { topic: r.string()?, phx_ref: r.string()? },
                        UPDATE => Change::Update {
                            topic: r.string()?,
                            key: r.string()?,
                            prev_ref: r.string()?,
                            meta: r.meta()?,
                        },
                        other => return Err(WireError::Unknown("presence change", other)),
                    });
                }
                Replication::Delta { seq, changes }
            }
            Kind::State => {
                let seq = r.varint()?;
                let topics = r.varint()?;
                let mut state = NodeState::with_capacity(topics.min(1024) as usize);
                for _ in 0..topics {
                    let topic = r.string()?;
                    let count = r.varint()?;
                    let mut entries = Vec::with_capacity(count.min(1024) as usize);
                    for _ in 0..count {
                        entries.push((r.string()?, r.meta()?));
                    }
                    state.push(TopicEntries { topic, entries });
                }
                Replication::State { seq, state }
            }
            Kind::StateRequest => Replication::StateRequest,
            kind @ (Kind::Broadcast | Kind::LongPollRequest | Kind::LongPollAnswer) => {
                return Err(WireError::Unknown("presence kind", kind as u8));
            }
        })
    }
}

#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(WireError::Unknown("varint byte", 0x80))
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError::Utf8)
    }

    fn usize(&mut self) -> Result<usize, WireError> {
        usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)
    }

    fn reply_to(&mut self) -> Result<ReplyTo, WireError> {
        Ok(ReplyTo { reactor: self.usize()?, slot: self.usize()?, serial: self.varint()? })
    }

    fn string(&mut self) -> Result<String, WireError> {
        self.str().map(str::to_owned)
    }

    fn meta(&mut self) -> Result<Map<String, Value>, WireError> {
        serde_json::from_slice(self.bytes()?).map_err(WireError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Origin {
        Origin { node: "web-1".into(), incarnation: 0x0102_0304_0506_0708 }
    }

    fn meta(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_json_broadcast_is_a_header_and_the_payload_text() {
        let bytes = origin().broadcast("", &Broadcast::new("room:1", "new_msg", json!({"body": "hi"})));
        let mut expected = vec![1, 1, 5];
        expected.extend_from_slice(b"web-1");
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 6]);
        expected.extend_from_slice(b"room:1");
        expected.push(7);
        expected.extend_from_slice(b"new_msg");
        expected.push(0);
        expected.extend_from_slice(br#"{"body":"hi"}"#);
        assert_eq!(bytes, expected);
        let envelope = Envelope::decode(&bytes).unwrap();
        assert_eq!((envelope.kind, envelope.origin, envelope.target), (Kind::Broadcast, "web-1", ""));
        assert_eq!(envelope.topic().unwrap(), "room:1");
        assert_eq!(envelope.incarnation, 0x0102_0304_0506_0708);
        assert_eq!(envelope.broadcast().unwrap(), Broadcast::new("room:1", "new_msg", json!({"body": "hi"})));
    }

    #[test]
    fn a_broadcast_costs_its_payload_names_and_15_bytes() {
        let payload = json!({"pad": "x".repeat(90)});
        assert_eq!(serde_json::to_vec(&payload).unwrap().len(), 100);
        let a = Origin { node: "a".into(), incarnation: 1 };
        assert_eq!(a.broadcast("", &Broadcast::new("bench:bcast", "broadcast", payload)).len(), 136);
    }

    #[test]
    fn binary_payloads_and_targets_cross_unchanged() {
        let payload = Payload::Binary(bytes::Bytes::from_static(&[0, 1, 255]));
        let sent = Broadcast::new("t", "e", payload);
        let bytes = origin().broadcast("web-2", &sent);
        assert_eq!(&bytes[bytes.len() - 4..], &[1, 0, 1, 255]);
        let envelope = Envelope::decode(&bytes).unwrap();
        assert_eq!(envelope.target, "web-2");
        assert_eq!(envelope.broadcast().unwrap(), sent);
    }

    #[test]
    fn presence_messages_round_trip() {
        let changes = vec![
            Change::Join { topic: "t".into(), key: "alice".into(), meta: meta(json!({"phx_ref": "A"})) },
            Change::Leave { topic: "t".into(), phx_ref: "A".into() },
            Change::Update {
                topic: "t".into(),
                key: "bob".into(),
                prev_ref: "B".into(),
                meta: meta(json!({"phx_ref": "C", "phx_ref_prev": "B", "s": "é"})),
            },
        ];
        let decode = |bytes: &[u8]| Envelope::decode(bytes).unwrap().replication().unwrap();
        assert_eq!(decode(&origin().delta(300, &changes)), Replication::Delta { seq: 300, changes });
        let state =
            vec![TopicEntries { topic: "t".into(), entries: vec![("k".into(), meta(json!({"phx_ref": "X"})))] }];
        assert_eq!(decode(&origin().state("web-2", 7, &state)), Replication::State { seq: 7, state });
        assert_eq!(decode(&origin().heartbeat(u64::MAX)), Replication::Heartbeat { seq: u64::MAX });
        let request = origin().state_request("");
        assert_eq!(decode(&request), Replication::StateRequest);
        assert_eq!(Envelope::decode(&request).unwrap().kind, Kind::StateRequest);
    }

    #[test]
    fn long_poll_requests_and_answers_round_trip() {
        let reply_to = ReplyTo { reactor: 1, slot: 300, serial: u64::MAX };
        let request = RemoteRequest {
            method: RemoteMethod::PostBatch,
            mount: 2,
            token: "SFMy.t".into(),
            body: b"[1]\n[2]".to_vec(),
        };
        let bytes = origin().long_poll_request("web-2", reply_to, &request);
        let envelope = Envelope::decode(&bytes).unwrap();
        assert_eq!((envelope.kind, envelope.target), (Kind::LongPollRequest, "web-2"));
        let (asker, decoded) = envelope.long_poll_request().unwrap();
        assert_eq!(asker, Asker { node: "web-1".into(), incarnation: 0x0102_0304_0506_0708, reply_to });
        assert_eq!(decoded, request);
        let answer = RemoteAnswer::Response(bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"));
        for answer in [answer, RemoteAnswer::NoSession] {
            let bytes = Origin { node: "web-2".into(), incarnation: 9 }.long_poll_answer(&asker, &answer);
            let envelope = Envelope::decode(&bytes).unwrap();
            assert_eq!((envelope.kind, envelope.target), (Kind::LongPollAnswer, "web-1"));
            assert_eq!(envelope.long_poll_answer().unwrap(), (asker.incarnation, reply_to, answer));
        }
    }

    #[test]
    fn truncated_or_unknown_long_poll_messages_are_refused() {
        let reply_to = ReplyTo { reactor: 0, slot: 1, serial: 2 };
        let request = RemoteRequest { method: RemoteMethod::Get, mount: 0, token: "token".into(), body: Vec::new() };
        let bytes = origin().long_poll_request("web-2", reply_to, &request);
        for cut in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..cut]).and_then(Envelope::long_poll_request).is_err(), "cut at {cut}");
        }
        let mut unknown_method = bytes.clone();
        let method_at = bytes.len() - request.token.len() - 3;
        unknown_method[method_at] = 9;
        let refused = Envelope::decode(&unknown_method).unwrap().long_poll_request();
        assert!(matches!(refused, Err(WireError::Unknown("long-poll method", 9))), "{refused:?}");
        let asker = Asker { node: "web-1".into(), incarnation: 1, reply_to };
        let mut answer = origin().long_poll_answer(&asker, &RemoteAnswer::NoSession);
        *answer.last_mut().unwrap() = 5;
        let refused = Envelope::decode(&answer).unwrap().long_poll_answer();
        assert!(matches!(refused, Err(WireError::Unknown("long-poll answer", 5))), "{refused:?}");
    }

    #[test]
    fn other_versions_and_truncated_messages_are_refused() {
        let mut bytes = origin().heartbeat(1);
        bytes[0] = 2;
        assert!(matches!(Envelope::decode(&bytes), Err(WireError::Version(2))));
        let bytes = origin().broadcast("", &Broadcast::new("topic", "e", json!({})));
        for cut in 0..20 {
            assert!(Envelope::decode(&bytes[..cut]).and_then(Envelope::broadcast).is_err(), "cut at {cut}");
        }
    }
}
