//! Guards over child processes a test starts, so that a failing test leaves none behind.

use crate::command::Error;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child started with `process_group(0)`: dropping it kills its process group and every
/// descendant, also those that moved to a group of their own (GNU `timeout` puts its command
/// in a new process group, as `tests/lab/lab.sh` does with QEMU), then reaps it.
#[derive(Debug)]
pub struct ProcessGroup(pub Child);

/// `pid` and its descendants, by `/proc/PID/task/*/children`.
fn descendants(pid: u32, out: &mut Vec<u32>) {
    out.push(pid);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            if !out.contains(&c) {
                descendants(c, out);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let pgid = self.0.id();
        let mut pids = Vec::new();
        descendants(pgid, &mut pids);
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{pgid}"))
            .status();
        for p in pids.iter().skip(1) {
            let _ = Command::new("kill").arg(p.to_string()).status();
        }
        let _ = self.0.wait();
    }
}

/// A long-running process of a test (a daemon, a router, a traffic client), its stdout and
/// stderr appended to a log file. Dropping it stops it: SIGKILL at once, or with
/// [`Daemon::with_grace`] SIGTERM first and SIGKILL only after the grace period.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    grace_on_drop: Duration,
}

impl Daemon {
    /// Starts `cmd` (stdin closed, output appended to `log`) under the name `name`, which the
    /// errors quote.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Daemon, Error> {
        let what = |source: std::io::Error, doing: &str| Error::Io {
            what: format!("{name}: {doing} {}", log.display()),
            source,
        };
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| what(e, "open log"))?;
        let err = out.try_clone().map_err(|e| what(e, "dup log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| Error::Spawn {
                command: format!("{name} ({cmd:?})"),
                source,
            })?;
        Ok(Daemon {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
            grace_on_drop: Duration::ZERO,
        })
    }

    /// Stop it on drop as [`Daemon::stop`] does with `grace`, not with SIGKILL at once.
    pub fn with_grace(mut self, grace: Duration) -> Daemon {
        self.grace_on_drop = grace;
        self
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid while it has not been killed or stopped by this value (an `ip netns exec` child
    /// execs the program, so the pid is the program's).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: Signal) -> Result<(), Error> {
        let pid = self
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| self.state("is not running"))?;
        kill(Pid::from_raw(pid), sig).map_err(|source| Error::Sys {
            what: format!("kill -{sig} {pid} ({})", self.name),
            source,
        })
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Its exit status once it exited (reaped), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for its exit, bounded by `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            if self.child.is_none() {
                return Err(self.state("was never started"));
            }
            if start.elapsed() > timeout {
                return Err(self.state(&format!(
                    "still running {:.1} s later",
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGCONT (in case it was frozen), SIGTERM, then SIGKILL once `grace` has passed; always
    /// reaps it.
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

    /// SIGKILL and reap, as a crash would end it; its exit status, `None` when it was not
    /// running.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        c.wait().ok()
    }

    fn state(&self, what: &str) -> Error {
        Error::Process {
            name: self.name.clone(),
            what: what.to_owned(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.grace_on_drop.is_zero() {
            self.kill();
        } else {
            self.stop(self.grace_on_drop);
        }
    }
}
