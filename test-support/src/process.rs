//! Guards over child processes a test starts, so that a failing test leaves none behind.

use std::process::{Child, Command};

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
