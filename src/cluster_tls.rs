//! TLS origination settings of a cluster (`tls:` under a cluster): sluice opens its own
//! TLS session (RFC 8446, RFC 5246) to each endpoint, so a protocol filter keeps reading
//! plaintext while the hop to the server is encrypted. The rustls [`ClientConfig`] is
//! built once when the config loads and shared by every connection, like the listener's.
//!
//! - `ca`: PEM roots to verify the server's certificate against; without it, the system's
//!   trust store (`rustls-native-certs`). `insecure: true` skips verification (tests and
//!   throwaway setups only; the handshake's signatures are still checked).
//! - `server_name`: the name sent in SNI and checked against the certificate; without
//!   it, each endpoint's own host (a DNS name or an IP address).
//! - `cert` + `key`: a client certificate for servers that ask for one (mTLS).
//!
//! How the session starts is the protocol's business: PostgreSQL asks first with an
//! SSLRequest (`tcp_proxy::request_postgres_tls`), MySQL in the middle of its handshake
//! (the filter's `StartUpstreamTls`), the others speak TLS from the first byte.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;

use crate::config::raw::RawClusterTls;
use crate::config::Endpoint;
use crate::tls::{read_certificates, read_key, TlsFile, TlsLoadError};

/// A cluster's TLS origination settings, as configured and as loaded.
#[derive(Clone, Serialize)]
pub struct ClusterTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Built once from the files above.
    #[serde(skip)]
    client: Arc<ClientConfig>,
    /// The name each endpoint is verified against, in endpoint order.
    #[serde(skip)]
    names: Vec<ServerName<'static>>,
}

impl fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterTls")
            .field("server_name", &self.server_name)
            .field("ca", &self.ca)
            .field("insecure", &self.insecure)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// Why a cluster's TLS settings could not be loaded, and which field it is about.
#[derive(Debug)]
pub struct ClusterTlsError {
    pub field: &'static str,
    pub message: String,
}

impl ClusterTlsError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        ClusterTlsError { field, message: message.into() }
    }
}

impl ClusterTls {
    /// Reads the files a cluster's `tls` block names and builds the rustls client config.
    pub fn load(raw: &RawClusterTls, endpoints: &[Endpoint]) -> Result<ClusterTls, ClusterTlsError> {
        if raw.insecure && raw.ca.is_some() {
            return Err(ClusterTlsError::new(
                "insecure",
                "insecure skips verification, so ca would be unused: set one",
            ));
        }
        let (ca, cert, key) =
            (raw.ca.as_deref().map(Path::new), raw.cert.as_deref().map(Path::new), raw.key.as_deref().map(Path::new));
        let names = match raw.server_name.as_deref() {
            Some(name) => {
                let name = ServerName::try_from(name.to_string())
                    .map_err(|e| ClusterTlsError::new("server_name", format!(r#""{name}": {e}"#)))?;
                vec![name; endpoints.len()]
            }
            None => endpoints
                .iter()
                .map(|e| endpoint_name(&e.name))
                .collect::<Result<_, _>>()
                .map_err(|m| ClusterTlsError::new("server_name", m))?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClusterTlsError::new("", e.to_string()))?;
        let builder = if raw.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
        } else {
            builder.with_root_certificates(roots(ca)?)
        };
        let client = match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = read_certificates(cert).map_err(file_error)?;
                let key_der = read_key(key).map_err(file_error)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    ClusterTlsError::new(
                        "key",
                        format!(
                            "cannot use the key in {} with the certificate in {}: {e}",
                            key.display(),
                            cert.display()
                        ),
                    )
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err(ClusterTlsError::new("key", "a client certificate needs its key")),
            (None, Some(_)) => return Err(ClusterTlsError::new("cert", "a client key needs its certificate")),
        };
        Ok(ClusterTls {
            server_name: raw.server_name.clone(),
            ca: ca.map(Path::to_path_buf),
            insecure: raw.insecure,
            cert: cert.map(Path::to_path_buf),
            client: Arc::new(client),
            names,
        })
    }

    /// The rustls client config and the server name for endpoint `index`, for callers
    /// that drive the session with tokio-rustls (the `http` listener).
    pub fn client_config(&self, index: usize) -> (Arc<ClientConfig>, ServerName<'static>) {
        (self.client.clone(), self.names[index].clone())
    }

    /// A new client session to a server known by `name` (`host:port`) rather than by its
    /// place among the endpoints (a Redis Cluster node the slot map named): verified
    /// against `server_name` when set, else the name's host.
    pub fn connect_to(&self, name: &str) -> Result<ClientConnection, rustls::Error> {
        let server = match &self.server_name {
            Some(configured) => {
                ServerName::try_from(configured.clone()).map_err(|_| rustls::Error::General("server_name".into()))?
            }
            None => endpoint_name(name).map_err(rustls::Error::General)?,
        };
        ClientConnection::new(self.client.clone(), server)
    }

    /// A new client session to the endpoint at `index`.
    pub fn connect(&self, index: usize) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.client.clone(), self.names[index].clone())
    }
}

fn file_error(e: TlsLoadError) -> ClusterTlsError {
    let field = match e.file {
        Some(TlsFile::Cert) => "cert",
        Some(TlsFile::Key) => "key",
        None => "",
    };
    ClusterTlsError::new(field, e.message)
}

/// The host of an endpoint written `host:port` (`[v6]:port` for IPv6).
fn endpoint_name(endpoint: &str) -> Result<ServerName<'static>, String> {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!(r#"endpoint "{endpoint}" has no host usable as a TLS server name ({e}); set server_name"#))
}

/// The roots in `ca`, or the system's when there is none.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, ClusterTlsError> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| ClusterTlsError::new("ca", format!("cannot read {}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert =
                    cert.map_err(|e| ClusterTlsError::new("ca", format!("invalid PEM in {}: {e}", path.display())))?;
                store.add(cert).map_err(|e| {
                    ClusterTlsError::new("ca", format!("unusable certificate in {}: {e}", path.display()))
                })?;
            }
            if store.is_empty() {
                return Err(ClusterTlsError::new(
                    "ca",
                    format!("no certificate (PEM CERTIFICATE block) found in {}", path.display()),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ClusterTlsError::new(
                    "ca",
                    "the system trust store has no certificates; give the roots to trust in ca",
                ));
            }
        }
    }
    Ok(store)
}

/// `insecure: true`: any certificate is accepted, but the handshake's signatures are
/// still verified, so the session is at least with whoever holds the key it presented.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts_become_server_names() {
        assert_eq!(endpoint_name("db.internal:5432").unwrap(), ServerName::try_from("db.internal").unwrap());
        assert!(matches!(endpoint_name("127.0.0.1:5432").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(endpoint_name("[::1]:5432").unwrap(), ServerName::IpAddress(_)));
        assert!(endpoint_name("bad_name!:1").is_err());
    }
}
