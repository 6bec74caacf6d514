//! A raw WebSocket, for frames the client library will not send: frames built and
//! parsed byte by byte over a plain TCP stream.

use super::http::{http_exchange, upgrade_request};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A WebSocket connection driven byte by byte: frames are built and parsed here.
pub struct RawWs {
    pub stream: TcpStream,
}

impl RawWs {
    /// Performs the handshake on `target` (path and query); panics unless it gets 101.
    pub fn connect(addr: &str, target: &str) -> RawWs {
        RawWs::connect_with(addr, target, &[])
    }

    pub fn connect_with(addr: &str, target: &str, headers: &[(&str, &str)]) -> RawWs {
        let (response, stream) = http_exchange(addr, &upgrade_request(target, headers));
        assert_eq!(response.status, 101, "handshake on {target}: {response:?}");
        RawWs { stream }
    }

    /// Sends one masked frame with FIN set.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send_frame_raw(true, opcode, payload.len() as u64, payload);
    }

    /// Sends a frame header announcing `length` bytes, followed by `payload` (which may
    /// be shorter, to announce a huge frame cheaply).
    pub fn send_frame_raw(&mut self, fin: bool, opcode: u8, length: u64, payload: &[u8]) {
        let mut frame = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if length < 126 {
            frame.push(0x80 | length as u8);
        } else if length <= u16::MAX as u64 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&length.to_be_bytes());
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may close before taking it all; that is what some tests expect.
        let _ = self.stream.write_all(&frame);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(OP_TEXT, text.as_bytes());
    }

    pub fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string());
    }

    /// Reads one frame: (opcode, payload). Errors on timeout or a closed stream.
    pub fn read_frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head)?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut length = (head[1] & 0x7f) as u64;
        if length == 126 {
            let mut ext = [0u8; 2];
            self.stream.read_exact(&mut ext)?;
            length = u16::from_be_bytes(ext) as u64;
        } else if length == 127 {
            let mut ext = [0u8; 8];
            self.stream.read_exact(&mut ext)?;
            length = u64::from_be_bytes(ext);
        }
        let mut mask = [0u8; 4];
        if masked {
            self.stream.read_exact(&mut mask)?;
        }
        let mut payload = vec![0u8; length as usize];
        self.stream.read_exact(&mut payload)?;
        if masked {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
        }
        Ok((opcode, payload))
    }

    /// Reads one text frame as JSON (panics on anything else).
    pub fn read_json(&mut self) -> Value {
        let (opcode, payload) = self.read_frame().expect("a frame");
        assert_eq!(opcode, OP_TEXT, "expected a text frame, got opcode {opcode} {payload:?}");
        serde_json::from_slice(&payload).expect("JSON text frame")
    }

    /// Reads frames until a close frame; returns its code and the data frames before it.
    pub fn read_until_close(&mut self) -> (Option<u16>, Vec<(u8, Vec<u8>)>) {
        let mut before = Vec::new();
        loop {
            match self.read_frame() {
                Ok((OP_CLOSE, payload)) => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return (code, before);
                }
                Ok(frame) => before.push(frame),
                Err(err) => panic!("the connection ended without a close frame ({err}); frames: {before:?}"),
            }
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }
}
