//! SIGHUP reload of the `ipvs-herald` binary with real BGP sessions: the daemon runs in a
//! network namespace joined by veth to a router namespace where one BIRD 2 emulates two
//! routers (one passive protocol per router address). The host has no IPVS, so VIP groups
//! would stay down; the test has none and looks at the sessions and the config metrics only.
//!
//! 1. start with router r0 only; r0 Established;
//! 2. rewrite the file adding r1, SIGHUP: r1 Established, r0's session not reset (BIRD's
//!    "since" time to the millisecond unchanged), `ipvs_herald_config_last_reload_successful 1`;
//! 3. a restart-only change (`[log]`): applied nowhere, `ipvs_herald_config_restart_required 1`;
//! 4. an invalid file, SIGHUP: the process keeps running, both sessions stay,
//!    `ipvs_herald_config_last_reload_successful 0`;
//! 5. r1 removed: BIRD logs "Peer de-configured", r1's series leave /metrics, r0 untouched.
//!
//! Step 2 also moves `announcer.admin_socket`: the old socket disappears and `ipvs-herald
//! status` answers on the new one.
//!
//! Needs root (namespaces). BIRD and busybox (for `wget` inside the namespace) are installed
//! with `apt-get install -y` when missing; the test fails, never skips, if that is impossible.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type TResult<T> = Result<T, String>;

const POLL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(30);

fn run(cmd: &mut Command) -> TResult<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> TResult<String> {
    run(Command::new("ip").args(args))
}

fn ensure_packages() -> TResult<()> {
    let missing: Vec<&str> = [
        ("/usr/sbin/bird", "bird2"),
        ("/usr/bin/busybox", "busybox-static"),
    ]
    .iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, pkg)| *pkg)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut c).map_err(|e| format!("cannot install {missing:?}: {e}"))?;
    Ok(())
}

fn wait_until(what: &str, mut check: impl FnMut() -> TResult<bool>) -> TResult<()> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if start.elapsed() > TIMEOUT {
            return Err(format!("timed out waiting for {what} (last error: {last})"));
        }
        std::thread::sleep(POLL);
    }
}

/// Two namespaces, the daemons inside them, the working directory; all removed on drop.
struct World {
    spk: String,
    rtr: String,
    dir: PathBuf,
    children: Vec<Child>,
    herald: Option<Child>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(h) = self.herald.as_mut() {
            let _ = h.kill();
            let _ = h.wait();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.spk, &self.rtr] {
            // Only processes this test started can be inside namespaces it created.
            if let Ok(pids) = ip(&["netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl World {
    fn new() -> TResult<Self> {
        ensure_packages()?;
        let tag = format!("hr{}", std::process::id());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reload-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let w = World {
            spk: format!("{tag}-spk"),
            rtr: format!("{tag}-rtr"),
            dir,
            children: Vec::new(),
            herald: None,
        };
        for ns in [&w.spk, &w.rtr] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "link", "add", "eth0", "netns", &w.spk, "type", "veth", "peer", "name", "eth0",
            "netns", &w.rtr,
        ])?;
        for (ns, addrs) in [
            (&w.spk, ["192.0.2.1/24", "192.0.2.11/24", "192.0.2.12/24"]),
            (&w.rtr, ["192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24"]),
        ] {
            for a in addrs {
                ip(&["-n", ns, "addr", "add", a, "dev", "eth0"])?;
            }
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(w)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn log_file(&self, name: &str) -> TResult<std::fs::File> {
        std::fs::File::create(self.path(name)).map_err(|e| format!("create {name}: {e}"))
    }

    /// BIRD with passive protocols r0 (192.0.2.2 ← 192.0.2.11) and r1 (192.0.2.3 ← 192.0.2.12).
    fn start_bird(&mut self) -> TResult<()> {
        let mut conf = String::from(
            "router id 192.0.2.2;\nlog stderr all;\ntimeformat protocol iso long;\nprotocol device {}\n",
        );
        for (name, local, speaker) in [
            ("r0", "192.0.2.2", "192.0.2.11"),
            ("r1", "192.0.2.3", "192.0.2.12"),
        ] {
            conf.push_str(&format!(
                "protocol bgp {name} {{\n  local {local} as 65001;\n  neighbor {speaker} as 65000;\n  hold time 240;\n  passive on;\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n"
            ));
        }
        std::fs::write(self.path("bird.conf"), conf).map_err(|e| format!("bird.conf: {e}"))?;
        let log = self.log_file("bird.log")?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.rtr, "/usr/sbin/bird", "-f", "-c"])
            .arg(self.path("bird.conf"))
            .arg("-s")
            .arg(self.path("bird.ctl"))
            .arg("-P")
            .arg(self.path("bird.pid"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start bird: {e}"))?;
        self.children.push(child);
        wait_until("BIRD control socket", || {
            Ok(self.birdc(&["show", "status"])?.contains("Daemon is up"))
        })
    }

    fn birdc(&self, args: &[&str]) -> TResult<String> {
        run(Command::new("/usr/sbin/birdc")
            .arg("-s")
            .arg(self.path("bird.ctl"))
            .args(args))
    }

    /// (state info, since) of BIRD protocol `p`.
    fn proto(&self, p: &str) -> TResult<(bool, String)> {
        let out = self.birdc(&["show", "protocols", p])?;
        let cols: Vec<&str> = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(p))
            .ok_or_else(|| format!("no protocol {p} in {out}"))?
            .split_whitespace()
            .collect();
        let established = cols.iter().any(|c| c.eq_ignore_ascii_case("established"));
        let since = format!(
            "{} {}",
            cols.get(4).copied().unwrap_or_default(),
            cols.get(5).copied().unwrap_or_default()
        );
        Ok((established, since))
    }

    fn config(&self, peers: &[usize], log_level: &str) -> String {
        self.config_with(peers, log_level, "admin.sock")
    }

    fn config_with(&self, peers: &[usize], log_level: &str, admin: &str) -> String {
        let mut c = format!(
            "[log]\nlevel = \"{log_level}\"\n\n[exporter]\nlisten = \"127.0.0.1:9639\"\n\n[announcer]\nadmin_socket = \"{}\"\nmaintenance_file = \"{}\"\n\n[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\nlisten = \"192.0.2.1:179\"\n",
            self.path(admin).display(),
            self.path("maintenance").display()
        );
        for &i in peers {
            c.push_str(&format!(
                "\n[[announcer.bgp.peers]]\nname = \"r{i}\"\naddress = \"192.0.2.{}\"\nremote_as = 65001\nlocal_address = \"192.0.2.{}\"\nconnect_retry = {{ min = 0.5, max = 2.0 }}\n",
                2 + i,
                11 + i
            ));
        }
        c
    }

    fn write_config(&self, text: &str) -> TResult<()> {
        // Atomic replace, as configuration management does.
        let tmp = self.path("herald.toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("write config: {e}"))?;
        std::fs::rename(&tmp, self.path("herald.toml")).map_err(|e| format!("rename config: {e}"))
    }

    fn start_herald(&mut self) -> TResult<()> {
        let log = self.log_file("herald.log")?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.spk,
                env!("CARGO_BIN_EXE_ipvs-herald"),
                "-c",
            ])
            .arg(self.path("herald.toml"))
            .arg("run")
            .env("IPVS_HERALD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start ipvs-herald: {e}"))?;
        self.herald = Some(child);
        Ok(())
    }

    fn hup(&self) -> TResult<()> {
        let pid = self.herald.as_ref().ok_or("herald not started")?.id();
        run(Command::new("kill").args(["-HUP", &pid.to_string()])).map(|_| ())
    }

    fn alive(&mut self) -> bool {
        matches!(self.herald.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn metrics(&self) -> TResult<String> {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.spk,
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:9639/metrics",
        ]))
    }

    fn metric_is(&self, line: &str) -> TResult<bool> {
        Ok(self.metrics()?.lines().any(|l| l == line))
    }

    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.path(n)).unwrap_or_default();
        format!(
            "--- herald.log ---\n{}\n--- bird.log ---\n{}",
            read("herald.log"),
            read("bird.log")
        )
    }
}

fn scenario(w: &mut World) -> TResult<()> {
    w.start_bird()?;
    w.write_config(&w.config(&[0], "info"))?;
    w.start_herald()?;
    wait_until("r0 Established", || Ok(w.proto("r0")?.0))?;
    std::thread::sleep(Duration::from_secs(1));
    let (_, since0) = w.proto("r0")?;

    // 2. Add r1, and move the admin socket.
    if !w.path("admin.sock").exists() {
        return Err("no admin socket at start".into());
    }
    w.write_config(&w.config_with(&[0, 1], "info", "admin2.sock"))?;
    w.hup()?;
    wait_until("r1 Established after SIGHUP", || Ok(w.proto("r1")?.0))?;
    wait_until("reload metrics", || {
        Ok(w.metric_is("ipvs_herald_config_last_reload_successful 1")?
            && w.metric_is(r#"ipvs_herald_bgp_session_state{peer="r1",state="established"} 1"#)?)
    })?;
    let (up0, s0) = w.proto("r0")?;
    if !up0 || s0 != since0 {
        return Err(format!(
            "r0 was reset by the reload: since {since0} -> {s0}"
        ));
    }
    if !w.metric_is("ipvs_herald_config_restart_required 0")? {
        return Err("restart_required is not 0 after a live-only change".into());
    }
    if w.path("admin.sock").exists() || !w.path("admin2.sock").exists() {
        return Err("the admin socket was not moved to admin2.sock".into());
    }
    let status = run(Command::new(env!("CARGO_BIN_EXE_ipvs-herald"))
        .arg("-c")
        .arg(w.path("herald.toml"))
        .arg("status"))
    .map_err(|e| format!("status over the moved admin socket: {e}"))?;
    eprintln!("status over admin2.sock: {}", status.trim());
    let (_, since1) = w.proto("r1")?;

    // 3. A restart-only change.
    w.write_config(&w.config_with(&[0, 1], "debug", "admin2.sock"))?;
    w.hup()?;
    wait_until("restart_required 1", || {
        w.metric_is("ipvs_herald_config_restart_required 1")
    })?;
    let log = std::fs::read_to_string(w.path("herald.log")).unwrap_or_default();
    if !log.contains("only take effect at the next restart: log") {
        return Err("no warning naming the restart-only key".into());
    }

    // 4. An invalid file.
    w.write_config("[announcer.bgp]\nrouter_id = \"not an address\"\n")?;
    w.hup()?;
    wait_until("last_reload_successful 0", || {
        w.metric_is("ipvs_herald_config_last_reload_successful 0")
    })?;
    if !w.metric_is("ipvs_herald_config_reload_failures_total 1")? {
        return Err("reload_failures_total is not 1".into());
    }
    // Give a wrongly applied reload time to show.
    std::thread::sleep(Duration::from_secs(2));
    if !w.alive() {
        return Err("ipvs-herald exited after an invalid file".into());
    }
    for (p, since) in [("r0", &since0), ("r1", &since1)] {
        let (up, s) = w.proto(p)?;
        if !up || &s != since {
            return Err(format!(
                "{p} disturbed by the invalid file: up {up}, since {since} -> {s}"
            ));
        }
    }
    if !w.metric_is(r#"ipvs_herald_bgp_session_state{peer="r0",state="established"} 1"#)? {
        return Err("r0 not established in the metrics".into());
    }

    // 5. Remove r1: BIRD hears Cease / Peer De-configured, its series leave /metrics, r0 stays.
    w.write_config(&w.config_with(&[0], "debug", "admin2.sock"))?;
    w.hup()?;
    wait_until("r1 de-configured", || {
        let log = std::fs::read_to_string(w.path("bird.log")).unwrap_or_default();
        Ok(log.contains("r1: Received: Peer de-configured"))
    })?;
    wait_until("r1 series gone", || {
        let m = w.metrics()?;
        Ok(!m.contains(r#"peer="r1""#)
            && m.lines()
                .any(|l| l == "ipvs_herald_config_last_reload_successful 1"))
    })?;
    let (up, s) = w.proto("r0")?;
    if !up || s != since0 {
        return Err(format!(
            "r0 disturbed by removing r1: up {up}, since {since0} -> {s}"
        ));
    }
    Ok(())
}

#[test]
fn sighup_adds_a_peer_live_and_an_invalid_file_keeps_everything() {
    let mut w = match World::new() {
        Ok(w) => w,
        Err(e) => panic!("lab setup failed (needs root and ip netns): {e}"),
    };
    if let Err(e) = scenario(&mut w) {
        panic!("{e}\n{}", w.logs());
    }
}
