//! The procfs reader: `/proc/net/ip_vs` (services and destinations) and `/proc/net/ip_vs_stats`
//! (global totals). It is the fallback when netlink is refused for lack of CAP_NET_ADMIN.
//!
//! Formats follow the kernel's `ip_vs_info_seq_show` and `ip_vs_stats_show`
//! (`net/netfilter/ipvs/ip_vs_ctl.c`):
//!
//! ```text
//! IP Virtual Server version 1.2.1 (size=4096)
//! Prot LocalAddress:Port Scheduler Flags
//!   -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//! TCP  C0000201:0050 wlc persistent 300 FFFFFF00
//!   -> C6336401:0050      Route   1      0          0
//! UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 rr ops
//! FWM  00000007 sh
//! ```
//!
//! Addresses and ports are hexadecimal (IPv4 in host order after `ntohl`), IPv6 addresses are
//! printed in full by `%pI6`. The persistence timeout is printed in **jiffies** (`svc->timeout`;
//! netlink divides by `HZ`), so the parser needs the kernel's `CONFIG_HZ` ([`kernel_hz`]); a real
//! Linux 6.1 capture (HZ=250) printed `persistent 150000` for `-p 600`. procfs has no per-service counters, rates, thresholds,
//! persistent-connection counts, tunnel details, timeouts or sync daemons: those fields are
//! zero/`None` in a procfs snapshot. A fwmark line does not say its family; it is reported as
//! IPv4.

use crate::model::{
    AddressFamily, Counters, Destination, ForwardMethod, GlobalStats, Info, Protocol, Rates,
    Service, ServiceFlags, ServiceKey, Stats,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A line that could not be parsed: 1-based line number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ProcParseError {
    pub line: usize,
    pub message: String,
}

fn perr<T>(line: usize, message: impl Into<String>) -> Result<T, ProcParseError> {
    Err(ProcParseError {
        line,
        message: message.into(),
    })
}

fn hex_u32(s: &str, what: &str, line: usize) -> Result<u32, ProcParseError> {
    if s.is_empty() || s.len() > 8 {
        return perr(
            line,
            format!("{what} {s:?} is not a hexadecimal 32-bit value"),
        );
    }
    u32::from_str_radix(s, 16).or_else(|_| {
        perr(
            line,
            format!("{what} {s:?} is not a hexadecimal 32-bit value"),
        )
    })
}

fn hex_u16(s: &str, what: &str, line: usize) -> Result<u16, ProcParseError> {
    if s.is_empty() || s.len() > 4 {
        return perr(
            line,
            format!("{what} {s:?} is not a hexadecimal 16-bit value"),
        );
    }
    u16::from_str_radix(s, 16).or_else(|_| {
        perr(
            line,
            format!("{what} {s:?} is not a hexadecimal 16-bit value"),
        )
    })
}

/// `C0000201:0050` or `[2001:0db8::1]:0050`.
fn addr_port(s: &str, line: usize) -> Result<(IpAddr, u16), ProcParseError> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((a, p)) = rest.split_once("]:") else {
            return perr(line, format!("address {s:?}: expected [IPv6]:PORT"));
        };
        let addr: Ipv6Addr = a
            .parse()
            .or_else(|_| perr(line, format!("address {a:?} is not an IPv6 address")))?;
        Ok((IpAddr::V6(addr), hex_u16(p, "port", line)?))
    } else {
        let Some((a, p)) = s.split_once(':') else {
            return perr(line, format!("address {s:?}: expected HEXADDR:HEXPORT"));
        };
        let addr = Ipv4Addr::from(hex_u32(a, "IPv4 address", line)?);
        Ok((IpAddr::V4(addr), hex_u16(p, "port", line)?))
    }
}

fn dec<T: std::str::FromStr>(
    s: Option<&str>,
    what: &str,
    line: usize,
) -> Result<T, ProcParseError> {
    let Some(s) = s else {
        return perr(line, format!("missing {what}"));
    };
    s.parse()
        .or_else(|_| perr(line, format!("{what} {s:?} is not a valid number")))
}

/// Parse the header `IP Virtual Server version 1.2.1 (size=4096)`.
fn parse_header(l: &str, line: usize) -> Result<Info, ProcParseError> {
    let bad = || perr(line, format!("unexpected header {l:?}"));
    let Some(rest) = l.strip_prefix("IP Virtual Server version ") else {
        return bad();
    };
    let Some((ver, size)) = rest.split_once(' ') else {
        return bad();
    };
    let mut parts = ver.split('.');
    let mut version = 0u32;
    for _ in 0..3 {
        let p: u32 = dec(parts.next(), "version component", line)?;
        if p > 255 {
            return perr(line, format!("version component {p} is over 255"));
        }
        version = (version << 8) | p;
    }
    if parts.next().is_some() {
        return bad();
    }
    let Some(size) = size
        .trim()
        .strip_prefix("(size=")
        .and_then(|s| s.strip_suffix(')'))
    else {
        return bad();
    };
    Ok(Info {
        version,
        conn_table_size: dec(Some(size), "connection table size", line)?,
    })
}

fn parse_service(l: &str, line: usize, hz: u32) -> Result<Service, ProcParseError> {
    let mut t = l.split_ascii_whitespace();
    let proto = t.next().unwrap_or_default();
    let key = match proto {
        "FWM" => {
            let Some(m) = t.next() else {
                return perr(line, "FWM service without a mark");
            };
            ServiceKey::Fwmark {
                family: AddressFamily::Inet,
                mark: hex_u32(m, "firewall mark", line)?,
            }
        }
        "TCP" | "UDP" | "SCTP" => {
            let protocol = match proto {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => Protocol::Sctp,
            };
            let Some(ap) = t.next() else {
                return perr(line, format!("{proto} service without an address"));
            };
            let (address, port) = addr_port(ap, line)?;
            ServiceKey::Addr {
                protocol,
                address,
                port,
            }
        }
        other => return perr(line, format!("unknown service protocol {other:?}")),
    };
    let Some(scheduler) = t.next() else {
        return perr(line, format!("service {key}: no scheduler"));
    };
    let mut raw = ServiceFlags::HASHED;
    let mut timeout = 0;
    let mut netmask = 0;
    while let Some(word) = t.next() {
        match word {
            "ops" => raw |= ServiceFlags::ONEPACKET,
            "persistent" => {
                raw |= ServiceFlags::PERSISTENT;
                let jiffies: u64 = dec(t.next(), "persistence timeout", line)?;
                timeout = u32::try_from(jiffies / u64::from(hz.max(1))).unwrap_or(u32::MAX);
                let Some(m) = t.next() else {
                    return perr(line, format!("service {key}: persistent without a mask"));
                };
                let printed = hex_u32(m, "persistence mask", line)?;
                netmask = match key.family() {
                    AddressFamily::Inet => printed,
                    // The kernel prints ntohl() of the host-order prefix length; accept both
                    // that and a plain prefix length.
                    AddressFamily::Inet6 => {
                        if printed <= 128 {
                            printed
                        } else {
                            printed.swap_bytes()
                        }
                    }
                };
            }
            other => return perr(line, format!("service {key}: unknown flag {other:?}")),
        }
    }
    Ok(Service {
        key,
        scheduler: scheduler.to_string(),
        flags: ServiceFlags::from_raw(raw),
        persistence_timeout: timeout,
        netmask,
        pe_name: None,
        stats: Stats {
            is_64bit: true,
            ..Stats::default()
        },
        destinations: Vec::new(),
    })
}

fn parse_dest(l: &str, line: usize) -> Result<Destination, ProcParseError> {
    let mut t = l.split_ascii_whitespace();
    if t.next() != Some("->") {
        return perr(line, "destination line does not start with ->");
    }
    let Some(ap) = t.next() else {
        return perr(line, "destination without an address");
    };
    let (address, port) = addr_port(ap, line)?;
    let forward = match t.next() {
        Some("Masq") => ForwardMethod::Masq,
        Some("Local") => ForwardMethod::Local,
        Some("Tunnel") => ForwardMethod::Tunnel,
        Some("Route") => ForwardMethod::Route,
        Some("Bypass") => ForwardMethod::Bypass,
        Some(other) => return perr(line, format!("unknown forwarding method {other:?}")),
        None => return perr(line, "destination without a forwarding method"),
    };
    let weight = dec(t.next(), "weight", line)?;
    let active_conns = dec(t.next(), "active connections", line)?;
    let inactive_conns = dec(t.next(), "inactive connections", line)?;
    // procfs has no thresholds, persistent connections, tunnel types nor statistics here.
    Ok(Destination {
        forward,
        weight,
        active_conns,
        inactive_conns,
        stats: Stats {
            is_64bit: true,
            ..Stats::default()
        },
        ..Destination::new(address, port)
    })
}

/// `CONFIG_HZ` of the running kernel, from `/boot/config-<release>` (release read from
/// `<procfs_root>/sys/kernel/osrelease`). `None` when either cannot be read.
pub fn kernel_hz(procfs_root: &std::path::Path) -> Option<u32> {
    let release = std::fs::read_to_string(procfs_root.join("sys/kernel/osrelease")).ok()?;
    let config = std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()?;
    config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
        .filter(|hz| *hz > 0)
}

/// Parse the whole text of `/proc/net/ip_vs`. `hz` is the kernel's `CONFIG_HZ`, to turn the
/// persistence timeouts (printed in jiffies) into seconds.
pub fn parse_ip_vs(text: &str, hz: u32) -> Result<(Info, Vec<Service>), ProcParseError> {
    let mut info = None;
    let mut services: Vec<Service> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = l.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if line == 1 {
            info = Some(parse_header(l.trim_end(), line)?);
            continue;
        }
        if trimmed.starts_with("Prot ") || trimmed.starts_with("-> RemoteAddress") {
            continue;
        }
        if trimmed.starts_with("->") {
            let d = parse_dest(trimmed, line)?;
            let Some(svc) = services.last_mut() else {
                return perr(line, "destination line before any service line");
            };
            svc.destinations.push(d);
        } else {
            services.push(parse_service(trimmed, line, hz)?);
        }
    }
    let Some(info) = info else {
        return perr(1, "empty file: no IP Virtual Server header");
    };
    for svc in &mut services {
        if let ServiceKey::Fwmark { family, .. } = &mut svc.key {
            if !svc.destinations.is_empty()
                && svc
                    .destinations
                    .iter()
                    .all(|d| d.family == AddressFamily::Inet6)
            {
                *family = AddressFamily::Inet6;
            }
        }
    }
    Ok((info, services))
}

/// Parse `/proc/net/ip_vs_stats`: two lines of five hexadecimal numbers (counters, then rates)
/// among the column headers.
pub fn parse_ip_vs_stats(text: &str) -> Result<GlobalStats, ProcParseError> {
    let mut rows: Vec<(usize, [u64; 5])> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let toks: Vec<&str> = l.split_ascii_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        // Header lines are words; value lines are all hex digits.
        if !toks
            .iter()
            .all(|t| t.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            continue;
        }
        let [a, b, c, d, e] = toks.as_slice() else {
            return perr(
                line,
                format!("expected 5 hexadecimal values, found {}", toks.len()),
            );
        };
        let mut v = [0u64; 5];
        for (slot, t) in v.iter_mut().zip([a, b, c, d, e]) {
            if t.len() > 16 {
                return perr(line, format!("value {t:?} is wider than 64 bits"));
            }
            *slot = u64::from_str_radix(t, 16)
                .or_else(|_| perr(line, format!("value {t:?} is not hexadecimal")))?;
        }
        rows.push((line, v));
    }
    match rows.as_slice() {
        [(_, c), (_, r)] => Ok(GlobalStats {
            counters: Counters {
                conns: c[0],
                in_packets: c[1],
                out_packets: c[2],
                in_bytes: c[3],
                out_bytes: c[4],
            },
            rates: Rates {
                conns_per_second: r[0],
                in_packets_per_second: r[1],
                out_packets_per_second: r[2],
                in_bytes_per_second: r[3],
                out_bytes_per_second: r[4],
            },
        }),
        _ => perr(
            rows.get(2).map_or(1, |r| r.0),
            format!(
                "expected a counters line and a rates line, found {} value line(s)",
                rows.len()
            ),
        ),
    }
}
