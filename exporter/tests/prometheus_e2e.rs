//! End to end with a real Prometheus (Debian package `prometheus`) on loopback: two exporters
//! ("directors") serve a fixture whose counters grow at every scrape; Prometheus scrapes them
//! (negotiating OpenMetrics), loads the rule file, and every PromQL expression of the dashboards
//! and rules is evaluated through its HTTP API. Each must evaluate without error, and each must
//! return data unless it is listed below with the reason why this fixture gives it none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_exporter::fixture::{rich_conn_table, rich_snapshot};
use herald_exporter::{register, serve, Config};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::Snapshot;
use herald_shared::reader::{IpvsSource, ReadError};
use herald_test_support::{free_port, require, KillOnDrop};
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fixture with counters that grow by `step × (destination index + 1)` at every read.
struct Ticking {
    reads: AtomicU64,
    step: u64,
}

impl IpvsSource for Ticking {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        let k = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let mut s = rich_snapshot();
        let mut total = 0;
        for svc in &mut s.services {
            let mut svc_add = 0;
            for (i, d) in svc.destinations.iter_mut().enumerate() {
                // The drained destination (weight 0) and fo's standby get nothing new.
                let add = if d.weight > 0 && !(svc.scheduler == "fo" && i > 0) {
                    k * self.step * (i as u64 + 1)
                } else {
                    0
                };
                d.stats.counters.conns += add;
                d.stats.counters.in_bytes += add * 1000;
                d.stats.counters.in_packets += add * 10;
                svc_add += add;
            }
            svc.stats.counters.conns += svc_add;
            svc.stats.counters.in_bytes += svc_add * 1000;
            total += svc_add;
        }
        if let Some(g) = &mut s.global {
            g.counters.conns += total;
            g.counters.in_bytes += total * 1000;
        }
        Ok(s)
    }

    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Ok(rich_conn_table())
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn try_query(port: u16, expr: &str) -> Option<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10", "-G", "--data-urlencode"])
        .arg(format!("query={expr}"))
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn query(port: u16, expr: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10", "-G", "--data-urlencode"])
        .arg(format!("query={expr}"))
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad answer for {expr}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn result_len(v: &serde_json::Value) -> usize {
    match &v["data"]["result"] {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Null => 0,
        _ => 1,
    }
}

/// Expressions that legitimately return nothing for this fixture, by a substring of the
/// expression, with the reason.
const EMPTY_OK: &[(&str, &str)] = &[
    ("up{job=\"ipvs-herald\"} == 0", "both exporters are up"),
    ("ipvs_up == 0", "IPVS is readable"),
    (
        "> 1.5\nand on",
        "the web service is within 1.5x of its weights",
    ),
    ("> 3\nand on", "no hash-scheduled service is skewed 3x here"),
    (
        "ipvs_connection_table_scan_truncated == 1",
        "the fixture's table is complete",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_expression_evaluates_against_real_prometheus() {
    require(&["prometheus", "curl", "yaml"]);

    // Two directors.
    let mut stops = Vec::new();
    let mut targets = Vec::new();
    for step in [5u64, 1] {
        let mut registry = Registry::default();
        register(
            &mut registry,
            Arc::new(Ticking {
                reads: AtomicU64::new(0),
                step,
            }),
            &Config::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        targets.push(listener.local_addr().unwrap().to_string());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = Config::default();
        tokio::spawn(serve(listener, Arc::new(registry), cfg, async {
            let _ = rx.await;
        }));
        stops.push(tx);
    }

    let dir = repo().join(format!("target/prometheus-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rules = repo().join("dashboards/rules/ipvs-herald.rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules:?}\nscrape_configs:\n  - job_name: ipvs-herald\n    static_configs:\n      - targets: [{}]\n",
        targets.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let _prom = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );

    // Wait (bounded) until both targets are up and the rates have a few samples.
    let t0 = Instant::now();
    loop {
        let v = tokio::task::spawn_blocking(move || {
            try_query(port, "count(up{job=\"ipvs-herald\"} == 1) and count(ipvs:service_director_imbalance:ratio_rate5m)")
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(serde_json::Value::Null);
        if result_len(&v) == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "Prometheus did not get both targets up with rule results within 90 s; log: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The scrape used OpenMetrics and parsed cleanly.
    let v = query(port, "sum(scrape_samples_scraped{job=\"ipvs-herald\"})");
    let scraped: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(scraped > 300.0, "{v}");

    let out = Command::new("python3")
        .arg(repo().join("dashboards/extract-promql.py"))
        .arg(repo().join("dashboards/grafana"))
        .arg(repo().join("dashboards/rules"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut errors = Vec::new();
    let mut empty = Vec::new();
    let mut n = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        if item["kind"] == "variable" {
            continue;
        }
        n += 1;
        let expr = item["promql"].as_str().unwrap().to_string();
        let v = query(port, &expr);
        if v["status"] != "success" {
            errors.push(format!("{}: {expr}\n  -> {v}", item["where"]));
        } else if result_len(&v) == 0 && !EMPTY_OK.iter().any(|(s, _)| expr.contains(s)) {
            empty.push(format!("{}: {expr}", item["where"]));
        }
    }
    for s in stops {
        let _ = s.send(());
    }
    assert!(n >= 50, "only {n} expressions extracted");
    assert!(
        errors.is_empty(),
        "expressions failing in Prometheus:\n{}",
        errors.join("\n")
    );
    assert!(
        empty.is_empty(),
        "expressions without data:\n{}",
        empty.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
