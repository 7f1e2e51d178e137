//! Running reader work inside a network namespace.
//!
//! IPVS state is per network namespace. `setns(2)` changes only the calling thread, so every
//! read runs on a dedicated, short-lived thread that first enters the namespace (when one is
//! configured). A netlink socket stays bound to the namespace it was created in, and procfs is
//! read through `/proc/thread-self/net/…` from that same thread (`/proc/net` follows the main
//! thread). The caller waits with a timeout, so a stuck kernel call cannot hang a scrape.

use crate::reader::ReadError;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Where a configured namespace lives: a bare name is looked up under `/run/netns`; anything
/// containing a `/` is taken as a path (e.g. `/proc/1234/ns/net`).
pub fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        PathBuf::from("/run/netns").join(netns)
    }
}

/// Enter `netns` on the current thread.
fn enter(netns: &str) -> Result<(), ReadError> {
    let path = netns_path(netns);
    let file = std::fs::File::open(&path).map_err(|e| ReadError::Netns {
        netns: netns.to_string(),
        reason: format!("cannot open {}: {e}", path.display()),
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| ReadError::Netns {
        netns: netns.to_string(),
        reason: format!(
            "setns({}): {e}{}",
            path.display(),
            if e == nix::errno::Errno::EPERM {
                " (CAP_SYS_ADMIN is needed to change namespace)"
            } else {
                ""
            }
        ),
    })
}

/// Run `f` on a fresh thread, inside `netns` when given, and wait at most `timeout` for it.
pub fn run_in_netns<T, F>(netns: Option<&str>, timeout: Duration, f: F) -> Result<T, ReadError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ReadError> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let ns = netns.map(str::to_string);
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("ipvs-reader".into())
        .spawn(move || {
            let _g = span.entered();
            let result = match ns.as_deref() {
                Some(n) => enter(n).and_then(|()| f()),
                None => f(),
            };
            // The receiver may have timed out and gone; nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(|e| ReadError::Netlink(format!("cannot start reader thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ReadError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::Netlink(
            "reader thread ended without an answer".into(),
        )),
    }
}
