//! TLS termination settings of a listener: the PEM files are read and checked when the
//! config loads, and the rustls [`ServerConfig`] built from them is shared (`Arc`) by every
//! connection of the listener, so a connection costs no file read and a bad file fails the
//! config, not the first client.
//!
//! rustls with the `ring` provider: TLS 1.3 (RFC 8446) and TLS 1.2 (RFC 5246), or 1.3 only
//! with `min_version: "1.3"`. `cert` holds the certificate chain, leaf first (PEM
//! `CERTIFICATE` blocks); `key` its private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE
//! KEY` or SEC1 `EC PRIVATE KEY`). More certificates, each for its `server_names`, are
//! chosen by the client's SNI (RFC 6066 §3; `*.example.com` matches one label); a client
//! without SNI, or naming none of them, gets `cert`. `alpn` is offered in order of
//! preference (RFC 7301). `client_ca` asks every client for a certificate signed by one of
//! its roots and refuses the handshake without one (mutual TLS).
//!
//! Certificates are reloaded when their files change ([`CertStore::reload_if_changed`],
//! polled by the server): new handshakes get the new certificates, sessions already up keep
//! theirs, and a file that does not load leaves the old certificates in place (a warning
//! and `sluice_tls_reloads_total{outcome="failed"}`). The `client_ca` file is read once.
//! The driver side is `tls_stream`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use serde::Serialize;

use crate::config::raw::RawTls;

/// A listener's TLS settings, as configured and as loaded.
#[derive(Clone, Serialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub certificates: Vec<NamedCertificate>,
    pub alpn: Vec<String>,
    pub min_version: &'static str,
    pub client_ca: Option<PathBuf>,
    /// Built once from the settings; its certificates come from `certs`.
    #[serde(skip)]
    pub server: Arc<ServerConfig>,
    #[serde(skip)]
    pub certs: Arc<CertStore>,
}

/// A certificate served to clients that ask for one of `server_names`.
#[derive(Clone, Debug, Serialize)]
pub struct NamedCertificate {
    pub server_names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("certificates", &self.certificates)
            .field("alpn", &self.alpn)
            .field("min_version", &self.min_version)
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

/// Which file a loading problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
}

/// Why a certificate or key could not be loaded.
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

/// A problem with a listener's `tls` block: the field it is about (relative to the block,
/// e.g. `.certificates[1].key`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfigError {
    pub field: String,
    pub message: String,
}

impl TlsConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TlsConfigError { field: field.into(), message: message.into() }
    }
}

impl TlsConfig {
    /// Reads every file the block names and builds the rustls server config.
    pub(crate) fn load(raw: &RawTls) -> Result<TlsConfig, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut sources = vec![CertSource {
            names: Vec::new(),
            cert: raw.cert.clone().into(),
            key: raw.key.clone().into(),
            field: String::new(),
        }];
        for (i, named) in raw.certificates.iter().enumerate() {
            let field = format!(".certificates[{i}]");
            if named.server_names.is_empty() {
                return Err(TlsConfigError::new(format!("{field}.server_names"), "must name at least one server"));
            }
            let mut names = Vec::new();
            for name in &named.server_names {
                let name = name.trim().to_ascii_lowercase();
                let plain = name.strip_prefix("*.").unwrap_or(&name);
                if rustls::pki_types::DnsName::try_from(plain).is_err() || plain.contains('*') {
                    return Err(TlsConfigError::new(
                        format!("{field}.server_names"),
                        format!("{name:?} is not a DNS name"),
                    ));
                }
                names.push(name);
            }
            sources.push(CertSource { names, cert: named.cert.clone().into(), key: named.key.clone().into(), field });
        }
        let store = Arc::new(CertStore::load(sources, provider.clone())?);
        let versions: &[&'static rustls::SupportedProtocolVersion] = match raw.min_version.as_deref() {
            None | Some("1.2") => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some("1.3") => &[&rustls::version::TLS13],
            Some(other) => {
                return Err(TlsConfigError::new(
                    ".min_version",
                    format!(r#""{other}" is not a TLS version sluice offers ("1.2" or "1.3")"#),
                ))
            }
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsConfigError::new(".min_version", e.to_string()))?;
        let builder = match &raw.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                let certs =
                    read_certificates(Path::new(ca)).map_err(|e| TlsConfigError::new(".client_ca", e.message))?;
                for cert in certs {
                    roots.add(cert).map_err(|e| TlsConfigError::new(".client_ca", format!("{ca}: {e}")))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| TlsConfigError::new(".client_ca", format!("{ca}: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(store.clone());
        for (i, protocol) in raw.alpn.iter().enumerate() {
            if protocol.is_empty() || protocol.len() > 255 {
                return Err(TlsConfigError::new(format!(".alpn[{i}]"), "must be 1 to 255 bytes"));
            }
            server.alpn_protocols.push(protocol.as_bytes().to_vec());
        }
        Ok(TlsConfig {
            cert: raw.cert.clone().into(),
            key: raw.key.clone().into(),
            certificates: raw
                .certificates
                .iter()
                .map(|c| NamedCertificate {
                    server_names: c.server_names.clone(),
                    cert: c.cert.clone().into(),
                    key: c.key.clone().into(),
                })
                .collect(),
            alpn: raw.alpn.clone(),
            min_version: if versions.len() == 1 { "1.3" } else { "1.2" },
            client_ca: raw.client_ca.clone().map(PathBuf::from),
            server: Arc::new(server),
            certs: store,
        })
    }
}

/// One certificate and key pair as configured; no names for the default one.
#[derive(Debug)]
struct CertSource {
    names: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
    /// Where it is in the `tls` block, for errors.
    field: String,
}

/// The certificates as last loaded.
#[derive(Debug)]
struct Loaded {
    default: Arc<CertifiedKey>,
    /// Exact names, lower case.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

/// A listener's certificates: chooses one per handshake by SNI, and reloads them when
/// their files change.
#[derive(Debug)]
pub struct CertStore {
    sources: Vec<CertSource>,
    provider: Arc<CryptoProvider>,
    loaded: RwLock<Arc<Loaded>>,
    /// The files' modification times as of the last (attempted) load.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl CertStore {
    fn load(sources: Vec<CertSource>, provider: Arc<CryptoProvider>) -> Result<CertStore, TlsConfigError> {
        let stamps = stamps(&sources);
        let loaded = load_all(&sources, &provider)?;
        Ok(CertStore { sources, provider, loaded: RwLock::new(Arc::new(loaded)), stamps: Mutex::new(stamps) })
    }

    /// Loads the certificates again if a file changed since the last look: `None` when
    /// none did, else whether the new ones are in use (on an error the old ones stay).
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsConfigError>> {
        let now = stamps(&self.sources);
        {
            let mut seen = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return None;
            }
            *seen = now;
        }
        Some(load_all(&self.sources, &self.provider).map(|loaded| {
            *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        }))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner).clone();
        let chosen = hello.server_name().and_then(|name| {
            let name = name.to_ascii_lowercase();
            loaded.exact.get(&name).or_else(|| {
                let (_, parent) = name.split_once('.')?;
                loaded.wildcard.get(parent)
            })
        });
        Some(chosen.unwrap_or(&loaded.default).clone())
    }
}

fn stamps(sources: &[CertSource]) -> Vec<Option<SystemTime>> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    sources.iter().flat_map(|s| [modified(&s.cert), modified(&s.key)]).collect()
}

fn load_all(sources: &[CertSource], provider: &CryptoProvider) -> Result<Loaded, TlsConfigError> {
    let mut keys = Vec::with_capacity(sources.len());
    for source in sources {
        let field = |file: Option<TlsFile>| match file {
            Some(TlsFile::Cert) => format!("{}.cert", source.field),
            Some(TlsFile::Key) => format!("{}.key", source.field),
            None => source.field.clone(),
        };
        let chain = read_certificates(&source.cert).map_err(|e| TlsConfigError::new(field(e.file), e.message))?;
        let key = read_key(&source.key).map_err(|e| TlsConfigError::new(field(e.file), e.message))?;
        let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            TlsConfigError::new(
                field(None),
                format!(
                    "cannot use the key in {} with the certificate in {}: {e}",
                    source.key.display(),
                    source.cert.display()
                ),
            )
        })?;
        keys.push(Arc::new(certified));
    }
    let mut loaded = Loaded { default: keys[0].clone(), exact: HashMap::new(), wildcard: HashMap::new() };
    for (source, key) in sources.iter().zip(&keys).skip(1) {
        for name in &source.names {
            match name.strip_prefix("*.") {
                Some(parent) => loaded.wildcard.entry(parent.to_string()).or_insert_with(|| key.clone()),
                None => loaded.exact.entry(name.clone()).or_insert_with(|| key.clone()),
            };
        }
    }
    Ok(loaded)
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
