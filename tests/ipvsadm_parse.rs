//! Unit tests of the lab's ipvsadm parsers and dump comparison, on ipvsadm 1.31 output captured
//! from the lab VM (tests/fixtures/ipvsadm/). These run in the plain `cargo test`; the VM itself
//! runs only with `cargo test --test lab`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test
#![forbid(unsafe_code)]

use crate::lab_support;

use herald_shared::model::{
    AddressFamily, Destination, ForwardMethod, Info, Protocol, Service, ServiceFlags, ServiceKey,
    Snapshot, Stats, SyncRole, Timeouts,
};
use lab_support::compare::{compare, Views};
use lab_support::dump::{parse_dump, Dump};
use lab_support::ipvsadm::*;
use std::net::SocketAddr;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ipvsadm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn list_every_scheduler_and_flags() {
    let (h, svcs) = parse_list(&fixture("schedulers-list.txt")).unwrap();
    assert_eq!(h.version, "1.2.1");
    assert_eq!(h.conn_table_size, 4096);
    assert_eq!(svcs.len(), 15);
    assert!(svcs.iter().all(|s| !s.dests.is_empty()));
    let sh = svcs
        .iter()
        .find(|s| s.key.to_string() == "TCP 203.0.113.2:80")
        .unwrap();
    assert_eq!(sh.info.scheduler, "sh");
    assert_eq!(sh.info.sched_flags, 3);
    assert_eq!(sh.dests[0].forward, "Route");
    let first = &svcs[0].dests[2];
    assert_eq!(first.addr, "192.0.2.13:8080".parse::<SocketAddr>().unwrap());
    assert_eq!((first.weight, first.active, first.inactive), (3, 0, 0));
}

#[test]
fn list_protocols_fwmarks_and_negative_mark() {
    let (_, svcs) = parse_list(&fixture("protocols-list.txt")).unwrap();
    let keys: Vec<String> = svcs.iter().map(|s| s.key.to_string()).collect();
    assert!(keys.contains(&"FWM 4294967295".to_string()), "{keys:?}");
    assert!(keys.contains(&"FWM 8 IPv6".to_string()), "{keys:?}");
    assert!(
        keys.contains(&"SCTP 203.0.113.3:3868".to_string()),
        "{keys:?}"
    );
    let empty = svcs
        .iter()
        .find(|s| s.key.to_string() == "TCP 203.0.113.3:443")
        .unwrap();
    assert!(empty.dests.is_empty());
}

#[test]
fn list_ipv6_persistence_pe_and_ops() {
    let (_, v6) = parse_list(&fixture("ipv6-list.txt")).unwrap();
    let p = v6.iter().find(|s| s.info.persistent.is_some()).unwrap();
    assert_eq!(
        (p.info.persistent, p.info.mask.as_deref()),
        (Some(600), Some("64"))
    );
    assert_eq!(p.key.family(), AddressFamily::Inet6);
    let (_, pers) = parse_list(&fixture("persistence-list.txt")).unwrap();
    let sip = pers.iter().find(|s| s.info.pe.is_some()).unwrap();
    assert_eq!(sip.info.pe.as_deref(), Some("sip"));
    assert_eq!(sip.info.persistent, Some(120));
    let (_, ops) = parse_list(&fixture("one-packet-list.txt")).unwrap();
    assert!(ops.iter().all(|s| s.info.one_packet));
    assert_eq!(ops[1].info.persistent, Some(30));
}

#[test]
fn stats_rate_thresholds_pconn() {
    let (_, st) = parse_stats(&fixture("nat-stats.txt")).unwrap();
    assert_eq!(st[0].info.numbers, Some([30, 208, 150, 11596, 14340]));
    assert_eq!(st[0].dests[0].numbers, [20, 138, 100, 7696, 9560]);
    let (_, rt) = parse_rate(&fixture("nat-rate.txt")).unwrap();
    assert_eq!(rt.len(), 3);
    let (_, th) = parse_thresholds(&fixture("nat-thresholds.txt")).unwrap();
    assert_eq!(th[0].dests.len(), 2);
    let (_, pc) = parse_pconn(&fixture("nat-pconn.txt")).unwrap();
    assert_eq!(pc[1].info.persistent, Some(300));
    assert_eq!(pc[1].dests[1].persistent, 1);
    assert_eq!(pc[0].dests[0].inactive, 20);
    let (_, v6) = parse_stats(&fixture("ipv6-stats.txt")).unwrap();
    assert!(v6.iter().any(|s| s.dests.iter().any(|d| d.addr.is_ipv4())));
}

#[test]
fn tunnel_info() {
    let (_, t) = parse_tun(&fixture("forwarding-tun.txt")).unwrap();
    let infos: Vec<Option<TunInfo>> = t
        .iter()
        .flat_map(|s| s.dests.iter())
        .map(|d| parse_tun_info(0, &d.tun_info).unwrap())
        .collect();
    assert_eq!(infos[0], None);
    assert_eq!(infos[2].unwrap().kind, "ipip");
    assert_eq!(
        infos[4],
        Some(TunInfo {
            kind: "gue",
            port: 6080,
            flags: 0,
            csum: "nocsum"
        })
    );
    assert_eq!(
        infos[5],
        Some(TunInfo {
            kind: "gue",
            port: 6081,
            flags: 1,
            csum: "csum"
        })
    );
    assert_eq!(
        infos[6],
        Some(TunInfo {
            kind: "gue",
            port: 6082,
            flags: 2,
            csum: "remcsum"
        })
    );
    assert_eq!(
        infos[8],
        Some(TunInfo {
            kind: "gre",
            port: 0,
            flags: 1,
            csum: "csum"
        })
    );
    assert!(parse_tun_info(3, "vxlan:-c")
        .unwrap_err()
        .message
        .contains("vxlan"));
}

#[test]
fn daemons_timeouts_global_conns() {
    let d = parse_daemons(&fixture("daemon.txt")).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].role, SyncRole::Master);
    assert_eq!(
        (d[0].sync_id, d[0].max_len, d[0].port, d[0].ttl),
        (7, Some(1400), Some(8848), Some(2))
    );
    assert_eq!(d[1].interface, "lab-sync1");
    assert_eq!(
        parse_timeout(&fixture("timeout.txt")).unwrap(),
        Timeouts {
            tcp: 3600,
            tcp_fin: 30,
            udp: 45
        }
    );
    let g = parse_global(&fixture("nat-global.txt")).unwrap();
    assert_eq!(g.counters, [0x2E, 0x11C, 0xCE, 0x3DE4, 0x4CB4]);
    let c = parse_conns(&fixture("nat-conns.txt")).unwrap();
    assert_eq!(c.values().sum::<u64>(), 31);
    assert!(c
        .keys()
        .any(|k| k.protocol == "template" && k.state == "ASSURED"));
    assert!(c.keys().any(|k| k.protocol == "udp"));
    assert!(parse_conns(&fixture("empty-conns.txt")).unwrap().is_empty());
    assert!(parse_list(&fixture("empty-list.txt")).unwrap().1.is_empty());
}

#[test]
fn bad_input_names_the_line() {
    let e = parse_list("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  203.0.113.1:80 rr\n  -> 192.0.2.1:80 Masq x 0 0\n").unwrap_err();
    assert_eq!(e.line, 5);
    assert!(e.message.contains("weight"), "{e}");
    assert!(parse_list("").is_err());
    assert!(parse_list("garbage")
        .unwrap_err()
        .message
        .contains("header"));
    let e = parse_list("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nICMP 1.2.3.4:0 rr\n").unwrap_err();
    assert_eq!(e.line, 4);
    let e = parse_list("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n  -> 192.0.2.1:80 Masq 1 0 0\n").unwrap_err();
    assert!(e.message.contains("before any service"));
    assert!(parse_timeout("Timeout (tcp tcpfin udp): 1 2").is_err());
    assert!(parse_daemons("master sync daemon (mcast=eth0, syncid=x)").is_err());
    assert!(parse_conns("IPVS connection entries\npro expire state source virtual destination\nTCP 01:00 ESTABLISHED 1.2.3.4:5\n").is_err());
    assert!(parse_global("1\n2\n").is_err());
    assert!(parse_stats(&fixture("nat-stats.txt").replace("11596", "11x96")).is_err());
}

/// Views for a synthetic comparison: the NAT fixtures.
fn nat_views() -> Views {
    let (header, _) = parse_stats(&fixture("nat-stats.txt")).unwrap();
    let (_, stats) = parse_stats(&fixture("nat-stats.txt")).unwrap();
    let (_, rate) = parse_rate(&fixture("nat-rate.txt")).unwrap();
    let (_, thresholds) = parse_thresholds(&fixture("nat-thresholds.txt")).unwrap();
    let (_, pconn) = parse_pconn(&fixture("nat-pconn.txt")).unwrap();
    // -Ln and --tun-info equivalents built from the persistent-conn view (same services).
    let mut list_text = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    for l in fixture("nat-pconn.txt").lines().skip(3) {
        match l.strip_prefix("  -> ") {
            Some(r) => {
                let t: Vec<&str> = r.split_whitespace().collect();
                list_text.push_str(&format!("  -> {} Masq {} {} {}\n", t[0], t[1], t[3], t[4]));
            }
            None => list_text.push_str(&format!("{l}\n")),
        }
    }
    let (_, list) = parse_list(&list_text).unwrap();
    let tun_text: String = list_text
        .replace(
            "Forward Weight ActiveConn InActConn",
            "Forward TunnelInfo    Weight ActiveConn InActConn",
        )
        .replace(" Masq ", " Masq n/a ");
    let (_, tun) = parse_tun(&tun_text).unwrap();
    Views {
        header,
        list,
        stats,
        rate,
        thresholds,
        pconn,
        tun,
        timeouts: Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
        daemons: vec![],
        conns: parse_conns(&fixture("nat-conns.txt")).unwrap(),
        global: parse_global(&fixture("nat-global.txt")).unwrap(),
    }
}

/// A dump that equals `v` (built independently from the views, the way a correct reader would).
fn dump_json_for(v: &Views) -> String {
    let mut services = Vec::new();
    for s in &v.list {
        let st = v.stats.iter().find(|x| x.key == s.key).unwrap();
        let rt = v.rate.iter().find(|x| x.key == s.key).unwrap();
        let pc = v.pconn.iter().find(|x| x.key == s.key).unwrap();
        let n = st.info.numbers.unwrap();
        let r = rt.info.numbers.unwrap();
        let mk = |n: [u64; 5], r: [u64; 5]| Stats {
            counters: herald_shared::model::Counters {
                conns: n[0],
                in_packets: n[1],
                out_packets: n[2],
                in_bytes: n[3],
                out_bytes: n[4],
            },
            rates: herald_shared::model::Rates {
                conns_per_second: r[0],
                in_packets_per_second: r[1],
                out_packets_per_second: r[2],
                in_bytes_per_second: r[3],
                out_bytes_per_second: r[4],
            },
            is_64bit: true,
        };
        let mut flags = ServiceFlags::HASHED;
        if s.info.persistent.is_some() {
            flags |= ServiceFlags::PERSISTENT;
        }
        services.push(Service {
            key: s.key,
            scheduler: s.info.scheduler.clone(),
            flags: ServiceFlags::from_raw(flags),
            persistence_timeout: s.info.persistent.unwrap_or(0),
            netmask: u32::MAX,
            pe_name: None,
            stats: mk(n, r),
            destinations: s
                .dests
                .iter()
                .map(|d| {
                    let dn = st.dests.iter().find(|x| x.addr == d.addr).unwrap().numbers;
                    let dr = rt.dests.iter().find(|x| x.addr == d.addr).unwrap().numbers;
                    let p = pc.dests.iter().find(|x| x.addr == d.addr).unwrap();
                    Destination {
                        forward: ForwardMethod::Masq,
                        weight: d.weight,
                        active_conns: d.active,
                        inactive_conns: d.inactive,
                        persistent_conns: p.persistent,
                        stats: mk(dn, dr),
                        ..Destination::new(d.addr.ip(), d.addr.port())
                    }
                })
                .collect(),
        });
    }
    let g = v.global;
    let snap = Snapshot {
        source: Default::default(),
        info: Info {
            version: 0x010201,
            conn_table_size: 4096,
        },
        services,
        timeouts: Some(v.timeouts),
        daemons: vec![],
        global: Some(herald_shared::model::GlobalStats {
            counters: herald_shared::model::Counters {
                conns: g.counters[0],
                in_packets: g.counters[1],
                out_packets: g.counters[2],
                in_bytes: g.counters[3],
                out_bytes: g.counters[4],
            },
            rates: herald_shared::model::Rates {
                conns_per_second: g.rates[0],
                in_packets_per_second: g.rates[1],
                out_packets_per_second: g.rates[2],
                in_bytes_per_second: g.rates[3],
                out_bytes_per_second: g.rates[4],
            },
        }),
    };
    let groups: Vec<serde_json::Value> = v
        .conns
        .iter()
        .map(|(k, n)| {
            serde_json::json!({
                "group": {
                    "protocol": k.protocol,
                    "virtual_address": k.virtual_addr.ip(),
                    "virtual_port": k.virtual_addr.port(),
                    "dest_address": k.dest_addr.ip(),
                    "dest_port": k.dest_addr.port(),
                    "state": k.state,
                },
                "count": n,
            })
        })
        .collect();
    let mut top = serde_json::to_value(&snap).unwrap();
    top["conn_table"] = serde_json::json!({
        "groups": groups,
        "entries": v.conns.values().sum::<u64>(),
        "truncated": false,
        "malformed_lines": 0,
    });
    top.to_string()
}

#[test]
fn comparison_accepts_an_equal_dump_and_names_each_difference() {
    let v = nat_views();
    let good: Dump = parse_dump(&dump_json_for(&v)).unwrap();
    let o = compare(&v, &good);
    assert!(o.mismatches.is_empty(), "{:#?}", o.mismatches);
    assert!(
        o.fields_checked > 50,
        "only {} fields compared",
        o.fields_checked
    );

    let mut bad = good.clone();
    bad.snapshot.services[0].destinations[1].weight = 7;
    bad.snapshot.services[1].stats.counters.in_bytes += 1;
    bad.snapshot.services[2].scheduler = "lc".into();
    bad.snapshot.services.push(Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: "203.0.113.99".parse().unwrap(),
            port: 1,
        },
        ..bad.snapshot.services[0].clone()
    });
    bad.snapshot.timeouts = None;
    if let Some(c) = bad.conns.as_mut() {
        let k = c.groups.keys().next().unwrap().clone();
        *c.groups.get_mut(&k).unwrap() += 1;
    }
    let o = compare(&v, &bad);
    let all = o.mismatches.join("\n");
    for want in [
        "dest 192.0.2.12:80: weight: ipvsadm 1 != dump 7",
        "service TCP 203.0.113.20:8080: counters",
        "scheduler: ipvsadm \"rr\" != dump \"lc\"",
        "service TCP 203.0.113.99:1: in dump, not in ipvsadm",
        "timeouts: ipvsadm shows them, dump has none",
        "conns tcp",
    ] {
        assert!(all.contains(want), "expected {want:?} among:\n{all}");
    }
}

#[test]
fn dump_loader_rejects_wrong_shapes() {
    assert!(parse_dump("not json").unwrap_err().contains("not JSON"));
    assert!(parse_dump("{}").unwrap_err().contains("services"));
    assert!(parse_dump(r#"{"services": 3}"#)
        .unwrap_err()
        .contains("Snapshot"));
    let d = parse_dump(&serde_json::to_string(&Snapshot::default()).unwrap()).unwrap();
    assert!(d.conns.is_none());
}

#[test]
fn prometheus_text_parser() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exporter-metrics.txt");
    let text = std::fs::read_to_string(&p).unwrap();
    let samples = lab_support::metrics::parse(&text).unwrap();
    assert!(samples.len() > 100, "{} samples", samples.len());
    let s = samples
        .iter()
        .find(|s| {
            s.name == "ipvs_service_incoming_packets_total"
                && s.labels.get("port").map(String::as_str) == Some("80")
        })
        .unwrap();
    assert_eq!(s.value, 91.0);
    assert_eq!(s.labels.get("protocol").map(String::as_str), Some("tcp"));
    let e = lab_support::metrics::parse("a{b=\"c} 1\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    assert!(lab_support::metrics::parse("x{a=\"1\"} notanumber\n").is_err());
    let esc = lab_support::metrics::parse("x{a=\"q\\\"u\"} 2\n").unwrap();
    assert_eq!(esc[0].labels.get("a").map(String::as_str), Some("q\"u"));
}
