//! Test harness of the root package's namespace tests (`tests/reload.rs`, `tests/faults.rs`,
//! `tests/soak.rs`, `tests/ospf_e2e.rs`, …): network namespaces joined by veth, a real BIRD 2
//! router, the real `ipvs-herald` binary started inside a namespace, a procfs-backed fake IPVS
//! table the test rewrites, and bounded waits. Everything a test creates is owned by a value whose `Drop`
//! tears it down (processes killed by pid, namespaces deleted), so a failing test leaves
//! nothing behind. Needs root.
#![allow(dead_code)]

pub use herald_test_support::Daemon;
use herald_test_support::{Netns, Signal};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Every failure is a sentence naming what went wrong.
pub type TResult<T> = Result<T, String>;

/// The binary under test.
pub const HERALD: &str = env!("CARGO_BIN_EXE_ipvs-herald");

/// Bound on one short helper command (`ip`, `birdc`, `wget`, the admin client).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a short command to completion, bounded by 30 s, and returns its stdout; a non-zero
/// exit is an error quoting stderr.
pub fn run(cmd: &mut Command) -> TResult<String> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {desc}: {e}"))?;
    let start = Instant::now();
    // Poll rather than block: a helper that hangs (a frozen daemon's socket) must not hang the
    // test. Outputs of these helpers are small, so the pipes cannot fill up meanwhile.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > CMD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{desc} did not finish within {CMD_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for {desc}: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("collecting output of {desc}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{desc} failed ({}): {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS`.
pub fn ip(args: &[&str]) -> TResult<String> {
    run(Command::new("ip").args(args))
}

/// A command run inside namespace `ns` (`ip netns exec` execs it, so the child's pid is the
/// program's).
pub fn ns_cmd(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// Installs the tools named (commands of `tests/deps.sh`'s table) when missing, through
/// `tests/deps.sh`; fails, never skips, when that is impossible.
pub fn ensure_packages(names: &[&str]) -> TResult<()> {
    herald_test_support::ensure(names).map_err(|e| e.to_string())
}

/// BIRD 2 and busybox (`wget` inside a namespace), which every test here needs.
pub const BASE_PACKAGES: &[&str] = &["bird", "busybox"];

/// Polls `check` every `every` until it answers `Ok(true)`; returns the time it took. Errors
/// of `check` are remembered and quoted if `timeout` passes (a daemon not ready yet is not a
/// failure).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> TResult<bool>,
) -> TResult<Duration> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match check() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "timed out after {:.1} s waiting for {what} (last error: {last})",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(every);
    }
}

/// Replaces `path` atomically (write a temporary file, rename), as configuration management
/// and the kernel's procfs (one consistent read) both behave.
pub fn write_atomic(path: &Path, text: &str) -> TResult<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))
}

/// Last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The namespaces and working directory of one test; the namespaces are deleted on drop (every
/// process left in them is killed first: only processes this test started can be inside them).
#[derive(Debug)]
pub struct World {
    pub tag: String,
    pub dir: PathBuf,
    namespaces: Vec<Netns>,
}

impl World {
    /// A fresh working directory `<CARGO_TARGET_TMPDIR>/<name>-<pid>`; `short` (a few
    /// letters) prefixes the namespace names, which must be unique on the host.
    pub fn new(name: &str, short: &str) -> TResult<Self> {
        ensure_packages(BASE_PACKAGES)?;
        let pid = std::process::id();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        Ok(Self {
            tag: format!("{short}{pid}"),
            dir,
            namespaces: Vec::new(),
        })
    }

    /// Creates namespace `<tag>-<name>` with `lo` up; returns its name.
    pub fn netns(&mut self, name: &str) -> TResult<String> {
        let ns = Netns::create(&format!("{}-{name}", self.tag)).map_err(|e| e.to_string())?;
        let name = ns.name().to_owned();
        self.namespaces.push(ns);
        Ok(name)
    }

    /// The namespace this world made under the name [`World::netns`] returned.
    pub fn ns(&self, name: &str) -> TResult<&Netns> {
        self.namespaces
            .iter()
            .find(|n| n.name() == name)
            .ok_or_else(|| format!("no namespace {name} in this test"))
    }

    /// A veth pair from `a_if` in `a` to `b_if` in `b`, both up.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> TResult<()> {
        ip(&[
            "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ])?;
        ip(&["-n", a, "link", "set", a_if, "up"])?;
        ip(&["-n", b, "link", "set", b_if, "up"])?;
        Ok(())
    }

    /// `ip -n NS addr add CIDR dev DEV`.
    pub fn addr(&self, ns: &str, dev: &str, cidr: &str) -> TResult<()> {
        ip(&["-n", ns, "addr", "add", cidr, "dev", dev]).map(|_| ())
    }

    /// `sysctl -w` inside a namespace.
    pub fn sysctl(&self, ns: &str, settings: &[&str]) -> TResult<()> {
        let mut c = ns_cmd(ns, "sysctl");
        c.arg("-q").arg("-w").args(settings);
        run(&mut c).map(|_| ())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A subdirectory of the working directory (created).
    pub fn subdir(&self, name: &str) -> TResult<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        Ok(d)
    }
}

/// BGP state of one BIRD protocol, from `birdc show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoState {
    pub established: bool,
    /// BIRD's "since" column (date and time), which moves on every state change.
    pub since: String,
    /// The whole line, for reports.
    pub line: String,
}

impl ProtoState {
    /// Whether `self` and `later` describe the same session, not a reset and reconnect.
    ///
    /// BIRD keeps the "since" time on its monotonic clock and prints it through the current
    /// offset to wall-clock time, so the same instant can print a millisecond apart on two
    /// calls. A real reset moves it by far more: the speaker waits at least its connect-retry
    /// minimum (0.5 s in these labs) before it reconnects.
    pub fn same_session(&self, later: &ProtoState) -> bool {
        const JITTER_MS: i64 = 50;
        match (since_millis(&self.since), since_millis(&later.since)) {
            (Some(a), Some(b)) => later.established && (a - b).abs() <= JITTER_MS,
            _ => later.established && self.since == later.since,
        }
    }
}

/// BIRD's "YYYY-MM-DD HH:MM:SS.mmm" as milliseconds since 1970 (UTC or not: only
/// differences matter).
fn since_millis(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let ms = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + hh) * 60 + mm) * 60 + ss) * 1000 + ms)
}

#[cfg(test)]
mod since_tests {
    use super::*;

    fn st(since: &str) -> ProtoState {
        ProtoState {
            established: true,
            since: since.into(),
            line: String::new(),
        }
    }

    #[test]
    fn a_millisecond_of_print_jitter_is_the_same_session_a_reconnect_is_not() {
        let a = st("2026-12-03 17:43:24.191");
        assert!(a.same_session(&st("2026-12-03 17:43:24.192")));
        assert!(a.same_session(&st("2026-12-03 17:43:24.190")));
        assert!(!a.same_session(&st("2026-12-03 17:43:24.700")));
        assert!(!a.same_session(&st("2026-12-03 17:43:25.191")));
        // Across midnight and a month end.
        assert!(st("2026-11-30 23:59:59.999").same_session(&st("2026-12-01 00:00:00.001")));
        assert!(!st("2026-12-02 17:43:24.191").same_session(&st("2026-12-03 17:43:24.191")));
        let mut down = st("2026-12-03 17:43:24.191");
        down.established = false;
        assert!(!a.same_session(&down));
        assert_eq!(since_millis("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(since_millis("garbage"), None);
    }
}

/// BIRD 2 in a namespace with its config, control socket, pid file and log in `dir`.
#[derive(Debug)]
pub struct Bird {
    ns: String,
    dir: PathBuf,
    proc: Option<Daemon>,
}

impl Bird {
    /// Writes `config` (without `log`/`timeformat` lines: added here) and starts BIRD,
    /// waiting for its control socket.
    pub fn start(ns: &str, dir: &Path, config: &str) -> TResult<Self> {
        let conf = format!(
            "log stderr all;\ntimeformat protocol iso long ms;\ntimeformat route iso long ms;\n{config}"
        );
        std::fs::write(dir.join("bird.conf"), conf).map_err(|e| format!("bird.conf: {e}"))?;
        let mut b = Self {
            ns: ns.to_owned(),
            dir: dir.to_owned(),
            proc: None,
        };
        b.launch()?;
        Ok(b)
    }

    fn launch(&mut self) -> TResult<()> {
        let mut c = ns_cmd(&self.ns, "/usr/sbin/bird");
        c.arg("-f")
            .arg("-c")
            .arg(self.dir.join("bird.conf"))
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .arg("-P")
            .arg(self.dir.join("bird.pid"));
        self.proc =
            Some(Daemon::spawn("bird", c, &self.dir.join("bird.log")).map_err(|e| e.to_string())?);
        wait_until(
            "BIRD control socket",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || Ok(self.birdc(&["show", "status"])?.contains("Daemon is up")),
        )
        .map(|_| ())
        .map_err(|e| format!("{e}\n{}", self.logs()))
    }

    /// SIGKILL (a crash: no NOTIFICATION is sent, the kernel closes the TCP sessions).
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        let _ = std::fs::remove_file(self.dir.join("bird.ctl"));
    }

    /// Starts BIRD again with the same configuration.
    pub fn restart(&mut self) -> TResult<()> {
        self.kill9();
        self.launch()
    }

    pub fn birdc(&self, args: &[&str]) -> TResult<String> {
        run(Command::new("/usr/sbin/birdc")
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(args))
    }

    pub fn proto(&self, p: &str) -> TResult<ProtoState> {
        let out = self.birdc(&["show", "protocols", p])?;
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(p))
            .ok_or_else(|| format!("no protocol {p} in {out}"))?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        Ok(ProtoState {
            established: cols.iter().any(|c| c.eq_ignore_ascii_case("established")),
            since: format!(
                "{} {}",
                cols.get(4).copied().unwrap_or_default(),
                cols.get(5).copied().unwrap_or_default()
            ),
            line: line.to_owned(),
        })
    }

    pub fn established(&self, p: &str) -> TResult<bool> {
        Ok(self.proto(p)?.established)
    }

    /// `show protocols all P`.
    pub fn details(&self, p: &str) -> TResult<String> {
        self.birdc(&["show", "protocols", "all", p])
    }

    /// Whether BIRD holds `prefix` learnt from protocol `p`.
    pub fn has_route(&self, p: &str, prefix: &str) -> TResult<bool> {
        let out = self.birdc(&["show", "route", "protocol", p])?;
        Ok(out.lines().any(|l| l.starts_with(prefix)))
    }

    /// `show route PREFIX all`: every path with its attributes.
    pub fn route_all(&self, prefix: &str) -> TResult<String> {
        self.birdc(&["show", "route", "for", prefix, "all"])
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bird.log")
    }

    pub fn logs(&self) -> String {
        format!("--- bird.log ---\n{}", tail(&self.log_path(), 40))
    }
}

/// One `ipvs-herald run` in a namespace.
#[derive(Debug)]
pub struct Herald {
    pub name: String,
    pub ns: String,
    /// The configuration file (`-c`).
    pub config: PathBuf,
    log: PathBuf,
    /// Where the exporter listens inside `ns`.
    metrics_url: String,
    env: Vec<(String, String)>,
    proc: Option<Daemon>,
}

impl Herald {
    pub fn new(name: &str, ns: &str, config: PathBuf, log: PathBuf, metrics: &str) -> Self {
        Self {
            name: name.to_owned(),
            ns: ns.to_owned(),
            config,
            log,
            metrics_url: format!("http://{metrics}/metrics"),
            env: vec![("IPVS_HERALD_LOG".into(), "info".into())],
            proc: None,
        }
    }

    /// Adds an environment variable of the daemon (e.g. the fault hook directory).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn start(&mut self) -> TResult<()> {
        let mut c = ns_cmd(&self.ns, HERALD);
        c.arg("-c").arg(&self.config).arg("run");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        // One log across restarts (the previous run's end is evidence), each start marked.
        if let Ok(mut f) = File::options().create(true).append(true).open(&self.log) {
            use std::io::Write as _;
            let _ = writeln!(f, "===== test: starting {} =====", self.name);
        }
        self.proc = Some(Daemon::spawn(&self.name, c, &self.log).map_err(|e| e.to_string())?);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Daemon::pid)
    }

    pub fn alive(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Daemon::running)
    }

    /// Sends signal `sig`, a name: HUP, TERM, KILL, STOP, CONT.
    pub fn signal(&self, sig: &str) -> TResult<()> {
        let sig: Signal = format!("SIG{sig}")
            .parse()
            .map_err(|e| format!("signal {sig}: {e}"))?;
        self.proc
            .as_ref()
            .ok_or_else(|| format!("{} not started", self.name))?
            .signal(sig)
            .map_err(|e| e.to_string())
    }

    pub fn hup(&self) -> TResult<()> {
        self.signal("HUP")
    }

    /// SIGKILL and reap; `None` when it was not running.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        self.proc.take().and_then(|mut p| p.kill())
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> TResult<ExitStatus> {
        self.proc
            .as_mut()
            .ok_or_else(|| format!("{} not started", self.name))?
            .wait_exit(timeout)
            .map_err(|e| e.to_string())
    }

    /// GET /metrics inside the namespace (busybox wget).
    pub fn metrics(&self) -> TResult<String> {
        let mut c = ns_cmd(&self.ns, "busybox");
        // No `-T`: busybox 1.35's wget crashes with it; `run` bounds the time instead.
        c.args(["wget", "-q", "-O", "-", &self.metrics_url]);
        run(&mut c)
    }

    /// Whether /metrics has exactly the line `line`.
    pub fn metric_is(&self, line: &str) -> TResult<bool> {
        Ok(self.metrics()?.lines().any(|l| l == line))
    }

    /// The value of the sample whose name and labels are exactly `series`.
    pub fn metric(&self, series: &str) -> TResult<Option<f64>> {
        Ok(self.metrics()?.lines().find_map(|l| {
            let v = l.strip_prefix(series)?.strip_prefix(' ')?;
            v.trim().parse().ok()
        }))
    }

    /// `ipvs-herald -c CONFIG ARGS` on the host (drain, undrain, status: the admin socket is
    /// a file, reachable from any namespace).
    pub fn ctl(&self, args: &[&str]) -> TResult<String> {
        run(Command::new(HERALD).arg("-c").arg(&self.config).args(args))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        format!("--- {} log ---\n{}", self.name, tail(&self.log, 60))
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fake `/proc/net/ip_vs` under `<root>/net/` for `[reader] source = "procfs"` with
/// `procfs_root = "<root>"`, in the kernel's format (`shared/src/procfs.rs`).
#[derive(Debug, Clone)]
pub struct FakeIpvs {
    pub root: PathBuf,
}

impl FakeIpvs {
    pub fn new(root: PathBuf) -> TResult<Self> {
        let net = root.join("net");
        std::fs::create_dir_all(&net).map_err(|e| format!("mkdir {}: {e}", net.display()))?;
        std::fs::write(
            net.join("ip_vs_stats"),
            "   Total Incoming Outgoing         Incoming         Outgoing\n   Conns  Packets  Packets            Bytes            Bytes\n       0        0        0                0                0\n\n Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n       0        0        0                0                0\n",
        )
        .map_err(|e| format!("ip_vs_stats: {e}"))?;
        Ok(Self { root })
    }

    /// One TCP service `vip:port` (rr) with destinations `(address, port, weight)`, replacing
    /// the table atomically.
    pub fn set(&self, vip: Ipv4Addr, port: u16, dests: &[(Ipv4Addr, u16, i32)]) -> TResult<()> {
        let mut t = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
        );
        t.push_str(&format!("TCP  {:08X}:{port:04X} rr \n", u32::from(vip)));
        for (a, p, w) in dests {
            t.push_str(&format!(
                "  -> {:08X}:{p:04X}      Route   {w:<6} 0          0         \n",
                u32::from(*a)
            ));
        }
        write_atomic(&self.root.join("net/ip_vs"), &t)
    }

    /// The pool of `vip:port` healthy (one real server of weight 1) or dead (weight 0).
    pub fn pool(&self, vip: Ipv4Addr, port: u16, up: bool) -> TResult<()> {
        let real = Ipv4Addr::new(198, 51, 100, 200);
        self.set(vip, port, &[(real, port, i32::from(up))])
    }

    /// No `/proc/net/ip_vs` at all: what an unloaded ip_vs module looks like.
    pub fn remove(&self) -> TResult<()> {
        match std::fs::remove_file(self.root.join("net/ip_vs")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("remove ip_vs: {e}")),
        }
    }
}

/// One director's `ipvs-herald` configuration in the namespace tests: procfs-backed fake IPVS,
/// one BGP peer (the router), one VIP group `web` with the VIP required on a local interface.
/// Every path (admin socket, maintenance file, drain state, fake procfs) is under `dir`.
#[derive(Debug, Clone)]
pub struct DirectorConfig {
    pub dir: PathBuf,
    /// Router id and the local address of the session.
    pub address: Ipv4Addr,
    pub local_as: u32,
    pub router: Ipv4Addr,
    pub router_as: u32,
    /// Proposed BGP hold time (seconds).
    pub hold_time: u16,
    pub vip: Ipv4Addr,
    pub interval_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub hold_down_ms: u64,
    /// `announcer.drain_time`, the default of `ipvs-herald drain`.
    pub drain_time: String,
    /// MED of the announced route (a live-reloadable change).
    pub med: Option<u32>,
    /// The peer's `graceful_restart.restart_time` (seconds); `None`: no graceful restart.
    pub graceful_restart: Option<u16>,
    /// BFD to the peer at 100 ms x 3 (`bfd = { ... }`); off by default.
    pub bfd: bool,
}

impl DirectorConfig {
    pub fn new(dir: PathBuf, address: Ipv4Addr, router: Ipv4Addr, vip: Ipv4Addr) -> Self {
        Self {
            dir,
            address,
            local_as: 65001,
            router,
            router_as: 65000,
            hold_time: 9,
            vip,
            interval_ms: 200,
            rise: 2,
            fall: 2,
            hold_down_ms: 1000,
            drain_time: "5s".into(),
            med: None,
            graceful_restart: None,
            bfd: false,
        }
    }

    /// The fake procfs root (`<dir>/proc`).
    pub fn procfs_root(&self) -> PathBuf {
        self.dir.join("proc")
    }

    /// The fault hook directory (`IPVS_HERALD_FAULT_DIR`).
    pub fn fault_dir(&self) -> PathBuf {
        self.dir.join("fault")
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let d = |n: &str| self.dir.join(n).display().to_string();
        let mut c = format!(
            r#"[reader]
source = "procfs"
procfs_root = "{procfs}"
kernel_hz = 250

[exporter]
listen = "127.0.0.1:9639"

[exporter.conn_table]
enabled = false

[announcer]
admin_socket = "{admin}"
maintenance_file = "{maint}"
drain_time = "{drain}"
shutdown_drain_time = "1s"
shutdown_timeout = "5s"
state_file = "{state}"

[announcer.bgp]
router_id = "{addr}"
local_as = {las}
listen = "{addr}:179"

[[announcer.bgp.peers]]
name = "rt"
address = "{rtr}"
remote_as = {ras}
local_address = "{addr}"
hold_time = {hold}
connect_retry = {{ min = 0.5, max = 2.0 }}
{gr}
[[announcer.vip_groups]]
name = "web"
prefixes = ["{vip}/32"]
interval = "{interval}ms"
rise = {rise}
fall = {fall}
hold_down = "{hd}ms"
"#,
            procfs = self.procfs_root().display(),
            admin = self.admin_socket().display(),
            maint = d("maintenance"),
            drain = self.drain_time,
            state = d("drain-state.json"),
            addr = self.address,
            las = self.local_as,
            rtr = self.router,
            ras = self.router_as,
            hold = self.hold_time,
            vip = self.vip,
            interval = self.interval_ms,
            rise = self.rise,
            fall = self.fall,
            hd = self.hold_down_ms,
            gr = self
                .graceful_restart
                .map(|t| format!("graceful_restart = {{ restart_time = {t} }}\n"))
                .unwrap_or_default()
                + if self.bfd {
                    "bfd = { desired_min_tx = \"100ms\", required_min_rx = \"100ms\", detect_multiplier = 3 }\n"
                } else {
                    ""
                },
        );
        if let Some(med) = self.med {
            c.push_str(&format!("up = {{ med = {med} }}\n"));
        }
        c
    }

    /// Writes the file atomically to `<dir>/herald.toml` and returns its path.
    pub fn write(&self) -> TResult<PathBuf> {
        let p = self.dir.join("herald.toml");
        write_atomic(&p, &self.render())?;
        Ok(p)
    }
}
