//! BGP interop beyond `interop.rs`'s session suite, against real BIRD 2, FRR and GoBGP in
//! network namespaces (the `support` harness):
//!
//! - `asn4_*`: 4-octet AS numbers (RFC 6793). Both sides 4-octet (4200000001 / 4200000002); a
//!   4-octet speaker with a 2-octet router AS (our OPEN's My AS is AS_TRANS 23456); a 2-octet
//!   speaker with a 4-octet router. Each router's RIB must show the 4-octet AS exactly in the
//!   AS path. FRR refuses an OPEN whose 4-octet AS capability is above 65535 unless My AS is
//!   AS_TRANS, so its 4-octet-speaker sessions also prove the OPEN header. Not covered here:
//!   a 2-octet-only router (AS_TRANS in AS_PATH plus AS4_PATH, unit-tested in
//!   `bgp::packet::update`): BIRD's `enable as4 off` still reads our AS4 capability, so it
//!   accepts neither 23456 nor (config error) 4200000001 as our AS, and FRR and GoBGP always
//!   speak AS4.
//! - `attrs_*`: the whole announcer (a VIP group's control loop on a test IPVS source, the BGP
//!   sink, our speaker) with per-state attributes including extended communities (RFC 4360:
//!   route target and route origin in the two-octet-AS, IPv4-address and four-octet-AS forms)
//!   and `down_action = "announce"`: the pool goes down, the route stays with the `down`
//!   attributes and the router shows them; the pool comes back, the `up` ones return.
//! - `collision_*`: a connection collision (RFC 4271 §6.8) made certain with BIRD and with FRR.
//!   An nftables rule in the router's namespace drops the data of our outgoing connection (not
//!   its handshake), so the router never reads our OPEN while we read its OPEN and wait in
//!   OpenConfirm; the router's own connection (BIRD: after its `connect delay time`; FRR: its
//!   attempts dropped in our namespace until then) then reaches our listener and collides. The
//!   connection of the higher BGP identifier must survive, alone, and our collision counter
//!   must say so (the test fails if no collision was counted).
//!
//! Run as root: `cargo test -p herald-announcer --test integration interop_attrs::`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use herald_announcer::bgp::{RouteAttrs, State};
use herald_announcer::group_config::VipGroupConfig;
use ipnet::IpNet;

use support::announcer::AnnouncerDriver;
use support::driver::{Driver, DriverPeer, DriverSpec};
use support::herald::{config, HeraldDriver};
use support::lab::{Lab, ROUTER_V4, SPEAKER_V4};
use support::routers::{Kind, Router, RouterSpec};
use support::routes::{community, Rib, RouteView};
use support::{err, stays_false, wait_until, TResult};

const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);
/// Hold time of these sessions: long enough that a loaded test machine never loses one.
const HOLD: u16 = 30;

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("test prefix {s:?}: {e}"))
}

fn router_addr() -> IpAddr {
    IpAddr::V4(ROUTER_V4)
}

fn speaker_addr() -> IpAddr {
    IpAddr::V4(SPEAKER_V4)
}

/// Our side of a single IPv4 session to the router.
fn dspec(local_as: u32, remote_as: u32) -> DriverSpec {
    DriverSpec {
        local_as,
        peers: vec![DriverPeer {
            address: router_addr(),
            remote_as,
            hold: HOLD,
            md5: None,
            passive: false,
            ttl_security: None,
        }],
    }
}

/// The router's RIB of both families.
fn rib(router: &Router) -> TResult<Rib> {
    let mut r = router.rib(false)?;
    r.extend(router.rib(true)?);
    Ok(r)
}

/// Waits until the router holds exactly `want` (by prefix) and returns its view.
fn wait_prefixes(router: &Router, want: &[IpNet]) -> TResult<Rib> {
    let mut want = want.to_vec();
    want.sort();
    let mut last = Rib::new();
    wait_until(
        &format!("router RIB == {want:?}"),
        ROUTE_TIMEOUT,
        POLL,
        || {
            last = rib(router)?;
            Ok(last.keys().copied().collect::<Vec<_>>() == want)
        },
    )
    .map_err(|e| format!("{e}; router holds {:?}", last.keys().collect::<Vec<_>>()))?;
    Ok(last)
}

fn router_up(router: &Router) -> TResult<()> {
    wait_until(
        &format!(
            "{} session Established (router side)",
            router.spec.kind.name()
        ),
        SESSION_TIMEOUT,
        POLL,
        || router.established(speaker_addr()),
    )
}

/// Runs a test body; on failure panics with the error (which carries the log tails).
fn run(test: impl FnOnce() -> TResult<()>) {
    if let Err(e) = test() {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------- 4-octet AS numbers

/// How the router is set up for a 4-octet AS test.
#[derive(Debug, Clone, Copy)]
struct AsCase {
    /// Our AS.
    local_as: u32,
    /// The router's AS.
    router_as: u32,
}

/// Session up; an IPv4 route with one prepend and an IPv6 route without arrive with our AS,
/// exactly, in their AS paths; a withdrawal is seen.
fn asn4(kind: Kind, case: AsCase) {
    run(|| {
        let lab = Lab::new(&format!("asn4-{}", kind.name()))?;
        lab.check()?;
        let mut rspec = RouterSpec::new(kind, case.router_as, case.local_as);
        rspec.hold = HOLD;
        let router = Router::start(&lab, rspec)?;
        let driver = HeraldDriver::start(&lab, &dspec(case.local_as, case.router_as))?;
        let fail = |e: &dyn std::fmt::Display| format!("{e}\n{}\n{}", router.logs(), driver.logs());
        let body = || -> TResult<()> {
            support::driver::wait_established(&driver, router_addr(), SESSION_TIMEOUT)?;
            router_up(&router)?;
            let (p4, p6) = (net("198.51.100.0/24"), net("2001:db8:100::/48"));
            let prepended = RouteAttrs {
                as_path_prepend: 1,
                ..RouteAttrs::default()
            };
            driver.handle().announce(p4, prepended);
            driver.handle().announce(p6, RouteAttrs::default());
            let got = wait_prefixes(&router, &[p4, p6])?;
            for (p, want) in [
                (p4, vec![case.local_as, case.local_as]),
                (p6, vec![case.local_as]),
            ] {
                let r = got.get(&p).ok_or_else(|| format!("{p} missing"))?;
                if r.as_path != want {
                    return err(format!(
                        "{p}: the router shows AS path {:?}, expected {want:?}",
                        r.as_path
                    ));
                }
            }
            router_received_as4_capability(&router, case.local_as)?;
            driver.handle().withdraw(p4);
            wait_prefixes(&router, &[p6])?;
            Ok(())
        };
        body().map_err(|e| fail(&e).into())
    })
}

/// The router's own account of the session: it received our 4-octet AS capability (with our
/// AS in it, where the router shows the value).
fn router_received_as4_capability(router: &Router, local_as: u32) -> TResult<()> {
    let peer = speaker_addr().to_string();
    match router.spec.kind {
        Kind::Bird => {
            let out = router.birdc(&["show", "protocols", "all", "spk4"])?;
            let session = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("Session:"))
                .ok_or_else(|| format!("birdc shows no Session line:\n{out}"))?;
            let neighbor_as = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("Neighbor AS:"))
                .map(str::trim);
            if !session.contains("AS4") || neighbor_as != Some(&local_as.to_string()) {
                return err(format!(
                    "BIRD's session is not a 4-octet one with AS {local_as}:\n{out}"
                ));
            }
        }
        Kind::Frr => {
            let out = router.vtysh(&format!("show bgp neighbors {peer} json"))?;
            let v: serde_json::Value = serde_json::from_str(&out)?;
            let n = v.get(&peer).ok_or("FRR shows no such neighbor")?;
            let cap = n.pointer("/neighborCapabilities/4byteAs");
            let remote_as = n.get("remoteAs").and_then(serde_json::Value::as_u64);
            if cap.and_then(serde_json::Value::as_str) != Some("advertisedAndReceived")
                || remote_as != Some(u64::from(local_as))
            {
                return err(format!(
                    "FRR: 4byteAs {cap:?}, remoteAs {remote_as:?} (expected advertisedAndReceived, {local_as})"
                ));
            }
        }
        Kind::Gobgp => {
            let out = router.gobgp(&["neighbor", &peer, "-j"])?;
            let v: serde_json::Value = serde_json::from_str(&out)?;
            let caps = v
                .pointer("/state/remote_cap")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| {
                    format!("gobgp neighbor JSON without state.remote_cap: {out:.600}")
                })?;
            // Protobuf `Any`s: the capability's message (field 1, varint AS) in base64.
            let as4 = caps
                .iter()
                .find(|c| {
                    c.get("type_url").and_then(serde_json::Value::as_str)
                        == Some("type.googleapis.com/apipb.FourOctetASNCapability")
                })
                .ok_or_else(|| format!("GoBGP received no 4-octet AS capability: {caps:?}"))?;
            let want = base64(&protobuf_u32_field1(local_as));
            if as4.get("value").and_then(serde_json::Value::as_str) != Some(want.as_str()) {
                return err(format!(
                    "GoBGP's 4-octet AS capability from us is {as4}, expected value {want:?} (AS {local_as})"
                ));
            }
        }
    }
    Ok(())
}

macro_rules! asn4_suite {
    ($modname:ident, $kind:expr) => {
        mod $modname {
            use super::*;

            #[test]
            fn both_sides_four_octet() {
                asn4(
                    $kind,
                    AsCase {
                        local_as: 4_200_000_001,
                        router_as: 4_200_000_002,
                    },
                );
            }

            #[test]
            fn four_octet_speaker_two_octet_router_as() {
                asn4(
                    $kind,
                    AsCase {
                        local_as: 4_200_000_001,
                        router_as: 65001,
                    },
                );
            }

            #[test]
            fn two_octet_speaker_four_octet_router_as() {
                asn4(
                    $kind,
                    AsCase {
                        local_as: 65000,
                        router_as: 4_200_000_002,
                    },
                );
            }
        }
    };
}

asn4_suite!(asn4_bird, Kind::Bird);
asn4_suite!(asn4_frr, Kind::Frr);
asn4_suite!(asn4_gobgp, Kind::Gobgp);

/// A protobuf message with one varint field number 1.
fn protobuf_u32_field1(mut n: u32) -> Vec<u8> {
    let mut out = vec![0x08];
    loop {
        let low = u8::try_from(n & 0x7f).unwrap();
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    A[usize::try_from((n >> (18 - 6 * i)) & 63).unwrap()],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn gobgp_capability_encoding_helpers() {
    assert_eq!(base64(&protobuf_u32_field1(4_200_000_001)), "CIHU29IP");
    assert_eq!(base64(&protobuf_u32_field1(65000)), "COj7Aw==");
    assert_eq!(base64(b"ab"), "YWI=");
}

// ---------------------------------------------------------------- per-state attributes

const UP_EXT: [&str; 3] = ["rt:65000:100", "ro:192.0.2.1:7", "rt:4200000001:5"];
const DOWN_EXT: [&str; 2] = ["ro:65000:4294967295", "rt:198.51.100.9:65535"];

/// The VIP group of the attribute tests: two prefixes, fast checks, no hold-down, and
/// `down_action = "announce"` with distinct `up` and `down` attributes.
fn attrs_group() -> VipGroupConfig {
    #[derive(serde::Deserialize)]
    struct W {
        g: VipGroupConfig,
    }
    let text = format!(
        r#"[g]
name = "web"
prefixes = ["203.0.113.10/32", "2001:db8:10::10/128"]
vip_address = "ignore"
interval = "100ms"
rise = 1
fall = 1
hold_down = "0s"
down_action = "announce"
up = {{ med = 10, communities = ["65000:1"], extended_communities = {UP_EXT:?} }}
down = {{ med = 1000, communities = ["65000:666"], extended_communities = {DOWN_EXT:?} }}
"#
    );
    let w: W = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    w.g.validate().unwrap_or_else(|e| panic!("{e}"));
    w.g
}

/// What the router must show for a state's attributes.
#[derive(Debug)]
struct Expect {
    med: u32,
    communities: Vec<u32>,
    ext: Vec<String>,
}

fn expect(med: u32, comm: u32, ext: &[&str]) -> Expect {
    let mut e: Vec<String> = ext.iter().map(|s| (*s).to_owned()).collect();
    e.sort();
    Expect {
        med,
        communities: vec![comm],
        ext: e,
    }
}

fn mismatch(r: &RouteView, e: &Expect) -> Option<String> {
    let mut p = Vec::new();
    if r.med != Some(e.med) {
        p.push(format!("MED {:?}, expected {}", r.med, e.med));
    }
    if r.communities != e.communities {
        p.push(format!(
            "communities {:?}, expected {:?}",
            r.communities, e.communities
        ));
    }
    if r.ext_communities != e.ext {
        p.push(format!(
            "extended communities {:?}, expected {:?}",
            r.ext_communities, e.ext
        ));
    }
    (!p.is_empty()).then(|| format!("{}: {}", r.prefix, p.join("; ")))
}

/// Waits until every prefix is in the router's RIB with `e`'s attributes; with
/// `never_missing`, a poll that finds a prefix gone fails at once (the route must stay).
fn wait_attrs(router: &Router, prefixes: &[IpNet], e: &Expect, never_missing: bool) -> TResult<()> {
    let mut last = String::from("nothing polled yet");
    let mut missing = None;
    let res = wait_until(
        &format!("the router shows {e:?} on {prefixes:?}"),
        ROUTE_TIMEOUT,
        POLL,
        || {
            let r = rib(router)?;
            let mut bad = Vec::new();
            for p in prefixes {
                match r.get(p) {
                    None => {
                        if never_missing {
                            missing = Some(*p);
                            return Ok(true);
                        }
                        bad.push(format!("{p} missing"));
                    }
                    Some(v) => bad.extend(mismatch(v, e)),
                }
            }
            last = bad.join("; ");
            Ok(bad.is_empty())
        },
    );
    if let Some(p) = missing {
        return err(format!(
            "{p} disappeared from the router: down_action = \"announce\" must keep it announced"
        ));
    }
    res.map_err(|x| format!("{x}; last mismatch: {last}").into())
}

/// BIRD's count of withdrawals received from us (import statistics).
fn bird_withdraws(router: &Router) -> TResult<u64> {
    let out = router.birdc(&["show", "protocols", "all", "spk4"])?;
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Import withdraws:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("BIRD shows no import withdraw statistics:\n{out}").into())
}

/// The announcer with the `attrs_group`: `up` attributes (extended communities included) at
/// the router; the pool goes down and the routes stay, with the `down` attributes; the pool
/// comes back and the `up` attributes return. No withdrawal on the way (BIRD counts them).
fn attrs_down_action_announce(kind: Kind) {
    run(|| {
        let lab = Lab::new(&format!("attrs-{}", kind.name()))?;
        lab.check()?;
        let mut rspec = RouterSpec::new(kind, 65001, 65000);
        rspec.hold = HOLD;
        let router = Router::start(&lab, rspec)?;
        let group = attrs_group();
        let prefixes = group.prefixes.clone();
        let ann = AnnouncerDriver::start(&lab, &dspec(65000, 65001), vec![group], {
            prefixes.iter().map(IpNet::addr).collect()
        })?;
        let fail = |e: &dyn std::fmt::Display| format!("{e}\n{}\n{}", router.logs(), ann.logs());
        let body = || -> TResult<()> {
            wait_until(
                "announcer session Established",
                SESSION_TIMEOUT,
                POLL,
                || Ok(ann.established()),
            )?;
            router_up(&router)?;
            let up = expect(10, community(65000, 1), &UP_EXT);
            let down = expect(1000, community(65000, 666), &DOWN_EXT);
            wait_attrs(&router, &prefixes, &up, false)?;
            let withdraws = (kind == Kind::Bird)
                .then(|| bird_withdraws(&router))
                .transpose()?;

            ann.set_healthy(false);
            wait_until("group phase announced_down", ROUTE_TIMEOUT, POLL, || {
                Ok(ann.phase("web")?.as_deref() == Some("announced_down"))
            })?;
            wait_attrs(&router, &prefixes, &down, true)?;
            // Watch a while: still announced, still with the down attributes.
            stays_false(
                "the down-state route changed or left",
                Duration::from_secs(2),
                POLL,
                || {
                    let r = rib(&router)?;
                    Ok(prefixes
                        .iter()
                        .any(|p| r.get(p).is_none_or(|v| mismatch(v, &down).is_some())))
                },
            )?;

            ann.set_healthy(true);
            wait_until("group phase announced", ROUTE_TIMEOUT, POLL, || {
                Ok(ann.phase("web")?.as_deref() == Some("announced"))
            })?;
            wait_attrs(&router, &prefixes, &up, true)?;
            if let Some(before) = withdraws {
                let after = bird_withdraws(&router)?;
                if after != before {
                    return err(format!(
                        "BIRD received {} withdrawals while the group went down and up with \
                         down_action = \"announce\"",
                        after - before
                    ));
                }
            }
            Ok(())
        };
        body().map_err(|e| fail(&e).into())
    })
}

#[test]
fn attrs_bird_extended_communities_and_down_action_announce() {
    attrs_down_action_announce(Kind::Bird);
}

#[test]
fn attrs_frr_extended_communities_and_down_action_announce() {
    attrs_down_action_announce(Kind::Frr);
}

#[test]
fn attrs_gobgp_extended_communities_and_down_action_announce() {
    attrs_down_action_announce(Kind::Gobgp);
}

// ---------------------------------------------------------------- connection collision

/// An nftables table (`table ip NAME`, one input-chain rule) that drops what the rule matches
/// in one namespace, counting it; deleting the table (also on drop) lets the kernel's
/// retransmissions through.
struct NftDrop<'a> {
    ns: &'a support::lab::Netns,
    table: &'static str,
    active: bool,
}

impl<'a> NftDrop<'a> {
    fn install(ns: &'a support::lab::Netns, table: &'static str, rule: &[&str]) -> TResult<Self> {
        herald_test_support::ensure(&["nft"]).map_err(|e| e.to_string())?;
        let hold = Self {
            ns,
            table,
            active: true,
        };
        let chain = "{ type filter hook input priority 0; policy accept; }";
        ns.exec("nft", &["add", "table", "ip", table])?;
        ns.exec("nft", &["add", "chain", "ip", table, "input", chain])?;
        let mut add = vec!["add", "rule", "ip", table, "input"];
        add.extend_from_slice(rule);
        add.extend_from_slice(&["counter", "drop"]);
        ns.exec("nft", &add)?;
        Ok(hold)
    }

    /// The data of our outgoing connection (speaker → router port 179), in the router's
    /// namespace: its handshake completes but the router never reads our OPEN. Segments of at
    /// most 64 IP bytes (SYN, ACK, FIN with options) pass; the smallest BGP message (19 bytes)
    /// makes a segment of at least 71.
    fn our_open(lab: &'a Lab) -> TResult<Self> {
        let (spk, rtr) = (SPEAKER_V4.to_string(), ROUTER_V4.to_string());
        Self::install(
            &lab.router,
            "heraldholdopen",
            &[
                "ip", "saddr", &spk, "ip", "daddr", &rtr, "tcp", "dport", "179", "ip", "length",
                ">", "64",
            ],
        )
    }

    /// The router's connection attempts to our listener, in the speaker's namespace.
    fn their_connect(lab: &'a Lab) -> TResult<Self> {
        let (spk, rtr) = (SPEAKER_V4.to_string(), ROUTER_V4.to_string());
        Self::install(
            &lab.speaker,
            "heraldholdsyn",
            &[
                "ip", "saddr", &rtr, "ip", "daddr", &spk, "tcp", "dport", "179",
            ],
        )
    }

    /// Packets dropped so far.
    fn dropped(&self) -> TResult<u64> {
        let out = self.ns.exec("nft", &["list", "table", "ip", self.table])?;
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no packet counter in:\n{out}").into())
    }

    fn remove(&mut self) -> TResult<()> {
        if self.active {
            self.ns
                .exec("nft", &["delete", "table", "ip", self.table])?;
            self.active = false;
        }
        Ok(())
    }
}

impl Drop for NftDrop<'_> {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// `ipvs_herald_bgp_connection_collisions_total` of peer `rtr0` with this `kept` label.
fn collisions(driver: &HeraldDriver, kept: &str) -> TResult<u64> {
    let text = driver.metrics_text()?;
    let key =
        format!("ipvs_herald_bgp_connection_collisions_total{{peer=\"rtr0\",kept=\"{kept}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|n| n.trim().parse::<u64>())
        .transpose()?
        .unwrap_or(0))
}

/// The BGP connections (port 179) the speaker's namespace has Established, as
/// (local address:port, peer address:port).
fn bgp_connections(lab: &Lab) -> TResult<Vec<(String, String)>> {
    let ss = lab.speaker.exec("ss", &["-tnH", "state", "established"])?;
    Ok(ss
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // Recv-Q Send-Q Local Peer
            let (local, peer) = (cols.get(2)?, cols.get(3)?);
            (local.ends_with(":179") || peer.ends_with(":179"))
                .then(|| ((*local).to_owned(), (*peer).to_owned()))
        })
        .collect())
}

/// A certain collision with `kind` (identifier 192.0.2.2). With `speaker_id` above it our
/// connection must survive, below it the router's; either way exactly one connection is left,
/// stays, and carries a route. BIRD's own connection waits for its `connect delay time`; FRR
/// connects at once, so its attempts are dropped in our namespace until we wait in
/// OpenConfirm.
fn collision(kind: Kind, speaker_id: Ipv4Addr) {
    run(|| {
        let ours_wins = u32::from(speaker_id) > u32::from(ROUTER_V4);
        let (kept, lost) = if ours_wins {
            ("local", "remote")
        } else {
            ("remote", "local")
        };
        let lab = Lab::new(&format!("collision-{}-{kept}", kind.name()))?;
        lab.check()?;
        let mut hold = NftDrop::our_open(&lab)?;
        let mut syn_hold = match kind {
            Kind::Bird => None,
            _ => Some(NftDrop::their_connect(&lab)?),
        };
        let mut rspec = RouterSpec::new(kind, 65001, 65000);
        rspec.hold = HOLD;
        if kind == Kind::Bird {
            // BIRD connects 5 s after its start: by then our connection waits in OpenConfirm.
            rspec.connect_delay = Some(5);
        }
        let router = Router::start(&lab, rspec)?;
        let spec = dspec(65000, 65001);
        let mut cfg = config(&spec);
        cfg.router_id = speaker_id;
        cfg.peers[0].accept_incoming = true;
        let driver = HeraldDriver::start_with_config(&lab, &spec, cfg)?;
        let fail = |e: &dyn std::fmt::Display| format!("{e}\n{}\n{}", router.logs(), driver.logs());
        let mut body = || -> TResult<()> {
            let state = || -> TResult<State> {
                Ok(driver
                    .handle()
                    .peer_states()
                    .first()
                    .ok_or("no peer status")?
                    .state)
            };
            let t0 = Instant::now();
            // Our connection: BIRD's OPEN read, ours held back.
            wait_until(
                "our session in OpenConfirm",
                Duration::from_secs(10),
                Duration::from_millis(50),
                || Ok(state()? == State::OpenConfirm),
            )?;
            if collisions(&driver, "local")? + collisions(&driver, "remote")? != 0 {
                return err("a collision was counted before the router connected");
            }
            let before = t0.elapsed();
            if let Some(h) = syn_hold.as_mut() {
                // Wait for the router's first connection attempt (FRR starts its connect timer
                // on its own schedule, later on a loaded machine), then let it through: the
                // kernel's SYN retransmission brings it in while ours waits in OpenConfirm.
                wait_until(
                    "the router's connection attempt held back",
                    Duration::from_secs(20),
                    Duration::from_millis(50),
                    || Ok(h.dropped()? > 0),
                )?;
                h.remove()?;
            }
            // The router's connection arrives and collides.
            wait_until(
                &format!("a collision counted with kept=\"{kept}\""),
                // A SYN retransmission comes at most 16 s after the previous one (the kernel's
                // backoff at the fifth try), so this outlasts one.
                Duration::from_secs(30),
                Duration::from_millis(50),
                || Ok(collisions(&driver, kept)? >= 1),
            )?;
            eprintln!(
                "collision: OpenConfirm after {:.1}s, collision after {:.1}s, {} segments of our \
                 connection held",
                before.as_secs_f64(),
                t0.elapsed().as_secs_f64(),
                hold.dropped()?
            );
            if hold.dropped()? == 0 {
                return err("the filter held nothing back: no OPEN of ours was delayed");
            }
            if !ours_wins {
                // The session moves to the router's connection, which the filter does not touch.
                support::driver::wait_established(&driver, router_addr(), SESSION_TIMEOUT)?;
                router_up(&router)?;
            }
            // Let our held segments through: the connection we kept completes (or the one we
            // dumped delivers its Cease and goes).
            hold.remove()?;
            support::driver::wait_established(&driver, router_addr(), SESSION_TIMEOUT)?;
            router_up(&router)?;
            let p = net("203.0.113.77/32");
            driver.handle().announce(p, RouteAttrs::default());
            wait_prefixes(&router, &[p])?;
            // One connection, and it stays.
            let mut conns = Vec::new();
            wait_until("exactly one BGP connection", SESSION_TIMEOUT, POLL, || {
                conns = bgp_connections(&lab)?;
                Ok(conns.len() == 1)
            })
            .map_err(|e| format!("{e}; connections: {conns:?}"))?;
            stays_false(
                "a second connection or a flap",
                Duration::from_secs(4),
                POLL,
                || {
                    Ok(bgp_connections(&lab)? != conns
                        || !driver.established(router_addr())?
                        || !router.established(speaker_addr())?)
                },
            )?;
            let (local, _) = &conns[0];
            let router_opened = local.ends_with(":179");
            if router_opened == ours_wins {
                return err(format!(
                    "the surviving connection {conns:?} was opened by {}, but the higher BGP \
                     identifier is {}",
                    if router_opened { "the router" } else { "us" },
                    if ours_wins { "ours" } else { "the router's" }
                ));
            }
            if collisions(&driver, lost)? != 0 {
                return err(format!(
                    "a collision was also resolved with kept=\"{lost}\": {}",
                    driver.metrics_text()?
                ));
            }
            Ok(())
        };
        body().map_err(|e| fail(&e).into())
    })
}

#[test]
fn collision_bird_higher_identifier_keeps_its_connection() {
    // Ours 192.0.2.1 < BIRD's 192.0.2.2.
    collision(Kind::Bird, SPEAKER_V4);
}

#[test]
fn collision_bird_speaker_higher_identifier_keeps_its_connection() {
    collision(Kind::Bird, Ipv4Addr::new(203, 0, 113, 254));
}

#[test]
fn collision_frr_higher_identifier_keeps_its_connection() {
    collision(Kind::Frr, SPEAKER_V4);
}

#[test]
fn collision_frr_speaker_higher_identifier_keeps_its_connection() {
    collision(Kind::Frr, Ipv4Addr::new(203, 0, 113, 254));
}
