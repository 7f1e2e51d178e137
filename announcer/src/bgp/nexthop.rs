//! Next-hop selection for a session: `self` or configured addresses, and the IPv6 link-local
//! second next hop of RFC 2545 that directly connected routers expect.

use super::config::{is_link_local_v6, NextHop, PeerConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One IPv6 address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr6 {
    /// Interface name.
    pub name: String,
    /// Address.
    pub addr: Ipv6Addr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
}

/// The host's IPv6 interface addresses (empty if they cannot be read).
pub fn interface_v6_addrs() -> Vec<IfAddr6> {
    match nix::ifaddrs::getifaddrs() {
        Ok(it) => it
            .filter_map(|i| {
                let addr = i.address?.as_sockaddr_in6()?.ip();
                let prefix_len = i
                    .netmask
                    .and_then(|m| m.as_sockaddr_in6().map(|m| m.ip()))
                    .map(|m| u128::from(m).count_ones() as u8)
                    .unwrap_or(128);
                Some(IfAddr6 {
                    name: i.interface_name,
                    addr,
                    prefix_len,
                })
            })
            .collect(),
        Err(_) => vec![],
    }
}

fn same_prefix(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(len.min(128)));
    u128::from(a) & mask == u128::from(b) & mask
}

/// IPv4 next hop and IPv6 (global, link-local) next hops of a session whose local address is
/// `local`, given the host's interface addresses.
///
/// IPv6 rules: the global next hop is `next_hop_v6`, or the session's local address; on a
/// link-local session (peer address fe80::/10) it is the first global address of `interface`
/// (falling back to the link-local address itself) and the link-local next hop is the
/// session's local address. Otherwise the link-local next hop of the interface holding the
/// local address is added when `ipv6_link_local_next_hop` says so, or — by default — when the
/// peer is on-link (inside that interface's subnet), as RFC 2545 §3 describes.
pub fn next_hops(
    p: &PeerConfig,
    local: Option<IpAddr>,
    ifaddrs: &[IfAddr6],
) -> (Option<Ipv4Addr>, Option<(Ipv6Addr, Option<Ipv6Addr>)>) {
    let nh_v4 = match p.next_hop_v4 {
        NextHop::Addr(IpAddr::V4(a)) => Some(a),
        NextHop::Addr(IpAddr::V6(_)) => None,
        NextHop::SelfAddr => match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
    };
    let local_v6 = match local {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    let peer_v6 = match p.address {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    };
    let peer_ll = peer_v6.is_some_and(|a| is_link_local_v6(&a));
    let global = match p.next_hop_v6 {
        NextHop::Addr(IpAddr::V6(a)) => Some(a),
        NextHop::Addr(IpAddr::V4(_)) => None,
        NextHop::SelfAddr => match local_v6 {
            Some(a) if is_link_local_v6(&a) => Some(
                p.interface
                    .as_deref()
                    .and_then(|ifn| {
                        ifaddrs
                            .iter()
                            .find(|i| {
                                i.name == ifn && !is_link_local_v6(&i.addr) && !i.addr.is_loopback()
                            })
                            .map(|i| i.addr)
                    })
                    .unwrap_or(a),
            ),
            other => other,
        },
    };
    let link_local = if peer_ll {
        local_v6.filter(is_link_local_v6)
    } else {
        let holder = local_v6.and_then(|l| ifaddrs.iter().find(|i| i.addr == l));
        let want = match p.ipv6_link_local_next_hop {
            Some(w) => w,
            None => match (holder, peer_v6) {
                (Some(h), Some(peer)) => same_prefix(h.addr, peer, h.prefix_len),
                _ => false,
            },
        };
        if want {
            holder.and_then(|h| {
                ifaddrs
                    .iter()
                    .find(|i| i.name == h.name && is_link_local_v6(&i.addr))
                    .map(|i| i.addr)
            })
        } else {
            None
        }
    };
    // Never send the same address twice.
    let link_local = link_local.filter(|ll| Some(*ll) != global);
    (nh_v4, global.map(|g| (g, link_local)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs() -> Vec<IfAddr6> {
        vec![
            IfAddr6 {
                name: "eth0".into(),
                addr: "2001:db8::1".parse().unwrap(),
                prefix_len: 64,
            },
            IfAddr6 {
                name: "eth0".into(),
                addr: "fe80::1".parse().unwrap(),
                prefix_len: 64,
            },
            IfAddr6 {
                name: "eth1".into(),
                addr: "fe80::2".parse().unwrap(),
                prefix_len: 64,
            },
            IfAddr6 {
                name: "eth1".into(),
                addr: "2001:db8:1::1".parse().unwrap(),
                prefix_len: 64,
            },
        ]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_self_and_configured() {
        let mut p = PeerConfig::new("a", ip("192.0.2.2"), 65002);
        assert_eq!(
            next_hops(&p, Some(ip("192.0.2.1")), &ifs()).0,
            Some("192.0.2.1".parse().unwrap())
        );
        p.next_hop_v4 = NextHop::Addr(ip("198.51.100.1"));
        assert_eq!(
            next_hops(&p, Some(ip("192.0.2.1")), &ifs()).0,
            Some("198.51.100.1".parse().unwrap())
        );
        // IPv6 routes over an IPv4 session only with an explicit next hop.
        assert_eq!(next_hops(&p, Some(ip("192.0.2.1")), &ifs()).1, None);
        p.next_hop_v6 = NextHop::Addr(ip("2001:db8::9"));
        assert_eq!(
            next_hops(&p, Some(ip("192.0.2.1")), &ifs()).1,
            Some(("2001:db8::9".parse().unwrap(), None))
        );
    }

    #[test]
    fn ipv6_on_link_peer_gets_link_local_by_default() {
        let mut p = PeerConfig::new("a", ip("2001:db8::2"), 65002);
        let (_, v6) = next_hops(&p, Some(ip("2001:db8::1")), &ifs());
        assert_eq!(
            v6,
            Some((
                "2001:db8::1".parse().unwrap(),
                Some("fe80::1".parse().unwrap())
            ))
        );
        p.ipv6_link_local_next_hop = Some(false);
        let (_, v6) = next_hops(&p, Some(ip("2001:db8::1")), &ifs());
        assert_eq!(v6, Some(("2001:db8::1".parse().unwrap(), None)));
    }

    #[test]
    fn ipv6_multihop_peer_gets_global_only() {
        let p = PeerConfig::new("a", ip("2001:db8:ffff::2"), 65002);
        let (_, v6) = next_hops(&p, Some(ip("2001:db8::1")), &ifs());
        assert_eq!(v6, Some(("2001:db8::1".parse().unwrap(), None)));
    }

    #[test]
    fn link_local_peer_uses_interface_global_and_local_link_local() {
        let mut p = PeerConfig::new("a", ip("fe80::99"), 65002);
        p.interface = Some("eth1".into());
        let (_, v6) = next_hops(&p, Some(ip("fe80::2")), &ifs());
        assert_eq!(
            v6,
            Some((
                "2001:db8:1::1".parse().unwrap(),
                Some("fe80::2".parse().unwrap())
            ))
        );
        // No global address on the interface: the link-local address is the only next hop.
        let only_ll: Vec<_> = ifs()
            .into_iter()
            .filter(|i| i.addr != "2001:db8:1::1".parse::<Ipv6Addr>().unwrap())
            .collect();
        let (_, v6) = next_hops(&p, Some(ip("fe80::2")), &only_ll);
        assert_eq!(v6, Some(("fe80::2".parse().unwrap(), None)));
    }
}
