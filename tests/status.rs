//! `ipvs-herald status` and `status --json` against the real daemon with a known state: the
//! daemon runs in a network namespace with a procfs-backed fake IPVS table and one BGP session
//! to BIRD in another namespace.
//!
//! - `web` (203.0.113.10, TCP :80, 2 of 2 destinations healthy) is announced, then drained
//!   with `ipvs-herald drain web --time 0s`;
//! - `api` (203.0.113.20, TCP :443, 1 of 3 healthy, `pool.down_count = 2`) stays withdrawn,
//!   below its threshold, until the maintenance file names it;
//! - the peer `rt` is Established.
//!
//! The table must show each group's phase as its second column, the services under each group
//! against the thresholds and the peer; the JSON must parse as a `StatusReport` of this
//! version's schema with the same facts. Needs root (namespaces); BIRD is installed by
//! `tests/deps.sh` when missing; the test fails, never skips, if that is impossible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::herald_world::{
    wait_until, write_atomic, Bird, DirectorConfig, FakeIpvs, Herald, TResult, World,
};
use herald_shared::status::{DrainSource, GroupPhase, StatusReport, SCHEMA_VERSION};
use std::net::Ipv4Addr;
use std::time::Duration;

const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const WEB: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const API: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
const POLL: Duration = Duration::from_millis(100);
const SETUP: Duration = Duration::from_secs(30);

/// The fake `/proc/net/ip_vs`: web with two healthy destinations, api with one of three.
fn ip_vs_table() -> String {
    let mut t = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
    );
    let services: [(Ipv4Addr, u16, &[i32]); 2] = [(WEB, 80, &[1, 1]), (API, 443, &[1, 0, 0])];
    for (vip, port, weights) in services {
        t.push_str(&format!("TCP  {:08X}:{port:04X} rr \n", u32::from(vip)));
        for (i, w) in weights.iter().enumerate() {
            let real = Ipv4Addr::new(198, 51, 100, 1 + i as u8);
            t.push_str(&format!(
                "  -> {:08X}:{port:04X}      Route   {w:<6} 0          0         \n",
                u32::from(real)
            ));
        }
    }
    t
}

struct Rig {
    herald: Herald,
    bird: Bird,
    cfg: DirectorConfig,
    _w: World,
}

impl Rig {
    fn new() -> TResult<Self> {
        let mut w = World::new("status", "hst")?;
        let d = w.netns("d")?;
        let r = w.netns("r")?;
        w.veth(&d, "eth0", &r, "eth0")?;
        w.addr(&d, "eth0", &format!("{DIRECTOR}/24"))?;
        w.addr(&r, "eth0", &format!("{ROUTER}/24"))?;
        // vip_address = "require": both VIPs are on the director's lo.
        w.addr(&d, "lo", &format!("{WEB}/32"))?;
        w.addr(&d, "lo", &format!("{API}/32"))?;
        let cfg = DirectorConfig::new(w.subdir("d1")?, DIRECTOR, ROUTER, WEB);
        let bird = Bird::start(
            &r,
            &w.subdir("bird")?,
            &format!(
                "router id {ROUTER};\nprotocol device {{}}\nprotocol bgp d1 {{\n  local {ROUTER} as 65000;\n  neighbor {DIRECTOR} as 65001;\n  passive on;\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n"
            ),
        )?;
        FakeIpvs::new(cfg.procfs_root())?;
        write_atomic(&cfg.procfs_root().join("net/ip_vs"), &ip_vs_table())?;
        let config = format!(
            "{}\n[[announcer.vip_groups]]\nname = \"api\"\nprefixes = [\"{API}/32\"]\ninterval = \"200ms\"\nrise = 2\nfall = 2\npool = {{ down_count = 2, up_count = 2 }}\n",
            cfg.render()
        );
        let path = cfg.dir.join("herald.toml");
        write_atomic(&path, &config)?;
        let herald = Herald::new(
            "ipvs-herald",
            &d,
            path,
            cfg.dir.join("herald.log"),
            "127.0.0.1:9639",
        )
        .env("NO_COLOR", "1");
        Ok(Self {
            herald,
            bird,
            cfg,
            _w: w,
        })
    }

    fn report(&self) -> TResult<StatusReport> {
        let text = self.herald.ctl(&["status", "--json"])?;
        serde_json::from_str(&text).map_err(|e| format!("status --json: {e}:\n{text}"))
    }

    fn run(&mut self) -> TResult<()> {
        self.herald.start()?;
        wait_until("web's route at the router", SETUP, POLL, || {
            self.bird.has_route("d1", &format!("{WEB}/32"))
        })?;
        let r = self.report()?;
        assert_eq!(r.schema, SCHEMA_VERSION);
        let peer = &r.peers[0];
        assert_eq!(
            (
                peer.name.as_str(),
                peer.address.as_str(),
                peer.state.as_str()
            ),
            ("rt", "192.0.2.1", "established"),
            "{r:#?}"
        );
        assert!(
            peer.uptime_seconds.is_some() && peer.bfd.is_none(),
            "{peer:?}"
        );
        assert_eq!(peer.prefixes_sent, 1, "web only: {peer:?}");

        self.herald.ctl(&["drain", "web", "--time", "0s"])?;
        wait_until("web drained", SETUP, POLL, || {
            Ok(self.report()?.groups[0].phase == GroupPhase::Drained)
        })?;
        wait_until("web's route gone from the router", SETUP, POLL, || {
            Ok(!self.bird.has_route("d1", &format!("{WEB}/32"))?)
        })?;

        // The table: groups, services under each, the peer.
        let text = self.herald.ctl(&["status"])?;
        let lines: Vec<&str> = text.lines().collect();
        let columns = |first: &str| -> Vec<String> {
            lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(first))
                .unwrap_or_else(|| panic!("no line for {first}:\n{text}"))
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            columns("web"),
            ["web", "drained", "up", "admin", "203.0.113.10/32"],
            "{text}"
        );
        assert_eq!(
            columns("api"),
            ["api", "withdrawn", "down", "-", "203.0.113.20/32"],
            "{text}"
        );
        let services: Vec<Vec<&str>> = lines
            .iter()
            .filter(|l| l.trim_start().starts_with("TCP "))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            services,
            [
                ["TCP", "203.0.113.10:80", "2", "2", "1", "1", "up"],
                ["TCP", "203.0.113.20:443", "1", "3", "2", "2", "down"]
            ],
            "{text}"
        );
        assert!(
            text.contains("    last transition: announced -> drained, ")
                && text.contains(": drained by ipvs-herald drain\n")
                && text.contains("    reason: drained by `ipvs-herald drain web`")
                && text.contains(
                    "    reason: TCP 203.0.113.20:443: 1 of 3 destinations healthy, below the pool threshold"
                ),
            "{text}"
        );
        let peer = columns("rt");
        assert_eq!(peer[..3], ["rt", "192.0.2.1", "established"], "{text}");
        assert_eq!(peer[4..6], ["0", "-"], "prefixes sent, BFD: {text}");

        // The JSON: the same facts, typed.
        let r = self.report()?;
        assert_eq!(r.schema, SCHEMA_VERSION);
        let (web, api) = (&r.groups[0], &r.groups[1]);
        assert_eq!((web.name.as_str(), api.name.as_str()), ("web", "api"));
        assert_eq!(web.drained_by, [DrainSource::Admin]);
        let t = web.last_transition.as_ref().unwrap();
        assert_eq!((t.from, t.to), (GroupPhase::Announced, GroupPhase::Drained));
        assert_eq!(t.reason, "drained by ipvs-herald drain");
        assert_eq!(
            (api.phase, api.health.as_str()),
            (GroupPhase::Withdrawn, "down")
        );
        let s = &api.services[0];
        assert_eq!(
            (
                s.service.as_str(),
                s.healthy,
                s.configured,
                s.down_threshold,
                s.up_threshold,
                s.up
            ),
            ("TCP 203.0.113.20:443", 1, 3, 2, 2, false)
        );
        assert_eq!(r.peers[0].prefixes_sent, 0);

        // The maintenance file names api: drained by it.
        write_atomic(&self.cfg.dir.join("maintenance"), "api\n")?;
        wait_until("api drained by the maintenance file", SETUP, POLL, || {
            let api = &self.report()?.groups[1];
            Ok(
                api.phase == GroupPhase::Drained
                    && api.drained_by == [DrainSource::MaintenanceFile],
            )
        })?;
        Ok(())
    }
}

#[test]
fn status_table_and_json_show_the_known_state() {
    let mut rig = match Rig::new() {
        Ok(r) => r,
        Err(e) => panic!("status rig setup failed (needs root and ip netns): {e}"),
    };
    if let Err(e) = rig.run() {
        panic!("{e}\n{}\n{}", rig.herald.logs(), rig.bird.logs());
    }
}
