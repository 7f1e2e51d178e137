//! Proves the kernel route backend end to end against real routing daemons: two network
//! namespaces ("director" and "router") joined by a veth link (192.0.2.0/24), OSPFv2 and
//! OSPFv3 between them, the shipped `config/bird-ospf.conf` / `config/frr-ospf.conf` verbatim on
//! the director, and the library's `KernelBackend` driving the director's kernel. Each VIP must
//! show up in the router's daemon and kernel after `announce`, and be gone after `withdraw`.
//!
//! * `bird_director_frr_router`: BIRD director, FRR router; address mode (IPv4 + IPv6), route
//!   mode (IPv4 + IPv6), start-up reconciliation of stale state.
//! * `frr_director_bird_router`: FRR director, BIRD router; address mode (IPv4 + IPv6), route
//!   mode (IPv4 in table 100, IPv6 in the main table), reconciliation.
//! * `bird_director_bgp_frr_router`, `frr_director_bgp_bird_router`: the same scenario for sites
//!   whose routing daemon speaks BGP itself (`config/bird-bgp-redistribute.conf`,
//!   `config/frr-bgp-redistribute.conf` verbatim on the director, eBGP over IPv4 and IPv6).
//!
//! Needs root; installs bird2/frr when missing and fails if they are still missing.
//! Run: `cargo test -p herald-announcer --test integration ospf::`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::ospf_support;

use std::time::Duration;

use herald_announcer::sink::kernel::{KernelBackend, KernelConfig, KernelMode, Outcome};
use ipnet::IpNet;
use ospf_support::{
    link, logs, require_daemons, require_root, unique_tag, wait_for, Bird, Frr, Netns, TempDir,
};

const VIP4: &str = "203.0.113.10/32";
const VIP6: &str = "2001:db8::10/128";
const ROUTE_VIP4: &str = "203.0.113.20/32";
const ROUTE_VIP6: &str = "2001:db8::20/128";
const STALE_ADDR4: &str = "203.0.113.98/32";
const STALE_ROUTE4: &str = "203.0.113.99/32";
/// Bound for adjacency and for route propagation (generous: the machine is shared).
const TIMEOUT: Duration = Duration::from_secs(60);

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test prefix {s}: {e}"))
}

fn shipped_config(name: &str) -> String {
    let path = format!("{}/../config/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// The router side, whichever daemon runs it.
trait Router {
    /// Does the router's daemon have a route for `prefix` from `proto` (`ospf`, `bgp`), and its
    /// kernel a route too?
    fn learned(&self, ns: &Netns, prefix: &str, proto: &str) -> bool;
    /// Does the router see `prefix` with route metric / MED `metric`?
    fn has_metric(&self, prefix: &str, metric: u32) -> bool;
    /// Is the route gone from both?
    fn forgot(&self, ns: &Netns, prefix: &str) -> bool;
    fn diag(&self, ns: &Netns) -> String;
}

fn kernel_has(ns: &Netns, prefix: &str) -> bool {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let (ok, out) = ns.try_exec("ip", &[fam, "route", "show", "exact", prefix]);
    ok && !out.trim().is_empty()
}

impl Router for Frr {
    fn learned(&self, ns: &Netns, prefix: &str, proto: &str) -> bool {
        let cmd = if prefix.contains(':') {
            format!("show ipv6 route {prefix} json")
        } else {
            format!("show ip route {prefix} json")
        };
        let (ok, out) = self.try_cmd(&cmd);
        if !ok {
            return false;
        }
        let v: serde_json::Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(_) => return false,
        };
        let in_rib = v
            .get(prefix)
            .and_then(|e| e.as_array())
            .is_some_and(|routes| {
                routes.iter().any(|r| {
                    r.get("protocol")
                        .and_then(|p| p.as_str())
                        .is_some_and(|p| p.starts_with(proto))
                        && r.get("selected").and_then(|s| s.as_bool()) == Some(true)
                        && r.get("installed").and_then(|s| s.as_bool()) == Some(true)
                })
            });
        in_rib && kernel_has(ns, prefix)
    }

    fn has_metric(&self, prefix: &str, metric: u32) -> bool {
        let cmd = if prefix.contains(':') {
            format!("show ipv6 route {prefix} json")
        } else {
            format!("show ip route {prefix} json")
        };
        let (_, out) = self.try_cmd(&cmd);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v.get(prefix)
            .and_then(|e| e.as_array())
            .is_some_and(|routes| {
                routes.iter().any(|r| {
                    r.get("selected").and_then(|s| s.as_bool()) == Some(true)
                        && r.get("metric").and_then(|m| m.as_u64()) == Some(u64::from(metric))
                })
            })
    }

    fn forgot(&self, ns: &Netns, prefix: &str) -> bool {
        let cmd = if prefix.contains(':') {
            format!("show ipv6 route {prefix} json")
        } else {
            format!("show ip route {prefix} json")
        };
        let (ok, out) = self.try_cmd(&cmd);
        ok && !out.contains(prefix) && !kernel_has(ns, prefix)
    }

    fn diag(&self, ns: &Netns) -> String {
        format!(
            "FRR router:\n{}\n{}\n{}\n{}\nrouter kernel:\n{}{}",
            self.try_cmd("show ip ospf neighbor").1,
            self.try_cmd("show ip ospf database").1,
            self.try_cmd("show ip route").1,
            self.try_cmd("show ipv6 route").1,
            ns.try_exec("ip", &["-4", "route"]).1,
            ns.try_exec("ip", &["-6", "route"]).1,
        )
    }
}

impl Router for Bird {
    fn learned(&self, ns: &Netns, prefix: &str, proto: &str) -> bool {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        let (ok, out) = self.try_cmd(&format!("show route {prefix} table {table}"));
        ok && out.contains(prefix.split('/').next().unwrap_or(prefix))
            && out.contains(proto)
            && kernel_has(ns, prefix)
    }

    fn has_metric(&self, prefix: &str, metric: u32) -> bool {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        let (_, out) = self.try_cmd(&format!("show route {prefix} table {table} all"));
        out.contains(&format!("OSPF.metric2: {metric}"))
            || out.contains(&format!("BGP.med: {metric}"))
    }

    fn forgot(&self, ns: &Netns, prefix: &str) -> bool {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        // birdc exits 1 with "Network not found" for an absent prefix.
        let (_, out) = self.try_cmd(&format!("show route {prefix} table {table}"));
        out.contains("Network not found") && !kernel_has(ns, prefix)
    }

    fn diag(&self, ns: &Netns) -> String {
        format!(
            "BIRD router:\n{}\n{}\n{}\nrouter kernel:\n{}{}",
            self.try_cmd("show protocols all").1,
            self.try_cmd("show ospf state all").1,
            self.try_cmd("show route all").1,
            ns.try_exec("ip", &["-4", "route"]).1,
            ns.try_exec("ip", &["-6", "route"]).1,
        )
    }
}

fn director_diag(director: &Netns, extra: String) -> String {
    format!(
        "director kernel:\n{}{}{}{}\n{extra}",
        director.try_exec("ip", &["-d", "addr", "show"]).1,
        director
            .try_exec("ip", &["-4", "route", "show", "table", "all"])
            .1,
        director
            .try_exec("ip", &["-6", "route", "show", "table", "all"])
            .1,
        director.try_exec("ip", &["-s", "link"]).1,
    )
}

fn wait_learned(
    proto: &str,
    r: &dyn Router,
    router: &Netns,
    director: &Netns,
    prefix: &str,
    dir: &TempDir,
    ddiag: &dyn Fn() -> String,
) {
    wait_for(
        &format!("router to learn {prefix}"),
        TIMEOUT,
        || r.learned(router, prefix, proto).then_some(()),
        || {
            format!(
                "{}\n{}\n{}",
                r.diag(router),
                director_diag(director, ddiag()),
                logs(dir)
            )
        },
    );
}

fn wait_forgot(
    r: &dyn Router,
    router: &Netns,
    director: &Netns,
    prefix: &str,
    dir: &TempDir,
    ddiag: &dyn Fn() -> String,
) {
    wait_for(
        &format!("router to forget {prefix}"),
        TIMEOUT,
        || r.forgot(router, prefix).then_some(()),
        || {
            format!(
                "{}\n{}\n{}",
                r.diag(router),
                director_diag(director, ddiag()),
                logs(dir)
            )
        },
    );
}

/// Creates herald0 in the director: a dummy interface, or, when this kernel has no dummy
/// support (the CI host has no modules), an `ifb` device, which also always has carrier.
/// Returns whether it is a dummy. The backend's own dummy creation is covered in
/// tests/ospf_backend.rs.
fn make_vip_interface(director: &Netns) -> bool {
    let (is_dummy, out) = director.try_exec("ip", &["link", "add", "herald0", "type", "dummy"]);
    if !is_dummy {
        eprintln!(
            "note: no dummy interface support in this kernel ({}); using an ifb device as herald0",
            out.trim()
        );
        director.exec("ip", &["link", "add", "herald0", "type", "ifb"]);
    }
    director.exec("ip", &["link", "set", "herald0", "up"]);
    is_dummy
}

/// What differs between the scenarios.
#[derive(Debug, Clone, Copy)]
struct Flavour {
    /// Table for IPv6 VIP routes (FRR 8 imports only IPv4 tables: it uses main, 254).
    v6_route_table: u32,
    /// Protocol the router learns the VIPs from (`ospf`, `bgp`).
    proto: &'static str,
    /// Whether the director's configuration maps the route metric (BIRD snippets do).
    drain_by_metric: bool,
}

/// The common scenario once the daemons run and are adjacent.
fn exercise(
    r: &dyn Router,
    router: &Netns,
    director: &Netns,
    dir: &TempDir,
    ddiag: &dyn Fn() -> String,
    flavour: Flavour,
) {
    let Flavour {
        v6_route_table,
        proto,
        drain_by_metric,
    } = flavour;
    let rt = rt();

    // --- Stale state from a "previous run": an address on herald0 carrying our label and a
    // proto-72 route in table 100. The daemons export them (proving the mark is what the
    // snippets select on), and reconciliation must remove both.
    let is_dummy = make_vip_interface(director);
    director.exec(
        "ip",
        &[
            "addr",
            "add",
            STALE_ADDR4,
            "dev",
            "herald0",
            "label",
            "herald0:vip",
        ],
    );
    director.exec(
        "ip",
        &[
            "route",
            "add",
            STALE_ROUTE4,
            "dev",
            "lo",
            "table",
            "100",
            "proto",
            "72",
        ],
    );
    wait_learned(proto, r, router, director, STALE_ADDR4, dir, ddiag);
    wait_learned(proto, r, router, director, STALE_ROUTE4, dir, ddiag);

    let addr_backend = rt
        .block_on(KernelBackend::new(KernelConfig {
            mode: KernelMode::Address,
            // On a kernel without dummy interfaces herald0 is an ifb stand-in (see
            // make_vip_interface) and must be used as it is, not created.
            create_interface: is_dummy,
            netns: Some(director.path()),
            ..KernelConfig::default()
        }))
        .unwrap_or_else(|e| panic!("address-mode backend: {e}"));
    let route_backend = rt
        .block_on(KernelBackend::new(KernelConfig {
            mode: KernelMode::Route,
            table: 100,
            netns: Some(director.path()),
            ..KernelConfig::default()
        }))
        .unwrap_or_else(|e| panic!("route-mode backend: {e}"));

    let removed = rt
        .block_on(addr_backend.reconcile(&[]))
        .unwrap_or_else(|e| panic!("reconcile: {e}"));
    assert_eq!(
        removed,
        vec![net(STALE_ADDR4)],
        "address reconcile removed the wrong things"
    );
    let removed = rt
        .block_on(route_backend.reconcile(&[]))
        .unwrap_or_else(|e| panic!("reconcile: {e}"));
    assert_eq!(
        removed,
        vec![net(STALE_ROUTE4)],
        "route reconcile removed the wrong things"
    );
    wait_forgot(r, router, director, STALE_ADDR4, dir, ddiag);
    wait_forgot(r, router, director, STALE_ROUTE4, dir, ddiag);

    // --- Address mode, IPv4 and IPv6; announcing twice is the same as once.
    for vip in [VIP4, VIP6] {
        let o = rt
            .block_on(addr_backend.announce_vip(net(vip), None))
            .unwrap_or_else(|e| panic!("announce {vip}: {e}"));
        assert_eq!(o, Outcome::Added, "{vip}");
        let o = rt
            .block_on(addr_backend.announce_vip(net(vip), None))
            .unwrap_or_else(|e| panic!("announce {vip}: {e}"));
        assert_eq!(o, Outcome::AlreadyPresent, "{vip}");
    }
    let shown = director.exec("ip", &["-d", "addr", "show", "dev", "herald0"]);
    assert!(
        shown.contains("203.0.113.10/32") && shown.contains("herald0:vip"),
        "{shown}"
    );
    assert!(
        shown.contains("2001:db8::10/128") && shown.contains("nodad"),
        "{shown}"
    );
    let vip_line = shown
        .lines()
        .find(|l| l.contains("2001:db8::10/128"))
        .unwrap_or_default();
    assert!(
        vip_line.contains("nodad") && !vip_line.contains("tentative"),
        "IPv6 VIP must be usable at once: {shown}"
    );
    let mut announced = rt
        .block_on(addr_backend.announced())
        .unwrap_or_else(|e| panic!("{e}"));
    announced.sort();
    assert_eq!(announced, vec![net(VIP4), net(VIP6)]);
    for vip in [VIP4, VIP6] {
        wait_learned(proto, r, router, director, vip, dir, ddiag);
    }
    for vip in [VIP4, VIP6] {
        let o = rt
            .block_on(addr_backend.withdraw_vip(net(vip)))
            .unwrap_or_else(|e| panic!("withdraw {vip}: {e}"));
        assert_eq!(o, Outcome::Removed, "{vip}");
        let o = rt
            .block_on(addr_backend.withdraw_vip(net(vip)))
            .unwrap_or_else(|e| panic!("withdraw {vip}: {e}"));
        assert_eq!(o, Outcome::Absent, "{vip}");
    }
    for vip in [VIP4, VIP6] {
        wait_forgot(r, router, director, vip, dir, ddiag);
    }

    // --- Route mode: `VIP dev lo table 100 proto 72`. IPv6 uses `v6_route_table` (FRR 8 can
    // import only IPv4 tables, so its IPv6 VIP routes go to the main table; see frr-ospf.conf).
    let v6_backend = if v6_route_table == 100 {
        route_backend.clone()
    } else {
        rt.block_on(KernelBackend::new(KernelConfig {
            mode: KernelMode::Route,
            table: v6_route_table,
            netns: Some(director.path()),
            ..KernelConfig::default()
        }))
        .unwrap_or_else(|e| panic!("route-mode backend (table {v6_route_table}): {e}"))
    };
    let route_vips = [(ROUTE_VIP4, &route_backend), (ROUTE_VIP6, &v6_backend)];
    for (vip, b) in route_vips {
        let o = rt
            .block_on(b.announce_vip(net(vip), None))
            .unwrap_or_else(|e| panic!("announce {vip}: {e}"));
        assert_eq!(o, Outcome::Added, "{vip}");
        let o = rt
            .block_on(b.announce_vip(net(vip), None))
            .unwrap_or_else(|e| panic!("announce {vip}: {e}"));
        assert_eq!(o, Outcome::AlreadyPresent, "{vip}");
    }
    let t4 = director.exec("ip", &["-4", "route", "show", "table", "100"]);
    assert!(t4.contains("203.0.113.20 dev lo proto 72"), "{t4}");
    let t6 = director.exec(
        "ip",
        &["-6", "route", "show", "table", &v6_route_table.to_string()],
    );
    assert!(t6.contains("2001:db8::20 dev lo proto 72"), "{t6}");
    for (vip, _) in route_vips {
        wait_learned(proto, r, router, director, vip, dir, ddiag);
    }
    if drain_by_metric {
        // Draining in route mode: a new metric replaces the route, and the director's daemon
        // turns it into the OSPF external metric / BGP MED the router sees.
        for (vip, b) in route_vips {
            let o = rt
                .block_on(b.announce_vip(net(vip), Some(20000)))
                .unwrap_or_else(|e| panic!("re-announce {vip} with metric 20000: {e}"));
            assert_eq!(o, Outcome::Added, "{vip}");
        }
        for (vip, _) in route_vips {
            wait_for(
                &format!("router to see {vip} with metric 20000"),
                TIMEOUT,
                || r.has_metric(vip, 20000).then_some(()),
                || format!("{}\n{}", r.diag(router), director_diag(director, ddiag())),
            );
        }
    }
    for (vip, b) in route_vips {
        let o = rt
            .block_on(b.withdraw_vip(net(vip)))
            .unwrap_or_else(|e| panic!("withdraw {vip}: {e}"));
        assert_eq!(o, Outcome::Removed, "{vip}");
        let o = rt
            .block_on(b.withdraw_vip(net(vip)))
            .unwrap_or_else(|e| panic!("withdraw {vip}: {e}"));
        assert_eq!(o, Outcome::Absent, "{vip}");
    }
    for (vip, _) in route_vips {
        wait_forgot(r, router, director, vip, dir, ddiag);
    }
}

fn frr_router_config() -> String {
    "interface eth0
 ip ospf area 0
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ipv6 ospf6 area 0
 ipv6 ospf6 network point-to-point
 ipv6 ospf6 hello-interval 1
 ipv6 ospf6 dead-interval 4
exit
router ospf
 ospf router-id 192.0.2.2
exit
router ospf6
 ospf6 router-id 192.0.2.2
exit
"
    .into()
}

fn bird_router_config() -> String {
    "log stderr all;
router id 192.0.2.2;
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export all; }; }
protocol kernel { ipv6 { import none; export all; }; }
protocol ospf v2 ospf4 {
	ipv4 { import all; export none; };
	area 0 { interface \"eth0\" { type ptp; hello 1; dead 4; }; };
}
protocol ospf v3 ospf6 {
	ipv6 { import all; export none; };
	area 0 { interface \"eth0\" { type ptp; hello 1; dead 4; }; };
}
"
    .into()
}

#[test]
fn bird_director_frr_router() {
    require_root();
    require_daemons();
    let tag = unique_tag("bf");
    let dir = TempDir::new(&tag);
    let director = Netns::new(&format!("hd-{tag}"));
    let router = Netns::new(&format!("hr-{tag}"));
    link(&director, "192.0.2.1/24", &router, "192.0.2.2/24");

    let frr = Frr::start(&router, &dir, "router", &frr_router_config());
    let bird = Bird::start(
        &director,
        &dir,
        "director",
        &shipped_config("bird-ospf.conf"),
    );
    let ddiag = || {
        format!(
            "BIRD director:\n{}\n{}",
            bird.try_cmd("show protocols all").1,
            bird.try_cmd("show route all").1
        )
    };
    wait_for(
        "OSPFv2 and OSPFv3 adjacency (FRR router side Full)",
        TIMEOUT,
        || {
            let v4 = frr.try_cmd("show ip ospf neighbor").1;
            let v6 = frr.try_cmd("show ipv6 ospf6 neighbor").1;
            (v4.contains("Full") && v6.contains("Full")).then_some(())
        },
        || format!("{}\n{}\n{}", frr.diag(&router), ddiag(), logs(&dir)),
    );
    exercise(
        &frr,
        &router,
        &director,
        &dir,
        &ddiag,
        Flavour {
            v6_route_table: 100,
            proto: "ospf",
            drain_by_metric: true,
        },
    );
}

#[test]
fn frr_director_bird_router() {
    require_root();
    require_daemons();
    let tag = unique_tag("fb");
    let dir = TempDir::new(&tag);
    let director = Netns::new(&format!("hd-{tag}"));
    let router = Netns::new(&format!("hr-{tag}"));
    link(&director, "192.0.2.1/24", &router, "192.0.2.2/24");

    let bird = Bird::start(&router, &dir, "router", &bird_router_config());
    let frr = Frr::start(
        &director,
        &dir,
        "director",
        &shipped_config("frr-ospf.conf"),
    );
    let ddiag = || {
        format!(
            "FRR director:\n{}\n{}\n{}",
            frr.try_cmd("show ip route").1,
            frr.try_cmd("show ip ospf database").1,
            frr.try_cmd("show ipv6 ospf6 database").1
        )
    };
    wait_for(
        "OSPFv2 and OSPFv3 adjacency (BIRD router side Full)",
        TIMEOUT,
        || {
            let v4 = bird.try_cmd("show ospf neighbors ospf4").1;
            let v6 = bird.try_cmd("show ospf neighbors ospf6").1;
            (v4.contains("Full") && v6.contains("Full")).then_some(())
        },
        || format!("{}\n{}\n{}", bird.diag(&router), ddiag(), logs(&dir)),
    );
    exercise(
        &bird,
        &router,
        &director,
        &dir,
        &ddiag,
        Flavour {
            v6_route_table: 254,
            proto: "ospf",
            drain_by_metric: false,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The same backend behind a routing daemon that speaks BGP itself (config/*-bgp-redistribute.conf).

/// Adds the IPv6 link addresses the BGP sessions run over (nodad: usable at once).
/// The last `n` lines of the log at `path` that mention `needle`.
fn log_lines(path: &std::path::Path, needle: &str, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({path:?}: {e})"));
    let hits: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
    hits[hits.len().saturating_sub(n)..].join("\n")
}

fn add_v6_link(director: &Netns, router: &Netns) {
    director.exec(
        "ip",
        &["addr", "add", "2001:db8:ffff::1/64", "dev", "eth0", "nodad"],
    );
    router.exec(
        "ip",
        &["addr", "add", "2001:db8:ffff::2/64", "dev", "eth0", "nodad"],
    );
    // The kernel's link-local address is tentative for about a second after the link comes up
    // (duplicate address detection). An FRR started inside that second can miss its end: bgpd
    // then waited for "a v6 LL address" for the whole minute and never opened the IPv6 session
    // (seen once in CI). The daemons start only once both sides have a usable link-local.
    for ns in [director, router] {
        wait_for(
            &format!("a link-local IPv6 address past DAD on eth0 in {}", ns.name),
            Duration::from_secs(15),
            || {
                let (ok, out) = ns.try_exec(
                    "ip",
                    &["-6", "addr", "show", "dev", "eth0", "scope", "link"],
                );
                (ok && out.contains("inet6 fe80:") && !out.contains("tentative")).then_some(())
            },
            || ns.try_exec("ip", &["-6", "addr", "show", "dev", "eth0"]).1,
        );
    }
}

fn frr_bgp_router_config() -> String {
    "router bgp 64513
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 64512
 neighbor 192.0.2.1 timers 1 3
 neighbor 192.0.2.1 timers connect 1
 neighbor 2001:db8:ffff::1 remote-as 64512
 neighbor 2001:db8:ffff::1 timers 1 3
 neighbor 2001:db8:ffff::1 timers connect 1
 address-family ipv6 unicast
  neighbor 2001:db8:ffff::1 activate
 exit-address-family
exit
"
    .into()
}

fn bird_bgp_router_config() -> String {
    "log stderr all;
router id 192.0.2.2;
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export all; }; }
protocol kernel { ipv6 { import none; export all; }; }
protocol bgp bgp4 {
	local 192.0.2.2 as 64513; neighbor 192.0.2.1 as 64512;
	connect retry time 1;
	ipv4 { import all; export none; };
}
protocol bgp bgp6 {
	local 2001:db8:ffff::2 as 64513; neighbor 2001:db8:ffff::1 as 64512;
	connect retry time 1;
	ipv6 { import all; export none; };
}
"
    .into()
}

#[test]
fn bird_director_bgp_frr_router() {
    require_root();
    require_daemons();
    let tag = unique_tag("gb");
    let dir = TempDir::new(&tag);
    let director = Netns::new(&format!("hd-{tag}"));
    let router = Netns::new(&format!("hr-{tag}"));
    link(&director, "192.0.2.1/24", &router, "192.0.2.2/24");
    add_v6_link(&director, &router);

    let frr = Frr::start_with(
        &router,
        &dir,
        "router",
        &frr_bgp_router_config(),
        &["zebra", "bgpd"],
    );
    let bird = Bird::start(
        &director,
        &dir,
        "director",
        &shipped_config("bird-bgp-redistribute.conf"),
    );
    let ddiag = || {
        format!(
            "BIRD director:\n{}\n{}",
            bird.try_cmd("show protocols all").1,
            bird.try_cmd("show route all").1
        )
    };
    wait_for(
        "IPv4 and IPv6 BGP sessions Established (FRR router side)",
        TIMEOUT,
        || {
            let v4 = frr.try_cmd("show bgp neighbors 192.0.2.1 json").1;
            let v6 = frr.try_cmd("show bgp neighbors 2001:db8:ffff::1 json").1;
            (v4.contains("\"bgpState\":\"Established\"")
                && v6.contains("\"bgpState\":\"Established\""))
            .then_some(())
        },
        || {
            // The short views first: a report truncated in the middle still shows them.
            format!(
                "BIRD director, protocols:\n{}\nBIRD director log, uplink6:\n{}\n{}\n{}\n{}",
                bird.try_cmd("show protocols").1,
                log_lines(&dir.file("director.log"), "uplink6", 30),
                frr.try_cmd("show bgp summary").1,
                ddiag(),
                logs(&dir)
            )
        },
    );
    exercise(
        &frr,
        &router,
        &director,
        &dir,
        &ddiag,
        Flavour {
            v6_route_table: 100,
            proto: "bgp",
            drain_by_metric: true,
        },
    );
}

#[test]
fn frr_director_bgp_bird_router() {
    require_root();
    require_daemons();
    let tag = unique_tag("gf");
    let dir = TempDir::new(&tag);
    let director = Netns::new(&format!("hd-{tag}"));
    let router = Netns::new(&format!("hr-{tag}"));
    link(&director, "192.0.2.1/24", &router, "192.0.2.2/24");
    add_v6_link(&director, &router);

    let bird = Bird::start(&router, &dir, "router", &bird_bgp_router_config());
    let frr = Frr::start_with(
        &director,
        &dir,
        "director",
        &shipped_config("frr-bgp-redistribute.conf"),
        &["zebra", "bgpd"],
    );
    let ddiag = || {
        format!(
            "FRR director:\n{}\n{}\n{}",
            frr.try_cmd("show bgp summary").1,
            frr.try_cmd("show ip bgp").1,
            frr.try_cmd("show bgp ipv6 unicast").1
        )
    };
    wait_for(
        "IPv4 and IPv6 BGP sessions Established (BIRD router side)",
        TIMEOUT,
        || {
            let v4 = bird.try_cmd("show protocols bgp4").1;
            let v6 = bird.try_cmd("show protocols bgp6").1;
            (v4.contains("Established") && v6.contains("Established")).then_some(())
        },
        || format!("{}\n{}\n{}", bird.diag(&router), ddiag(), logs(&dir)),
    );
    // FRR 8.4 bgpd: routes redistributed and removed again within the first second of a new
    // session (its update-group coalesce period) sometimes never get their withdrawal sent
    // (seen here about once in five loaded runs: the route stays "sent" while bgpd's RIB is
    // empty). Let the session settle first; the scenario then checks steady-state behaviour.
    std::thread::sleep(Duration::from_secs(3));
    exercise(
        &bird,
        &router,
        &director,
        &dir,
        &ddiag,
        Flavour {
            v6_route_table: 254,
            proto: "bgp",
            drain_by_metric: false,
        },
    );
}
