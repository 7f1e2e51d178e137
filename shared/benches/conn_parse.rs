//! Benchmark: connection-table aggregation throughput on a generated 1,000,000-line
//! `/proc/net/ip_vs_conn`, against a plain line count of the same bytes in the same run (the
//! limit): `wc -l` and an in-process newline count with the same read loop.
//!
//! Run: `cargo bench -p herald-shared --bench conn_parse` (optionally `-- LINES ROUNDS`).
//! The file is generated once under `target/bench-data/`. Prints best-of-ROUNDS times,
//! lines per second and the ratio to each limit. It is a regular file, so it shows parser
//! cost only; the kernel's per-read() restart cost on real procfs is for the lab to measure
//! with `ipvs-herald dump --conns --conn-read-buffer`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: an unwrap that fails, fails the bench

use herald_shared::conntable::{aggregate_reader, ConnTableLimits, DEFAULT_READ_BUFFER};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STATES: [&str; 6] = [
    "ESTABLISHED",
    "ESTABLISHED",
    "TIME_WAIT",
    "FIN_WAIT",
    "SYN_RECV",
    "CLOSE",
];

fn generate(path: &Path, lines: usize) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    writeln!(
        w,
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData"
    )?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let svc = (x % 100) as u32; // 100 services
        let dst = ((x >> 8) % 10) as u32; // 10 real servers each
        let client = 0xCB00_7100u32 | ((x >> 16) as u32 & 0xffff);
        let cport = 1024 + ((x >> 32) % 60000) as u16;
        let exp = (x >> 40) % 900;
        match i % 50 {
            // 2% UDP, 2% persistence templates, 2% IPv6, the rest IPv4 TCP.
            0 => writeln!(
                w,
                "UDP {client:08X} {cport:04X} C00002{svc:02X} 0035 C63364{dst:02X} 0035 UDP         {exp:>7}"
            )?,
            1 => writeln!(
                w,
                "IP  {client:08X} 0000 C00002{svc:02X} 0050 C63364{dst:02X} 0050 NONE        {exp:>7}"
            )?,
            2 => writeln!(
                w,
                "TCP 2001:0db8:0000:0000:0000:0000:{:04x}:{:04x} {cport:04X} 2001:0db8:0000:0000:0000:0000:0000:{svc:04x} 01BB 2001:0db8:0000:0000:0000:0001:0000:{dst:04x} 01BB {:<11} {exp:>7}",
                client >> 16,
                client & 0xffff,
                STATES[(x >> 48) as usize % STATES.len()]
            )?,
            _ => writeln!(
                w,
                "TCP {client:08X} {cport:04X} C00002{svc:02X} 0050 C63364{dst:02X} 0050 {:<11} {exp:>7}",
                STATES[(x >> 48) as usize % STATES.len()]
            )?,
        }
    }
    w.flush()
}

fn count_newlines(path: &Path, buf_size: usize) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; buf_size];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        n += buf.iter().take(got).filter(|b| **b == b'\n').count() as u64;
    }
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one round"))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let lines: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let path = dir.join(format!("ip_vs_conn-{lines}"));
    if !path.exists() {
        generate(&path, lines).expect("generate the connection table");
    }
    let bytes = std::fs::metadata(&path).expect("stat").len();
    println!(
        "file: {} ({lines} lines + header, {:.1} MiB), best of {rounds} rounds",
        path.display(),
        bytes as f64 / 1048576.0
    );

    // Warm the page cache.
    let _ = count_newlines(&path, DEFAULT_READ_BUFFER);

    let (t_wc, wc_out) = best(rounds, || {
        Command::new("wc")
            .arg("-l")
            .arg(&path)
            .output()
            .expect("run wc -l (coreutils)")
    });
    let wc_lines: u64 = String::from_utf8_lossy(&wc_out.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("wc -l output");
    let (t_nl, nl) = best(rounds, || {
        count_newlines(&path, DEFAULT_READ_BUFFER).expect("read")
    });
    assert_eq!(nl, wc_lines);

    let mut results = Vec::new();
    for buf in [DEFAULT_READ_BUFFER, 4096] {
        let (t, s) = best(rounds, || {
            let f = File::open(&path).expect("open");
            aggregate_reader(f, buf, &ConnTableLimits::default()).expect("aggregate")
        });
        assert_eq!(s.entries as usize, lines, "every generated line is counted");
        assert_eq!(s.malformed_lines, 0);
        results.push((buf, t, s.groups.len()));
    }

    let rate = |t: Duration| lines as f64 / t.as_secs_f64() / 1e6;
    println!(
        "wc -l                      {:>9.1} ms  {:>7.1} M lines/s",
        t_wc.as_secs_f64() * 1e3,
        rate(t_wc)
    );
    println!(
        "newline count (1 MiB reads) {:>8.1} ms  {:>7.1} M lines/s",
        t_nl.as_secs_f64() * 1e3,
        rate(t_nl)
    );
    for (buf, t, groups) in results {
        println!(
            "aggregator ({:>7} B reads) {:>8.1} ms  {:>7.1} M lines/s  {groups} groups  {:.1}x wc -l, {:.1}x newline count",
            buf,
            t.as_secs_f64() * 1e3,
            rate(t),
            t.as_secs_f64() / t_wc.as_secs_f64(),
            t.as_secs_f64() / t_nl.as_secs_f64()
        );
    }
}
