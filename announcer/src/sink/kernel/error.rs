//! Errors of the kernel backend and its rtnetlink client: each names the object and, for a
//! kernel refusal, what the errno means here. At the bottom of the backend: the socket layer
//! (`rtnl`), the address primitives and the backend all return a [`KernelError`].

use std::path::PathBuf;

use herald_shared::netns::NetnsError;

/// Errors of the kernel backend. Each names the object and, for kernel refusals, what the errno
/// means in this context.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The configuration is unusable.
    #[error("kernel backend configuration: {0}")]
    Config(String),
    /// The network namespace could not be entered.
    #[error("cannot enter network namespace {}: {reason}", path.display())]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The netlink socket failed (open, send, receive).
    #[error("rtnetlink socket: {0}")]
    Socket(String),
    /// The kernel refused a request.
    #[error("{op} {target}: {meaning} (errno {errno}){}", ext_ack.as_ref().map(|m| format!("; kernel says: {m}")).unwrap_or_default())]
    Kernel {
        /// What was attempted, e.g. `add address`.
        op: &'static str,
        /// On what, e.g. `203.0.113.10/32 on herald0`.
        target: String,
        /// The positive errno.
        errno: i32,
        /// What the errno means here (`EPERM` → CAP_NET_ADMIN needed).
        meaning: String,
        /// The kernel's extended-ACK message, when it sent one.
        ext_ack: Option<String>,
    },
    /// A reply could not be decoded.
    #[error("{op}: malformed rtnetlink reply: {detail}")]
    Protocol {
        /// What was attempted.
        op: &'static str,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The interface does not exist (and may not be created).
    #[error("interface {0} does not exist{1}")]
    NoSuchInterface(String, &'static str),
    /// The interface exists but is not one the backend may put VIPs on.
    #[error("interface {name} exists but is a {kind} interface, not a dummy; refusing to use it (set create_interface = false to use an existing interface on purpose)")]
    NotDummy {
        /// Interface name.
        name: String,
        /// Its link kind.
        kind: String,
    },
    /// The object exists but was not installed by ipvs-herald, so it will not be removed.
    #[error("{0} exists but was not installed by ipvs-herald (no protocol {1} mark); refusing to remove it")]
    Foreign(String, u8),
    /// The blocking worker died.
    #[error("kernel backend worker failed: {0}")]
    Worker(String),
}

impl KernelError {
    pub(crate) fn kernel(
        op: &'static str,
        target: &str,
        errno: i32,
        ext_ack: Option<String>,
    ) -> Self {
        KernelError::Kernel {
            op,
            target: target.to_string(),
            errno,
            meaning: errno_meaning(errno),
            ext_ack,
        }
    }

    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// What an errno means for route/address operations, with the fix when there is an obvious one.
pub fn errno_meaning(errno: i32) -> String {
    let name = nix::errno::Errno::from_raw(errno);
    let hint = match errno {
        libc::EPERM => "operation not permitted: CAP_NET_ADMIN needed (run as root or grant the capability)",
        libc::EACCES => "permission denied: CAP_NET_ADMIN needed, or IPv6 is disabled on the interface (net.ipv6.conf.<if>.disable_ipv6)",
        libc::EEXIST => "already exists",
        libc::ENODEV => "no such interface",
        libc::ENOENT => "no such object (or table)",
        libc::ESRCH => "no such route",
        libc::EADDRNOTAVAIL => "address not present on the interface",
        libc::EAFNOSUPPORT => "address family not supported (IPv6 disabled in this kernel?)",
        libc::EINVAL => "invalid request",
        libc::ENETUNREACH => "network unreachable (interface down or without carrier?)",
        libc::ENOBUFS | libc::ENOMEM => "kernel out of memory",
        libc::EOPNOTSUPP => "operation not supported (dummy interfaces need the `dummy` module)",
        libc::EBUSY => "resource busy",
        _ => "",
    };
    if hint.is_empty() {
        format!("{} ({name})", name.desc())
    } else {
        format!("{hint} ({name})")
    }
}

impl From<NetnsError> for KernelError {
    /// The namespace helper's failures, in the words the backend has always used.
    fn from(e: NetnsError) -> Self {
        match e {
            NetnsError::Open { path, error, .. } => KernelError::Netns {
                path,
                reason: error.to_string(),
            },
            NetnsError::Setns { path, errno, .. } => KernelError::Netns {
                path,
                reason: format!("setns: {} ({})", errno.desc(), errno_meaning(errno as i32)),
            },
            NetnsError::Spawn { error, .. } => {
                KernelError::Socket(format!("cannot spawn netns thread: {error}"))
            }
            NetnsError::NoAnswer { .. } => {
                KernelError::Socket("netns helper thread panicked".into())
            }
            e @ NetnsError::Timeout { .. } => KernelError::Socket(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_failures_keep_the_backend_messages() {
        let e = KernelError::from(NetnsError::Setns {
            netns: "/run/netns/x".into(),
            path: "/run/netns/x".into(),
            errno: nix::errno::Errno::EPERM,
        });
        assert_eq!(
            e.to_string(),
            format!(
                "cannot enter network namespace /run/netns/x: setns: Operation not permitted ({})",
                errno_meaning(libc::EPERM)
            )
        );
        let e = KernelError::from(NetnsError::NoAnswer {
            thread: herald_shared::netns::NETNS_THREAD,
        });
        assert_eq!(
            e.to_string(),
            "rtnetlink socket: netns helper thread panicked"
        );
    }

    #[test]
    fn errno_meanings_name_the_fix() {
        assert!(errno_meaning(libc::EPERM).contains("CAP_NET_ADMIN needed"));
        assert!(errno_meaning(libc::EPERM).contains("EPERM"));
        assert!(errno_meaning(libc::ENODEV).contains("no such interface"));
        // Unknown errnos still say something.
        assert!(!errno_meaning(libc::EXDEV).is_empty());
        let e = KernelError::kernel(
            "add address",
            "203.0.113.10/32 on herald0",
            libc::EPERM,
            Some("nope".into()),
        );
        let s = e.to_string();
        assert!(s.starts_with("add address 203.0.113.10/32 on herald0: operation not permitted: CAP_NET_ADMIN needed"), "{s}");
        assert!(s.contains("kernel says: nope"), "{s}");
        assert_eq!(e.errno(), Some(libc::EPERM));
    }
}
