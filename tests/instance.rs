//! The `ipvs-herald` binary as an operator (or a careless script) meets it, on loopback only,
//! without root and without IPVS (the host kernel has none, so VIP groups stay unhealthy; the
//! announcer still runs):
//!
//! - a second `run` with the same configuration stops at the single-instance lock, naming it and
//!   the first daemon's PID, and leaves the first daemon's admin socket answering;
//! - a regular file at the admin socket path is refused, never deleted;
//! - `drain web`, then a restart: web is still drained; `undrain web` clears it for good;
//! - a FIFO at the configuration path, SIGHUP, SIGTERM: the daemon still stops at once;
//! - log lines carry no colour escapes when stderr is not a terminal.
//!
//! The BGP peer is active towards a closed loopback port (connection refused, retried), so no
//! listener is bound and nothing leaves the host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_test_support::free_port;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ipvs-herald");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// A working directory with a configuration; daemons started from it are killed on drop.
struct Setup {
    dir: PathBuf,
    http: SocketAddr,
    daemons: Vec<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    /// `announcer`: with `[announcer.bgp]` and a VIP group "web" (else the exporter only).
    fn new(tag: &str, announcer: bool) -> Setup {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("instance-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut c = format!("[exporter]\nlisten = \"{http}\"\n");
        if announcer {
            c.push_str(&format!(
                "\n[announcer]\nadmin_socket = \"{}\"\nmaintenance_file = \"{}\"\nstate_file = \"{}\"\n\
                 shutdown_drain_time = \"0s\"\nshutdown_timeout = \"3s\"\n\n\
                 [announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\n\n\
                 [[announcer.bgp.peers]]\nname = \"r0\"\naddress = \"127.0.0.1\"\nport = {}\n\
                 remote_as = 65001\nconnect_retry = {{ min = 5.0, max = 10.0 }}\n\n\
                 [[announcer.vip_groups]]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\"]\n",
                dir.join("admin.sock").display(),
                dir.join("maintenance").display(),
                dir.join("state.json").display(),
                free_port(),
            ));
        }
        std::fs::write(dir.join("herald.toml"), c).unwrap();
        Setup {
            dir,
            http,
            daemons: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("-c")
            .arg(self.path("herald.toml"))
            .args(args)
            .env("IPVS_HERALD_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        c
    }

    /// `ipvs-herald run` with stderr into `log` (a file: not a terminal).
    fn start(&mut self, log: &str) -> usize {
        let file = std::fs::File::create(self.path(log)).unwrap();
        let child = self
            .command(&["run"])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start ipvs-herald");
        self.daemons.push(child);
        self.daemons.len() - 1
    }

    fn pid(&self, i: usize) -> u32 {
        self.daemons[i].id()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// A client command (`status`, `drain web`), bounded in time.
    fn client(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(10))
    }

    /// Wait until `status` answers with `web` in state `state`.
    fn wait_status(&mut self, i: usize, state: &str, log: &str) -> String {
        let start = Instant::now();
        loop {
            let out = self.client(&["status"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let web = text.lines().find(|l| l.starts_with("web "));
            if out.status.success()
                && web.is_some_and(|l| l.split_whitespace().nth(1) == Some(state))
            {
                return text;
            }
            if let Ok(Some(st)) = self.daemons[i].try_wait() {
                panic!(
                    "daemon exited ({st}) before status said web {state}:\n{}",
                    self.log(log)
                );
            }
            if start.elapsed() > START_TIMEOUT {
                panic!(
                    "status never said web {state}: {text}{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log(log)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait until the metrics port accepts connections (the daemon is up).
    fn wait_http(&mut self, i: usize, log: &str) {
        let start = Instant::now();
        while TcpStream::connect_timeout(&self.http, Duration::from_millis(200)).is_err() {
            if let Ok(Some(st)) = self.daemons[i].try_wait() {
                panic!("daemon exited ({st}) at start:\n{}", self.log(log));
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "no HTTP listener:\n{}",
                self.log(log)
            );
            std::thread::sleep(POLL);
        }
        // The signal handlers are installed right after the listener is bound.
        std::thread::sleep(Duration::from_millis(300));
    }

    fn signal(&self, i: usize, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid(i).to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Wait up to `bound` for daemon `i` to exit.
    fn wait_exit(&mut self, i: usize, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(st) = self.daemons[i].try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Collect a child's output, killing it if it runs longer than `bound`.
fn wait_output(mut child: Child, bound: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > bound {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_second_instance_is_refused_and_the_first_keeps_its_admin_socket() {
    let mut s = Setup::new("second", true);
    let first = s.start("first.log");
    s.wait_status(first, "withdrawn", "first.log");

    let second = s
        .command(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let out = wait_output(second, Duration::from_secs(15));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "second instance: {err}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let expected = format!(
        "another ipvs-herald is running: it holds the lock {} (pid {})",
        s.path("admin.sock.lock").display(),
        s.pid(first)
    );
    assert!(err.contains(&expected), "{err}");

    // The first daemon is untouched: its socket is there and answers, it still runs.
    let status = s.client(&["status"]);
    assert!(
        status.status.success(),
        "status after the second instance: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(s.daemons[first].try_wait().unwrap().is_none());

    // Stopped cleanly, a new daemon may start.
    s.signal(first, "-TERM");
    let st = s.wait_exit(first, Duration::from_secs(10));
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", s.log("first.log"));
    let next = s.start("next.log");
    s.wait_status(next, "withdrawn", "next.log");
}

#[test]
fn a_regular_file_at_the_admin_socket_path_is_refused_and_kept() {
    let s = Setup::new("regular", true);
    std::fs::write(s.path("admin.sock"), "not a socket").unwrap();
    let child = s
        .command(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(15));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("there is a regular file at that path, not a socket"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("admin.sock")).unwrap(),
        "not a socket"
    );
}

/// The same rule on SIGHUP: moving the admin socket onto a regular file is refused, the file
/// kept, and the daemon still answers on its old socket.
#[test]
fn a_sighup_never_rebinds_the_admin_socket_over_a_regular_file() {
    let mut s = Setup::new("rebind", true);
    let d = s.start("d.log");
    s.wait_status(d, "withdrawn", "d.log");
    std::fs::write(s.path("other.sock"), "keep me").unwrap();
    let text = std::fs::read_to_string(s.path("herald.toml")).unwrap();
    let moved = text.replace(
        &s.path("admin.sock").display().to_string(),
        &s.path("other.sock").display().to_string(),
    );
    assert_ne!(text, moved);
    std::fs::write(s.path("herald.toml.tmp"), moved).unwrap();
    std::fs::rename(s.path("herald.toml.tmp"), s.path("herald.toml")).unwrap();
    s.signal(d, "-HUP");
    let start = Instant::now();
    while !s
        .log("d.log")
        .contains("configuration could not be applied")
    {
        assert!(
            start.elapsed() < START_TIMEOUT,
            "no refusal:\n{}",
            s.log("d.log")
        );
        std::thread::sleep(POLL);
    }
    assert!(
        s.log("d.log")
            .contains("there is a regular file at that path, not a socket"),
        "{}",
        s.log("d.log")
    );
    assert_eq!(
        std::fs::read_to_string(s.path("other.sock")).unwrap(),
        "keep me"
    );
    let out = s
        .command(&["status", "--socket"])
        .arg(s.path("admin.sock"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_drain_survives_a_restart_until_undrained() {
    let mut s = Setup::new("drain", true);
    let a = s.start("a.log");
    s.wait_status(a, "withdrawn", "a.log");
    let out = s.client(&["drain", "web", "--time", "0s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait_status(a, "drained", "a.log");
    s.signal(a, "-TERM");
    assert!(
        s.wait_exit(a, Duration::from_secs(10)).is_some(),
        "{}",
        s.log("a.log")
    );

    let b = s.start("b.log");
    let status = s.wait_status(b, "drained", "b.log");
    assert!(
        status.contains("drained by `ipvs-herald drain web`"),
        "{status}"
    );
    assert!(
        s.log("b.log").contains("restored admin drain"),
        "{}",
        s.log("b.log")
    );
    let out = s.client(&["undrain", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait_status(b, "withdrawn", "b.log");
    // Killed, not stopped: what is on disk is what counts.
    s.daemons[b].kill().unwrap();
    s.daemons[b].wait().unwrap();

    let c = s.start("c.log");
    s.wait_status(c, "withdrawn", "c.log");
    let state = std::fs::read_to_string(s.path("state.json")).unwrap();
    assert!(!state.contains("web"), "{state}");
}

#[test]
fn a_fifo_at_the_config_path_does_not_block_sighup_or_sigterm() {
    let mut s = Setup::new("fifo", false);
    let d = s.start("d.log");
    s.wait_http(d, "d.log");
    std::fs::remove_file(s.path("herald.toml")).unwrap();
    let made = Command::new("mkfifo")
        .arg(s.path("herald.toml"))
        .status()
        .unwrap();
    assert!(made.success());
    s.signal(d, "-HUP");
    std::thread::sleep(Duration::from_millis(500));
    s.signal(d, "-TERM");
    let st = s.wait_exit(d, Duration::from_secs(5));
    let log = s.log("d.log");
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "did not stop after SIGTERM:\n{log}"
    );
    assert!(
        log.contains("it is a FIFO, not a regular file") && log.contains("SIGTERM: stopping"),
        "{log}"
    );
}

#[test]
fn logs_carry_no_colour_escapes_when_stderr_is_a_pipe() {
    let mut s = Setup::new("colour", false);
    let mut child = s
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    s.daemons.push(child);
    s.wait_http(0, "none");
    s.signal(0, "-TERM");
    assert!(s.wait_exit(0, Duration::from_secs(10)).is_some());
    let log = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert!(log.contains("ipvs-herald starting"), "{log}");
    assert!(
        !log.contains("\u{1b}["),
        "colour escapes in a piped log:\n{log:?}"
    );
}
