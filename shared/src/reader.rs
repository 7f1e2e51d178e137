//! Choosing and running a reader: which network namespace, which source (netlink or procfs).
//!
//! Consumers hold an [`IpvsSource`] and call it when they need fresh state (the exporter at scrape
//! time, the announcer at each health check). The real implementation reads the kernel; unit
//! tests use an in-memory fake implementing the same trait.

use crate::conntable::{ConnTableLimits, ConnTableSummary};
use crate::model::Snapshot;
use crate::netlink::io::{MODULE_NOT_LOADED, PERMISSION_DENIED};
use crate::netlink::{Capture, IpvsNetlink, NetlinkError};
use crate::netns::{run_in_netns, NetnsError};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Default `/proc`. Files are read from `<root>/net/…`, or `<root>/thread-self/net/…`
    /// when `netns` is set (the reading thread is the one inside the namespace).
    pub procfs_root: PathBuf,
    /// Longest time one read of the IPVS state (or one pass over the connection table without
    /// its own time limit) may take before it is abandoned with an error (TOML key `timeout`,
    /// e.g. `"10s"`; rounded up to whole milliseconds). Default `"10s"`; more than 0, at most
    /// one hour ([`MAX_TIMEOUT`]). Large tables on slow machines need more (10,000 services x 10
    /// destinations took ipvsadm 8-15 s in an emulated 2-vCPU VM).
    #[serde(deserialize_with = "crate::duration::millis")]
    pub timeout: Duration,
    /// Size of each `read()` on `/proc/net/ip_vs_conn`, in bytes (4096 to [`MAX_READ_BUFFER`]:
    /// the buffer is allocated for every pass). Default
    /// `1048576` (1 MiB): kernels before ~6.14 restart the hash walk on every read of that
    /// file, so small reads make a pass quadratic in the number of connections.
    pub conn_read_buffer: usize,
    /// The kernel's `CONFIG_HZ`, used only by the procfs source: `/proc/net/ip_vs` prints
    /// persistence timeouts in jiffies. Default: read from `/boot/config-<release>`; when that
    /// is unreadable, 250 (Debian's value) with a warning. Not 0.
    pub kernel_hz: Option<u32>,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            netns: None,
            source: SourceKind::Auto,
            procfs_root: PathBuf::from("/proc"),
            timeout: Duration::from_secs(10),
            conn_read_buffer: crate::conntable::DEFAULT_READ_BUFFER,
            kernel_hz: None,
        }
    }
}

/// The longest `[reader] timeout`: one hour.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest `[reader] conn_read_buffer`: 64 MiB.
pub const MAX_READ_BUFFER: usize = 64 << 20;

/// Why a `[reader]` value is refused; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reader.{key}: {message}")]
pub struct ReaderConfigError {
    /// The key, as written in the file.
    pub key: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl ReaderConfig {
    /// Check the values deserialisation alone cannot.
    pub fn validate(&self) -> Result<(), ReaderConfigError> {
        let bad = |key, message: String| Err(ReaderConfigError { key, message });
        if self.timeout.is_zero() {
            return bad("timeout", "must be more than 0s".into());
        }
        if self.timeout > MAX_TIMEOUT {
            return bad(
                "timeout",
                format!("is {} ms; it must be at most 1h", self.timeout.as_millis()),
            );
        }
        let min = crate::conntable::MIN_READ_BUFFER;
        if !(min..=MAX_READ_BUFFER).contains(&self.conn_read_buffer) {
            return bad(
                "conn_read_buffer",
                format!(
                    "is {}; it must be {min} to {MAX_READ_BUFFER} bytes",
                    self.conn_read_buffer
                ),
            );
        }
        if self.kernel_hz == Some(0) {
            return bad("kernel_hz", "must not be 0".into());
        }
        if self.netns.as_deref() == Some("") {
            return bad(
                "netns",
                "must not be empty (leave it out for our own)".into(),
            );
        }
        Ok(())
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
///
/// The lower layers' errors are wrapped ([`NetnsError`], [`NetlinkError`]), except that a
/// missing IPVS module and a missing capability are lifted to [`ReadError::ModuleNotLoaded`]
/// and [`ReadError::PermissionDenied`] whichever source found them, since callers act on those
/// two (the procfs fallback, the exporter's one-time warning).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}", MODULE_NOT_LOADED)]
    ModuleNotLoaded,
    #[error("{}", PERMISSION_DENIED)]
    PermissionDenied,
    /// The read could not run in its namespace, or did not answer in time. The message
    /// includes the namespace error's, so it is not also a `source()` (an error chain printed
    /// with `{:#}` would repeat it).
    #[error("{}", netns_text(.0))]
    Netns(NetnsError),
    /// The generic-netlink exchange failed.
    #[error(transparent)]
    Netlink(NetlinkError),
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

impl From<NetnsError> for ReadError {
    fn from(e: NetnsError) -> Self {
        ReadError::Netns(e)
    }
}

impl From<NetlinkError> for ReadError {
    fn from(e: NetlinkError) -> Self {
        match e {
            NetlinkError::ModuleNotLoaded => ReadError::ModuleNotLoaded,
            NetlinkError::PermissionDenied => ReadError::PermissionDenied,
            e => ReadError::Netlink(e),
        }
    }
}

/// A namespace failure in the reader's words: the timeout names the setting to raise.
fn netns_text(e: &NetnsError) -> String {
    match e {
        NetnsError::Timeout { timeout, .. } => format!(
            "gave up reading from the kernel after {timeout:?} (raise [reader] timeout, or dump --timeout)"
        ),
        NetnsError::Spawn { error, .. } => {
            format!("netlink error: cannot start reader thread: {error}")
        }
        NetnsError::NoAnswer { .. } => "netlink error: reader thread ended without an answer".into(),
        NetnsError::Open { .. } | NetnsError::Setns { .. } => e.to_string(),
    }
}

/// Something that can produce the IPVS state on demand.
pub trait IpvsSource: Send + Sync {
    /// Services, destinations, info, timeouts, sync daemons and global totals.
    fn snapshot(&self) -> Result<Snapshot, ReadError>;

    /// Aggregate the connection table, stopping at `limits`.
    fn conn_table(&self, limits: &ConnTableLimits) -> Result<ConnTableSummary, ReadError>;
}

/// The real reader: implements [`IpvsSource`] from a [`ReaderConfig`].
///
/// Every call runs on a fresh thread (inside `netns` when configured) and is bounded by
/// `[reader] timeout`. With `source = "auto"`, netlink is tried first and procfs is used when netlink
/// is refused for lack of CAP_NET_ADMIN (logged once as a warning).
#[derive(Debug)]
pub struct Reader {
    cfg: ReaderConfig,
    capture_dir: Option<PathBuf>,
    warned_fallback: std::sync::atomic::AtomicBool,
}

impl Reader {
    /// A reader for `cfg`.
    pub fn new(cfg: ReaderConfig) -> Self {
        Reader {
            cfg,
            capture_dir: None,
            warned_fallback: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Write every raw netlink reply to `dir` (see [`crate::netlink::Capture`]).
    pub fn with_capture(mut self, dir: PathBuf) -> Self {
        self.capture_dir = Some(dir);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &ReaderConfig {
        &self.cfg
    }

    /// Path of a file under `net/` in procfs, as seen from the reading thread.
    fn proc_net(cfg: &ReaderConfig, file: &str) -> PathBuf {
        if cfg.netns.is_some() {
            cfg.procfs_root.join("thread-self/net").join(file)
        } else {
            cfg.procfs_root.join("net").join(file)
        }
    }

    fn timeout(&self) -> Duration {
        self.cfg.timeout.max(Duration::from_millis(1))
    }

    fn read_file(path: &std::path::Path) -> Result<String, ReadError> {
        read_proc(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Procfs snapshot, on the current thread.
    fn procfs_snapshot(cfg: &ReaderConfig) -> Result<Snapshot, ReadError> {
        let path = Self::proc_net(cfg, "ip_vs");
        let text = match read_proc(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadError::ModuleNotLoaded)
            }
            Err(source) => return Err(ReadError::Io { path, source }),
        };
        let hz = match cfg
            .kernel_hz
            .or_else(|| crate::procfs::kernel_hz(&cfg.procfs_root))
        {
            Some(hz) => hz,
            None => {
                tracing::warn!(
                    "kernel CONFIG_HZ unknown (no /boot/config-<release>; set [reader] \
                     kernel_hz): assuming 250 for /proc/net/ip_vs persistence timeouts"
                );
                250
            }
        };
        let (info, services) =
            crate::procfs::parse_ip_vs(&text, hz).map_err(|e| ReadError::Parse {
                path: path.clone(),
                line: e.line,
                message: e.message,
            })?;
        Ok(Snapshot {
            source: crate::model::SnapshotSource::Procfs,
            info,
            services,
            timeouts: None,
            daemons: Vec::new(),
            global: Self::global_stats(cfg),
        })
    }

    /// `/proc/net/ip_vs_stats`, or `None` (logged) when it cannot be read or parsed.
    fn global_stats(cfg: &ReaderConfig) -> Option<crate::model::GlobalStats> {
        let path = Self::proc_net(cfg, "ip_vs_stats");
        let parsed = Self::read_file(&path).and_then(|t| {
            crate::procfs::parse_ip_vs_stats(&t).map_err(|e| ReadError::Parse {
                path: path.clone(),
                line: e.line,
                message: e.message,
            })
        });
        match parsed {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::debug!(error = %e, "no global IPVS totals");
                None
            }
        }
    }

    fn netlink_snapshot(
        cfg: &ReaderConfig,
        capture_dir: Option<&std::path::Path>,
    ) -> Result<Snapshot, ReadError> {
        let capture = capture_dir.map(Capture::new).transpose()?;
        let mut nl = IpvsNetlink::open(capture)?;
        let mut snap = nl.snapshot()?;
        snap.global = Self::global_stats(cfg);
        Ok(snap)
    }
}

/// Which source actually produced a snapshot (with `auto`, netlink or the procfs fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceUsed {
    /// Generic netlink: everything, with 64-bit counters and rates per service/destination.
    Netlink,
    /// `/proc/net/ip_vs*`: no per-service/destination counters or rates (they read as zero),
    /// no thresholds, persistent-connection counts, tunnel details, timeouts or sync daemons.
    Procfs,
}

impl Reader {
    /// Like [`IpvsSource::snapshot`], also telling which source was used.
    pub fn snapshot_with_source(&self) -> Result<(Snapshot, SourceUsed), ReadError> {
        let span = tracing::debug_span!("ipvs_snapshot", source = ?self.cfg.source, netns = ?self.cfg.netns);
        let _e = span.enter();
        let cfg = self.cfg.clone();
        let capture = self.capture_dir.clone();
        let (snap, fell_back) = run_in_netns::<_, ReadError, _>(
            self.cfg.netns.as_deref(),
            self.timeout(),
            move || match cfg.source {
                SourceKind::Netlink => {
                    Ok((Self::netlink_snapshot(&cfg, capture.as_deref())?, false))
                }
                SourceKind::Procfs => Ok((Self::procfs_snapshot(&cfg)?, false)),
                SourceKind::Auto => match Self::netlink_snapshot(&cfg, capture.as_deref()) {
                    Err(ReadError::PermissionDenied) => Ok((Self::procfs_snapshot(&cfg)?, true)),
                    other => Ok((other?, false)),
                },
            },
        )?;
        let used = match (self.cfg.source, fell_back) {
            (SourceKind::Procfs, _) | (SourceKind::Auto, true) => SourceUsed::Procfs,
            _ => SourceUsed::Netlink,
        };
        if fell_back
            && !self
                .warned_fallback
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "netlink refused (CAP_NET_ADMIN is needed); reading /proc/net/ip_vs instead: \
                 no per-service counters or rates, thresholds, timeouts or sync daemons"
            );
        }
        Ok((snap, used))
    }
}

impl IpvsSource for Reader {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        self.snapshot_with_source().map(|(s, _)| s)
    }

    fn conn_table(&self, limits: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        let span = tracing::debug_span!("ipvs_conn_table", netns = ?self.cfg.netns);
        let _e = span.enter();
        let cfg = self.cfg.clone();
        let limits = *limits;
        // The pass has its own time limit; give the thread a little more before giving up.
        let timeout = match limits.max_duration {
            Some(d) => d + self.timeout(),
            None => self.timeout(),
        };
        run_in_netns(self.cfg.netns.as_deref(), timeout, move || {
            let path = Self::proc_net(&cfg, "ip_vs_conn");
            let file = std::fs::File::open(&path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => ReadError::ModuleNotLoaded,
                _ => ReadError::Io {
                    path: path.clone(),
                    source,
                },
            })?;
            crate::conntable::aggregate_reader(file, cfg.conn_read_buffer, &limits)
                .map_err(|source| ReadError::Io { path, source })
        })
    }
}

/// A procfs file's whole text, read with `read()` calls of [`PROC_READ_SIZE`] bytes. The
/// kernel resumes a `seq_file` walk at the position the previous `read()` ended, and the IPVS
/// service walk does not count positions the same way when it resumes (only the reader's
/// namespace) as when it steps on (every namespace's services): in a namespace other than the
/// first, with services in another one too, reads that end mid-table lose services (seen in
/// the lab on Debian's 6.1 with `std::fs::read_to_string`, whose first `read()` is 32 bytes:
/// the last service was missing). One large read returns the table in one walk.
fn read_proc(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; PROC_READ_SIZE];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Size of each `read()` on `/proc/net/ip_vs` and `ip_vs_stats` (see [`read_proc`]).
const PROC_READ_SIZE: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ReaderConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn timeout_is_bounded_and_the_bound_is_accepted() {
        parse("timeout = \"1h\"").validate().unwrap();
        parse("timeout = \"1ms\"").validate().unwrap();
        for bad in ["1h 1ms", "500000000000y", "0s"] {
            let e = parse(&format!("timeout = {bad:?}")).validate().unwrap_err();
            assert_eq!(e.key, "timeout", "{bad}: {e}");
            assert!(e.to_string().starts_with("reader.timeout: "), "{e}");
        }
    }

    #[test]
    fn lower_errors_keep_the_reader_messages() {
        use std::error::Error as _;
        let t = ReadError::from(NetnsError::Timeout {
            thread: crate::netns::READER_THREAD,
            timeout: Duration::from_millis(1500),
        });
        assert_eq!(
            t.to_string(),
            "gave up reading from the kernel after 1.5s (raise [reader] timeout, or dump --timeout)"
        );
        assert!(t.source().is_none(), "the message already says it all");
        let n = ReadError::from(NetnsError::NoAnswer {
            thread: crate::netns::READER_THREAD,
        });
        assert_eq!(
            n.to_string(),
            "netlink error: reader thread ended without an answer"
        );
        let s = ReadError::from(NetnsError::Setns {
            netns: "blue".into(),
            path: "/run/netns/blue".into(),
            errno: nix::errno::Errno::EPERM,
        });
        assert_eq!(
            s.to_string(),
            "cannot enter network namespace blue: setns(/run/netns/blue): EPERM: Operation not \
             permitted (CAP_SYS_ADMIN is needed to change namespace; under systemd, \
             RestrictNamespaces= must allow net: see the ipvs-herald-netns.conf drop-in)"
        );
        assert!(matches!(
            ReadError::from(NetlinkError::PermissionDenied),
            ReadError::PermissionDenied
        ));
        assert!(matches!(
            ReadError::from(NetlinkError::ModuleNotLoaded),
            ReadError::ModuleNotLoaded
        ));
        let d = ReadError::from(NetlinkError::Decode("get_info: empty reply".into()));
        assert_eq!(
            d.to_string(),
            "malformed netlink message: get_info: empty reply"
        );
    }

    #[test]
    fn other_values_are_checked() {
        ReaderConfig::default().validate().unwrap();
        parse("conn_read_buffer = 4096").validate().unwrap();
        parse("conn_read_buffer = 67108864").validate().unwrap();
        for (text, key) in [
            ("conn_read_buffer = 4095", "conn_read_buffer"),
            ("conn_read_buffer = 67108865", "conn_read_buffer"),
            ("kernel_hz = 0", "kernel_hz"),
            ("netns = \"\"", "netns"),
        ] {
            assert_eq!(parse(text).validate().unwrap_err().key, key, "{text}");
        }
    }
}
