//! Live reconfiguration (`SpeakerHandle::reconfigure`) against a real BIRD 2, observed from the
//! router side: one BIRD in the lab's router namespace emulates several routers (one passive
//! protocol per router address, see `support::multibird`), our speaker runs in the speaker
//! namespace and connects to each.
//!
//! - adding a peer does not touch an existing session: BIRD's "since" time (ms) and import
//!   update counter of that session are unchanged, and the added peer establishes and
//!   receives the route;
//! - a removed peer: BIRD reports "Received: Peer de-configured" and drops the route;
//! - a hold-time change resets only that peer (BIRD: "Other configuration change", new hold
//!   time negotiated), the other session's "since" is unchanged;
//! - a router that connects too, with `accept_incoming` on our side, ends with one stable
//!   connection (RFC 4271 §6.8);
//! - FRR (standard one-peer harness): a hold-time change shows as "Cease/Other Configuration
//!   Change" and the session returns; removing the peer shows "Cease/Peer De-configured" and
//!   the route goes.
//!
//! Run as root (`cargo test -p herald-announcer --test integration reload_interop::`); BIRD and
//! FRR are installed by `tests/deps.sh` when missing, and the tests fail (never skip) if that is
//! impossible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use herald_announcer::bgp::{BgpConfig, PeerChange, RouteAttrs, SpeakerHandle};
use support::driver::{DriverPeer, DriverSpec};
use support::herald::{config, HeraldDriver};
use support::lab::Lab;
use support::multibird::{BirdPeer, MultiBird};
use support::{stays_false, wait_until, TResult};

const SPEAKER_AS: u32 = 65000;
const ROUTER_AS: u32 = 65001;
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);
const PREFIX: &str = "203.0.113.80/32";
/// How long an untouched session is watched after a reconfiguration.
const WATCH: Duration = Duration::from_secs(4);

fn router(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 2 + i)
}

/// The speaker's address for the session to router `i`.
fn speaker(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 11 + i)
}

fn proto(i: u8) -> String {
    format!("r{i}")
}

fn bird_peers(n: u8) -> Vec<BirdPeer> {
    (0..n)
        .map(|i| BirdPeer {
            name: proto(i),
            addr: router(i),
            speaker: speaker(i),
            hold: 240,
            passive: true,
        })
        .collect()
}

/// Our side's configuration for routers `which` (speaker peer names are `rtr<k>` by position,
/// so keep the order stable between configurations).
fn spec(which: &[(u8, u16)]) -> DriverSpec {
    DriverSpec {
        local_as: SPEAKER_AS,
        peers: which
            .iter()
            .map(|&(i, hold)| DriverPeer {
                address: IpAddr::V4(router(i)),
                remote_as: ROUTER_AS,
                hold,
                md5: None,
                passive: false,
                ttl_security: None,
            })
            .collect(),
    }
}

/// The speaker configuration for `which`: the interop harness's, with each session bound to
/// its own local address.
fn bgp_config(which: &[(u8, u16)]) -> BgpConfig {
    let mut c = config(&spec(which));
    for (p, &(i, _)) in c.peers.iter_mut().zip(which) {
        p.local_address = Some(IpAddr::V4(speaker(i)));
    }
    c
}

/// Reconfigure from the test thread (the speaker's sessions run on its own runtime in the
/// speaker namespace; no listener is involved here, so no socket is opened on this thread).
fn reconfigure(
    h: &SpeakerHandle,
    cfg: BgpConfig,
) -> TResult<herald_announcer::bgp::ReconfigureReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(h.reconfigure(cfg))?)
}

struct World {
    speaker: HeraldDriver,
    bird: MultiBird,
    _lab: Lab,
}

impl World {
    fn start(test: &str, routers: u8, initial: &[(u8, u16)]) -> TResult<Self> {
        let lab = Lab::new(test)?;
        let bird = MultiBird::start(&lab, &bird_peers(routers), ROUTER_AS, SPEAKER_AS)?;
        let speaker = HeraldDriver::start_with_config(&lab, &spec(initial), bgp_config(initial))?;
        speaker
            .handle()
            .announce(PREFIX.parse().expect("prefix"), RouteAttrs::default());
        Ok(World {
            speaker,
            bird,
            _lab: lab,
        })
    }

    fn wait_route(&self, i: u8) -> TResult<()> {
        let p = proto(i);
        wait_until(
            &format!("BIRD {p} Established with the route"),
            SESSION_TIMEOUT,
            POLL,
            || Ok(self.bird.established(&p)? && self.bird.has_route(&p, PREFIX)?),
        )
    }

    fn fail(&self, e: impl std::fmt::Display) -> String {
        use support::driver::Driver;
        format!("{e}\n{}\n{}", self.bird.logs(), self.speaker.logs())
    }
}

fn run(test: impl FnOnce() -> TResult<()>) {
    if let Err(e) = test() {
        panic!("{e}");
    }
}

#[test]
fn bird_added_peer_establishes_and_the_existing_session_is_untouched() {
    run(|| {
        let w = World::start("reload-add", 2, &[(0, 90)])?;
        w.wait_route(0).map_err(|e| w.fail(e))?;
        // Let the initial burst (UPDATE + End-of-RIB) settle before sampling.
        std::thread::sleep(Duration::from_secs(1));
        let since = w.bird.since("r0")?;
        let updates = w.bird.import_updates("r0")?;

        let report = reconfigure(w.speaker.handle(), bgp_config(&[(0, 90), (1, 90)]))?;
        assert_eq!(report.plan.peer("rtr0"), Some(&PeerChange::Unchanged));
        assert_eq!(report.plan.peer("rtr1"), Some(&PeerChange::Added));
        w.wait_route(1).map_err(|e| w.fail(e))?;
        stays_false("r0 session disturbed", WATCH, POLL, || {
            Ok(w.bird.since("r0")? != since
                || w.bird.import_updates("r0")? != updates
                || !w.bird.established("r0")?)
        })
        .map_err(|e| w.fail(e))?;
        assert!(w.bird.has_route("r0", PREFIX)?);
        Ok(())
    })
}

#[test]
fn bird_removed_peer_sees_peer_deconfigured_and_loses_the_route() {
    run(|| {
        let w = World::start("reload-remove", 2, &[(0, 90), (1, 90)])?;
        w.wait_route(0).map_err(|e| w.fail(e))?;
        w.wait_route(1).map_err(|e| w.fail(e))?;
        std::thread::sleep(Duration::from_secs(1));
        let since0 = w.bird.since("r0")?;

        let report = reconfigure(w.speaker.handle(), bgp_config(&[(0, 90)]))?;
        assert_eq!(report.plan.peer("rtr1"), Some(&PeerChange::Removed));
        wait_until(
            "BIRD r1 reports Peer de-configured",
            SESSION_TIMEOUT,
            POLL,
            || {
                Ok(w.bird
                    .last_error("r1")?
                    .contains("Received: Peer de-configured"))
            },
        )
        .map_err(|e| w.fail(e))?;
        wait_until("route from r1 gone", SESSION_TIMEOUT, POLL, || {
            Ok(!w.bird.has_route("r1", PREFIX)?)
        })
        .map_err(|e| w.fail(e))?;
        // Our side does not come back to r1 (the peer is gone, not just reset).
        stays_false("r1 re-established", WATCH, POLL, || {
            w.bird.established("r1")
        })
        .map_err(|e| w.fail(e))?;
        assert_eq!(w.bird.since("r0")?, since0, "r0 was disturbed");
        assert!(w.bird.has_route("r0", PREFIX)?);
        let names: Vec<String> = w
            .speaker
            .handle()
            .peer_states()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["rtr0"]);
        Ok(())
    })
}

#[test]
fn bird_hold_time_change_resets_only_that_peer() {
    run(|| {
        let w = World::start("reload-hold", 2, &[(0, 90), (1, 90)])?;
        w.wait_route(0).map_err(|e| w.fail(e))?;
        w.wait_route(1).map_err(|e| w.fail(e))?;
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(w.bird.hold_time("r0")?, Some(90));
        let since0 = w.bird.since("r0")?;
        let since1 = w.bird.since("r1")?;

        let report = reconfigure(w.speaker.handle(), bgp_config(&[(0, 30), (1, 90)]))?;
        assert_eq!(
            report.plan.peer("rtr0"),
            Some(&PeerChange::Reset {
                keys: vec!["hold_time"]
            })
        );
        wait_until(
            "r0 re-established with hold time 30",
            SESSION_TIMEOUT,
            POLL,
            || {
                Ok(w.bird.established("r0")?
                    && w.bird.hold_time("r0")? == Some(30)
                    && w.bird.since("r0")? != since0)
            },
        )
        .map_err(|e| w.fail(e))?;
        // BIRD clears "Last error" once the session is back up; its log keeps the NOTIFICATION.
        let log = w.bird.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("r0: Received: Other configuration change")),
            "BIRD did not log Cease/Other Configuration Change from r0:\n{log}"
        );
        assert!(
            !log.lines().any(|l| l.contains("r1: Received:")),
            "r1 received a NOTIFICATION:\n{log}"
        );
        w.wait_route(0).map_err(|e| w.fail(e))?;
        assert_eq!(w.bird.since("r1")?, since1, "r1 was reset too");
        assert_eq!(w.bird.last_error("r1")?, "");
        Ok(())
    })
}

/// BIRD connects too (not passive) and our peer has `accept_incoming`: BIRD is frozen while our
/// connection and OPEN wait in its backlog, then thawed, so that its own connection attempt
/// races ours. Both sides must settle on exactly one connection and stay there.
///
/// Which connection survives is not fixed here, by design of RFC 4271 §6.8. When BIRD's OPEN
/// reaches us while our connection is still in OpenConfirm, we keep BIRD's connection (its
/// identifier 192.0.2.2 is higher) and close ours with Cease / Connection Collision Resolution.
/// BIRD may already count our connection Established by then (it had our KEEPALIVE), so it
/// takes that Cease as the end of its session and drops both; whoever reconnects first then
/// wins with no collision at all. Seen in CI under load: one reset, then a stable session on
/// our connection. The direction of a collision resolution is proven deterministically by the
/// scripted-peer tests in `bgp::session` and against BIRD and FRR by `interop_attrs::collision_*`
/// (which hold our OPEN back so that a collision is certain).
#[test]
fn bird_connecting_too_settles_on_one_connection() {
    use nix::sys::signal::Signal;
    run(|| {
        let lab = Lab::new("reload-collision")?;
        let peers = vec![BirdPeer {
            name: proto(0),
            addr: router(0),
            speaker: speaker(0),
            hold: 240,
            passive: false,
        }];
        let bird = MultiBird::start(&lab, &peers, ROUTER_AS, SPEAKER_AS)?;
        bird.signal(Signal::SIGSTOP)?;
        let mut cfg = bgp_config(&[(0, 90)]);
        cfg.peers[0].accept_incoming = true;
        cfg.listen = std::net::SocketAddr::new(IpAddr::V4(speaker(0)), 179);
        let sp = HeraldDriver::start_with_config(&lab, &spec(&[(0, 90)]), cfg)?;
        sp.handle()
            .announce(PREFIX.parse().expect("prefix"), RouteAttrs::default());
        // Our connection completes in the frozen BIRD's backlog and our OPEN is sent.
        std::thread::sleep(Duration::from_secs(2));
        bird.signal(Signal::SIGCONT)?;
        let fail = |e: &dyn std::fmt::Display| {
            use support::driver::Driver;
            format!("{e}\n{}\n{}", bird.logs(), sp.logs())
        };
        wait_until(
            "r0 Established with the route",
            SESSION_TIMEOUT,
            POLL,
            || Ok(bird.established("r0")? && bird.has_route("r0", PREFIX)?),
        )
        .map_err(|e| fail(&e))?;
        let since = bird.since("r0")?;
        stays_false("r0 flapping after the collision", WATCH, POLL, || {
            Ok(bird.since("r0")? != since || !bird.established("r0")?)
        })
        .map_err(|e| fail(&e))?;
        // Exactly one BGP connection is left, on the speaker side as on the router side.
        let ss = lab.speaker.exec("ss", &["-tnH", "state", "established"])?;
        let bgp: Vec<&str> = ss.lines().filter(|l| l.contains(":179")).collect();
        if bgp.len() != 1 {
            return Err(fail(&format!("expected one BGP connection, ss shows:\n{ss}")).into());
        }
        let collided = bird.log_text().contains("ollision")
            || sp
                .metrics_text()?
                .contains("ipvs_herald_bgp_connection_collisions_total{")
            || sp.handle().peer_states()[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("Collision") || e.contains("collision"));
        eprintln!("collision observed: {collided}; connection: {}", bgp[0]);
        Ok(())
    })
}

/// FRR as the router (one peer, the harness's standard FRR setup): a hold-time change resets
/// the session with Cease / Other Configuration Change and it comes back; removing the peer
/// sends Cease / Peer De-configured and FRR drops the route.
#[test]
fn frr_sees_other_configuration_change_then_peer_deconfigured() {
    use support::lab::{ROUTER_V4, SPEAKER_V4};
    use support::routers::{Kind, Router, RouterSpec};
    run(|| {
        let lab = Lab::new("reload-frr")?;
        let mut rspec = RouterSpec::new(Kind::Frr, ROUTER_AS, SPEAKER_AS);
        rspec.hold = 240;
        let router = Router::start(&lab, rspec)?;
        let dspec = DriverSpec {
            local_as: SPEAKER_AS,
            peers: vec![DriverPeer {
                address: IpAddr::V4(ROUTER_V4),
                remote_as: ROUTER_AS,
                hold: 90,
                md5: None,
                passive: false,
                ttl_security: None,
            }],
        };
        let sp = HeraldDriver::start(&lab, &dspec)?;
        let prefix: ipnet::IpNet = PREFIX.parse().expect("prefix");
        sp.handle().announce(prefix, RouteAttrs::default());
        let speaker = IpAddr::V4(SPEAKER_V4);
        let fail = |e: &dyn std::fmt::Display| {
            use support::driver::Driver;
            format!("{e}\n{}\n{}", router.logs(), sp.logs())
        };
        let up_with_route = || Ok(router.established(speaker)? && router.route(prefix)?.is_some());
        wait_until(
            "FRR Established with the route",
            SESSION_TIMEOUT,
            POLL,
            up_with_route,
        )
        .map_err(|e| fail(&e))?;

        let mut dspec30 = dspec.clone();
        dspec30.peers[0].hold = 30;
        let report = reconfigure(sp.handle(), config(&dspec30))?;
        assert_eq!(
            report.plan.peer("rtr0"),
            Some(&PeerChange::Reset {
                keys: vec!["hold_time"]
            })
        );
        wait_until(
            "FRR saw Other Configuration Change",
            SESSION_TIMEOUT,
            POLL,
            || {
                Ok(router
                    .last_notification(speaker)?
                    .contains("Cease/Other Configuration Change"))
            },
        )
        .map_err(|e| fail(&e))?;
        wait_until(
            "FRR re-established with the route",
            SESSION_TIMEOUT,
            POLL,
            up_with_route,
        )
        .map_err(|e| fail(&e))?;

        let mut none = dspec30.clone();
        none.peers.clear();
        let report = reconfigure(sp.handle(), config(&none))?;
        assert_eq!(report.plan.peer("rtr0"), Some(&PeerChange::Removed));
        wait_until("FRR saw Peer De-configured", SESSION_TIMEOUT, POLL, || {
            Ok(router
                .last_notification(speaker)?
                .contains("Cease/Peer De-configured"))
        })
        .map_err(|e| fail(&e))?;
        wait_until("route gone from FRR", SESSION_TIMEOUT, POLL, || {
            Ok(router.route(prefix)?.is_none())
        })
        .map_err(|e| fail(&e))?;
        assert!(sp.handle().peer_states().is_empty());
        Ok(())
    })
}
