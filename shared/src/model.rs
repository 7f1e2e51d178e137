//! The IPVS domain model: plain data describing everything `ipvsadm` can show.
//!
//! Readers (generic netlink, procfs) produce a [`Snapshot`]; consumers (the exporter, the
//! announcer's health policy, `ipvs-herald dump`) read it. The types derive `serde` so that
//! `ipvs-herald dump --json` has one documented, stable schema (see `docs/dump-json.md`):
//! field names are `snake_case`, enums are lower-case strings, 64-bit counters are JSON integers,
//! and optional fields are `null` rather than absent.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Address family of a service or destination (`AF_INET` / `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    Inet,
    Inet6,
}

impl AddressFamily {
    /// The Linux `AF_*` number.
    pub fn as_raw(self) -> u16 {
        match self {
            AddressFamily::Inet => 2,
            AddressFamily::Inet6 => 10,
        }
    }

    /// From a Linux `AF_*` number.
    pub fn from_raw(af: u16) -> Option<Self> {
        match af {
            2 => Some(AddressFamily::Inet),
            10 => Some(AddressFamily::Inet6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        })
    }
}

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn as_raw(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// From an IP protocol number.
    pub fn from_raw(p: u16) -> Option<Self> {
        match p {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Lower-case name as used in metrics labels and config (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a virtual service: protocol + address + port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    /// `-t`/`-u`/`--sctp-service ADDR:PORT`.
    Addr {
        protocol: Protocol,
        address: IpAddr,
        port: u16,
    },
    /// `-f MARK` (with `-6` for an IPv6 fwmark service).
    Fwmark { family: AddressFamily, mark: u32 },
}

impl ServiceKey {
    /// Address family of the service.
    pub fn family(&self) -> AddressFamily {
        match self {
            ServiceKey::Addr { address, .. } => AddressFamily::of(address),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// `ipvsadm -Ln` style: `TCP  192.0.2.1:80`, `TCP  [2001:db8::1]:80`, `FWM  7` (`FWM  7 IPv6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                address: IpAddr::V4(a),
                port,
            } => write!(f, "{} {}:{}", protocol.as_str().to_uppercase(), a, port),
            ServiceKey::Addr {
                protocol,
                address: IpAddr::V6(a),
                port,
            } => write!(f, "{} [{}]:{}", protocol.as_str().to_uppercase(), a, port),
            ServiceKey::Fwmark {
                family: AddressFamily::Inet,
                mark,
            } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark {
                family: AddressFamily::Inet6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// Service flags (`IP_VS_SVC_F_*`). `raw` keeps every bit the kernel reported, known or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ServiceFlags {
    pub raw: u32,
    /// `IP_VS_SVC_F_PERSISTENT` (`-p`).
    pub persistent: bool,
    /// `IP_VS_SVC_F_HASHED`: the service is in the kernel's service table.
    pub hashed: bool,
    /// `IP_VS_SVC_F_ONEPACKET` (`-o`, UDP only).
    pub one_packet: bool,
    /// `IP_VS_SVC_F_SCHED1` (`-b flag-1`: sh-fallback / mh-fallback).
    pub sched_flag_1: bool,
    /// `IP_VS_SVC_F_SCHED2` (`-b flag-2`: sh-port / mh-port).
    pub sched_flag_2: bool,
    /// `IP_VS_SVC_F_SCHED3` (`-b flag-3`).
    pub sched_flag_3: bool,
}

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;

    /// Decode from the kernel's bit set.
    pub fn from_raw(raw: u32) -> Self {
        ServiceFlags {
            raw,
            persistent: raw & Self::PERSISTENT != 0,
            hashed: raw & Self::HASHED != 0,
            one_packet: raw & Self::ONEPACKET != 0,
            sched_flag_1: raw & Self::SCHED1 != 0,
            sched_flag_2: raw & Self::SCHED2 != 0,
            sched_flag_3: raw & Self::SCHED3 != 0,
        }
    }
}

/// Cumulative counters since the service/destination was created (64-bit; the kernel's
/// `IPVS_*_ATTR_STATS64`, or the 32-bit `STATS` widened on kernels without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client -> server.
    pub in_packets: u64,
    /// Packets server -> client (only seen by the director in NAT mode).
    pub out_packets: u64,
    /// Bytes client -> server.
    pub in_bytes: u64,
    /// Bytes server -> client.
    pub out_bytes: u64,
}

/// The kernel estimator's rates (folded about every 2 s), per second. Byte rates are bytes per
/// second, not bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Rates {
    pub conns_per_second: u64,
    pub in_packets_per_second: u64,
    pub out_packets_per_second: u64,
    pub in_bytes_per_second: u64,
    pub out_bytes_per_second: u64,
}

/// Counters plus rates, as the kernel reports them together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Stats {
    pub counters: Counters,
    pub rates: Rates,
    /// `true` when the counters came from the 64-bit attribute, `false` when widened from the
    /// 32-bit one (older kernels) or when they come from procfs (always 64-bit there).
    pub is_64bit: bool,
}

/// Packet-forwarding method of a destination (`IP_VS_CONN_F_FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// NAT (`-m`), "Masq" in ipvsadm.
    Masq,
    /// Local node, "Local" in ipvsadm.
    Local,
    /// IP tunnelling (`-i`), "Tunnel" in ipvsadm.
    Tunnel,
    /// Direct routing (`-g`), "Route" in ipvsadm.
    Route,
    /// Bypass, "Bypass" in ipvsadm.
    Bypass,
}

impl ForwardMethod {
    /// From the kernel's value (`IP_VS_CONN_F_MASQ` = 0 … `IP_VS_CONN_F_BYPASS` = 4).
    pub fn from_raw(v: u32) -> Option<Self> {
        match v & 0x7 {
            0 => Some(ForwardMethod::Masq),
            1 => Some(ForwardMethod::Local),
            2 => Some(ForwardMethod::Tunnel),
            3 => Some(ForwardMethod::Route),
            4 => Some(ForwardMethod::Bypass),
            _ => None,
        }
    }

    /// The kernel's value.
    pub fn as_raw(self) -> u32 {
        match self {
            ForwardMethod::Masq => 0,
            ForwardMethod::Local => 1,
            ForwardMethod::Tunnel => 2,
            ForwardMethod::Route => 3,
            ForwardMethod::Bypass => 4,
        }
    }

    /// The word `ipvsadm -Ln` prints (`Masq`, `Local`, `Tunnel`, `Route`, `Bypass`).
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Route => "Route",
            ForwardMethod::Bypass => "Bypass",
        }
    }

    /// Lower-case name for labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "masq",
            ForwardMethod::Local => "local",
            ForwardMethod::Tunnel => "tunnel",
            ForwardMethod::Route => "route",
            ForwardMethod::Bypass => "bypass",
        }
    }
}

/// Encapsulation of a tunnel (`-i`) destination (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn from_raw(v: u8) -> Option<Self> {
        match v {
            0 => Some(TunnelType::Ipip),
            1 => Some(TunnelType::Gue),
            2 => Some(TunnelType::Gre),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }
}

/// Tunnel details of a destination whose forwarding method is `Tunnel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelType,
    /// UDP port for GUE; 0 otherwise.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` bits (0 = nocsum, 1 = csum, 2 = remcsum).
    pub flags: u16,
}

/// A real server behind a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub address: IpAddr,
    /// Family of the destination itself (may differ from the service's: IPv4 real servers behind
    /// an IPv6 service in tunnel mode).
    pub family: AddressFamily,
    pub port: u16,
    pub forward: ForwardMethod,
    /// Signed in the kernel; 0 means "drained" (no new connections).
    pub weight: i32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    /// Persistence templates pointing at this destination.
    pub persistent_conns: u32,
    /// Present when `forward` is `Tunnel` and the kernel reports a tunnel type.
    pub tunnel: Option<Tunnel>,
    pub stats: Stats,
}

impl Destination {
    /// A destination as `ipvsadm -a -r ADDRESS:PORT` adds it: direct routing (`-g`), weight 1,
    /// no thresholds, no connections, no tunnel, zero statistics; the family is the address's.
    /// Set other fields with struct update syntax:
    /// `Destination { weight: 3, ..Destination::new(addr, 80) }`.
    pub fn new(address: IpAddr, port: u16) -> Destination {
        Destination {
            address,
            family: AddressFamily::of(&address),
            port,
            forward: ForwardMethod::Route,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            tunnel: None,
            stats: Stats::default(),
        }
    }
}

/// A virtual service with its destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wrr`, `lc`, `wlc`, `lblc`, `lblcr`, `dh`, `sh`, `sed`, `nq`, `mh`,
    /// `fo`, `ovf`, or any other module's name).
    pub scheduler: String,
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful when `flags.persistent`).
    pub persistence_timeout: u32,
    /// Persistence netmask: for IPv4 the dotted mask as a prefix length is *not* assumed, so this
    /// is the raw 32-bit mask in host order (e.g. `0xffffff00`); for IPv6, the prefix length.
    pub netmask: u32,
    /// Persistence engine name (`--pe sip`), if any.
    pub pe_name: Option<String>,
    pub stats: Stats,
    pub destinations: Vec<Destination>,
}

/// `IPVS_CMD_GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version as the kernel encodes it: `(major << 16) | (minor << 8) | patch`.
    pub version: u32,
    /// Size of the connection hash table (`IPVS connection table size`).
    pub conn_table_size: u32,
}

impl Info {
    /// `1.2.1`-style version string.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// `ipvsadm --set tcp tcpfin udp` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// Role of a connection-synchronisation daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    Master,
    Backup,
}

/// A connection-synchronisation daemon (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    pub role: SyncRole,
    pub interface: String,
    pub sync_id: u32,
    /// `--sync-maxlen`; 0 when the kernel does not report it.
    pub max_len: u16,
    /// `--mcast-group`; `None` when the kernel does not report it.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`; 0 when the kernel does not report it.
    pub mcast_port: u16,
    /// `--mcast-ttl`; 0 when the kernel does not report it.
    pub mcast_ttl: u8,
}

/// Totals over all services, from `/proc/net/ip_vs_stats` (or `ip_vs_stats_percpu` summed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GlobalStats {
    pub counters: Counters,
    pub rates: Rates,
}

/// The reader a [`Snapshot`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotSource {
    /// Generic netlink: everything below is filled.
    #[default]
    Netlink,
    /// `/proc/net/ip_vs` (+ `ip_vs_stats`): services with scheduler, flags and persistence;
    /// destinations with forwarding method, weight, active and inactive connections; global
    /// totals. Per-service/per-destination stats, thresholds, persistent connections, tunnel
    /// details, timeouts and sync daemons are unknown (left at zero/empty).
    Procfs,
}

impl SnapshotSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotSource::Netlink => "netlink",
            SnapshotSource::Procfs => "procfs",
        }
    }
}

/// Everything read from one network namespace at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Which reader produced this snapshot; the procfs one cannot see per-service and
    /// per-destination traffic counters and rates, thresholds or persistent connections, so
    /// consumers must not take its zeros for values.
    #[serde(default)]
    pub source: SnapshotSource,
    pub info: Info,
    pub services: Vec<Service>,
    pub timeouts: Option<Timeouts>,
    pub daemons: Vec<SyncDaemon>,
    pub global: Option<GlobalStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_destination_is_what_ipvsadm_adds_by_default() {
        let d = Destination::new("2001:db8::1".parse().unwrap(), 443);
        assert_eq!(d.family, AddressFamily::Inet6);
        assert_eq!(
            (d.port, d.forward, d.weight),
            (443, ForwardMethod::Route, 1)
        );
        assert_eq!(
            (d.upper_threshold, d.lower_threshold, d.persistent_conns),
            (0, 0, 0)
        );
        assert_eq!((d.active_conns, d.inactive_conns), (0, 0));
        assert_eq!((d.tunnel, d.stats), (None, Stats::default()));
        let v4 = Destination::new("198.51.100.1".parse().unwrap(), 80);
        assert_eq!(v4.family, AddressFamily::Inet);
    }

    #[test]
    fn flags_decode_every_bit() {
        let f = ServiceFlags::from_raw(0x3f | 0x100);
        assert!(f.persistent && f.hashed && f.one_packet);
        assert!(f.sched_flag_1 && f.sched_flag_2 && f.sched_flag_3);
        assert_eq!(f.raw, 0x13f, "unknown bits are kept in raw");
        assert_eq!(ServiceFlags::from_raw(0), ServiceFlags::default());
    }

    #[test]
    fn service_key_displays_like_ipvsadm() {
        let k = ServiceKey::Addr {
            protocol: Protocol::Sctp,
            address: "2001:db8::1".parse().unwrap(),
            port: 80,
        };
        assert_eq!(k.to_string(), "SCTP [2001:db8::1]:80");
        assert_eq!(k.family(), AddressFamily::Inet6);
        let f = ServiceKey::Fwmark {
            family: AddressFamily::Inet6,
            mark: 7,
        };
        assert_eq!(f.to_string(), "FWM 7 IPv6");
    }

    #[test]
    fn forward_method_round_trips() {
        for raw in 0..5 {
            assert_eq!(ForwardMethod::from_raw(raw).unwrap().as_raw(), raw);
        }
        assert_eq!(ForwardMethod::from_raw(5), None);
    }

    #[test]
    fn info_version_string() {
        let i = Info {
            version: 0x010201,
            conn_table_size: 4096,
        };
        assert_eq!(i.version_string(), "1.2.1");
    }

    #[test]
    fn json_is_stable() {
        let k = ServiceKey::Fwmark {
            family: AddressFamily::Inet,
            mark: 1,
        };
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"{"kind":"fwmark","family":"inet","mark":1}"#
        );
    }
}
