//! Byte-for-byte exposition: the text the exporter serves for fixed snapshots, in both formats and
//! several configurations, is compared with golden files recorded from the exporter before its
//! encoder was rewritten for streaming (`exporter/tests/golden/`). Any change of one byte fails.
//! Small fixtures are stored whole (reviewable diffs); large generated tables as length + FNV-1a
//! hash. `UPDATE_GOLDEN=1 cargo test -p herald-exporter --test integration golden::` rewrites
//! them — only for an intended, documented change of the exposition.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_exporter::fixture::{addr_key, dest, rich_conn_table, rich_snapshot, service};
use herald_exporter::{
    encode_registry, register, render_snapshot, Config, Format, ServiceSpec, StaticSource,
};
use herald_shared::conntable::{ConnGroup, ConnProtocol, ConnTableSummary};
use herald_shared::model::{
    AddressFamily, ForwardMethod, Protocol, ServiceFlags, ServiceKey, Snapshot, SnapshotSource,
    Tunnel, TunnelType,
};
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Compare `text` with golden file `name` (whole text, or `len hash` when `hashed`).
fn check(name: &str, text: &str, hashed: bool) {
    let path = golden_dir().join(name);
    let got = if hashed {
        format!("{} {:016x}\n", text.len(), fnv1a(text.as_bytes()))
    } else {
        text.to_string()
    };
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} missing: {e}", path.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name}: exposition differs from the golden file (first different line {}):\n got: {:?}\nwant: {:?}",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

fn fmt_name(f: Format) -> &'static str {
    match f {
        Format::Prometheus => "prom",
        Format::OpenMetrics => "om",
    }
}

/// A deterministic large table with every shape: address services of all protocols over both
/// families, fwmark services, persistent services with engines, tunnels, drained destinations,
/// duplicates, and a connection table.
fn generated(services: u32) -> (Snapshot, ConnTableSummary) {
    let mut snap = rich_snapshot();
    let mut conn = rich_conn_table();
    for s in 0..services {
        let key = match s % 7 {
            0 => ServiceKey::Fwmark {
                family: if s % 2 == 0 {
                    AddressFamily::Inet
                } else {
                    AddressFamily::Inet6
                },
                mark: 1000 + s,
            },
            1 | 2 => addr_key(
                Protocol::Tcp,
                &format!("2001:db8:{:x}::{:x}", s / 256, s % 256 + 1),
                443,
            ),
            3 => addr_key(
                Protocol::Udp,
                &format!("198.51.{}.{}", 100 + s / 250 % 3, s % 250 + 1),
                53,
            ),
            4 => addr_key(
                Protocol::Sctp,
                &format!("203.0.113.{}", s % 250 + 1),
                (3000 + s) as u16,
            ),
            _ => addr_key(
                Protocol::Tcp,
                &format!("192.0.2.{}", s % 250 + 1),
                (1000 + s) as u16,
            ),
        };
        let n = s % 12;
        let ds = (0..n)
            .map(|d| {
                let v6 = matches!(s % 7, 1 | 2);
                let a = if v6 {
                    format!("2001:db8:ffff::{:x}", d + 1)
                } else {
                    format!("198.51.100.{}", d + 1)
                };
                let mut x = dest(
                    &a,
                    8000 + d as u16,
                    (d % 4) as i32,
                    d * 3 + s % 5,
                    d + s % 3,
                );
                x.forward = [
                    ForwardMethod::Masq,
                    ForwardMethod::Route,
                    ForwardMethod::Tunnel,
                    ForwardMethod::Local,
                ][(d % 4) as usize];
                if d % 5 == 2 {
                    x.tunnel = Some(Tunnel {
                        kind: [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre]
                            [(d % 3) as usize],
                        port: if d % 2 == 0 { 0 } else { 6080 },
                        flags: (d % 4) as u16,
                    });
                }
                x.upper_threshold = d * 100;
                x.lower_threshold = d * 10;
                x.persistent_conns = d % 3;
                x
            })
            .collect();
        let mut svc = service(key, ["wlc", "rr", "", "mh", "sh"][(s % 5) as usize], ds);
        if s % 3 == 0 {
            svc.flags = ServiceFlags::from_raw(
                ServiceFlags::PERSISTENT | ServiceFlags::HASHED | (s % 4) << 3,
            );
            svc.persistence_timeout = 300 + s;
            svc.netmask = if key.family() == AddressFamily::Inet {
                0xffff_ff00
            } else {
                64
            };
            if s % 6 == 0 {
                svc.pe_name = Some("sip".into());
            }
        }
        if s % 50 == 49 {
            // A duplicate destination.
            if let Some(d) = svc.destinations.first().cloned() {
                svc.destinations.push(d);
            }
        }
        if let ServiceKey::Addr {
            protocol,
            address,
            port,
        } = key
        {
            for (i, state) in ["ESTABLISHED", "TIME_WAIT", "", "SYN_RECV"]
                .iter()
                .enumerate()
            {
                conn.groups.insert(
                    ConnGroup {
                        protocol: match protocol {
                            Protocol::Tcp => ConnProtocol::Tcp,
                            Protocol::Udp => ConnProtocol::Udp,
                            Protocol::Sctp => ConnProtocol::Sctp,
                        },
                        virtual_address: address,
                        virtual_port: port,
                        dest_address: svc.destinations.first().map_or(address, |d| d.address),
                        dest_port: 8000 + i as u16 % 2,
                        state: state.to_string(),
                    },
                    u64::from(s) + i as u64,
                );
            }
            if s % 3 == 0 {
                conn.groups.insert(
                    ConnGroup {
                        protocol: ConnProtocol::Template,
                        virtual_address: address,
                        virtual_port: port,
                        dest_address: address,
                        dest_port: 0,
                        state: String::new(),
                    },
                    3,
                );
            }
        }
        snap.services.push(svc);
        if s % 97 == 13 {
            // A duplicate service.
            let again = snap.services[snap.services.len() - 1].clone();
            snap.services.push(again);
        }
    }
    (snap, conn)
}

fn named_cfg() -> Config {
    let mut cfg: Config = toml::from_str(
        r#"
        [[exclude]]
        fwmark = 7
        [[exclude]]
        address = "198.51.101.0/24"
        [service_names]
        "tcp/192.0.2.10:80" = "web \"front\"\nline"
        "udp/192.0.2.60:5060" = "sip"
        "#,
    )
    .unwrap();
    cfg.service_names.insert(
        ServiceSpec(addr_key(Protocol::Tcp, "2001:db8:0::2", 443)),
        "v6 \\ two".into(),
    );
    cfg
}

#[test]
fn rich_fixture_renders_exactly_as_recorded() {
    let snap = rich_snapshot();
    let conn = rich_conn_table();
    let no_dest = Config {
        per_destination: false,
        ..Config::default()
    };
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let f = fmt_name(format);
        check(
            &format!("rich-default.{f}"),
            &render_snapshot(&snap, Some(&conn), &Config::default(), format),
            false,
        );
        check(
            &format!("rich-no-dest.{f}"),
            &render_snapshot(&snap, Some(&conn), &no_dest, format),
            false,
        );
        check(
            &format!("rich-named.{f}"),
            &render_snapshot(&snap, Some(&conn), &named_cfg(), format),
            false,
        );
        let mut procfs = snap.clone();
        procfs.source = SnapshotSource::Procfs;
        check(
            &format!("rich-procfs.{f}"),
            &render_snapshot(&procfs, None, &Config::default(), format),
            false,
        );
        check(
            &format!("empty.{f}"),
            &render_snapshot(&Snapshot::default(), None, &Config::default(), format),
            false,
        );
    }
}

#[test]
fn generated_table_renders_exactly_as_recorded() {
    let (snap, conn) = generated(1500);
    let no_dest = Config {
        per_destination: false,
        ..Config::default()
    };
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let f = fmt_name(format);
        for (name, cfg) in [
            ("default", Config::default()),
            ("no-dest", no_dest.clone()),
            ("named", named_cfg()),
        ] {
            check(
                &format!("generated-{name}.{f}"),
                &render_snapshot(&snap, Some(&conn), &cfg, format),
                true,
            );
        }
    }
}

/// The whole registry as served (the exporter's own scrape metrics, build info, then IPVS), with
/// the measured durations masked.
#[test]
fn registry_encodes_exactly_as_recorded() {
    let (snap, conn) = generated(300);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let mut registry = Registry::default();
        register(
            &mut registry,
            Arc::new(StaticSource {
                snapshot: Some(snap.clone()),
                conn_table: conn.clone(),
            }),
            &named_cfg(),
        );
        let text = encode_registry(&registry, format).unwrap();
        let masked: String = text
            .lines()
            .map(|l| {
                if l.starts_with("ipvs_scrape_collector_duration_seconds{") {
                    let cut = l.rfind(' ').unwrap_or(l.len());
                    format!("{} <masked>\n", &l[..cut])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        check(
            &format!("registry-generated.{}", fmt_name(format)),
            &masked,
            true,
        );
        let mut down = Registry::default();
        register(
            &mut down,
            Arc::new(StaticSource::default()),
            &Config::default(),
        );
        let text = encode_registry(&down, format).unwrap();
        let masked: String = text
            .lines()
            .map(|l| {
                if l.starts_with("ipvs_scrape_collector_duration_seconds{") {
                    let cut = l.rfind(' ').unwrap_or(l.len());
                    format!("{} <masked>\n", &l[..cut])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        check(
            &format!("registry-down.{}", fmt_name(format)),
            &masked,
            false,
        );
    }
}
