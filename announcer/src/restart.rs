//! The graceful-restart marker: what a process that stopped for a restart keeping its routes
//! (`ipvs-herald stop --keep-routes`) leaves for the next one, beside the state file
//! (`<announcer.state_file>.restart`, e.g. `/var/lib/ipvs-herald/state.json.restart`).
//!
//! It says when the old process closed its BGP sessions, which peers keep our routes as stale
//! (RFC 4724: they negotiated graceful restart) and for how long (the restart time advertised
//! to each), and which VIP groups were announced. The next process takes it (reads and removes
//! it) at start: a peer whose restart time is not over gets OPENs with the Restart State bit,
//! and the groups that were announced are decided by their first check
//! ([`crate::health::GroupTracker::resume`]). No marker, an unreadable one, or one whose restart
//! times are all over is a normal start: OPENs without the Restart State and Forwarding State
//! bits, after which a peer still holding stale routes of ours flushes them at once
//! (RFC 4724 §4.2).
//!
//! ```json
//! {"version":1,"stopped_at":1717171717.5,"peers":{"tor-a":120},"announced":["web"]}
//! ```

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The format version this build writes and reads.
const VERSION: u32 = 1;

/// A marker larger than this is refused as corrupt.
const MAX_MARKER: u64 = 1 << 20;

/// A peer whose restart time ends within this margin is not told we restarted: our OPEN would
/// race the peer's own flush.
pub const MARGIN: Duration = Duration::from_secs(1);

/// Where the marker of the state file `state_file` lives.
pub fn marker_path(state_file: &Path) -> PathBuf {
    let mut p = state_file.as_os_str().to_owned();
    p.push(".restart");
    PathBuf::from(p)
}

/// What a stop for restart leaves behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartMarker {
    version: u32,
    /// Unix time (seconds) just before the sessions were closed.
    pub stopped_at: f64,
    /// Peers that keep our routes as stale, with the restart time (seconds) advertised to each.
    pub peers: BTreeMap<String, u16>,
    /// VIP groups that were announced (phase `announced`).
    pub announced: BTreeSet<String>,
}

/// What the next process does with a fresh marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Peers whose restart time is not over, with the time left.
    pub peers: BTreeMap<String, Duration>,
    /// VIP groups that were announced.
    pub announced: BTreeSet<String>,
}

/// Why the marker could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("graceful-restart marker {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("graceful-restart marker {path} is corrupt: {error}")]
    Corrupt {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("graceful-restart marker {path} has version {version} (this ipvs-herald reads version {VERSION})")]
    Version { path: PathBuf, version: u32 },
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl RestartMarker {
    /// A marker for a stop at `stopped_at` (Unix seconds).
    pub fn new(stopped_at: f64, peers: BTreeMap<String, u16>, announced: BTreeSet<String>) -> Self {
        RestartMarker {
            version: VERSION,
            stopped_at,
            peers,
            announced,
        }
    }

    /// What is left of the restart at `now` (Unix seconds): the peers whose restart time has
    /// more than [`MARGIN`] to run. `None` when none has, or when `now` is before the stop (the
    /// clock went back: how long we were away is unknown, so no peer is told we restarted).
    pub fn resume(&self, now: f64) -> Option<Resume> {
        let away = now - self.stopped_at;
        if !away.is_finite() || away < 0.0 {
            return None;
        }
        let away = Duration::try_from_secs_f64(away).ok()?;
        let peers: BTreeMap<String, Duration> = self
            .peers
            .iter()
            .filter_map(|(name, t)| {
                let left = Duration::from_secs(u64::from(*t)).checked_sub(away)?;
                (left > MARGIN).then(|| (name.clone(), left))
            })
            .collect();
        if peers.is_empty() {
            return None;
        }
        Some(Resume {
            peers,
            announced: self.announced.clone(),
        })
    }

    /// Write the marker to `path`, atomically. Blocking.
    pub fn store(&self, path: &Path) -> Result<(), MarkerError> {
        let mut text = serde_json::to_string(self).map_err(|error| MarkerError::Corrupt {
            path: path.to_path_buf(),
            error,
        })?;
        text.push('\n');
        crate::state::write_atomically(path, text.as_bytes()).map_err(|source| MarkerError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Read the marker at `path` and remove it (it serves one start only). `Ok(None)` when there
    /// is none. A marker that cannot be read is removed too, and is an error. Blocking.
    pub fn take(path: &Path) -> Result<Option<RestartMarker>, MarkerError> {
        let read = crate::files::read_regular(path, MAX_MARKER);
        let bytes = match read {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                let _ = std::fs::remove_file(path);
                return Err(MarkerError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if let Err(source) = std::fs::remove_file(path) {
            // A marker that cannot be removed would make a later crash look like a restart.
            return Err(MarkerError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        let m: RestartMarker =
            serde_json::from_slice(&bytes).map_err(|error| MarkerError::Corrupt {
                path: path.to_path_buf(),
                error,
            })?;
        if m.version != VERSION {
            return Err(MarkerError::Version {
                path: path.to_path_buf(),
                version: m.version,
            });
        }
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> RestartMarker {
        RestartMarker::new(
            1000.0,
            [("a".to_string(), 120), ("b".to_string(), 10)].into(),
            ["web".to_string()].into(),
        )
    }

    /// Each peer keeps its own restart time; the margin and a clock that went back count.
    #[test]
    fn freshness_per_peer() {
        let m = marker();
        let r = m.resume(1005.0).unwrap();
        assert_eq!(
            r.peers,
            [
                ("a".to_string(), Duration::from_secs(115)),
                ("b".to_string(), Duration::from_secs(5))
            ]
            .into()
        );
        assert_eq!(r.announced, ["web".to_string()].into());
        // b's 10 s are over (within the margin at 1009.5), a's are not.
        let r = m.resume(1009.5).unwrap();
        assert_eq!(r.peers.keys().collect::<Vec<_>>(), ["a"]);
        // Every restart time over: a normal start.
        assert_eq!(m.resume(1119.0), None);
        assert_eq!(m.resume(5000.0), None);
        // The clock went back: how long we were away is unknown.
        assert_eq!(m.resume(999.0), None);
        assert_eq!(m.resume(f64::NAN), None);
        let no_peers = RestartMarker::new(1000.0, BTreeMap::new(), BTreeSet::new());
        assert_eq!(no_peers.resume(1000.0), None);
    }

    #[test]
    fn stored_marker_is_taken_once_and_bad_ones_are_errors() {
        let dir = std::env::temp_dir().join(format!("herald-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("state.json");
        let path = marker_path(&state);
        assert_eq!(path, dir.join("state.json.restart"));
        assert!(RestartMarker::take(&path).unwrap().is_none());
        let m = marker();
        m.store(&path).unwrap();
        assert_eq!(RestartMarker::take(&path).unwrap(), Some(m));
        assert!(!path.exists(), "taken once");
        assert!(RestartMarker::take(&path).unwrap().is_none());

        std::fs::write(&path, "{\"version\":1,").unwrap();
        let e = RestartMarker::take(&path).unwrap_err().to_string();
        assert!(e.contains("state.json.restart is corrupt"), "{e}");
        assert!(!path.exists(), "a corrupt marker is removed too");
        std::fs::write(
            &path,
            "{\"version\":7,\"stopped_at\":1.0,\"peers\":{},\"announced\":[]}",
        )
        .unwrap();
        let e = RestartMarker::take(&path).unwrap_err().to_string();
        assert!(e.contains("version 7"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
