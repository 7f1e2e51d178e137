//! Child processes of the harness: a daemon started in a namespace with its output in a
//! log file, stopped by pid (SIGTERM, then SIGKILL) when dropped; plus a helper to run
//! a short command and get its stdout or an error that quotes stderr.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{err, TResult};

/// A long-running daemon started by the harness.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> TResult<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open log {}: {e}", log.display()))?;
        let errf = out
            .try_clone()
            .map_err(|e| format!("cannot dup log handle: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(errf);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The daemon's pid (the `ip netns exec` child execs the daemon, so this is it).
    pub fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .map(Pid::from_raw)
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: Signal) -> TResult<()> {
        let pid = self
            .pid()
            .ok_or_else(|| format!("{} is not running", self.name))?;
        kill(pid, sig).map_err(|e| format!("kill({pid}, {sig}) for {}: {e}", self.name))?;
        Ok(())
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Log file path.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops the daemon: SIGCONT (in case it was frozen), SIGTERM, then SIGKILL after
    /// `grace`; always reaps it.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(raw) = i32::try_from(child.id()) {
            let pid = Pid::from_raw(raw);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the daemon hard (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
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
