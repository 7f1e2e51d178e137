//! The `[exporter]` configuration section: listen address, HTTP limits, cardinality controls,
//! connection-table bounds and the web (TLS / basic auth) configuration file.
//!
//! Every key is optional; [`Config::default`] is what an empty section means. The keys and their
//! defaults are documented in `exporter/README.md` ("Configuration"). Values that cannot be
//! right (a zero timeout, a malformed service spec, an include rule that can never match) are
//! refused when the file is loaded, with a message naming the key.

use crate::webconfig::{WebConfig, WebConfigError};
use herald_shared::model::{AddressFamily, Protocol, ServiceKey};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `[exporter]` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on. Default `[::]:9639` (all addresses, IPv4 and IPv6 on
    /// a dual-stack host).
    pub listen: SocketAddr,
    /// Path of the metrics endpoint. Default `/metrics`.
    pub metrics_path: String,
    /// Path of the liveness endpoint (200 while the process serves). Default `/-/healthy`.
    pub health_path: String,
    /// Path of the readiness endpoint (200 once serving, 503 while draining). Default `/-/ready`.
    pub ready_path: String,
    /// Web configuration file (TLS, headers and basic auth): node_exporter's YAML file when the
    /// name ends in `.yml`/`.yaml`, else TOML with the same keys (see the README and
    /// `crate::webconfig`). Default: none (plain HTTP, no authentication).
    pub web_config_file: Option<PathBuf>,
    /// HTTP limits and timeouts.
    pub limits: Limits,
    /// Export per-destination (real server) series. Default `true`. With `false` only service,
    /// global and connection-table-per-service series are exported.
    pub per_destination: bool,
    /// Only services matching at least one of these rules are exported (empty = all).
    pub include: Vec<ServiceMatch>,
    /// Services matching any of these rules are not exported (wins over `include`).
    pub exclude: Vec<ServiceMatch>,
    /// Friendly names, exported as the `name` label on every series of the service:
    /// `"tcp/192.0.2.1:80" = "web"`, `"fwm/7" = "mail"`, `"fwm6/7" = "mail-v6"`.
    pub service_names: BTreeMap<ServiceSpec, String>,
    /// Connection-table aggregation.
    pub conn_table: ConnTableConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 9639)),
            metrics_path: "/metrics".to_string(),
            health_path: "/-/healthy".to_string(),
            ready_path: "/-/ready".to_string(),
            web_config_file: None,
            limits: Limits::default(),
            per_destination: true,
            include: Vec::new(),
            exclude: Vec::new(),
            service_names: BTreeMap::new(),
            conn_table: ConnTableConfig::default(),
        }
    }
}

/// `[exporter.limits]`: bounds on what clients can make the server do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections at most; further connections wait in the kernel's accept queue.
    /// Default 256; 1 to [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Metrics requests processed at once; further ones wait (within their timeout) for a slot.
    /// Default 8; 1 to [`MAX_CONCURRENT_SCRAPES`].
    pub max_concurrent_scrapes: usize,
    /// A client must send the complete request head within this time or is disconnected.
    /// Default `"5s"`. This and every other duration of the section: at most
    /// [`MAX_DURATION`] (one hour).
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub header_read_timeout: Duration,
    /// A TLS handshake must finish within this time. Default `"5s"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub tls_handshake_timeout: Duration,
    /// Upper bound on the time spent answering one request. Default `"30s"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub request_timeout: Duration,
    /// Scrape timeout when the request has no `X-Prometheus-Scrape-Timeout-Seconds` header.
    /// Default `"10s"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub default_scrape_timeout: Duration,
    /// Subtracted from the scrape timeout so that the answer reaches Prometheus in time.
    /// Default `"500ms"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub scrape_timeout_offset: Duration,
    /// On shutdown, open connections get this long to finish before they are closed. Default `"5s"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub shutdown_drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_concurrent_scrapes: 8,
            header_read_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            default_scrape_timeout: Duration::from_secs(10),
            scrape_timeout_offset: Duration::from_millis(500),
            shutdown_drain: Duration::from_secs(5),
        }
    }
}

/// The longest value of every `[exporter.limits]` and `[exporter.conn_table]` duration: one
/// hour.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The most `limits.max_connections`: each is a task and a file descriptor.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The most `limits.max_concurrent_scrapes`: each holds one of the runtime's blocking threads
/// (512 by default).
pub const MAX_CONCURRENT_SCRAPES: usize = 512;

/// `[exporter.conn_table]`: counting the connection table by service, destination and state.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnTableConfig {
    /// Read and aggregate the connection table at each scrape. Default `true`.
    pub enabled: bool,
    /// Stop after this many entries (0 = no bound). Default 1 000 000.
    pub max_entries: u64,
    /// Stop after this long (`"0s"` = no bound other than the scrape timeout). Default `"2s"`.
    #[serde(deserialize_with = "herald_shared::duration::duration")]
    pub max_duration: Duration,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            enabled: true,
            max_entries: 1_000_000,
            max_duration: Duration::from_secs(2),
        }
    }
}

/// Why a configuration value is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("exporter.{key}: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Check values that deserialisation alone cannot (positive timeouts, paths, limits).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message: message.to_string(),
            })
        };
        for (key, path) in [
            ("metrics_path", &self.metrics_path),
            ("health_path", &self.health_path),
            ("ready_path", &self.ready_path),
        ] {
            if !path.starts_with('/') {
                return bad(key, "must start with '/'");
            }
            if path == "/" {
                return bad(key, "\"/\" is the landing page; choose another path");
            }
        }
        if self.metrics_path == self.health_path
            || self.metrics_path == self.ready_path
            || self.health_path == self.ready_path
        {
            return bad(
                "metrics_path",
                "metrics, health and ready paths must differ",
            );
        }
        let l = &self.limits;
        if !(1..=MAX_CONNECTIONS).contains(&l.max_connections) {
            return bad(
                "limits.max_connections",
                &format!("must be 1 to {MAX_CONNECTIONS}"),
            );
        }
        if !(1..=MAX_CONCURRENT_SCRAPES).contains(&l.max_concurrent_scrapes) {
            return bad(
                "limits.max_concurrent_scrapes",
                &format!("must be 1 to {MAX_CONCURRENT_SCRAPES}"),
            );
        }
        for (key, d) in [
            ("limits.header_read_timeout", l.header_read_timeout),
            ("limits.tls_handshake_timeout", l.tls_handshake_timeout),
            ("limits.request_timeout", l.request_timeout),
            ("limits.default_scrape_timeout", l.default_scrape_timeout),
        ] {
            if d.is_zero() || d > MAX_DURATION {
                return bad(
                    key,
                    &format!(
                        "is {}s; it must be more than 0s and at most 1h",
                        d.as_secs_f64()
                    ),
                );
            }
        }
        for (key, d) in [
            ("limits.scrape_timeout_offset", l.scrape_timeout_offset),
            ("limits.shutdown_drain", l.shutdown_drain),
            ("conn_table.max_duration", self.conn_table.max_duration),
        ] {
            if d > MAX_DURATION {
                return bad(
                    key,
                    &format!("is {}s; it must be at most 1h", d.as_secs_f64()),
                );
            }
        }
        for (spec, name) in &self.service_names {
            if name.is_empty() {
                return bad(
                    &format!("service_names.\"{spec}\""),
                    "the name must not be empty",
                );
            }
        }
        Ok(())
    }
}

impl Config {
    /// Load the web configuration file as the server does at start, certificates and keys
    /// included: what `serve` would refuse is refused here, when the configuration is loaded.
    pub fn web_config(&self) -> Result<WebConfig, WebConfigError> {
        match &self.web_config_file {
            Some(p) => WebConfig::load(p),
            None => Ok(WebConfig::default()),
        }
    }
}

/// A service written as a string: `tcp/192.0.2.1:80`, `udp/[2001:db8::1]:53`, `sctp/…`,
/// `fwm/7` (IPv4 fwmark service), `fwm6/7` (IPv6 fwmark service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ServiceSpec(pub ServiceKey);

impl fmt::Display for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => write!(f, "{}/{}", protocol, SocketAddr::new(address, port)),
            ServiceKey::Fwmark {
                family: AddressFamily::Inet,
                mark,
            } => write!(f, "fwm/{mark}"),
            ServiceKey::Fwmark {
                family: AddressFamily::Inet6,
                mark,
            } => write!(f, "fwm6/{mark}"),
        }
    }
}

/// Why a service spec (`tcp/192.0.2.1:80`, `fwm/7`) is refused; `spec` is the whole string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceSpecError {
    #[error(
        "service {spec:?}: expected PROTOCOL/ADDRESS:PORT (tcp/192.0.2.1:80) or fwm/MARK, fwm6/MARK"
    )]
    Form { spec: String },
    #[error("service {spec:?}: fwmark {mark:?} is not a 32-bit number")]
    Fwmark { spec: String, mark: String },
    #[error("service {spec:?}: unknown protocol {protocol:?} (tcp, udp, sctp, fwm, fwm6)")]
    Protocol { spec: String, protocol: String },
    #[error(
        "service {spec:?}: {address:?} is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)"
    )]
    Address { spec: String, address: String },
}

impl FromStr for ServiceSpec {
    type Err = ServiceSpecError;

    fn from_str(s: &str) -> Result<Self, ServiceSpecError> {
        let Some((kind, rest)) = s.split_once('/') else {
            return Err(ServiceSpecError::Form {
                spec: s.to_string(),
            });
        };
        let fwmark = |family| {
            rest.parse::<u32>()
                .map(|mark| ServiceSpec(ServiceKey::Fwmark { family, mark }))
                .map_err(|_| ServiceSpecError::Fwmark {
                    spec: s.to_string(),
                    mark: rest.to_string(),
                })
        };
        let protocol = match kind.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            "fwm" => return fwmark(AddressFamily::Inet),
            "fwm6" => return fwmark(AddressFamily::Inet6),
            other => {
                return Err(ServiceSpecError::Protocol {
                    spec: s.to_string(),
                    protocol: other.to_string(),
                })
            }
        };
        let sa: SocketAddr = rest.parse().map_err(|_| ServiceSpecError::Address {
            spec: s.to_string(),
            address: rest.to_string(),
        })?;
        Ok(ServiceSpec(ServiceKey::Addr {
            protocol,
            address: sa.ip(),
            port: sa.port(),
        }))
    }
}

impl TryFrom<String> for ServiceSpec {
    type Error = ServiceSpecError;
    fn try_from(s: String) -> Result<Self, ServiceSpecError> {
        s.parse()
    }
}

/// Protocol as used by include/exclude rules: the three transport protocols, or `fwm` for
/// firewall-mark services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchProtocol {
    Tcp,
    Udp,
    Sctp,
    Fwm,
}

/// One include/exclude rule. All given fields must match; a rule must give at least one.
/// `address` is an address or a CIDR (`192.0.2.0/24`, `2001:db8::/32`); `fwmark` cannot be
/// combined with `address` or `port` (fwmark services have neither).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawServiceMatch")]
pub struct ServiceMatch {
    pub address: Option<IpNet>,
    pub port: Option<u16>,
    pub protocol: Option<MatchProtocol>,
    pub fwmark: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceMatch {
    address: Option<String>,
    port: Option<u16>,
    protocol: Option<MatchProtocol>,
    fwmark: Option<u32>,
}

/// Why an include/exclude rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceMatchError {
    #[error("address {0:?} is neither an IP address nor a CIDR prefix")]
    Address(String),
    #[error("a service rule needs at least one of address, port, protocol, fwmark")]
    Empty,
    #[error("fwmark cannot be combined with address or port: fwmark services have neither, the rule could never match")]
    FwmarkWithAddress,
    #[error("fwmark with protocol other than \"fwm\" could never match")]
    FwmarkWithProtocol,
    #[error("protocol \"fwm\" cannot be combined with address or port")]
    FwmWithAddress,
}

impl TryFrom<RawServiceMatch> for ServiceMatch {
    type Error = ServiceMatchError;
    fn try_from(r: RawServiceMatch) -> Result<Self, ServiceMatchError> {
        let address = match r.address {
            None => None,
            Some(a) => Some(match a.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => IpNet::from(
                    a.parse::<IpAddr>()
                        .map_err(|_| ServiceMatchError::Address(a.clone()))?,
                ),
            }),
        };
        if address.is_none() && r.port.is_none() && r.protocol.is_none() && r.fwmark.is_none() {
            return Err(ServiceMatchError::Empty);
        }
        if r.fwmark.is_some() && (address.is_some() || r.port.is_some()) {
            return Err(ServiceMatchError::FwmarkWithAddress);
        }
        if r.fwmark.is_some() && matches!(r.protocol, Some(p) if p != MatchProtocol::Fwm) {
            return Err(ServiceMatchError::FwmarkWithProtocol);
        }
        if r.protocol == Some(MatchProtocol::Fwm) && (address.is_some() || r.port.is_some()) {
            return Err(ServiceMatchError::FwmWithAddress);
        }
        Ok(ServiceMatch {
            address,
            port: r.port,
            protocol: r.protocol,
            fwmark: r.fwmark,
        })
    }
}

/// What a rule is matched against: a service key, or a connection-table group (which is like an
/// address service; `protocol` is `None` for persistence templates).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Addr {
        protocol: Option<Protocol>,
        address: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
    },
}

impl From<&ServiceKey> for Target {
    fn from(k: &ServiceKey) -> Self {
        match *k {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => Target::Addr {
                protocol: Some(protocol),
                address,
                port,
            },
            ServiceKey::Fwmark { mark, .. } => Target::Fwmark { mark },
        }
    }
}

impl ServiceMatch {
    pub(crate) fn matches(&self, t: Target) -> bool {
        match t {
            Target::Addr {
                protocol,
                address,
                port,
            } => {
                if self.fwmark.is_some() {
                    return false;
                }
                if let Some(p) = self.protocol {
                    let want = match p {
                        MatchProtocol::Tcp => Protocol::Tcp,
                        MatchProtocol::Udp => Protocol::Udp,
                        MatchProtocol::Sctp => Protocol::Sctp,
                        MatchProtocol::Fwm => return false,
                    };
                    if protocol != Some(want) {
                        return false;
                    }
                }
                if let Some(net) = self.address {
                    if !net.contains(&address) {
                        return false;
                    }
                }
                self.port.is_none_or(|p| p == port)
            }
            Target::Fwmark { mark } => {
                self.address.is_none()
                    && self.port.is_none()
                    && matches!(self.protocol, None | Some(MatchProtocol::Fwm))
                    && self.fwmark.is_none_or(|m| m == mark)
            }
        }
    }
}

impl Config {
    /// Whether a service (or connection-table group) passes the include/exclude rules.
    pub(crate) fn selected(&self, t: Target) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.matches(t)))
            && !self.exclude.iter().any(|r| r.matches(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, toml::de::Error> {
        toml::from_str::<Config>(s)
    }

    /// The message a refused section gets.
    fn refused(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn empty_section_is_default_and_valid() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.to_string(), "[::]:9639");
        c.validate().unwrap();
    }

    #[test]
    fn full_section_parses() {
        let c = parse(
            r#"
            listen = "127.0.0.1:9100"
            metrics_path = "/m"
            per_destination = false
            web_config_file = "/etc/ipvs-herald/web.toml"
            [limits]
            max_concurrent_scrapes = 2
            [conn_table]
            enabled = false
            max_entries = 10
            [[include]]
            address = "192.0.2.0/24"
            protocol = "tcp"
            [[include]]
            fwmark = 7
            [[exclude]]
            address = "192.0.2.9"
            port = 443
            [service_names]
            "tcp/192.0.2.1:80" = "web"
            "fwm6/7" = "mail6"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert!(!c.per_destination && !c.conn_table.enabled);
        assert_eq!(c.include.len(), 2);
        assert_eq!(c.service_names.len(), 2);
        let web: ServiceSpec = "tcp/192.0.2.1:80".parse().unwrap();
        assert_eq!(c.service_names.get(&web).map(String::as_str), Some("web"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_names() {
        assert!(refused("bogus = 1").contains("bogus"));
        assert!(refused("[limits]\nfoo = 1").contains("foo"));
        let e = refused("[service_names]\n\"tcp/192.0.2.1\" = \"x\"");
        assert!(e.contains("ADDRESS:PORT"), "{e}");
        let e = refused("[[include]]\nfwmark = 1\nport = 2");
        assert!(e.contains("fwmark cannot be combined"), "{e}");
        let e = refused("[[exclude]]\n");
        assert!(e.contains("at least one"), "{e}");
        let e = refused("[[exclude]]\naddress = \"300.1.1.1\"");
        assert!(e.contains("300.1.1.1"), "{e}");
        let mut c = Config::default();
        c.limits.max_connections = 1 << 62;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_connections"));
        let mut c = Config::default();
        c.limits.max_concurrent_scrapes = 513;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.limits.request_timeout = Duration::ZERO;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout"));
        let c = Config {
            metrics_path: "metrics".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn every_duration_is_at_most_an_hour() {
        for key in [
            "header_read_timeout",
            "tls_handshake_timeout",
            "request_timeout",
            "default_scrape_timeout",
            "scrape_timeout_offset",
            "shutdown_drain",
        ] {
            parse(&format!("[limits]\n{key} = \"1h\"\n"))
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{key} = 1h: {e}"));
            for past in ["1h 1ms", "500000000000y"] {
                let e = parse(&format!("[limits]\n{key} = {past:?}\n"))
                    .unwrap()
                    .validate()
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.starts_with(&format!("exporter.limits.{key}: ")) && e.contains("at most 1h"),
                    "{e}"
                );
            }
        }
        parse("[conn_table]\nmax_duration = \"1h\"\n")
            .unwrap()
            .validate()
            .unwrap();
        let e = parse("[conn_table]\nmax_duration = \"500000000000y\"\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("exporter.conn_table.max_duration: "), "{e}");
    }

    #[test]
    fn service_spec_round_trips() {
        for s in [
            "tcp/192.0.2.1:80",
            "udp/[2001:db8::1]:53",
            "sctp/198.51.100.7:3868",
            "fwm/7",
            "fwm6/4294967295",
        ] {
            let spec: ServiceSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        for bad in [
            "",
            "tcp",
            "icmp/192.0.2.1:1",
            "fwm/x",
            "fwm/-1",
            "tcp/192.0.2.1:99999",
            "tcp/2001:db8::1:80",
        ] {
            assert!(bad.parse::<ServiceSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_read_as_documented() {
        let spec = |s: &str| s.parse::<ServiceSpec>().unwrap_err().to_string();
        assert_eq!(
            spec("tcp"),
            "service \"tcp\": expected PROTOCOL/ADDRESS:PORT (tcp/192.0.2.1:80) or fwm/MARK, fwm6/MARK"
        );
        assert_eq!(
            spec("fwm/x"),
            "service \"fwm/x\": fwmark \"x\" is not a 32-bit number"
        );
        assert_eq!(
            spec("ICMP/1.2.3.4:1"),
            "service \"ICMP/1.2.3.4:1\": unknown protocol \"icmp\" (tcp, udp, sctp, fwm, fwm6)"
        );
        assert_eq!(
            spec("tcp/2001:db8::1:80"),
            "service \"tcp/2001:db8::1:80\": \"2001:db8::1:80\" is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)"
        );
        let rule = |address: Option<&str>, port, protocol, fwmark| {
            ServiceMatch::try_from(RawServiceMatch {
                address: address.map(str::to_string),
                port,
                protocol,
                fwmark,
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            rule(Some("x"), None, None, None),
            "address \"x\" is neither an IP address nor a CIDR prefix"
        );
        assert_eq!(
            rule(None, None, None, None),
            "a service rule needs at least one of address, port, protocol, fwmark"
        );
        assert_eq!(
            rule(None, Some(1), None, Some(7)),
            "fwmark cannot be combined with address or port: fwmark services have neither, the rule could never match"
        );
        assert_eq!(
            rule(None, None, Some(MatchProtocol::Tcp), Some(7)),
            "fwmark with protocol other than \"fwm\" could never match"
        );
        assert_eq!(
            rule(None, Some(1), Some(MatchProtocol::Fwm), None),
            "protocol \"fwm\" cannot be combined with address or port"
        );
        let mut c = Config::default();
        c.conn_table.max_duration = Duration::from_millis(3_600_500);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "exporter.conn_table.max_duration: is 3600.5s; it must be at most 1h"
        );
        c = Config::default();
        c.limits.request_timeout = Duration::ZERO;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "exporter.limits.request_timeout: is 0s; it must be more than 0s and at most 1h"
        );
    }

    #[test]
    fn rules_match_as_documented() {
        let c = parse(
            r#"
            [[include]]
            address = "192.0.2.0/24"
            [[include]]
            protocol = "fwm"
            [[exclude]]
            port = 22
            [[exclude]]
            fwmark = 9
            "#,
        )
        .unwrap();
        let a = |p, addr: &str, port| Target::Addr {
            protocol: Some(p),
            address: addr.parse().unwrap(),
            port,
        };
        assert!(c.selected(a(Protocol::Tcp, "192.0.2.1", 80)));
        assert!(c.selected(a(Protocol::Sctp, "192.0.2.1", 80)));
        assert!(!c.selected(a(Protocol::Tcp, "192.0.2.1", 22)));
        assert!(!c.selected(a(Protocol::Tcp, "198.51.100.1", 80)));
        assert!(c.selected(Target::Fwmark { mark: 1 }));
        assert!(!c.selected(Target::Fwmark { mark: 9 }));
        assert!(Config::default().selected(Target::Fwmark { mark: 9 }));
    }
}
