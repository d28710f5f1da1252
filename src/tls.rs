//! TLS termination settings of a listener (`tls: { cert, key }`): the PEM files are read
//! and checked when the config loads, and the rustls [`ServerConfig`] built from them is
//! shared (`Arc`) by every connection of the listener, so a connection costs no file read
//! and a bad file fails the config, not the first client.
//!
//! rustls with the `ring` provider and its safe defaults: TLS 1.3 (RFC 8446) and TLS 1.2
//! (RFC 5246), no client certificates. `cert` holds the certificate chain, leaf first
//! (PEM `CERTIFICATE` blocks); `key` its private key (PKCS#8 `PRIVATE KEY`, PKCS#1
//! `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`). The driver side is `tls_stream`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use serde::Serialize;

/// A listener's TLS settings, as configured and as loaded.
#[derive(Clone, Serialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Built once from `cert` and `key`.
    #[serde(skip)]
    pub server: Arc<ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

/// Which file a loading problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
}

/// Why a listener's TLS settings could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsLoadError {
    /// `None`: the pair (a key that does not match the certificate).
    pub file: Option<TlsFile>,
    pub message: String,
}

impl TlsLoadError {
    fn new(file: Option<TlsFile>, message: String) -> Self {
        TlsLoadError { file, message }
    }
}

impl TlsConfig {
    /// Reads both PEM files and builds the rustls server config.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, TlsLoadError> {
        let chain = read_certificates(cert)?;
        let private_key = read_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
            .map_err(|e| {
                TlsLoadError::new(
                    None,
                    format!("cannot use the key in {} with the certificate in {}: {e}", key.display(), cert.display()),
                )
            })?;
        Ok(TlsConfig { cert: cert.to_path_buf(), key: key.to_path_buf(), server: Arc::new(server) })
    }
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsLoadError> {
    std::fs::read(path).map_err(|e| TlsLoadError::new(Some(file), format!("cannot read {}: {e}", path.display())))
}

pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsLoadError> {
    let bytes = read(TlsFile::Cert, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsLoadError::new(Some(TlsFile::Cert), format!("invalid PEM in {}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(TlsLoadError::new(
            Some(TlsFile::Cert),
            format!("no certificate (PEM CERTIFICATE block) found in {}", path.display()),
        ));
    }
    Ok(chain)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsLoadError> {
    let bytes = read(TlsFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let message = match e {
            pem::Error::NoItemsFound => format!(
                "no private key (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) found in {}",
                path.display()
            ),
            e => format!("invalid PEM in {}: {e}", path.display()),
        };
        TlsLoadError::new(Some(TlsFile::Key), message)
    })
}
