//! Test harness for the OSPF interop tests: network namespaces joined by veth, and real BIRD 2 /
//! FRR (zebra + ospfd + ospf6d) instances running inside them, each with its own sockets, pid
//! files and logs under a private directory in /tmp. Everything is torn down on drop, also when
//! a test fails half-way.
//!
//! Needs root. Missing daemons are installed by `tests/deps.sh`; if they are still missing the
//! test fails loudly (never skips).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short tag for names (interfaces, namespaces, directories) of one test.
pub fn unique_tag(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// Runs a command, returns stdout; panics with stdout+stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd} {args:?} failed ({}): stdout: {} stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command; returns (success, stdout+stderr).
pub fn try_run(cmd: &str, args: &[&str]) -> (bool, String) {
    match Command::new(cmd).args(args).output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Fails unless we are root.
pub fn require_root() {
    let uid = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "the OSPF interop tests need root (network namespaces, routing daemons)"
    );
}

/// Makes sure BIRD 2, FRR and iproute2 are installed, installing them when missing
/// (`tests/deps.sh`).
pub fn require_daemons() {
    herald_test_support::require(&["bird", "birdc", "zebra", "ospfd", "ospf6d", "vtysh", "ip"]);
}

/// Polls `f` every 250 ms until it returns `Some`, or panics after `timeout` with `what` and
/// the last diagnostic returned by `diag`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    diag: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n--- diagnostics ---\n{}",
                diag()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A network namespace, deleted (with every process still in it) on drop: the shared
/// [`herald_test_support::Netns`] with the panicking helpers these tests use.
#[derive(Debug)]
pub struct Netns {
    ns: herald_test_support::Netns,
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Self {
        let ns = herald_test_support::Netns::create(name)
            .unwrap_or_else(|e| panic!("network namespace {name}: {e}"));
        Netns {
            name: ns.name().to_owned(),
            ns,
        }
    }

    /// `/run/netns/NAME`, for `setns(2)`.
    pub fn path(&self) -> PathBuf {
        self.ns.path()
    }

    /// Runs a command inside the namespace; panics when it fails.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> String {
        self.ns.exec(cmd, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a command inside the namespace; returns (success, output).
    pub fn try_exec(&self, cmd: &str, args: &[&str]) -> (bool, String) {
        let mut a = vec!["netns", "exec", self.name.as_str(), cmd];
        a.extend(args);
        try_run("ip", &a)
    }

    /// Spawns a long-running process inside the namespace.
    pub fn spawn(&self, cmd: &str, args: &[&str], log: &Path) -> Child {
        let logf = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {log:?}: {e}"));
        let logf2 = logf.try_clone().unwrap_or_else(|e| panic!("dup log: {e}"));
        self.ns
            .command(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(logf2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd} in {}: {e}", self.name))
    }
}

/// Joins two namespaces with a veth pair named `eth0` on both sides and addresses them.
pub fn link(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) {
    let tmp_a = format!("va{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let tmp_b = format!("vb{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    run(
        "ip",
        &[
            "link", "add", &tmp_a, "netns", &a.name, "type", "veth", "peer", "name", &tmp_b,
            "netns", &b.name,
        ],
    );
    for (ns, tmp, addr) in [(a, &tmp_a, a_addr), (b, &tmp_b, b_addr)] {
        ns.exec("ip", &["link", "set", tmp, "name", "eth0"]);
        ns.exec("ip", &["addr", "add", addr, "dev", "eth0"]);
        ns.exec("ip", &["link", "set", "eth0", "up"]);
    }
}

/// A private directory under /tmp, removed on drop. Kept short: it holds unix sockets.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = PathBuf::from(format!("/tmp/hrld-{tag}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        TempDir { path }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    pub fn s(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "(keeping {} for inspection: daemon logs)",
                self.path.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Dumps every `*.log` in `dir` (for failure diagnostics).
pub fn logs(dir: &TempDir) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(&dir.path) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                s.push_str(&format!("== {} (last 40 lines) ==\n", p.display()));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// A BIRD 2 instance in a namespace, with its own control socket and pid file.
#[derive(Debug)]
pub struct Bird {
    child: Child,
    pub sock: String,
    ns_name: String,
}

impl Bird {
    pub fn start(ns: &Netns, dir: &TempDir, name: &str, config: &str) -> Self {
        let conf = dir.file(&format!("{name}.conf"));
        std::fs::write(&conf, config).unwrap_or_else(|e| panic!("write {conf:?}: {e}"));
        let sock = dir.s(&format!("{name}.ctl"));
        let pid = dir.s(&format!("{name}.pid"));
        // Syntax check first, so a bad config fails with BIRD's own message.
        let (ok, out) = try_run("bird", &["-p", "-c", &conf.display().to_string()]);
        assert!(ok, "BIRD rejects {conf:?}: {out}");
        let child = ns.spawn(
            "bird",
            &[
                "-f",
                "-c",
                &conf.display().to_string(),
                "-s",
                &sock,
                "-P",
                &pid,
            ],
            &dir.file(&format!("{name}.log")),
        );
        let b = Bird {
            child,
            sock,
            ns_name: ns.name.clone(),
        };
        wait_for(
            &format!("BIRD {name} control socket"),
            Duration::from_secs(15),
            || b.try_cmd("show status").0.then_some(()),
            || logs(dir),
        );
        b
    }

    /// Runs a `birdc` command; returns (success, output).
    pub fn try_cmd(&self, cmd: &str) -> (bool, String) {
        let mut args = vec!["-s", self.sock.as_str()];
        args.extend(cmd.split_whitespace());
        try_run("birdc", &args)
    }

    pub fn cmd(&self, cmd: &str) -> String {
        let (ok, out) = self.try_cmd(cmd);
        assert!(ok, "birdc {cmd} failed: {out}");
        out
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = try_run("birdc", &["-s", &self.sock, "down"]);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An FRR instance (zebra, ospfd, ospf6d, or bgpd) in a namespace: the shared
/// [`herald_test_support::Frr`] with the panicking helpers these tests use.
#[derive(Debug)]
pub struct Frr {
    frr: herald_test_support::Frr,
    pub vty_dir: String,
}

impl Frr {
    /// zebra, ospfd and ospf6d.
    pub fn start(ns: &Netns, dir: &TempDir, name: &str, config: &str) -> Self {
        Self::start_with(ns, dir, name, config, &["zebra", "ospfd", "ospf6d"])
    }

    /// zebra plus the given daemons (zebra must come first).
    pub fn start_with(
        ns: &Netns,
        dir: &TempDir,
        name: &str,
        config: &str,
        daemons: &[&str],
    ) -> Self {
        let frr = herald_test_support::Frr::start(&ns.ns, &dir.path, name, config, daemons)
            .unwrap_or_else(|e| panic!("FRR {name}: {e}\n{}", logs(dir)));
        Frr {
            vty_dir: frr.vty_dir().display().to_string(),
            frr,
        }
    }

    /// Runs a `vtysh -c` command; returns (success, output).
    pub fn try_cmd(&self, cmd: &str) -> (bool, String) {
        self.frr.try_cmd(cmd)
    }

    pub fn cmd(&self, cmd: &str) -> String {
        self.frr
            .cmd(cmd)
            .unwrap_or_else(|e| panic!("vtysh -c {cmd:?} failed: {e}"))
    }
}
