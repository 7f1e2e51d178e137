//! BFD interop against a real BIRD 2 (`protocol bfd`, `bfd on` in its BGP protocol) and FRR
//! (`bfdd`, `neighbor X bfd`) in a network namespace joined to our speaker's by veth (the
//! harness of `interop.rs`). The `frr_*` tests repeat the failure scenarios with FRR.
//!
//! - BFD comes Up on both sides, and only then does the router get our routes.
//! - While BFD is not Up, an Established session carries no routes.
//! - The router goes silent (its BFD packets dropped by nftables in its namespace; BGP
//!   keepalives still flow, the hold time is 30 s): our speaker closes the BGP session with
//!   Cease / BFD Down within about the detection time, and comes back once BFD does.
//! - The same over IPv6; a change of our timers is renegotiated without a session reset.
//! - We go silent (our BFD packets dropped on the router's input): BIRD's BFD goes Down and
//!   BIRD closes the session, long before any hold timer.
//!
//! Run with `cargo test -p herald-announcer --test integration bfd::` as root. BIRD is
//! installed by `tests/deps.sh` when missing; the tests never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use herald_announcer::bfd::State as BfdState;
use herald_announcer::bgp::config::BfdConfig;
use herald_announcer::bgp::{BgpConfig, InitialHold};
use ipnet::IpNet;

use support::driver::{wait_established, Driver, DriverPeer, DriverSpec};
use support::herald::{config, HeraldDriver};
use support::lab::Lab;
use support::routers::{Flavour, Kind, Router, RouterSpec};
use support::routes::Attrs;
use support::{err, stays_false, wait_until, TResult};

const SPEAKER_AS: u32 = 65000;
const ROUTER_AS: u32 = 65001;
/// Long enough that only BFD can explain a session lost within seconds.
const HOLD: u16 = 30;
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Detection at 100 ms x 3 is 0.3 s; this bound leaves room for a loaded machine and is
/// still a tenth of the hold time.
const FAST: Duration = Duration::from_secs(3);

struct Ctx {
    driver: HeraldDriver,
    router: Router,
    lab: Lab,
    /// The speaker's configuration (for reconfiguration).
    cfg: BgpConfig,
    /// Session (and BFD) over IPv6.
    v6: bool,
    kind: Kind,
    /// Multihop BFD (RFC 5883, port 4784) on both sides.
    multihop: bool,
}

impl Ctx {
    fn router_addr(&self) -> IpAddr {
        Lab::router_addr(self.v6)
    }

    fn speaker_addr(&self) -> IpAddr {
        Lab::speaker_addr(self.v6)
    }

    /// The UDP port BFD Control packets go to.
    fn bfd_port(&self) -> u16 {
        bfd_port(self.multihop)
    }

    fn proto(&self) -> &'static str {
        if self.v6 {
            "spk6"
        } else {
            "spk4"
        }
    }
}

fn bfd_port(multihop: bool) -> u16 {
    if multihop {
        4784
    } else {
        3784
    }
}

/// `silent_router`: the router's BFD packets are dropped from the start; `v6`: IPv6 transport;
/// `multihop`: multihop BGP and BFD on both sides.
fn setup(
    (kind, flavour): (Kind, Flavour),
    test: &str,
    silent_router: bool,
    v6: bool,
    multihop: bool,
) -> TResult<Ctx> {
    let lab = Lab::new(test)?;
    lab.check()?;
    if silent_router {
        drop_bfd(&lab, "output", bfd_port(multihop))?;
    }
    let mut rspec = RouterSpec::new(kind, ROUTER_AS, SPEAKER_AS);
    rspec.hold = HOLD;
    rspec.flavour = flavour;
    rspec.bfd = true;
    rspec.bfd_multihop = multihop;
    rspec.transport_v6 = v6;
    let router = Router::start(&lab, rspec)?;
    let dspec = DriverSpec {
        local_as: SPEAKER_AS,
        peers: vec![DriverPeer {
            address: Lab::router_addr(v6),
            remote_as: ROUTER_AS,
            hold: HOLD,
            md5: None,
            passive: false,
            ttl_security: None,
        }],
    };
    let mut cfg = config(&dspec);
    cfg.peers[0].bfd = Some(BfdConfig {
        enabled: true,
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_multiplier: 3,
        multihop,
        ..BfdConfig::default()
    });
    let driver = HeraldDriver::start_with_config(&lab, &dspec, cfg.clone())?;
    Ok(Ctx {
        driver,
        router,
        lab,
        cfg,
        v6,
        kind,
        multihop,
    })
}

fn run(test: &str, silent_router: bool, v6: bool, body: fn(&mut Ctx) -> TResult<()>) {
    run_on(BIRD2, test, silent_router, v6, false, body)
}

/// The routers: Debian 12's, and Debian trixie's (tests/trixie-root.sh).
const BIRD2: (Kind, Flavour) = (Kind::Bird, Flavour::Host);
const FRR8: (Kind, Flavour) = (Kind::Frr, Flavour::Host);
const BIRD3: (Kind, Flavour) = (Kind::Bird, Flavour::Trixie);
const FRR10: (Kind, Flavour) = (Kind::Frr, Flavour::Trixie);

fn run_on(
    router: (Kind, Flavour),
    test: &str,
    silent_router: bool,
    v6: bool,
    multihop: bool,
    body: fn(&mut Ctx) -> TResult<()>,
) {
    let kind = router.0;
    let mut ctx = match setup(router, test, silent_router, v6, multihop) {
        Ok(c) => c,
        Err(e) => panic!("{test}: setup failed: {e}"),
    };
    if let Err(e) = body(&mut ctx) {
        let (bfd, proto) = match kind {
            Kind::Frr => (
                ctx.router.vtysh("show bfd peers").unwrap_or_default(),
                ctx.router
                    .vtysh(&format!("show bgp neighbors {}", ctx.speaker_addr()))
                    .unwrap_or_default(),
            ),
            _ => (
                ctx.router
                    .birdc(&["show", "bfd", "sessions"])
                    .unwrap_or_default(),
                ctx.router
                    .birdc(&["show", "protocols", "all", ctx.proto()])
                    .unwrap_or_default(),
            ),
        };
        panic!(
            "{test} failed: {e}\n--- router BFD ---\n{bfd}\n--- router BGP ---\n{proto}\n{}\n{}\n(test dir {})",
            ctx.router.logs(),
            ctx.driver.logs(),
            ctx.lab.dir().display()
        );
    }
}

/// The router's BFD state towards our speaker ("Up", "Down", "Init", or "none").
fn router_bfd_state(ctx: &Ctx) -> TResult<String> {
    if ctx.kind == Kind::Frr {
        let out = ctx.router.vtysh("show bfd peers json")?;
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("show bfd peers json: {e}: {out}"))?;
        let me = ctx.speaker_addr().to_string();
        let st = v
            .as_array()
            .and_then(|a| a.iter().find(|p| p["peer"] == me.as_str()))
            .and_then(|p| p["status"].as_str())
            .unwrap_or("none");
        return Ok(match st {
            "up" => "Up".to_owned(),
            other => other.to_owned(),
        });
    }
    let out = ctx.router.birdc(&["show", "bfd", "sessions"])?;
    let me = ctx.speaker_addr().to_string();
    Ok(out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.first() == Some(&me.as_str()))
        .and_then(|c| c.get(2).map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "none".to_owned()))
}

fn wait_router_bfd(ctx: &Ctx, up: bool, timeout: Duration) -> TResult<()> {
    wait_until(
        &format!(
            "the router's BFD session {}",
            if up { "Up" } else { "not Up" }
        ),
        timeout,
        POLL,
        || Ok((router_bfd_state(ctx)? == "Up") == up),
    )
}

fn route() -> IpNet {
    "203.0.113.80/32".parse().unwrap()
}

fn has_route(ctx: &Ctx) -> TResult<bool> {
    Ok(ctx.router.rib(false)?.contains_key(&route()))
}

fn wait_route(ctx: &Ctx, present: bool) -> TResult<()> {
    wait_until(
        &format!("route {} at the router: {present}", route()),
        TIMEOUT,
        Duration::from_millis(200),
        || Ok(has_route(ctx)? == present),
    )
}

/// Both sides Established, both BFD sessions Up, our route at the router.
fn all_up(ctx: &mut Ctx) -> TResult<()> {
    wait_established(&ctx.driver, ctx.router_addr(), TIMEOUT)?;
    wait_until("BIRD Established", TIMEOUT, POLL, || {
        ctx.router.established(ctx.speaker_addr())
    })?;
    wait_router_bfd(ctx, true, TIMEOUT)?;
    ctx.driver.announce(route(), &Attrs::default())?;
    wait_route(ctx, true)
}

/// One nftables rule in the router's namespace dropping BFD Control packets to `port` on `hook`.
fn drop_bfd(lab: &Lab, hook: &str, port: u16) -> TResult<()> {
    let ns = &lab.router;
    ns.exec("nft", &["add", "table", "inet", "bfdtest"])?;
    ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "bfdtest",
            hook,
            &format!("{{ type filter hook {hook} priority 0; }}"),
        ],
    )?;
    ns.exec(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "bfdtest",
            hook,
            "udp",
            "dport",
            &port.to_string(),
            "drop",
        ],
    )?;
    Ok(())
}

fn allow_bfd(ctx: &Ctx) -> TResult<()> {
    ctx.lab
        .router
        .exec("nft", &["delete", "table", "inet", "bfdtest"])?;
    Ok(())
}

#[test]
fn bird_bfd_comes_up_and_routes_follow() {
    run("bfd-up", false, false, |ctx| {
        all_up(ctx)?;
        // BIRD agreed to our 100 ms: its session shows our rate, not the 1 s idle rate.
        let out = ctx.router.birdc(&["show", "bfd", "sessions"])?;
        if !out.contains("0.100") {
            return err(format!("BIRD did not negotiate 100 ms: {out}"));
        }
        // What `ipvs-herald status` shows of it.
        let st = ctx.driver.handle().peer_states();
        let peer = st.first().ok_or("no peer status")?;
        let bfd = peer.bfd.ok_or("no BFD in the peer status")?;
        if bfd.status.state != BfdState::Up
            || bfd.status.remote != BfdState::Up
            || bfd.tx_interval != Duration::from_millis(100)
            || bfd.detection_time.is_zero()
            || peer.initial_hold.is_some()
        {
            return err(format!("peer status: {peer:?}"));
        }
        Ok(())
    });
}

/// The router's BFD packets dropped: we close with Cease / BFD Down, BIRD records why, and
/// everything comes back with BFD.
fn bird_silent(ctx: &mut Ctx) -> TResult<()> {
    all_up(ctx)?;
    drop_bfd(&ctx.lab, "output", ctx.bfd_port())?;
    let t = Instant::now();
    wait_until("our session leaves Established", FAST, POLL, || {
        Ok(!ctx.driver.established(ctx.router_addr())?)
    })?;
    let took = t.elapsed();
    let last = ctx.driver.last_error(ctx.router_addr())?;
    if !last.as_deref().unwrap_or("").contains("Cease (6/10)") {
        return err(format!(
            "last error {last:?} is not Cease / BFD Down (after {took:?})"
        ));
    }
    // BIRD was told why: Cease subcode 10 (RFC 9384); BIRD 2.0.12 has no name for it and
    // prints "Received: Unknown error 6.10", later versions "BFD session down".
    wait_until("BIRD leaves Established", FAST, POLL, || {
        Ok(!ctx.router.established(ctx.speaker_addr())?)
    })?;
    let proto = ctx
        .router
        .birdc(&["show", "protocols", "all", ctx.proto()])?;
    if !(proto.contains("Received: Unknown error 6.10") || proto.contains("Received: BFD")) {
        return err(format!("BIRD did not receive Cease / BFD Down: {proto}"));
    }
    // BFD back: the session and the route come back.
    allow_bfd(ctx)?;
    wait_router_bfd(ctx, true, TIMEOUT)?;
    wait_established(&ctx.driver, ctx.router_addr(), TIMEOUT)?;
    wait_route(ctx, true)
}

#[test]
fn silent_bird_makes_us_close_the_session_with_cease_bfd_down() {
    run("bfd-peer-silent", false, false, bird_silent);
}

#[test]
fn silent_speaker_makes_bird_bfd_go_down() {
    run("bfd-we-silent", false, false, |ctx| {
        all_up(ctx)?;
        drop_bfd(&ctx.lab, "input", ctx.bfd_port())?;
        wait_router_bfd(ctx, false, FAST)?;
        wait_until("BIRD leaves Established", FAST, POLL, || {
            Ok(!ctx.router.established(ctx.speaker_addr())?)
        })?;
        wait_route(ctx, false)
    });
}

#[test]
fn no_routes_until_bfd_is_up() {
    run("bfd-gate", true, false, |ctx| {
        wait_established(&ctx.driver, ctx.router_addr(), TIMEOUT)?;
        wait_until(
            "status to show the table held for BFD",
            TIMEOUT,
            POLL,
            || {
                Ok(ctx.driver.handle().peer_states().first().is_some_and(|p| {
                    p.initial_hold == Some(InitialHold::BfdUp)
                        && p.bfd.is_some_and(|b| b.status.state != BfdState::Up)
                }))
            },
        )?;
        ctx.driver.announce(route(), &Attrs::default())?;
        stays_false(
            "route at the router while our BFD cannot come Up",
            Duration::from_secs(3),
            Duration::from_millis(200),
            || has_route(ctx),
        )?;
        allow_bfd(ctx)?;
        wait_route(ctx, true)
    });
}

#[test]
fn ipv6_bfd_comes_up_and_detects_a_silent_bird() {
    run("bfd-v6", false, true, |ctx| {
        all_up(ctx)?;
        drop_bfd(&ctx.lab, "output", ctx.bfd_port())?;
        wait_until("our IPv6 session leaves Established", FAST, POLL, || {
            Ok(!ctx.driver.established(ctx.router_addr())?)
        })?;
        let last = ctx.driver.last_error(ctx.router_addr())?;
        if !last.as_deref().unwrap_or("").contains("Cease (6/10)") {
            return err(format!("last error {last:?} is not Cease / BFD Down"));
        }
        Ok(())
    });
}

/// BIRD's TX interval towards us ("Interval" column of `show bfd sessions`, seconds).
fn bird_interval(ctx: &Ctx) -> TResult<String> {
    let out = ctx.router.birdc(&["show", "bfd", "sessions"])?;
    let me = ctx.speaker_addr().to_string();
    Ok(out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.first() == Some(&me.as_str()))
        .and_then(|c| c.get(4).map(|s| (*s).to_owned()))
        .unwrap_or_default())
}

#[test]
fn timer_change_is_renegotiated_without_a_reset() {
    run("bfd-poll", false, false, |ctx| {
        all_up(ctx)?;
        wait_until("BIRD sends every 100 ms", TIMEOUT, POLL, || {
            Ok(bird_interval(ctx)? == "0.100")
        })?;
        // We now accept packets only every 250 ms: BIRD must slow down to that. BIRD applies a
        // new Required Min RX as soon as it sees it, so this cannot tell whether we polled
        // (checked: it passes with our Poll Sequence disabled); the Poll/Final exchange itself
        // is covered by the FSM's unit tests.
        let mut cfg = ctx.cfg.clone();
        cfg.peers[0].bfd = Some(BfdConfig {
            required_min_rx: Duration::from_millis(250),
            ..cfg.peers[0].bfd.unwrap()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let report = rt.block_on(ctx.driver.handle().reconfigure(cfg))?;
        let text = format!("{report:?}");
        if text.contains("Reset") {
            return err(format!("a BFD timer change reset the session: {text}"));
        }
        wait_until("BIRD sends every 250 ms", TIMEOUT, POLL, || {
            Ok(bird_interval(ctx)? == "0.250")
        })?;
        if !ctx.driver.established(ctx.router_addr())? || router_bfd_state(ctx)? != "Up" {
            return err("the session or BFD went down during the parameter change");
        }
        Ok(())
    });
}

#[test]
fn frr_bfd_comes_up_and_routes_follow() {
    run_on(FRR8, "bfd-frr-up", false, false, false, all_up);
}

/// FRR's BFD packets dropped: we close with Cease / BFD Down; back with BFD.
fn frr_silent(ctx: &mut Ctx) -> TResult<()> {
    all_up(ctx)?;
    router_silent_then_back(ctx)
}

/// From all up: the router's BFD packets dropped, we close with Cease / BFD Down; allowed
/// again, BFD, the session and the route come back.
fn router_silent_then_back(ctx: &mut Ctx) -> TResult<()> {
    drop_bfd(&ctx.lab, "output", ctx.bfd_port())?;
    wait_until("our session leaves Established", FAST, POLL, || {
        Ok(!ctx.driver.established(ctx.router_addr())?)
    })?;
    let last = ctx.driver.last_error(ctx.router_addr())?;
    if !last.as_deref().unwrap_or("").contains("Cease (6/10)") {
        return err(format!("last error {last:?} is not Cease / BFD Down"));
    }
    allow_bfd(ctx)?;
    wait_router_bfd(ctx, true, TIMEOUT)?;
    wait_established(&ctx.driver, ctx.router_addr(), TIMEOUT)?;
    wait_route(ctx, true)
}

#[test]
fn frr_silent_makes_us_close_the_session_with_cease_bfd_down() {
    run_on(FRR8, "bfd-frr-silent", false, false, false, frr_silent);
}

#[test]
fn frr_silent_speaker_makes_frr_bfd_go_down() {
    run_on(FRR8, "bfd-frr-we-silent", false, false, false, |ctx| {
        all_up(ctx)?;
        drop_bfd(&ctx.lab, "input", ctx.bfd_port())?;
        wait_router_bfd(ctx, false, FAST)?;
        wait_until("FRR leaves Established", FAST, POLL, || {
            Ok(!ctx.router.established(ctx.speaker_addr())?)
        })?;
        wait_route(ctx, false)
    });
}

/// The router's BFD packets leave with TTL `ttl` instead of 255, as if they had crossed
/// 255 - `ttl` routers (an nftables rule in the router's namespace, multihop port only).
fn router_bfd_ttl(ctx: &Ctx, ttl: u8) -> TResult<()> {
    let ns = &ctx.lab.router;
    ns.exec("nft", &["add", "table", "ip", "bfdttl"])?;
    ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "ip",
            "bfdttl",
            "output",
            "{ type filter hook output priority 0; }",
        ],
    )?;
    ns.exec(
        "nft",
        &[
            "add",
            "rule",
            "ip",
            "bfdttl",
            "output",
            "udp",
            "dport",
            "4784",
            "ip",
            "ttl",
            "set",
            &ttl.to_string(),
        ],
    )?;
    Ok(())
}

/// Our BFD session as `ipvs-herald status` shows it, Up or not.
fn our_bfd_up(ctx: &Ctx) -> bool {
    ctx.driver
        .handle()
        .peer_states()
        .first()
        .and_then(|p| p.bfd)
        .is_some_and(|b| b.status.state == BfdState::Up)
}

#[test]
fn bird_multihop_bfd_one_router_away_comes_up_and_detects_a_silent_bird() {
    run_on(BIRD2, "bfd-mh", false, false, true, |ctx| {
        // BIRD's packets arrive as from one router away (TTL 254): our default minimum.
        router_bfd_ttl(ctx, 254)?;
        all_up(ctx)?;
        // BIRD runs it as a multihop session (its `show bfd sessions` lists no interface).
        let out = ctx.router.birdc(&["show", "bfd", "sessions"])?;
        let me = ctx.speaker_addr().to_string();
        let row: Vec<&str> = out
            .lines()
            .find(|l| l.starts_with(&me))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        if row.get(1) != Some(&"---") {
            return err(format!(
                "BIRD's session is not multihop (interface column): {out}"
            ));
        }
        router_silent_then_back(ctx)
    });
}

#[test]
fn bird_multihop_bfd_from_too_far_away_is_refused_and_no_route_is_announced() {
    run_on(BIRD2, "bfd-mh-far", false, false, true, |ctx| {
        // TTL 200: more routers in between than our default minimum (254) allows.
        router_bfd_ttl(ctx, 200)?;
        wait_established(&ctx.driver, ctx.router_addr(), TIMEOUT)?;
        ctx.driver.announce(route(), &Attrs::default())?;
        stays_false(
            "our BFD Up, or the route at the router, with the peer's packets at TTL 200",
            Duration::from_secs(4),
            Duration::from_millis(200),
            || Ok(our_bfd_up(ctx) || has_route(ctx)?),
        )?;
        // The same packets at TTL 254 are heard: BFD comes Up and the route follows.
        ctx.lab
            .router
            .exec("nft", &["delete", "table", "ip", "bfdttl"])?;
        router_bfd_ttl(ctx, 254)?;
        wait_until("our BFD Up", TIMEOUT, POLL, || Ok(our_bfd_up(ctx)))?;
        wait_route(ctx, true)
    });
}

#[test]
fn bird3_bfd_comes_up_and_detects_a_silent_bird() {
    run_on(BIRD3, "bfd-bird3", false, false, false, bird_silent);
}

#[test]
fn frr10_bfd_comes_up_and_detects_a_silent_frr() {
    run_on(FRR10, "bfd-frr10", false, false, false, frr_silent);
}

/// Multihop BFD with FRR (`ebgp-multihop 2`, a `multihop` bfdd peer), its packets arriving at
/// TTL 254: FRR runs the session as multihop, both Up, routes; silence → Cease / BFD Down.
fn frr_multihop(ctx: &mut Ctx) -> TResult<()> {
    // FRR's packets arrive as from one router away (TTL 254): our default minimum.
    router_bfd_ttl(ctx, 254)?;
    all_up(ctx)?;
    let out = ctx.router.vtysh("show bfd peers json")?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("show bfd peers json: {e}: {out}"))?;
    let me = ctx.speaker_addr().to_string();
    let multihop = v
        .as_array()
        .and_then(|a| a.iter().find(|p| p["peer"] == me.as_str()))
        .and_then(|p| p["multihop"].as_bool());
    if multihop != Some(true) {
        return err(format!("FRR's BFD session is not multihop: {out}"));
    }
    router_silent_then_back(ctx)
}

#[test]
fn frr_multihop_bfd_one_router_away_comes_up_and_detects_a_silent_frr() {
    run_on(FRR8, "bfd-frr-mh", false, false, true, frr_multihop);
}

#[test]
fn frr10_multihop_bfd_one_router_away_comes_up_and_detects_a_silent_frr() {
    run_on(FRR10, "bfd-frr10-mh", false, false, true, frr_multihop);
}
