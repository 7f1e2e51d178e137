//! The procfs parsers on real `/proc/net/ip_vs` and `/proc/net/ip_vs_stats` captured by the lab
//! from each kernel it boots (Debian's 5.10, 6.1 and 6.12), compared with the netlink dump taken
//! at the same moment (which the lab checked against ipvsadm). See `tests/data/kernel-6.1/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::model::{ServiceKey, Snapshot};
use herald_shared::procfs::{parse_ip_vs, parse_ip_vs_stats};
use std::path::Path;

/// CONFIG_HZ of the captured kernels (Debian's 5.10, 6.1 and 6.12 cloud kernels all set
/// CONFIG_HZ=250): 90000 jiffies printed for `-p 360`.
const HZ: u32 = 250;

#[test]
fn kernel_procfs_matches_the_netlink_dump() {
    for k in ["5.10", "6.1", "6.12"] {
        check_kernel(k);
    }
}

fn check_kernel(kernel: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/kernel-{kernel}"));
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        // One directory per scenario (`NN-name`); `netlink/` holds that kernel's vectors.
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "netlink"))
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 10,
        "kernel {kernel}: only {} scenario captures",
        dirs.len()
    );
    let mut services_checked = 0;
    let mut dests_checked = 0;
    for dir in dirs {
        let name = dir.display().to_string();
        let text = std::fs::read_to_string(dir.join("ip_vs")).unwrap();
        let (info, svcs) = parse_ip_vs(&text, HZ).unwrap_or_else(|e| panic!("{name}: {e}"));
        let nl: Snapshot =
            serde_json::from_str(&std::fs::read_to_string(dir.join("dump.json")).unwrap())
                .unwrap_or_else(|e| panic!("{name}/dump.json: {e}"));
        assert_eq!(info, nl.info, "{name}");
        assert_eq!(svcs.len(), nl.services.len(), "{name}: service count");
        for p in &svcs {
            // procfs cannot tell an IPv6 fwmark service without IPv6 destinations: match on
            // the mark alone then.
            let n = nl
                .services
                .iter()
                .find(|n| match (&n.key, &p.key) {
                    (ServiceKey::Fwmark { mark: a, .. }, ServiceKey::Fwmark { mark: b, .. }) => {
                        a == b
                    }
                    (a, b) => a == b,
                })
                .unwrap_or_else(|| panic!("{name}: {} not in the netlink dump", p.key));
            let what = format!("{name}: {}", p.key);
            assert_eq!(p.scheduler, n.scheduler, "{what}");
            assert_eq!(p.flags.persistent, n.flags.persistent, "{what}");
            if p.key.family() == n.key.family() {
                assert_eq!(p.flags.one_packet, n.flags.one_packet, "{what}");
            }
            if p.flags.persistent {
                assert_eq!(p.persistence_timeout, n.persistence_timeout, "{what}");
                assert_eq!(p.netmask, n.netmask, "{what}: netmask");
            }
            assert_eq!(p.destinations.len(), n.destinations.len(), "{what}");
            for pd in &p.destinations {
                let nd = n
                    .destinations
                    .iter()
                    .find(|d| d.address == pd.address && d.port == pd.port)
                    .unwrap_or_else(|| panic!("{what}: {} not in netlink", pd.address));
                assert_eq!(pd.forward, nd.forward, "{what} -> {}", pd.address);
                assert_eq!(pd.weight, nd.weight, "{what} -> {}", pd.address);
                assert_eq!(pd.active_conns, nd.active_conns, "{what} -> {}", pd.address);
                assert_eq!(
                    pd.inactive_conns, nd.inactive_conns,
                    "{what} -> {}",
                    pd.address
                );
                dests_checked += 1;
            }
            services_checked += 1;
        }
        let g = parse_ip_vs_stats(&std::fs::read_to_string(dir.join("ip_vs_stats")).unwrap())
            .unwrap_or_else(|e| panic!("{name}/ip_vs_stats: {e}"));
        assert_eq!(Some(g), nl.global, "{name}: global stats");
    }
    eprintln!(
        "kernel {kernel}: {services_checked} services and {dests_checked} destinations compared"
    );
    assert!(
        services_checked >= 30 && dests_checked >= 40,
        "kernel {kernel}: only {services_checked} services and {dests_checked} destinations"
    );
}
