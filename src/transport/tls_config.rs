//! The endpoint's TLS settings (feature `tls`): a certificate chain and its private key,
//! read from PEM, and what can go wrong reading them. The client's trusted roots are
//! read with the same helpers.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate chain and private key for serving `wss://` (and `https://`) from the
/// endpoint; hand it to [`EndpointBuilder::tls`](crate::EndpointBuilder::tls).
///
/// TLS 1.2 and 1.3 with rustls' safe defaults and the `ring` provider.
///
/// ```no_run
/// use phx_channels::{Endpoint, TlsConfig, UserSocket};
/// # use phx_channels::{Channel, JoinResult, Payload, Socket};
/// # struct Room;
/// # impl Channel for Room {
/// #     fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult { Ok(Payload::empty()) }
/// # }
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let endpoint = Endpoint::builder()
///     .bind("0.0.0.0:4443")
///     .tls(tls)
///     .socket("/socket", UserSocket::new().channel("room:*", |_| Room))
///     .start()?;
/// // Clients connect to wss://HOST:4443/socket/websocket.
/// # endpoint.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads the certificate chain (the server's certificate first, then the
    /// intermediates) and the private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<TlsConfig, TlsError> {
        let cert_pem = read(cert.as_ref())?;
        let key_pem = read(key.as_ref())?;
        TlsConfig::from_pem(&cert_pem, &key_pem)
    }

    /// Like [`from_pem_files`](TlsConfig::from_pem_files), from PEM text in memory.
    ///
    /// ```
    /// # fn demo(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), phx_channels::TlsError> {
    /// let tls = phx_channels::TlsConfig::from_pem(cert_pem, key_pem)?;
    /// # Ok(()) }
    /// ```
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let chain = certificates(cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| match err {
            pem::Error::NoItemsFound => TlsError::NoPrivateKey,
            err => TlsError::Pem(err),
        })?;
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Rejected)?;
        Ok(TlsConfig { server: Arc::new(server) })
    }

    pub(crate) fn server(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
}

/// Why TLS settings could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The PEM text is malformed.
    Pem(pem::Error),
    /// The PEM text holds no certificate.
    NoCertificate,
    /// The PEM text holds no private key.
    NoPrivateKey,
    /// rustls refused the certificate or the key (for example a key that does not
    /// belong to the certificate).
    Rejected(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            TlsError::Pem(err) => write!(f, "malformed PEM: {err}"),
            TlsError::NoCertificate => f.write_str("no certificate in the PEM text"),
            TlsError::NoPrivateKey => f.write_str("no private key in the PEM text"),
            TlsError::Rejected(err) => write!(f, "certificate or key refused: {err}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Pem(err) => Some(err),
            TlsError::Rejected(err) => Some(err),
            TlsError::NoCertificate | TlsError::NoPrivateKey => None,
        }
    }
}

/// The crypto every TLS session of the crate uses, server and client.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file whole.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Every certificate in PEM text, in order; at least one.
pub(crate) fn certificates(pem_text: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem_text).collect::<Result<Vec<_>, _>>().map_err(TlsError::Pem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(chain)
}
