//! Socket I/O for the generic-netlink reader: a blocking `NETLINK_GENERIC` socket from `neli`
//! (`neli::socket::shared::NlSocket`: socket, bind, send, recv), one reusable 64 KiB receive
//! buffer, framing by [`super::frame`], request/reply with sequence checking, multi-part
//! dumps, kernel error codes mapped to [`NetlinkError`], and optional capture of every raw reply
//! for test vectors. (neli's higher-level handle was replaced: its per-read buffer pool cost
//! ~1 ms per request in debug builds, which made a 10,000-service table take minutes.)
//!
//! The bytes of each reply go to [`super::codec`]; nothing here interprets attributes.

use super::codec::{self, split_genl};
use super::consts::*;
use super::frame;
use crate::model::{Service, Snapshot};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use nix::errno::Errno;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Give up on a reply after this many reads that carried no message for us.
const MAX_IDLE_READS: u32 = 64;

/// What the reader says when the IPVS module is missing (also the procfs reader's answer).
pub const MODULE_NOT_LOADED: &str = "IPVS is not available: the ip_vs kernel module is not loaded (generic netlink family \"IPVS\" not found; try `modprobe ip_vs`)";
/// What the reader says when netlink is refused for lack of the capability.
pub const PERMISSION_DENIED: &str = "permission denied reading IPVS over netlink: CAP_NET_ADMIN is needed (run as root or grant the capability)";

/// Why a generic-netlink exchange failed. Every variant's message names the request and, where
/// there is one, the remedy.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel does not know the generic-netlink family (for "IPVS": `ip_vs` not loaded).
    #[error("{}", MODULE_NOT_LOADED)]
    ModuleNotLoaded,
    /// The kernel answered EPERM or EACCES: CAP_NET_ADMIN is missing.
    #[error("{}", PERMISSION_DENIED)]
    PermissionDenied,
    /// The socket failed, or the kernel refused a request with another errno.
    #[error("netlink error: {0}")]
    Socket(String),
    /// A reply could not be decoded.
    #[error("malformed netlink message: {0}")]
    Decode(String),
    /// A capture file could not be written.
    #[error("cannot read {}: {source}", path.display())]
    Capture {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Writes each raw kernel reply (generic-netlink payload: the 4-byte genl header followed by
/// the attributes) to `DIR/<command>-<index>.bin`, index counted per command from 0.
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    counters: HashMap<&'static str, u32>,
}

impl Capture {
    /// Capture into `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, NetlinkError> {
        std::fs::create_dir_all(dir).map_err(|source| NetlinkError::Capture {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            counters: HashMap::new(),
        })
    }

    fn write(&mut self, label: &'static str, payload: &[u8]) -> Result<(), NetlinkError> {
        let n = self.counters.entry(label).or_insert(0);
        let path = self.dir.join(format!("{label}-{n:04}.bin"));
        *n += 1;
        std::fs::write(&path, payload).map_err(|source| NetlinkError::Capture { path, source })
    }
}

fn errno_error(label: &str, errno: i32) -> NetlinkError {
    if errno == Errno::EPERM as i32 || errno == Errno::EACCES as i32 {
        return NetlinkError::PermissionDenied;
    }
    NetlinkError::Socket(format!(
        "{label}: kernel answered {}",
        io::Error::from_raw_os_error(errno)
    ))
}

const ENOENT: i32 = Errno::ENOENT as i32;
const ESRCH: i32 = Errno::ESRCH as i32;

fn io_error(label: &str, e: &io::Error) -> NetlinkError {
    match e.raw_os_error() {
        Some(code) => errno_error(label, code),
        None => NetlinkError::Socket(format!("{label}: {e}")),
    }
}

/// Kernel errno in a reply, kept apart so callers can treat some codes specially.
enum Failure {
    Errno(i32),
    Other(NetlinkError),
}

/// Receive buffer: the kernel caps dump datagrams at 32 KiB; leave room.
const RECV_BUFFER: usize = 64 * 1024;

/// A generic-netlink socket bound to the namespace of the thread that opened it.
pub struct GenlSocket {
    sock: NlSocket,
    seq: u32,
    buf: Vec<u8>,
    capture: Option<Capture>,
}

impl std::fmt::Debug for GenlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenlSocket")
            .field("seq", &self.seq)
            .field("capture", &self.capture)
            .finish()
    }
}

impl GenlSocket {
    /// Open and bind a blocking `NETLINK_GENERIC` socket.
    pub fn open(capture: Option<Capture>) -> Result<Self, NetlinkError> {
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| io_error("opening a generic netlink socket", &e))?;
        Ok(GenlSocket {
            sock,
            seq: 1,
            buf: vec![0; RECV_BUFFER],
            capture,
        })
    }

    /// Send a request to family `nl_type` and return the generic-netlink payloads of the reply
    /// (every part of a dump when `dump`). Kernel errors are mapped like the IPVS calls'.
    pub fn call(
        &mut self,
        nl_type: u16,
        payload: Vec<u8>,
        dump: bool,
        label: &'static str,
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.request(nl_type, payload, dump, label)
            .map_err(|f| match f {
                Failure::Errno(e) => errno_error(label, e),
                Failure::Other(e) => e,
            })
    }

    /// Resolve a generic-netlink family name to its id (`CTRL_CMD_GETFAMILY`).
    /// `ModuleNotLoaded` when the kernel does not know the name.
    pub fn resolve_family(&mut self, name: &str) -> Result<u16, NetlinkError> {
        let replies = match self.request(
            GENL_ID_CTRL,
            codec::request_get_family(name),
            false,
            "ctrl_getfamily",
        ) {
            Ok(r) => r,
            Err(Failure::Errno(ENOENT)) => return Err(NetlinkError::ModuleNotLoaded),
            Err(Failure::Errno(e)) => {
                return Err(errno_error(&format!("resolving family {name}"), e))
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        let Some(first) = replies.first() else {
            return Err(NetlinkError::ModuleNotLoaded);
        };
        let (_, _, attrs) = split_genl(first).map_err(decode_err("ctrl_getfamily"))?;
        codec::decode_family_id(attrs).map_err(decode_err("ctrl_getfamily"))
    }

    /// Send one request and collect the generic-netlink payloads of its reply (all parts of a
    /// dump). `label` names the command in errors and capture files.
    fn request(
        &mut self,
        nl_type: u16,
        payload: Vec<u8>,
        dump: bool,
        label: &'static str,
    ) -> Result<Vec<Vec<u8>>, Failure> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let flags = if dump { frame::NLM_F_DUMP } else { 0 };
        let msg = frame::request(nl_type, flags, seq, &payload);
        self.sock
            .send(&msg, Msg::empty())
            .map_err(|e| Failure::Other(io_error(label, &e)))?;

        let mut out = Vec::new();
        let mut idle = 0;
        loop {
            let (n, _) = match self.sock.recv(&mut self.buf[..], Msg::TRUNC) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Other(io_error(label, &e))),
            };
            if n > self.buf.len() {
                return Err(Failure::Other(NetlinkError::Socket(format!(
                    "{label}: a {n}-byte netlink datagram does not fit the {}-byte buffer",
                    self.buf.len()
                ))));
            }
            let datagram = self.buf.get(..n).unwrap_or(&[]);
            let mut got_ours = false;
            for m in frame::messages(datagram) {
                let m = m.map_err(|e| {
                    Failure::Other(NetlinkError::Decode(format!(
                        "{label}: netlink framing: {e}"
                    )))
                })?;
                if m.seq != seq {
                    tracing::debug!(label, seq = m.seq, "ignoring stale netlink message");
                    continue;
                }
                got_ours = true;
                match m.ty {
                    frame::NLMSG_ERROR => {
                        let code = m.error_code().map_err(|e| {
                            Failure::Other(NetlinkError::Decode(format!("{label}: {e}")))
                        })?;
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(Failure::Errno(code.saturating_neg()))
                        };
                    }
                    frame::NLMSG_DONE => {
                        // A dump that failed half-way reports the error here.
                        return match m.error_code() {
                            Ok(code) if code < 0 => Err(Failure::Errno(code.saturating_neg())),
                            _ => Ok(out),
                        };
                    }
                    frame::NLMSG_OVERRUN => {
                        return Err(Failure::Other(NetlinkError::Socket(format!(
                            "{label}: the kernel reported a netlink overrun"
                        ))))
                    }
                    _ => {
                        if m.flags & frame::NLM_F_DUMP_INTR != 0 {
                            tracing::debug!(
                                label,
                                "dump interrupted by a change; counts may mix two states"
                            );
                        }
                        if let Some(c) = self.capture.as_mut() {
                            c.write(label, m.payload).map_err(Failure::Other)?;
                        }
                        out.push(m.payload.to_vec());
                        if m.flags & frame::NLM_F_MULTI == 0 {
                            return Ok(out);
                        }
                    }
                }
            }
            if !got_ours {
                idle += 1;
                if idle > MAX_IDLE_READS {
                    return Err(Failure::Other(NetlinkError::Socket(format!(
                        "{label}: no reply from the kernel after {MAX_IDLE_READS} reads"
                    ))));
                }
            }
        }
    }
}

fn decode_err(label: &str) -> impl Fn(codec::CodecError) -> NetlinkError + '_ {
    move |e| NetlinkError::Decode(format!("{label}: {e}"))
}

/// The IPVS generic-netlink family, resolved on one socket.
#[derive(Debug)]
pub struct IpvsNetlink {
    sock: GenlSocket,
    family: u16,
}

impl IpvsNetlink {
    /// Open a socket and resolve the "IPVS" family. `ModuleNotLoaded` when it is missing.
    pub fn open(capture: Option<Capture>) -> Result<Self, NetlinkError> {
        let mut sock = GenlSocket::open(capture)?;
        let family = sock.resolve_family(IPVS_GENL_NAME)?;
        Ok(IpvsNetlink { sock, family })
    }

    fn call(
        &mut self,
        payload: Vec<u8>,
        dump: bool,
        label: &'static str,
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.sock.call(self.family, payload, dump, label)
    }

    fn attrs_of<'a>(label: &str, payload: &'a [u8]) -> Result<&'a [u8], NetlinkError> {
        split_genl(payload)
            .map(|(_, _, a)| a)
            .map_err(decode_err(label))
    }

    /// Services with their destinations, info, timeouts and sync daemons. `global` is left
    /// `None` (the kernel has no netlink command for it; the caller reads procfs).
    pub fn snapshot(&mut self) -> Result<Snapshot, NetlinkError> {
        let _span = tracing::debug_span!("netlink_snapshot").entered();
        let info = {
            let r = self.call(codec::request_simple(IPVS_CMD_GET_INFO), false, "get_info")?;
            let first = r
                .first()
                .ok_or_else(|| NetlinkError::Decode("get_info: empty reply".into()))?;
            codec::decode_info(Self::attrs_of("get_info", first)?)
                .map_err(decode_err("get_info"))?
        };
        let service_msgs = self.call(
            codec::request_simple(IPVS_CMD_GET_SERVICE),
            true,
            "get_service",
        )?;
        // Exact capacities: the snapshot is held while it is used (a scrape, a dump), and Vec
        // growth would leave up to half of it unused.
        let mut services: Vec<Service> = Vec::with_capacity(service_msgs.len());
        for p in service_msgs {
            let svc = codec::decode_service_msg(Self::attrs_of("get_service", &p)?)
                .map_err(decode_err("get_service"))?;
            services.push(svc);
        }
        for svc in &mut services {
            let label = "get_dest";
            let replies = match self.sock.request(
                self.family,
                codec::request_get_dests(&svc.key),
                true,
                label,
            ) {
                Ok(r) => r,
                // The service went away between the two dumps.
                Err(Failure::Errno(ENOENT | ESRCH)) => Vec::new(),
                Err(Failure::Errno(e)) => return Err(errno_error(label, e)),
                Err(Failure::Other(e)) => return Err(e),
            };
            let family = svc.key.family();
            svc.destinations.reserve_exact(replies.len());
            for p in replies {
                let d = codec::decode_dest_msg(Self::attrs_of(label, &p)?, family)
                    .map_err(|e| NetlinkError::Decode(format!("{label} for {}: {e}", svc.key)))?;
                svc.destinations.push(d);
            }
        }
        let timeouts = {
            let r = self.call(
                codec::request_simple(IPVS_CMD_GET_CONFIG),
                false,
                "get_config",
            )?;
            match r.first() {
                Some(p) => Some(
                    codec::decode_config(Self::attrs_of("get_config", p)?)
                        .map_err(decode_err("get_config"))?,
                ),
                None => None,
            }
        };
        let mut daemons = Vec::new();
        for p in self.call(
            codec::request_simple(IPVS_CMD_GET_DAEMON),
            true,
            "get_daemon",
        )? {
            daemons.push(
                codec::decode_daemon_msg(Self::attrs_of("get_daemon", &p)?)
                    .map_err(decode_err("get_daemon"))?,
            );
        }
        Ok(Snapshot {
            source: crate::model::SnapshotSource::Netlink,
            info,
            services,
            timeouts,
            daemons,
            global: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_name_the_capability() {
        for errno in [Errno::EPERM as i32, Errno::EACCES as i32] {
            let e = errno_error("get_service", errno);
            assert!(matches!(e, NetlinkError::PermissionDenied), "{e:?}");
            assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        }
        let e = errno_error("get_dest", Errno::EINVAL as i32);
        assert!(
            e.to_string().contains("get_dest") && e.to_string().contains("Invalid argument"),
            "{e}"
        );
        let e = io::Error::from_raw_os_error(Errno::EPERM as i32);
        assert!(matches!(
            io_error("open", &e),
            NetlinkError::PermissionDenied
        ));
    }

    #[test]
    fn capture_names_files_by_command_and_index() {
        let dir = std::env::temp_dir().join(format!("herald-capture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Capture::new(&dir).unwrap();
        c.write("get_service", &[1, 2]).unwrap();
        c.write("get_service", &[3]).unwrap();
        c.write("get_dest", &[4]).unwrap();
        assert_eq!(
            std::fs::read(dir.join("get_service-0000.bin")).unwrap(),
            [1, 2]
        );
        assert_eq!(
            std::fs::read(dir.join("get_service-0001.bin")).unwrap(),
            [3]
        );
        assert_eq!(std::fs::read(dir.join("get_dest-0000.bin")).unwrap(), [4]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
