//! Tests of the families builder on fixed and random snapshots, through the rendered exposition.

use super::*;
use crate::exposition::oracle::{check_series, parse_exposition, render_snapshot};
use crate::exposition::Format;
use crate::fixture::{addr_key, dest, rich_conn_table, rich_snapshot, service};
use herald_shared::model::{AddressFamily, Protocol, ServiceKey, SnapshotSource};

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    parse_exposition(text)
        .unwrap()
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn render(cfg: &Config) -> String {
    render_snapshot(
        &rich_snapshot(),
        Some(&rich_conn_table()),
        cfg,
        Format::Prometheus,
    )
}

const WEB: [(&str, &str); 3] = [
    ("protocol", "tcp"),
    ("address", "192.0.2.10"),
    ("port", "80"),
];

#[test]
fn procfs_snapshots_leave_out_what_procfs_cannot_see() {
    let mut snap = rich_snapshot();
    snap.source = SnapshotSource::Procfs;
    let t = render_snapshot(&snap, None, &Config::default(), Format::Prometheus);
    assert_eq!(
        value(&t, "ipvs_reader_info", &[("source", "procfs")]).as_deref(),
        Some("1")
    );
    assert!(value(&t, "ipvs_service_connections_total", &WEB).is_none());
    assert!(value(&t, "ipvs_service_persistent_connections", &WEB).is_none());
    assert!(!t.contains("ipvs_destination_incoming_bytes_total"), "{t}");
    assert!(!t.contains("ipvs_destination_upper_threshold_connections{"));
    // What procfs does show is still there.
    assert!(value(&t, "ipvs_service_active_connections", &WEB).is_some());
    assert!(t.contains("ipvs_destination_weight{"));
    let netlink = render(&Config::default());
    assert_eq!(
        value(&netlink, "ipvs_reader_info", &[("source", "netlink")]).as_deref(),
        Some("1")
    );
    assert!(value(&netlink, "ipvs_service_connections_total", &WEB).is_some());
}

#[test]
fn rich_snapshot_series_are_unique_and_labelled() {
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            &Config::default(),
            format,
        );
        check_series(&text).unwrap_or_else(|e| panic!("{format:?}: {e:#?}\n{text}"));
    }
}

#[test]
fn counters_and_gauges_carry_the_model_values() {
    let t = render(&Config::default());
    assert_eq!(
        value(&t, "ipvs_service_incoming_bytes_total", &WEB).as_deref(),
        Some("5000000006")
    );
    assert_eq!(
        value(&t, "ipvs_service_connections_total", &WEB).as_deref(),
        Some("6000")
    );
    assert_eq!(
        value(&t, "ipvs_service_active_connections", &WEB).as_deref(),
        Some("77")
    );
    assert_eq!(
        value(&t, "ipvs_service_inactive_connections", &WEB).as_deref(),
        Some("23")
    );
    assert_eq!(
        value(&t, "ipvs_service_destinations", &WEB).as_deref(),
        Some("3")
    );
    assert_eq!(
        value(&t, "ipvs_service_usable_destinations", &WEB).as_deref(),
        Some("2")
    );
    let d1 = [
        WEB[0],
        WEB[1],
        WEB[2],
        ("dest_address", "198.51.100.1"),
        ("dest_port", "80"),
    ];
    assert_eq!(
        value(&t, "ipvs_destination_weight", &d1).as_deref(),
        Some("100")
    );
    assert_eq!(
        value(&t, "ipvs_destination_upper_threshold_connections", &d1).as_deref(),
        Some("5000")
    );
    assert_eq!(
        value(&t, "ipvs_destination_lower_threshold_connections", &d1).as_deref(),
        Some("4000")
    );
    assert_eq!(
        value(&t, "ipvs_destination_active_connections", &d1).as_deref(),
        Some("40")
    );
    assert_eq!(
        value(
            &t,
            "ipvs_destination_estimated_incoming_bytes_per_second",
            &d1
        )
        .as_deref(),
        Some("41000")
    );
    assert_eq!(
        value(&t, "ipvs_outgoing_bytes_total", &[]).as_deref(),
        Some("2199023255557")
    );
    assert_eq!(
        value(&t, "ipvs_estimated_incoming_bytes_per_second", &[]).as_deref(),
        Some("1250000")
    );
    assert_eq!(
        value(&t, "ipvs_timeout_seconds", &[("timeout", "tcp_fin")]).as_deref(),
        Some("120")
    );
    assert_eq!(
        value(&t, "ipvs_connection_table_size", &[]).as_deref(),
        Some("4096")
    );
    assert_eq!(
        value(&t, "ipvs_info", &[("version", "1.2.1")]).as_deref(),
        Some("1")
    );
    assert_eq!(
        value(&t, "ipvs_sync_daemons", &[("role", "backup")]).as_deref(),
        Some("1")
    );
    assert_eq!(
        value(
            &t,
            "ipvs_sync_daemon_info",
            &[
                ("role", "master"),
                ("interface", "eth1"),
                ("sync_id", "51"),
                ("max_len", "1472"),
                ("mcast_group", "224.0.0.81"),
                ("mcast_port", "8848"),
                ("mcast_ttl", "1")
            ]
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        value(
            &t,
            "ipvs_sync_daemon_info",
            &[("role", "backup"), ("interface", "eth1"), ("sync_id", "51")]
        )
        .as_deref(),
        Some("1")
    );
}

#[test]
fn info_metrics_describe_services_and_destinations() {
    let t = render(&Config::default());
    let sip = [
        ("protocol", "udp"),
        ("address", "192.0.2.60"),
        ("port", "5060"),
    ];
    let mut l = sip.to_vec();
    l.extend([
        ("scheduler", "wrr"),
        ("flags", "persistent,hashed"),
        ("netmask", "255.255.255.0"),
        ("pe", "sip"),
    ]);
    assert_eq!(value(&t, "ipvs_service_info", &l).as_deref(), Some("1"));
    assert_eq!(
        value(&t, "ipvs_service_persistence_timeout_seconds", &sip).as_deref(),
        Some("360")
    );
    assert_eq!(
        value(
            &t,
            "ipvs_destination_persistent_connections",
            &[
                sip[0],
                sip[1],
                sip[2],
                ("dest_address", "198.51.100.60"),
                ("dest_port", "5060")
            ]
        )
        .as_deref(),
        Some("7")
    );
    let fwm6 = [("protocol", "fwm"), ("family", "ipv6"), ("mark", "7")];
    let mut l = fwm6.to_vec();
    l.extend([
        ("scheduler", "ovf"),
        ("flags", "persistent,hashed"),
        ("netmask", "64"),
    ]);
    assert_eq!(value(&t, "ipvs_service_info", &l).as_deref(), Some("1"));
    let sctp = [
        ("protocol", "sctp"),
        ("address", "192.0.2.20"),
        ("port", "3868"),
        ("dest_address", "198.51.100.20"),
        ("dest_port", "3868"),
    ];
    let mut l = sctp.to_vec();
    l.extend([
        ("forward", "tunnel"),
        ("dest_family", "ipv4"),
        ("tunnel_type", "gue"),
        ("tunnel_port", "6080"),
        ("tunnel_flags", "csum"),
    ]);
    assert_eq!(
        value(&t, "ipvs_destination_info", &l).as_deref(),
        Some("1"),
        "{t}"
    );
    // A non-persistent service has no netmask and no persistence timeout.
    assert!(!t.lines().any(|l| l
        .starts_with("ipvs_service_info{protocol=\"tcp\",address=\"192.0.2.10\"")
        && l.contains("netmask")));
    assert_eq!(
        value(&t, "ipvs_service_persistence_timeout_seconds", &WEB),
        None
    );
}

#[test]
fn fwmark_services_of_both_families_are_distinct_and_have_no_address() {
    let t = render(&Config::default());
    let v4 = [("protocol", "fwm"), ("family", "ipv4"), ("mark", "7")];
    let v6 = [("protocol", "fwm"), ("family", "ipv6"), ("mark", "7")];
    assert!(value(&t, "ipvs_service_connections_total", &v4).is_some());
    assert!(value(&t, "ipvs_service_connections_total", &v6).is_some());
    for s in parse_exposition(&t).unwrap() {
        if s.labels.get("protocol").map(String::as_str) == Some("fwm") {
            assert!(
                !s.labels.contains_key("address") && !s.labels.contains_key("port"),
                "{s:?}"
            );
        }
    }
}

#[test]
fn connection_table_counts_by_state_and_templates() {
    let t = render(&Config::default());
    let l = [
        WEB[0],
        WEB[1],
        WEB[2],
        ("dest_address", "198.51.100.1"),
        ("dest_port", "80"),
        ("state", "TIME_WAIT"),
    ];
    assert_eq!(
        value(&t, "ipvs_connection_table_connections", &l).as_deref(),
        Some("9")
    );
    let tl = [
        ("address", "192.0.2.60"),
        ("port", "5060"),
        ("dest_address", "198.51.100.60"),
        ("dest_port", "5060"),
    ];
    assert_eq!(
        value(&t, "ipvs_connection_table_templates", &tl).as_deref(),
        Some("7")
    );
    // Without per-destination series the table is summed per service and state.
    let cfg = Config {
        per_destination: false,
        ..Config::default()
    };
    let t = render(&cfg);
    let l = [WEB[0], WEB[1], WEB[2], ("state", "ESTABLISHED")];
    assert_eq!(
        value(&t, "ipvs_connection_table_connections", &l).as_deref(),
        Some("75")
    );
    assert!(!t.contains("ipvs_destination_"), "per_destination = false");
    assert!(!t.contains("dest_address"));
    check_series(&t).unwrap();
}

#[test]
fn names_filters_and_cardinality_controls() {
    let cfg: Config = toml::from_str(
        r#"
        [[exclude]]
        protocol = "udp"
        [[exclude]]
        fwmark = 7
        [service_names]
        "tcp/192.0.2.10:80" = "web \"front\""
        "#,
    )
    .unwrap();
    let t = render(&cfg);
    check_series(&t).unwrap();
    let named = [WEB[0], WEB[1], WEB[2], ("name", "web \"front\"")];
    assert_eq!(
        value(&t, "ipvs_service_connections_total", &named).as_deref(),
        Some("6000")
    );
    assert!(
        t.contains(r#"name="web \"front\"""#),
        "label values are escaped"
    );
    assert!(
        !t.contains("protocol=\"udp\""),
        "udp excluded, also from the connection table"
    );
    assert!(
        !t.contains("mark=\"7\""),
        "fwmark 7 excluded (both families)"
    );
    assert!(t.contains("protocol=\"sctp\""));
    // Include only IPv6.
    let cfg: Config = toml::from_str("[[include]]\naddress = \"2001:db8::/32\"\n").unwrap();
    let t = render(&cfg);
    let svcs: std::collections::BTreeSet<String> = parse_exposition(&t)
        .unwrap()
        .into_iter()
        .filter(|s| s.name == "ipvs_service_connections_total")
        .map(|s| s.labels["address"].clone())
        .collect();
    assert_eq!(
        svcs.into_iter().collect::<Vec<_>>(),
        vec!["2001:db8::10".to_string()]
    );
}

#[test]
fn imbalance_is_defined_as_documented() {
    // Equal weights, 50/47 connections (the drained destination does not count).
    let d = vec![
        dest("198.51.100.1", 80, 100, 40, 10),
        dest("198.51.100.2", 80, 100, 35, 12),
        dest("198.51.100.3", 80, 0, 2, 1),
    ];
    let r = imbalance(&d).unwrap();
    assert!((r - (50.0 / 97.0) / 0.5).abs() < 1e-9, "{r}");
    // Exactly as weighted (3:1) = 1.
    let d = vec![
        dest("198.51.100.1", 80, 3, 30, 0),
        dest("198.51.100.2", 80, 1, 10, 0),
    ];
    assert!((imbalance(&d).unwrap() - 1.0).abs() < 1e-12);
    // Everything on the light destination: its share 1 against weight share 1/4 = 4.
    let d = vec![
        dest("198.51.100.1", 80, 3, 0, 0),
        dest("198.51.100.2", 80, 1, 10, 0),
    ];
    assert!((imbalance(&d).unwrap() - 4.0).abs() < 1e-12);
    // Nothing to measure.
    assert_eq!(imbalance(&[]), None);
    assert_eq!(imbalance(&[dest("198.51.100.1", 80, 0, 5, 5)]), None);
    assert_eq!(imbalance(&[dest("198.51.100.1", 80, 1, 0, 0)]), None);
    // Negative weights (nonsense from the kernel) count as 0.
    assert_eq!(imbalance(&[dest("198.51.100.1", 80, -1, 5, 5)]), None);
    // Huge values do not overflow.
    let d = vec![
        dest("198.51.100.1", 80, i32::MAX, u32::MAX, u32::MAX),
        dest("198.51.100.2", 80, 1, 0, 0),
    ];
    assert!(imbalance(&d).unwrap().is_finite());
    let t = render(&Config::default());
    assert!(value(&t, "ipvs_service_imbalance_ratio", &WEB).is_some());
    assert_eq!(
        value(
            &t,
            "ipvs_service_imbalance_ratio",
            &[
                ("protocol", "tcp"),
                ("address", "203.0.113.5"),
                ("port", "8080")
            ]
        ),
        None,
        "no destinations: absent"
    );
}

#[test]
fn duplicates_in_a_snapshot_are_dropped_not_exported_twice() {
    let mut s = rich_snapshot();
    let first = s.services[0].clone();
    s.services.push(first);
    let d0 = s.services[1].destinations[0].clone();
    s.services[1].destinations.push(d0);
    s.daemons.push(s.daemons[0].clone());
    let built = build(s.clone(), None, &Config::default());
    assert_eq!(built.duplicates_dropped, 3);
    let t = render_snapshot(&s, None, &Config::default(), Format::OpenMetrics);
    check_series(&t).unwrap();
}

#[test]
fn empty_and_odd_snapshots_render_cleanly() {
    let t = render_snapshot(
        &Snapshot::default(),
        None,
        &Config::default(),
        Format::Prometheus,
    );
    check_series(&t).unwrap();
    assert_eq!(
        value(&t, "ipvs_info", &[("version", "0.0.0")]).as_deref(),
        Some("1")
    );
    let mut odd = service(
        addr_key(Protocol::Tcp, "192.0.2.1", 0),
        "",
        vec![dest("0.0.0.0", 0, 0, 0, 0)],
    );
    odd.pe_name = Some(String::new());
    let snap = Snapshot {
        services: vec![odd],
        ..Snapshot::default()
    };
    let t = render_snapshot(
        &snap,
        Some(&ConnTableSummary::default()),
        &Config::default(),
        Format::Prometheus,
    );
    check_series(&t).unwrap();
    assert!(t.contains("scheduler=\"unknown\""));
    assert!(!t.contains("pe=\""));
}

/// Deterministic xorshift generator, so that failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_snapshots_never_produce_duplicate_or_empty_labels() {
    use herald_shared::conntable::{ConnGroup, ConnProtocol};
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let addrs = [
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::1",
        "::ffff:192.0.2.1",
        "0.0.0.0",
        "::",
    ];
    for round in 0..300 {
        let mut snap = Snapshot::default();
        let mut conn = ConnTableSummary::default();
        for _ in 0..rng.below(8) {
            let key = match rng.below(4) {
                0 => ServiceKey::Fwmark {
                    family: if rng.below(2) == 0 {
                        AddressFamily::Inet
                    } else {
                        AddressFamily::Inet6
                    },
                    mark: rng.below(3) as u32,
                },
                p => addr_key(
                    [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][p as usize - 1],
                    addrs[rng.below(addrs.len() as u64) as usize],
                    rng.below(3) as u16,
                ),
            };
            let dests = (0..rng.below(4))
                .map(|_| {
                    dest(
                        addrs[rng.below(addrs.len() as u64) as usize],
                        rng.below(2) as u16,
                        rng.below(3) as i32 - 1,
                        rng.below(5) as u32,
                        rng.below(5) as u32,
                    )
                })
                .collect();
            snap.services
                .push(service(key, ["rr", "", "mh"][rng.below(3) as usize], dests));
        }
        for _ in 0..rng.below(6) {
            let g = ConnGroup {
                protocol: [
                    ConnProtocol::Tcp,
                    ConnProtocol::Udp,
                    ConnProtocol::Sctp,
                    ConnProtocol::Template,
                ][rng.below(4) as usize],
                virtual_address: addrs[rng.below(addrs.len() as u64) as usize]
                    .parse()
                    .unwrap(),
                virtual_port: rng.below(2) as u16,
                dest_address: addrs[rng.below(addrs.len() as u64) as usize]
                    .parse()
                    .unwrap(),
                dest_port: rng.below(2) as u16,
                state: ["ESTABLISHED", "", "NONE"][rng.below(3) as usize].to_string(),
            };
            conn.groups.insert(g, rng.below(10));
        }
        for per_destination in [true, false] {
            let cfg = Config {
                per_destination,
                ..Config::default()
            };
            let t = render_snapshot(&snap, Some(&conn), &cfg, Format::Prometheus);
            if let Err(e) = check_series(&t) {
                panic!("round {round}: {e:#?}\n{snap:#?}\n{t}");
            }
        }
    }
}
