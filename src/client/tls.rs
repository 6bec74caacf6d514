//! The certificates a client trusts for `wss://` (feature `tls`).

use crate::transport::tls_config::{TlsError, certificates, provider, read};
use rustls::RootCertStore;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The certificate authorities (or self-signed certificates) a [`Client`](super::Client)
/// trusts; with them, [`ClientBuilder::tls`](super::ClientBuilder::tls) connects over
/// `wss://`.
///
/// ```no_run
/// use phx_channels::client::{Client, TlsRoots};
///
/// let roots = TlsRoots::from_pem_file("ca.pem")?;
/// let mut client = Client::builder("localhost:4443").tls(roots).connect()?;
/// client.join("room:lobby", serde_json::json!({}))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsRoots {
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRoots").finish_non_exhaustive()
    }
}

impl TlsRoots {
    /// Trusts every certificate in the PEM text.
    ///
    /// ```
    /// # fn demo(ca_pem: &[u8]) -> Result<(), phx_channels::TlsError> {
    /// let roots = phx_channels::client::TlsRoots::from_pem(ca_pem)?;
    /// # Ok(()) }
    /// ```
    pub fn from_pem(pem: &[u8]) -> Result<TlsRoots, TlsError> {
        let mut store = RootCertStore::empty();
        for cert in certificates(pem)? {
            store.add(cert).map_err(TlsError::Rejected)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rejected)?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(TlsRoots { config: Arc::new(config) })
    }

    /// Trusts every certificate in a PEM file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<TlsRoots, TlsError> {
        TlsRoots::from_pem(&read(path.as_ref())?)
    }

    pub(super) fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }
}
