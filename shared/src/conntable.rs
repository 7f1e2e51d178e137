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
    /// `IP`: a persistence template (not a real connection).
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
