//! Scrape cost on a large table: a full registry encode (read from an in-memory source, build
//! families, encode) for 1 000 services × 10 destinations plus a 40 000-group connection table,
//! in both formats, with and without per-destination series, and gzip.
//! `cargo bench -p herald-exporter --bench scrape` (prints median / min of 15 runs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: an unwrap that fails, fails the bench

use herald_exporter::fixture::{addr_key, dest, service};
use herald_exporter::{encode_registry, register, Config, Format, StaticSource};
use herald_shared::conntable::{ConnGroup, ConnProtocol, ConnTableSummary};
use herald_shared::model::{Protocol, Snapshot};
use prometheus_client::registry::Registry;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn big() -> (Snapshot, ConnTableSummary) {
    let mut snap = Snapshot::default();
    let mut conn = ConnTableSummary::default();
    for s in 0..1000u32 {
        let vip = format!("10.{}.{}.1", s / 250, s % 250);
        let dests = (0..10u32)
            .map(|d| {
                dest(
                    &format!("172.16.{}.{}", s % 250, d + 1),
                    80,
                    100,
                    1000 + d,
                    500 + d,
                )
            })
            .collect();
        snap.services
            .push(service(addr_key(Protocol::Tcp, &vip, 80), "wlc", dests));
        for d in 0..10u8 {
            for state in ["ESTABLISHED", "TIME_WAIT", "SYN_RECV", "FIN_WAIT"] {
                conn.groups.insert(
                    ConnGroup {
                        protocol: ConnProtocol::Tcp,
                        virtual_address: vip.parse().unwrap(),
                        virtual_port: 80,
                        dest_address: IpAddr::V4(Ipv4Addr::new(172, 16, (s % 250) as u8, d + 1)),
                        dest_port: 80,
                        state: state.to_string(),
                    },
                    100,
                );
            }
        }
    }
    (snap, conn)
}

fn measure(label: &str, mut f: impl FnMut() -> usize) {
    f();
    let mut times: Vec<Duration> = Vec::new();
    let mut size = 0;
    for _ in 0..15 {
        let t = Instant::now();
        size = f();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{label:<58} median {:>8.1} ms  min {:>8.1} ms  {:>9} bytes",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        size
    );
}

fn main() {
    let (snap, conn) = big();
    let source = Arc::new(StaticSource {
        snapshot: Some(snap),
        conn_table: conn,
    });
    for per_destination in [true, false] {
        for conn_table in [true, false] {
            let mut cfg = Config {
                per_destination,
                ..Config::default()
            };
            cfg.conn_table.enabled = conn_table;
            let mut registry = Registry::default();
            register(&mut registry, source.clone(), &cfg);
            let series = encode_registry(&registry, Format::Prometheus)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count();
            let what = format!(
                "per_destination={per_destination} conn_table={conn_table} ({series} series)"
            );
            measure(&format!("{what} text"), || {
                encode_registry(&registry, Format::Prometheus)
                    .unwrap()
                    .len()
            });
            measure(&format!("{what} openmetrics"), || {
                encode_registry(&registry, Format::OpenMetrics)
                    .unwrap()
                    .len()
            });
            measure(&format!("{what} text+gzip"), || {
                let t = encode_registry(&registry, Format::Prometheus).unwrap();
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(t.as_bytes()).unwrap();
                e.finish().unwrap().len()
            });
        }
    }
}
