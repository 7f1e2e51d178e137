//! Peak memory and wall time of one real HTTP scrape of a large table, through the same server
//! as the daemon (`serve` on loopback), from a fixture snapshot (no kernel needed).
//!
//! `cargo bench -p herald-exporter --bench scrape_mem -- [SERVICES] [DESTS] [text|openmetrics] [gzip|plain] [SCRAPES] [conns]`
//! (defaults: 10000 10 text plain 3; `conns` adds a connection table with 4 states for every
//! destination, i.e. 400,000 groups at 10,000 × 10). One configuration per process, because the peak RSS
//! (`VmHWM`) only grows: the figure printed is the growth of `VmHWM` from after the fixture is
//! built (one copy of the snapshot held by the source) to after the scrapes, i.e. what the
//! scrapes themselves cost: the snapshot copy the reader would build, the metric families, the
//! encoding and the buffers. The body is read and counted, never stored, by the client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: an unwrap that fails, fails the bench

use herald_exporter::fixture::{addr_key, dest, service};
use herald_exporter::{register, serve, Config, StaticSource};
use herald_shared::conntable::{ConnGroup, ConnProtocol, ConnTableSummary};
use herald_shared::model::{Protocol, Snapshot};
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn table(services: u32, dests: u32, with_conns: bool) -> (Snapshot, ConnTableSummary) {
    let mut snap = Snapshot::default();
    let mut conn = ConnTableSummary::default();
    for s in 0..services {
        let vip = format!("10.{}.{}.{}", s / 62_500, (s / 250) % 250, s % 250 + 1);
        let ds = (0..dests)
            .map(|d| {
                dest(
                    &format!(
                        "172.{}.{}.{}",
                        16 + s / 62_500,
                        (s / 250) % 250,
                        d % 250 + 1
                    ),
                    8080 + (d / 250) as u16,
                    100,
                    1000 + d,
                    500 + d,
                )
            })
            .collect();
        let svc = service(addr_key(Protocol::Tcp, &vip, 80), "wlc", ds);
        for d in svc.destinations.iter().filter(|_| with_conns) {
            for state in ["ESTABLISHED", "TIME_WAIT", "SYN_RECV", "FIN_WAIT"] {
                conn.groups.insert(
                    ConnGroup {
                        protocol: ConnProtocol::Tcp,
                        virtual_address: vip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                        virtual_port: 80,
                        dest_address: d.address,
                        dest_port: d.port,
                        state: state.to_string(),
                    },
                    u64::from(s % 100),
                );
            }
        }
        snap.services.push(svc);
    }
    (snap, conn)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One scrape with a plain HTTP/1.1 client: (status line, body bytes incl. chunk framing).
fn scrape(addr: std::net::SocketAddr, openmetrics: bool, gzip: bool) -> (String, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(600))).ok();
    let accept = if openmetrics {
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    } else {
        "text/plain;version=0.0.4"
    };
    let enc = if gzip { "gzip" } else { "identity" };
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\nAccept-Encoding: {enc}\r\nX-Prometheus-Scrape-Timeout-Seconds: 600\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut total = 0usize;
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        if head.len() < 256 {
            head.extend_from_slice(&buf[..n.min(256)]);
        }
        total += n;
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    (status, total)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let services: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dests: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let openmetrics = args.get(2).is_some_and(|a| a == "openmetrics");
    let gzip = args.get(3).is_some_and(|a| a == "gzip");
    let scrapes: u32 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
    let with_conns = args.get(5).is_some_and(|a| a == "conns");

    let (snap, conn) = table(services, dests, with_conns);
    let source = Arc::new(StaticSource {
        snapshot: Some(snap),
        conn_table: if with_conns { conn } else { Default::default() },
    });
    let mut cfg = Config::default();
    cfg.conn_table.enabled = with_conns;
    cfg.limits.request_timeout = std::time::Duration::from_secs(600);
    let mut registry = Registry::default();
    register(&mut registry, source, &cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(listener, Arc::new(registry), cfg, async {
        let _ = rx.await;
    }));
    let base = vm_hwm_kib();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let (status, n) = scrape(addr, openmetrics, gzip);
        times.push(t.elapsed());
        assert!(status.contains(" 200 "), "scrape failed: {status}");
        size = n;
    }
    let peak = vm_hwm_kib();
    let _ = tx.send(());
    let _ = rt.block_on(server);
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "services={services} dests={dests} conns={with_conns} format={} gzip={gzip} scrapes={scrapes}: response {size} bytes, median {:.1} ms, min {:.1} ms; VmHWM before scrapes {:.1} MiB, after {:.1} MiB, growth {:.1} MiB",
        if openmetrics { "openmetrics" } else { "text" },
        median.as_secs_f64() * 1e3,
        times.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
        base as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(base)) as f64 / 1024.0,
    );
}
