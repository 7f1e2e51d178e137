//! SIGHUP reload of the `ipvs-herald` binary with real BGP sessions: the daemon runs in a
//! network namespace joined by veth to a router namespace where one BIRD 2 emulates two
//! routers (one passive protocol per router address). The host has no IPVS, so VIP groups
//! would stay down; the test has none and looks at the sessions and the config metrics only.
//!
//! 1. start with router r0 only; r0 Established;
//! 2. rewrite the file adding r1, SIGHUP: r1 Established, r0's session not reset (BIRD's
//!    "since" time unchanged but for its print jitter, and the daemon's own
//!    openconfirm→established counter still 1), `ipvs_herald_config_last_reload_successful 1`;
//! 3. a restart-only change (`[log]`): applied nowhere, `ipvs_herald_config_restart_required 1`;
//! 4. an invalid file, SIGHUP: the process keeps running, both sessions stay,
//!    `ipvs_herald_config_last_reload_successful 0`;
//! 5. r1 removed: BIRD logs "Peer de-configured", r1's series leave /metrics, r0 untouched.
//!
//! Step 2 also moves `announcer.admin_socket`: the old socket disappears and `ipvs-herald
//! status` answers on the new one.
//!
//! Needs root (namespaces). BIRD and busybox (for `wget` inside the namespace) are installed
//! by `tests/deps.sh` when missing; the test fails, never skips, if that is impossible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::herald_world;

use herald_world::{
    run, wait_until, write_atomic, Bird, Herald, ProtoState, TResult, World, HERALD,
};
use std::process::Command;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(30);

/// The namespaces, BIRD and the daemon; all removed on drop (the daemons before the world).
struct Lab {
    herald: Herald,
    bird: Bird,
    w: World,
}

impl Lab {
    fn new() -> TResult<Self> {
        let mut w = World::new("reload", "hr")?;
        let spk = w.netns("spk")?;
        let rtr = w.netns("rtr")?;
        w.veth(&spk, "eth0", &rtr, "eth0")?;
        for (ns, addrs) in [
            (&spk, ["192.0.2.1/24", "192.0.2.11/24", "192.0.2.12/24"]),
            (&rtr, ["192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24"]),
        ] {
            for a in addrs {
                w.addr(ns, "eth0", a)?;
            }
        }
        // BIRD with passive protocols r0 (192.0.2.2 ← 192.0.2.11) and r1 (192.0.2.3 ← 192.0.2.12).
        let mut conf = String::from("router id 192.0.2.2;\nprotocol device {}\n");
        for (name, local, speaker) in [
            ("r0", "192.0.2.2", "192.0.2.11"),
            ("r1", "192.0.2.3", "192.0.2.12"),
        ] {
            conf.push_str(&format!(
                "protocol bgp {name} {{\n  local {local} as 65001;\n  neighbor {speaker} as 65000;\n  hold time 240;\n  passive on;\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n"
            ));
        }
        let bird = Bird::start(&rtr, &w.dir, &conf)?;
        let herald = Herald::new(
            "ipvs-herald",
            &spk,
            w.path("herald.toml"),
            w.path("herald.log"),
            "127.0.0.1:9639",
        );
        Ok(Self { herald, bird, w })
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.w.path(name)
    }

    /// BGP state of BIRD protocol `p`.
    fn proto(&self, p: &str) -> TResult<ProtoState> {
        self.bird.proto(p)
    }

    /// Err unless BIRD's session `p` is the one seen in `before` (not reset and reconnected),
    /// and the daemon's own counters show it reached Established exactly once.
    fn same_session(&self, p: &str, before: &ProtoState, when: &str) -> TResult<()> {
        let now = self.proto(p)?;
        if !before.same_session(&now) {
            return Err(format!(
                "{p} {when}: before {:?}, after {:?}",
                before.line, now.line
            ));
        }
        let line = format!(
            r#"ipvs_herald_bgp_session_transitions_total{{peer="{p}",from="openconfirm",to="established"}} 1"#
        );
        if !self.metric_is(&line)? {
            return Err(format!("{p} {when}: the daemon's metrics lack `{line}`"));
        }
        Ok(())
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
        write_atomic(&self.path("herald.toml"), text)
    }

    fn start_herald(&mut self) -> TResult<()> {
        self.herald.start()
    }

    fn hup(&self) -> TResult<()> {
        self.herald.hup()
    }

    fn alive(&mut self) -> bool {
        self.herald.alive()
    }

    fn metric_is(&self, line: &str) -> TResult<bool> {
        self.herald.metric_is(line)
    }

    fn metrics(&self) -> TResult<String> {
        self.herald.metrics()
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.herald.logs(), self.bird.logs())
    }
}

fn wait(what: &str, check: impl FnMut() -> TResult<bool>) -> TResult<()> {
    wait_until(what, TIMEOUT, POLL, check).map(|_| ())
}

fn scenario(w: &mut Lab) -> TResult<()> {
    w.write_config(&w.config(&[0], "info"))?;
    w.start_herald()?;
    wait("r0 Established", || Ok(w.proto("r0")?.established))?;
    std::thread::sleep(Duration::from_secs(1));
    let since0 = w.proto("r0")?;

    // 2. Add r1, and move the admin socket.
    if !w.path("admin.sock").exists() {
        return Err("no admin socket at start".into());
    }
    w.write_config(&w.config_with(&[0, 1], "info", "admin2.sock"))?;
    w.hup()?;
    wait("r1 Established after SIGHUP", || {
        Ok(w.proto("r1")?.established)
    })?;
    wait("reload metrics", || {
        Ok(w.metric_is("ipvs_herald_config_last_reload_successful 1")?
            && w.metric_is(r#"ipvs_herald_bgp_session_state{peer="r1",state="established"} 1"#)?)
    })?;
    w.same_session("r0", &since0, "was reset by the reload")?;
    if !w.metric_is("ipvs_herald_config_restart_required 0")? {
        return Err("restart_required is not 0 after a live-only change".into());
    }
    if w.path("admin.sock").exists() || !w.path("admin2.sock").exists() {
        return Err("the admin socket was not moved to admin2.sock".into());
    }
    let status = run(Command::new(HERALD)
        .arg("-c")
        .arg(w.path("herald.toml"))
        .arg("status"))
    .map_err(|e| format!("status over the moved admin socket: {e}"))?;
    eprintln!("status over admin2.sock: {}", status.trim());
    let since1 = w.proto("r1")?;

    // 3. A restart-only change.
    w.write_config(&w.config_with(&[0, 1], "debug", "admin2.sock"))?;
    w.hup()?;
    wait("restart_required 1", || {
        w.metric_is("ipvs_herald_config_restart_required 1")
    })?;
    let log = w.herald.log_text();
    if !log.contains("only take effect at the next restart: log") {
        return Err("no warning naming the restart-only key".into());
    }

    // 4. An invalid file.
    w.write_config("[announcer.bgp]\nrouter_id = \"not an address\"\n")?;
    w.hup()?;
    wait("last_reload_successful 0", || {
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
        w.same_session(p, since, "disturbed by the invalid file")?;
    }
    if !w.metric_is(r#"ipvs_herald_bgp_session_state{peer="r0",state="established"} 1"#)? {
        return Err("r0 not established in the metrics".into());
    }

    // 5. Remove r1: BIRD hears Cease / Peer De-configured, its series leave /metrics, r0 stays.
    w.write_config(&w.config_with(&[0], "debug", "admin2.sock"))?;
    w.hup()?;
    wait("r1 de-configured", || {
        let log = std::fs::read_to_string(w.bird.log_path()).unwrap_or_default();
        Ok(log.contains("r1: Received: Peer de-configured"))
    })?;
    wait("r1 series gone", || {
        let m = w.metrics()?;
        Ok(!m.contains(r#"peer="r1""#)
            && m.lines()
                .any(|l| l == "ipvs_herald_config_last_reload_successful 1"))
    })?;
    w.same_session("r0", &since0, "disturbed by removing r1")?;
    Ok(())
}

#[test]
fn sighup_adds_a_peer_live_and_an_invalid_file_keeps_everything() {
    let mut w = match Lab::new() {
        Ok(w) => w,
        Err(e) => panic!("lab setup failed (needs root and ip netns): {e}"),
    };
    if let Err(e) = scenario(&mut w) {
        panic!("{e}\n{}", w.logs());
    }
}
