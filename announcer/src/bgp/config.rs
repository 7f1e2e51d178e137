//! Configuration of the BGP speaker: the `[announcer.bgp]` section and its
//! `[[announcer.bgp.peers]]` entries, with validation that names the offending key.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::duration;
use super::error::BgpError;

/// `[announcer.bgp]`: the local speaker and its peers.
///
/// ```toml
/// [announcer.bgp]
/// router_id = "192.0.2.10"
/// local_as = 4200000001
///
/// [[announcer.bgp.peers]]
/// name = "tor-a"
/// address = "192.0.2.1"
/// remote_as = 65000
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    /// BGP identifier sent in OPEN. Required; must not be 0.0.0.0.
    pub router_id: Ipv4Addr,
    /// Local autonomous system number (4-octet ASNs supported). Required; not 0, 23456
    /// (AS_TRANS, RFC 6793), 65535 or 4294967295 (reserved, RFC 7300).
    pub local_as: u32,
    /// Address the passive listener binds when at least one peer is `passive`.
    /// Default: `[::]:179` (dual stack).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The peers. Default: none.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 179)
}

/// `[[announcer.bgp.peers]]`: one BGP neighbour.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Name used in logs, metrics (`peer` label) and the status API. Required, unique.
    pub name: String,
    /// Peer address. Required. An IPv6 link-local address needs `interface`.
    pub address: IpAddr,
    /// Peer AS. Equal to `local_as` makes the session iBGP. Required; the same numbers as
    /// `local_as` are refused.
    pub remote_as: u32,
    /// TCP port of the peer. Default: 179.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Local address to bind the session to (also the default next hop). Default: chosen by the
    /// kernel's routing table.
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    /// Interface for an IPv6 link-local peer (sets the scope id and binds the socket to it).
    /// Default: none.
    #[serde(default)]
    pub interface: Option<String>,
    /// Only wait for the peer to connect (to `listen`); never connect actively. Default: false.
    /// A peer that is not passive is only connected to actively; its incoming connections are
    /// refused unless `accept_incoming` is set.
    #[serde(default)]
    pub passive: bool,
    /// For an active peer: also accept the peer's own connections on `listen`, for routers
    /// configured to connect as well. When both connections come up at once the collision is
    /// resolved as RFC 4271 §6.8 says (the connection opened by the side with the higher BGP
    /// identifier stays; the other is closed with Cease / Connection Collision Resolution).
    /// Default: false.
    #[serde(default)]
    pub accept_incoming: bool,
    /// Proposed hold time in seconds; 0 disables keepalives, otherwise 3 to 65535 (the OPEN
    /// field's size). The session uses the smaller of both sides' values. Default: 90.
    /// Written as a number of seconds (`90`) or a duration string of whole seconds (`"90s"`,
    /// `"1m 30s"`).
    #[serde(
        default = "default_hold_time",
        deserialize_with = "duration::hold_time"
    )]
    pub hold_time: u16,
    /// Keepalive interval in seconds. Default: one third of the negotiated hold time. A value
    /// larger than a third of the negotiated hold time is lowered to that third. Written as a
    /// number of seconds or a duration string of whole seconds (`"30s"`).
    #[serde(default, deserialize_with = "duration::keepalive")]
    pub keepalive: Option<u16>,
    /// Exponential backoff (with jitter) before reconnecting after a failed connection attempt
    /// or a session failure, in seconds: 0 < min <= max <= [`MAX_CONNECT_RETRY`] (one hour).
    /// Default: `{ min = 1.0, max = 60.0 }`, the same as `{ min = "1s", max = "1m" }`.
    #[serde(default)]
    pub connect_retry: Backoff,
    /// TCP MD5 signature password (RFC 2385). Default: none.
    #[serde(default)]
    pub md5_password: Option<String>,
    /// GTSM / TTL security (RFC 5082): the peer is at most this many hops away (1 = directly
    /// connected). Packets are sent with TTL 255 and only packets arriving with
    /// TTL ≥ 256 − hops are accepted. Default: none (normal TTL, no check).
    #[serde(default)]
    pub ttl_security: Option<u8>,
    /// Next hop for IPv4 routes: `"self"` (the session's local IPv4 address) or an address.
    /// Default: `"self"`. Required to be an address when IPv4 routes go over an IPv6 session.
    #[serde(default)]
    pub next_hop_v4: NextHop,
    /// Next hop for IPv6 routes: `"self"` (the session's local IPv6 address) or an address.
    /// Default: `"self"`. Required to be an address when IPv6 routes go over an IPv4 session.
    #[serde(default)]
    pub next_hop_v6: NextHop,
    /// Send the link-local address of the session's interface as second IPv6 next hop
    /// (RFC 2545 §3), as directly connected routers expect. Always done for link-local peers.
    /// Default: automatic — only when the peer is on-link (inside the subnet of the interface
    /// holding the session's local address).
    #[serde(default)]
    pub ipv6_link_local_next_hop: Option<bool>,
    /// Address families to negotiate: `"ipv4"` and/or `"ipv6"` (unicast).
    /// Default: the family of `address`.
    #[serde(default)]
    pub families: Option<Vec<Family>>,
    /// Graceful restart capability (RFC 4724). Default: absent (off).
    ///
    /// Trade-off: with graceful restart the router keeps our routes for `restart_time` seconds
    /// after the session drops without a NOTIFICATION, which rides over a daemon restart but
    /// also keeps traffic flowing to a director that has died. For all-active ECMP, where other
    /// directors carry the VIP, fast failover is usually worth more: keep it off unless
    /// restarts must not move traffic (`ipvs-herald stop --keep-routes`, see
    /// [`crate::bgp::SpeakerHandle::stop_for_restart`]).
    #[serde(default)]
    pub graceful_restart: Option<GracefulRestart>,
    /// BFD (RFC 5880; single hop RFC 5881, or multihop RFC 5883 for a peer that is not on a
    /// shared link) for this peer: a BFD Down closes the session with Cease
    /// / BFD Down (RFC 9384), and no route is announced on a session until its BFD is Up.
    /// Default: absent (off). `bfd = {}` turns it on with the defaults of [`BfdConfig`].
    #[serde(default)]
    pub bfd: Option<BfdConfig>,
}

/// Per-peer BFD settings (`[announcer.bgp.peers.bfd]`). The defaults detect a dead peer in
/// 900 ms (300 ms × 3) when the router agrees to those rates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BfdConfig {
    /// On or off (keeps the other values while off). Default: true.
    pub enabled: bool,
    /// Desired Min TX Interval once Up (1 s until then, RFC 5880 §6.8.3). Default: 300 ms.
    #[serde(with = "humantime_serde")]
    pub desired_min_tx: Duration,
    /// Required Min RX Interval: the fastest rate we accept from the peer. Default: 300 ms.
    #[serde(with = "humantime_serde")]
    pub required_min_rx: Duration,
    /// Detect Mult: packets the peer may miss before it declares us down. Default: 3.
    pub detect_multiplier: u8,
    /// Multihop BFD (RFC 5883: UDP port 4784) for a peer that is not on a shared link, e.g. a
    /// router's loopback. Default: false (single hop, RFC 5881: port 3784, TTL 255 required).
    pub multihop: bool,
    /// Multihop only: the lowest TTL / hop limit a packet from the peer may arrive with (we
    /// send 255, as the peer should; 254 = at most one router in between). Default: 254.
    /// Refused without `multihop`: single hop always requires 255 (RFC 5881 §5).
    pub min_ttl: Option<u8>,
}

/// Bounds of the BFD intervals: BFD in user space below 10 ms would be noise, and above a
/// minute it is no faster than the BGP hold timer.
pub const BFD_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(60);

impl Default for BfdConfig {
    fn default() -> Self {
        BfdConfig {
            enabled: true,
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_multiplier: 3,
            multihop: false,
            min_ttl: None,
        }
    }
}

impl BfdConfig {
    /// Single hop, or multihop with the TTL / hop limit we accept.
    pub fn hop(&self) -> crate::bfd::Hop {
        if self.multihop {
            crate::bfd::Hop::Multi {
                min_ttl: self.min_ttl.unwrap_or(crate::bfd::DEFAULT_MIN_TTL),
            }
        } else {
            crate::bfd::Hop::Single
        }
    }

    /// The BFD session's timing.
    pub fn params(&self) -> crate::bfd::Params {
        crate::bfd::Params {
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            detect_mult: self.detect_multiplier,
        }
    }
}

/// The longest `connect_retry` delay, in seconds: a router that comes back is connected to
/// within the hour.
pub const MAX_CONNECT_RETRY: f64 = 3600.0;

/// Why an AS number cannot be a speaker's own or its peer's, or `None` when it can.
fn reserved_as(asn: u32) -> Option<&'static str> {
    match asn {
        0 => Some("reserved (RFC 7607)"),
        23456 => Some("AS_TRANS (RFC 6793), which only stands in for a 4-octet AS on the wire"),
        65535 | 4_294_967_295 => Some("reserved (RFC 7300)"),
        _ => None,
    }
}

fn default_port() -> u16 {
    179
}
fn default_hold_time() -> u16 {
    90
}

/// Exponential backoff with jitter between connection attempts (the IdleHold timer).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// First delay, in seconds (a number, or a duration string such as `"500ms"`). Default: 1.
    #[serde(deserialize_with = "duration::backoff_min")]
    pub min: f64,
    /// Largest delay, in seconds (a number, or a duration string such as `"1m"`). Default: 60.
    #[serde(deserialize_with = "duration::backoff_max")]
    pub max: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: 1.0,
            max: 60.0,
        }
    }
}

impl Backoff {
    /// Delay before attempt number `failures` (0-based), before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = 2f64.powi(failures.min(30) as i32);
        Duration::from_secs_f64((self.min * exp).min(self.max).max(0.0))
    }
}

/// Next hop: `"self"` or an explicit address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NextHop {
    /// The local address of the session (of the matching family).
    #[default]
    SelfAddr,
    /// This address.
    Addr(IpAddr),
}

impl<'de> Deserialize<'de> for NextHop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("self") {
            return Ok(NextHop::SelfAddr);
        }
        s.parse::<IpAddr>().map(NextHop::Addr).map_err(|_| {
            serde::de::Error::custom(format!("next hop {s:?} is neither \"self\" nor an address"))
        })
    }
}

/// Address family (unicast SAFI).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6,
}

impl Family {
    /// Label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// Graceful restart settings.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GracefulRestart {
    /// Restart time advertised to the peer, in seconds (max 4095). Default: 120. Written as a
    /// number of seconds or a duration string of whole seconds (`"2m"`).
    #[serde(deserialize_with = "duration::restart_time")]
    pub restart_time: u16,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart { restart_time: 120 }
    }
}

impl PeerConfig {
    /// A peer with every optional key at its default.
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> Self {
        PeerConfig {
            name: name.into(),
            address,
            remote_as,
            port: default_port(),
            local_address: None,
            interface: None,
            passive: false,
            accept_incoming: false,
            hold_time: default_hold_time(),
            keepalive: None,
            connect_retry: Backoff::default(),
            md5_password: None,
            ttl_security: None,
            next_hop_v4: NextHop::SelfAddr,
            next_hop_v6: NextHop::SelfAddr,
            ipv6_link_local_next_hop: None,
            families: None,
            graceful_restart: None,
            bfd: None,
        }
    }

    /// The BFD timing when BFD is configured and enabled.
    pub fn bfd_params(&self) -> Option<crate::bfd::Params> {
        self.bfd.filter(|b| b.enabled).map(|b| b.params())
    }

    /// Single hop or multihop, when BFD is configured and enabled.
    pub fn bfd_hop(&self) -> Option<crate::bfd::Hop> {
        self.bfd.filter(|b| b.enabled).map(|b| b.hop())
    }

    /// Families negotiated with this peer (the configured list or the address's family).
    pub fn families(&self) -> Vec<Family> {
        match &self.families {
            Some(f) => {
                let mut f = f.clone();
                f.sort();
                f.dedup();
                f
            }
            None => vec![match self.address {
                IpAddr::V4(_) => Family::Ipv4,
                IpAddr::V6(_) => Family::Ipv6,
            }],
        }
    }

    /// True when the listener hands this peer's incoming connections to its session.
    pub fn accepts(&self) -> bool {
        self.passive || self.accept_incoming
    }

    /// True when the session is internal BGP.
    pub fn is_ibgp(&self, local_as: u32) -> bool {
        self.remote_as == local_as
    }
}

/// True for fe80::/10.
pub(crate) fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

impl BgpConfig {
    /// Check the values serde cannot: every problem names its key.
    pub fn validate(&self) -> Result<(), BgpError> {
        let bad = |m: String| Err(BgpError::Config(m));
        if self.router_id.is_unspecified() {
            return bad("announcer.bgp.router_id must not be 0.0.0.0".into());
        }
        if let Some(why) = reserved_as(self.local_as) {
            return bad(format!(
                "announcer.bgp.local_as {} is {why}: it cannot be used",
                self.local_as
            ));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.peers {
            let k = |key: &str| format!("announcer.bgp.peers[{}].{key}", p.name);
            if p.name.is_empty() {
                return bad("announcer.bgp.peers[].name must not be empty".into());
            }
            if !names.insert(p.name.as_str()) {
                return bad(format!("announcer.bgp.peers: duplicate name {:?}", p.name));
            }
            if let Some(why) = reserved_as(p.remote_as) {
                return bad(format!(
                    "{} {} is {why}: it cannot be used",
                    k("remote_as"),
                    p.remote_as
                ));
            }
            if p.hold_time != 0 && p.hold_time < 3 {
                return bad(format!("{} must be 0 or at least 3", k("hold_time")));
            }
            if let Some(ka) = p.keepalive {
                if ka == 0 && p.hold_time != 0 {
                    return bad(format!("{} must be at least 1", k("keepalive")));
                }
            }
            let b = p.connect_retry;
            if !(b.min.is_finite()
                && b.max.is_finite()
                && b.min > 0.0
                && b.max >= b.min
                && b.max <= MAX_CONNECT_RETRY)
            {
                return bad(format!(
                    "{} needs 0 < min <= max <= {MAX_CONNECT_RETRY} seconds (got min {} max {})",
                    k("connect_retry"),
                    b.min,
                    b.max
                ));
            }
            if let Some(pw) = &p.md5_password {
                if pw.is_empty() || pw.len() > 80 {
                    return bad(format!("{} must be 1 to 80 bytes", k("md5_password")));
                }
            }
            if let Some(t) = p.ttl_security {
                if t == 0 {
                    return bad(format!("{} must be 1..=255 hops", k("ttl_security")));
                }
            }
            if let Some(gr) = p.graceful_restart {
                if gr.restart_time > 4095 {
                    return bad(format!(
                        "{} must be at most 4095",
                        k("graceful_restart.restart_time")
                    ));
                }
            }
            if let Some(b) = p.bfd {
                for (key, v) in [
                    ("bfd.desired_min_tx", b.desired_min_tx),
                    ("bfd.required_min_rx", b.required_min_rx),
                ] {
                    if !BFD_INTERVAL_RANGE.contains(&v) {
                        return bad(format!(
                            "{} must be 10ms to 60s (got {})",
                            k(key),
                            humantime_serde::re::humantime::format_duration(v)
                        ));
                    }
                }
                if b.detect_multiplier == 0 {
                    return bad(format!("{} must be 1 to 255", k("bfd.detect_multiplier")));
                }
                match (b.multihop, b.min_ttl) {
                    (false, Some(_)) => {
                        return bad(format!(
                            "{} applies to multihop BFD only (set bfd.multihop = true); single-hop BFD always requires TTL 255",
                            k("bfd.min_ttl")
                        ));
                    }
                    (true, Some(0)) => {
                        return bad(format!("{} must be 1 to 255", k("bfd.min_ttl")));
                    }
                    _ => {}
                }
                if let IpAddr::V6(a) = p.address {
                    if b.enabled && is_link_local_v6(&a) {
                        return bad(format!(
                            "{}: BFD is not supported for IPv6 link-local peers",
                            k("bfd")
                        ));
                    }
                }
            }
            if let IpAddr::V6(a) = p.address {
                if is_link_local_v6(&a) && p.interface.is_none() {
                    return bad(format!("{} is link-local: set interface", k("address")));
                }
            }
            if let Some(la) = p.local_address {
                if la.is_ipv4() != p.address.is_ipv4() {
                    return bad(format!(
                        "{} must be of the family of address",
                        k("local_address")
                    ));
                }
            }
            let fams = p.families();
            if fams.is_empty() {
                return bad(format!("{} must not be empty", k("families")));
            }
            for f in fams {
                match (f, p.address, p.next_hop_v4, p.next_hop_v6) {
                    (Family::Ipv4, IpAddr::V6(_), NextHop::SelfAddr, _) => {
                        return bad(format!(
                            "{}: IPv4 routes over an IPv6 session need an explicit address",
                            k("next_hop_v4")
                        ))
                    }
                    (Family::Ipv6, IpAddr::V4(_), _, NextHop::SelfAddr) => {
                        return bad(format!(
                            "{}: IPv6 routes over an IPv4 session need an explicit address",
                            k("next_hop_v6")
                        ))
                    }
                    _ => {}
                }
            }
            if matches!(p.next_hop_v4, NextHop::Addr(IpAddr::V6(_))) {
                return bad(format!(
                    "{} must be an IPv4 address or \"self\"",
                    k("next_hop_v4")
                ));
            }
            if matches!(p.next_hop_v6, NextHop::Addr(IpAddr::V4(_))) {
                return bad(format!(
                    "{} must be an IPv6 address or \"self\"",
                    k("next_hop_v6")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_and_full_peer() {
        let cfg: BgpConfig = toml::from_str(
            r#"
            router_id = "192.0.2.10"
            local_as = 4200000001
            [[peers]]
            name = "a"
            address = "192.0.2.1"
            remote_as = 65000
            [[peers]]
            name = "b"
            address = "2001:db8::1"
            remote_as = 4200000001
            port = 1179
            passive = true
            hold_time = 9
            keepalive = 3
            connect_retry = { min = 0.5, max = 10 }
            md5_password = "s3cret"
            ttl_security = 1
            next_hop_v4 = "192.0.2.10"
            next_hop_v6 = "self"
            families = ["ipv4", "ipv6"]
            graceful_restart = { restart_time = 30 }
            "#,
        )
        .expect("valid config");
        cfg.validate().expect("valid");
        assert_eq!(cfg.peers[0].port, 179);
        assert_eq!(cfg.peers[0].hold_time, 90);
        assert_eq!(cfg.peers[0].families(), vec![Family::Ipv4]);
        assert_eq!(cfg.peers[1].families(), vec![Family::Ipv4, Family::Ipv6]);
        assert!(cfg.peers[1].is_ibgp(cfg.local_as));
        assert_eq!(
            cfg.peers[1].next_hop_v4,
            NextHop::Addr("192.0.2.10".parse().unwrap())
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let r: Result<BgpConfig, _> =
            toml::from_str("router_id = \"192.0.2.1\"\nlocal_as = 1\nbogus = 1\n");
        assert!(r.is_err());
        let mut cfg = BgpConfig {
            router_id: "192.0.2.1".parse().unwrap(),
            local_as: 65001,
            listen: default_listen(),
            peers: vec![PeerConfig::new("a", "192.0.2.2".parse().unwrap(), 65002)],
        };
        cfg.validate().unwrap();
        cfg.peers[0].hold_time = 2;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("hold_time"), "{e}");
        cfg.peers[0].hold_time = 90;
        cfg.peers[0].families = Some(vec![Family::Ipv6]);
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("next_hop_v6"), "{e}");
        cfg.peers[0].families = None;
        cfg.peers
            .push(PeerConfig::new("a", "192.0.2.3".parse().unwrap(), 65002));
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
    }

    #[test]
    fn reserved_as_numbers_are_refused_for_both_ends() {
        let base = BgpConfig {
            router_id: "192.0.2.1".parse().unwrap(),
            local_as: 65001,
            listen: default_listen(),
            peers: vec![PeerConfig::new("a", "192.0.2.2".parse().unwrap(), 65002)],
        };
        base.validate().unwrap();
        for asn in [0, 23456, 65535, 4_294_967_295] {
            let mut c = base.clone();
            c.local_as = asn;
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("announcer.bgp.local_as {asn} is ")),
                "{e}"
            );
            let mut c = base.clone();
            c.peers[0].remote_as = asn;
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("announcer.bgp.peers[a].remote_as {asn} is ")),
                "{e}"
            );
        }
        let mut c = base.clone();
        c.local_as = 23456;
        assert!(c.validate().unwrap_err().to_string().contains("AS_TRANS"));
        // Their neighbours are ordinary numbers.
        for asn in [23455, 23457, 65534, 65536, 4_294_967_294] {
            let mut c = base.clone();
            c.local_as = asn;
            c.validate().unwrap();
        }
    }

    #[test]
    fn connect_retry_is_bounded() {
        let mut c = BgpConfig {
            router_id: "192.0.2.1".parse().unwrap(),
            local_as: 65001,
            listen: default_listen(),
            peers: vec![PeerConfig::new("a", "192.0.2.2".parse().unwrap(), 65002)],
        };
        c.peers[0].connect_retry = Backoff {
            min: 1.0,
            max: MAX_CONNECT_RETRY,
        };
        c.validate().unwrap();
        for (min, max) in [(1.0, 3600.5), (1.0, 1e300), (1e300, 1e300), (0.0, 1.0)] {
            c.peers[0].connect_retry = Backoff { min, max };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("connect_retry") && e.contains("3600"), "{e}");
        }
    }

    /// One peer with `keys` added, parsed (not validated).
    fn peer_with(keys: &str) -> Result<PeerConfig, String> {
        toml::from_str(&format!(
            "name = \"a\"\naddress = \"192.0.2.2\"\nremote_as = 65002\n{keys}"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn timers_take_seconds_or_duration_strings_alike() {
        let numbers = peer_with(
            "hold_time = 90\nkeepalive = 30\nconnect_retry = { min = 0.5, max = 120 }\n\
             graceful_restart = { restart_time = 120 }\n",
        )
        .unwrap();
        for strings in [
            "hold_time = \"90s\"\nkeepalive = \"30s\"\n\
             connect_retry = { min = \"500ms\", max = \"2m\" }\n\
             graceful_restart = { restart_time = \"2m\" }\n",
            "hold_time = \"1m 30s\"\nkeepalive = \"30 s\"\n\
             connect_retry = { min = \"500 ms\", max = \"120s\" }\n\
             graceful_restart = { restart_time = \"120s\" }\n",
        ] {
            assert_eq!(peer_with(strings).unwrap(), numbers, "{strings}");
        }
        // Mixed forms, and the defaults when absent.
        let p = peer_with("hold_time = \"9s\"\nconnect_retry = { max = 30 }\n").unwrap();
        assert_eq!(p.hold_time, 9);
        assert_eq!(p.keepalive, None);
        assert_eq!(
            p.connect_retry,
            Backoff {
                min: 1.0,
                max: 30.0
            }
        );
        let p = peer_with("connect_retry = { min = \"250ms\" }\n").unwrap();
        assert_eq!(
            p.connect_retry,
            Backoff {
                min: 0.25,
                max: 60.0
            }
        );
        assert_eq!(
            peer_with("").unwrap(),
            PeerConfig::new("a", "192.0.2.2".parse().unwrap(), 65002)
        );
        let gr: GracefulRestart = toml::from_str("").unwrap();
        assert_eq!(gr, GracefulRestart::default());
        // Zero is a duration too: hold_time "0s" turns keepalives off as 0 does.
        assert_eq!(peer_with("hold_time = \"0s\"\n").unwrap().hold_time, 0);
    }

    #[test]
    fn timer_strings_that_do_not_fit_are_refused_naming_the_key() {
        for (keys, expect) in [
            (
                "hold_time = \"1500ms\"\n",
                "hold_time: \"1500ms\" is not a whole number of seconds (the OPEN carries whole seconds)",
            ),
            (
                "keepalive = \"2500ms\"\n",
                "keepalive: \"2500ms\" is not a whole number of seconds",
            ),
            (
                "graceful_restart = { restart_time = \"2m 1ms\" }\n",
                "graceful_restart.restart_time: \"2m 1ms\" is not a whole number of seconds",
            ),
            (
                "hold_time = \"19h\"\n",
                "hold_time: \"19h\" is more than 65535 seconds",
            ),
            (
                "hold_time = \"5 parsecs\"\n",
                "hold_time: bad duration \"5 parsecs\"",
            ),
            (
                "connect_retry = { min = \"soon\" }\n",
                "connect_retry.min: bad duration \"soon\"",
            ),
            (
                "connect_retry = { max = \"600000000000y\" }\n",
                "connect_retry.max: bad duration",
            ),
            // Numbers are refused as before (a u16 field).
            ("hold_time = 70000\n", "invalid value: integer `70000`, expected u16"),
            ("keepalive = -1\n", "invalid value: integer `-1`, expected u16"),
            ("hold_time = 1.5\n", "invalid type: floating point `1.5`, expected u16"),
            ("hold_time = true\n", "a number of seconds or a duration string such as \"90s\""),
        ] {
            let e = peer_with(keys).expect_err(keys);
            assert!(e.contains(expect), "{keys}: {e}");
        }
    }

    #[test]
    fn timer_strings_get_the_bounds_of_numbers() {
        let with = |keys: &str| BgpConfig {
            router_id: "192.0.2.1".parse().unwrap(),
            local_as: 65001,
            listen: default_listen(),
            peers: vec![peer_with(keys).unwrap()],
        };
        for (keys, expect) in [
            (
                "hold_time = \"2s\"",
                "announcer.bgp.peers[a].hold_time must be 0 or at least 3",
            ),
            (
                "hold_time = 2",
                "announcer.bgp.peers[a].hold_time must be 0 or at least 3",
            ),
            (
                "keepalive = \"0s\"",
                "announcer.bgp.peers[a].keepalive must be at least 1",
            ),
            (
                "graceful_restart = { restart_time = \"1h 8m 16s\" }",
                "graceful_restart.restart_time must be at most 4095",
            ),
            (
                "connect_retry = { max = \"1h 1s\" }",
                "connect_retry needs 0 < min <= max <= 3600",
            ),
            (
                "connect_retry = { min = \"0s\" }",
                "connect_retry needs 0 < min <= max <= 3600",
            ),
            (
                "connect_retry = { max = \"500000000000y\" }",
                "connect_retry needs 0 < min <= max <= 3600",
            ),
            (
                "connect_retry = { min = \"2m\", max = \"1m\" }",
                "connect_retry needs",
            ),
        ] {
            let e = with(keys).validate().unwrap_err().to_string();
            assert!(e.contains(expect), "{keys}: {e}");
        }
        with("hold_time = \"3s\"\nkeepalive = \"1s\"\nconnect_retry = { max = \"1h\" }\ngraceful_restart = { restart_time = \"1h 8m 15s\" }")
            .validate()
            .unwrap();
    }

    /// The commented `[[announcer.bgp.peers]]` reference in config/ipvs-herald.toml documents the
    /// built-in timer defaults.
    #[test]
    fn bfd_values_are_checked_with_their_key() {
        let ok = peer_with(
            "bfd = { desired_min_tx = \"100ms\", required_min_rx = \"1s\", detect_multiplier = 1 }\n",
        )
        .unwrap();
        let b = ok.bfd.unwrap();
        assert_eq!(
            (
                b.enabled,
                b.desired_min_tx,
                b.required_min_rx,
                b.detect_multiplier
            ),
            (true, Duration::from_millis(100), Duration::from_secs(1), 1)
        );
        for (text, msg) in [
            (
                "bfd = { desired_min_tx = \"5ms\" }",
                "peers[a].bfd.desired_min_tx must be 10ms to 60s (got 5ms)",
            ),
            (
                "bfd = { required_min_rx = \"2m\" }",
                "peers[a].bfd.required_min_rx must be 10ms to 60s (got 2m)",
            ),
            (
                "bfd = { detect_multiplier = 0 }",
                "peers[a].bfd.detect_multiplier must be 1 to 255",
            ),
            (
                "bfd = { min_ttl = 250 }",
                "peers[a].bfd.min_ttl applies to multihop BFD only",
            ),
            (
                "bfd = { multihop = true, min_ttl = 0 }",
                "peers[a].bfd.min_ttl must be 1 to 255",
            ),
        ] {
            let c = BgpConfig {
                router_id: "192.0.2.1".parse().unwrap(),
                local_as: 65001,
                listen: default_listen(),
                peers: vec![peer_with(text).unwrap()],
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(msg), "{text}: {e}");
        }
        assert!(peer_with("bfd = { detect_multiplier = 256 }").is_err());
        let mut ll = peer_with("bfd = {}\ninterface = \"eth0\"").unwrap();
        ll.address = "fe80::1".parse().unwrap();
        let c = BgpConfig {
            router_id: "192.0.2.1".parse().unwrap(),
            local_as: 65001,
            listen: default_listen(),
            peers: vec![ll],
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("peers[a].bfd: BFD is not supported for IPv6 link-local"),
            "{e}"
        );
        assert!(peer_with("bfd = { interval = \"1s\" }").is_err());
        assert!(peer_with("bfd = { multihop = true, min_ttl = 256 }").is_err());
        let mh = peer_with("bfd = { multihop = true }").unwrap();
        assert_eq!(
            mh.bfd_hop(),
            Some(crate::bfd::Hop::Multi {
                min_ttl: crate::bfd::DEFAULT_MIN_TTL
            })
        );
        let sh = peer_with("bfd = {}").unwrap();
        assert_eq!(sh.bfd_hop(), Some(crate::bfd::Hop::Single));
    }

    #[test]
    fn documented_timer_defaults_are_the_built_in_ones() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/ipvs-herald.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "# [[announcer.bgp.peers]]")
            .skip(1)
            .take_while(|l| l.starts_with("# "))
            .filter(|l| !l.starts_with("#  "))
            .map(|l| &l[2..])
            .collect();
        assert!(block.len() > 15, "no commented peer found: {block:?}");
        let documented: PeerConfig =
            toml::from_str(&block.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let built_in = PeerConfig::new("x", "192.0.2.1".parse().unwrap(), 65000);
        assert_eq!(documented.hold_time, built_in.hold_time);
        assert_eq!(documented.connect_retry, built_in.connect_retry);
        assert_eq!(
            documented.graceful_restart,
            Some(GracefulRestart::default())
        );
        assert_eq!(documented.bfd, Some(BfdConfig::default()));
        assert_eq!(
            peer_with("bfd = {}\n").unwrap().bfd,
            Some(BfdConfig::default())
        );
        // keepalive's default is "a third of the hold time": the example is that third.
        assert_eq!(documented.keepalive, Some(built_in.hold_time / 3));
        // The string forms given in the comments are the same values.
        let strings = peer_with(
            "hold_time = \"90s\"\nkeepalive = \"30s\"\nconnect_retry = { min = \"1s\", max = \"1m\" }\n\
             graceful_restart = { restart_time = \"2m\" }\n",
        )
        .unwrap();
        assert_eq!(strings.hold_time, documented.hold_time);
        assert_eq!(strings.keepalive, documented.keepalive);
        assert_eq!(strings.connect_retry, documented.connect_retry);
        assert_eq!(strings.graceful_restart, documented.graceful_restart);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff { min: 1.0, max: 8.0 };
        assert_eq!(b.delay(0), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(4));
        assert_eq!(b.delay(10), Duration::from_secs(8));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(8));
    }
}
