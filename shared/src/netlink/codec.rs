//! The pure generic-netlink codec for IPVS: bytes of an attribute set -> model types. No socket
//! I/O here, so every function is unit-tested with bytes. Attribute walking and the payload
//! readers are in [`super::attr`], the request builders in [`super::request`]; both are
//! re-exported here, so `codec::` names every piece of the codec.
//!
//! Decoders never panic: truncated attributes, wrong payload sizes, missing mandatory
//! attributes and unknown values are answered with a [`CodecError`] that names the attribute
//! and the problem. Unknown attribute types and `IPVS_STATS_ATTR_PAD` are skipped, and attribute
//! order does not matter.

use super::attr::{
    err, fixed, get_addr, get_be16, get_str, get_u16, get_u32, get_u8, get_uint, nested,
};
use super::consts::*;
use crate::model::{
    AddressFamily, Counters, Destination, ForwardMethod, Info, Protocol, Rates, Service,
    ServiceFlags, ServiceKey, Stats, SyncDaemon, SyncRole, Timeouts, Tunnel, TunnelType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use super::attr::{
    attrs, genl_payload, put_attr, split_genl, Attr, Attrs, CodecError, GENL_HDRLEN,
};
pub use super::request::{request_get_dests, request_get_family, request_simple, service_id_attrs};

/// Decode a nested `IPVS_STATS_ATTR_*` set (from `STATS` or `STATS64`).
pub fn decode_stats(buf: &[u8], is_64bit: bool) -> Result<Stats, CodecError> {
    let mut c = Counters::default();
    let mut r = Rates::default();
    for a in attrs(buf) {
        let a = a?;
        let slot = match a.kind {
            IPVS_STATS_ATTR_CONNS => &mut c.conns,
            IPVS_STATS_ATTR_INPKTS => &mut c.in_packets,
            IPVS_STATS_ATTR_OUTPKTS => &mut c.out_packets,
            IPVS_STATS_ATTR_INBYTES => &mut c.in_bytes,
            IPVS_STATS_ATTR_OUTBYTES => &mut c.out_bytes,
            IPVS_STATS_ATTR_CPS => &mut r.conns_per_second,
            IPVS_STATS_ATTR_INPPS => &mut r.in_packets_per_second,
            IPVS_STATS_ATTR_OUTPPS => &mut r.out_packets_per_second,
            IPVS_STATS_ATTR_INBPS => &mut r.in_bytes_per_second,
            IPVS_STATS_ATTR_OUTBPS => &mut r.out_bytes_per_second,
            // IPVS_STATS_ATTR_PAD and anything newer.
            _ => continue,
        };
        // The attribute's name is formatted only for an error: this runs ten times per
        // service and destination on every read.
        *slot = match a.payload.len() {
            4 | 8 => get_uint(&a, "")?,
            n => {
                return err(format!(
                    "IPVS_STATS_ATTR {}: payload is {n} byte(s), expected 4 or 8",
                    a.kind
                ))
            }
        };
    }
    Ok(Stats {
        counters: c,
        rates: r,
        is_64bit,
    })
}

/// Choose `STATS64` over `STATS`; an error when neither is present.
/// `who` names the service or destination in an error; it is called only then (formatting an
/// address for every service and destination of every read cost more than decoding them).
fn pick_stats(
    stats: Option<&[u8]>,
    stats64: Option<&[u8]>,
    who: impl Fn() -> String,
) -> Result<Stats, CodecError> {
    match (stats64, stats) {
        (Some(b), _) => {
            decode_stats(b, true).map_err(|e| CodecError(format!("{} STATS64: {e}", who())))
        }
        (None, Some(b)) => {
            decode_stats(b, false).map_err(|e| CodecError(format!("{} STATS: {e}", who())))
        }
        (None, None) => err(format!("{} has neither STATS64 nor STATS", who())),
    }
}

fn family_of(raw: u16, what: &str) -> Result<AddressFamily, CodecError> {
    AddressFamily::from_raw(raw)
        .map_or_else(|| err(format!("{what}: unknown address family {raw}")), Ok)
}

/// Decode the attribute set nested in `IPVS_CMD_ATTR_SERVICE` (destinations left empty).
pub fn decode_service(buf: &[u8]) -> Result<Service, CodecError> {
    let mut af = None;
    let mut protocol = None;
    let mut addr = None;
    let mut port = None;
    let mut fwmark = None;
    let mut sched = None;
    let mut flags = None;
    let mut timeout = None;
    let mut netmask = None;
    let mut pe_name = None;
    let mut stats = None;
    let mut stats64 = None;
    for a in attrs(buf) {
        let a = a?;
        match a.kind {
            IPVS_SVC_ATTR_AF => af = Some(get_u16(&a, "IPVS_SVC_ATTR_AF")?),
            IPVS_SVC_ATTR_PROTOCOL => protocol = Some(get_u16(&a, "IPVS_SVC_ATTR_PROTOCOL")?),
            IPVS_SVC_ATTR_ADDR => addr = Some(a),
            IPVS_SVC_ATTR_PORT => port = Some(get_be16(&a, "IPVS_SVC_ATTR_PORT")?),
            IPVS_SVC_ATTR_FWMARK => fwmark = Some(get_u32(&a, "IPVS_SVC_ATTR_FWMARK")?),
            IPVS_SVC_ATTR_SCHED_NAME => sched = Some(get_str(&a, "IPVS_SVC_ATTR_SCHED_NAME")?),
            IPVS_SVC_ATTR_FLAGS => {
                // struct ip_vs_flags { __u32 flags; __u32 mask; }
                let b: [u8; 8] = fixed(&a, "IPVS_SVC_ATTR_FLAGS")?;
                flags = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
            IPVS_SVC_ATTR_TIMEOUT => timeout = Some(get_u32(&a, "IPVS_SVC_ATTR_TIMEOUT")?),
            IPVS_SVC_ATTR_NETMASK => netmask = Some(fixed::<4>(&a, "IPVS_SVC_ATTR_NETMASK")?),
            IPVS_SVC_ATTR_PE_NAME => pe_name = Some(get_str(&a, "IPVS_SVC_ATTR_PE_NAME")?),
            IPVS_SVC_ATTR_STATS => stats = Some(a.payload),
            IPVS_SVC_ATTR_STATS64 => stats64 = Some(a.payload),
            _ => {}
        }
    }
    let Some(af) = af else {
        return err("service has no IPVS_SVC_ATTR_AF");
    };
    let family = family_of(af, "IPVS_SVC_ATTR_AF")?;
    let key = match (fwmark, protocol, addr, port) {
        (Some(mark), _, _, _) if mark != 0 => ServiceKey::Fwmark { family, mark },
        (_, Some(p), Some(a), Some(port)) => ServiceKey::Addr {
            protocol: Protocol::from_raw(p).map_or_else(
                || err(format!("IPVS_SVC_ATTR_PROTOCOL: unknown protocol {p}")),
                Ok,
            )?,
            address: get_addr(&a, family, "IPVS_SVC_ATTR_ADDR")?,
            port,
        },
        _ => {
            return err(
                "service has neither a non-zero IPVS_SVC_ATTR_FWMARK nor PROTOCOL+ADDR+PORT",
            )
        }
    };
    let Some(scheduler) = sched else {
        return err(format!("service {key}: no IPVS_SVC_ATTR_SCHED_NAME"));
    };
    let Some(flags) = flags else {
        return err(format!("service {key}: no IPVS_SVC_ATTR_FLAGS"));
    };
    // The kernel echoes svc->netmask as stored: an IPv4 mask in network order, an IPv6 prefix
    // length in host order (ipvsadm sends it with NLA_PUT_U32).
    let netmask = match (netmask, family) {
        (Some(b), AddressFamily::Inet) => u32::from_be_bytes(b),
        (Some(b), AddressFamily::Inet6) => u32::from_ne_bytes(b),
        (None, _) => 0,
    };
    let stats = pick_stats(stats, stats64, || format!("service {key}"))?;
    Ok(Service {
        key,
        scheduler,
        flags: ServiceFlags::from_raw(flags),
        persistence_timeout: timeout.unwrap_or(0),
        netmask,
        pe_name: pe_name.filter(|s| !s.is_empty()),
        stats,
        destinations: Vec::new(),
    })
}

/// Decode the attribute set nested in `IPVS_CMD_ATTR_DEST`. `service_family` is used when the
/// kernel does not send `IPVS_DEST_ATTR_ADDR_FAMILY` (before Linux 4.x mixed-family support).
pub fn decode_dest(buf: &[u8], service_family: AddressFamily) -> Result<Destination, CodecError> {
    let mut addr = None;
    let mut port = None;
    let mut fwd = None;
    let mut weight = None;
    let mut u_thresh = 0;
    let mut l_thresh = 0;
    let mut active = 0;
    let mut inact = 0;
    let mut persist = 0;
    let mut stats = None;
    let mut stats64 = None;
    let mut af = None;
    let mut tun_type = None;
    let mut tun_port = 0;
    let mut tun_flags = 0;
    for a in attrs(buf) {
        let a = a?;
        match a.kind {
            IPVS_DEST_ATTR_ADDR => addr = Some(a),
            IPVS_DEST_ATTR_PORT => port = Some(get_be16(&a, "IPVS_DEST_ATTR_PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => fwd = Some(get_u32(&a, "IPVS_DEST_ATTR_FWD_METHOD")?),
            IPVS_DEST_ATTR_WEIGHT => weight = Some(get_u32(&a, "IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => u_thresh = get_u32(&a, "IPVS_DEST_ATTR_U_THRESH")?,
            IPVS_DEST_ATTR_L_THRESH => l_thresh = get_u32(&a, "IPVS_DEST_ATTR_L_THRESH")?,
            IPVS_DEST_ATTR_ACTIVE_CONNS => active = get_u32(&a, "IPVS_DEST_ATTR_ACTIVE_CONNS")?,
            IPVS_DEST_ATTR_INACT_CONNS => inact = get_u32(&a, "IPVS_DEST_ATTR_INACT_CONNS")?,
            IPVS_DEST_ATTR_PERSIST_CONNS => persist = get_u32(&a, "IPVS_DEST_ATTR_PERSIST_CONNS")?,
            IPVS_DEST_ATTR_STATS => stats = Some(a.payload),
            IPVS_DEST_ATTR_STATS64 => stats64 = Some(a.payload),
            IPVS_DEST_ATTR_ADDR_FAMILY => af = Some(get_u16(&a, "IPVS_DEST_ATTR_ADDR_FAMILY")?),
            IPVS_DEST_ATTR_TUN_TYPE => tun_type = Some(get_u8(&a, "IPVS_DEST_ATTR_TUN_TYPE")?),
            IPVS_DEST_ATTR_TUN_PORT => tun_port = get_be16(&a, "IPVS_DEST_ATTR_TUN_PORT")?,
            IPVS_DEST_ATTR_TUN_FLAGS => tun_flags = get_u16(&a, "IPVS_DEST_ATTR_TUN_FLAGS")?,
            _ => {}
        }
    }
    let family = match af {
        Some(raw) => family_of(raw, "IPVS_DEST_ATTR_ADDR_FAMILY")?,
        None => service_family,
    };
    let Some(addr) = addr else {
        return err("destination has no IPVS_DEST_ATTR_ADDR");
    };
    let address = get_addr(&addr, family, "IPVS_DEST_ATTR_ADDR")?;
    let Some(port) = port else {
        return err(format!("destination {address}: no IPVS_DEST_ATTR_PORT"));
    };
    let Some(fwd) = fwd else {
        return err(format!(
            "destination {address}: no IPVS_DEST_ATTR_FWD_METHOD"
        ));
    };
    let forward = ForwardMethod::from_raw(fwd).map_or_else(
        || {
            err(format!(
                "destination {address}: unknown forwarding method {fwd:#x}"
            ))
        },
        Ok,
    )?;
    let Some(weight) = weight else {
        return err(format!("destination {address}: no IPVS_DEST_ATTR_WEIGHT"));
    };
    let tunnel = match (forward, tun_type) {
        (ForwardMethod::Tunnel, Some(t)) => Some(Tunnel {
            kind: TunnelType::from_raw(t).map_or_else(
                || err(format!("destination {address}: unknown tunnel type {t}")),
                Ok,
            )?,
            port: tun_port,
            flags: tun_flags,
        }),
        _ => None,
    };
    let stats = pick_stats(stats, stats64, || format!("destination {address}"))?;
    Ok(Destination {
        address,
        family,
        port,
        forward,
        weight: i32::from_ne_bytes(weight.to_ne_bytes()),
        upper_threshold: u_thresh,
        lower_threshold: l_thresh,
        active_conns: active,
        inactive_conns: inact,
        persistent_conns: persist,
        tunnel,
        stats,
    })
}

/// Decode the attribute set nested in `IPVS_CMD_ATTR_DAEMON`.
pub fn decode_daemon(buf: &[u8]) -> Result<SyncDaemon, CodecError> {
    let mut state = None;
    let mut ifn = None;
    let mut sync_id = None;
    let mut max_len = 0;
    let mut group = None;
    let mut port = 0;
    let mut ttl = 0;
    for a in attrs(buf) {
        let a = a?;
        match a.kind {
            IPVS_DAEMON_ATTR_STATE => state = Some(get_u32(&a, "IPVS_DAEMON_ATTR_STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => ifn = Some(get_str(&a, "IPVS_DAEMON_ATTR_MCAST_IFN")?),
            IPVS_DAEMON_ATTR_SYNC_ID => sync_id = Some(get_u32(&a, "IPVS_DAEMON_ATTR_SYNC_ID")?),
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => max_len = get_u16(&a, "IPVS_DAEMON_ATTR_SYNC_MAXLEN")?,
            IPVS_DAEMON_ATTR_MCAST_GROUP => {
                let b: [u8; 4] = fixed(&a, "IPVS_DAEMON_ATTR_MCAST_GROUP")?;
                group = Some(IpAddr::V4(Ipv4Addr::from(b)));
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                let b: [u8; 16] = fixed(&a, "IPVS_DAEMON_ATTR_MCAST_GROUP6")?;
                group = Some(IpAddr::V6(Ipv6Addr::from(b)));
            }
            // Host order (`nla_put_u16`), unlike the service and destination ports: confirmed
            // on a real kernel capture (tests/vectors/get_daemon-lab-sync-daemon-*).
            IPVS_DAEMON_ATTR_MCAST_PORT => port = get_u16(&a, "IPVS_DAEMON_ATTR_MCAST_PORT")?,
            IPVS_DAEMON_ATTR_MCAST_TTL => ttl = get_u8(&a, "IPVS_DAEMON_ATTR_MCAST_TTL")?,
            _ => {}
        }
    }
    let role = match state {
        Some(IP_VS_STATE_MASTER) => SyncRole::Master,
        Some(IP_VS_STATE_BACKUP) => SyncRole::Backup,
        Some(s) => return err(format!("sync daemon: unknown IPVS_DAEMON_ATTR_STATE {s}")),
        None => return err("sync daemon has no IPVS_DAEMON_ATTR_STATE"),
    };
    let Some(interface) = ifn else {
        return err("sync daemon has no IPVS_DAEMON_ATTR_MCAST_IFN");
    };
    let Some(sync_id) = sync_id else {
        return err("sync daemon has no IPVS_DAEMON_ATTR_SYNC_ID");
    };
    Ok(SyncDaemon {
        role,
        interface,
        sync_id,
        max_len,
        mcast_group: group.filter(|g| !g.is_unspecified()),
        mcast_port: port,
        mcast_ttl: ttl,
    })
}

/// Decode a GET_SERVICE reply (attributes after the genl header).
pub fn decode_service_msg(attrs_buf: &[u8]) -> Result<Service, CodecError> {
    decode_service(nested(
        attrs_buf,
        IPVS_CMD_ATTR_SERVICE,
        "IPVS_CMD_ATTR_SERVICE",
    )?)
}

/// Decode a GET_DEST reply (attributes after the genl header).
pub fn decode_dest_msg(
    attrs_buf: &[u8],
    service_family: AddressFamily,
) -> Result<Destination, CodecError> {
    decode_dest(
        nested(attrs_buf, IPVS_CMD_ATTR_DEST, "IPVS_CMD_ATTR_DEST")?,
        service_family,
    )
}

/// Decode a GET_DAEMON reply (attributes after the genl header).
pub fn decode_daemon_msg(attrs_buf: &[u8]) -> Result<SyncDaemon, CodecError> {
    decode_daemon(nested(
        attrs_buf,
        IPVS_CMD_ATTR_DAEMON,
        "IPVS_CMD_ATTR_DAEMON",
    )?)
}

/// Decode a GET_INFO reply (attributes after the genl header).
pub fn decode_info(attrs_buf: &[u8]) -> Result<Info, CodecError> {
    let mut version = None;
    let mut size = None;
    for a in attrs(attrs_buf) {
        let a = a?;
        match a.kind {
            IPVS_INFO_ATTR_VERSION => version = Some(get_u32(&a, "IPVS_INFO_ATTR_VERSION")?),
            IPVS_INFO_ATTR_CONN_TAB_SIZE => {
                size = Some(get_u32(&a, "IPVS_INFO_ATTR_CONN_TAB_SIZE")?)
            }
            _ => {}
        }
    }
    match (version, size) {
        (Some(version), Some(conn_table_size)) => Ok(Info {
            version,
            conn_table_size,
        }),
        (None, _) => err("info reply has no IPVS_INFO_ATTR_VERSION"),
        (_, None) => err("info reply has no IPVS_INFO_ATTR_CONN_TAB_SIZE"),
    }
}

/// Decode a GET_CONFIG reply (attributes after the genl header).
pub fn decode_config(attrs_buf: &[u8]) -> Result<Timeouts, CodecError> {
    let mut t = Timeouts::default();
    let mut seen = false;
    for a in attrs(attrs_buf) {
        let a = a?;
        let slot = match a.kind {
            IPVS_CMD_ATTR_TIMEOUT_TCP => &mut t.tcp,
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => &mut t.tcp_fin,
            IPVS_CMD_ATTR_TIMEOUT_UDP => &mut t.udp,
            _ => continue,
        };
        *slot = get_u32(&a, &format!("IPVS_CMD_ATTR_TIMEOUT {}", a.kind))?;
        seen = true;
    }
    if seen {
        Ok(t)
    } else {
        err("config reply has no IPVS_CMD_ATTR_TIMEOUT_* attribute")
    }
}

/// Decode the controller's reply to CTRL_CMD_GETFAMILY: the family id.
pub fn decode_family_id(attrs_buf: &[u8]) -> Result<u16, CodecError> {
    for a in attrs(attrs_buf) {
        let a = a?;
        if a.kind == CTRL_ATTR_FAMILY_ID {
            return get_u16(&a, "CTRL_ATTR_FAMILY_ID");
        }
    }
    err("controller reply has no CTRL_ATTR_FAMILY_ID")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic PRNG for property-style tests (no external crate).
    pub(crate) struct XorShift(pub u64);
    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_attr(&mut v, kind, payload);
        v
    }

    fn stats_attrs(wide: bool, base: u64) -> Vec<u8> {
        let mut s = Vec::new();
        for k in 1..=10u16 {
            let v = base + u64::from(k);
            if wide || k == 4 || k == 5 {
                put_attr(&mut s, k, &v.to_ne_bytes());
            } else {
                put_attr(&mut s, k, &(v as u32).to_ne_bytes());
            }
        }
        s
    }

    /// Attribute chunks of a TCP 192.0.2.1:80 rr service, in kernel order.
    fn service_parts() -> Vec<Vec<u8>> {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[192, 0, 2, 1]);
        let mut flags = Vec::new();
        flags.extend_from_slice(&2u32.to_ne_bytes());
        flags.extend_from_slice(&u32::MAX.to_ne_bytes());
        vec![
            attr(IPVS_SVC_ATTR_AF, &2u16.to_ne_bytes()),
            attr(IPVS_SVC_ATTR_PROTOCOL, &6u16.to_ne_bytes()),
            attr(IPVS_SVC_ATTR_ADDR, &addr),
            attr(IPVS_SVC_ATTR_PORT, &80u16.to_be_bytes()),
            attr(IPVS_SVC_ATTR_SCHED_NAME, b"rr\0"),
            attr(IPVS_SVC_ATTR_FLAGS, &flags),
            attr(IPVS_SVC_ATTR_TIMEOUT, &0u32.to_ne_bytes()),
            attr(IPVS_SVC_ATTR_NETMASK, &u32::MAX.to_be_bytes()),
            attr(IPVS_SVC_ATTR_STATS, &stats_attrs(false, 0)),
            attr(IPVS_SVC_ATTR_STATS64, &stats_attrs(true, 1 << 40)),
        ]
    }

    #[test]
    fn service_decodes_and_prefers_stats64() {
        let s = decode_service(&service_parts().concat()).unwrap();
        assert_eq!(
            s.key,
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: "192.0.2.1".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!(s.scheduler, "rr");
        assert!(s.flags.hashed && !s.flags.persistent);
        assert_eq!(s.netmask, 0xffff_ffff);
        assert!(s.stats.is_64bit);
        assert_eq!(s.stats.counters.conns, (1 << 40) + 1);
        assert_eq!(s.stats.rates.out_bytes_per_second, (1 << 40) + 10);
    }

    #[test]
    fn service_falls_back_to_32bit_stats() {
        let mut parts = service_parts();
        parts.pop(); // no STATS64: an old kernel
        let s = decode_service(&parts.concat()).unwrap();
        assert!(!s.stats.is_64bit);
        assert_eq!(s.stats.counters.conns, 1);
        assert_eq!(s.stats.counters.in_bytes, 4);
    }

    #[test]
    fn attribute_order_does_not_matter() {
        let want = decode_service(&service_parts().concat()).unwrap();
        let mut parts = service_parts();
        parts.reverse();
        assert_eq!(decode_service(&parts.concat()).unwrap(), want);
        parts.rotate_left(3);
        assert_eq!(decode_service(&parts.concat()).unwrap(), want);
    }

    #[test]
    fn unknown_and_pad_attributes_are_skipped() {
        let want = decode_service(&service_parts().concat()).unwrap();
        let mut parts = service_parts();
        parts.insert(2, attr(99, b"future attribute"));
        parts.push(attr(IPVS_STATS_ATTR_PAD, &[]));
        parts.push(attr(200 | NLA_F_NESTED, &attr(1, b"x")));
        assert_eq!(decode_service(&parts.concat()).unwrap(), want);
    }

    #[test]
    fn missing_mandatory_attributes_are_named() {
        for (idx, name) in [(0, "AF"), (4, "SCHED_NAME"), (5, "FLAGS")] {
            let mut parts = service_parts();
            parts.remove(idx);
            let e = decode_service(&parts.concat()).unwrap_err().to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
        let mut parts = service_parts();
        parts.truncate(8); // neither STATS nor STATS64
        let e = decode_service(&parts.concat()).unwrap_err().to_string();
        assert!(e.contains("neither STATS64 nor STATS"), "{e}");
    }

    #[test]
    fn a_bad_counter_names_the_service_and_the_attribute() {
        // The names are formatted only on this path (not on every decode): the message must
        // still say which service, which stats set and which counter.
        let mut stats = stats_attrs(true, 0);
        put_attr(&mut stats, IPVS_STATS_ATTR_INBYTES, &[1, 2]);
        let mut parts = service_parts();
        parts[9] = attr(IPVS_SVC_ATTR_STATS64, &stats);
        let e = decode_service(&parts.concat()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "service TCP 192.0.2.1:80 STATS64: IPVS_STATS_ATTR {IPVS_STATS_ATTR_INBYTES}: payload is 2 byte(s), expected 4 or 8"
            )
        );
    }

    #[test]
    fn wrong_sizes_are_named() {
        let mut parts = service_parts();
        parts[3] = attr(IPVS_SVC_ATTR_PORT, &[0, 80, 0]);
        let e = decode_service(&parts.concat()).unwrap_err().to_string();
        assert!(
            e.contains("IPVS_SVC_ATTR_PORT") && e.contains("expected 2"),
            "{e}"
        );
        let mut parts = service_parts();
        parts[0] = attr(IPVS_SVC_ATTR_AF, &10u16.to_ne_bytes()); // IPv6 with a 16-byte v4 addr is fine
        assert!(decode_service(&parts.concat()).is_ok());
        parts[2] = attr(IPVS_SVC_ATTR_ADDR, &[1, 2, 3, 4]);
        let e = decode_service(&parts.concat()).unwrap_err().to_string();
        assert!(e.contains("IPv6 address payload is 4"), "{e}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = service_parts().concat();
        for cut in 0..full.len() {
            // Either a clean error or (when the cut falls on an attribute boundary after all
            // mandatory attributes) a value; never a panic.
            let _ = decode_service(&full[..cut]);
        }
        // Cutting inside the first attribute header is reported as such.
        let e = decode_service(&full[..2]).unwrap_err().to_string();
        assert!(e.contains("truncated attribute header"), "{e}");
        let e = decode_service(&full[..5]).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
    }

    #[test]
    fn fwmark_service_and_ipv6_prefix() {
        let mut s = Vec::new();
        put_attr(&mut s, IPVS_SVC_ATTR_AF, &10u16.to_ne_bytes());
        put_attr(&mut s, IPVS_SVC_ATTR_FWMARK, &7u32.to_ne_bytes());
        put_attr(&mut s, IPVS_SVC_ATTR_SCHED_NAME, b"sh\0");
        put_attr(&mut s, IPVS_SVC_ATTR_PE_NAME, b"sip\0");
        let mut flags = 0x19u32.to_ne_bytes().to_vec();
        flags.extend_from_slice(&[0xff; 4]);
        put_attr(&mut s, IPVS_SVC_ATTR_FLAGS, &flags);
        put_attr(&mut s, IPVS_SVC_ATTR_TIMEOUT, &360u32.to_ne_bytes());
        put_attr(&mut s, IPVS_SVC_ATTR_NETMASK, &64u32.to_ne_bytes());
        put_attr(&mut s, IPVS_SVC_ATTR_STATS, &stats_attrs(false, 0));
        let svc = decode_service(&s).unwrap();
        assert_eq!(
            svc.key,
            ServiceKey::Fwmark {
                family: AddressFamily::Inet6,
                mark: 7
            }
        );
        assert_eq!(svc.netmask, 64);
        assert_eq!(svc.pe_name.as_deref(), Some("sip"));
        assert!(svc.flags.persistent && svc.flags.sched_flag_1 && svc.flags.sched_flag_2);
        assert_eq!(svc.persistence_timeout, 360);
    }

    fn dest_parts(fwd: u32) -> Vec<Vec<u8>> {
        let addr: [u8; 16] = "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets();
        vec![
            attr(IPVS_DEST_ATTR_ADDR, &addr),
            attr(IPVS_DEST_ATTR_PORT, &8080u16.to_be_bytes()),
            attr(IPVS_DEST_ATTR_FWD_METHOD, &fwd.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_WEIGHT, &(-1i32).to_ne_bytes()),
            attr(IPVS_DEST_ATTR_U_THRESH, &100u32.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_L_THRESH, &50u32.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_ACTIVE_CONNS, &9u32.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_INACT_CONNS, &8u32.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_PERSIST_CONNS, &7u32.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_ADDR_FAMILY, &10u16.to_ne_bytes()),
            attr(IPVS_DEST_ATTR_STATS64, &stats_attrs(true, 0)),
            attr(IPVS_DEST_ATTR_TUN_TYPE, &[1]),
            attr(IPVS_DEST_ATTR_TUN_PORT, &6080u16.to_be_bytes()),
            attr(IPVS_DEST_ATTR_TUN_FLAGS, &1u16.to_ne_bytes()),
        ]
    }

    #[test]
    fn tunnel_destination_with_own_family() {
        // IPv6 real server behind an IPv4 service (the dest's ADDR_FAMILY wins).
        let d = decode_dest(&dest_parts(2).concat(), AddressFamily::Inet).unwrap();
        assert_eq!(d.address, "2001:db8::10".parse::<IpAddr>().unwrap());
        assert_eq!(d.family, AddressFamily::Inet6);
        assert_eq!(d.port, 8080);
        assert_eq!(d.forward, ForwardMethod::Tunnel);
        assert_eq!(d.weight, -1);
        assert_eq!((d.upper_threshold, d.lower_threshold), (100, 50));
        assert_eq!(
            (d.active_conns, d.inactive_conns, d.persistent_conns),
            (9, 8, 7)
        );
        assert_eq!(
            d.tunnel,
            Some(Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: 1
            })
        );
        let masq = decode_dest(&dest_parts(0).concat(), AddressFamily::Inet).unwrap();
        assert_eq!(masq.tunnel, None);
    }

    #[test]
    fn destination_errors_are_named() {
        let e = decode_dest(&dest_parts(7).concat(), AddressFamily::Inet)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown forwarding method"), "{e}");
        let mut p = dest_parts(2);
        p[11] = attr(IPVS_DEST_ATTR_TUN_TYPE, &[9]);
        let e = decode_dest(&p.concat(), AddressFamily::Inet)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown tunnel type 9"), "{e}");
        let mut p = dest_parts(0);
        p.remove(9); // no ADDR_FAMILY: the service's (IPv4) applies, and 16 bytes are fine
        let d = decode_dest(&p.concat(), AddressFamily::Inet).unwrap();
        assert_eq!(d.address, "32.1.13.184".parse::<IpAddr>().unwrap());
        let mut p = dest_parts(0);
        p.remove(0);
        let e = decode_dest(&p.concat(), AddressFamily::Inet)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no IPVS_DEST_ATTR_ADDR"), "{e}");
    }

    #[test]
    fn daemon_ipv6_group_and_errors() {
        let mut d = Vec::new();
        put_attr(&mut d, IPVS_DAEMON_ATTR_STATE, &2u32.to_ne_bytes());
        put_attr(&mut d, IPVS_DAEMON_ATTR_MCAST_IFN, b"bond0\0");
        put_attr(&mut d, IPVS_DAEMON_ATTR_SYNC_ID, &0u32.to_ne_bytes());
        put_attr(
            &mut d,
            IPVS_DAEMON_ATTR_MCAST_GROUP6,
            &"ff02::8".parse::<Ipv6Addr>().unwrap().octets(),
        );
        let sd = decode_daemon(&d).unwrap();
        assert_eq!(sd.role, SyncRole::Backup);
        assert_eq!(sd.interface, "bond0");
        assert_eq!(sd.mcast_group, Some("ff02::8".parse().unwrap()));
        let mut bad = Vec::new();
        put_attr(&mut bad, IPVS_DAEMON_ATTR_STATE, &5u32.to_ne_bytes());
        assert!(decode_daemon(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown IPVS_DAEMON_ATTR_STATE 5"));
    }

    #[test]
    fn info_config_and_family() {
        assert!(decode_info(&[])
            .unwrap_err()
            .to_string()
            .contains("VERSION"));
        assert!(decode_config(&[]).is_err());
        assert!(decode_family_id(&attr(CTRL_ATTR_FAMILY_ID, &[1, 2, 3]))
            .unwrap_err()
            .to_string()
            .contains("expected 2"));
        assert!(split_genl(&[1, 2, 3]).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let len = (rng.next() % 200) as usize;
            let mut b = rng.bytes(len);
            // Half of the inputs start with a plausible header so the walk goes deeper.
            if i % 2 == 0 && b.len() >= 4 {
                let l = (rng.next() % 64) as u16;
                b[..2].copy_from_slice(&l.to_ne_bytes());
                b[2] = (rng.next() % 16) as u8;
                b[3] = 0;
            }
            let _ = decode_service(&b);
            let _ = decode_dest(&b, AddressFamily::Inet);
            let _ = decode_dest(&b, AddressFamily::Inet6);
            let _ = decode_daemon(&b);
            let _ = decode_stats(&b, true);
            let _ = decode_info(&b);
            let _ = decode_config(&b);
            let _ = decode_family_id(&b);
            let _ = decode_service_msg(&b);
            let _ = decode_dest_msg(&b, AddressFamily::Inet);
            let _ = decode_daemon_msg(&b);
            let _ = split_genl(&b);
        }
        // Random mutations of a valid message.
        let valid = attr(IPVS_CMD_ATTR_SERVICE, &service_parts().concat());
        for _ in 0..20_000 {
            let mut m = valid.clone();
            for _ in 0..=(rng.next() % 4) {
                let at = (rng.next() as usize) % m.len();
                m[at] = rng.next() as u8;
            }
            let _ = decode_service_msg(&m);
        }
    }
}
