//! Fault tests of the real `ipvs-herald` binary (issue 9, "Fault tests"): one director namespace
//! running the daemon over a procfs-backed fake IPVS table (`[reader] source = "procfs"`), joined
//! by veth to a router namespace running BIRD 2. Every assertion is on what the router holds
//! (`birdc show route`, `show protocols`), each wait is bounded, and each test prints what it
//! measured (`cargo test --test faults -- --nocapture`).
//!
//! | test | fault | the router must see |
//! |---|---|---|
//! | `control_loop_panic_*` | `<fault dir>/panic` (hook: the control loop panics) | route gone ≤ 1 s; exit status non-zero |
//! | `stuck_ipvs_read_*` | `<fault dir>/stuck-read` (hook: every IPVS read blocks) | route gone within the watchdog bound + slack, session kept; back after the file goes |
//! | `ipvs_gone_*` | `/proc/net/ip_vs` removed (module unloaded) | route gone within interval × fall + slack, `ipvs_up 0`; back after |
//! | `router_restart_*` | BIRD killed -9, started again | session back ≤ `connect_retry.max` + 1 s, route re-announced |
//! | `silent_link_loss_*` | every packet dropped on the router's link (nftables), no TCP reset | both sides expire the session (hold time 3 s); it recovers, the route returns |
//! | `wedged_control_loop_*` | `<fault dir>/wedge` (hook: the control loop blocks its thread) | the process aborts within the 15 s wedge bound (+ 2 s), hold time 60 s so the abort (not the hold timer) ends the session; exit non-zero |
//! | `kill9_mid_drain_*`, `kill9_mid_reload_*` | SIGKILL while draining / right after SIGHUP | route gone ≤ 1 s |
//! | `drain_survives_restart` | `drain`, SIGTERM, start again | the group stays drained and unannounced; `undrain` brings it back |
//!
//! The fault hooks are the daemon's test-only hooks, inert unless `IPVS_HERALD_FAULT_DIR` is set.
//! Tests run one at a time (a lock): the sub-second bounds must not measure a neighbour's load.
//! Needs root; BIRD, busybox and nftables are installed by `tests/deps.sh` when missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

mod herald_world;

use herald_world::{
    ensure_packages, ns_cmd, run, wait_until, Bird, DirectorConfig, FakeIpvs, Herald, TResult,
    World,
};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const PREFIX: &str = "203.0.113.10/32";
/// BIRD's protocol towards the director.
const PROTO: &str = "d1";
/// Poll period of the router's routes: small against the 1 s bounds.
const FAST: Duration = Duration::from_millis(20);
const POLL: Duration = Duration::from_millis(100);
/// Bound on set-up waits (session up, first announcement).
const SETUP: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

/// One director, one router.
struct Rig {
    herald: Herald,
    bird: Bird,
    ipvs: FakeIpvs,
    cfg: DirectorConfig,
    /// The router's namespace.
    rns: String,
    w: World,
}

impl Rig {
    /// Namespaces `<short><pid>-d` and `-r`, BIRD up, the daemon's config written with
    /// `tune` applied; the daemon is not started.
    fn new(name: &str, short: &str, tune: impl FnOnce(&mut DirectorConfig)) -> TResult<Self> {
        let mut w = World::new(&format!("faults-{name}"), short)?;
        let d = w.netns("d")?;
        let r = w.netns("r")?;
        w.veth(&d, "eth0", &r, "eth0")?;
        w.addr(&d, "eth0", &format!("{DIRECTOR}/24"))?;
        w.addr(&r, "eth0", &format!("{ROUTER}/24"))?;
        // vip_address = "require": the VIP is on the director's lo, as keepalived would put it.
        w.addr(&d, "lo", &format!("{VIP}/32"))?;
        let mut cfg = DirectorConfig::new(w.subdir("d1")?, DIRECTOR, ROUTER, VIP);
        tune(&mut cfg);
        let bird = Bird::start(&r, &w.subdir("bird")?, &bird_config(cfg.hold_time))?;
        let ipvs = FakeIpvs::new(cfg.procfs_root())?;
        ipvs.pool(VIP, 80, true)?;
        std::fs::create_dir_all(cfg.fault_dir()).map_err(|e| format!("fault dir: {e}"))?;
        let config = cfg.write()?;
        let herald = Herald::new(
            "ipvs-herald",
            &d,
            config,
            cfg.dir.join("herald.log"),
            "127.0.0.1:9639",
        )
        .env(
            "IPVS_HERALD_FAULT_DIR",
            &cfg.fault_dir().display().to_string(),
        )
        .env("NO_COLOR", "1");
        Ok(Self {
            herald,
            bird,
            ipvs,
            cfg,
            rns: r,
            w,
        })
    }

    /// Starts the daemon and waits for the route at the router.
    fn start_announced(&mut self) -> TResult<Duration> {
        let t0 = Instant::now();
        self.herald.start()?;
        wait_until("the VIP route at the router", SETUP, POLL, || self.routed())?;
        Ok(t0.elapsed())
    }

    fn routed(&self) -> TResult<bool> {
        self.bird.has_route(PROTO, PREFIX)
    }

    fn fault(&self, name: &str) -> PathBuf {
        self.cfg.fault_dir().join(name)
    }

    fn session_metric(&self) -> TResult<Option<f64>> {
        self.herald
            .metric(r#"ipvs_herald_bgp_session_state{peer="rt",state="established"}"#)
    }

    /// Waits for the route to leave the router, polling fast; the time since `t0`.
    fn route_gone_since(&self, t0: Instant, timeout: Duration) -> TResult<Duration> {
        wait_until("the router to lose the route", timeout, FAST, || {
            Ok(!self.routed()?)
        })?;
        Ok(t0.elapsed())
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

/// The router: eBGP from the director, passive (the director connects), hold time `hold`.
fn bird_config(hold: u16) -> String {
    format!(
        "router id {ROUTER};\nprotocol device {{}}\nprotocol bgp {PROTO} {{\n  local {ROUTER} as 65000;\n  neighbor {DIRECTOR} as 65001;\n  passive on;\n  hold time {hold};\n  keepalive time {ka};\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n",
        ka = (hold / 3).max(1)
    )
}

/// Runs `body` on a fresh rig, one test at a time; on failure, panics with the logs.
fn with_rig(
    name: &str,
    short: &str,
    tune: impl FnOnce(&mut DirectorConfig),
    body: impl FnOnce(&mut Rig) -> TResult<()>,
) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rig = match Rig::new(name, short, tune) {
        Ok(r) => r,
        Err(e) => panic!("set-up failed (needs root, ip netns, BIRD): {e}"),
    };
    if let Err(e) = body(&mut rig) {
        panic!("{name}: {e}\n{}", rig.logs());
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn touch(p: &PathBuf) -> TResult<()> {
    std::fs::write(p, "").map_err(|e| format!("create {}: {e}", p.display()))
}

#[test]
fn control_loop_panic_withdraws_within_1s_and_exits_non_zero() {
    with_rig(
        "panic",
        "fp",
        |_| {},
        |rig| {
            let up = rig.start_announced()?;
            eprintln!("panic: announced {} after start", secs(up));
            let t0 = Instant::now();
            touch(&rig.fault("panic"))?;
            let gone = rig.route_gone_since(t0, Duration::from_secs(5))?;
            let status = rig.herald.wait_exit(Duration::from_secs(10))?;
            eprintln!(
            "panic: route gone at the router {} after the hook; exit status {status:?} (signal {:?})",
            secs(gone),
            status.signal()
        );
            if gone > Duration::from_secs(1) {
                return Err(format!(
                    "route left the router after {}, not within 1 s",
                    secs(gone)
                ));
            }
            if status.success() {
                return Err(format!("the daemon exited with {status} after a panic"));
            }
            if !rig.herald.log_text().contains("panic") {
                return Err("the daemon's log does not mention the panic".into());
            }
            Ok(())
        },
    );
}

#[test]
fn wedged_control_loop_aborts_the_process() {
    // A hold time well past the wedge bound: the route must go because the process aborts, not
    // because BIRD's hold timer ran out (the two would otherwise be indistinguishable here).
    with_rig(
        "wedge",
        "fw",
        |c| c.hold_time = 60,
        |rig| {
            rig.start_announced()?;
            let t0 = Instant::now();
            touch(&rig.fault("wedge"))?;
            // A loop without a beat for LOOP_WEDGE_BOUND (15 s) aborts the process; slack for
            // the watchdog thread's period and the kernel's FIN reaching BIRD.
            let bound = herald_announcer::control::LOOP_WEDGE_BOUND;
            let slack = Duration::from_secs(2);
            let gone = rig.route_gone_since(t0, bound + slack + Duration::from_secs(10))?;
            let status = rig.herald.wait_exit(Duration::from_secs(10))?;
            eprintln!(
                "wedge: route gone {} after the hook (bound {} + {} slack); exit {status:?} (signal {:?})",
                secs(gone),
                secs(bound),
                secs(slack),
                status.signal()
            );
            if gone > bound + slack {
                return Err(format!("route gone after {}", secs(gone)));
            }
            if status.success() {
                return Err(format!("exit status {status} after a wedge"));
            }
            let bird_log = std::fs::read_to_string(rig.bird.log_path()).unwrap_or_default();
            if bird_log.contains("Hold timer expired") {
                return Err("the session ended by BIRD's hold timer, not by the abort".into());
            }
            if !rig.herald.log_text().contains("fatal") {
                return Err("the daemon's log has no fatal line naming the wedge".into());
            }
            Ok(())
        },
    );
}

#[test]
fn stuck_ipvs_read_withdraws_within_watchdog_bound_and_keeps_session() {
    with_rig(
        "stuck",
        "fs",
        |_| {},
        |rig| {
            rig.start_announced()?;
            let before = rig.bird.proto(PROTO)?;
            let t0 = Instant::now();
            touch(&rig.fault("stuck-read"))?;
            // Watchdog bound: max(3 × interval, 2 s); slack: one interval for the read to start
            // blocking, plus 1 s for the watchdog's own period and the UPDATE.
            let interval = Duration::from_millis(rig.cfg.interval_ms);
            let bound =
                (interval * 3).max(Duration::from_secs(2)) + interval + Duration::from_secs(1);
            let gone = rig.route_gone_since(t0, bound + Duration::from_secs(10))?;
            eprintln!(
                "stuck read: route gone {} after the hook (bound {})",
                secs(gone),
                secs(bound)
            );
            if gone > bound {
                return Err(format!(
                    "withdrawn after {}, bound {}",
                    secs(gone),
                    secs(bound)
                ));
            }
            let after = rig.bird.proto(PROTO)?;
            if !before.same_session(&after) {
                return Err(format!(
                    "the BGP session did not stay up: before {:?}, after {:?}",
                    before.line, after.line
                ));
            }
            if rig.session_metric()? != Some(1.0) {
                return Err("the daemon's metrics do not show the session established".into());
            }
            let counter = rig
                .herald
                .metric(r#"ipvs_herald_vip_group_watchdog_withdrawals_total{group="web"}"#)?;
            if counter.unwrap_or(0.0) < 1.0 {
                return Err(format!(
                    "watchdog withdrawal counter is {counter:?}, not >= 1"
                ));
            }
            // Reads work again: the group comes back under its rise policy (and hold-down).
            let t1 = Instant::now();
            std::fs::remove_file(rig.fault("stuck-read")).map_err(|e| e.to_string())?;
            wait_until(
                "the route back after the read unblocks",
                Duration::from_secs(15),
                FAST,
                || rig.routed(),
            )?;
            let back = t1.elapsed();
            eprintln!(
                "stuck read: route back {} after the hook file went",
                secs(back)
            );
            let after = rig.bird.proto(PROTO)?;
            if !before.same_session(&after) {
                return Err(format!("session reset while recovering: {:?}", after.line));
            }
            Ok(())
        },
    );
}

#[test]
fn ipvs_gone_withdraws_and_returns() {
    with_rig(
        "gone",
        "fg",
        |_| {},
        |rig| {
            rig.start_announced()?;
            let t0 = Instant::now();
            rig.ipvs.remove()?;
            let interval = Duration::from_millis(rig.cfg.interval_ms);
            let bound = interval * rig.cfg.fall + interval + Duration::from_secs(1);
            let gone = rig.route_gone_since(t0, Duration::from_secs(10))?;
            eprintln!(
                "ip_vs gone: route gone {} (bound {})",
                secs(gone),
                secs(bound)
            );
            if gone > bound {
                return Err(format!(
                    "withdrawn after {}, bound {}",
                    secs(gone),
                    secs(bound)
                ));
            }
            wait_until("ipvs_up 0", Duration::from_secs(10), POLL, || {
                rig.herald.metric_is("ipvs_up 0")
            })?;
            if !rig.bird.established(PROTO)? {
                return Err("the session went down with IPVS".into());
            }
            let t1 = Instant::now();
            rig.ipvs.pool(VIP, 80, true)?;
            wait_until(
                "the route back with IPVS",
                Duration::from_secs(15),
                FAST,
                || rig.routed(),
            )?;
            eprintln!("ip_vs back: route back {}", secs(t1.elapsed()));
            wait_until("ipvs_up 1", Duration::from_secs(10), POLL, || {
                rig.herald.metric_is("ipvs_up 1")
            })?;
            Ok(())
        },
    );
}

#[test]
fn router_restart_session_back_within_connect_retry_max() {
    with_rig(
        "rrestart",
        "fr",
        |_| {},
        |rig| {
            rig.start_announced()?;
            rig.bird.kill9();
            wait_until(
                "the daemon to see the session drop",
                Duration::from_secs(10),
                POLL,
                || Ok(rig.session_metric()? == Some(0.0)),
            )?;
            // Long enough for the reconnect backoff to reach connect_retry.max (2 s).
            std::thread::sleep(Duration::from_secs(4));
            let t0 = Instant::now();
            rig.bird.restart()?;
            let ready = t0.elapsed();
            let t1 = Instant::now();
            wait_until("the session back", Duration::from_secs(15), FAST, || {
                rig.bird.established(PROTO)
            })?;
            let est = t1.elapsed();
            wait_until(
                "the route re-announced",
                Duration::from_secs(10),
                FAST,
                || rig.routed(),
            )?;
            let routed = t1.elapsed();
            eprintln!(
                "router restart: BIRD ready {} after start; Established {} and route {} after that",
                secs(ready),
                secs(est),
                secs(routed)
            );
            let bound = Duration::from_secs_f64(2.0 + 1.0);
            if est > bound {
                return Err(format!(
                    "session back after {}, bound connect_retry.max + 1 s = {}",
                    secs(est),
                    secs(bound)
                ));
            }
            if routed > est + Duration::from_secs(1) {
                return Err(format!(
                    "route re-announced {} after Established",
                    secs(routed - est)
                ));
            }
            Ok(())
        },
    );
}

/// nftables rules dropping every packet on the router's `eth0`, both ways, at the device (no
/// TCP reset, no local error: what a dead link or a blackholing switch looks like).
const DROP_TABLE: &str = "table netdev fault_drop {\n  chain in { type filter hook ingress device \"eth0\" priority 0; policy drop; }\n  chain out { type filter hook egress device \"eth0\" priority 0; policy drop; }\n}\n";

#[test]
fn silent_link_loss_expires_both_sides_and_recovers() {
    ensure_packages(&["nft"]).expect("nftables");
    with_rig(
        "linkloss",
        "fl",
        |c| c.hold_time = 3,
        |rig| {
            rig.start_announced()?;
            let rns = rig.rns.clone();
            let rules = rig.w.path("drop.nft");
            std::fs::write(&rules, DROP_TABLE).map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            run(ns_cmd(&rns, "nft").arg("-f").arg(&rules))?;
            let (mut bird_down, mut herald_down) = (None, None);
            wait_until(
                "both sides to expire the session",
                Duration::from_secs(15),
                POLL,
                || {
                    if bird_down.is_none() && !rig.bird.established(PROTO)? {
                        bird_down = Some(t0.elapsed());
                    }
                    if herald_down.is_none() && rig.session_metric()? == Some(0.0) {
                        herald_down = Some(t0.elapsed());
                    }
                    Ok(bird_down.is_some() && herald_down.is_some())
                },
            )?;
            let (bd, hd) = (
                bird_down.unwrap_or_default(),
                herald_down.unwrap_or_default(),
            );
            eprintln!(
                "link loss: BIRD down {}, daemon down {} after the drop (hold time 3 s)",
                secs(bd),
                secs(hd)
            );
            let details = rig.bird.details(PROTO)?;
            if !details.contains("Hold timer expired") {
                return Err(format!("BIRD did not expire the hold timer:\n{details}"));
            }
            let bound = Duration::from_secs(3 + 2);
            if bd > bound || hd > bound {
                return Err(format!(
                    "sessions expired after {} / {}, bound {}",
                    secs(bd),
                    secs(hd),
                    secs(bound)
                ));
            }
            if rig.routed()? {
                return Err("the router still has the route with the session down".into());
            }
            // Stay dark a while longer: the daemon's reconnect attempts meet silence (SYNs
            // dropped), and the recovery must not wait on one of them.
            std::thread::sleep(Duration::from_secs(5));
            let t1 = Instant::now();
            run(ns_cmd(&rns, "nft").args(["delete", "table", "netdev", "fault_drop"]))?;
            wait_until(
                "the session back after the link returns",
                Duration::from_secs(60),
                POLL,
                || rig.bird.established(PROTO),
            )?;
            let est = t1.elapsed();
            wait_until("the route back", Duration::from_secs(10), FAST, || {
                rig.routed()
            })?;
            eprintln!(
                "link loss: restored; Established {}, route back {}",
                secs(est),
                secs(t1.elapsed())
            );
            // Reconnect: at most one backoff (connect_retry.max 2 s) after the link returns, plus
            // slack for an attempt that was already waiting for its SYN's answer.
            let bound = Duration::from_secs(2 + 3);
            if est > bound {
                return Err(format!(
                    "session back after {}, bound {}",
                    secs(est),
                    secs(bound)
                ));
            }
            Ok(())
        },
    );
}

#[test]
fn kill9_mid_drain_leaves_no_stale_route() {
    with_rig(
        "killdrain",
        "fk",
        |_| {},
        |rig| {
            rig.start_announced()?;
            rig.herald.ctl(&["drain", "web", "--time", "5s"])?;
            // The drain is under way once the router sees GRACEFUL_SHUTDOWN on the route.
            wait_until(
                "the draining announcement",
                Duration::from_secs(5),
                FAST,
                || Ok(rig.bird.route_all(PREFIX)?.contains("(65535,0)")),
            )?;
            let t0 = Instant::now();
            rig.herald.kill9();
            let gone = rig.route_gone_since(t0, Duration::from_secs(10))?;
            eprintln!("kill -9 mid-drain: route gone {} after SIGKILL", secs(gone));
            if gone > Duration::from_secs(1) {
                return Err(format!("stale route for {} after kill -9", secs(gone)));
            }
            Ok(())
        },
    );
}

#[test]
fn kill9_mid_reload_leaves_no_stale_route() {
    with_rig(
        "killreload",
        "fh",
        |_| {},
        |rig| {
            rig.start_announced()?;
            let mut changed = rig.cfg.clone();
            changed.med = Some(50);
            changed.write()?;
            rig.herald.hup()?;
            let t0 = Instant::now();
            let status = rig.herald.kill9();
            let gone = rig.route_gone_since(t0, Duration::from_secs(10))?;
            eprintln!(
                "kill -9 right after SIGHUP: route gone {} after SIGKILL ({status:?})",
                secs(gone)
            );
            if gone > Duration::from_secs(1) {
                return Err(format!("stale route for {} after kill -9", secs(gone)));
            }
            // The next start reads the new file and announces again.
            rig.start_announced()?;
            wait_until(
                "MED 50 at the router",
                Duration::from_secs(10),
                POLL,
                || Ok(rig.bird.route_all(PREFIX)?.contains("BGP.med: 50")),
            )?;
            Ok(())
        },
    );
}

#[test]
fn drain_survives_restart() {
    with_rig(
        "drainrestart",
        "fd",
        |c| c.drain_time = "1s".into(),
        |rig| {
            rig.start_announced()?;
            rig.herald.ctl(&["drain", "web"])?;
            rig.route_gone_since(Instant::now(), Duration::from_secs(10))?;
            rig.herald.signal("TERM")?;
            let status = rig.herald.wait_exit(Duration::from_secs(10))?;
            if !status.success() {
                return Err(format!("SIGTERM exit status {status}"));
            }
            rig.herald.start()?;
            wait_until("the session after the restart", SETUP, POLL, || {
                rig.bird.established(PROTO)
            })?;
            // Long enough for rise checks and the hold-down to have announced an undrained group.
            let watch = Duration::from_millis(
                rig.cfg.interval_ms * u64::from(rig.cfg.rise) + rig.cfg.hold_down_ms,
            ) + Duration::from_secs(3);
            let t0 = Instant::now();
            while t0.elapsed() < watch {
                if rig.routed()? {
                    return Err(format!(
                        "the drained group was announced again {} after the restart",
                        secs(t0.elapsed())
                    ));
                }
                std::thread::sleep(POLL);
            }
            let status = rig.herald.ctl(&["status"])?;
            if !status
                .lines()
                .any(|l| l.starts_with("web") && l.contains("drain"))
            {
                return Err(format!("status does not say web is drained:\n{status}"));
            }
            // undrain brings it back, and clears the saved drain: the next restart announces.
            rig.herald.ctl(&["undrain", "web"])?;
            wait_until(
                "the route after undrain",
                Duration::from_secs(15),
                POLL,
                || rig.routed(),
            )?;
            rig.herald.signal("TERM")?;
            rig.herald.wait_exit(Duration::from_secs(10))?;
            rig.start_announced()?;
            eprintln!("drain kept across a restart; undrain cleared it");
            Ok(())
        },
    );
}
