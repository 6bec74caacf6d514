//! A minimal client-side WebSocket over a non-blocking mio socket: one connection's
//! state, its frames out (masked) and in, the upgrade handshake, and the `Handler`
//! that hears what happens on it; with the small helpers these need (the xorshift
//! `Rng` for masks and keys, base64 for the key, a byte search).

use crate::args::{Deflate, WsUrl};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use mio::net::TcpStream;
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const MAX_FRAME: u64 = 64 * 1024 * 1024;
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
const RSV1: u8 = 0x40;
/// The sync flush's empty block, which permessage-deflate drops from each message.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    /// The server compresses each message on its own (`server_no_context_takeover`), so
    /// one decompressor per client thread, reset per message, inflates every connection's.
    static INFLATER: RefCell<(Decompress, Vec<u8>)> = RefCell::new((Decompress::new(false), Vec::new()));
    /// For `Deflate::NoTakeover`: one compressor per thread, reset per message.
    static DEFLATER: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
}
/// A connection that sent nothing for this long sends a Phoenix heartbeat.
pub(crate) const HEARTBEAT_AFTER: Duration = Duration::from_secs(25);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent, waiting for `101`.
    Handshake,
    Open,
    /// Our close frame is sent; waiting for the server's.
    Closing,
    Closed,
}

pub(crate) struct Ws {
    pub(crate) stream: TcpStream,
    /// The caller's name for this connection.
    pub(crate) tag: usize,
    pub(crate) phase: Phase,
    /// Bytes read but not yet a whole frame.
    rbuf: Vec<u8>,
    pub(crate) wbuf: Vec<u8>,
    wpos: usize,
    key: String,
    accept: String,
    fragments: Vec<u8>,
    rng: Rng,
    pub(crate) last_send: Instant,
    pub(crate) error: Option<String>,
    /// The server agreed to permessage-deflate: sends are compressed, and frames with
    /// RSV1 inflated.
    deflate: Option<Deflate>,
    /// The connection's own compressor, for `Deflate::Takeover`.
    compressor: Option<Box<Compress>>,
    /// The length on the wire of the last data frame received (compressed, if it was).
    pub(crate) last_frame_bytes: usize,
}

impl Ws {
    /// A connection whose TCP connect has started. `rng` draws its handshake key and
    /// seeds its masks.
    pub(crate) fn connecting(stream: TcpStream, tag: usize, rng: &mut Rng) -> Ws {
        let raw: [u8; 16] = {
            let (a, b) = (rng.next(), rng.next());
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&a.to_ne_bytes());
            raw[8..].copy_from_slice(&b.to_ne_bytes());
            raw
        };
        let key = base64(&raw);
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        Ws {
            stream,
            tag,
            phase: Phase::Connecting,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            key,
            accept,
            fragments: Vec::new(),
            rng: Rng::new(rng.next()),
            last_send: Instant::now(),
            error: None,
            deflate: None,
            compressor: None,
            last_frame_bytes: 0,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    pub(crate) fn pending(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Handshake)
    }

    pub(crate) fn fail(&mut self, why: impl Into<String>) {
        if self.phase != Phase::Closing && self.phase != Phase::Closed && self.error.is_none() {
            self.error = Some(why.into());
        }
        self.phase = Phase::Closed;
    }

    /// Appends a masked frame to the write buffer (`opcode` may carry RSV1).
    fn queue_frame(&mut self, opcode: u8, data: &[u8]) {
        let len = data.len();
        self.wbuf.push(0x80 | opcode);
        if len < 126 {
            self.wbuf.push(0x80 | len as u8);
        } else if len <= 0xffff {
            self.wbuf.push(0x80 | 126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(0x80 | 127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = (self.rng.next() as u32).to_ne_bytes();
        self.wbuf.extend_from_slice(&mask);
        let start = self.wbuf.len();
        self.wbuf.extend_from_slice(data);
        for (i, b) in self.wbuf[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }

    /// Queues a text frame (sent by the next `flush`).
    pub(crate) fn queue_text(&mut self, data: &[u8]) {
        if self.phase != Phase::Open {
            return;
        }
        match self.deflate {
            None => self.queue_frame(OP_TEXT, data),
            Some(deflate) => {
                let compressed = self.compress(deflate, data);
                self.queue_frame(RSV1 | OP_TEXT, &compressed);
            }
        }
    }

    /// `data` compressed as one permessage-deflate message, as browsers compress every
    /// message they send.
    fn compress(&mut self, deflate: Deflate, data: &[u8]) -> Vec<u8> {
        match deflate {
            Deflate::Takeover => {
                let own = self.compressor.get_or_insert_with(|| Box::new(Compress::new(Compression::default(), false)));
                deflate_message(own, data)
            }
            Deflate::NoTakeover => DEFLATER.with(|compressor| {
                let mut compressor = compressor.borrow_mut();
                compressor.reset();
                deflate_message(&mut compressor, data)
            }),
        }
    }

    /// Sends a text frame now (as far as the socket takes it).
    pub(crate) fn send_text(&mut self, data: &[u8]) {
        self.queue_text(data);
        self.flush();
    }

    pub(crate) fn flush(&mut self) {
        if matches!(self.phase, Phase::Connecting | Phase::Closed) {
            return;
        }
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return self.fail("the socket took no bytes"),
                Ok(n) => self.wpos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return self.fail(format!("write: {err}")),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.last_send = Instant::now();
    }

    /// Starts the close handshake (or just drops a connection that is not open yet).
    pub(crate) fn close(&mut self, code: u16) {
        match self.phase {
            Phase::Open => {
                self.queue_frame(OP_CLOSE, &code.to_be_bytes());
                self.phase = Phase::Closing;
                self.flush();
            }
            Phase::Connecting | Phase::Handshake => self.phase = Phase::Closed,
            Phase::Closing | Phase::Closed => {}
        }
    }

    /// The upgrade request; it offers permessage-deflate as `url` says, and the answer
    /// decides whether the connection uses it.
    pub(crate) fn upgrade_request(&mut self, url: &WsUrl) -> String {
        self.deflate = url.deflate;
        let extensions = url.deflate.map_or(String::new(), |d| format!("Sec-WebSocket-Extensions: {}\r\n", d.offer()));
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: phx-channels-load\r\n{extensions}\r\n",
            url.path, url.host, self.key
        )
    }
}

/// What a connection tells its owner.
pub(crate) trait Handler {
    /// The upgrade succeeded.
    fn open(&mut self, ws: &mut Ws);
    /// A whole text or binary message arrived.
    fn message(&mut self, ws: &mut Ws, data: &[u8]);
    /// The connection is gone (`error` is None for an orderly close we started).
    fn closed(&mut self, tag: usize, error: Option<&str>);
}

fn check_upgrade(head: &str, accept: &str) -> Result<(), String> {
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {status:?}"));
    }
    let got = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-accept").then(|| value.trim())
    });
    match got {
        Some(got) if got == accept => Ok(()),
        other => Err(format!("bad Sec-WebSocket-Accept {other:?}")),
    }
}

/// Parses everything whole in `data`; returns how many bytes were used.
fn process(ws: &mut Ws, data: &mut [u8], handler: &mut impl Handler) -> usize {
    let mut pos = 0;
    if ws.phase == Phase::Handshake {
        let Some(end) = find(data, b"\r\n\r\n") else {
            if data.len() > MAX_RESPONSE_HEAD {
                ws.fail("the upgrade response is too long");
                return data.len();
            }
            return 0;
        };
        let head = String::from_utf8_lossy(&data[..end]);
        if let Err(why) = check_upgrade(&head, &ws.accept) {
            ws.fail(why);
            return data.len();
        }
        if !head.to_ascii_lowercase().contains("sec-websocket-extensions: permessage-deflate") {
            ws.deflate = None;
        }
        ws.phase = Phase::Open;
        pos = end + 4;
        handler.open(ws);
    }
    while matches!(ws.phase, Phase::Open | Phase::Closing) {
        let rest = &data[pos..];
        if rest.len() < 2 {
            break;
        }
        let (b0, b1) = (rest[0], rest[1]);
        let (len, mut header) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (u64::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => (u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")), 10),
            126 | 127 => break,
            short => (u64::from(short), 2),
        };
        if len > MAX_FRAME {
            ws.fail(format!("a {len}-byte frame is too big"));
            return data.len();
        }
        let masked = b1 & 0x80 != 0;
        if masked {
            header += 4;
        }
        let total = header + len as usize;
        if rest.len() < total {
            break;
        }
        let (start, end) = (pos + header, pos + total);
        if masked {
            let mask = [data[start - 4], data[start - 3], data[start - 2], data[start - 1]];
            for (i, b) in data[start..end].iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
        }
        pos = end;
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            OP_TEXT | OP_BINARY if fin && b0 & RSV1 != 0 => {
                ws.last_frame_bytes = total;
                if ws.phase == Phase::Open {
                    INFLATER.with(|inflater| {
                        let (decompress, out) = &mut *inflater.borrow_mut();
                        match inflate(decompress, &data[start..end], out) {
                            Ok(()) => handler.message(ws, out),
                            Err(why) => ws.fail(why),
                        }
                    });
                }
            }
            OP_TEXT | OP_BINARY if fin => {
                ws.last_frame_bytes = total;
                if ws.phase == Phase::Open {
                    handler.message(ws, &data[start..end]);
                }
            }
            OP_TEXT | OP_BINARY => {
                ws.fragments.clear();
                ws.fragments.extend_from_slice(&data[start..end]);
            }
            OP_CONT => {
                ws.fragments.extend_from_slice(&data[start..end]);
                if fin {
                    let whole = std::mem::take(&mut ws.fragments);
                    if ws.phase == Phase::Open {
                        handler.message(ws, &whole);
                    }
                    ws.fragments = whole;
                    ws.fragments.clear();
                }
            }
            OP_CLOSE => {
                let body = &data[start..end];
                let code = if body.len() >= 2 { u16::from_be_bytes([body[0], body[1]]) } else { 1005 };
                if ws.phase == Phase::Open {
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or(&[])).into_owned();
                    ws.queue_frame(OP_CLOSE, &code.to_be_bytes());
                    ws.flush();
                    ws.error = Some(format!("the server closed the connection: {code} {reason}"));
                }
                ws.phase = Phase::Closed;
            }
            OP_PING => {
                let body = data[start..end].to_vec();
                ws.queue_frame(OP_PONG, &body);
                ws.flush();
            }
            OP_PONG => {}
            other => ws.fail(format!("unknown opcode {other}")),
        }
    }
    if ws.phase == Phase::Closed { data.len() } else { pos }
}

/// `data` through `compressor` with a sync flush, its empty block dropped.
fn deflate_message(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let start = compressor.total_in();
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        out.reserve(64);
        let consumed = (compressor.total_in() - start) as usize;
        compressor.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).expect("deflate");
        if (compressor.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    out.truncate(out.len() - SYNC_TAIL.len());
    out
}

/// Inflates one compressed message into `out`.
fn inflate(decompress: &mut Decompress, compressed: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    decompress.reset(false);
    out.clear();
    for input in [compressed, &SYNC_TAIL[..]] {
        let start = decompress.total_in();
        loop {
            out.reserve(4096);
            let consumed = (decompress.total_in() - start) as usize;
            decompress
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|err| format!("inflate: {err}"))?;
            if (decompress.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                break;
            }
        }
    }
    Ok(())
}

/// Reads until the socket is empty, handing whole messages to `handler`.
/// A read shorter than `scratch` emptied the socket, and any later data raises a new
/// (edge-triggered) event, so reading stops there and saves the system call that
/// would only say `WouldBlock`; unless the peer has closed (`until_blocked`), where
/// the end of stream must still be read.
pub(crate) fn read_ready(ws: &mut Ws, scratch: &mut [u8], handler: &mut impl Handler, until_blocked: bool) {
    while matches!(ws.phase, Phase::Handshake | Phase::Open | Phase::Closing) {
        match ws.stream.read(scratch) {
            Ok(0) => {
                if ws.phase == Phase::Closing {
                    ws.phase = Phase::Closed;
                } else {
                    ws.fail("the server closed the TCP connection");
                }
            }
            Ok(n) => {
                let chunk = &mut scratch[..n];
                if ws.rbuf.is_empty() {
                    let used = process(ws, chunk, handler);
                    if used < n && ws.phase != Phase::Closed {
                        ws.rbuf.extend_from_slice(&chunk[used..]);
                    }
                } else {
                    let mut buf = std::mem::take(&mut ws.rbuf);
                    buf.extend_from_slice(chunk);
                    let used = process(ws, &mut buf, handler);
                    buf.drain(..used.min(buf.len()));
                    if ws.phase != Phase::Closed {
                        ws.rbuf = buf;
                    }
                }
                if n < scratch.len() && !until_blocked {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                if ws.phase == Phase::Closing {
                    ws.phase = Phase::Closed;
                } else {
                    ws.fail(format!("read: {err}"));
                }
            }
        }
    }
}

/// xorshift64*: masks, handshake keys.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub(crate) fn seed() -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn thread_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(thread::current().id())
}
