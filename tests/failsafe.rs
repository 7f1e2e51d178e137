//! The binary's fail-safe paths, through the test-only fault hooks (`IPVS_HERALD_FAULT_DIR`) and
//! a real systemd notification socket (a datagram socket the test binds, passed as
//! `NOTIFY_SOCKET`, as systemd does for `Type=notify`):
//!
//! - `READY=1` once serving, `WATCHDOG=1` at half of `WATCHDOG_USEC` while the loop lives,
//!   `RELOADING=1` with `MONOTONIC_USEC` and `READY=1` again around SIGHUP, `STOPPING=1` at
//!   SIGTERM;
//! - a wedged control loop stops the `WATCHDOG=1` pings and aborts the process by itself;
//! - a panic in the control loop aborts the process (SIGABRT), whatever the profile;
//! - the hooks are inert without the environment variable.
//!
//! No router and no IPVS are needed: the announcer runs with one BGP peer that never answers
//! and a procfs-backed IPVS source. Whether a router really drops the routes is proven with BIRD
//! in `tests/faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_test_support::{free_port, Netns};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The control loop's wedge bound (`herald_announcer::control::LOOP_WEDGE_BOUND`).
const WEDGE_BOUND: Duration = Duration::from_secs(15);

/// A daemon in a directory of its own, killed on drop.
struct Daemon {
    dir: PathBuf,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Daemon {
    fn dir(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("failsafe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc/net")).unwrap();
        std::fs::create_dir_all(dir.join("faults")).unwrap();
        std::fs::write(
            dir.join("proc/net/ip_vs"),
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  C000020A:0050 wlc\n  -> C6336401:0050      Route   1      0          0\n",
        )
        .unwrap();
        dir
    }

    fn start(dir: PathBuf, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(dir, env, BGP_BACKEND)
    }

    /// `backend`: the announcer's route backend section, with `{bgp}` for a closed port.
    fn start_with(dir: PathBuf, env: &[(&str, &str)], backend: &str) -> Daemon {
        let config = format!(
            r#"[reader]
source = "procfs"
procfs_root = "{proc}"
kernel_hz = 250

[exporter]
listen = "127.0.0.1:{http}"

[announcer]
admin_socket = "{dir}/admin.sock"
state_file = "{dir}/state.json"
{backend}

[[announcer.vip_groups]]
name = "web"
prefixes = ["192.0.2.10/32"]
vip_address = "ignore"
interval = "100ms"
"#,
            proc = dir.join("proc").display(),
            dir = dir.display(),
            http = free_port(),
            backend = backend.replace("{bgp}", &free_port().to_string()),
        );
        let path = dir.join("herald.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipvs-herald"));
        cmd.arg("--config")
            .arg(&path)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove(FAULT_ENV);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start ipvs-herald");
        Daemon { dir, child }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// The exit status, if the process ends within `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn touch_fault(&self, name: &str) {
        std::fs::write(self.dir.join("faults").join(name), "").unwrap();
    }

    /// Wait until the log names `what` (the daemon is past that point).
    fn wait_log(&self, what: &str, within: Duration) {
        let start = Instant::now();
        while !self.stderr().contains(what) {
            assert!(
                start.elapsed() < within,
                "no {what:?} in the log after {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const FAULT_ENV: &str = "IPVS_HERALD_FAULT_DIR";

/// One BGP peer on a closed loopback port: the announcer runs, no session comes up.
const BGP_BACKEND: &str = r#"
[announcer.bgp]
router_id = "192.0.2.1"
local_as = 65000

[[announcer.bgp.peers]]
name = "nobody"
address = "127.0.0.1"
port = {bgp}
remote_as = 65001
"#;

/// systemd's end of `NOTIFY_SOCKET`.
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        Notify { sock, path }
    }

    /// The next message, if one comes within `within`.
    fn recv(&self, within: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Wait for a message containing `line`; returns every message seen until then.
    fn expect(&self, line: &str, within: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = within.checked_sub(start.elapsed()) {
            match self.recv(left.max(Duration::from_millis(1))) {
                Some(m) if m.lines().any(|l| l == line) => {
                    seen.push(m);
                    return seen;
                }
                Some(m) => seen.push(m),
                None => break,
            }
        }
        panic!("no {line:?} within {within:?}; saw {seen:?}");
    }
}

#[test]
fn systemd_is_told_ready_reloading_and_alive_until_the_loop_wedges() {
    let dir = Daemon::dir("notify");
    let notify = Notify::bind(&dir);
    let faults = dir.join("faults");
    let mut d = Daemon::start(
        dir.clone(),
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
            (FAULT_ENV, faults.to_str().unwrap()),
        ],
    );
    notify.expect("READY=1", Duration::from_secs(20));
    // WATCHDOG=1 every 500 ms (half of WATCHDOG_USEC) while alive.
    let start = Instant::now();
    notify.expect("WATCHDOG=1", Duration::from_secs(2));
    notify.expect("WATCHDOG=1", Duration::from_secs(2));
    assert!(start.elapsed() >= Duration::from_millis(300));

    d.signal("HUP");
    let seen = notify.expect("RELOADING=1", Duration::from_secs(5));
    let reloading = seen.last().unwrap();
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    notify.expect("READY=1", Duration::from_secs(5));

    // The loop wedges: the process ends by itself once the announcer's heartbeat is silent
    // past its bound (the watchdog thread pings systemd only while every heartbeat is fresh,
    // so systemd's watchdog is the backstop if even that thread were stuck).
    d.touch_fault("wedge");
    let wedged = Instant::now();
    let status = d
        .wait_exit(WEDGE_BOUND + Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after a wedge:\n{}", d.stderr()));
    let died_after = wedged.elapsed();
    assert_eq!(status.signal(), Some(SIGABRT), "{status:?}\n{}", d.stderr());
    assert!(
        died_after >= WEDGE_BOUND - Duration::from_secs(1),
        "aborted after {died_after:?}, before the bound:\n{}",
        d.stderr()
    );
    let log = d.stderr();
    // A thread blocked inside the runtime starves the runtime's own heartbeat task too; either
    // heartbeat may be the first to fail.
    assert!(
        log.contains("fatal: the announcer's control loop: no heartbeat for")
            || log.contains("fatal: the async runtime: no heartbeat for"),
        "{log}"
    );
    drop(faults);
}

const SIGABRT: i32 = 6;

#[test]
fn sigterm_tells_systemd_stopping_and_exits_zero() {
    let dir = Daemon::dir("stop");
    let notify = Notify::bind(&dir);
    // Fault files without the environment variable are inert.
    std::fs::write(dir.join("faults/panic"), "").unwrap();
    std::fs::write(dir.join("faults/wedge"), "").unwrap();
    let mut d = Daemon::start(
        dir.clone(),
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    notify.expect("READY=1", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    assert!(d.child.try_wait().unwrap().is_none(), "{}", d.stderr());
    d.signal("TERM");
    notify.expect("STOPPING=1", Duration::from_secs(5));
    let status = d.wait_exit(Duration::from_secs(20)).expect("stopped");
    assert!(status.success(), "{status:?}\n{}", d.stderr());
    assert!(!d.stderr().contains("fault hooks are on"));
}

#[test]
fn a_panic_in_the_control_loop_aborts_the_process() {
    let dir = Daemon::dir("panic");
    let faults = dir.join("faults");
    let mut d = Daemon::start(dir.clone(), &[(FAULT_ENV, faults.to_str().unwrap())]);
    d.wait_log("announcer started", Duration::from_secs(20));
    d.touch_fault("panic");
    let touched = Instant::now();
    let status = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after a panic:\n{}", d.stderr()));
    assert_eq!(status.signal(), Some(SIGABRT), "{status:?}");
    assert!(
        touched.elapsed() < Duration::from_secs(2),
        "{:?}",
        touched.elapsed()
    );
    let log = d.stderr();
    assert!(log.contains("fault hook: control-loop panic"), "{log}");
    assert!(log.contains("fatal: panic"), "{log}");
}

/// A network namespace of the test's own (deleted on drop), for the kernel backend's routes.
fn netns(tag: &str) -> Netns {
    Netns::create(&format!("hf{tag}{}", std::process::id()))
        .unwrap_or_else(|e| panic!("a network namespace (needs root): {e}"))
}

/// Table `table` of namespace `ns` (empty while the table does not exist: `ip` then fails).
fn routes(ns: &Netns, table: u32) -> String {
    let out = Command::new("ip")
        .args([
            "-n",
            ns.name(),
            "route",
            "show",
            "table",
            &table.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon with `backend = "kernel"` (routes in table 100 of `ns`), once its healthy VIP's
/// route is installed.
fn daemon_with_route(ns: &Netns, dir: PathBuf, env: &[(&str, &str)]) -> Daemon {
    let backend = format!(
        "backend = \"kernel\"\n\n[announcer.kernel]\nmode = \"route\"\ntable = 100\nnetns = \"{}\"\n",
        ns.path().display()
    );
    let mut d = Daemon::start_with(dir, env, &backend);
    let start = Instant::now();
    while !routes(ns, 100).contains("192.0.2.10 dev lo") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "VIP never installed in the namespace:\n{}",
            d.stderr()
        );
        assert!(d.child.try_wait().unwrap().is_none(), "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// Kernel routes (for an OSPF daemon to redistribute) outlive the process,
/// unlike BGP sessions: the panic hook's last gasp removes them before the abort.
#[test]
fn a_panic_with_the_kernel_backend_withdraws_the_kernel_routes() {
    let ns = netns("k");
    let dir = Daemon::dir("kernel");
    let faults = dir.join("faults");
    let mut d = daemon_with_route(&ns, dir.clone(), &[(FAULT_ENV, faults.to_str().unwrap())]);
    d.touch_fault("panic");
    let status = d
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("still running after a panic:\n{}", d.stderr()));
    assert_eq!(status.signal(), Some(SIGABRT), "{status:?}");
    let left = routes(&ns, 100);
    assert!(
        !left.contains("192.0.2.10"),
        "the VIP outlived the process:\n{left}\n{}",
        d.stderr()
    );
    assert!(
        d.stderr().contains("withdrew kernel routes"),
        "{}",
        d.stderr()
    );
}

/// `kill -9` cannot be caught: the kernel routes stay until `ipvs-herald flush`, which the
/// unit runs as `ExecStopPost=` however the daemon ended. `flush` refuses to run under a live
/// daemon.
#[test]
fn flush_removes_the_kernel_routes_a_kill_9_left_and_refuses_under_a_live_daemon() {
    let ns = netns("f");
    let dir = Daemon::dir("flush");
    let mut d = daemon_with_route(&ns, dir.clone(), &[]);
    let flush = || {
        Command::new(env!("CARGO_BIN_EXE_ipvs-herald"))
            .arg("--config")
            .arg(dir.join("herald.toml"))
            .arg("flush")
            .output()
            .unwrap()
    };
    let refused = flush();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("flush is for after the daemon has stopped"),
        "{err}"
    );
    assert!(routes(&ns, 100).contains("192.0.2.10 dev lo"));

    d.signal("KILL");
    d.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(
        routes(&ns, 100).contains("192.0.2.10 dev lo"),
        "kill -9 cannot withdraw: the route is expected to stay until flush"
    );
    let out = flush();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed 192.0.2.10/32"),
        "{out:?}"
    );
    assert!(
        !routes(&ns, 100).contains("192.0.2.10"),
        "{}",
        routes(&ns, 100)
    );
}

/// The metrics endpoint is half of the daemon: when its server ends by itself (here through the
/// test-only hook), the daemon drains, withdraws and exits non-zero instead of living on
/// without it.
#[test]
fn a_metrics_server_that_ends_stops_the_daemon_with_an_error() {
    let dir = Daemon::dir("server");
    let faults = dir.join("faults");
    let mut d = Daemon::start(dir.clone(), &[(FAULT_ENV, faults.to_str().unwrap())]);
    d.wait_log("announcer started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.child.try_wait().unwrap().is_none(), "{}", d.stderr());
    d.touch_fault("metrics-server-exits");
    let status = d
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running without its metrics server:\n{}", d.stderr()));
    assert_eq!(status.code(), Some(1), "{status:?}\n{}", d.stderr());
    let log = d.stderr();
    assert!(
        log.contains("the metrics server stopped by itself"),
        "{log}"
    );
    assert!(
        log.contains("shutting down: draining every VIP group"),
        "{log}"
    );
}
