//! A raw WebSocket that speaks permessage-deflate: it offers the extension, compresses
//! what it sends (RSV1 set) and inflates what it receives, and keeps each frame's bytes
//! as they came so tests can compare them.

use super::http::{HttpResponse, http_exchange, upgrade_request};
use super::raw_ws::RawWs;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::io::{self, Read};

pub const RSV1: u8 = 0x40;
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One frame from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    /// The frame's bytes exactly as they came off the wire.
    pub wire: Vec<u8>,
    pub opcode: u8,
    /// RSV1: the payload is compressed.
    pub compressed: bool,
    /// The payload, inflated if it was compressed.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("a JSON text frame")
    }
}

/// A WebSocket whose client side compresses.
pub struct DeflateWs {
    pub raw: RawWs,
    /// The server's `Sec-WebSocket-Extensions` answer.
    pub extensions: Option<String>,
    compress: Compress,
    decompress: Decompress,
    /// The client carries its compressor's window from message to message.
    pub context_takeover: bool,
}

impl DeflateWs {
    /// The handshake's response to an upgrade offering `offer` (if any) in
    /// `Sec-WebSocket-Extensions`, and the stream.
    pub fn handshake(addr: &str, target: &str, offer: Option<&str>) -> (HttpResponse, std::net::TcpStream) {
        let headers: Vec<(&str, &str)> = offer.map(|o| ("Sec-WebSocket-Extensions", o)).into_iter().collect();
        http_exchange(addr, &upgrade_request(target, &headers))
    }

    /// Connects offering `offer`; panics unless the server answers 101.
    pub fn connect(addr: &str, target: &str, offer: &str) -> DeflateWs {
        let (response, stream) = DeflateWs::handshake(addr, target, Some(offer));
        assert_eq!(response.status, 101, "{response:?}");
        let extensions = response.header("sec-websocket-extensions").map(str::to_owned);
        let context_takeover = !extensions.as_deref().unwrap_or("").contains("client_no_context_takeover");
        DeflateWs {
            raw: RawWs { stream },
            extensions,
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            context_takeover,
        }
    }

    /// `payload` compressed as one message, as this client's compressor goes on.
    pub fn deflate(&mut self, payload: &[u8]) -> Vec<u8> {
        if !self.context_takeover {
            self.compress.reset();
        }
        let mut out = Vec::with_capacity(payload.len() + 64);
        self.compress.compress_vec(payload, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&SYNC_TAIL));
        out.truncate(out.len() - SYNC_TAIL.len());
        out
    }

    /// Sends `payload` as one compressed message of `opcode`.
    pub fn send_compressed(&mut self, opcode: u8, payload: &[u8]) {
        let compressed = self.deflate(payload);
        self.raw.send_frame(RSV1 | opcode, &compressed);
    }

    /// Sends `value` compressed if the server agreed to compression, plain otherwise.
    pub fn send_json(&mut self, value: &serde_json::Value) {
        match self.extensions {
            Some(_) => self.send_compressed(super::raw_ws::OP_TEXT, value.to_string().as_bytes()),
            None => self.raw.send_json(value),
        }
    }

    /// Reads one frame, inflating a compressed one.
    pub fn read(&mut self) -> io::Result<ServerFrame> {
        let stream = &mut self.raw.stream;
        let mut wire = vec![0u8; 2];
        stream.read_exact(&mut wire)?;
        let extended = match wire[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        assert_eq!(wire[1] & 0x80, 0, "server frames are not masked");
        let mut ext = vec![0u8; extended];
        stream.read_exact(&mut ext)?;
        wire.extend_from_slice(&ext);
        let len = match extended {
            2 => u16::from_be_bytes([ext[0], ext[1]]) as usize,
            8 => u64::from_be_bytes(ext.try_into().unwrap()) as usize,
            _ => (wire[1] & 0x7f) as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        wire.extend_from_slice(&payload);
        let compressed = wire[0] & RSV1 != 0;
        if compressed {
            // The server compresses each message on its own.
            self.decompress.reset(false);
            payload.extend_from_slice(&SYNC_TAIL);
            let mut inflated = Vec::with_capacity(len * 20 + 1024);
            self.decompress.decompress_vec(&payload, &mut inflated, FlushDecompress::Sync).unwrap();
            payload = inflated;
        }
        Ok(ServerFrame { opcode: wire[0] & 0x0f, compressed, payload, wire })
    }

    /// Reads frames until a close frame; returns its code.
    pub fn read_close_code(&mut self) -> Option<u16> {
        loop {
            let frame = self.read().expect("a close frame before the end");
            if frame.opcode == super::raw_ws::OP_CLOSE {
                return (frame.payload.len() >= 2).then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
            }
        }
    }
}
