//! The shipped systemd unit under a real systemd (issue 12): one QEMU boot (`tests/lab/lab.sh
//! systemd`) whose PID 1 is the host's systemd (Debian 12, 252). `config/ipvs-herald.service`,
//! unchanged, reads network namespace `lb` (`[reader] netns = "lb"`, made by `ip netns add`)
//! first without and then with `config/ipvs-herald-netns.conf` as its drop-in. The checks: the
//! guest's PID 1 was systemd; without the drop-in the daemon could not enter `lb` (setns EPERM,
//! `ipvs_up 0`); with it the unit ran as a dynamic user with the drop-in's capabilities and its
//! scrape equals ipvsadm run inside `lb`, value for value, without the director's own service.
//!
//! Not part of the plain `cargo test` run (`test = false`); `cargo test --test lab_systemd`
//! boots (tests/README.md). `IPVS_HERALD_SYSTEMD_RESULTS=<dir>` checks an existing
//! `target/lab/systemd/results/systemd` instead of booting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test
#![forbid(unsafe_code)]

mod lab_support;

use lab_support::vm::{self, read, tail};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The boot's results, booted once for every test of this binary.
fn results() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(|| {
        vm::boot(
            "systemd",
            "IPVS_HERALD_SYSTEMD_RESULTS",
            "systemd/results/systemd",
            "systemd/console.log",
        )
    }) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// `systemctl show`'s `KEY=value` lines as (key, value).
fn show(dir: &Path) -> Vec<(String, String)> {
    read(dir, "show.txt")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn prop<'a>(props: &'a [(String, String)], key: &str) -> &'a str {
    props
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("systemctl show printed no {key}: {props:?}"))
}

/// A `/proc/PID/status` field.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in /proc/PID/status:\n{status}"))
}

#[test]
fn systemd_was_pid_1() {
    let r = results();
    assert_eq!(read(r, "pid1-comm.txt").trim(), "systemd");
    assert!(
        read(r, "systemd-version.txt").starts_with("systemd "),
        "systemctl --version: {}",
        read(r, "systemd-version.txt")
    );
}

#[test]
fn without_the_drop_in_the_namespace_is_refused() {
    let r = results();
    let journal = read(&r.join("without"), "journal.txt");
    assert!(
        journal.contains("cannot enter network namespace lb: setns(/run/netns/lb): EPERM"),
        "the unit without the drop-in did not fail to enter lb; its journal ends with:\n{}",
        tail(&journal, 30)
    );
    let props = show(&r.join("without"));
    assert_eq!(prop(&props, "DropInPaths"), "", "a drop-in was installed");
    assert_eq!(prop(&props, "RestrictNamespaces"), "yes");
    // The daemon stays up (the documented behaviour while IPVS is unreadable) and says so.
    let samples = lab_support::metrics::parse(&read(r, "without-metrics.txt"))
        .unwrap_or_else(|e| panic!("without-metrics.txt: {e}"));
    let up: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == "ipvs_up")
        .map(|s| s.value)
        .collect();
    assert_eq!(up, [0.0], "ipvs_up without the drop-in");
}

#[test]
fn with_the_drop_in_the_unit_serves_the_namespace() {
    let r = results();
    let w = r.join("with");
    assert_eq!(
        read(r, "with-start.rc").trim(),
        "0",
        "systemctl start with the drop-in: {}",
        read(r, "with-start.txt")
    );
    assert_eq!(
        read(&w, "is-active.txt").trim(),
        "active",
        "{}",
        read(&w, "status.txt")
    );
    let props = show(&w);
    assert_eq!(
        prop(&props, "DropInPaths"),
        "/etc/systemd/system/ipvs-herald.service.d/netns.conf"
    );
    assert_eq!(prop(&props, "DynamicUser"), "yes");
    assert_eq!(prop(&props, "RestrictNamespaces"), "net");
    assert_eq!(prop(&props, "NRestarts"), "0");
    // The main process: a dynamic user (systemd's 61184-65519 range), with exactly the drop-in's
    // capabilities (CAP_NET_BIND_SERVICE 10, CAP_NET_ADMIN 12, CAP_SYS_ADMIN 21).
    let status = read(&w, "proc-status.txt");
    let uid: u32 = status_field(&status, "Uid")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (61184..=65519).contains(&uid),
        "the daemon ran as uid {uid}, not a dynamic user"
    );
    let caps = (1u64 << 10) | (1 << 12) | (1 << 21);
    for key in ["CapEff", "CapBnd", "CapAmb"] {
        let v = u64::from_str_radix(status_field(&status, key), 16).unwrap();
        assert_eq!(v, caps, "{key} {v:#x}");
    }
    let journal = read(&w, "journal.txt");
    assert!(
        journal.contains("IPVS readable services=2"),
        "the daemon did not read lb's two services; journal:\n{}",
        tail(&journal, 30)
    );
    assert!(!journal.contains("cannot enter network namespace"));

    // The scrape equals ipvsadm inside lb, read just before and just after it (the same
    // state: the table is static and has no traffic).
    let before = lab_support::compare::load_views(&w).unwrap_or_else(|e| panic!("{e}"));
    let after =
        lab_support::compare::load_views(&w.join("after")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        before.list, after.list,
        "lb's table changed around the scrape"
    );
    assert_eq!(before.list.len(), 2, "lb's services: {:?}", before.list);
    assert!(
        !r.join("unsettled").exists(),
        "IPVS counters did not settle"
    );
    let text = read(&w, "metrics.txt");
    let samples = lab_support::metrics::parse(&text).unwrap_or_else(|e| panic!("metrics.txt: {e}"));
    let o = lab_support::metrics::compare(&before, &samples);
    assert!(o.fields_checked > 0, "nothing compared in the scrape");
    assert!(
        o.mismatches.is_empty(),
        "the unit's scrape differs from ipvsadm inside lb:\n  {}",
        o.mismatches.join("\n  ")
    );
    let info: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "ipvs_reader_info")
        .collect();
    assert_eq!(info.len(), 1, "ipvs_reader_info: {info:?}");
    assert_eq!(info[0].value, 1.0);
    assert!(
        info[0].labels.get("source").map(String::as_str) == Some("netlink"),
        "ipvs_reader_info: {info:?}"
    );
    assert!(
        text.contains("203.0.113.40") && !text.contains("203.0.113.41"),
        "the scrape is not lb's table alone (203.0.113.41 is the director's own service)"
    );
    eprintln!(
        "systemd: the shipped unit with the netns drop-in, uid {uid}: {} scraped values equal ipvsadm inside lb",
        o.fields_checked
    );
}
