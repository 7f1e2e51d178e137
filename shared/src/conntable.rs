//! Aggregating the connection table (`/proc/net/ip_vs_conn`) into counts.
//!
//! The table can hold millions of entries; the aggregator streams it and keeps only counts, so
//! its memory depends on the number of distinct (service, destination, state) groups, never on the
//! number of connections.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Protocol column of `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnProtocol {
    Tcp,
    Udp,
    Sctp,
    /// A persistence template (not a real connection): protocol column `IP` (fwmark services),
    /// or any protocol with client port 0 (address services' templates carry the service's
    /// protocol).
    Template,
}

/// What a group of connections shares: the virtual address/port they were addressed to, the
/// destination they were scheduled to, and the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnGroup {
    pub protocol: ConnProtocol,
    pub virtual_address: IpAddr,
    pub virtual_port: u16,
    pub dest_address: IpAddr,
    pub dest_port: u16,
    /// State name as the kernel prints it (`ESTABLISHED`, `SYN_RECV`, `UDP`, `COOKIE_ECHOED`,
    /// `NONE` for templates, …), upper case.
    pub state: String,
}

/// Where aggregation stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnTableLimits {
    /// Stop after this many entries.
    pub max_entries: Option<u64>,
    /// Stop after this much time.
    pub max_duration: Option<Duration>,
}

/// Result of one pass over the connection table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnTableSummary {
    /// Count per group (templates included, with `protocol: template`).
    pub groups: BTreeMap<ConnGroup, u64>,
    /// Entries read (connections and templates).
    pub entries: u64,
    /// `true` when a limit stopped the pass before the end of the table: counts are partial.
    pub truncated: bool,
    /// Lines that could not be parsed (skipped, counted, never fatal).
    pub malformed_lines: u64,
}

/// Default size of each `read()` on `/proc/net/ip_vs_conn`: 1 MiB. Kernels before ~6.14
/// restart the connection-hash walk on every read of that file, so small reads make a pass
/// quadratic in the table size; one large read per chunk keeps it linear.
pub const DEFAULT_READ_BUFFER: usize = 1 << 20;
/// Smallest accepted read size.
pub const MIN_READ_BUFFER: usize = 4096;
/// Longest accepted line; longer ones are counted as malformed and skipped.
const MAX_LINE: usize = 512;
/// Distinct unknown state names remembered; further unknown names count as malformed.
const MAX_EXTRA_STATES: usize = 64;
/// How often (in lines) the time limit is checked.
const TIME_CHECK_EVERY: u64 = 1024;

/// Every state name the kernel prints (`ip_vs_state_name`): TCP, UDP, SCTP, templates, errors.
pub const KNOWN_STATES: &[&str] = &[
    // TCP (tcp_state_name_table)
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
    // UDP
    "UDP",
    // persistence templates (ip_vs_ctpl_state_name_table; NONE is shared with TCP)
    "ASSURED",
    // SCTP (sctp_state_name_table)
    "INIT1",
    "INIT",
    "COOKIE_SENT",
    "COOKIE_REPLIED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECEIVED",
    "SHUTDOWN_ACK_SENT",
    "REJECTED",
    "CLOSED",
    // out-of-range state
    "ERR!",
];

/// A small, fast, non-cryptographic hasher (FxHash's multiply-rotate) for the per-line group
/// lookup. Keys come from the kernel's table; a hostile distribution could only slow the pass,
/// which the time limit bounds.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Index of a state name in [`KNOWN_STATES`], without hashing.
fn known_state(name: &[u8]) -> Option<u16> {
    let i = KNOWN_STATES.iter().position(|s| s.as_bytes() == name)?;
    u16::try_from(i).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// Addresses as 128-bit numbers (cheap to hash); `v6` bit 0 = vaddr, bit 1 = daddr.
    vaddr: u128,
    daddr: u128,
    vport: u16,
    dport: u16,
    state: u16,
    protocol: ConnProtocol,
    v6: u8,
}

fn addr_bits(a: IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(bits).unwrap_or(0)))
    }
}

/// Streaming aggregator: feed it lines of `/proc/net/ip_vs_conn` (header included), then
/// [`finish`](ConnAggregator::finish). Memory grows with the number of distinct groups only.
#[derive(Debug)]
pub struct ConnAggregator {
    counts: std::collections::HashMap<Key, u64, FxBuild>,
    state_names: Vec<String>,
    /// Unknown state names seen so far (known ones are matched directly).
    extra_states: std::collections::HashMap<Vec<u8>, u16>,
    limits: ConnTableLimits,
    started: std::time::Instant,
    entries: u64,
    lines: u64,
    malformed: u64,
    truncated: bool,
}

fn hex_nibble(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        _ => None,
    }
}

fn hex_field(s: &[u8], max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    s.iter()
        .try_fold(0u32, |acc, b| Some((acc << 4) | hex_nibble(*b)?))
}

/// `C0000201` (IPv4, host order after ntohl) or a full `%pI6` IPv6 address.
fn conn_addr(s: &[u8]) -> Option<IpAddr> {
    if s.len() == 8 && !s.contains(&b':') {
        return Some(IpAddr::V4(std::net::Ipv4Addr::from(hex_field(s, 8)?)));
    }
    let text = std::str::from_utf8(s).ok()?;
    text.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

fn conn_port(s: &[u8]) -> Option<u16> {
    hex_field(s, 4).and_then(|v| u16::try_from(v).ok())
}

impl ConnAggregator {
    /// A fresh aggregator; the time limit counts from now.
    pub fn new(limits: ConnTableLimits) -> Self {
        ConnAggregator {
            counts: std::collections::HashMap::default(),
            state_names: KNOWN_STATES.iter().map(|s| (*s).to_string()).collect(),
            extra_states: std::collections::HashMap::new(),
            limits,
            started: std::time::Instant::now(),
            entries: 0,
            lines: 0,
            malformed: 0,
            truncated: false,
        }
    }

    /// `true` once a limit has stopped the pass; further lines are ignored.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    fn state_id(&mut self, name: &[u8]) -> Option<u16> {
        if let Some(id) = known_state(name) {
            return Some(id);
        }
        if let Some(id) = self.extra_states.get(name) {
            return Some(*id);
        }
        if self.state_names.len() >= KNOWN_STATES.len() + MAX_EXTRA_STATES
            || name.len() > 32
            || !name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'!' | b'-'))
        {
            return None;
        }
        let id = u16::try_from(self.state_names.len()).ok()?;
        let text = std::str::from_utf8(name).ok()?.to_string();
        self.state_names.push(text);
        self.extra_states.insert(name.to_vec(), id);
        Some(id)
    }

    fn parse(&mut self, line: &[u8]) -> Option<Key> {
        let mut t = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|s| !s.is_empty());
        let protocol = match t.next()? {
            b"TCP" => ConnProtocol::Tcp,
            b"UDP" => ConnProtocol::Udp,
            b"SCTP" => ConnProtocol::Sctp,
            b"IP" => ConnProtocol::Template,
            _ => return None,
        };
        // The client address is not part of any group: only check it is there. The client
        // port is: a persistence template of an address service carries the service's
        // protocol (`TCP`, `UDP`, `SCTP`) and client port 0 (only fwmark templates say `IP`).
        let _caddr = t.next()?;
        let cport = conn_port(t.next()?)?;
        let protocol = if cport == 0 {
            ConnProtocol::Template
        } else {
            protocol
        };
        let vaddr = conn_addr(t.next()?)?;
        let vport = conn_port(t.next()?)?;
        let daddr = conn_addr(t.next()?)?;
        let dport = conn_port(t.next()?)?;
        let state_name = t.next()?;
        // Expires (seconds) must be there and numeric; PE name and data may follow.
        let expires = t.next()?;
        if expires.is_empty() || !expires.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let state = self.state_id(state_name)?;
        let (vaddr, v6v) = addr_bits(vaddr);
        let (daddr, v6d) = addr_bits(daddr);
        Some(Key {
            vaddr,
            daddr,
            vport,
            dport,
            state,
            protocol,
            v6: u8::from(v6v) | (u8::from(v6d) << 1),
        })
    }

    /// Feed one line (with or without its newline). Returns `false` when a limit has been
    /// reached and the caller should stop reading.
    pub fn push_line(&mut self, line: &[u8]) -> bool {
        if self.truncated {
            return false;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.lines += 1;
        if self.lines % TIME_CHECK_EVERY == 0 {
            if let Some(max) = self.limits.max_duration {
                if self.started.elapsed() >= max {
                    self.truncated = true;
                    return false;
                }
            }
        }
        if line.is_empty() || line.starts_with(b"Pro ") {
            return true;
        }
        if let Some(max) = self.limits.max_entries {
            if self.entries >= max {
                self.truncated = true;
                return false;
            }
        }
        match self.parse(line) {
            Some(key) => {
                self.entries += 1;
                *self.counts.entry(key).or_insert(0) += 1;
            }
            None => self.malformed += 1,
        }
        true
    }

    /// Count a line that was too long to hold (skipped).
    fn push_overlong(&mut self) {
        self.lines += 1;
        self.malformed += 1;
    }

    /// The summary so far.
    pub fn finish(self) -> ConnTableSummary {
        let mut groups = BTreeMap::new();
        for (k, n) in self.counts {
            let state = self
                .state_names
                .get(usize::from(k.state))
                .cloned()
                .unwrap_or_default();
            let g = ConnGroup {
                protocol: k.protocol,
                virtual_address: bits_addr(k.vaddr, k.v6 & 1 != 0),
                virtual_port: k.vport,
                dest_address: bits_addr(k.daddr, k.v6 & 2 != 0),
                dest_port: k.dport,
                state,
            };
            *groups.entry(g).or_insert(0) += n;
        }
        ConnTableSummary {
            groups,
            entries: self.entries,
            truncated: self.truncated,
            malformed_lines: self.malformed,
        }
    }
}

/// Aggregate a whole connection table from `r`, reading `read_buffer` bytes at a time (clamped
/// to at least [`MIN_READ_BUFFER`]). Stops early, with `truncated`, at `limits`.
pub fn aggregate_reader<R: std::io::Read>(
    mut r: R,
    read_buffer: usize,
    limits: &ConnTableLimits,
) -> std::io::Result<ConnTableSummary> {
    let mut agg = ConnAggregator::new(*limits);
    let mut buf = vec![0u8; read_buffer.max(MIN_READ_BUFFER)];
    // Bytes [0, filled) hold the unfinished tail of the previous read.
    let mut filled = 0usize;
    // Inside a line longer than MAX_LINE (or the buffer): drop bytes until its newline.
    let mut skipping = false;
    'read: while let Some(space) = buf.get_mut(filled..) {
        let n = match r.read(space) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = filled + n;
        let data = buf.get(..end).unwrap_or(&[]);
        let mut consumed = 0usize;
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(pos);
            if skipping {
                skipping = false;
            } else if line.len() > MAX_LINE {
                agg.push_overlong();
            } else if !agg.push_line(line) {
                break 'read;
            }
            rest = after.get(1..).unwrap_or(&[]);
            consumed += pos + 1;
        }
        let tail = end - consumed;
        if skipping || tail > MAX_LINE {
            // The current line is already too long: forget what we have of it.
            if !skipping {
                agg.push_overlong();
            }
            skipping = true;
            filled = 0;
        } else {
            buf.copy_within(consumed..end, 0);
            filled = tail;
        }
    }
    if filled > 0 && !skipping && !agg.is_truncated() {
        let last = buf.get(..filled).unwrap_or(&[]);
        agg.push_line(last);
    }
    Ok(agg.finish())
}
