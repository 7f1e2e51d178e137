//! Graceful restart (RFC 4724) of our speaker as the restarting side, with BIRD 2
//! (`graceful restart on;`) and FRR (`bgp graceful-restart`) as helpers, in the interop lab's
//! network namespaces. The speaker is driven at the library level, as the daemon drives it:
//! `SpeakerHandle::stop_for_restart`, then a new `Speaker::start_with` with a `GracefulStart`,
//! the table as the first health decision left it, then `release_routes` (End-of-RIB). The
//! binary's own path (`ipvs-herald stop --keep-routes`, the marker, the health gate) is tested
//! against BIRD in the root package's `tests/graceful_restart.rs`.
//!
//! | test | the router must |
//! |---|---|
//! | `stale_routes_kept_and_swept_at_end_of_rib_*` | keep both routes (stale) while we are away and while the new session waits for its first decision; at End-of-RIB keep the re-announced one and drop the other |
//! | `overrun_flushes_*` | flush our routes when the restart time (3 s) is over |
//! | `plain_shutdown_withdraws_*` | lose the routes at a plain shutdown although graceful restart was negotiated |

use crate::support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use herald_announcer::bgp::config::BfdConfig;
use herald_announcer::bgp::{
    Backoff, BgpConfig, Family, GracefulRestart, GracefulStart, InitialHold, NextHop, PeerConfig,
    RouteAttrs, Speaker, SpeakerHandle,
};
use ipnet::IpNet;
use support::lab::{Lab, SPEAKER_V4, SPEAKER_V6};
use support::routers::{Kind, Router, RouterSpec};
use support::{err, wait_until, TResult};
use tokio::sync::oneshot;

const SPEAKER_AS: u32 = 65000;
const ROUTER_AS: u32 = 65001;
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// How a speaker run ends.
enum Stop {
    ForRestart,
    Shutdown,
}

/// One run of our speaker in the lab's speaker namespace.
struct Run {
    handle: SpeakerHandle,
    stop: Option<oneshot::Sender<Stop>>,
    thread: Option<JoinHandle<TResult<()>>>,
}

impl Run {
    fn start(lab: &Lab, cfg: BgpConfig, graceful: Option<Duration>) -> TResult<Self> {
        let (handle_tx, handle_rx) = mpsc::channel::<Result<SpeakerHandle, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<Stop>();
        let thread = lab.speaker.spawn_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(async move {
                let graceful = graceful.map(|left| {
                    let until = tokio::time::Instant::now() + left;
                    GracefulStart {
                        restart_until: BTreeMap::from([("rtr".to_string(), until)]),
                        release_by: until,
                    }
                });
                let mut registry = prometheus_client::registry::Registry::default();
                let handle = match Speaker::start_with(cfg, &mut registry, graceful) {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return err(format!("Speaker::start_with: {e}"));
                    }
                };
                let _ = handle_tx.send(Ok(handle.clone()));
                match stop_rx.await.unwrap_or(Stop::Shutdown) {
                    Stop::ForRestart => handle.stop_for_restart(Duration::from_secs(5)).await,
                    Stop::Shutdown => handle.shutdown("test", Duration::from_secs(5)).await,
                }
                Ok(())
            })
        });
        let handle = match handle_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return err(format!("our speaker did not start: {e}")),
            Err(_) => return err("our speaker thread reported no handle within 10 s"),
        };
        Ok(Run {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn stop(&mut self, how: Stop) -> TResult<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(how);
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(r) => r?,
                Err(_) => return err("speaker thread panicked"),
            }
        }
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.stop(Stop::Shutdown);
    }
}

fn config(restart_time: u16, bfd: bool) -> BgpConfig {
    let mut p = PeerConfig::new("rtr", Lab::router_addr(false), ROUTER_AS);
    p.hold_time = 6;
    p.families = Some(vec![Family::Ipv4, Family::Ipv6]);
    p.next_hop_v4 = NextHop::Addr(IpAddr::V4(SPEAKER_V4));
    p.next_hop_v6 = NextHop::Addr(IpAddr::V6(SPEAKER_V6));
    p.connect_retry = Backoff { min: 0.5, max: 2.0 };
    p.graceful_restart = Some(GracefulRestart { restart_time });
    if bfd {
        p.bfd = Some(BfdConfig {
            enabled: true,
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_multiplier: 3,
            ..BfdConfig::default()
        });
    }
    BgpConfig {
        router_id: SPEAKER_V4,
        local_as: SPEAKER_AS,
        listen: std::net::SocketAddr::new(IpAddr::V4(SPEAKER_V4), 179),
        peers: vec![p],
    }
}

fn net(s: &str) -> IpNet {
    match s.parse() {
        Ok(n) => n,
        Err(e) => panic!("test prefix {s:?}: {e}"),
    }
}

/// The routes both runs announce: one per family that stays healthy, one that dies.
fn kept() -> [IpNet; 2] {
    [net("203.0.113.10/32"), net("2001:db8:10::10/128")]
}
fn dying() -> [IpNet; 2] {
    [net("203.0.113.20/32"), net("2001:db8:10::20/128")]
}

struct Ctx {
    router: Router,
    lab: Lab,
    /// BFD (100 ms x 3) on the session as well.
    bfd: bool,
}

/// How the router is told about BFD: none, BFD (`neighbor X bfd`), or BFD with
/// `check-control-plane-failure` (FRR).
#[derive(Clone, Copy)]
enum Bfd {
    Off,
    On,
    CheckControlPlane,
}

fn setup(test: &str, kind: Kind, bfd: Bfd) -> TResult<Ctx> {
    let lab = Lab::new(&format!("{test}-{}", kind.name()))?;
    lab.check()?;
    let mut spec = RouterSpec::new(kind, ROUTER_AS, SPEAKER_AS);
    spec.graceful_restart = true;
    spec.bfd = !matches!(bfd, Bfd::Off);
    spec.bfd_check_control_plane = matches!(bfd, Bfd::CheckControlPlane);
    let router = Router::start(&lab, spec)?;
    Ok(Ctx {
        router,
        lab,
        bfd: !matches!(bfd, Bfd::Off),
    })
}

fn run(test: &str, kind: Kind, body: fn(&mut Ctx) -> TResult<()>) {
    run_bfd(test, kind, Bfd::Off, body)
}

fn run_bfd(test: &str, kind: Kind, bfd: Bfd, body: fn(&mut Ctx) -> TResult<()>) {
    let mut ctx = match setup(test, kind, bfd) {
        Ok(c) => c,
        Err(e) => panic!("{test}/{}: setup failed: {e}", kind.name()),
    };
    if let Err(e) = body(&mut ctx) {
        panic!(
            "{test}/{}: {e}\n{}\n(test dir {})",
            kind.name(),
            ctx.router.logs(),
            ctx.lab.dir().display()
        );
    }
}

impl Ctx {
    fn peer(&self) -> IpAddr {
        Lab::speaker_addr(false)
    }

    /// From the whole table: BIRD answers a lookup of a missing prefix with an error.
    fn has(&self, p: IpNet) -> TResult<bool> {
        Ok(self.router.rib(p.addr().is_ipv6())?.contains_key(&p))
    }

    fn has_all(&self, ps: &[IpNet]) -> TResult<bool> {
        for p in ps {
            if !self.has(*p)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn has_none(&self, ps: &[IpNet]) -> TResult<bool> {
        for p in ps {
            if self.has(*p)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every route in `ps` stays at the router for the whole of `period`.
    fn stay(&self, what: &str, ps: &[IpNet], period: Duration) -> TResult<()> {
        let t0 = Instant::now();
        while t0.elapsed() < period {
            if !self.has_all(ps)? {
                return err(format!(
                    "{what}: the router lost a route {:.1} s in",
                    t0.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// The router holds our routes as stale (BIRD: the protocol's graceful restart is active;
    /// FRR: the path is flagged stale).
    fn stale(&self, p: IpNet) -> TResult<bool> {
        Ok(match self.router.spec.kind {
            Kind::Bird => self
                .router
                .birdc(&["show", "protocols", "all", "spk4"])?
                .to_lowercase()
                .contains("graceful restart active"),
            _ => {
                let af = if p.addr().is_ipv6() { "ipv6" } else { "ipv4" };
                self.router
                    .vtysh(&format!("show bgp {af} unicast {p} json"))?
                    .contains("\"stale\":true")
            }
        })
    }

    fn announce_all(h: &SpeakerHandle, ps: &[IpNet]) {
        h.announce_many(ps.iter().map(|p| (*p, RouteAttrs::default())));
    }

    fn first_run(&self, restart_time: u16) -> TResult<Run> {
        let r = Run::start(&self.lab, config(restart_time, self.bfd), None)?;
        Self::announce_all(&r.handle, &kept());
        Self::announce_all(&r.handle, &dying());
        wait_until("the session", SESSION_TIMEOUT, POLL, || {
            self.router.established(self.peer())
        })?;
        let all: Vec<IpNet> = kept().into_iter().chain(dying()).collect();
        wait_until("every route at the router", SESSION_TIMEOUT, POLL, || {
            self.has_all(&all)
        })?;
        Ok(r)
    }
}

fn stale_routes_kept_and_swept_at_end_of_rib(ctx: &mut Ctx) -> TResult<()> {
    let all: Vec<IpNet> = kept().into_iter().chain(dying()).collect();
    let mut first = ctx.first_run(60)?;
    first.stop(Stop::ForRestart)?;
    wait_until(
        "the router to see the session gone",
        SESSION_TIMEOUT,
        POLL,
        || Ok(!ctx.router.established(ctx.peer())?),
    )?;
    ctx.stay("while we are away", &all, Duration::from_secs(2))?;
    if !ctx.stale(kept()[0])? {
        return err("the router does not hold our routes as stale while we are away");
    }
    // The new run: the first decision finds one pool per family dead.
    let second = Run::start(&ctx.lab, config(60, ctx.bfd), Some(Duration::from_secs(50)))?;
    Ctx::announce_all(&second.handle, &kept());
    wait_until(
        "the session after the restart",
        SESSION_TIMEOUT,
        POLL,
        || ctx.router.established(ctx.peer()),
    )?;
    // No End-of-RIB before the decision: everything stays, stale.
    ctx.stay("before End-of-RIB", &all, Duration::from_secs(1))?;
    // `ipvs-herald status` says why the peer has no table yet.
    let hold = || -> Option<InitialHold> {
        second
            .handle
            .peer_states()
            .first()
            .and_then(|p| p.initial_hold)
    };
    wait_until(
        "status to show the held table",
        SESSION_TIMEOUT,
        POLL,
        || Ok(hold() == Some(InitialHold::FirstHealthDecision)),
    )?;
    second.handle.release_routes();
    wait_until(
        "the router to drop the dead pools' stale routes at End-of-RIB",
        Duration::from_secs(10),
        POLL,
        || ctx.has_none(&dying()),
    )?;
    if let Some(h) = hold() {
        return err(format!(
            "status still shows the table held ({h:?}) after End-of-RIB"
        ));
    }
    ctx.stay(
        "the re-announced routes after End-of-RIB",
        &kept(),
        Duration::from_secs(1),
    )?;
    for p in kept() {
        if ctx.stale(p)? {
            return err(format!("{p} is still stale after End-of-RIB"));
        }
    }
    Ok(())
}

fn overrun_flushes(ctx: &mut Ctx) -> TResult<()> {
    let mut first = ctx.first_run(3)?;
    let t0 = Instant::now();
    first.stop(Stop::ForRestart)?;
    let all: Vec<IpNet> = kept().into_iter().chain(dying()).collect();
    wait_until(
        "the router to flush our routes after the 3 s restart time",
        Duration::from_secs(15),
        POLL,
        || ctx.has_none(&all),
    )?;
    if t0.elapsed() < Duration::from_secs(2) {
        return err(format!(
            "flushed after {:.1} s, before the restart time",
            t0.elapsed().as_secs_f64()
        ));
    }
    eprintln!("flushed {:.1} s after the stop", t0.elapsed().as_secs_f64());
    Ok(())
}

fn plain_shutdown_withdraws(ctx: &mut Ctx) -> TResult<()> {
    let mut first = ctx.first_run(60)?;
    first.stop(Stop::Shutdown)?;
    let all: Vec<IpNet> = kept().into_iter().chain(dying()).collect();
    wait_until(
        "the routes to go at once",
        Duration::from_secs(3),
        POLL,
        || ctx.has_none(&all),
    )?;
    Ok(())
}

macro_rules! per_router {
    ($($kind:ident: $suffix:ident),*) => {
        $(
            mod $suffix {
                use super::*;

                #[test]
                fn stale_routes_kept_and_swept_at_end_of_rib() {
                    run("gr-eor", Kind::$kind, super::stale_routes_kept_and_swept_at_end_of_rib);
                }

                #[test]
                fn overrun_flushes() {
                    run("gr-late", Kind::$kind, super::overrun_flushes);
                }

                #[test]
                fn plain_shutdown_withdraws() {
                    run("gr-plain", Kind::$kind, super::plain_shutdown_withdraws);
                }
            }
        )*
    };
}

per_router!(Bird: bird, Frr: frr);

/// FRR's view of the BFD session to our speaker (`show bfd peers json`): its status.
fn frr_bfd_status(ctx: &Ctx) -> TResult<String> {
    let out = ctx.router.vtysh("show bfd peers json")?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("show bfd peers json: {e}: {out}"))?;
    Ok(v.as_array()
        .and_then(|a| a.first())
        .and_then(|p| p["status"].as_str())
        .unwrap_or("none")
        .to_string())
}

/// Our stop for a restart with BFD on the session: BFD goes down with the process (AdminDown
/// on the way out; our C bit is 0, BFD shares the daemon's fate). FRR's BFD session must have
/// been up before and down after, so that what FRR does with our routes is its answer to that
/// BFD Down. Returns whether the routes were still there 2 s after FRR's BFD went down.
fn frr_bfd_down_at_a_stop_for_restart(ctx: &mut Ctx) -> TResult<bool> {
    let mut first = ctx.first_run(60)?;
    wait_until("FRR's BFD session up", SESSION_TIMEOUT, POLL, || {
        Ok(frr_bfd_status(ctx)? == "up")
    })?;
    first.stop(Stop::ForRestart)?;
    wait_until("FRR's BFD session down", SESSION_TIMEOUT, POLL, || {
        Ok(frr_bfd_status(ctx)? != "up")
    })?;
    let all: Vec<IpNet> = kept().into_iter().chain(dying()).collect();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        if !ctx.has_all(&all)? {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
    Ok(true)
}

/// FRR with BFD on the session, with and without `neighbor X bfd check-control-plane-failure`:
/// our stop for a restart takes BFD down with it, after the BGP session has closed
/// (`RESTART_BFD_GRACE`), and FRR keeps our routes stale; the new process's End-of-RIB sweeps
/// the dead pools (the whole graceful restart test, with BFD). Without the pause, plain
/// `neighbor X bfd` raced: FRR flushed or kept the routes run by run.
fn frr_bfd_restart(test: &str, bfd: Bfd) {
    run_bfd(test, Kind::Frr, bfd, |ctx| {
        if !frr_bfd_down_at_a_stop_for_restart(ctx)? {
            return err("FRR flushed our routes at the BFD Down of a stop for restart");
        }
        Ok(())
    });
    run_bfd(
        &format!("{test}2"),
        Kind::Frr,
        bfd,
        stale_routes_kept_and_swept_at_end_of_rib,
    );
}

#[test]
fn frr_bfd_check_control_plane_failure_keeps_routes_across_a_restart() {
    frr_bfd_restart("gr-bfd-cp", Bfd::CheckControlPlane);
}

#[test]
fn frr_plain_bfd_keeps_routes_across_a_restart() {
    frr_bfd_restart("gr-bfd-on", Bfd::On);
}
