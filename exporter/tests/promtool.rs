//! `promtool` checks: the exposition of a rich snapshot passes `promtool check metrics`, the rule
//! files pass `promtool check rules` and their unit tests (`promtool test rules`), and every
//! PromQL expression in the dashboards parses. promtool comes from the Debian package
//! `prometheus`; it is installed when missing, and the tests fail if that is impossible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_exporter::fixture::{rich_conn_table, rich_snapshot};
use herald_exporter::{encode_registry, register, render_snapshot, Config, Format, StaticSource};
use herald_test_support::require;
use prometheus_client::registry::Registry;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool(args: &[&str], stdin: Option<&str>, dir: &Path) -> (bool, String) {
    require(&["promtool"]);
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_check_metrics_is_clean_on_a_rich_snapshot() {
    for per_destination in [true, false] {
        let cfg = Config {
            per_destination,
            ..Config::default()
        };
        let text = render_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            &cfg,
            Format::Prometheus,
        );
        let (ok, out) = promtool(&["check", "metrics"], Some(&text), &repo());
        assert!(
            ok && out.trim().is_empty(),
            "promtool check metrics:\n{out}"
        );
    }
}

#[test]
fn promtool_check_metrics_is_clean_on_a_full_scrape() {
    // The registry as served: IPVS series plus the exporter's own and build info.
    let mut registry = Registry::default();
    let source = StaticSource {
        snapshot: Some(rich_snapshot()),
        conn_table: rich_conn_table(),
    };
    register(&mut registry, Arc::new(source), &Config::default());
    // What another crate (the announcer) registers next to it: a labelled counter family, a
    // gauge, a histogram and an info metric, as prometheus-client types.
    use prometheus_client::metrics::{
        counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info,
    };
    let updates = Family::<Vec<(String, String)>, Counter>::default();
    updates
        .get_or_create(&vec![("peer".to_string(), "192.0.2.254".to_string())])
        .inc_by(3);
    registry.register("herald_bgp_updates_sent", "BGP UPDATEs sent.", updates);
    let g = Gauge::<i64>::default();
    g.set(2);
    registry.register("herald_bgp_sessions_established", "Sessions up.", g);
    let h = Histogram::new([0.1, 1.0, 10.0]);
    h.observe(0.5);
    registry.register_with_unit(
        "herald_health_check_duration",
        "Health check time.",
        prometheus_client::registry::Unit::Seconds,
        h,
    );
    registry.register(
        "herald_announcer",
        "Announcer settings.",
        Info::new(vec![("router_id".to_string(), "192.0.2.1".to_string())]),
    );
    let text = encode_registry(&registry, Format::Prometheus).unwrap();
    for needle in [
        "herald_bgp_updates_sent_total{peer=\"192.0.2.254\"} 3",
        "# TYPE herald_health_check_duration_seconds histogram",
        "herald_health_check_duration_seconds_bucket{le=\"+Inf\"} 1",
        "# TYPE herald_announcer_info gauge",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    let (ok, out) = promtool(&["check", "metrics"], Some(&text), &repo());
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );
    // And with IPVS unreadable.
    let mut registry = Registry::default();
    register(
        &mut registry,
        Arc::new(StaticSource::default()),
        &Config::default(),
    );
    let text = encode_registry(&registry, Format::Prometheus).unwrap();
    let (ok, out) = promtool(&["check", "metrics"], Some(&text), &repo());
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );
}

#[test]
fn rule_files_pass_promtool_check_and_unit_tests() {
    let rules = repo().join("dashboards/rules");
    let (ok, out) = promtool(&["check", "rules", "ipvs-herald.rules.yml"], None, &rules);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&["test", "rules", "tests/rules_test.yml"], None, &rules);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
    // The announcer's alerts (BGP session down, VIP withdrawn, pool below threshold, flapping).
    let rules = repo().join("dashboards/announcer");
    let (ok, out) = promtool(
        &["check", "rules", "ipvs-herald-announcer.rules.yml"],
        None,
        &rules,
    );
    assert!(ok, "promtool check rules (announcer):\n{out}");
    let (ok, out) = promtool(
        &["test", "rules", "tests/announcer_rules_test.yml"],
        None,
        &rules,
    );
    assert!(
        ok && out.contains("SUCCESS"),
        "promtool test rules (announcer):\n{out}"
    );
}

#[test]
fn every_dashboard_and_rule_expression_parses() {
    require(&["yaml"]);
    // The helper writes every expression (Grafana variables substituted) as a rule file.
    let dir = repo().join("target/promql-check");
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("extracted.rules.yml");
    let out = Command::new("python3")
        .arg(repo().join("dashboards/extract-promql.py"))
        .arg("--as-rules")
        .arg(&out_file)
        .arg(repo().join("dashboards"))
        .output()
        .expect("run dashboards/extract-promql.py");
    assert!(
        out.status.success(),
        "extract-promql.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    let count: usize = summary
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(
        count >= 30,
        "expected the dashboards and rules to hold at least 30 expressions, got: {summary}"
    );
    let (ok, text) = promtool(
        &["check", "rules", out_file.to_str().unwrap()],
        None,
        &repo(),
    );
    assert!(ok, "a dashboard/rule expression does not parse:\n{text}");
}
