//! Preconditions of the interop suite: root, the router packages (installed by
//! `tests/deps.sh` when missing, once per test process) and kernel TCP-MD5
//! support. A missing precondition is an error that fails the test loudly; nothing
//! is ever skipped.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::{err, TResult};

/// Commands the suite runs (`tests/deps.sh` knows their Debian packages).
const REQUIRED: &[&str] = &[
    "bird", "birdc", "bgpd", "zebra", "vtysh", "gobgpd", "gobgp", "exabgp", "ip",
];

fn check_once() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(
            "the interop suite needs root (network namespaces, veth, port 179); \
                    run it as root"
                .into(),
        );
    }
    herald_test_support::ensure(REQUIRED).map_err(|e| e.to_string())
}

/// Checks (once per process) that the suite can run here; the error names what is missing.
pub fn ensure() -> TResult<()> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    match RESULT.get_or_init(check_once) {
        Ok(()) => Ok(()),
        Err(e) => err(e.clone()),
    }
}

/// Checks that the running kernel was built with TCP-MD5 signatures (RFC 2385).
/// When the kernel config is not readable the MD5 test itself is the check.
pub fn ensure_tcp_md5() -> TResult<()> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let boot_cfg = format!("/boot/config-{}", release.trim());
    let text = if Path::new("/proc/config.gz").exists() {
        Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        std::fs::read_to_string(&boot_cfg).ok()
    };
    match text {
        Some(cfg) if cfg.lines().any(|l| l.trim() == "CONFIG_TCP_MD5SIG=y") => Ok(()),
        Some(_) => err(format!(
            "kernel {} is built without CONFIG_TCP_MD5SIG=y: TCP-MD5 BGP sessions cannot work here",
            release.trim()
        )),
        None => Ok(()),
    }
}
