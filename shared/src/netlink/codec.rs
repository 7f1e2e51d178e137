//! The pure generic-netlink codec for IPVS: bytes of an attribute set -> model types, and the
//! request builders. No socket I/O here, so every function is unit-tested with bytes.
//!
//! Decoders never panic: truncated attributes, wrong payload sizes, missing mandatory
//! attributes and unknown values are answered with a [`CodecError`] that names the attribute
//! and the problem. Unknown attribute types and `IPVS_STATS_ATTR_PAD` are skipped, and attribute
//! order does not matter.

use super::consts::*;
use crate::model::{
    AddressFamily, Counters, Destination, ForwardMethod, Info, Protocol, Rates, Service,
    ServiceFlags, ServiceKey, Stats, SyncDaemon, SyncRole, Timeouts, Tunnel, TunnelType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A malformed or incomplete message. The text names the attribute and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

/// Length of `struct nlattr`.
const NLA_HDRLEN: usize = 4;
/// Length of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

/// Round up to the 4-byte netlink alignment.
fn nla_align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// One netlink attribute, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type with the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits removed.
    pub kind: u16,
    /// The payload, without header or padding.
    pub payload: &'a [u8],
}

/// Iterator over the attributes of one attribute set. Yields an error (once, then stops) at a
/// header that is truncated or whose length runs past the end of the set.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walk the attributes in `buf`.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let Some((hdr, _)) = self.rest.split_first_chunk::<NLA_HDRLEN>() else {
            self.failed = true;
            return Some(err(format!(
                "truncated attribute header: {} byte(s) left, 4 needed",
                self.rest.len()
            )));
        };
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            self.failed = true;
            return Some(err(format!(
                "attribute type {kind}: length {len} is shorter than its header"
            )));
        }
        let Some(payload) = self.rest.get(NLA_HDRLEN..len) else {
            self.failed = true;
            return Some(err(format!(
                "attribute type {kind}: length {len} runs past the end of its set ({} byte(s) left)",
                self.rest.len()
            )));
        };
        // The last attribute's padding may be missing; never index past the end.
        let advance = nla_align(len).min(self.rest.len());
        self.rest = self.rest.get(advance..).unwrap_or(&[]);
        Some(Ok(Attr { kind, payload }))
    }
}

/// Split a generic-netlink payload into (command, version, attribute bytes).
pub fn split_genl(payload: &[u8]) -> Result<(u8, u8, &[u8]), CodecError> {
    match payload {
        [cmd, version, _, _, rest @ ..] => Ok((*cmd, *version, rest)),
        _ => err(format!(
            "generic netlink message of {} byte(s) is shorter than its 4-byte header",
            payload.len()
        )),
    }
}

fn fixed<const N: usize>(a: &Attr<'_>, what: &str) -> Result<[u8; N], CodecError> {
    <[u8; N]>::try_from(a.payload).or_else(|_| {
        err(format!(
            "{what}: payload is {} byte(s), expected {N}",
            a.payload.len()
        ))
    })
}

fn get_u8(a: &Attr<'_>, what: &str) -> Result<u8, CodecError> {
    Ok(fixed::<1>(a, what)?[0])
}

fn get_u16(a: &Attr<'_>, what: &str) -> Result<u16, CodecError> {
    Ok(u16::from_ne_bytes(fixed(a, what)?))
}

fn get_be16(a: &Attr<'_>, what: &str) -> Result<u16, CodecError> {
    Ok(u16::from_be_bytes(fixed(a, what)?))
}

fn get_u32(a: &Attr<'_>, what: &str) -> Result<u32, CodecError> {
    Ok(u32::from_ne_bytes(fixed(a, what)?))
}

/// A counter that is 32 bits in `*_ATTR_STATS` and 64 bits in `*_ATTR_STATS64`: accept both.
fn get_uint(a: &Attr<'_>, what: &str) -> Result<u64, CodecError> {
    match a.payload.len() {
        4 => Ok(u64::from(get_u32(a, what)?)),
        8 => Ok(u64::from_ne_bytes(fixed(a, what)?)),
        n => err(format!("{what}: payload is {n} byte(s), expected 4 or 8")),
    }
}

/// A NUL-terminated (or not) string attribute.
fn get_str(a: &Attr<'_>, what: &str) -> Result<String, CodecError> {
    let bytes = a.payload.split(|b| *b == 0).next().unwrap_or(a.payload);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => err(format!("{what}: not valid UTF-8 ({e})")),
    }
}

/// A `union nf_inet_addr` (16 bytes; IPv4 in the first 4) read according to `family`.
/// A bare 4-byte IPv4 or 16-byte IPv6 payload is accepted too.
fn get_addr(a: &Attr<'_>, family: AddressFamily, what: &str) -> Result<IpAddr, CodecError> {
    let p = a.payload;
    match family {
        AddressFamily::Inet => match p.first_chunk::<4>() {
            Some(b) if p.len() == 4 || p.len() == 16 => Ok(IpAddr::V4(Ipv4Addr::from(*b))),
            _ => err(format!(
                "{what}: IPv4 address payload is {} byte(s), expected 4 or 16",
                p.len()
            )),
        },
        AddressFamily::Inet6 => match <[u8; 16]>::try_from(p) {
            Ok(b) => Ok(IpAddr::V6(Ipv6Addr::from(b))),
            Err(_) => err(format!(
                "{what}: IPv6 address payload is {} byte(s), expected 16",
                p.len()
            )),
        },
    }
}

/// The nested attribute set of `kind` at the top level of a message, required.
fn nested<'a>(attrs_buf: &'a [u8], kind: u16, what: &str) -> Result<&'a [u8], CodecError> {
    for a in attrs(attrs_buf) {
        let a = a?;
        if a.kind == kind {
            return Ok(a.payload);
        }
    }
    err(format!("message has no {what} attribute"))
}

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
        *slot = get_uint(&a, &format!("IPVS_STATS_ATTR {}", a.kind))?;
    }
    Ok(Stats {
        counters: c,
        rates: r,
        is_64bit,
    })
}

/// Choose `STATS64` over `STATS`; an error when neither is present.
fn pick_stats(
    stats: Option<&[u8]>,
    stats64: Option<&[u8]>,
    who: &str,
) -> Result<Stats, CodecError> {
    match (stats64, stats) {
        (Some(b), _) => {
            decode_stats(b, true).map_err(|e| CodecError(format!("{who} STATS64: {e}")))
        }
        (None, Some(b)) => {
            decode_stats(b, false).map_err(|e| CodecError(format!("{who} STATS: {e}")))
        }
        (None, None) => err(format!("{who} has neither STATS64 nor STATS")),
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
    let stats = pick_stats(stats, stats64, &format!("service {key}"))?;
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
    let stats = pick_stats(stats, stats64, &format!("destination {address}"))?;
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
            IPVS_DAEMON_ATTR_MCAST_PORT => port = get_be16(&a, "IPVS_DAEMON_ATTR_MCAST_PORT")?,
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

/// Append one attribute (header, payload, padding) to `out`.
pub fn put_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = NLA_HDRLEN + payload.len();
    // Attribute sets built here are tiny; saturate rather than wrap for absurd sizes.
    let len16 = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len16.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (nla_align(len) - len), 0);
}

/// A generic-netlink payload: the 4-byte header followed by `attrs`.
pub fn genl_payload(cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(GENL_HDRLEN + attrs.len());
    v.extend_from_slice(&[cmd, version, 0, 0]);
    v.extend_from_slice(attrs);
    v
}

/// CTRL_CMD_GETFAMILY for `name` (send to [`GENL_ID_CTRL`]).
pub fn request_get_family(name: &str) -> Vec<u8> {
    let mut a = Vec::new();
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    put_attr(&mut a, CTRL_ATTR_FAMILY_NAME, &n);
    genl_payload(CTRL_CMD_GETFAMILY, 1, &a)
}

/// A request with no attributes (GET_INFO, GET_CONFIG, GET_SERVICE dump, GET_DAEMON dump).
pub fn request_simple(cmd: u8) -> Vec<u8> {
    genl_payload(cmd, IPVS_GENL_VERSION, &[])
}

/// The attribute set identifying a service, as the kernel's `ip_vs_genl_parse_service` wants
/// it for a lookup: AF plus FWMARK, or AF plus PROTOCOL, ADDR (16 bytes) and PORT.
pub fn service_id_attrs(key: &ServiceKey) -> Vec<u8> {
    let mut s = Vec::new();
    put_attr(
        &mut s,
        IPVS_SVC_ATTR_AF,
        &key.family().as_raw().to_ne_bytes(),
    );
    match key {
        ServiceKey::Fwmark { mark, .. } => {
            put_attr(&mut s, IPVS_SVC_ATTR_FWMARK, &mark.to_ne_bytes());
        }
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            put_attr(
                &mut s,
                IPVS_SVC_ATTR_PROTOCOL,
                &protocol.as_raw().to_ne_bytes(),
            );
            let mut addr = [0u8; 16];
            match address {
                IpAddr::V4(a) => {
                    let (head, _) = addr.split_at_mut(4);
                    head.copy_from_slice(&a.octets());
                }
                IpAddr::V6(a) => addr = a.octets(),
            }
            put_attr(&mut s, IPVS_SVC_ATTR_ADDR, &addr);
            put_attr(&mut s, IPVS_SVC_ATTR_PORT, &port.to_be_bytes());
        }
    }
    s
}

/// IPVS_CMD_GET_DEST (dump) for the destinations of one service.
pub fn request_get_dests(key: &ServiceKey) -> Vec<u8> {
    let mut a = Vec::new();
    put_attr(&mut a, IPVS_CMD_ATTR_SERVICE, &service_id_attrs(key));
    genl_payload(IPVS_CMD_GET_DEST, IPVS_GENL_VERSION, &a)
}
