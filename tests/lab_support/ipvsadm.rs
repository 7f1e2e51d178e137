//! Parsers for the text `ipvsadm` (1.31) prints: `-Ln`, `-Ln --exact --stats`, `-Ln --exact
//! --rate`, `-Ln --thresholds`, `-Ln --persistent-conn`, `-Ln --tun-info`, `-Lnc`,
//! `-Ln --timeout`, `-Ln --daemon`, and the kernel's `/proc/net/ip_vs_stats`.
//!
//! These are the lab's independent view of the kernel state, so they are strict: every line must
//! be understood, and anything unexpected is an error naming the line, never skipped.

use herald_shared::model::{AddressFamily, Protocol, ServiceKey, SyncRole, Timeouts};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// A parse failure: which line (1-based) and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

fn err<T>(line: usize, message: impl Into<String>) -> Result<T> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

fn num<T: std::str::FromStr>(line: usize, what: &str, tok: Option<&str>) -> Result<T> {
    match tok {
        None => err(line, format!("missing {what}")),
        Some(t) => t
            .parse()
            .or_else(|_| err(line, format!("{what} {t:?} is not a number"))),
    }
}

/// `IP Virtual Server version 1.2.1 (size=4096)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: String,
    pub conn_table_size: u32,
}

fn parse_header(line: usize, text: &str) -> Result<Header> {
    let rest = text
        .strip_prefix("IP Virtual Server version ")
        .ok_or_else(|| ParseError {
            line,
            message: format!("expected the version header, got {text:?}"),
        })?;
    let (version, size) = rest.split_once(" (size=").ok_or_else(|| ParseError {
        line,
        message: format!("no (size=N) in header {text:?}"),
    })?;
    let size = size.strip_suffix(')').ok_or_else(|| ParseError {
        line,
        message: format!("unterminated (size=N) in header {text:?}"),
    })?;
    Ok(Header {
        version: version.to_string(),
        conn_table_size: num(line, "table size", Some(size))?,
    })
}

/// Parse the service key at the start of `toks`; returns it and how many tokens it used.
fn parse_key(line: usize, toks: &[&str]) -> Result<(ServiceKey, usize)> {
    let proto = match toks.first() {
        Some(&"TCP") => Protocol::Tcp,
        Some(&"UDP") => Protocol::Udp,
        Some(&"SCTP") => Protocol::Sctp,
        Some(&"FWM") => {
            // ipvsadm prints the mark with %d: marks above 2^31 appear negative.
            let signed: i64 = num(line, "fwmark", toks.get(1).copied())?;
            let mark = match u32::try_from(signed) {
                Ok(m) => m,
                Err(_) => match i32::try_from(signed) {
                    Ok(neg) => neg as u32,
                    Err(_) => return err(line, format!("fwmark {signed} out of range")),
                },
            };
            if toks.get(2) == Some(&"IPv6") {
                return Ok((
                    ServiceKey::Fwmark {
                        family: AddressFamily::Inet6,
                        mark,
                    },
                    3,
                ));
            }
            return Ok((
                ServiceKey::Fwmark {
                    family: AddressFamily::Inet,
                    mark,
                },
                2,
            ));
        }
        other => return err(line, format!("unknown service protocol {other:?}")),
    };
    let addr = parse_sockaddr(line, toks.get(1).copied())?;
    Ok((
        ServiceKey::Addr {
            protocol: proto,
            address: addr.ip(),
            port: addr.port(),
        },
        2,
    ))
}

fn parse_sockaddr(line: usize, tok: Option<&str>) -> Result<SocketAddr> {
    let t = tok.ok_or_else(|| ParseError {
        line,
        message: "missing address:port".into(),
    })?;
    t.parse()
        .or_else(|_| err(line, format!("{t:?} is not an address:port")))
}

/// One service of any `-Ln` view, with its flags (list-style views only) and destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewService<D> {
    pub key: ServiceKey,
    /// The tokens after the key: scheduler and flags in list-style views, numbers in
    /// stats/rate views.
    pub info: ServiceInfo,
    pub dests: Vec<D>,
}

/// What list-style views print after the key; stats/rate views carry their numbers instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInfo {
    pub scheduler: String,
    /// Scheduler flag bits (1 = flag-1/sh-fallback/mh-fallback, 2 = flag-2/…-port, 4 = flag-3).
    pub sched_flags: u32,
    /// `persistent N`.
    pub persistent: Option<u32>,
    /// `mask 255.255.255.0` (IPv4) or `mask 64` (IPv6), verbatim.
    pub mask: Option<String>,
    /// `pe sip`.
    pub pe: Option<String>,
    /// `ops`.
    pub one_packet: bool,
    /// The five numbers of a stats/rate view.
    pub numbers: Option<[u64; 5]>,
}

fn parse_sched_flags(line: usize, text: &str) -> Result<u32> {
    let mut bits = 0;
    for f in text.split(',') {
        bits |= match f {
            "flag-1" | "sh-fallback" | "mh-fallback" => 1,
            "flag-2" | "sh-port" | "mh-port" => 2,
            "flag-3" => 4,
            other => return err(line, format!("unknown scheduler flag {other:?}")),
        };
    }
    Ok(bits)
}

fn parse_service_info(line: usize, toks: &[&str]) -> Result<ServiceInfo> {
    let mut info = ServiceInfo {
        scheduler: toks
            .first()
            .ok_or_else(|| ParseError {
                line,
                message: "missing scheduler".into(),
            })?
            .to_string(),
        ..ServiceInfo::default()
    };
    let mut i = 1;
    while let Some(&t) = toks.get(i) {
        match t {
            "persistent" => {
                info.persistent = Some(num(line, "persistence timeout", toks.get(i + 1).copied())?);
                i += 2;
            }
            "mask" => {
                info.mask = Some(
                    toks.get(i + 1)
                        .ok_or_else(|| ParseError {
                            line,
                            message: "mask without value".into(),
                        })?
                        .to_string(),
                );
                i += 2;
            }
            "pe" => {
                info.pe = Some(
                    toks.get(i + 1)
                        .ok_or_else(|| ParseError {
                            line,
                            message: "pe without name".into(),
                        })?
                        .to_string(),
                );
                i += 2;
            }
            "ops" => {
                info.one_packet = true;
                i += 1;
            }
            t if t.starts_with('(') && t.ends_with(')') && t.len() >= 2 => {
                info.sched_flags = parse_sched_flags(line, &t[1..t.len() - 1])?;
                i += 1;
            }
            other => return err(line, format!("unexpected service flag {other:?}")),
        }
    }
    Ok(info)
}

fn five(line: usize, toks: &[&str]) -> Result<[u64; 5]> {
    if toks.len() != 5 {
        return err(line, format!("expected 5 numbers, got {toks:?}"));
    }
    let mut out = [0u64; 5];
    for (o, t) in out.iter_mut().zip(toks) {
        *o = num(line, "counter", Some(t))?;
    }
    Ok(out)
}

/// Which `-Ln` view a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewKind {
    List,
    Numbers,
}

/// Parse any `-Ln` view: header, column titles, then services each followed by `  -> ` lines.
/// `dest` turns the tokens after `->` (address first) into the view's destination type.
fn parse_view<D>(
    text: &str,
    titles: &[&str],
    kind: ViewKind,
    mut dest: impl FnMut(usize, SocketAddr, &[&str]) -> Result<D>,
) -> Result<(Header, Vec<ViewService<D>>)> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (n, first) = lines.next().ok_or_else(|| ParseError {
        line: 1,
        message: "empty output".into(),
    })?;
    let header = parse_header(n, first)?;
    for want in titles {
        match lines.next() {
            Some((n, l)) if l.trim_end() == want.trim_end() => {
                let _ = n;
            }
            Some((n, l)) => return err(n, format!("expected column titles {want:?}, got {l:?}")),
            None => return err(n, format!("missing column titles {want:?}")),
        }
    }
    let mut services: Vec<ViewService<D>> = Vec::new();
    for (n, l) in lines {
        if let Some(rest) = l.strip_prefix("  -> ") {
            let toks: Vec<&str> = rest.split_whitespace().collect();
            let addr = parse_sockaddr(n, toks.first().copied())?;
            let d = dest(n, addr, toks.get(1..).unwrap_or(&[]))?;
            match services.last_mut() {
                Some(s) => s.dests.push(d),
                None => return err(n, "destination line before any service"),
            }
            continue;
        }
        let toks: Vec<&str> = l.split_whitespace().collect();
        if toks.is_empty() {
            return err(n, "blank line");
        }
        let (key, used) = parse_key(n, &toks)?;
        let rest = toks.get(used..).unwrap_or(&[]);
        let info = match kind {
            ViewKind::List => parse_service_info(n, rest)?,
            ViewKind::Numbers => ServiceInfo {
                numbers: Some(five(n, rest)?),
                ..ServiceInfo::default()
            },
        };
        services.push(ViewService {
            key,
            info,
            dests: Vec::new(),
        });
    }
    Ok((header, services))
}

/// Every view's destination type has an address.
pub trait DestAddr {
    fn addr(&self) -> SocketAddr;
}

macro_rules! dest_addr {
    ($($t:ty),*) => {$(
        impl DestAddr for $t {
            fn addr(&self) -> SocketAddr {
                self.addr
            }
        }
    )*};
}
dest_addr!(ListDest, NumbersDest, ThresholdDest, PersistDest, TunDest);

/// A destination in `ipvsadm -Ln`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDest {
    pub addr: SocketAddr,
    /// `Masq`, `Route`, `Tunnel`, `Local`, `Bypass`.
    pub forward: String,
    pub weight: i32,
    pub active: u32,
    pub inactive: u32,
}

/// `ipvsadm -Ln`.
pub fn parse_list(text: &str) -> Result<(Header, Vec<ViewService<ListDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        ],
        ViewKind::List,
        |n, addr, t| {
            if t.len() != 4 {
                return err(
                    n,
                    format!("expected Forward Weight ActiveConn InActConn, got {t:?}"),
                );
            }
            Ok(ListDest {
                addr,
                forward: t[0].to_string(),
                weight: num(n, "weight", Some(t[1]))?,
                active: num(n, "active conns", Some(t[2]))?,
                inactive: num(n, "inactive conns", Some(t[3]))?,
            })
        },
    )
}

/// A destination with five numbers (stats or rate view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumbersDest {
    pub addr: SocketAddr,
    pub numbers: [u64; 5],
}

/// `ipvsadm -Ln --exact --stats`: Conns InPkts OutPkts InBytes OutBytes.
pub fn parse_stats(text: &str) -> Result<(Header, Vec<ViewService<NumbersDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
            "  -> RemoteAddress:Port",
        ],
        ViewKind::Numbers,
        |n, addr, t| {
            Ok(NumbersDest {
                addr,
                numbers: five(n, t)?,
            })
        },
    )
}

/// `ipvsadm -Ln --exact --rate`: CPS InPPS OutPPS InBPS OutBPS.
pub fn parse_rate(text: &str) -> Result<(Header, Vec<ViewService<NumbersDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
            "  -> RemoteAddress:Port",
        ],
        ViewKind::Numbers,
        |n, addr, t| {
            Ok(NumbersDest {
                addr,
                numbers: five(n, t)?,
            })
        },
    )
}

/// A destination in `ipvsadm -Ln --thresholds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdDest {
    pub addr: SocketAddr,
    pub upper: u32,
    pub lower: u32,
    pub active: u32,
    pub inactive: u32,
}

/// `ipvsadm -Ln --thresholds`.
pub fn parse_thresholds(text: &str) -> Result<(Header, Vec<ViewService<ThresholdDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn",
            "  -> RemoteAddress:Port",
        ],
        ViewKind::List,
        |n, addr, t| {
            if t.len() != 4 {
                return err(
                    n,
                    format!("expected Uthreshold Lthreshold ActiveConn InActConn, got {t:?}"),
                );
            }
            Ok(ThresholdDest {
                addr,
                upper: num(n, "upper threshold", Some(t[0]))?,
                lower: num(n, "lower threshold", Some(t[1]))?,
                active: num(n, "active conns", Some(t[2]))?,
                inactive: num(n, "inactive conns", Some(t[3]))?,
            })
        },
    )
}

/// A destination in `ipvsadm -Ln --persistent-conn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistDest {
    pub addr: SocketAddr,
    pub weight: i32,
    pub persistent: u32,
    pub active: u32,
    pub inactive: u32,
}

/// `ipvsadm -Ln --persistent-conn`.
pub fn parse_pconn(text: &str) -> Result<(Header, Vec<ViewService<PersistDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn",
            "  -> RemoteAddress:Port",
        ],
        ViewKind::List,
        |n, addr, t| {
            if t.len() != 4 {
                return err(
                    n,
                    format!("expected Weight PersistConn ActiveConn InActConn, got {t:?}"),
                );
            }
            Ok(PersistDest {
                addr,
                weight: num(n, "weight", Some(t[0]))?,
                persistent: num(n, "persistent conns", Some(t[1]))?,
                active: num(n, "active conns", Some(t[2]))?,
                inactive: num(n, "inactive conns", Some(t[3]))?,
            })
        },
    )
}

/// A destination in `ipvsadm -Ln --tun-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunDest {
    pub addr: SocketAddr,
    pub forward: String,
    /// `n/a` for non-tunnel destinations, else e.g. `ipip`, `gue:6080,nocsum`, `gre,csum`
    /// (verbatim; see [`parse_tun_info`]).
    pub tun_info: String,
    pub weight: i32,
    pub active: u32,
    pub inactive: u32,
}

/// `ipvsadm -Ln --tun-info`.
pub fn parse_tun(text: &str) -> Result<(Header, Vec<ViewService<TunDest>>)> {
    parse_view(
        text,
        &[
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
        ],
        ViewKind::List,
        |n, addr, t| {
            if t.len() != 5 {
                return err(
                    n,
                    format!("expected Forward TunnelInfo Weight ActiveConn InActConn, got {t:?}"),
                );
            }
            Ok(TunDest {
                addr,
                forward: t[0].to_string(),
                tun_info: t[1].to_string(),
                weight: num(n, "weight", Some(t[2]))?,
                active: num(n, "active conns", Some(t[3]))?,
                inactive: num(n, "inactive conns", Some(t[4]))?,
            })
        },
    )
}

/// Tunnel info as ipvsadm prints it: type, GUE port, checksum flag bits
/// (`IP_VS_TUNNEL_ENCAP_FLAG_CSUM` = 1, `…_REMCSUM` = 2; `nocsum` = 0), and the checksum mode
/// named from ipvsadm's own token (`-c` nocsum, `+c` csum, `r+c` remcsum), so that the oracle
/// of the exporter's `tunnel_flags` label does not borrow the code under test's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunInfo {
    pub kind: &'static str,
    pub port: u16,
    pub flags: u16,
    pub csum: &'static str,
}

/// Parse ipvsadm's TunnelInfo column: `n/a` -> None; `ipip`; `gue:6080:-c` (nocsum),
/// `gue:6081:+c` (csum), `gue:6082:r+c` (remcsum); `gre:-c`, `gre:+c`.
pub fn parse_tun_info(line: usize, text: &str) -> Result<Option<TunInfo>> {
    if text == "n/a" {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split(':').collect();
    let csum = |t: &str| -> Result<(u16, &'static str)> {
        match t {
            "-c" => Ok((0, "nocsum")),
            "+c" => Ok((1, "csum")),
            "r+c" => Ok((2, "remcsum")),
            other => err(
                line,
                format!("unknown tunnel checksum flag {other:?} in {text:?}"),
            ),
        }
    };
    let info = match parts.as_slice() {
        ["ipip"] => TunInfo {
            kind: "ipip",
            port: 0,
            flags: 0,
            csum: "nocsum",
        },
        ["gue", port, flag] => {
            let (flags, csum) = csum(flag)?;
            TunInfo {
                kind: "gue",
                port: num(line, "GUE port", Some(port))?,
                flags,
                csum,
            }
        }
        ["gre", flag] => {
            let (flags, csum) = csum(flag)?;
            TunInfo {
                kind: "gre",
                port: 0,
                flags,
                csum,
            }
        }
        _ => return err(line, format!("unknown tunnel info {text:?}")),
    };
    Ok(Some(info))
}

/// `ipvsadm -Ln --timeout`: `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn parse_timeout(text: &str) -> Result<Timeouts> {
    let l = text.lines().next().unwrap_or_default();
    let rest = l
        .strip_prefix("Timeout (tcp tcpfin udp): ")
        .ok_or_else(|| ParseError {
            line: 1,
            message: format!("expected `Timeout (tcp tcpfin udp): …`, got {l:?}"),
        })?;
    let t: Vec<&str> = rest.split_whitespace().collect();
    if t.len() != 3 || text.lines().count() != 1 {
        return err(1, format!("expected exactly three timeouts, got {text:?}"));
    }
    Ok(Timeouts {
        tcp: num(1, "tcp timeout", Some(t[0]))?,
        tcp_fin: num(1, "tcpfin timeout", Some(t[1]))?,
        udp: num(1, "udp timeout", Some(t[2]))?,
    })
}

/// One line of `ipvsadm -Ln --daemon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub role: SyncRole,
    pub interface: String,
    pub sync_id: u32,
    pub max_len: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

/// `ipvsadm -Ln --daemon`:
/// `master sync daemon (mcast=eth0, syncid=7, maxlen=1400, group=224.0.0.81, port=8848, ttl=2)`.
pub fn parse_daemons(text: &str) -> Result<Vec<Daemon>> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        let (role, rest) = if let Some(r) = l.strip_prefix("master sync daemon (") {
            (SyncRole::Master, r)
        } else if let Some(r) = l.strip_prefix("backup sync daemon (") {
            (SyncRole::Backup, r)
        } else {
            return err(n, format!("unexpected daemon line {l:?}"));
        };
        let rest = rest.strip_suffix(')').ok_or_else(|| ParseError {
            line: n,
            message: format!("unterminated daemon line {l:?}"),
        })?;
        let mut d = Daemon {
            role,
            interface: String::new(),
            sync_id: 0,
            max_len: None,
            group: None,
            port: None,
            ttl: None,
        };
        let mut seen_ifn = false;
        for kv in rest.split(", ") {
            let (k, v) = kv.split_once('=').ok_or_else(|| ParseError {
                line: n,
                message: format!("{kv:?} is not key=value"),
            })?;
            match k {
                "mcast" => {
                    d.interface = v.to_string();
                    seen_ifn = true;
                }
                "syncid" => d.sync_id = num(n, "syncid", Some(v))?,
                "maxlen" => d.max_len = Some(num(n, "maxlen", Some(v))?),
                "group" => d.group = Some(num(n, "group", Some(v))?),
                "port" => d.port = Some(num(n, "port", Some(v))?),
                "ttl" => d.ttl = Some(num(n, "ttl", Some(v))?),
                other => return err(n, format!("unknown daemon field {other:?}")),
            }
        }
        if !seen_ifn {
            return err(n, "daemon line without mcast=");
        }
        out.push(d);
    }
    Ok(out)
}

/// Key of a group of connection entries, as `-Lnc` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    /// `tcp`, `udp`, `sctp`, or `template` (protocol `IP`, or a source port of 0: persistence
    /// templates of address services carry the service's protocol and a zero client port).
    pub protocol: String,
    pub virtual_addr: SocketAddr,
    pub dest_addr: SocketAddr,
    pub state: String,
}

/// `ipvsadm -Lnc`, aggregated: count per (protocol, virtual, destination, state).
pub fn parse_conns(text: &str) -> Result<BTreeMap<ConnKey, u64>> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, "IPVS connection entries")) => {}
        other => {
            return err(
                1,
                format!("expected `IPVS connection entries`, got {other:?}"),
            )
        }
    }
    match lines.next() {
        Some((_, l))
            if l.split_whitespace().eq([
                "pro",
                "expire",
                "state",
                "source",
                "virtual",
                "destination",
            ]) => {}
        other => return err(2, format!("expected the column titles, got {other:?}")),
    }
    let mut out = BTreeMap::new();
    for (n, l) in lines {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() != 6 {
            return err(n, format!("expected 6 columns, got {l:?}"));
        }
        let source = parse_sockaddr(n, Some(t[3]))?;
        let protocol = match t[0] {
            "IP" => "template".to_string(),
            _ if source.port() == 0 => "template".to_string(),
            "TCP" | "UDP" | "SCTP" => t[0].to_lowercase(),
            other => return err(n, format!("unknown protocol {other:?}")),
        };
        let key = ConnKey {
            protocol,
            virtual_addr: parse_sockaddr(n, Some(t[4]))?,
            dest_addr: parse_sockaddr(n, Some(t[5]))?,
            state: t[2].to_string(),
        };
        *out.entry(key).or_insert(0) += 1;
    }
    Ok(out)
}

/// `/proc/net/ip_vs_stats`: totals (hex) and rates (hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalStats {
    pub counters: [u64; 5],
    pub rates: [u64; 5],
}

/// Parse `/proc/net/ip_vs_stats`.
pub fn parse_global(text: &str) -> Result<GlobalStats> {
    let lines: Vec<&str> = text.lines().collect();
    let hex5 = |n: usize| -> Result<[u64; 5]> {
        let l = lines.get(n - 1).ok_or_else(|| ParseError {
            line: n,
            message: "missing line".into(),
        })?;
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() != 5 {
            return err(n, format!("expected 5 hex numbers, got {l:?}"));
        }
        let mut out = [0u64; 5];
        for (o, x) in out.iter_mut().zip(&t) {
            *o = u64::from_str_radix(x, 16)
                .or_else(|_| err(n, format!("{x:?} is not hexadecimal")))?;
        }
        Ok(out)
    };
    if lines.len() != 6 {
        return err(
            lines.len(),
            format!("expected 6 lines, got {}", lines.len()),
        );
    }
    Ok(GlobalStats {
        counters: hex5(3)?,
        rates: hex5(6)?,
    })
}
