//! Running work inside a network namespace, on a thread of its own.
//!
//! IPVS state, interface addresses and netlink sockets are per network namespace. `setns(2)`
//! changes only the calling thread, so every piece of work runs on a dedicated, short-lived
//! thread that first enters the namespace (when one is configured). A netlink socket stays bound
//! to the namespace it was created in, and procfs is read through `/proc/thread-self/net/…` from
//! that same thread (`/proc/net` follows the main thread). The caller waits with a timeout, so a
//! stuck kernel call cannot hang a scrape.
//!
//! This module sits at the bottom of the crate: it knows nothing of readers or netlink. Its
//! failures are a [`NetnsError`], which each caller's own error type converts from
//! (`E: From<NetnsError>`), so the reader, the announcer's address lister and its kernel route
//! backend share the helper and keep their own error types.

use nix::errno::Errno;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Why work could not be run in (or come back from) a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened (no such namespace, no permission).
    #[error("cannot enter network namespace {netns}: cannot open {}: {error}", path.display())]
    Open {
        /// The namespace as configured (a name under `/run/netns`, or a path).
        netns: String,
        /// The file that was opened.
        path: PathBuf,
        /// Why it could not be (part of the message, so not a `source()`).
        error: std::io::Error,
    },
    /// `setns(2)` refused the namespace file.
    #[error("cannot enter network namespace {netns}: setns({}): {errno}{}", path.display(), setns_hint(*errno))]
    Setns {
        /// The namespace as configured.
        netns: String,
        /// The namespace file.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The worker thread could not be started.
    #[error("cannot start the {thread} thread: {error}")]
    Spawn {
        /// The thread's name.
        thread: &'static str,
        /// Why (part of the message, so not a `source()`).
        error: std::io::Error,
    },
    /// The worker thread ended without an answer (the work panicked).
    #[error("the {thread} thread ended without an answer")]
    NoAnswer {
        /// The thread's name.
        thread: &'static str,
    },
    /// The work did not answer in time; its thread is left to finish on its own.
    #[error("no answer from the {thread} thread after {timeout:?}")]
    Timeout {
        /// The thread's name.
        thread: &'static str,
        /// How long the caller waited.
        timeout: Duration,
    },
}

fn setns_hint(errno: Errno) -> &'static str {
    // Both causes give the same EPERM: the lab's systemd boot (tests/lab_systemd.rs) saw the
    // seccomp filter of RestrictNamespaces=yes refuse setns with CAP_SYS_ADMIN present.
    if errno == Errno::EPERM {
        " (CAP_SYS_ADMIN is needed to change namespace; under systemd, RestrictNamespaces= must \
         allow net: see the ipvs-herald-netns.conf drop-in)"
    } else {
        ""
    }
}

/// Name of the worker threads [`run_in_netns`] starts.
pub const READER_THREAD: &str = "ipvs-reader";
/// Name of the worker threads [`run_in_netns_file`] starts.
pub const NETNS_THREAD: &str = "herald-netns";

/// Where a configured namespace lives: a bare name is looked up under `/run/netns`; anything
/// containing a `/` is taken as a path (e.g. `/proc/1234/ns/net`).
pub fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        PathBuf::from("/run/netns").join(netns)
    }
}

/// A namespace to enter: its name as configured (for messages) and its file.
struct Target {
    netns: String,
    path: PathBuf,
}

/// Enter `target` on the current thread.
fn enter(target: &Target) -> Result<(), NetnsError> {
    let file = std::fs::File::open(&target.path).map_err(|error| NetnsError::Open {
        netns: target.netns.clone(),
        path: target.path.clone(),
        error,
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
        NetnsError::Setns {
            netns: target.netns.clone(),
            path: target.path.clone(),
            errno,
        }
    })
}

/// Run `f` on a fresh thread, inside `netns` when given (a name under `/run/netns` or a path,
/// see [`netns_path`]), and wait at most `timeout` for it. The caller's error type carries the
/// namespace failures (`E: From<NetnsError>`).
pub fn run_in_netns<T, E, F>(netns: Option<&str>, timeout: Duration, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let target = netns.map(|n| Target {
        netns: n.to_string(),
        path: netns_path(n),
    });
    run(target, READER_THREAD, Some(timeout), f)
}

/// Run `f` on a fresh thread inside the namespace file at `path` (`/run/netns/NAME`,
/// `/proc/PID/ns/net`, taken as it is) and wait for it without a time limit: for short work
/// that cannot hang, such as creating a socket that then stays in that namespace.
pub fn run_in_netns_file<T, E, F>(path: &Path, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let target = Target {
        netns: path.display().to_string(),
        path: path.to_path_buf(),
    };
    run(Some(target), NETNS_THREAD, None, f)
}

fn run<T, E, F>(
    target: Option<Target>,
    thread: &'static str,
    timeout: Option<Duration>,
    f: F,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let _g = span.entered();
            let result = match &target {
                Some(t) => enter(t).map_err(E::from).and_then(|()| f()),
                None => f(),
            };
            // The receiver may have timed out and gone; nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(|error| NetnsError::Spawn { thread, error })?;
    let answer = match timeout {
        Some(timeout) => rx.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => NetnsError::Timeout { thread, timeout },
            mpsc::RecvTimeoutError::Disconnected => NetnsError::NoAnswer { thread },
        }),
        None => rx.recv().map_err(|_| NetnsError::NoAnswer { thread }),
    };
    answer?
}
