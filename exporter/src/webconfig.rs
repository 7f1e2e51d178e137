//! The web configuration file: TLS, HTTP response headers and HTTP basic authentication for the
//! metrics server, in node_exporter's format (prometheus/exporter-toolkit `web-config.yml`).
//!
//! A file whose name ends in `.yml` or `.yaml` is read as YAML, exactly the file a node_exporter
//! uses; any other name is read as TOML with the same keys (the format ipvs-herald had first):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: tls.crt            # relative paths are relative to this file's directory
//!   key_file: tls.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//!   client_allowed_sans: [prometheus.example.net]
//!   min_version: TLS12            # TLS12 (default) or TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]   # TLS 1.2 suites
//!   curve_preferences: [X25519, CurveP256]
//! http_server_config:
//!   headers: { X-Frame-Options: deny }
//! basic_auth_users:
//!   prometheus: $2y$10$…          # bcrypt, e.g. `htpasswd -nBC 10 prometheus`
//! ```
//!
//! Every key exporter-toolkit knows is either honoured or refused by name with the reason:
//! TLS 1.0/1.1, cipher suites and curves rustls does not implement, `http2: true` (the server
//! speaks HTTP/1.1), `rate_limit`. Unknown keys are refused. The certificate, key and client CA
//! files are read again when their content changes ([`TlsReloader`]: checked at most once a
//! second, on the next handshake); a pair that does not load keeps the previous one in use.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Why the web configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("web config file {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("web config file {path}: basic_auth_users: user name {user:?} must be non-empty and contain no ':'")]
    UserName { path: PathBuf, user: String },
    #[error("web config file {path}: basic_auth_users.{user}: not a bcrypt hash (expected $2y$/$2b$/$2a$…)")]
    PasswordHash { path: PathBuf, user: String },
    /// A key exporter-toolkit knows but ipvs-herald cannot honour, or a value it refuses.
    #[error("web config file {path}: {key}: {reason}")]
    Refused {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("web config file {path}: {source}")]
    Tls { path: PathBuf, source: TlsError },
}

/// The file did not parse (syntax, unknown key, wrong type), in either format.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// Why the TLS settings of `tls_server_config` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: bad PEM: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no certificate found", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key found", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("TLS versions: {0}")]
    Versions(#[source] rustls::Error),
    #[error("{}: unusable CA certificate: {source}", path.display())]
    CaCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client_auth_type {0} needs client_ca_file (or client_ca)")]
    NoClientCa(&'static str),
    #[error("client verifier: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    #[error("certificate/key mismatch or unusable: {0}")]
    CertificateKey(#[source] rustls::Error),
}

/// The whole web configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebConfig {
    /// TLS; absent = plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    /// Extra response headers (`http_server_config.headers`), checked as exporter-toolkit does.
    pub headers: BTreeMap<String, String>,
    /// User name → bcrypt hash; empty = no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`, checked: paths made absolute, names turned into rustls values.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsServerConfig {
    /// PEM certificate chain (server certificate first): a file, or the text itself (`cert`).
    pub cert: Pem,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1): a file, or the text itself (`key`).
    pub key: Pem,
    pub client_auth_type: ClientAuthType,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: Option<Pem>,
    /// A client certificate must carry one of these SANs (DNS, IP, e-mail or URI).
    pub client_allowed_sans: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites allowed, in order; empty = rustls's defaults. (TLS 1.3 suites are not
    /// configurable, as in Go.)
    pub cipher_suites: Vec<&'static str>,
    /// Key exchange groups allowed, in order; empty = rustls's defaults.
    pub curve_preferences: Vec<&'static str>,
    /// The server's suite order wins (exporter-toolkit's default: true).
    pub prefer_server_cipher_suites: bool,
}

/// PEM material: read from a file (re-read when it changes) or written in the config file.
#[derive(Debug, Clone, PartialEq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// Client certificate policy (Go's `tls.ClientAuthType` names, as exporter-toolkit takes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuthType {
    #[default]
    NoClientCert,
    /// Ask for a certificate, accept the connection without one; not verified.
    RequestClientCert,
    /// A certificate is required but not verified against a CA.
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must verify.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    fn name(self) -> &'static str {
        match self {
            ClientAuthType::NoClientCert => "NoClientCert",
            ClientAuthType::RequestClientCert => "RequestClientCert",
            ClientAuthType::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuthType::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuthType::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }
}

/// A TLS version rustls implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    TLS12,
    TLS13,
}

/// The file as written: every exporter-toolkit key, so that the ones ipvs-herald cannot honour
/// are refused by name rather than reported as unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    rate_limit: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The TLS 1.2 suites of rustls's ring provider, by their Go names.
const TLS12_SUITES: [(&str, rustls::SupportedCipherSuite); 6] = {
    use rustls::crypto::ring::cipher_suite as cs;
    [
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
};

/// Key exchange groups by exporter-toolkit's names.
fn kx_group(name: &str) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
    use rustls::crypto::ring::kx_group;
    match name {
        "X25519" => Some(kx_group::X25519),
        "CurveP256" => Some(kx_group::SECP256R1),
        "CurveP384" => Some(kx_group::SECP384R1),
        _ => None,
    }
}

/// Headers exporter-toolkit lets a file set, with the values allowed (none listed = any).
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Whether a file is read as YAML: by its name (`.yml`, `.yaml`).
pub fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml" | "YML" | "YAML")
    )
}

impl WebConfig {
    /// Load and check a web configuration file (certificates readable and matching their key,
    /// hashes well-formed, every key honoured).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_err = |source: ParseError| WebConfigError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let raw: RawFile = if is_yaml(path) {
            // An empty YAML document is an empty configuration, as in exporter-toolkit.
            if text.trim().is_empty() {
                RawFile::default()
            } else {
                serde_yaml_ng::from_str(&text).map_err(|e| parse_err(e.into()))?
            }
        } else {
            toml::from_str(&text).map_err(|e| parse_err(e.into()))?
        };
        let refused = |key: &'static str, reason: String| WebConfigError::Refused {
            path: path.to_path_buf(),
            key,
            reason,
        };
        if raw.rate_limit.is_some() {
            return Err(refused(
                "rate_limit",
                "not supported by ipvs-herald (its server bounds connections, scrapes and \
                 password checks itself: see [exporter.limits])"
                    .into(),
            ));
        }
        for (user, hash) in &raw.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                return Err(WebConfigError::UserName {
                    path: path.to_path_buf(),
                    user: user.clone(),
                });
            }
            if bcrypt::verify("", hash).is_err() {
                return Err(WebConfigError::PasswordHash {
                    path: path.to_path_buf(),
                    user: user.clone(),
                });
            }
        }
        let http = raw.http_server_config.unwrap_or_default();
        if http.http2 == Some(true) {
            return Err(refused(
                "http_server_config.http2",
                "true is not supported: the server speaks HTTP/1.1 only (remove the key or set false)"
                    .into(),
            ));
        }
        for (name, value) in &http.headers {
            let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(n, _)| n == name) else {
                return Err(refused(
                    "http_server_config.headers",
                    format!(
                        "HTTP header {name:?} can not be configured (allowed: {})",
                        EXTRA_HEADERS.map(|(n, _)| n).join(", ")
                    ),
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(refused(
                    "http_server_config.headers",
                    format!("invalid value {value:?} for {name}: expected one of {allowed:?}"),
                ));
            }
            if hyper::header::HeaderValue::from_str(value).is_err() {
                return Err(refused(
                    "http_server_config.headers",
                    format!("{name}: {value:?} is not a valid header value"),
                ));
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match raw.tls_server_config {
            Some(t) => Some(TlsServerConfig::from_raw(t, dir).map_err(|(key, reason)| {
                WebConfigError::Refused {
                    path: path.to_path_buf(),
                    key,
                    reason,
                }
            })?),
            None => None,
        };
        if let Some(t) = &tls {
            t.build(&t.read_material().map_err(|source| WebConfigError::Tls {
                path: path.to_path_buf(),
                source,
            })?)
            .map_err(|source| WebConfigError::Tls {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(WebConfig {
            tls_server_config: tls,
            headers: http.headers,
            basic_auth_users: raw.basic_auth_users,
        })
    }

    /// A TLS source that re-reads rotated certificates, when TLS is configured.
    pub fn tls_reloader(&self) -> Result<Option<Arc<TlsReloader>>, TlsError> {
        self.tls_server_config
            .as_ref()
            .map(|t| TlsReloader::new(t.clone()).map(Arc::new))
            .transpose()
    }
}

fn version(
    key: &'static str,
    v: Option<String>,
    default: TlsVersion,
) -> Result<TlsVersion, (&'static str, String)> {
    match v.as_deref() {
        None => Ok(default),
        Some("TLS12") => Ok(TlsVersion::TLS12),
        Some("TLS13") => Ok(TlsVersion::TLS13),
        Some(old @ ("TLS10" | "TLS11")) => Err((
            key,
            format!("{old} is not supported (rustls implements TLS12 and TLS13 only)"),
        )),
        Some(other) => Err((
            key,
            format!("unknown TLS version {other:?} (TLS12 or TLS13)"),
        )),
    }
}

impl TlsServerConfig {
    /// Check the keys as written; relative paths are taken from `dir` (the file's directory,
    /// as exporter-toolkit does).
    fn from_raw(t: RawTls, dir: &Path) -> Result<Self, (&'static str, String)> {
        let pem = |file: Option<PathBuf>,
                   text: Option<String>,
                   fkey: &'static str,
                   tkey: &'static str| {
            match (file, text) {
                (Some(_), Some(_)) => Err((fkey, format!("give {fkey} or {tkey}, not both"))),
                (Some(f), None) => Ok(Some(Pem::File(dir.join(f)))),
                (None, Some(t)) => Ok(Some(Pem::Inline(t))),
                (None, None) => Ok(None),
            }
        };
        let cert = pem(t.cert_file, t.cert, "tls_server_config.cert_file", "cert")?.ok_or((
            "tls_server_config",
            "missing one of cert or cert_file".to_string(),
        ))?;
        let key = pem(t.key_file, t.key, "tls_server_config.key_file", "key")?.ok_or((
            "tls_server_config",
            "missing one of key or key_file".to_string(),
        ))?;
        let client_ca = pem(
            t.client_ca_file,
            t.client_ca,
            "tls_server_config.client_ca_file",
            "client_ca",
        )?;
        let client_auth_type = match t.client_auth_type.as_deref() {
            None | Some("" | "NoClientCert") => ClientAuthType::NoClientCert,
            Some("RequestClientCert") => ClientAuthType::RequestClientCert,
            Some("RequireAnyClientCert" | "RequireClientCert") => ClientAuthType::RequireAnyClientCert,
            Some("VerifyClientCertIfGiven") => ClientAuthType::VerifyClientCertIfGiven,
            Some("RequireAndVerifyClientCert") => ClientAuthType::RequireAndVerifyClientCert,
            Some(other) => {
                return Err((
                    "tls_server_config.client_auth_type",
                    format!("unknown value {other:?} (NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"),
                ))
            }
        };
        if client_ca.is_some() && client_auth_type == ClientAuthType::NoClientCert {
            return Err((
                "tls_server_config.client_ca_file",
                "client CAs are configured without a client_auth_type that uses them".into(),
            ));
        }
        let client_allowed_sans = t.client_allowed_sans.unwrap_or_default();
        if !client_allowed_sans.is_empty()
            && !matches!(
                client_auth_type,
                ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
            )
        {
            return Err((
                "tls_server_config.client_allowed_sans",
                "requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert"
                    .into(),
            ));
        }
        let min_version = version(
            "tls_server_config.min_version",
            t.min_version,
            TlsVersion::TLS12,
        )?;
        let max_version = version(
            "tls_server_config.max_version",
            t.max_version,
            TlsVersion::TLS13,
        )?;
        if min_version > max_version {
            return Err((
                "tls_server_config.max_version",
                "is below min_version".into(),
            ));
        }
        let mut cipher_suites = Vec::new();
        for s in t.cipher_suites.unwrap_or_default() {
            let Some((name, _)) = TLS12_SUITES.iter().find(|(n, _)| *n == s) else {
                return Err((
                    "tls_server_config.cipher_suites",
                    format!(
                        "{s} is not available (TLS 1.2 suites rustls implements: {}; TLS 1.3 suites cannot be chosen)",
                        TLS12_SUITES.map(|(n, _)| n).join(", ")
                    ),
                ));
            };
            cipher_suites.push(*name);
        }
        let mut curve_preferences = Vec::new();
        for c in t.curve_preferences.unwrap_or_default() {
            let name = match c.as_str() {
                "X25519" => "X25519",
                "CurveP256" => "CurveP256",
                "CurveP384" => "CurveP384",
                _ => {
                    return Err((
                        "tls_server_config.curve_preferences",
                        format!(
                            "{c} is not available (rustls implements X25519, CurveP256, CurveP384)"
                        ),
                    ))
                }
            };
            curve_preferences.push(name);
        }
        Ok(TlsServerConfig {
            cert,
            key,
            client_auth_type,
            client_ca,
            client_allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            curve_preferences,
            prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
        })
    }

    /// The bytes of the certificate, key and CA, read now.
    fn read_material(&self) -> Result<Material, TlsError> {
        let cert = self.cert.bytes()?;
        // A certificate file without a certificate is named before a missing key.
        parse_certs(&cert, self.cert.name())?;
        Ok(Material {
            cert,
            key: self.key.bytes()?,
            ca: self.client_ca.as_ref().map(Pem::bytes).transpose()?,
        })
    }

    /// Build the rustls server configuration from material read by [`Self::read_material`].
    fn build(&self, m: &Material) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = parse_certs(&m.cert, self.cert.name())?;
        let key = rustls_pemfile::private_key(&mut m.key.as_slice())
            .map_err(|source| TlsError::Pem {
                path: self.key.name(),
                source,
            })?
            .ok_or_else(|| TlsError::NoPrivateKey {
                path: self.key.name(),
            })?;
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let mut suites: Vec<_> = provider
                .cipher_suites
                .iter()
                .copied()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .collect();
            for name in &self.cipher_suites {
                if let Some((_, s)) = TLS12_SUITES.iter().find(|(n, _)| n == name) {
                    suites.push(*s);
                }
            }
            provider.cipher_suites = suites;
        }
        if !self.curve_preferences.is_empty() {
            provider.kx_groups = self
                .curve_preferences
                .iter()
                .filter_map(|c| kx_group(c))
                .collect();
        }
        let provider = Arc::new(provider);
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        if self.max_version >= TlsVersion::TLS13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.min_version <= TlsVersion::TLS12 {
            versions.push(&rustls::version::TLS12);
        }
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(TlsError::Versions)?;
        let roots = match (&self.client_ca, &m.ca) {
            (Some(pem), Some(data)) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in parse_certs(data, pem.name())? {
                    roots.add(c).map_err(|source| TlsError::CaCertificate {
                        path: pem.name(),
                        source,
                    })?;
                }
                Some(Arc::new(roots))
            }
            _ => None,
        };
        let auth = self.client_auth_type;
        let verifier: Option<Arc<dyn ClientCertVerifier>> = match auth {
            ClientAuthType::NoClientCert => None,
            ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => {
                Some(Arc::new(AnyClientCert {
                    mandatory: auth == ClientAuthType::RequireAnyClientCert,
                    provider: Arc::clone(&provider),
                }))
            }
            ClientAuthType::VerifyClientCertIfGiven
            | ClientAuthType::RequireAndVerifyClientCert => {
                let roots = roots.ok_or(TlsError::NoClientCa(auth.name()))?;
                let b = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots,
                    Arc::clone(&provider),
                );
                let b = if auth == ClientAuthType::VerifyClientCertIfGiven {
                    b.allow_unauthenticated()
                } else {
                    b
                };
                Some(b.build().map_err(TlsError::ClientVerifier)?)
            }
        };
        let verifier = match verifier {
            Some(v) if !self.client_allowed_sans.is_empty() => Some(Arc::new(AllowedSans {
                inner: v,
                allowed: self.client_allowed_sans.clone(),
            })
                as Arc<dyn ClientCertVerifier>),
            v => v,
        };
        let builder = match verifier {
            None => builder.with_no_client_auth(),
            Some(v) => builder.with_client_cert_verifier(v),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(TlsError::CertificateKey)?;
        config.ignore_client_order = self.prefer_server_cipher_suites;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl Pem {
    fn bytes(&self) -> Result<Vec<u8>, TlsError> {
        match self {
            Pem::File(p) => std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.clone(),
                source,
            }),
            Pem::Inline(t) => Ok(t.as_bytes().to_vec()),
        }
    }

    /// The name errors use: the file, or `(inline)`.
    fn name(&self) -> PathBuf {
        match self {
            Pem::File(p) => p.clone(),
            Pem::Inline(_) => PathBuf::from("(inline PEM)"),
        }
    }
}

fn parse_certs(data: &[u8], name: PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut &data[..]).collect();
    let certs = certs.map_err(|source| TlsError::Pem {
        path: name.clone(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: name });
    }
    Ok(certs)
}

/// What the TLS configuration was built from; compared to notice rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Option<Vec<u8>>,
}

/// How often, at most, the certificate files are read again to notice a rotation.
pub const TLS_RECHECK: Duration = Duration::from_secs(1);

/// The current rustls configuration, rebuilt when the certificate, key or CA files change.
#[derive(Debug)]
pub struct TlsReloader {
    settings: TlsServerConfig,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    material: Material,
    config: Arc<rustls::ServerConfig>,
    checked: Instant,
    /// Material that failed to load, so that a bad pair on disk is logged once, not per
    /// handshake.
    rejected: Option<Material>,
}

impl TlsReloader {
    pub fn new(settings: TlsServerConfig) -> Result<Self, TlsError> {
        let material = settings.read_material()?;
        let config = settings.build(&material)?;
        Ok(TlsReloader {
            settings,
            state: Mutex::new(Loaded {
                material,
                config,
                checked: Instant::now(),
                rejected: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The configuration to use, without reading the disk: `None` when a check is due (call
    /// [`Self::refresh`], which reads files, on a blocking thread).
    pub fn current_if_fresh(&self) -> Option<Arc<rustls::ServerConfig>> {
        let s = self.lock();
        (s.checked.elapsed() < TLS_RECHECK).then(|| Arc::clone(&s.config))
    }

    /// Read the files again and rebuild if their content changed; keep the previous
    /// configuration (and log why) if the new files do not load.
    pub fn refresh(&self) -> Arc<rustls::ServerConfig> {
        let mut s = self.lock();
        if s.checked.elapsed() < TLS_RECHECK {
            return Arc::clone(&s.config);
        }
        s.checked = Instant::now();
        let material = match self.settings.read_material() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "TLS files unreadable; keeping the certificate in use");
                return Arc::clone(&s.config);
            }
        };
        if material == s.material || s.rejected.as_ref() == Some(&material) {
            return Arc::clone(&s.config);
        }
        match self.settings.build(&material) {
            Ok(config) => {
                tracing::info!("TLS certificate, key or client CA changed on disk: reloaded");
                s.material = material;
                s.config = config;
                s.rejected = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "new TLS files do not load; keeping the certificate in use");
                s.rejected = Some(material);
            }
        }
        Arc::clone(&s.config)
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is asked for (and with
/// the second, required), its signature over the handshake is checked, its chain is not.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier, the client certificate must carry one of
/// the allowed SANs (DNS names, e-mail addresses, IP addresses, URIs), as exporter-toolkit
/// checks them.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

/// The SAN values of a certificate as strings.
fn sans(der: &[u8]) -> Result<Vec<String>, rustls::Error> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| rustls::Error::General(format!("cannot parse the client certificate: {e}")))?;
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                    out.push((*s).to_string())
                }
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        out.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        out.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let found = sans(end_entity.as_ref())?;
        if found.iter().any(|s| self.allowed.contains(s)) {
            Ok(ok)
        } else {
            tracing::debug!(?found, "client certificate has none of client_allowed_sans");
            Err(rustls::Error::General(
                "client certificate has none of the allowed SANs".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refusals_read_as_documented() {
        let dir = std::env::temp_dir().join(format!("herald-webcfg-msg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("web.toml");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let refused = |text: String| {
            std::fs::write(&p, text).unwrap();
            WebConfig::load(&p).unwrap_err().to_string()
        };
        let file = p.display();
        assert_eq!(
            refused("[basic_auth_users]\n\"a:b\" = \"x\"\n".into()),
            format!("web config file {file}: basic_auth_users: user name \"a:b\" must be non-empty and contain no ':'")
        );
        assert_eq!(
            refused("[basic_auth_users]\nprom = \"x\"\n".into()),
            format!("web config file {file}: basic_auth_users.prom: not a bcrypt hash (expected $2y$/$2b$/$2a$…)")
        );
        assert_eq!(
            refused("[tls_server_config]\ncert_file = \"/nonexistent.crt\"\nkey_file = \"/k\"\n".into()),
            format!("web config file {file}: cannot read /nonexistent.crt: No such file or directory (os error 2)")
        );
        assert_eq!(
            refused(format!(
                "[tls_server_config]\ncert_file = {empty:?}\nkey_file = \"/k\"\n"
            )),
            format!(
                "web config file {file}: {}: no certificate found",
                empty.display()
            )
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        let dir = std::env::temp_dir().join(format!("herald-webcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("web.toml");
        std::fs::write(&p, "[basic_auth_users]\nprom = \"plaintext\"\n").unwrap();
        let e = WebConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a bcrypt hash"), "{e}");
        std::fs::write(&p, "bogus = 1\n").unwrap();
        assert!(WebConfig::load(&p)
            .unwrap_err()
            .to_string()
            .contains("bogus"));
        std::fs::write(
            &p,
            "[tls_server_config]\ncert_file = \"/nonexistent.crt\"\nkey_file = \"/nonexistent.key\"\n",
        )
        .unwrap();
        let e = WebConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("/nonexistent.crt"), "{e}");
        let e = WebConfig::load(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
    /// Every exporter-toolkit key ipvs-herald cannot honour, and unknown keys, are refused by
    /// name, in the YAML format as in TOML.
    #[test]
    fn yaml_keys_that_cannot_be_honoured_are_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("herald-webcfg-yaml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("web-config.yml");
        let refused = |text: &str| {
            std::fs::write(&p, text).unwrap();
            WebConfig::load(&p).unwrap_err().to_string()
        };
        let file = p.display();
        let tls = "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n";
        let cases: &[(&str, String, &str)] = &[
            ("unknown top-level key", "bogus: 1\n".into(), "unknown field `bogus`"),
            ("unknown TLS key", format!("{tls}  bogus: 1\n"), "unknown field `bogus`"),
            ("unknown HTTP key", "http_server_config:\n  bogus: 1\n".into(), "unknown field `bogus`"),
            ("rate_limit", "rate_limit:\n  burst: 1\n  interval: 1s\n".into(), "rate_limit: not supported"),
            ("http2", "http_server_config:\n  http2: true\n".into(), "http_server_config.http2: true is not supported"),
            ("header not allowed", "http_server_config:\n  headers:\n    Server: x\n".into(), "HTTP header \"Server\" can not be configured"),
            ("header value", "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(), "invalid value \"allow\" for X-Frame-Options"),
            ("TLS10", format!("{tls}  min_version: TLS10\n"), "tls_server_config.min_version: TLS10 is not supported"),
            ("TLS11", format!("{tls}  max_version: TLS11\n"), "tls_server_config.max_version: TLS11 is not supported"),
            ("min above max", format!("{tls}  min_version: TLS13\n  max_version: TLS12\n"), "tls_server_config.max_version: is below min_version"),
            ("CBC suite", format!("{tls}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"), "tls_server_config.cipher_suites: TLS_RSA_WITH_AES_128_CBC_SHA is not available"),
            ("TLS 1.3 suite", format!("{tls}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"), "TLS_AES_128_GCM_SHA256 is not available"),
            ("P-521", format!("{tls}  curve_preferences: [CurveP521]\n"), "tls_server_config.curve_preferences: CurveP521 is not available"),
            ("client auth name", format!("{tls}  client_auth_type: Maybe\n"), "tls_server_config.client_auth_type: unknown value \"Maybe\""),
            ("CA without policy", format!("{tls}  client_ca_file: ca.crt\n"), "tls_server_config.client_ca_file: client CAs are configured without a client_auth_type"),
            ("SANs without required cert", format!("{tls}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  client_allowed_sans: [a]\n"), "tls_server_config.client_allowed_sans: requires client_auth_type"),
            ("cert twice", "tls_server_config:\n  cert_file: a.crt\n  cert: x\n  key_file: a.key\n".into(), "tls_server_config.cert_file: give tls_server_config.cert_file or cert, not both"),
            ("no key", "tls_server_config:\n  cert_file: a.crt\n".into(), "tls_server_config: missing one of key or key_file"),
            ("bad hash", "basic_auth_users:\n  prom: plain\n".into(), "basic_auth_users.prom: not a bcrypt hash"),
        ];
        for (name, text, want) in cases {
            let e = refused(text);
            assert!(
                e.starts_with(&format!("web config file {file}: ")),
                "{name}: {e}"
            );
            assert!(e.contains(want), "{name}: {e:?} lacks {want:?}");
        }
        // Relative paths are taken from the file's directory, as exporter-toolkit does.
        let e = refused(tls);
        assert!(
            e.contains(&format!("cannot read {}", dir.join("a.crt").display())),
            "{e}"
        );
        // An empty YAML file is an empty configuration.
        std::fs::write(&p, "").unwrap();
        assert_eq!(WebConfig::load(&p).unwrap(), WebConfig::default());
        // Allowed headers pass.
        std::fs::write(&p, "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n").unwrap();
        assert_eq!(WebConfig::load(&p).unwrap().headers.len(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}
