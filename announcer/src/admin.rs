//! The local admin interface: `ipvs-herald drain`/`undrain`/`status` over a Unix socket, and the
//! maintenance file.
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
    /// Report every group's state.
    Status,
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// Human-readable outcome or error.
    pub message: String,
    /// For `status`: one line per group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStatus>,
}

/// One group's state in a `status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    /// `up`, `down`, `draining` or `drained`.
    pub state: String,
    /// Why it is where it is (failed checks, drain source).
    pub reasons: Vec<String>,
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
    #[error("admin socket {path}: bad reply from the daemon: {message}")]
    BadReply { path: PathBuf, message: String },
}

/// Longest request line accepted; anything longer is answered with an error and the connection
/// is closed (a stuck or hostile client cannot grow the daemon's memory).
const MAX_LINE: usize = 4096;
/// How long a client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request with the channel its reply goes back on.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// Bind the admin socket at `path` (replacing a stale socket file), mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, AdminError> {
    let bind_err = |source| AdminError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
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
            Err(msg) => error_reply(&msg),
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
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

fn error_reply(message: &str) -> Reply {
    Reply {
        ok: false,
        message: message.to_string(),
        groups: Vec::new(),
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
    /// exists but cannot be read drains everything (fail safe) and says why.
    pub fn read(path: &Path) -> (Maintenance, Option<String>) {
        match std::fs::read(path) {
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

    #[test]
    fn bad_requests_name_the_problem() {
        assert!(parse_request("nonsense")
            .unwrap_err()
            .starts_with("bad request"));
        assert!(parse_request(r#"{"command":"reboot"}"#)
            .unwrap_err()
            .contains("reboot"));
        assert!(
            parse_request(r#"{"command":"drain","target":"all","drain_time":-1}"#)
                .unwrap_err()
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
                    groups: vec![],
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
