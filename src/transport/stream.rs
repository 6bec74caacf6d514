//! A connection's byte stream as the reactor sees it: the plain socket, or a TLS
//! session over it (feature `tls`, see `tls.rs`). The HTTP request and the WebSocket
//! frames are read from its plaintext, and the write queue is written through it.
//!
//! Producers may write straight to a plain socket (the one-writer rule, see
//! `outbound.rs`), never to a TLS one: a TLS session has one owner, its reactor, so
//! every frame of a TLS connection goes through the reactor (a wake-up per batch of
//! frames instead of a direct write).

use super::settings::TransportSettings;
#[cfg(feature = "tls")]
use super::tls::{HandshakeLimits, TlsStream};
use super::write_queue::{WriteQueue, Written};
use crate::stats::Stats;
use mio::net::TcpStream;
use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;

pub(crate) enum Stream {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The stream of a connection from the endpoint's listener: TLS when the endpoint
    /// serves TLS (the handshake happens as it is read; the bytes a client sends
    /// before it completes are bounded like the request head), plain otherwise.
    pub(super) fn accepted(tcp: TcpStream, settings: &TransportSettings, stats: &Arc<Stats>) -> io::Result<Stream> {
        let tcp = Arc::new(tcp);
        #[cfg(feature = "tls")]
        if let Some(config) = &settings.tls {
            let limits = HandshakeLimits { max_bytes: settings.max_header_bytes };
            let tls = TlsStream::new(tcp, config.clone(), limits, stats.clone()).map_err(io::Error::other)?;
            return Ok(Stream::Tls(Box::new(tls)));
        }
        #[cfg(not(feature = "tls"))]
        let _ = (settings, stats);
        Ok(Stream::Plain(tcp))
    }

    /// The TCP socket under the stream.
    pub(super) fn tcp(&self) -> &Arc<TcpStream> {
        match self {
            Stream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.tcp(),
        }
    }

    /// The socket, if no other thread holds it any more.
    pub(super) fn sole_tcp(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Plain(tcp) => Arc::get_mut(tcp),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Arc::get_mut(tls.tcp_mut()),
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// The socket for producers' direct writes: plain connections only.
    pub(super) fn for_direct_writes(&self) -> Option<Arc<TcpStream>> {
        match self {
            Stream::Plain(tcp) => Some(tcp.clone()),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => None,
        }
    }

    /// Reads plaintext. `WouldBlock` means the socket is empty.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => (&**tcp).read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read(buf),
        }
    }

    /// Whether a read that returned less than asked has emptied the socket (so the
    /// next read may answer `WouldBlock` without a system call). Not over TLS: a
    /// session hands out one record's plaintext at a time.
    pub(super) fn short_read_empties(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }

    /// Writes what `queue` holds, as much as the socket takes.
    pub(super) fn write_queue(&mut self, queue: &mut WriteQueue) -> io::Result<Written> {
        match self {
            Stream::Plain(tcp) => queue.flush(&mut &**tcp),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write_queue(queue),
        }
    }

    /// Bytes beyond the write queue wait for the socket (TLS records).
    pub(super) fn has_pending(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.has_pending(),
        }
    }

    /// Ends the writing side: everything queued is written, the connection is done.
    pub(super) fn shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Stream::Tls(tls) = self {
            tls.close_notify();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}
