//! The web configuration file: TLS and HTTP basic authentication for the metrics server.
//!
//! The file is TOML with the same keys as node_exporter's `web-config.yml` (exporter-toolkit),
//! so an existing YAML file converts key for key:
//!
//! ```toml
//! [tls_server_config]
//! cert_file = "/etc/ipvs-herald/tls.crt"
//! key_file = "/etc/ipvs-herald/tls.key"
//! # client_auth_type = "RequireAndVerifyClientCert"   # or "NoClientCert" (default)
//! # client_ca_file = "/etc/ipvs-herald/clients-ca.crt"
//! # min_version = "TLS13"                               # or "TLS12" (default)
//!
//! [basic_auth_users]
//! prometheus = "$2y$10$…"   # bcrypt hash, e.g. from `htpasswd -nBC 10 prometheus`
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Why the web configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("web config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("web config file {path}: basic_auth_users: user name {user:?} must be non-empty and contain no ':'")]
    UserName { path: PathBuf, user: String },
    #[error("web config file {path}: basic_auth_users.{user}: not a bcrypt hash (expected $2y$/$2b$/$2a$…)")]
    PasswordHash { path: PathBuf, user: String },
    #[error("web config file {path}: {source}")]
    Tls { path: PathBuf, source: TlsError },
}

/// Why the TLS settings of `[tls_server_config]` cannot be used.
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
    #[error("client_auth_type RequireAndVerifyClientCert needs client_ca_file")]
    NoClientCa,
    #[error("client verifier: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    #[error("certificate/key mismatch or unusable: {0}")]
    CertificateKey(#[source] rustls::Error),
}

/// The whole web configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// TLS; absent = plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    /// User name → bcrypt hash; empty = no authentication.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `[tls_server_config]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain (server certificate first).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// `NoClientCert` (default) or `RequireAndVerifyClientCert`.
    #[serde(default)]
    pub client_auth_type: ClientAuthType,
    /// PEM CA certificates that client certificates must chain to (required with
    /// `RequireAndVerifyClientCert`).
    pub client_ca_file: Option<PathBuf>,
    /// `TLS12` (default) or `TLS13`.
    #[serde(default)]
    pub min_version: TlsVersion,
}

/// Client certificate policy (the exporter-toolkit names).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ClientAuthType {
    #[default]
    NoClientCert,
    RequireAndVerifyClientCert,
}

/// Lowest TLS version accepted.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum TlsVersion {
    #[default]
    TLS12,
    TLS13,
}

impl WebConfig {
    /// Load and check a web configuration file (certificates readable, hashes well-formed).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: WebConfig = toml::from_str(&text).map_err(|source| WebConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        for (user, hash) in &cfg.basic_auth_users {
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
        if let Some(t) = &cfg.tls_server_config {
            t.acceptor().map_err(|source| WebConfigError::Tls {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(cfg)
    }

    /// A TLS acceptor when TLS is configured.
    pub fn tls_acceptor(&self) -> Result<Option<TlsAcceptor>, TlsError> {
        self.tls_server_config
            .as_ref()
            .map(TlsServerConfig::acceptor)
            .transpose()
    }
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs = certs.map_err(|source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl TlsServerConfig {
    /// Build the rustls server configuration.
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let certs = read_certs(&self.cert_file)?;
        let key_data = read(&self.key_file)?;
        let key = rustls_pemfile::private_key(&mut key_data.as_slice())
            .map_err(|source| TlsError::Pem {
                path: self.key_file.clone(),
                source,
            })?
            .ok_or_else(|| TlsError::NoPrivateKey {
                path: self.key_file.clone(),
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::TLS12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::TLS13 => &[&rustls::version::TLS13],
        };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(TlsError::Versions)?;
        // A CA file that is named is read and checked even when client certificates are not
        // asked for, so that a broken file is found when the configuration is loaded, not when
        // someone turns client authentication on.
        let roots = match &self.client_ca_file {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots.add(c).map_err(|source| TlsError::CaCertificate {
                        path: ca.clone(),
                        source,
                    })?;
                }
                Some(roots)
            }
            None => None,
        };
        let builder = match self.client_auth_type {
            ClientAuthType::NoClientCert => builder.with_no_client_auth(),
            ClientAuthType::RequireAndVerifyClientCert => {
                let roots = roots.ok_or(TlsError::NoClientCa)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(TlsError::ClientVerifier)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(TlsError::CertificateKey)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Successful verifications remembered, so that a scrape every few seconds does not cost a
/// bcrypt computation each time (as exporter-toolkit does). Keys are salted SHA-256 digests of
/// `user \0 password`; the salt is random per process.
const AUTH_CACHE_MAX: usize = 256;

/// Checks `Authorization` headers against the configured users.
#[derive(Debug)]
pub(crate) struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Hash verified for unknown users so that they take as long as known ones.
    dummy: String,
    salt: [u8; 32],
    verified: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

impl BasicAuth {
    /// `None` when no users are configured (no authentication).
    pub(crate) fn new(users: &BTreeMap<String, String>) -> Option<Self> {
        if users.is_empty() {
            return None;
        }
        // Same cost as the first configured hash ($2y$NN$…), 10 if unreadable.
        let cost = users
            .values()
            .next()
            .and_then(|h| h.get(4..6))
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|c| (4..=31).contains(c))
            .unwrap_or(10);
        let dummy = bcrypt::hash("ipvs-herald-dummy", cost).unwrap_or_default();
        let mut salt = [0u8; 32];
        // Without randomness the cache is still correct, only its keys are predictable.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        Some(BasicAuth {
            users: users.clone(),
            dummy,
            salt,
            verified: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn cache_key(&self, user: &str, pass: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(pass.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    /// Whether the header value grants access. Costs one bcrypt verification (run it off the
    /// async runtime).
    pub(crate) fn check(&self, header: Option<&str>) -> bool {
        use base64::Engine;
        let Some(h) = header else { return false };
        let Some(b64) = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return false;
        };
        let Some((user, pass)) = text.split_once(':') else {
            return false;
        };
        match self.users.get(user) {
            Some(hash) => {
                let key = self.cache_key(user, pass);
                let mut cache = match self.verified.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if cache.contains(&key) {
                    return true;
                }
                drop(cache);
                let ok = bcrypt::verify(pass, hash).unwrap_or(false);
                if ok {
                    cache = match self.verified.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    if cache.len() >= AUTH_CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(key);
                }
                ok
            }
            None => {
                let _ = bcrypt::verify(pass, &self.dummy);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn basic_auth_accepts_only_the_right_password() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("prom".to_string(), hash)]);
        let auth = BasicAuth::new(&users).unwrap();
        let hdr = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(auth.check(Some(&hdr("prom:s3cret"))));
        // Second time from the cache; a wrong password is never cached as right.
        assert!(auth.check(Some(&hdr("prom:s3cret"))));
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        assert!(!auth.check(Some(&hdr("prom:wrong"))));
        assert!(!auth.check(Some(&hdr("prom:s3cret "))));
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        assert!(!auth.check(Some(&hdr("other:s3cret"))));
        assert!(!auth.check(Some(&hdr("nocolon"))));
        assert!(!auth.check(Some("Basic !!!")));
        assert!(!auth.check(Some("Bearer x")));
        assert!(!auth.check(None));
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }

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
}
