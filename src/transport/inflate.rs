//! The reading side of permessage-deflate: the client's frames pass through here before
//! tungstenite reads them, and each compressed message (RSV1 on its first frame) comes
//! out inflated, as one plain frame. tungstenite knows no extension (it closes a
//! connection that sets RSV1), but it keeps doing everything else: control frames, the
//! close handshake, UTF-8, fragmentation of plain messages, the size limits.
//!
//! Inflating is bounded: a message whose inflated size passes the frame limit is
//! refused as soon as it does (1009, as an oversized frame), so a small frame that
//! would inflate to gigabytes costs at most the limit.

use super::conn::{CloseWith, close_code};
use super::permessage_deflate::PerMessageDeflate;
use super::stream::Stream;
use flate2::{Decompress, FlushDecompress, Status};
use std::io;

/// What a socket read takes at most.
const READ_CHUNK: usize = 4096;
/// Buffers grown past this by a large message are given back once it is through.
const KEEP_CAPACITY: usize = 64 * 1024;
/// What one inflating step writes at most.
const INFLATE_CHUNK: usize = 16 * 1024;
/// The sync flush's empty block, which the sender dropped from each message.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const MASKED: u8 = 0x80;
const CONTINUATION: u8 = 0x0;

/// A fragmented message whose first frame has passed and whose last has not.
enum Fragmented {
    /// A plain one: its frames pass through to tungstenite.
    Plain,
    /// A compressed one, of this opcode; what it inflated to so far is in `inflated`.
    Compressed { opcode: u8 },
}

pub(super) struct Inflater {
    agreed: PerMessageDeflate,
    /// The largest frame, and the largest inflated message.
    max_size: usize,
    /// Bytes from the socket that do not make a whole frame yet.
    raw: Vec<u8>,
    /// Frames for tungstenite, and how much of them it has read.
    out: Vec<u8>,
    out_read: usize,
    fragmented: Option<Fragmented>,
    /// The compressed message being inflated.
    inflated: Vec<u8>,
    /// Made at the first compressed message; kept between messages only while the
    /// client carries its window over.
    decompress: Option<Decompress>,
    /// Why the connection must close: reported instead of anything after it.
    failure: Option<CloseWith>,
}

impl Inflater {
    /// `tail`: what the client sent after its request.
    pub(super) fn new(agreed: PerMessageDeflate, max_size: usize, tail: Vec<u8>) -> Self {
        let mut inflater = Inflater {
            agreed,
            max_size,
            raw: tail,
            out: Vec::new(),
            out_read: 0,
            fragmented: None,
            inflated: Vec::new(),
            decompress: None,
            failure: None,
        };
        inflater.process();
        inflater
    }

    /// The close a frame called for, once tungstenite has read everything before it.
    pub(super) fn take_failure(&mut self) -> Option<CloseWith> {
        self.failure.take()
    }

    /// Reads for tungstenite: frames as the client sent them, compressed messages
    /// inflated. `read` counts the bytes taken from the socket.
    pub(super) fn read(&mut self, stream: &mut Stream, buf: &mut [u8], read: &mut usize) -> io::Result<usize> {
        loop {
            if self.out_read < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_read);
                buf[..n].copy_from_slice(&self.out[self.out_read..self.out_read + n]);
                self.out_read += n;
                if self.out_read == self.out.len() {
                    self.out_read = 0;
                    release(&mut self.out);
                }
                return Ok(n);
            }
            if self.failure.is_some() {
                return Err(io::Error::other("permessage-deflate"));
            }
            let start = self.raw.len();
            self.raw.resize(start + READ_CHUNK, 0);
            let result = stream.read(&mut self.raw[start..]);
            self.raw.truncate(start + *result.as_ref().unwrap_or(&0));
            match result? {
                0 => return Ok(0),
                n => *read += n,
            }
            self.process();
        }
    }

    /// Turns every whole frame in `raw` into output.
    fn process(&mut self) {
        let mut at = 0;
        while self.failure.is_none() {
            let Some((header, len)) = self.header(&self.raw[at..]) else { break };
            if len > self.max_size {
                self.fail(close_code::TOO_BIG, "frame too large");
                break;
            }
            let Some(end) = (at + header).checked_add(len).filter(|&end| end <= self.raw.len()) else { break };
            let frame = std::mem::take(&mut self.raw);
            self.frame(&frame[at..end], header);
            self.raw = frame;
            at = end;
        }
        self.raw.drain(..at);
        if self.raw.is_empty() {
            release(&mut self.raw);
        }
    }

    /// A frame's header length and payload length, once the header is all there.
    fn header(&self, bytes: &[u8]) -> Option<(usize, usize)> {
        let second = *bytes.get(1)?;
        let mask = if second & MASKED != 0 { 4 } else { 0 };
        let (extended, len) = match second & 0x7f {
            126 => (2, u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize),
            127 => (8, usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).unwrap_or(usize::MAX)),
            len => (0, len as usize),
        };
        let header = 2 + extended + mask;
        (bytes.len() >= header || len > self.max_size).then_some((header, len))
    }

    /// One whole frame.
    fn frame(&mut self, frame: &[u8], header: usize) {
        let (first, second) = (frame[0], frame[1]);
        let (fin, rsv1, opcode) = (first & FIN != 0, first & RSV1 != 0, first & 0x0f);
        let control = opcode & 0x08 != 0;
        if rsv1 && (control || opcode == CONTINUATION) {
            return self.fail(close_code::PROTOCOL_ERROR, "RSV1 set on a control or continuation frame");
        }
        if control {
            return self.out.extend_from_slice(frame);
        }
        if opcode != CONTINUATION && self.fragmented.is_some() {
            return self.fail(close_code::PROTOCOL_ERROR, "a new message before the last one ended");
        }
        let plain = match &self.fragmented {
            _ if opcode != CONTINUATION => !rsv1,
            Some(Fragmented::Compressed { .. }) => false,
            // A plain message's continuation, or a stray one tungstenite refuses.
            Some(Fragmented::Plain) | None => true,
        };
        if plain {
            if opcode != CONTINUATION && !fin {
                self.fragmented = Some(Fragmented::Plain);
            } else if opcode == CONTINUATION && fin {
                self.fragmented = None;
            }
            return self.out.extend_from_slice(frame);
        }
        if second & MASKED == 0 {
            return self.fail(close_code::PROTOCOL_ERROR, "unmasked frame from the client");
        }
        let key: [u8; 4] = frame[header - 4..header].try_into().expect("a masked header ends with its key");
        let mut payload: Vec<u8> = frame[header..].iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        if fin {
            payload.extend_from_slice(&SYNC_TAIL);
        }
        let opcode = match self.fragmented.take() {
            Some(Fragmented::Compressed { opcode }) => opcode,
            _ => opcode,
        };
        if let Err(why) = self.inflate(&payload) {
            return self.failure = Some(why);
        }
        if !fin {
            self.fragmented = Some(Fragmented::Compressed { opcode });
            return;
        }
        if self.agreed.client_no_context_takeover {
            self.decompress = None;
        }
        let inflated = std::mem::take(&mut self.inflated);
        self.emit(opcode, &inflated);
        self.inflated = inflated;
        release(&mut self.inflated);
    }

    /// Inflates `input` onto `self.inflated`, never past the size limit: each step has
    /// room for at most one chunk more, and a message one byte past the limit fails.
    fn inflate(&mut self, mut input: &[u8]) -> Result<(), CloseWith> {
        let bits = self.agreed.inflate_window_bits();
        let decompress = self.decompress.get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let inflated = &mut self.inflated;
        // A first guess at the room a message needs, so a short one costs little.
        let mut chunk = (input.len() * 4).clamp(256, INFLATE_CHUNK);
        loop {
            let left = self.max_size.saturating_add(1).saturating_sub(inflated.len());
            inflated.reserve_exact(chunk.min(left).max(1));
            let before_in = decompress.total_in();
            let status = decompress.decompress_vec(input, inflated, FlushDecompress::Sync);
            let consumed = (decompress.total_in() - before_in) as usize;
            let status = status
                .map_err(|_| CloseWith { code: close_code::INVALID_DATA, reason: "invalid compressed data".into() })?;
            if inflated.len() > self.max_size {
                return Err(CloseWith { code: close_code::TOO_BIG, reason: "message too large once inflated".into() });
            }
            input = &input[consumed..];
            if status == Status::StreamEnd {
                // The client ended its stream (BFINAL): its next message starts a new one.
                decompress.reset(false);
                return Ok(());
            }
            let full = inflated.len() == inflated.capacity();
            if !full && (input.is_empty() || consumed == 0) {
                return Ok(());
            }
            chunk = INFLATE_CHUNK;
        }
    }

    /// A whole inflated message, as one plain frame masked with a zero key (tungstenite
    /// wants client frames masked).
    fn emit(&mut self, opcode: u8, payload: &[u8]) {
        self.out.push(FIN | opcode);
        match payload.len() {
            len if len < 126 => self.out.push(MASKED | len as u8),
            len if len <= 0xffff => {
                self.out.push(MASKED | 126);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                self.out.push(MASKED | 127);
                self.out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&[0; 4]);
        self.out.extend_from_slice(payload);
    }

    fn fail(&mut self, code: u16, reason: &str) {
        self.failure = Some(CloseWith { code, reason: reason.into() });
    }
}

/// Empties `buf`, and frees it if a large message grew it: an idle connection keeps
/// little.
fn release(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}
