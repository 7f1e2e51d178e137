//! Choosing and running a reader: which network namespace, which source (netlink or procfs).
//!
//! Consumers hold an [`IpvsSource`] and call it when they need fresh state (the exporter at scrape
//! time, the announcer at each health check). The real implementation reads the kernel; unit
//! tests use an in-memory fake implementing the same trait.

use crate::conntable::{ConnTableLimits, ConnTableSummary};
use crate::model::Snapshot;
use serde::Deserialize;
use std::path::PathBuf;

/// `[reader]` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderConfig {
    /// Network namespace to read: a name under `/run/netns` or an absolute path
    /// (`/proc/<pid>/ns/net`). `None` = the daemon's own namespace.
    pub netns: Option<String>,
    /// Which source to use.
    pub source: SourceKind,
    /// Root of procfs, for the procfs reader and the connection table (tests point it elsewhere).
    pub procfs_root: PathBuf,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            netns: None,
            source: SourceKind::Auto,
            procfs_root: PathBuf::from("/proc"),
        }
    }
}

/// Where the IPVS state comes from.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Generic netlink; procfs when netlink is refused for lack of CAP_NET_ADMIN.
    #[default]
    Auto,
    /// Generic netlink only.
    Netlink,
    /// `/proc/net/ip_vs*` only (no rates per service, no thresholds, no sync daemons).
    Procfs,
}

/// Why the IPVS state could not be read. Every variant's message names the problem and, where
/// there is one, the remedy.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("IPVS is not available: the ip_vs kernel module is not loaded (generic netlink family \"IPVS\" not found; try `modprobe ip_vs`)")]
    ModuleNotLoaded,
    #[error("permission denied reading IPVS over netlink: CAP_NET_ADMIN is needed (run as root or grant the capability)")]
    PermissionDenied,
    #[error("cannot enter network namespace {netns}: {reason}")]
    Netns { netns: String, reason: String },
    #[error("netlink error: {0}")]
    Netlink(String),
    #[error("malformed netlink message: {0}")]
    Decode(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Something that can produce the IPVS state on demand.
pub trait IpvsSource: Send + Sync {
    /// Services, destinations, info, timeouts, sync daemons and global totals.
    fn snapshot(&self) -> Result<Snapshot, ReadError>;

    /// Aggregate the connection table, stopping at `limits`.
    fn conn_table(&self, limits: &ConnTableLimits) -> Result<ConnTableSummary, ReadError>;
}
