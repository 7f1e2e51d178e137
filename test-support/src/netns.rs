//! A network namespace of a test's own, created with `ip netns add` and deleted on drop with
//! every process still inside it (only processes the test started can be there).

use crate::command::{run, Error};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

/// A named network namespace (as `ip netns list` shows it), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` with `lo` up. One of that name left behind by a killed run is
    /// deleted first. Needs root.
    pub fn create(name: &str) -> Result<Netns, Error> {
        let _ = run(Command::new("ip").args(["netns", "del", name]));
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_owned(),
        };
        run(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// Takes over namespace `name`, which exists already (one a killed run left behind): it is
    /// deleted when the value is dropped.
    pub fn adopt(name: &str) -> Netns {
        Netns {
            name: name.to_owned(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `setns(2)` or a configuration's `netns` key.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `program args…` inside the namespace to completion; its stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        run(self.command(program).args(args))
    }

    /// Runs `f` on a new thread that has joined the namespace: the sockets it opens (those of a
    /// tokio runtime built on that thread too) live there. A failed `setns` is `f`'s error type.
    pub fn spawn_in<R, E, F>(&self, f: F) -> std::thread::JoinHandle<Result<R, E>>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce() -> Result<R, E> + Send + 'static,
    {
        let path = self.path();
        std::thread::spawn(move || {
            let what = || format!("setns {}", path.display());
            let fd = File::open(&path).map_err(|source| Error::Io {
                what: what(),
                source,
            })?;
            setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Sys {
                what: what(),
                source,
            })?;
            f()
        })
    }

    /// Pids of the processes inside the namespace.
    pub fn pids(&self) -> Vec<Pid> {
        run(Command::new("ip").args(["netns", "pids", &self.name]))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .map(Pid::from_raw)
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            // A stopped process (a frozen daemon) dies of SIGKILL too; SIGCONT first lets it
            // be reaped at once.
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}
