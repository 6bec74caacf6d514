//! One TLS connection as its reactor drives it (feature `tls`): a rustls server session
//! over the non-blocking socket. Reading moves bytes from the socket into the session
//! and hands out the plaintext; writing encrypts queued frames into the session and
//! moves its records to the socket. Neither ever waits: the socket's `WouldBlock`
//! comes back to the reactor, which tries again on the socket's next event.
//!
//! The handshake happens on the way to the HTTP request, under the same deadline,
//! and the bytes a client sends before the handshake completes are bounded like the
//! request head. A handshake that fails is counted and the connection closed: a
//! client that spoke plain HTTP gets a plain `400` that says so, any other gets
//! rustls' alert.

use super::http;
use super::write_queue::{WriteQueue, Written};
use crate::stats::{self, Stats};
use mio::net::TcpStream;
use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

/// What a client must not exceed before its TLS handshake completes.
pub(super) struct HandshakeLimits {
    /// Bytes read from the socket while handshaking.
    pub(super) max_bytes: usize,
}

pub(crate) struct TlsStream {
    tcp: Arc<TcpStream>,
    session: ServerConnection,
    stats: Arc<Stats>,
    limits: HandshakeLimits,
    /// Bytes read from the socket so far, while handshaking.
    handshake_bytes: usize,
    /// The connection's first byte, once read: a TLS record starts with 22
    /// (handshake), plain HTTP with a letter.
    first_byte: Option<u8>,
}

impl TlsStream {
    pub(super) fn new(
        tcp: Arc<TcpStream>,
        config: Arc<rustls::ServerConfig>,
        limits: HandshakeLimits,
        stats: Arc<Stats>,
    ) -> Result<TlsStream, rustls::Error> {
        let session = ServerConnection::new(config)?;
        Ok(TlsStream { tcp, session, stats, limits, handshake_bytes: 0, first_byte: None })
    }

    pub(super) fn tcp(&self) -> &Arc<TcpStream> {
        &self.tcp
    }

    pub(super) fn tcp_mut(&mut self) -> &mut Arc<TcpStream> {
        &mut self.tcp
    }

    /// Reads plaintext: what the session holds, or else what the socket has. Returns
    /// `WouldBlock` only once the socket has, so that the next (edge-triggered) event
    /// comes. A failed handshake returns `InvalidData`, after its answer is written.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // Data, the peer's `close_notify` (0), or its EOF without one.
                done => return done,
            }
            let mut wire = Wire { tcp: &self.tcp, first_byte: &mut self.first_byte };
            let read = self.session.read_tls(&mut wire)?;
            if self.session.is_handshaking() {
                self.handshake_bytes += read;
                if self.handshake_bytes > self.limits.max_bytes {
                    let why = format!("the TLS handshake sent over {} bytes", self.limits.max_bytes);
                    return Err(self.fail(&why));
                }
            }
            if let Err(err) = self.session.process_new_packets() {
                return Err(self.fail(&err.to_string()));
            }
        }
    }

    /// Counts and answers a failed handshake (or a broken session), best effort: the
    /// reactor drops the connection when this returns.
    fn fail(&mut self, why: &str) -> io::Error {
        let peer = self.tcp.peer_addr().map_or_else(|_| "?".to_owned(), |peer| peer.to_string());
        if self.session.is_handshaking() {
            stats::incr(self.stats.tls_handshake_failures());
        }
        if self.first_byte.is_some_and(|byte| byte.is_ascii_alphabetic()) {
            log::info!("refusing a connection from {peer}: plain HTTP on the TLS port");
            // What else it sent (up to a bound) is read first, so that closing sends
            // FIN, not a reset that could overtake the answer.
            let mut sink = [0u8; 4096];
            for _ in 0..16 {
                if !matches!((&*self.tcp).read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
            let answer = http::text(400, "Bad Request: this port speaks TLS only (https://, wss://)");
            let _ = (&*self.tcp).write(&answer);
        } else {
            log::info!("closing the connection from {peer}: {why}");
            let _ = self.session.write_tls(&mut &*self.tcp);
        }
        io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
    }

    /// Encrypts what `queue` holds into the session and moves records to the socket,
    /// until both are empty or the socket is full. The frames count as written once
    /// the session has them.
    pub(super) fn write_queue(&mut self, queue: &mut WriteQueue) -> io::Result<Written> {
        let mut total = Written::default();
        loop {
            while self.session.wants_write() {
                match self.session.write_tls(&mut &*self.tcp) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
            if queue.is_empty() {
                return Ok(total);
            }
            let written = queue.flush(&mut Plaintext(&mut self.session))?;
            if written.bytes == 0 {
                // The session takes no more until the handshake completes.
                return Ok(total);
            }
            total.bytes += written.bytes;
            total.frames += written.frames;
            total.counted_frames += written.counted_frames;
            total.counted_bytes += written.counted_bytes;
        }
    }

    /// Records are waiting for the socket.
    pub(super) fn has_pending(&self) -> bool {
        self.session.wants_write()
    }

    /// Sends `close_notify`, best effort: the connection is being dropped.
    pub(super) fn close_notify(&mut self) {
        self.session.send_close_notify();
        let _ = self.session.write_tls(&mut &*self.tcp);
    }
}

/// The socket as rustls reads it, noting the connection's first byte.
struct Wire<'a> {
    tcp: &'a TcpStream,
    first_byte: &'a mut Option<u8>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.tcp).read(buf)?;
        if self.first_byte.is_none() && n > 0 {
            *self.first_byte = Some(buf[0]);
        }
        Ok(n)
    }
}

/// The session's plaintext side as a writer for the write queue: a full session
/// says `WouldBlock` (rustls says `Ok(0)`).
struct Plaintext<'a>(&'a mut ServerConnection);

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|buf| !buf.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
