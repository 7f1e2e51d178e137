//! The drains an operator asked for over the admin socket (`ipvs-herald drain web`,
//! `drain --all`), kept in a small JSON file (`announcer.state_file`) so that a restart — a
//! package upgrade, configuration management, a crash — never announces a group an operator
//! took out of service.
//!
//! The file is replaced atomically (temporary file in the same directory, `fsync`, `rename`,
//! `fsync` of the directory): after a crash at any point it holds either the old or the new
//! drains, never a mix or a truncated file. Writes are ordered by a generation number, so that
//! a slow write finishing after a newer one can never put older drains back on disk.
//!
//! ```json
//! {"version":1,"all":null,"groups":{"web":{"drain_time":30.0,"since":1717171717}}}
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The format version this build writes and reads.
const VERSION: u32 = 1;

/// A state file larger than this is refused as corrupt (a few hundred bytes per group).
pub const MAX_STATE_FILE: u64 = 1 << 20;

/// One drain: how long its draining announcement was to last, and when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drain {
    pub drain_time: Duration,
    /// Unix time of the request, for `status` and for the operator reading the file.
    pub since: u64,
}

impl Drain {
    /// A drain asked for now.
    pub fn now(drain_time: Duration) -> Self {
        Drain {
            drain_time,
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// Every admin drain in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainState {
    /// `drain --all`.
    pub all: Option<Drain>,
    /// Drains of single groups, by group name.
    pub groups: BTreeMap<String, Drain>,
}

/// What a state file cannot be.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {error}")]
    Corrupt { path: PathBuf, error: DecodeError },
}

/// What is wrong with a state file's text.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("version {0} (this ipvs-herald reads version {VERSION})")]
    Version(u32),
    #[error("drain_time {value}: {error}")]
    DrainTime {
        value: f64,
        error: std::time::TryFromFloatSecsError,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    all: Option<DiskDrain>,
    groups: BTreeMap<String, DiskDrain>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskDrain {
    /// Seconds.
    drain_time: f64,
    since: u64,
}

impl From<&Drain> for DiskDrain {
    fn from(d: &Drain) -> Self {
        DiskDrain {
            drain_time: d.drain_time.as_secs_f64(),
            since: d.since,
        }
    }
}

impl DiskDrain {
    fn to_drain(&self) -> Result<Drain, DecodeError> {
        let drain_time = Duration::try_from_secs_f64(self.drain_time).map_err(|error| {
            DecodeError::DrainTime {
                value: self.drain_time,
                error,
            }
        })?;
        Ok(Drain {
            drain_time,
            since: self.since,
        })
    }
}

impl DrainState {
    /// The file's text (one JSON line).
    pub fn encode(&self) -> String {
        let disk = OnDisk {
            version: VERSION,
            all: self.all.as_ref().map(DiskDrain::from),
            groups: self
                .groups
                .iter()
                .map(|(k, v)| (k.clone(), DiskDrain::from(v)))
                .collect(),
        };
        let mut text = serde_json::to_string(&disk).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parse the file's text; the error says what is wrong.
    pub fn decode(text: &[u8]) -> Result<DrainState, DecodeError> {
        let disk: OnDisk = serde_json::from_slice(text)?;
        if disk.version != VERSION {
            return Err(DecodeError::Version(disk.version));
        }
        let all = disk.all.as_ref().map(DiskDrain::to_drain).transpose()?;
        let groups = disk
            .groups
            .iter()
            .map(|(k, v)| v.to_drain().map(|d| (k.clone(), d)))
            .collect::<Result<_, _>>()?;
        Ok(DrainState { all, groups })
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.groups.is_empty()
    }
}

/// The state file at one path; cheap to clone (clones share the write ordering).
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    /// The generation last written: held during a write, so writes never interleave.
    written: Arc<Mutex<u64>>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            written: Arc::new(Mutex::new(0)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the drains. No file means no drains; anything that is not a readable, well-formed
    /// state file is an error (the caller decides what fail-safe means). Never blocks on a FIFO.
    pub fn load(&self) -> Result<DrainState, StateError> {
        let bytes = match crate::files::read_regular(&self.path, MAX_STATE_FILE) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DrainState::default()),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        DrainState::decode(&bytes).map_err(|error| StateError::Corrupt {
            path: self.path.clone(),
            error,
        })
    }

    /// Replace the file with `state` as generation `generation`, atomically; skipped when a later
    /// generation is already on disk. Blocking: call it off the async threads.
    pub fn store(&self, generation: u64, state: &DrainState) -> Result<(), StateError> {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *written >= generation {
            return Ok(());
        }
        write_atomically(&self.path, state.encode().as_bytes()).map_err(|source| {
            StateError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        *written = generation;
        Ok(())
    }
}

/// Replace the file at `path` with `bytes` atomically (temporary file in the same directory,
/// `fsync`, `rename`, `fsync` of the directory), creating the directory when missing.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is only durable once the directory is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("herald-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> DrainState {
        let mut s = DrainState {
            all: Some(Drain {
                drain_time: Duration::from_millis(2500),
                since: 1_700_000_000,
            }),
            ..DrainState::default()
        };
        s.groups.insert(
            "web".into(),
            Drain {
                drain_time: Duration::from_secs(30),
                since: 1_700_000_001,
            },
        );
        s
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tmpdir("rt");
        let f = StateFile::new(dir.join("sub/state.json"));
        assert_eq!(
            f.load().unwrap(),
            DrainState::default(),
            "no file, no drains"
        );
        f.store(1, &sample()).unwrap();
        assert_eq!(f.load().unwrap(), sample());
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(
            text.starts_with(r#"{"version":1,"all":{"drain_time":2.5,"since":1700000000}"#),
            "{text}"
        );
        f.store(2, &DrainState::default()).unwrap();
        assert!(f.load().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_are_atomic_and_ordered() {
        let dir = tmpdir("atomic");
        let path = dir.join("state.json");
        let f = StateFile::new(path.clone());
        f.store(1, &sample()).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        f.store(2, &DrainState::default()).unwrap();
        // A new file renamed over the old one, not the old one rewritten in place (which a crash
        // could leave truncated); no temporary file is left behind.
        assert_ne!(inode(&path), before);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["state.json"]);
        // A slow write of an older generation arriving late does not put old drains back.
        f.clone().store(1, &sample()).unwrap();
        assert!(f.load().unwrap().is_empty());
        // A write that cannot happen leaves the old file as it was.
        let blocked = StateFile::new(dir.join("state.json/x"));
        assert!(blocked.store(1, &sample()).is_err());
        assert!(f.load().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_or_odd_files_are_errors_naming_the_file() {
        let dir = tmpdir("corrupt");
        let path = dir.join("state.json");
        let f = StateFile::new(path.clone());
        let full = sample().encode();
        for (text, what) in [
            (&full[..full.len() / 2], "EOF"),
            ("{\"version\":2,\"all\":null,\"groups\":{}}", "version 2"),
            ("{\"version\":1,\"all\":null}", "groups"),
            (
                "{\"version\":1,\"all\":null,\"groups\":{\"w\":{\"drain_time\":-1,\"since\":0}}}",
                "drain_time -1",
            ),
            ("\u{0}\u{1}garbage", "expected value"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = f.load().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("state file {} is corrupt: ", path.display())),
                "{e}"
            );
            assert!(e.contains(what), "{what}: {e}");
        }
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("directory, not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
