//! Complete server-to-client WebSocket frames, built once and shared.
//!
//! A server frame is not masked, so the whole frame (header and payload) of a broadcast
//! is the same for every recipient. [`Frame`] holds it as one immutable, reference
//! counted buffer: queueing it on a thousand connections clones a pointer, not bytes.

use bytes::Bytes;

/// The longest WebSocket header of an unmasked frame: 2 bytes plus a 64-bit length.
const MAX_HEADER: usize = 10;

/// WebSocket opcodes used by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opcode {
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
}

/// A complete, ready-to-write WebSocket frame (header and payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    binary: bool,
    deflate: Deflate,
}

/// Where a frame stands with permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deflate {
    /// As encoded: a compressed connection may still deflate it.
    Untried,
    /// Compressed (RSV1 set).
    Done,
    /// Deflating did not make it shorter: it goes out as it is.
    Declined,
}

impl Frame {
    /// The frame's bytes, exactly as they go on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The frame's length on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never true for a built frame).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether this is a binary frame (otherwise text or control).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The payload: the frame without its WebSocket header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[header_len(self.bytes.len())..]
    }

    /// Whether this is a data frame a compressed connection would send deflated: not
    /// tried yet, and long enough to gain from it.
    pub(crate) fn worth_deflating(&self) -> bool {
        self.deflate == Deflate::Untried
            && self.bytes[0] & 0x0f != Opcode::Close as u8
            && self.payload().len() >= super::deflate::MIN_PAYLOAD
    }

    /// This data frame compressed on its own (no context from earlier messages), so the
    /// same bytes suit every connection that negotiated permessage-deflate; the frame as
    /// it is when compressing does not make it shorter.
    pub(crate) fn deflated(&self) -> Frame {
        let payload = self.payload();
        let mut out = FrameWriter::new(self.opcode(), payload.len());
        out.deflated = true;
        if super::deflate::compress(payload, out.buf()) {
            out.finish()
        } else {
            Frame { deflate: Deflate::Declined, ..self.clone() }
        }
    }

    fn opcode(&self) -> Opcode {
        match self.bytes[0] & 0x0f {
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            _ => Opcode::Close,
        }
    }

    /// A close frame with `code` and a reason (truncated to fit a control frame).
    pub fn close(code: u16, reason: &str) -> Frame {
        // Control frame payloads are at most 125 bytes: 2 for the code, 123 for the reason.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = FrameWriter::new(Opcode::Close, 2 + end);
        out.buf().extend_from_slice(&code.to_be_bytes());
        out.buf().extend_from_slice(&reason.as_bytes()[..end]);
        out.finish()
    }
}

/// The header length of a frame whose total length is `total`.
fn header_len(total: usize) -> usize {
    match total {
        t if t <= 125 + 2 => 2,
        t if t <= 65535 + 4 => 4,
        _ => MAX_HEADER,
    }
}

/// Writes a frame's payload in place, leaving room for the header in front, so the
/// header can be added without copying the payload.
pub(crate) struct FrameWriter {
    buf: Vec<u8>,
    opcode: Opcode,
    /// The payload is compressed: RSV1 is set.
    deflated: bool,
}

impl FrameWriter {
    /// A writer for a frame of `opcode`, with room for about `payload_hint` bytes.
    pub(crate) fn new(opcode: Opcode, payload_hint: usize) -> Self {
        let mut buf = Vec::with_capacity(MAX_HEADER + payload_hint);
        buf.resize(MAX_HEADER, 0);
        FrameWriter { buf, opcode, deflated: false }
    }

    /// The buffer to append the payload to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Puts the header in front of the payload and freezes the frame.
    pub(crate) fn finish(mut self) -> Frame {
        let len = self.buf.len() - MAX_HEADER;
        let first = 0x80 | if self.deflated { 0x40 } else { 0 } | self.opcode as u8;
        let start = if len <= 125 {
            self.buf[MAX_HEADER - 2..MAX_HEADER].copy_from_slice(&[first, len as u8]);
            MAX_HEADER - 2
        } else if len <= 65535 {
            let [hi, lo] = (len as u16).to_be_bytes();
            self.buf[MAX_HEADER - 4..MAX_HEADER].copy_from_slice(&[first, 126, hi, lo]);
            MAX_HEADER - 4
        } else {
            self.buf[0] = first;
            self.buf[1] = 127;
            self.buf[2..MAX_HEADER].copy_from_slice(&(len as u64).to_be_bytes());
            0
        };
        let binary = self.opcode == Opcode::Binary;
        let deflate = if self.deflated { Deflate::Done } else { Deflate::Untried };
        Frame { bytes: Bytes::from(self.buf).slice(start..), binary, deflate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(len: usize) -> Frame {
        let mut w = FrameWriter::new(Opcode::Text, len);
        w.buf().resize(MAX_HEADER + len, b'a');
        w.finish()
    }

    #[test]
    fn short_frames_have_a_two_byte_header() {
        let f = frame_of(5);
        assert_eq!(&f.as_bytes()[..2], &[0x81, 5]);
        assert_eq!(f.payload(), b"aaaaa");
    }

    #[test]
    fn medium_frames_have_a_16_bit_length() {
        let f = frame_of(126);
        assert_eq!(&f.as_bytes()[..4], &[0x81, 126, 0, 126]);
        assert_eq!(f.payload().len(), 126);
        let f = frame_of(65535);
        assert_eq!(&f.as_bytes()[..4], &[0x81, 126, 0xff, 0xff]);
        assert_eq!(f.payload().len(), 65535);
    }

    #[test]
    fn long_frames_have_a_64_bit_length() {
        let f = frame_of(65536);
        assert_eq!(&f.as_bytes()[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(f.payload().len(), 65536);
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        let f = Frame::close(1009, "too big");
        assert_eq!(f.as_bytes().as_ref(), b"\x88\x09\x03\xf1too big");
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let f = Frame::close(1000, &"é".repeat(100));
        assert!(f.payload().len() <= 125);
        assert!(std::str::from_utf8(&f.payload()[2..]).is_ok());
    }
}
