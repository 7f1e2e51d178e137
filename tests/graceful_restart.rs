//! Graceful restart of the real `ipvs-herald` binary (issue 11, "Graceful restart"), with a real
//! BIRD 2 as the helper (`graceful restart on;`) in network namespaces, over the procfs-backed
//! fake IPVS table of `herald_world`. Every assertion is on what the router holds.
//!
//! | test | what happens | the router must |
//! |---|---|---|
//! | `stop_keep_routes_*` | `ipvs-herald stop --keep-routes` (exit 75), started again | keep the route (stale) the whole time; see R and F in the new OPEN; hold it fresh after End-of-RIB |
//! | `pool_dead_while_away_*` | the pool dies while the daemon is away | keep the stale route until our End-of-RIB, then drop it |
//! | `maintenance_set_while_away_*` | the maintenance file appears while the daemon is away | drop the stale route at End-of-RIB; get it back when the file goes |
//! | `restart_overrun_*` | the daemon stays away longer than `restart_time` | flush the route when the restart time is over; the late start sends no R bit |
//! | `plain_stop_*` | SIGTERM, then `ipvs-herald stop`, with graceful restart negotiated | lose the route at each stop (drain, withdraw, Cease) |
//! | `keep_routes_is_refused_*` | `stop --keep-routes` without graceful restart | keep the route: nothing stops |
//! | `stop_keep_routes_with_bfd_*` | BFD on the session (100 ms x 3, BIRD `bfd graceful`); `stop --keep-routes` sends BFD AdminDown | keep the route stale; BFD Up again after the restart. With plain `bfd on`, BIRD 2.0.12 closes the session on that BFD Down and flushes the route at once (seen when this test was written): a router must be told that a BFD Down may be a restart (README, "Restarting without moving traffic") |
//!
//! Tests run one at a time (a lock). Needs root; BIRD and busybox are installed by
//! `tests/deps.sh` when missing.

use crate::herald_world::{
    ensure_packages, wait_until, Bird, DirectorConfig, FakeIpvs, Herald, TResult, World,
    BASE_PACKAGES,
};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 21);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
const PREFIX: &str = "203.0.113.20/32";
const PROTO: &str = "d1";
const POLL: Duration = Duration::from_millis(100);
const SETUP: Duration = Duration::from_secs(30);
/// `ipvs-herald stop --keep-routes` ends the process with this status.
const EX_RESTART: i32 = 75;

static SERIAL: Mutex<()> = Mutex::new(());

struct Rig {
    herald: Herald,
    bird: Bird,
    ipvs: FakeIpvs,
    cfg: DirectorConfig,
    w: World,
}

impl Rig {
    fn new(name: &str, short: &str, restart_time: Option<u16>, bfd: bool) -> TResult<Self> {
        ensure_packages(BASE_PACKAGES)?;
        let mut w = World::new(&format!("gr-{name}"), short)?;
        let d = w.netns("d")?;
        let r = w.netns("r")?;
        w.veth(&d, "eth0", &r, "eth0")?;
        w.addr(&d, "eth0", &format!("{DIRECTOR}/24"))?;
        w.addr(&r, "eth0", &format!("{ROUTER}/24"))?;
        w.addr(&d, "lo", &format!("{VIP}/32"))?;
        let mut cfg = DirectorConfig::new(w.subdir("d1")?, DIRECTOR, ROUTER, VIP);
        cfg.graceful_restart = restart_time;
        cfg.bfd = bfd;
        // rise 3 at 200 ms: a normal start needs 0.4 s of checks before it announces; the
        // hold-down makes a pool that died while we were away stay out for a while.
        cfg.rise = 3;
        cfg.hold_down_ms = 5000;
        let bird = Bird::start(&r, &w.subdir("bird")?, &bird_config(cfg.hold_time, bfd))?;
        let ipvs = FakeIpvs::new(cfg.procfs_root())?;
        ipvs.pool(VIP, 80, true)?;
        let config = cfg.write()?;
        let herald = Herald::new(
            "ipvs-herald",
            &d,
            config,
            cfg.dir.join("herald.log"),
            "127.0.0.1:9639",
        )
        .env("NO_COLOR", "1");
        Ok(Self {
            herald,
            bird,
            ipvs,
            cfg,
            w,
        })
    }

    fn routed(&self) -> TResult<bool> {
        self.bird.has_route(PROTO, PREFIX)
    }

    fn marker(&self) -> std::path::PathBuf {
        self.cfg.dir.join("drain-state.json.restart")
    }

    fn start_announced(&mut self) -> TResult<()> {
        self.herald.start()?;
        wait_until("the VIP route at the router", SETUP, POLL, || self.routed())?;
        Ok(())
    }

    /// `ipvs-herald stop --keep-routes`, and the process's exit with status 75.
    fn stop_keeping_routes(&mut self) -> TResult<Instant> {
        let reply = self.herald.ctl(&["stop", "--keep-routes"])?;
        let t0 = Instant::now();
        if !reply.contains("stopping for a restart") {
            return Err(format!("stop --keep-routes answered: {reply}"));
        }
        let status = self.herald.wait_exit(Duration::from_secs(10))?;
        if status.code() != Some(EX_RESTART) {
            return Err(format!(
                "stop --keep-routes exit status {status}, not {EX_RESTART}"
            ));
        }
        if !self.marker().exists() {
            return Err("no graceful-restart marker after stop --keep-routes".into());
        }
        Ok(t0)
    }

    /// The route must stay at the router for the whole of `period`.
    fn route_stays(&self, what: &str, period: Duration) -> TResult<()> {
        let t0 = Instant::now();
        while t0.elapsed() < period {
            if !self.routed()? {
                return Err(format!(
                    "{what}: the router lost the route {:.1} s in",
                    t0.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// BIRD holds our routes as stale for a restarting neighbour (`show protocols all`; BIRD
    /// 2.0 does not mark the route itself), until our End-of-RIB.
    fn stale(&self) -> TResult<bool> {
        Ok(self
            .bird
            .details(PROTO)?
            .to_lowercase()
            .contains("graceful restart active"))
    }

    fn logs(&self) -> String {
        format!(
            "{}\n{}\n(directory {})",
            self.herald.logs(),
            self.bird.logs(),
            self.w.dir.display()
        )
    }
}

/// BIRD, passive, graceful restart helper (and restarting speaker), hold time `hold`; with
/// `bfd`, BFD at 100 ms x 3 on the session, `bfd graceful` (a BFD Down starts BIRD's graceful
/// restart helper instead of a flush; `bfd on` flushes our routes when we stop for a restart).
fn bird_config(hold: u16, bfd: bool) -> String {
    let (bfd_proto, bfd_on) = if bfd {
        (
            "protocol bfd {\n  interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; idle tx interval 1 s; multiplier 3; };\n}\n",
            "  bfd graceful;\n",
        )
    } else {
        ("", "")
    };
    format!(
        "router id {ROUTER};\nprotocol device {{}}\n{bfd_proto}protocol bgp {PROTO} {{\n  local {ROUTER} as 65000;\n  neighbor {DIRECTOR} as 65001;\n  passive on;\n  hold time {hold};\n  keepalive time {ka};\n  error wait time 1, 2;\n  graceful restart on;\n{bfd_on}  ipv4 {{ import all; export none; }};\n}}\n",
        ka = (hold / 3).max(1)
    )
}

fn with_rig(
    name: &str,
    short: &str,
    restart_time: Option<u16>,
    body: impl FnOnce(&mut Rig) -> TResult<()>,
) {
    with_rig_bfd(name, short, restart_time, false, body)
}

fn with_rig_bfd(
    name: &str,
    short: &str,
    restart_time: Option<u16>,
    bfd: bool,
    body: impl FnOnce(&mut Rig) -> TResult<()>,
) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rig = match Rig::new(name, short, restart_time, bfd) {
        Ok(r) => r,
        Err(e) => panic!("set-up failed (needs root, ip netns, BIRD): {e}"),
    };
    if let Err(e) = body(&mut rig) {
        panic!("{name}: {e}\n{}", rig.logs());
    }
}

/// The neighbour capabilities BIRD saw in our last OPEN: (Restart State bit, ipv4 preserved).
fn restart_bits(bird: &Bird) -> TResult<(bool, bool)> {
    let all = bird.details(PROTO)?;
    let neighbor = all
        .split("Neighbor capabilities")
        .nth(1)
        .ok_or_else(|| format!("no neighbour capabilities in:\n{all}"))?;
    let neighbor = neighbor.split("Session:").next().unwrap_or(neighbor);
    Ok((
        neighbor.contains("Restart recovery"),
        neighbor.contains("AF preserved: ipv4"),
    ))
}

#[test]
fn stop_keep_routes_keeps_the_route_stale_and_end_of_rib_refreshes_it() {
    with_rig("keep", "gk", Some(60), |rig| {
        rig.start_announced()?;
        if restart_bits(&rig.bird)? != (false, false) {
            return Err("a normal start must send R = 0, F = 0".into());
        }
        rig.stop_keeping_routes()?;
        wait_until("BIRD to see the session gone", SETUP, POLL, || {
            Ok(!rig.bird.established(PROTO)?)
        })?;
        rig.route_stays("while the daemon is away", Duration::from_secs(2))?;
        if !rig.stale()? {
            return Err(format!(
                "BIRD does not hold the kept route as stale:\n{}",
                rig.bird.details(PROTO)?
            ));
        }
        rig.herald.start()?;
        let t0 = Instant::now();
        while !rig.bird.established(PROTO)? {
            if t0.elapsed() > SETUP {
                return Err("the session did not come back".into());
            }
            if !rig.routed()? {
                return Err("the router lost the route during the restart".into());
            }
            std::thread::sleep(POLL);
        }
        if restart_bits(&rig.bird)? != (true, true) {
            return Err(format!(
                "the OPEN after a graceful restart must carry R and F:\n{}",
                rig.bird.details(PROTO)?
            ));
        }
        // End-of-RIB: BIRD replaces the stale route with the fresh one.
        wait_until(
            "the route to be fresh again",
            Duration::from_secs(10),
            POLL,
            || Ok(rig.routed()? && !rig.stale()?),
        )?;
        rig.route_stays("after End-of-RIB", Duration::from_secs(1))?;
        if rig.marker().exists() {
            return Err("the marker was not taken by the new process".into());
        }
        eprintln!("route kept stale across stop --keep-routes, fresh after End-of-RIB");
        Ok(())
    });
}

#[test]
fn pool_dead_while_away_is_dropped_at_end_of_rib() {
    with_rig("dead", "gd", Some(60), |rig| {
        rig.start_announced()?;
        rig.stop_keeping_routes()?;
        rig.ipvs.pool(VIP, 80, false)?;
        rig.route_stays("while the daemon is away", Duration::from_secs(1))?;
        rig.herald.start()?;
        wait_until("the session after the restart", SETUP, POLL, || {
            rig.bird.established(PROTO)
        })?;
        wait_until(
            "the router to drop the dead pool's stale route at End-of-RIB",
            Duration::from_secs(5),
            POLL,
            || Ok(!rig.routed()?),
        )?;
        // The pool comes back: announced only through rise and the 5 s hold-down, not at once.
        rig.ipvs.pool(VIP, 80, true)?;
        let back = Instant::now();
        wait_until("the route once the pool is back", SETUP, POLL, || {
            rig.routed()
        })?;
        if back.elapsed() < Duration::from_secs(3) {
            return Err(format!(
                "re-announced {:.1} s after the pool came back, inside the hold-down",
                back.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    });
}

/// Drains survive a graceful restart: the maintenance file created while the daemon is away
/// (configuration management during an upgrade) keeps the healthy group out; its stale route
/// goes at End-of-RIB.
#[test]
fn maintenance_set_while_away_is_honoured_at_end_of_rib() {
    with_rig("maint", "gm", Some(60), |rig| {
        rig.start_announced()?;
        rig.stop_keeping_routes()?;
        let maintenance = rig.cfg.dir.join("maintenance");
        std::fs::write(&maintenance, "web\n").map_err(|e| format!("maintenance file: {e}"))?;
        rig.route_stays("while the daemon is away", Duration::from_secs(1))?;
        rig.herald.start()?;
        wait_until("the session after the restart", SETUP, POLL, || {
            rig.bird.established(PROTO)
        })?;
        wait_until(
            "the router to drop the drained group's stale route at End-of-RIB",
            Duration::from_secs(5),
            POLL,
            || Ok(!rig.routed()?),
        )?;
        std::fs::remove_file(&maintenance).map_err(|e| format!("maintenance file: {e}"))?;
        wait_until("the route after the drain ends", SETUP, POLL, || {
            rig.routed()
        })?;
        Ok(())
    });
}

#[test]
fn restart_overrun_ends_in_a_flush_and_a_late_start_is_a_normal_one() {
    with_rig("late", "gl", Some(3), |rig| {
        rig.start_announced()?;
        let t0 = rig.stop_keeping_routes()?;
        wait_until(
            "the router to flush the route when the 3 s restart time is over",
            Duration::from_secs(10),
            POLL,
            || Ok(!rig.routed()?),
        )?;
        let flushed = t0.elapsed();
        if flushed < Duration::from_secs(2) {
            return Err(format!(
                "the route went after {:.1} s, before the restart time",
                flushed.as_secs_f64()
            ));
        }
        rig.herald.start()?;
        wait_until("the session after the late start", SETUP, POLL, || {
            rig.bird.established(PROTO)
        })?;
        if restart_bits(&rig.bird)? != (false, false) {
            return Err("a start after the restart time must send R = 0, F = 0".into());
        }
        wait_until("the route after rise", SETUP, POLL, || rig.routed())?;
        eprintln!(
            "flushed {:.1} s after the stop (restart time 3 s)",
            flushed.as_secs_f64()
        );
        Ok(())
    });
}

#[test]
fn plain_stop_withdraws_even_with_graceful_restart() {
    with_rig("plain", "gp", Some(60), |rig| {
        rig.start_announced()?;
        rig.herald.signal("TERM")?;
        let t0 = Instant::now();
        wait_until(
            "the route to go on SIGTERM",
            Duration::from_secs(8),
            POLL,
            || Ok(!rig.routed()?),
        )?;
        let status = rig.herald.wait_exit(Duration::from_secs(10))?;
        if !status.success() {
            return Err(format!("SIGTERM exit status {status}"));
        }
        if rig.marker().exists() {
            return Err("a plain stop left a graceful-restart marker".into());
        }
        // Nothing stale lingers: the route stays gone.
        std::thread::sleep(Duration::from_secs(1));
        if rig.routed()? {
            return Err("the route came back after a plain stop".into());
        }
        eprintln!("plain stop withdrew in {:.1} s", t0.elapsed().as_secs_f64());
        // `ipvs-herald stop` without --keep-routes is the same plain stop.
        rig.start_announced()?;
        rig.herald.ctl(&["stop"])?;
        wait_until(
            "the route to go on `stop`",
            Duration::from_secs(8),
            POLL,
            || Ok(!rig.routed()?),
        )?;
        let status = rig.herald.wait_exit(Duration::from_secs(10))?;
        if !status.success() || rig.marker().exists() {
            return Err(format!(
                "`stop`: exit status {status}, marker {}",
                rig.marker().exists()
            ));
        }
        Ok(())
    });
}

#[test]
fn keep_routes_is_refused_without_graceful_restart() {
    with_rig("refused", "gn", None, |rig| {
        rig.start_announced()?;
        match rig.herald.ctl(&["stop", "--keep-routes"]) {
            Ok(out) => {
                return Err(format!(
                    "stop --keep-routes accepted without graceful restart: {out}"
                ))
            }
            Err(e) if e.contains("negotiated graceful restart") => {}
            Err(e) => return Err(format!("unexpected refusal: {e}")),
        }
        rig.route_stays("after the refused stop", Duration::from_secs(1))?;
        if !rig.herald.alive() {
            return Err("the daemon stopped although the stop was refused".into());
        }
        Ok(())
    });
}

/// BIRD's BFD session towards the director: "Up", "Down", "Init", or "none".
fn bird_bfd_state(bird: &Bird) -> TResult<String> {
    let out = bird.birdc(&["show", "bfd", "sessions"])?;
    let me = DIRECTOR.to_string();
    Ok(out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.first() == Some(&me.as_str()))
        .and_then(|c| c.get(2).map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "none".to_owned()))
}

#[test]
fn stop_keep_routes_with_bfd_keeps_the_route_at_a_bfd_graceful_router() {
    with_rig_bfd("keep-bfd", "gb", Some(60), true, |rig| {
        rig.start_announced()?;
        wait_until("BIRD's BFD session Up", SETUP, POLL, || {
            Ok(bird_bfd_state(&rig.bird)? == "Up")
        })?;
        rig.stop_keeping_routes()?;
        // Our BFD said AdminDown on the way out: BIRD's BFD session leaves Up (the director
        // is gone) but that must not end in a flush.
        wait_until("BIRD's BFD session to leave Up", SETUP, POLL, || {
            Ok(bird_bfd_state(&rig.bird)? != "Up")
        })?;
        rig.route_stays(
            "with BFD down by AdminDown while the daemon is away",
            Duration::from_secs(3),
        )?;
        if !rig.stale()? {
            return Err(format!(
                "BIRD does not hold the kept route as stale:\n{}",
                rig.bird.details(PROTO)?
            ));
        }
        rig.herald.start()?;
        let t0 = Instant::now();
        while !(rig.bird.established(PROTO)? && bird_bfd_state(&rig.bird)? == "Up") {
            if t0.elapsed() > SETUP {
                return Err("the session or its BFD did not come back".into());
            }
            if !rig.routed()? {
                return Err("the router lost the route during the restart".into());
            }
            std::thread::sleep(POLL);
        }
        wait_until(
            "the route to be fresh again",
            Duration::from_secs(10),
            POLL,
            || Ok(rig.routed()? && !rig.stale()?),
        )?;
        eprintln!(
            "route kept stale across stop --keep-routes with BFD AdminDown, fresh after End-of-RIB"
        );
        Ok(())
    });
}
