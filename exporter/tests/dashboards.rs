//! The Grafana dashboards: committed JSON equals what `dashboards/generate.py` writes, every
//! panel and query uses the `datasource` variable, and every metric a dashboard or rule names is
//! one the exporter actually exports (checked against the exposition of the rich fixture).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_exporter::fixture::{rich_conn_table, rich_snapshot};
use herald_exporter::{encode_registry, register, Config, Format, StaticSource};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = repo().join("dashboards/grafana");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("dashboards/grafana exists") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        3,
        "cluster overview, service detail, destination health"
    );
    out
}

#[test]
fn committed_dashboards_match_the_generator() {
    let tmp = repo().join("target/dashboards-gen");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let st = Command::new("python3")
        .arg(repo().join("dashboards/generate.py"))
        .env("DASHBOARDS_OUT", &tmp)
        .status()
        .expect("python3 is required to run dashboards/generate.py");
    assert!(st.success());
    for (name, _) in dashboards() {
        let committed =
            std::fs::read_to_string(repo().join("dashboards/grafana").join(&name)).unwrap();
        let generated = std::fs::read_to_string(tmp.join(&name)).unwrap();
        assert!(
            committed == generated,
            "{name} differs from generate.py output: re-run dashboards/generate.py"
        );
    }
}

fn walk<'a>(
    v: &'a serde_json::Value,
    f: &mut dyn FnMut(&'a serde_json::Map<String, serde_json::Value>),
) {
    match v {
        serde_json::Value::Object(m) => {
            f(m);
            m.values().for_each(|x| walk(x, f));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        _ => {}
    }
}

#[test]
fn every_panel_uses_the_datasource_variable() {
    for (name, d) in dashboards() {
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
            "{name}: no datasource variable"
        );
        let mut bad = Vec::new();
        walk(&d, &mut |m| {
            if let Some(ds) = m.get("datasource") {
                if ds.get("uid").and_then(|u| u.as_str()) != Some("${datasource}") {
                    bad.push(ds.to_string());
                }
            }
        });
        assert!(bad.is_empty(), "{name}: hard-coded data sources {bad:?}");
    }
}

/// Metric names used in an expression: identifiers followed by `{`, `[` or `)`/space that start
/// with `ipvs_` (recording rules use `ipvs:` and are not exporter metrics).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if expr[i..].starts_with("ipvs_")
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':'))
        {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            if !expr[i..end].ends_with('_') {
                out.insert(expr[i..end].to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn dashboards_and_rules_only_name_exported_metrics() {
    let mut registry = Registry::default();
    register(
        &mut registry,
        Arc::new(StaticSource {
            snapshot: Some(rich_snapshot()),
            conn_table: rich_conn_table(),
        }),
        &Config::default(),
    );
    let text = encode_registry(&registry, Format::Prometheus).unwrap();
    let exported: BTreeSet<String> = herald_exporter::parse_exposition(&text)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut used = BTreeSet::new();
    for (_, d) in dashboards() {
        walk(&d, &mut |m| {
            if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                used.extend(metric_names(e));
            }
        });
    }
    let rules =
        std::fs::read_to_string(repo().join("dashboards/rules/ipvs-herald.rules.yml")).unwrap();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        used.extend(metric_names(line));
    }
    assert!(used.len() >= 20, "{used:?}");
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "dashboards/rules name metrics the exporter does not export: {unknown:?}"
    );
}
