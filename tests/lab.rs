//! The real-kernel lab: boots a Debian kernel with IPVS under QEMU once (`tests/lab/lab.sh run`),
//! runs every scenario in it, and checks, one test per scenario, that `ipvs-herald dump --json
//! --conns` equals what ipvsadm showed at the same moment, field by field.
//!
//! Not part of the plain `cargo test` run (the target has `test = false`); run it with
//! `cargo test --test lab` (see tests/README.md). It fails, never skips, when QEMU, the kernel
//! package or a host tool is missing and cannot be installed. Setting
//! `IPVS_HERALD_LAB_RESULTS=<dir>` checks an existing `target/lab/results/scenarios` instead of
//! booting (for iterating on the comparison only).
//!
//! The kernel is Debian's 6.1 unless `IPVS_HERALD_LAB_KERNEL=5.10|6.12` asks for bullseye's or
//! trixie's (tests/README.md, "Matrix"); every test runs on each, and what a kernel lacks is
//! asserted as absent by name, from what the guest recorded (`uname -r`, the optional modules
//! the host found missing from the kernel package).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test
#![forbid(unsafe_code)]

mod lab_support;

use lab_support::compare::{self, Views};
use lab_support::dump::{self, Dump};
use lab_support::ipvsadm::ConnKey;
use lab_support::vm::{self, read, tail};
use std::path::Path;

fn results() -> &'static Path {
    let r = vm::scenario_results();
    // The guest's kernel is the one asked for (IPVS_HERALD_LAB_KERNEL).
    vm::kernel_release(r);
    r
}

/// Check one scenario: it ran, the dump succeeded at a consistent moment, and the dump equals
/// every ipvsadm view. Returns the parsed views and dump for scenario-specific assertions.
fn check(name: &str) -> (Views, Dump) {
    let dir = results().join(name);
    assert!(
        dir.is_dir(),
        "scenario {name} did not run (no {})",
        dir.display()
    );
    let status = read(&dir, "status");
    assert_eq!(
        status.trim(),
        "ok",
        "scenario {name} failed in the VM; setup.log ends with:\n{}",
        tail(&read(&dir, "setup.log"), 25)
    );
    let attempts = read(&dir, "attempts");
    assert_ne!(
        attempts.trim(),
        "inconsistent",
        "scenario {name}: ipvsadm never read the same state before and after the dump"
    );
    assert!(
        !dir.join("unsettled").exists(),
        "scenario {name}: IPVS counters did not settle before collection"
    );
    let rc = read(&dir, "dump.rc");
    assert_eq!(
        rc.trim(),
        "0",
        "scenario {name}: `ipvs-herald dump --json --conns` failed: {}",
        read(&dir, "dump.err")
    );
    let views = compare::load_views(&dir).unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    let dump = dump::parse_dump(&read(&dir, "dump.json"))
        .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    assert_eq!(
        dump.source.as_deref(),
        Some("netlink"),
        "scenario {name}: the dump did not read over netlink"
    );
    let mut outcome = compare::compare(&views, &dump);
    // The same moment, read from /proc/net/ip_vs* (`dump --source procfs`).
    if read(&dir, "dump-procfs.rc").trim() == "0" {
        match dump::parse_dump(&read(&dir, "dump-procfs.json")) {
            Ok(p) => {
                let po = compare::compare_procfs(&views, &p);
                outcome.fields_checked += po.fields_checked;
                outcome.mismatches.extend(po.mismatches);
            }
            Err(e) => outcome.mismatches.push(format!("procfs dump: {e}")),
        }
    } else {
        outcome.mismatches.push(format!(
            "`dump --source procfs` failed: {}",
            read(&dir, "dump-procfs.err")
        ));
    }
    assert!(
        outcome.fields_checked > 0,
        "scenario {name}: nothing compared"
    );
    if !outcome.mismatches.is_empty() {
        let shown: Vec<&String> = outcome.mismatches.iter().take(200).collect();
        panic!(
            "scenario {name}: {} of {} fields differ between ipvsadm and the dump:\n  {}",
            outcome.mismatches.len(),
            outcome.fields_checked,
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    eprintln!(
        "scenario {name}: {} fields equal (collection attempt {})",
        outcome.fields_checked,
        attempts.trim()
    );
    (views, dump)
}

/// Check the exporter scenario: the daemon's scrape equals ipvsadm read around it.
fn check_metrics(name: &str) -> Views {
    let dir = vm::scenario_ok(results(), name);
    assert_ne!(read(&dir, "attempts").trim(), "inconsistent");
    assert!(!dir.join("unsettled").exists(), "counters did not settle");
    let views = compare::load_views(&dir).unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    let samples = lab_support::metrics::parse(&read(&dir, "metrics.txt"))
        .unwrap_or_else(|e| panic!("scenario {name}: metrics.txt: {e}"));
    let outcome = lab_support::metrics::compare(&views, &samples);
    assert!(
        outcome.fields_checked > 0,
        "scenario {name}: nothing compared"
    );
    assert!(
        outcome.mismatches.is_empty(),
        "scenario {name}: {} of {} values differ between ipvsadm and the scrape:\n  {}",
        outcome.mismatches.len(),
        outcome.fields_checked,
        outcome.mismatches.join("\n  ")
    );
    eprintln!("scenario {name}: {} values equal", outcome.fields_checked);
    views
}

fn total_conns(v: &Views) -> u64 {
    v.stats
        .iter()
        .filter_map(|s| s.info.numbers)
        .map(|n| n[0])
        .sum()
}

fn conns_for(v: &Views, vip: &str) -> u64 {
    v.conns
        .iter()
        .filter(|(k, _): &(&ConnKey, _)| k.virtual_addr.to_string() == vip)
        .map(|(_, n)| n)
        .sum()
}

/// The optional modules (`LAB_OPTIONAL_MODULES` in tests/lab/lib/host.sh) this kernel's package
/// lacks, as the guest recorded them.
fn modules_absent() -> Vec<String> {
    let top = results().parent().expect("results/scenarios has a parent");
    read(top, "modules-absent.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The guest ran the kernel asked for (its `uname -r`), and every module the lab loads went in.
#[test]
fn kernel_is_the_one_asked_for() {
    let release = vm::kernel_release(results());
    let top = results().parent().expect("results/scenarios has a parent");
    let log = read(top, "modules.log");
    assert!(
        !log.contains("FAILED"),
        "kernel {release}: a module did not load:\n{log}"
    );
    eprintln!(
        "kernel {release}: optional modules absent {:?}, built in: {:?}",
        modules_absent(),
        read(top, "modules-builtin.txt")
            .split_whitespace()
            .collect::<Vec<_>>()
    );
}

#[test]
fn schedulers() {
    let (v, _) = check("01-schedulers");
    let scheds: Vec<&str> = v.list.iter().map(|s| s.info.scheduler.as_str()).collect();
    for s in [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
    ] {
        assert!(
            scheds.contains(&s),
            "scheduler {s} missing from ipvsadm: {scheds:?}"
        );
    }
    // twos (ip_vs_twos) ships from 6.12 on (Debian's 6.1 has the option but not set, 5.10 does
    // not have it): there it is one more service compared field by field by `check`; before,
    // the lab must have found the module missing, and no twos service may exist.
    let release = vm::kernel_release(results());
    let absent = modules_absent();
    if vm::kernel_version(results()) >= (6, 12) {
        assert!(
            scheds.contains(&"twos"),
            "kernel {release}: scheduler twos missing from ipvsadm: {scheds:?}"
        );
        assert!(
            !absent.iter().any(|m| m == "ip_vs_twos"),
            "kernel {release}: ip_vs_twos named absent: {absent:?}"
        );
    } else {
        assert!(
            absent.iter().any(|m| m == "ip_vs_twos"),
            "kernel {release}: ip_vs_twos is not named absent ({absent:?}), yet twos is not expected before 6.12"
        );
        assert!(
            !scheds.contains(&"twos"),
            "kernel {release}: a twos service exists: {scheds:?}"
        );
    }
    assert!(
        v.list.iter().any(|s| s.info.sched_flags == 3),
        "no service with scheduler flags 1+2"
    );
}

#[test]
fn protocols() {
    let (v, _) = check("02-protocols");
    assert_eq!(v.list.len(), 8, "services in 02-protocols");
}

#[test]
fn ipv6() {
    let (v, _) = check("03-ipv6");
    assert!(v.list.iter().any(|s| s.info.mask.as_deref() == Some("64")));
    assert!(v.list.len() >= 5, "IPv6 services: {}", v.list.len());
}

#[test]
fn persistence() {
    let (v, _) = check("04-persistence");
    assert!(v.list.iter().any(|s| s.info.pe.as_deref() == Some("sip")));
    assert!(v
        .list
        .iter()
        .any(|s| s.info.mask.as_deref() == Some("255.255.255.0")));
}

#[test]
fn one_packet() {
    let (v, _) = check("05-one-packet");
    assert_eq!(v.list.iter().filter(|s| s.info.one_packet).count(), 2);
}

#[test]
fn thresholds() {
    let (v, _) = check("06-thresholds");
    let t: Vec<(u32, u32)> = v
        .thresholds
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| (d.upper, d.lower)))
        .collect();
    assert!(
        t.contains(&(1000, 800)) && t.contains(&(2147483647, 2147483647)),
        "{t:?}"
    );
}

#[test]
fn forwarding() {
    let (v, _) = check("07-forwarding");
    let infos: Vec<&str> = v
        .tun
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| d.tun_info.as_str()))
        .collect();
    for want in [
        "ipip",
        "gue:6080:-c",
        "gue:6081:+c",
        "gue:6082:r+c",
        "gre:-c",
        "gre:+c",
    ] {
        assert!(
            infos.contains(&want),
            "tunnel info {want} missing: {infos:?}"
        );
    }
}

#[test]
fn sync_daemons() {
    let (v, _) = check("08-sync-daemon");
    assert_eq!(v.daemons.len(), 2, "{:?}", v.daemons);
}

#[test]
fn timeouts() {
    let (v, _) = check("09-timeouts");
    assert_eq!(
        (v.timeouts.tcp, v.timeouts.tcp_fin, v.timeouts.udp),
        (3600, 30, 45)
    );
}

#[test]
fn empty() {
    let (v, d) = check("10-empty");
    assert!(v.list.is_empty() && d.snapshot.services.is_empty());
}

#[test]
fn another_network_namespace() {
    let (v, d) = check("12-netns");
    let keys: Vec<String> = v.list.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(keys.len(), 3, "namespace lb's services: {keys:?}");
    assert_eq!(
        d.snapshot.services.len(),
        3,
        "services in `dump --netns lb`"
    );
    assert!(
        !keys.iter().any(|k| k.contains("203.0.113.41")),
        "the director's own service leaked into lb's views: {keys:?}"
    );
}

#[test]
fn unprivileged_daemon_falls_back_to_procfs() {
    let name = "13-unprivileged";
    let (before, _) = check(name);
    let dir = results().join(name);
    assert!(
        read(&dir, "unpriv-id.txt").contains("uid=65534"),
        "not run as uid 65534: {}",
        read(&dir, "unpriv-id.txt")
    );
    // ipvsadm right after the unprivileged reads, as root: the state they saw.
    let after = compare::load_views(&dir.join("unpriv-after"))
        .unwrap_or_else(|e| panic!("scenario {name}: unpriv-after: {e}"));
    assert_eq!(
        after.list, before.list,
        "the IPVS state changed between the root and the unprivileged reads"
    );
    let d = dump::parse_dump(&read(&dir, "unpriv-dump.json")).unwrap_or_else(|e| {
        panic!(
            "unprivileged dump: {e}; stderr: {}",
            read(&dir, "unpriv-dump.err")
        )
    });
    assert_eq!(
        d.source.as_deref(),
        Some("procfs"),
        "the unprivileged dump did not fall back to procfs; stderr: {}",
        read(&dir, "unpriv-dump.err")
    );
    let mut problems = Vec::new();
    let o = compare::compare_procfs(&after, &d);
    assert!(o.fields_checked > 0, "nothing compared in the dump");
    problems.extend(o.mismatches.iter().map(|m| format!("dump: {m}")));
    let samples = lab_support::metrics::parse(&read(&dir, "unpriv-metrics.txt"))
        .unwrap_or_else(|e| panic!("unpriv-metrics.txt: {e}"));
    let m = lab_support::metrics::compare_procfs(&after, &samples);
    assert!(m.fields_checked > 0, "nothing compared in the scrape");
    problems.extend(m.mismatches.iter().map(|x| format!("scrape: {x}")));
    assert!(
        problems.is_empty(),
        "the unprivileged daemon differs from ipvsadm:\n  {}",
        problems.join("\n  ")
    );
    eprintln!(
        "{name}: unprivileged dump (procfs) {} fields and scrape {} values equal ipvsadm",
        o.fields_checked, m.fields_checked
    );
}

#[test]
fn many_services() {
    let (v, _) = check("11-many");
    assert_eq!(v.list.len(), 300);
    assert!(v.list.iter().all(|s| s.dests.len() == 10));
}

/// Who answered the scenario's HTTP requests to `vip:port`: real-server name → requests, from
/// the response bodies the client recorded (`client_http` in tests/lab/guest/lib.sh). The real
/// servers answer their own name, so this is the split as the client saw it, independent of
/// the kernel's counters.
fn answers(name: &str, vip: &str, port: u16) -> std::collections::BTreeMap<String, u64> {
    let dir = results().join(name);
    let mut by_server = std::collections::BTreeMap::new();
    for line in read(&dir, &format!("answers-{vip}-{port}")).lines() {
        *by_server.entry(line.trim().to_string()).or_insert(0) += 1;
    }
    by_server
}

/// The kernel's connection counter of each destination of `service` (`TCP VIP:PORT`), in
/// ipvsadm's order (the order the scenario added them).
fn conns_per_dest(v: &Views, service: &str) -> Vec<u64> {
    v.stats
        .iter()
        .find(|s| s.key.to_string() == service)
        .unwrap_or_else(|| panic!("{service} missing from ipvsadm --stats"))
        .dests
        .iter()
        .map(|d| d.numbers[0])
        .collect()
}

/// Every request answered, by the real servers in `want` proportions, and the kernel's
/// per-destination connection counters agree with the client's view.
fn assert_split(name: &str, v: &Views, vip: &str, want: &[(&str, u64)]) {
    let got = answers(name, vip, 80);
    let want_map: std::collections::BTreeMap<String, u64> =
        want.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    assert_eq!(
        got, want_map,
        "{name}: who answered the requests to {vip}:80 (every request must be answered, split by the weights)"
    );
    assert_eq!(
        conns_per_dest(v, &format!("TCP {vip}:80")),
        want.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        "{name}: the kernel's connections per destination"
    );
}

#[test]
fn nat_traffic() {
    let (v, _) = check("20-nat-traffic");
    assert!(
        total_conns(&v) >= 36,
        "NAT traffic made {} connections",
        total_conns(&v)
    );
    assert!(
        v.conns.keys().any(|k| k.protocol == "udp"),
        "no UDP entry in -Lnc"
    );
    // wrr 2:1 over the 30 requests to :80, every one answered.
    assert_split(
        "20-nat-traffic",
        &v,
        "203.0.113.20",
        &[("r1", 20), ("r2", 10)],
    );
    let s = v
        .stats
        .iter()
        .find(|s| s.key.to_string() == "TCP 203.0.113.20:80")
        .expect("NAT service in --stats");
    assert!(
        s.dests.iter().all(|d| d.numbers[2] > 0),
        "NAT replies counted"
    );
}

#[test]
fn persistent_traffic() {
    let (v, _) = check("23-persistent-traffic");
    assert!(conns_for(&v, "203.0.113.23:8080") >= 10);
    assert!(
        v.conns
            .keys()
            .any(|k| k.protocol == "template" && k.virtual_addr.to_string() == "203.0.113.23:8080"),
        "no persistence template in -Lnc"
    );
    let p = v
        .pconn
        .iter()
        .find(|s| s.key.to_string() == "TCP 203.0.113.23:8080")
        .expect("persistent service in --persistent-conn");
    assert_eq!(
        p.dests.iter().map(|d| d.persistent).sum::<u32>(),
        1,
        "one client, one template"
    );
}

#[test]
fn dr_traffic() {
    let (v, _) = check("21-dr-traffic");
    // wrr 3:1 over 20 requests; the replies go straight back from the real servers.
    assert_split(
        "21-dr-traffic",
        &v,
        "203.0.113.21",
        &[("r1", 15), ("r2", 5)],
    );
    assert!(conns_for(&v, "203.0.113.21:80") >= 20);
}

#[test]
fn tun_traffic() {
    let (v, _) = check("22-tun-traffic");
    // wrr 2:1 over 12 requests, IPIP-encapsulated to both real servers.
    assert_split(
        "22-tun-traffic",
        &v,
        "203.0.113.22",
        &[("r1", 8), ("r2", 4)],
    );
    assert!(conns_for(&v, "203.0.113.22:80") >= 12);
}

#[test]
fn exporter_metrics() {
    let v = check_metrics("24-exporter");
    assert!(conns_for(&v, "203.0.113.24:80") >= 16);
    assert_eq!(v.list.len(), 3);
}

#[test]
fn label_subset_table() {
    // The table the exporter's cardinality options are tried on (tests/lab_exporter.rs): the
    // dump equals ipvsadm like every other scenario's.
    let (v, d) = check("25-label-subset");
    assert_eq!(v.list.len(), 7);
    assert_eq!(d.snapshot.services.len(), 7);
}
