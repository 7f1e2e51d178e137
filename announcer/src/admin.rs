//! The local admin interface: `ipvs-herald drain`/`undrain`/`status`/`stop` over a Unix socket, the
//! single-instance lock beside it, and the maintenance file.
//!
//! Draining takes a VIP group (or the whole director) out of service without touching the BGP
//! sessions: the routes are re-announced with the draining attributes (GRACEFUL_SHUTDOWN,
//! worse MED) for the drain time, then withdrawn, and stay withdrawn until undrained.
//!
//! The socket speaks one JSON object per line each way: a [`Request`], then a [`Reply`]. The
//! socket file is created with mode 0600 in a directory only root can write, so only the local
//! administrator can drain. The maintenance file is the other way in, for tools that can only
//! touch files: when it exists the director is drained; when it lists group names (one per line,
//! `#` comments allowed), only those groups are.
//!
//! One daemon per admin socket: [`InstanceLock`] (an `flock` on `<admin_socket>.lock`) is taken
//! before anything else is touched, and [`bind`] only ever replaces a *stale* socket (one nobody
//! answers on); a live socket, or anything that is not a socket, is refused and left alone.

use herald_shared::status::{StatusReport, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// What to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every VIP group of this director.
    All,
    /// One VIP group by name.
    Group(String),
}

/// A request on the admin socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    /// Drain: announce with the draining attributes for `drain_time` (the group's default when
    /// `None`), then withdraw; stay withdrawn until undrained.
    Drain {
        target: Target,
        #[serde(default, with = "opt_secs")]
        drain_time: Option<Duration>,
    },
    /// Undo a drain: the group returns under its health policy (rise and hold-down apply).
    Undrain { target: Target },
    /// Report every VIP group and BGP peer: the reply carries a [`StatusReport`].
    Status,
    /// Stop the daemon. Plain: as SIGTERM (drain, withdraw, Cease). With `keep_routes`: a stop
    /// for a graceful restart (RFC 4724): the BGP sessions whose peers negotiated graceful
    /// restart close without withdrawing and without a NOTIFICATION, a marker beside the state
    /// file tells the next process, and the daemon exits with status 75 (systemd's unit
    /// restarts it). Refused when no Established session negotiated graceful restart.
    Stop {
        #[serde(default)]
        keep_routes: bool,
    },
}

/// The answer to one [`Request`].
///
/// The client and the daemon are the same binary, so the format may change between versions;
/// a client talking to a daemon of another version must say so instead of misreading the
/// reply: a `status` reply without `status` (an older daemon) or with another
/// [`StatusReport::schema`] is refused by [`Reply::into_report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// Human-readable outcome or error.
    pub message: String,
    /// For `status`: every VIP group's phase (one vocabulary:
    /// [`herald_shared::status::GroupPhase`]) and every BGP peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
}

/// Why a `status` reply cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusReplyError {
    #[error("the daemon refused: {0}")]
    Refused(String),
    #[error("the daemon's reply carries no status report: it runs another version of ipvs-herald than this client (restart it after an upgrade)")]
    NoReport,
    #[error("the daemon's status report has schema {got}, this client reads schema {want}: the daemon runs another version of ipvs-herald (restart it after an upgrade)")]
    Schema { got: u32, want: u32 },
}

impl Reply {
    /// The `status` report, if the reply carries one this client can read.
    pub fn into_report(self) -> Result<StatusReport, StatusReplyError> {
        if !self.ok {
            return Err(StatusReplyError::Refused(self.message));
        }
        let report = self.status.ok_or(StatusReplyError::NoReport)?;
        if report.schema != SCHEMA_VERSION {
            return Err(StatusReplyError::Schema {
                got: report.schema,
                want: SCHEMA_VERSION,
            });
        }
        Ok(report)
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v: Option<f64> = Option::deserialize(d)?;
        match v {
            None => Ok(None),
            Some(x) if x.is_finite() && (0.0..=86_400.0).contains(&x) => {
                Ok(Some(Duration::from_secs_f64(x)))
            }
            Some(x) => Err(serde::de::Error::custom(format!(
                "drain_time {x} is not between 0 and 86400 seconds"
            ))),
        }
    }
}

/// Errors of the admin interface.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot listen on admin socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach the daemon's admin socket {path}: {source} (is ipvs-herald running, and are you root?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {path}: bad reply from the daemon (does it run another version of ipvs-herald than this client?): {message}")]
    BadReply { path: PathBuf, message: String },
    #[error("another ipvs-herald is serving the admin socket {path}")]
    InUse { path: PathBuf },
    #[error(
        "admin socket {path}: there is a {kind} at that path, not a socket; refusing to replace it"
    )]
    NotASocket { path: PathBuf, kind: &'static str },
    #[error("admin socket {path}: cannot tell whether another daemon serves it ({source}); refusing to replace it")]
    Probe {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another ipvs-herald is running: it holds the lock {lock}{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { lock: PathBuf, pid: Option<u32> },
    #[error("cannot take the single-instance lock {lock}: {source}")]
    Lock {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// Longest request line accepted; anything longer is answered with an error and the connection
/// is closed (a stuck or hostile client cannot grow the daemon's memory).
const MAX_LINE: usize = 4096;
/// How long a client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request with the channel its reply goes back on.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// Bind the admin socket at `path`, mode 0600. Whatever is already at `path` is only replaced
/// when it is a stale socket (connecting to it is refused); a live socket is another daemon's
/// ([`AdminError::InUse`]), and a regular file, directory, FIFO or symbolic link is never
/// deleted ([`AdminError::NotASocket`]).
pub fn bind(path: &Path) -> Result<UnixListener, AdminError> {
    let bind_err = |source| AdminError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if !t.is_socket() {
                return Err(AdminError::NotASocket {
                    path: path.to_path_buf(),
                    kind: crate::files::file_kind(&t),
                });
            }
            match probe(path) {
                Probe::Live => {
                    return Err(AdminError::InUse {
                        path: path.to_path_buf(),
                    })
                }
                Probe::Gone => {}
                Probe::Stale => match std::fs::remove_file(path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed a stale admin socket")
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(bind_err(e)),
                },
                Probe::Unknown(source) => {
                    return Err(AdminError::Probe {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Whether a daemon answers on the socket file at a path.
#[derive(Debug)]
enum Probe {
    /// Connected (or the listener's backlog is full): someone serves it.
    Live,
    /// Connection refused: nobody listens, the file is left over from a daemon that died.
    Stale,
    /// The file went away meanwhile.
    Gone,
    /// Anything else (permissions, a path too long): do not guess.
    Unknown(std::io::Error),
}

/// Connect to the socket at `path` without blocking (a blocking connect waits while a wedged
/// daemon's backlog is full).
fn probe(path: &Path) -> Probe {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let addr = match UnixAddr::new(path) {
        Ok(a) => a,
        Err(e) => return Probe::Unknown(e.into()),
    };
    let fd = match socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(fd) => fd,
        Err(e) => return Probe::Unknown(e.into()),
    };
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => Probe::Live,
        Err(Errno::ECONNREFUSED) => Probe::Stale,
        Err(Errno::ENOENT) => Probe::Gone,
        Err(e) => Probe::Unknown(e.into()),
    }
}

/// The single-instance lock: an exclusive `flock` on `<admin_socket>.lock`, held as long as this
/// value lives (the kernel releases it when the process dies, however it dies). The file holds
/// the owner's PID, so that a refused second instance can name it.
#[derive(Debug)]
pub struct InstanceLock {
    path: PathBuf,
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl InstanceLock {
    /// The lock file of the admin socket at `admin_socket`.
    pub fn path_for(admin_socket: &Path) -> PathBuf {
        let mut name = admin_socket.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Take the lock of `admin_socket` without waiting: [`AdminError::Locked`] when another
    /// process holds it.
    pub fn acquire(admin_socket: &Path) -> Result<Self, AdminError> {
        use nix::fcntl::{Flock, FlockArg};
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let lock = Self::path_for(admin_socket);
        let err = |source: std::io::Error| AdminError::Lock {
            lock: lock.clone(),
            source,
        };
        if let Some(dir) = lock.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // O_NONBLOCK: a FIFO planted at the path must not hang the start; O_NOFOLLOW: the lock
        // file is ours, a symbolic link there is not.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&lock)
            .map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "it is a {}, not a regular file",
                    crate::files::file_kind(&meta.file_type())
                ),
            )));
        }
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = (&file).take(32).read_to_string(&mut text);
                return Err(AdminError::Locked {
                    pid: text.trim().parse().ok(),
                    lock,
                });
            }
            Err((_, e)) => return Err(err(e.into())),
        };
        let mut f: &std::fs::File = &file;
        f.set_len(0)
            .and_then(|()| f.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(err)?;
        Ok(InstanceLock {
            path: lock,
            _file: file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serve the admin socket until `shutdown` completes: each connection's request is parsed and
/// sent to `handler`, whose reply is written back.
pub async fn serve(
    listener: UnixListener,
    handler: mpsc::Sender<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, handler).await {
                            tracing::debug!(error = %e, "admin connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn handle(stream: UnixStream, handler: mpsc::Sender<Envelope>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_LINE as u64 + 1);
    let mut line = String::new();
    let reply = match tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => error_reply("timed out waiting for a request"),
        Ok(Err(e)) => error_reply(&format!("cannot read request: {e}")),
        Ok(Ok(_)) if line.len() > MAX_LINE => {
            error_reply(&format!("request longer than {MAX_LINE} bytes"))
        }
        Ok(Ok(_)) => match parse_request(&line) {
            Err(e) => error_reply(&e.to_string()),
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if handler.send((req, tx)).await.is_err() {
                    error_reply("the daemon is shutting down")
                } else {
                    rx.await
                        .unwrap_or_else(|_| error_reply("the daemon dropped the request"))
                }
            }
        },
    };
    let mut text = serde_json::to_string(&reply)
        .unwrap_or_else(|_| r#"{"ok":false,"message":"cannot encode reply"}"#.to_string());
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Parse one request line; the error says what is wrong with it.
pub fn parse_request(line: &str) -> Result<Request, BadRequest> {
    serde_json::from_str(line.trim()).map_err(BadRequest)
}

/// A request line that is not a request.
#[derive(Debug, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(serde_json::Error);

fn error_reply(message: &str) -> Reply {
    Reply {
        ok: false,
        message: message.to_string(),
        status: None,
    }
}

/// Send one request to the daemon at `path` and wait for its reply (client side, used by
/// `ipvs-herald drain`).
pub async fn request(path: &Path, req: &Request) -> Result<Reply, AdminError> {
    let io = |source| AdminError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| AdminError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut text = serde_json::to_string(req).map_err(|e| AdminError::BadReply {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push('\n');
    stream.write_all(text.as_bytes()).await.map_err(io)?;
    let mut reader = BufReader::new(stream).take(1 << 20);
    let mut line = String::new();
    reader.read_line(&mut line).await.map_err(io)?;
    serde_json::from_str(line.trim()).map_err(|e| AdminError::BadReply {
        path: path.to_path_buf(),
        message: format!("{e}: {:?}", line.trim()),
    })
}

/// A maintenance file larger than this cannot be read (and so drains everything).
const MAX_MAINTENANCE_FILE: u64 = 1 << 20;

/// What the maintenance file asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Maintenance {
    /// No file: nothing drained by it.
    #[default]
    None,
    /// The file exists and names no group: the whole director is drained.
    All,
    /// The file names these groups.
    Groups(BTreeSet<String>),
}

impl Maintenance {
    /// Whether the group `name` is drained by the file.
    pub fn drains(&self, name: &str) -> bool {
        match self {
            Maintenance::None => false,
            Maintenance::All => true,
            Maintenance::Groups(g) => g.contains(name),
        }
    }

    /// Interpret the file's content (already read): group names one per line, `#` comments and
    /// blank lines ignored; no names at all = everything.
    pub fn parse(content: &str) -> Maintenance {
        let groups: BTreeSet<String> = content
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if groups.is_empty() {
            Maintenance::All
        } else {
            Maintenance::Groups(groups)
        }
    }

    /// Read the maintenance file at `path`. A missing file is [`Maintenance::None`]; a file that
    /// exists but cannot be read drains everything (fail safe) and says why; so does anything
    /// but a regular file (reading a FIFO would block the health loop).
    pub fn read(path: &Path) -> (Maintenance, Option<String>) {
        match crate::files::read_regular(path, MAX_MAINTENANCE_FILE) {
            Ok(bytes) => (Self::parse(&String::from_utf8_lossy(&bytes)), None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Maintenance::None, None),
            Err(e) => (
                Maintenance::All,
                Some(format!(
                    "maintenance file {} exists but cannot be read ({e}); draining everything",
                    path.display()
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("herald-admin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn bind_refuses_a_live_socket_and_replaces_a_stale_one() {
        let dir = tmpdir("bind");
        let path = dir.join("admin.sock");
        let live = bind(&path).unwrap();
        let e = bind(&path).unwrap_err();
        assert!(matches!(e, AdminError::InUse { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "another ipvs-herald is serving the admin socket {}",
                path.display()
            )
        );
        // Still the first daemon's socket: it accepts.
        assert!(UnixStream::connect(&path).await.is_ok());
        // The daemon dies without removing its socket: the file stays, nobody listens.
        drop(live);
        assert!(path.exists());
        let again = bind(&path).expect("a stale socket is replaced");
        let accept = tokio::spawn(async move { again.accept().await.map(|_| ()) });
        UnixStream::connect(&path).await.unwrap();
        accept.await.unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bind_never_deletes_what_is_not_a_socket() {
        let dir = tmpdir("notsock");
        let path = dir.join("admin.sock");
        std::fs::write(&path, "precious").unwrap();
        let e = bind(&path).unwrap_err().to_string();
        assert!(
            e.contains("there is a regular file at that path, not a socket"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        std::fs::remove_file(&path).unwrap();

        std::fs::create_dir(&path).unwrap();
        let e = bind(&path).unwrap_err().to_string();
        assert!(e.contains("a directory at that path"), "{e}");
        std::fs::remove_dir(&path).unwrap();

        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = bind(&path).unwrap_err().to_string();
        assert!(e.contains("a FIFO at that path"), "{e}");
        std::fs::remove_file(&path).unwrap();

        // A symbolic link, even to a stale socket, is not ours to remove.
        let target = dir.join("target");
        std::fs::write(&target, "x").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = bind(&path).unwrap_err().to_string();
        assert!(e.contains("a symbolic link at that path"), "{e}");
        assert!(std::fs::symlink_metadata(&path).is_ok() && target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn instance_lock_is_exclusive_and_names_the_holder() {
        let dir = tmpdir("lock");
        let sock = dir.join("run/admin.sock");
        let lock = InstanceLock::acquire(&sock).unwrap();
        assert_eq!(lock.path(), dir.join("run/admin.sock.lock"));
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to the open file description: a second open in the same process
        // conflicts like a second process would.
        let e = InstanceLock::acquire(&sock).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "another ipvs-herald is running: it holds the lock {} (pid {})",
                lock.path().display(),
                std::process::id()
            )
        );
        drop(lock);
        let again = InstanceLock::acquire(&sock).expect("free once the holder is gone");
        drop(again);
        // A FIFO at the lock path is refused at once instead of hanging the start.
        let other = dir.join("fifo.sock");
        nix::unistd::mkfifo(
            &InstanceLock::path_for(&other),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = InstanceLock::acquire(&other).unwrap_err().to_string();
        assert!(e.contains("it is a FIFO, not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn request_json_is_stable() {
        let r = Request::Drain {
            target: Target::Group("web".into()),
            drain_time: Some(Duration::from_secs(30)),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"command":"drain","target":{"group":"web"},"drain_time":30.0}"#
        );
        assert_eq!(parse_request(&s).unwrap(), r);
        assert_eq!(
            parse_request(r#"{"command":"undrain","target":"all"}"#).unwrap(),
            Request::Undrain {
                target: Target::All
            }
        );
        assert_eq!(
            parse_request(r#"{"command":"drain","target":"all"}"#).unwrap(),
            Request::Drain {
                target: Target::All,
                drain_time: None
            }
        );
    }

    /// A client of this version against a daemon of another: a clear error, never a panic or a
    /// misread report.
    #[test]
    fn status_from_another_version_is_refused_by_name() {
        // What the daemon before the StatusReport answered.
        let old = r#"{"ok":true,"message":"1 VIP groups","groups":[{"name":"web","state":"up","reasons":[]}]}"#;
        let reply: Reply = serde_json::from_str(old).unwrap();
        let e = reply.into_report().unwrap_err();
        assert!(matches!(e, StatusReplyError::NoReport), "{e}");
        assert!(
            e.to_string().contains("another version of ipvs-herald"),
            "{e}"
        );

        let newer = format!(
            r#"{{"ok":true,"message":"","status":{{"schema":{},"generated_at":0,"groups":[],"peers":[]}}}}"#,
            SCHEMA_VERSION + 1
        );
        let e = serde_json::from_str::<Reply>(&newer)
            .unwrap()
            .into_report()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("schema {}", SCHEMA_VERSION + 1)),
            "{e}"
        );

        let refused = Reply {
            ok: false,
            message: "the announcer's control loop is gone".into(),
            status: None,
        };
        assert_eq!(
            refused.into_report().unwrap_err().to_string(),
            "the daemon refused: the announcer's control loop is gone"
        );

        let report = StatusReport {
            schema: SCHEMA_VERSION,
            ..StatusReport::default()
        };
        let ok = Reply {
            ok: true,
            message: String::new(),
            status: Some(report.clone()),
        };
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            serde_json::from_str::<Reply>(&text)
                .unwrap()
                .into_report()
                .unwrap(),
            report
        );
    }

    #[test]
    fn bad_requests_name_the_problem() {
        assert!(parse_request("nonsense")
            .unwrap_err()
            .to_string()
            .starts_with("bad request"));
        assert!(parse_request(r#"{"command":"reboot"}"#)
            .unwrap_err()
            .to_string()
            .contains("reboot"));
        assert!(
            parse_request(r#"{"command":"drain","target":"all","drain_time":-1}"#)
                .unwrap_err()
                .to_string()
                .contains("drain_time")
        );
    }

    #[test]
    fn maintenance_file_forms() {
        assert_eq!(Maintenance::parse(""), Maintenance::All);
        assert_eq!(Maintenance::parse("# just a comment\n\n"), Maintenance::All);
        let m = Maintenance::parse("web  # until Tuesday\napi\n");
        assert!(m.drains("web") && m.drains("api") && !m.drains("db"));
        let dir = std::env::temp_dir().join(format!("herald-maint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("maintenance");
        assert_eq!(Maintenance::read(&f), (Maintenance::None, None));
        std::fs::write(&f, "web\n").unwrap();
        assert!(Maintenance::read(&f).0.drains("web"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn socket_round_trip_and_garbage() {
        let dir = std::env::temp_dir().join(format!("herald-admin-{}", std::process::id()));
        let path = dir.join("admin.sock");
        let listener = bind(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (tx, mut rx) = mpsc::channel::<Envelope>(4);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, tx, async {
            let _ = stop_rx.await;
        }));
        let daemon = tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                let _ = reply.send(Reply {
                    ok: true,
                    message: format!("{req:?}"),
                    status: None,
                });
            }
        });
        let r = request(&path, &Request::Status).await.unwrap();
        assert!(r.ok);
        assert_eq!(r.message, "Status");

        // Garbage gets an error reply, not a hang or a crash.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{not json\n").await.unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).await.unwrap();
        let reply: Reply = serde_json::from_str(&out).unwrap();
        assert!(
            !reply.ok && reply.message.starts_with("bad request"),
            "{out}"
        );

        // An over-long line is refused.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).await.unwrap();
        assert!(out.contains("longer than"), "{out}");

        stop_tx.send(()).unwrap();
        server.await.unwrap();
        daemon.abort();
        std::fs::remove_dir_all(&dir).unwrap();
        let e = request(&path, &Request::Status).await.unwrap_err();
        assert!(e.to_string().contains("is ipvs-herald running"), "{e}");
    }
}
