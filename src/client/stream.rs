//! The client's connection: a TCP socket, or a TLS session over one (feature `tls`).

#[cfg(feature = "tls")]
use super::tls::TlsRoots;
use std::io::{self, Read, Write};
use std::net::TcpStream;

pub(super) enum ClientStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// Starts TLS over `tcp`, checking the server's certificate against `roots` for
    /// the host of `addr` (`host:port`, a name or an IP address). The handshake itself
    /// happens with the first write.
    #[cfg(feature = "tls")]
    pub(super) fn tls(tcp: TcpStream, addr: &str, roots: &TlsRoots) -> io::Result<ClientStream> {
        let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let session = rustls::ClientConnection::new(roots.config(), name).map_err(io::Error::other)?;
        Ok(ClientStream::Tls(Box::new(rustls::StreamOwned::new(session, tcp))))
    }

    /// The TCP socket under the stream.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.flush(),
        }
    }
}
