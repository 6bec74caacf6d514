//! A long-poll session's output waiting for a poll: the payloads of the text frames
//! its protocol session wrote, bounded as a WebSocket connection's queue is.
//!
//! The session writes complete WebSocket frames, as it would to a socket; a poll's
//! answer carries each frame's payload as one string of its `messages`. Binary frames
//! have no place there (Phoenix's long-poll carries text only): they are dropped, with a
//! warning.

use super::response;
use crate::transport::outbound::{Outbound, OutboundLimits};
use crate::transport::write_queue::WriteQueue;
use bytes::Bytes;
use std::collections::VecDeque;

/// WebSocket opcodes of the frames a session writes.
const TEXT: u8 = 0x1;

struct Entry {
    payload: Bytes,
    /// The whole frame's length if it counts against the outbound queue's limits
    /// (which count a frame until it is delivered), else zero.
    counted: usize,
}

/// More output waits than the limits allow: the client is not polling fast enough.
#[derive(Debug)]
pub(crate) struct Overflow;

pub(crate) struct Messages {
    entries: VecDeque<Entry>,
    bytes: usize,
    limits: OutboundLimits,
}

impl Messages {
    pub(crate) fn new(limits: OutboundLimits) -> Self {
        Messages { entries: VecDeque::new(), bytes: 0, limits }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Moves the frames the session wrote to `out` here.
    pub(crate) fn take_from(&mut self, out: &mut WriteQueue, outbound: &Outbound) -> Result<(), Overflow> {
        for (frame, counted) in out.take_frames() {
            let counted = if counted { frame.len() } else { 0 };
            match payload(&frame) {
                Some((TEXT, payload)) => {
                    self.bytes += payload.len();
                    self.entries.push_back(Entry { payload, counted });
                }
                _ => {
                    log::warn!("a binary frame cannot be sent over long-poll; it was dropped");
                    if counted > 0 {
                        outbound.written(1, counted);
                    }
                }
            }
        }
        if self.entries.len() > self.limits.max_frames || self.bytes > self.limits.max_bytes {
            return Err(Overflow);
        }
        Ok(())
    }

    /// The answer to a poll, with every message waiting (status 200). The messages
    /// are delivered: they no longer count against `outbound`'s limits.
    pub(crate) fn deliver(&mut self, token: &str, outbound: &Outbound) -> Bytes {
        let answer = response::messages(200, token, self.entries.iter().map(|entry| &entry.payload[..]));
        let (frames, bytes) = self
            .entries
            .iter()
            .filter(|entry| entry.counted > 0)
            .fold((0, 0), |(f, b), entry| (f + 1, b + entry.counted));
        outbound.written(frames, bytes);
        self.entries.clear();
        self.bytes = 0;
        answer
    }
}

/// The opcode and payload of a complete, unmasked WebSocket frame.
fn payload(frame: &Bytes) -> Option<(u8, Bytes)> {
    let (&first, rest) = frame.split_first()?;
    let header = match rest.first()? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    (frame.len() >= header).then(|| (first & 0x0f, frame.slice(header..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::serializer::Serializer;

    #[test]
    fn the_payload_of_frames_of_every_length() {
        for len in [0, 125, 126, 65535, 65536] {
            let body = "x".repeat(len);
            let msg = Message::new("t", "e", serde_json::json!({ "b": body }));
            let frame = Serializer::V2.encode_push(&msg).unwrap();
            let (opcode, payload) = payload(frame.as_bytes()).unwrap();
            assert_eq!(opcode, TEXT);
            assert_eq!(payload, frame.payload());
        }
    }
}
