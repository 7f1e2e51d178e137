//! The kernel route backend's own semantics, against the real kernel inside throw-away network
//! namespaces (no routing daemons): interface creation, ownership marks (foreign objects are
//! never removed), metric changes, reconciliation with a keep list, concurrency, and the typed
//! errors (missing namespace / interface, EPERM → "CAP_NET_ADMIN needed").
//!
//! Needs root. Run: `cargo test -p herald-announcer --test integration ospf_backend::`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::ospf_support;

use std::time::Duration;

use herald_announcer::group::RouteAction;
use herald_announcer::group_config::ParsedAttrs;
use herald_announcer::sink::kernel::{
    KernelBackend, KernelConfig, KernelError, KernelMode, Outcome, VipAddresses, WithVipAddresses,
};
use herald_announcer::sink::{BoxFuture, LocalAddrs, RouteSink};
use ipnet::IpNet;
use ospf_support::{require_root, unique_tag, Netns};
use std::sync::{Arc, Mutex};

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test prefix {s}: {e}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

fn addr_cfg(ns: &Netns, create: bool) -> KernelConfig {
    KernelConfig {
        mode: KernelMode::Address,
        create_interface: create,
        netns: Some(ns.path()),
        ..KernelConfig::default()
    }
}

fn route_cfg(ns: &Netns) -> KernelConfig {
    KernelConfig {
        mode: KernelMode::Route,
        table: 100,
        netns: Some(ns.path()),
        ..KernelConfig::default()
    }
}

/// Binds a UDP socket to `addr` inside the namespace (on a helper thread that enters it).
fn bind_in_netns(ns: &Netns, addr: &str) -> Result<(), String> {
    let path = ns.path();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).map_err(|e| format!("open {path:?}: {e}"))?;
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        std::net::UdpSocket::bind(&addr)
            .map(drop)
            .map_err(|e| format!("bind {addr}: {e}"))
    })
    .join()
    .unwrap_or_else(|_| Err("bind thread panicked".into()))
}

/// Whether this kernel can create dummy interfaces at all.
fn kernel_has_dummy(ns: &Netns) -> bool {
    let (ok, _) = ns.try_exec("ip", &["link", "add", "hprobe0", "type", "dummy"]);
    if ok {
        ns.exec("ip", &["link", "del", "hprobe0"]);
    }
    ok
}

/// herald0 for tests that need an existing one: a dummy, or an ifb stand-in on kernels without
/// dummy support. Returns whether it is a dummy.
fn make_herald0(ns: &Netns) -> bool {
    let (dummy, _) = ns.try_exec("ip", &["link", "add", "herald0", "type", "dummy"]);
    if !dummy {
        ns.exec("ip", &["link", "add", "herald0", "type", "ifb"]);
    }
    ns.exec("ip", &["link", "set", "herald0", "up"]);
    dummy
}

#[test]
fn creates_dummy_interface_or_names_the_missing_kernel_support() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("c")));
    let rt = rt();
    let has_dummy = kernel_has_dummy(&ns);
    let res = rt.block_on(KernelBackend::new(addr_cfg(&ns, true)));
    if has_dummy {
        let b = res.unwrap_or_else(|e| panic!("backend: {e}"));
        let link = ns.exec("ip", &["-d", "link", "show", "herald0"]);
        assert!(link.contains("dummy") && link.contains("UP"), "{link}");
        // Deleted behind our back: the next announce re-creates it.
        ns.exec("ip", &["link", "del", "herald0"]);
        let o = rt.block_on(b.announce_vip(net("203.0.113.10/32"), None));
        assert_eq!(o.ok(), Some(Outcome::Added));
        let shown = ns.exec("ip", &["addr", "show", "herald0"]);
        assert!(shown.contains("203.0.113.10/32"), "{shown}");
    } else {
        let e = res.err().unwrap_or_else(|| {
            panic!("backend created a dummy on a kernel without dummy support?")
        });
        let s = e.to_string();
        eprintln!("kernel without dummy support reports: {s}");
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{s}");
        assert!(
            s.contains("create dummy interface herald0") && s.contains("`dummy` module"),
            "{s}"
        );
    }
}

#[test]
fn refuses_a_non_dummy_interface_it_would_own_and_reports_missing_ones() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("n")));
    let rt = rt();
    ns.exec("ip", &["link", "add", "herald0", "type", "ifb"]);
    let e = rt.block_on(KernelBackend::new(addr_cfg(&ns, true))).err();
    let s = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        s.contains("herald0 exists but is a ifb interface, not a dummy"),
        "{s:?}"
    );
    // create_interface = false: a missing interface is an error naming it.
    let cfg = KernelConfig {
        interface: "nosuch0".into(),
        ..addr_cfg(&ns, false)
    };
    let s = rt
        .block_on(KernelBackend::new(cfg))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        s.contains("interface nosuch0 does not exist and create_interface is off"),
        "{s:?}"
    );
    // Route mode with a missing device.
    let cfg = KernelConfig {
        route_device: "nosuch1".into(),
        ..route_cfg(&ns)
    };
    let s = rt
        .block_on(KernelBackend::new(cfg))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(s.contains("interface nosuch1 does not exist"), "{s:?}");
    // A namespace that does not exist.
    let cfg = KernelConfig {
        netns: Some("/run/netns/herald-does-not-exist".into()),
        ..KernelConfig::default()
    };
    let s = rt
        .block_on(KernelBackend::new(cfg))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        s.contains("cannot enter network namespace /run/netns/herald-does-not-exist"),
        "{s:?}"
    );
}

#[test]
fn foreign_addresses_are_never_removed() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("f")));
    let rt = rt();
    let dummy = make_herald0(&ns);
    // The administrator's own addresses on herald0: no label, no protocol mark.
    ns.exec("ip", &["addr", "add", "203.0.113.50/32", "dev", "herald0"]);
    ns.exec("ip", &["addr", "add", "2001:db8::50/128", "dev", "herald0"]);
    // Even one that looks like ours (a nodad /128): on Linux >= 6.1 only IFA_PROTO counts.
    ns.exec(
        "ip",
        &["addr", "add", "2001:db8::52/128", "dev", "herald0", "nodad"],
    );
    let b = rt
        .block_on(KernelBackend::new(addr_cfg(&ns, dummy)))
        .unwrap_or_else(|e| panic!("{e}"));
    for vip in ["203.0.113.50/32", "2001:db8::50/128", "2001:db8::52/128"] {
        let o = rt.block_on(b.announce_vip(net(vip), None));
        assert_eq!(o.ok(), Some(Outcome::Foreign), "{vip}");
        let e = rt.block_on(b.withdraw_vip(net(vip))).err();
        let s = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            s.contains("was not installed by ipvs-herald") && s.contains("refusing to remove"),
            "{s}"
        );
    }
    // One of ours next to them; reconcile with an empty keep list removes only ours.
    let o = rt.block_on(b.announce_vip(net("203.0.113.51/32"), None));
    assert_eq!(o.ok(), Some(Outcome::Added));
    let removed = rt
        .block_on(b.reconcile(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(removed, vec![net("203.0.113.51/32")]);
    let shown = ns.exec("ip", &["addr", "show", "herald0"]);
    assert!(
        shown.contains("203.0.113.50/32")
            && shown.contains("2001:db8::50/128")
            && shown.contains("2001:db8::52/128"),
        "{shown}"
    );
    assert!(!shown.contains("203.0.113.51/32"), "{shown}");
}

#[test]
fn ipv6_addresses_are_marked_and_usable_at_once() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("6")));
    let rt = rt();
    let dummy = make_herald0(&ns);
    let b = rt
        .block_on(KernelBackend::new(addr_cfg(&ns, dummy)))
        .unwrap_or_else(|e| panic!("{e}"));
    let o = rt.block_on(b.announce_vip(net("2001:db8::61/128"), None));
    assert_eq!(o.ok(), Some(Outcome::Added));
    // Right away (no DAD wait): not tentative, and a socket can bind to it.
    let shown = ns.exec("ip", &["-6", "addr", "show", "dev", "herald0"]);
    assert!(
        shown.contains("2001:db8::61/128") && shown.contains("nodad"),
        "{shown}"
    );
    let vip_line = shown
        .lines()
        .find(|l| l.contains("2001:db8::61/128"))
        .unwrap_or_default();
    assert!(
        vip_line.contains("nodad") && !vip_line.contains("tentative"),
        "{shown}"
    );
    let bound = bind_in_netns(&ns, "[2001:db8::61]:0");
    assert!(
        bound.is_ok(),
        "bind to the fresh IPv6 VIP failed: {bound:?}"
    );
    // Control: an address that is not configured cannot be bound.
    assert!(bind_in_netns(&ns, "[2001:db8::62]:0").is_err());
    let v4 = rt.block_on(b.announce_vip(net("203.0.113.61/32"), None));
    assert_eq!(v4.ok(), Some(Outcome::Added));
    let shown = ns.exec("ip", &["-4", "addr", "show", "dev", "herald0"]);
    assert!(shown.contains("herald0:vip"), "{shown}");
    // Reconcile keeps what it is told to keep.
    let removed = rt
        .block_on(b.reconcile(&[net("2001:db8::61/128")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(removed, vec![net("203.0.113.61/32")]);
    let mut left = rt.block_on(b.announced()).unwrap_or_else(|e| panic!("{e}"));
    left.sort();
    assert_eq!(left, vec![net("2001:db8::61/128")]);
}

/// iproute2 6.1 cannot show `IFA_PROTO`, so prove the mark through ownership: on an interface
/// whose name is too long for a `NAME:vip` label (12 bytes + 4 > 15), an IPv4 address carries no
/// label and is recognised as ours only through `IFA_PROTO` = 72 (Linux >= 6.1).
#[test]
fn ipv4_address_without_label_is_owned_through_ifa_proto() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("i")));
    let rt = rt();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = kernel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!(
        (major, minor) >= (6, 1),
        "this test needs Linux >= 6.1 for IFA_PROTO; kernel is {}",
        kernel.trim()
    );
    ns.exec("ip", &["link", "add", "heraldvips01", "type", "ifb"]);
    ns.exec("ip", &["link", "set", "heraldvips01", "up"]);
    ns.exec(
        "ip",
        &["addr", "add", "203.0.113.81/32", "dev", "heraldvips01"],
    );
    let cfg = KernelConfig {
        interface: "heraldvips01".into(),
        ..addr_cfg(&ns, false)
    };
    let b = rt
        .block_on(KernelBackend::new(cfg))
        .unwrap_or_else(|e| panic!("{e}"));
    let o = rt.block_on(b.announce_vip(net("203.0.113.80/32"), None));
    assert_eq!(o.ok(), Some(Outcome::Added));
    let shown = ns.exec("ip", &["-4", "addr", "show", "dev", "heraldvips01"]);
    assert!(
        shown.contains("203.0.113.80/32") && !shown.contains(":vip"),
        "{shown}"
    );
    assert_eq!(
        rt.block_on(b.announced()).unwrap_or_else(|e| panic!("{e}")),
        vec![net("203.0.113.80/32")],
        "the unlabelled address must be recognised by IFA_PROTO, the admin's one must not"
    );
    let removed = rt
        .block_on(b.reconcile(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(removed, vec![net("203.0.113.80/32")]);
    let shown = ns.exec("ip", &["-4", "addr", "show", "dev", "heraldvips01"]);
    assert!(
        shown.contains("203.0.113.81/32") && !shown.contains("203.0.113.80/32"),
        "{shown}"
    );
}

#[test]
fn route_mode_metric_changes_and_foreign_routes() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("r")));
    let rt = rt();
    let b = rt
        .block_on(KernelBackend::new(route_cfg(&ns)))
        .unwrap_or_else(|e| panic!("{e}"));
    for (vip, fam) in [("203.0.113.70/32", "-4"), ("2001:db8::70/128", "-6")] {
        let m10 = Some(10);
        let m20 = Some(20);
        assert_eq!(
            rt.block_on(b.announce_vip(net(vip), m10)).ok(),
            Some(Outcome::Added)
        );
        assert_eq!(
            rt.block_on(b.announce_vip(net(vip), m10)).ok(),
            Some(Outcome::AlreadyPresent)
        );
        // A new metric replaces the route (make before break), never leaves two.
        assert_eq!(
            rt.block_on(b.announce_vip(net(vip), m20)).ok(),
            Some(Outcome::Added)
        );
        let shown = ns.exec("ip", &[fam, "route", "show", "table", "100", "proto", "72"]);
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert!(
            shown.contains("metric 20") && shown.contains("dev lo"),
            "{shown}"
        );
        assert_eq!(
            rt.block_on(b.withdraw_vip(net(vip))).ok(),
            Some(Outcome::Removed)
        );
        let shown = ns.exec("ip", &[fam, "route", "show", "table", "100"]);
        assert!(shown.trim().is_empty(), "{shown}");
    }
    // A non-host prefix is installed as its network.
    assert_eq!(
        rt.block_on(b.announce_vip(net("198.51.100.7/24"), None))
            .ok(),
        Some(Outcome::Added)
    );
    let shown = ns.exec("ip", &["route", "show", "table", "100"]);
    assert!(shown.contains("198.51.100.0/24 dev lo proto 72"), "{shown}");
    // Someone else's route to the same VIP in the same table.
    ns.exec(
        "ip",
        &[
            "route",
            "add",
            "203.0.113.71/32",
            "dev",
            "lo",
            "table",
            "100",
            "proto",
            "static",
        ],
    );
    let e = rt
        .block_on(b.announce_vip(net("203.0.113.71/32"), None))
        .err();
    let s = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        s.contains("a route to 203.0.113.71/32 in table 100")
            && s.contains("not installed by ipvs-herald"),
        "{s}"
    );
    assert_eq!(
        rt.block_on(b.withdraw_vip(net("203.0.113.71/32"))).ok(),
        Some(Outcome::Absent)
    );
    let shown = ns.exec("ip", &["route", "show", "table", "100"]);
    assert!(
        shown.contains("203.0.113.71 dev lo proto static"),
        "foreign route must stay: {shown}"
    );
    // Reconcile removes ours only.
    let removed = rt
        .block_on(b.reconcile(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(removed, vec![net("198.51.100.0/24")]);
}

#[test]
fn concurrent_announces_through_the_trait_object() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("p")));
    let rt = rt();
    let dummy = make_herald0(&ns);
    let b = rt
        .block_on(KernelBackend::new(addr_cfg(&ns, dummy)))
        .unwrap_or_else(|e| panic!("{e}"));
    let backend: Arc<dyn RouteSink> = Arc::new(b.clone());
    // 64 VIPs, each announced twice concurrently; bounded by a 60 s timeout.
    let vips: Vec<IpNet> = (1..=64)
        .map(|i| net(&format!("198.51.100.{i}/32")))
        .collect();
    rt.block_on(async {
        let work = vips.iter().flat_map(|v| [*v, *v]).map(|v| {
            let backend = backend.clone();
            async move {
                let action = RouteAction::Announce {
                    prefix: v,
                    attrs: ParsedAttrs::default(),
                };
                backend.apply(&action).await
            }
        });
        let results =
            tokio::time::timeout(Duration::from_secs(60), futures_join_all(work.collect()))
                .await
                .unwrap_or_else(|_| panic!("64 concurrent announces took more than 60 s"));
        for r in results {
            r.unwrap_or_else(|e| panic!("announce: {e}"));
        }
    });
    let mut got = rt.block_on(b.announced()).unwrap_or_else(|e| panic!("{e}"));
    got.sort();
    let mut want = vips.clone();
    want.sort();
    assert_eq!(got, want);
    rt.block_on(async {
        for v in &vips {
            backend
                .apply(&RouteAction::Withdraw { prefix: *v })
                .await
                .unwrap_or_else(|e| panic!("withdraw {v}: {e}"));
        }
    });
    assert!(rt
        .block_on(b.announced())
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty());
}

/// The control loop's action sequence for `vip_address = "manage"` with route mode: the address
/// is on the interface before the route exists and stays until the route is gone.
#[test]
fn managed_address_and_route_follow_the_action_order() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("o")));
    let rt = rt();
    let b = rt
        .block_on(KernelBackend::new(route_cfg(&ns)))
        .unwrap_or_else(|e| panic!("{e}"));
    let vip = net("203.0.113.90/32");
    let has_addr = || {
        ns.exec("ip", &["-4", "addr", "show", "dev", "lo"])
            .contains("203.0.113.90/32")
    };
    let has_route = || {
        // (`ip route show table 100` fails while the table does not exist.)
        let (_, out) = ns.try_exec("ip", &["route", "show", "table", "100"]);
        out.contains("203.0.113.90")
    };
    let apply = |a: RouteAction| {
        rt.block_on(b.apply(&a))
            .unwrap_or_else(|e| panic!("{a:?}: {e}"))
    };
    apply(RouteAction::AddAddress {
        prefix: vip,
        interface: "lo".into(),
    });
    assert!(has_addr() && !has_route());
    let shown = ns.exec("ip", &["-4", "addr", "show", "dev", "lo"]);
    assert!(shown.contains("lo:vip"), "{shown}");
    apply(RouteAction::Announce {
        prefix: vip,
        attrs: ParsedAttrs {
            med: Some(30),
            ..ParsedAttrs::default()
        },
    });
    assert!(has_addr() && has_route());
    let shown = ns.exec("ip", &["route", "show", "table", "100"]);
    assert!(
        shown.contains("203.0.113.90 dev lo proto 72 scope link metric 30"),
        "{shown}"
    );
    apply(RouteAction::Withdraw { prefix: vip });
    assert!(has_addr() && !has_route());
    apply(RouteAction::RemoveAddress {
        prefix: vip,
        interface: "lo".into(),
        linger: Duration::ZERO,
    });
    assert!(!has_addr() && !has_route());
    // Removing again is fine; 127.0.0.1 (not ours) is untouched.
    apply(RouteAction::RemoveAddress {
        prefix: vip,
        interface: "lo".into(),
        linger: Duration::ZERO,
    });
    // Someone else's address: the route is gone already, so RemoveAddress leaves it in place
    // without failing (a warning is logged), while a direct remove() says why it refuses.
    rt.block_on(b.apply(&RouteAction::RemoveAddress {
        prefix: net("127.0.0.1/8"),
        interface: "lo".into(),
        linger: Duration::ZERO,
    }))
    .unwrap_or_else(|e| panic!("RemoveAddress of a foreign address: {e}"));
    assert!(ns
        .exec("ip", &["-4", "addr", "show", "dev", "lo"])
        .contains("127.0.0.1/8"));
    let e = rt
        .block_on(b.addresses().remove("lo", net("127.0.0.1/8")))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("address 127.0.0.1/8 on lo exists but was not installed by ipvs-herald"),
        "{e}"
    );
}

/// Route actions recorded by a stand-in for the BGP speaker.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl RouteSink for Recorder {
    fn apply<'a>(
        &'a self,
        action: &'a RouteAction,
    ) -> BoxFuture<'a, Result<(), herald_announcer::sink::SinkError>> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{action:?}"));
            Ok(())
        })
    }
}

#[test]
fn with_vip_addresses_splits_address_and_route_actions() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("w")));
    let rt = rt();
    let addrs = rt
        .block_on(VipAddresses::open(Some(ns.path()), 72))
        .unwrap_or_else(|e| panic!("{e}"));
    let rec = Arc::new(Recorder::default());
    let both = WithVipAddresses::new(rec.clone(), addrs.clone());
    let vip = net("2001:db8::91/128");
    for a in [
        RouteAction::AddAddress {
            prefix: vip,
            interface: "lo".into(),
        },
        RouteAction::Announce {
            prefix: vip,
            attrs: ParsedAttrs::default(),
        },
    ] {
        rt.block_on(both.apply(&a))
            .unwrap_or_else(|e| panic!("{a:?}: {e}"));
    }
    let shown = ns.exec("ip", &["-6", "addr", "show", "dev", "lo"]);
    assert!(
        shown.contains("2001:db8::91/128") && shown.contains("nodad"),
        "{shown}"
    );
    let recorded = rec.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].starts_with("Announce"), "{recorded:?}");
    // The host's addresses, for vip_address = "require".
    let local = addrs.local_addrs().unwrap_or_else(|e| panic!("{e}"));
    for want in ["127.0.0.1", "::1", "2001:db8::91"] {
        let want: std::net::IpAddr = want.parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(local.contains(&want), "{want} missing from {local:?}");
    }
    let o = rt
        .block_on(addrs.remove("lo", vip))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o, Outcome::Removed);
    let local = addrs.local_addrs().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !local.iter().any(|a| a.to_string() == "2001:db8::91"),
        "{local:?}"
    );
}

/// Minimal join_all over spawned tasks (no extra dependency).
async fn futures_join_all<F>(futs: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    out
}

/// Child half of `eperm_names_cap_net_admin`: runs without CAP_NET_ADMIN.
#[test]
#[ignore = "helper: run by eperm_names_cap_net_admin under setpriv"]
fn eperm_probe() {
    let Ok(path) = std::env::var("HERALD_EPERM_NETNS") else {
        panic!("eperm_probe is a helper of eperm_names_cap_net_admin, not a test on its own");
    };
    let rt = rt();
    let cfg = KernelConfig {
        interface: "herald9".into(),
        netns: Some(path.into()),
        ..KernelConfig::default()
    };
    match rt.block_on(KernelBackend::new(cfg)) {
        Ok(_) => panic!("created an interface without CAP_NET_ADMIN?"),
        Err(e) => {
            println!("PROBE-ERROR: {e}");
            assert!(
                matches!(e, KernelError::Kernel { errno, .. } if errno == libc::EPERM),
                "{e}"
            );
        }
    }
}

#[test]
fn eperm_names_cap_net_admin() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("e")));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let out = std::process::Command::new("setpriv")
        .args(["--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "ospf_backend::eperm_probe",
            "--ignored",
            "--nocapture",
        ])
        .env("HERALD_EPERM_NETNS", ns.path())
        .output()
        .unwrap_or_else(|e| panic!("setpriv (util-linux) is needed: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "probe failed: {text}");
    assert!(
        text.contains("PROBE-ERROR: create dummy interface herald9: operation not permitted: CAP_NET_ADMIN needed"),
        "{text}"
    );
}

#[test]
fn noprefixroute_option_suppresses_the_kernel_prefix_route() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("x")));
    let rt = rt();
    let dummy = make_herald0(&ns);
    let vip = net("2001:db8::63/128");
    let plain = rt
        .block_on(KernelBackend::new(addr_cfg(&ns, dummy)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rt.block_on(plain.announce_vip(vip, None)).ok(),
        Some(Outcome::Added)
    );
    // Without the option the kernel adds its own prefix route for the /128.
    let routes = ns.exec("ip", &["-6", "route", "show", "dev", "herald0"]);
    assert!(routes.contains("2001:db8::63 proto kernel"), "{routes}");
    assert_eq!(
        rt.block_on(plain.withdraw_vip(vip)).ok(),
        Some(Outcome::Removed)
    );
    let npr = rt
        .block_on(KernelBackend::new(KernelConfig {
            noprefixroute: true,
            ..addr_cfg(&ns, dummy)
        }))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rt.block_on(npr.announce_vip(vip, None)).ok(),
        Some(Outcome::Added)
    );
    let shown = ns.exec("ip", &["-6", "addr", "show", "dev", "herald0"]);
    let line = shown
        .lines()
        .find(|l| l.contains("2001:db8::63/128"))
        .unwrap_or_default();
    assert!(
        line.contains("noprefixroute") && line.contains("nodad"),
        "{shown}"
    );
    let routes = ns.exec("ip", &["-6", "route", "show", "dev", "herald0"]);
    assert!(!routes.contains("2001:db8::63"), "{routes}");
}

/// `address_linger`: through [`WithVipAddresses`] (what the daemon uses for `manage`), the
/// address outlives the withdrawal by the linger; an announcement within the linger cancels
/// the removal; `settle` waits for a pending removal. Real rtnetlink in a namespace.
#[test]
fn managed_address_lingers_after_the_withdrawal_and_an_announcement_cancels_the_removal() {
    require_root();
    let ns = Netns::new(&format!("hk-{}", unique_tag("l")));
    let rt = rt();
    let b = rt
        .block_on(KernelBackend::new(route_cfg(&ns)))
        .unwrap_or_else(|e| panic!("{e}"));
    let addrs = b.addresses().clone();
    let sink = WithVipAddresses::new(Arc::new(b), addrs);
    let vip = net("203.0.113.91/32");
    let has_addr = || {
        ns.exec("ip", &["-4", "addr", "show", "dev", "lo"])
            .contains("203.0.113.91/32")
    };
    let apply = |a: RouteAction| {
        rt.block_on(sink.apply(&a))
            .unwrap_or_else(|e| panic!("{a:?}: {e}"))
    };
    let add = || RouteAction::AddAddress {
        prefix: vip,
        interface: "lo".into(),
    };
    let remove = |ms: u64| RouteAction::RemoveAddress {
        prefix: vip,
        interface: "lo".into(),
        linger: Duration::from_millis(ms),
    };
    // The address outlives the withdrawal by its linger, and settle() waits for the removal.
    apply(add());
    apply(RouteAction::Withdraw { prefix: vip });
    apply(remove(600));
    assert!(has_addr(), "removed before its linger");
    assert_eq!(sink.pending_removals(), 1);
    let t = std::time::Instant::now();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), sink.settle())
            .await
            .expect("settle() returns once the removal is done")
    });
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "settle returned after {:?}, before the linger ended",
        t.elapsed()
    );
    assert!(!has_addr(), "still there after the linger");
    assert_eq!(sink.pending_removals(), 0);

    // Announced again within the linger: the removal is cancelled and the address stays.
    apply(add());
    apply(remove(300));
    apply(add());
    assert_eq!(sink.pending_removals(), 0);
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(800)).await });
    assert!(has_addr(), "a cancelled removal removed the address");

    // linger 0: removed at once.
    apply(remove(0));
    assert!(!has_addr());
}
