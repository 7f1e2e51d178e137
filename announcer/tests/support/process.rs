//! Child processes of the harness: a daemon started in a namespace with its output in a
//! log file (`herald_test_support::Daemon`), stopped by pid (SIGTERM, then SIGKILL) when
//! dropped; plus a helper to run a short command and get its stdout or an error that quotes
//! stderr.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{err, TResult};

pub use herald_test_support::Daemon;

/// Starts `cmd` as a daemon of the harness (output appended to `log`); dropping it stops it
/// with SIGTERM, then SIGKILL after 3 s.
pub fn spawn(name: &str, cmd: Command, log: &Path) -> TResult<Daemon> {
    Ok(Daemon::spawn(name, cmd, log)?.with_grace(Duration::from_secs(3)))
}

/// Runs a short command to completion (bounded by `timeout`) and returns its stdout.
/// Output is drained on a helper thread so large outputs cannot deadlock the pipe.
pub fn run(mut cmd: Command, timeout: Duration) -> TResult<String> {
    let desc = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {desc}: {e}"))?;
    let pid = i32::try_from(child.id()).ok().map(Pid::from_raw);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return err(format!("collecting output of {desc}: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                let _ = kill(pid, Signal::SIGKILL);
            }
            return err(format!("{desc} did not finish within {timeout:?}"));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return err(format!(
            "{desc} failed with {}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        ));
    }
    Ok(stdout)
}

/// Last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
