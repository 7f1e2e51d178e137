//! FRR (zebra plus ospfd, ospf6d, bgpd, …) in a network namespace of a test: each daemon with
//! its own vty sockets, zserv socket, pid file and log, configured from one integrated
//! `frr.conf` through `vtysh`, and killed on drop. Shared by the announcer's OSPF interop tests
//! and the root package's OSPF end-to-end test, so that FRR is started one way only.

use crate::command::{run, Error};
use crate::netns::Netns;
use crate::process::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Bound on each daemon creating its vty socket (generous: the machine is shared).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);

/// A running FRR instance; its daemons are killed (last started first) when dropped.
#[derive(Debug)]
pub struct Frr {
    /// Started in order, zebra first.
    daemons: Vec<Daemon>,
    vty_dir: PathBuf,
}

impl Frr {
    /// Starts `daemons` (zebra first) in `ns` with their sockets in `<dir>/<name>/` and their
    /// logs in `<dir>/<name>-<daemon>.log`, then applies `config` (integrated `frr.conf`
    /// syntax) with `vtysh`. A line any daemon rejects is an error quoting vtysh's answer.
    pub fn start(
        ns: &Netns,
        dir: &Path,
        name: &str,
        config: &str,
        daemons: &[&str],
    ) -> Result<Frr, Error> {
        let vty_dir = dir.join(name);
        std::fs::create_dir_all(&vty_dir).map_err(|source| Error::Io {
            what: format!("mkdir {}", vty_dir.display()),
            source,
        })?;
        // The daemons drop privileges to frr:frr and must create their sockets here.
        run(Command::new("chown").arg("-R").arg("frr:frr").arg(&vty_dir))?;
        let vty = vty_dir.display().to_string();
        let zserv = vty_dir.join("zserv.api");
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|source| Error::Io {
                what: format!("write {}", path.display()),
                source,
            })
        };
        write(&vty_dir.join("frr.conf"), config)?;
        let mut frr = Frr {
            daemons: Vec::new(),
            vty_dir: vty_dir.clone(),
        };
        for &daemon in daemons {
            // Empty per-daemon configs: the real configuration is applied through vtysh below.
            let empty = vty_dir.join(format!("{daemon}.conf"));
            write(&empty, "")?;
            let mut cmd = ns.command(&format!("/usr/lib/frr/{daemon}"));
            cmd.arg("-f")
                .arg(&empty)
                .arg("-i")
                .arg(vty_dir.join(format!("{daemon}.pid")))
                .arg("-z")
                .arg(&zserv)
                .args(["--vty_socket", &vty, "-P", "0", "--log", "stdout"]);
            let log = dir.join(format!("{name}-{daemon}.log"));
            frr.daemons
                .push(Daemon::spawn(&format!("FRR {name} {daemon}"), cmd, &log)?);
            let sock = vty_dir.join(format!("{daemon}.vty"));
            let start = Instant::now();
            while !(sock.exists() && (daemon != "zebra" || zserv.exists())) {
                if start.elapsed() > SOCKET_TIMEOUT {
                    return Err(Error::Process {
                        name: format!("FRR {name} {daemon}"),
                        what: format!(
                            "made no vty socket {} within {SOCKET_TIMEOUT:?}; its log:\n{}",
                            sock.display(),
                            tail(&log, 30)
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Apply the integrated configuration: vtysh sends each line to the daemon owning it
        // (`vtysh -f` starts in configuration mode).
        let script = dir.join(format!("{name}-apply.vtysh"));
        write(&script, &format!("{config}\nend\n"))?;
        let out = run(Command::new("vtysh")
            .args(["--vty_socket", &vty, "-f"])
            .arg(&script))?;
        if out.contains("% Unknown command")
            || out.contains("% Invalid")
            || out.contains("% Command incomplete")
        {
            return Err(Error::Process {
                name: format!("FRR {name}"),
                what: format!("rejected part of its configuration:\n{out}"),
            });
        }
        Ok(frr)
    }

    /// The directory of its vty sockets (`vtysh --vty_socket`).
    pub fn vty_dir(&self) -> &Path {
        &self.vty_dir
    }

    /// `vtysh -c CMD`: its output.
    pub fn cmd(&self, cmd: &str) -> Result<String, Error> {
        run(Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.vty_dir)
            .args(["-c", cmd]))
    }

    /// `vtysh -c CMD`: whether it succeeded, and its output (or the error).
    pub fn try_cmd(&self, cmd: &str) -> (bool, String) {
        match self.cmd(cmd) {
            Ok(out) => (true, out),
            Err(e) => (false, e.to_string()),
        }
    }

    /// The last `n` lines of every daemon's log, for failure reports.
    pub fn log_tails(&self, n: usize) -> String {
        self.daemons
            .iter()
            .map(|d| {
                format!(
                    "--- {} ({}) ---\n{}\n",
                    d.name(),
                    d.log().display(),
                    tail(d.log(), n)
                )
            })
            .collect()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        // zebra last: the protocol daemons would otherwise log lost zserv connections.
        while let Some(mut d) = self.daemons.pop() {
            d.kill();
        }
    }
}

/// The last `n` lines of a file (empty when unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
