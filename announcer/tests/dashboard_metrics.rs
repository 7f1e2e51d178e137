//! The announcer's Grafana dashboard and alert rules (dashboards/announcer/) name only metrics
//! the announcer really registers: every `ipvs_herald_*` name in them must appear in the
//! exposition of a registry holding the VIP-group loop's and the BGP speaker's metrics.
//! (`promtool check rules` / `test rules` on the rule file run in the exporter's promtool test.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_announcer::bgp::{Family, State};
use herald_announcer::control::{Control, ControlLoop, LoopSettings};
use herald_announcer::group::RouteAction;
use herald_announcer::group_config::VipGroupConfig;
use herald_announcer::sink::{BoxFuture, LocalAddrs, RouteSink};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::*;
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One TCP service on the VIP with one real server of weight 1; the first read fails (so the
/// failed-check counter has a sample too).
#[derive(Default)]
struct OneService(std::sync::atomic::AtomicUsize);
impl IpvsSource for OneService {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(ReadError::ModuleNotLoaded);
        }
        let address: IpAddr = "198.51.100.1".parse().unwrap();
        Ok(Snapshot {
            services: vec![Service {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    address: "192.0.2.10".parse().unwrap(),
                    port: 80,
                },
                scheduler: "rr".into(),
                flags: ServiceFlags::default(),
                persistence_timeout: 0,
                netmask: 0,
                pe_name: None,
                stats: Stats::default(),
                destinations: vec![Destination::new(address, 80)],
            }],
            ..Snapshot::default()
        })
    }
    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Err(ReadError::ModuleNotLoaded)
    }
}
struct NoSink;
impl RouteSink for NoSink {
    fn apply<'a>(
        &'a self,
        _: &'a RouteAction,
    ) -> BoxFuture<'a, Result<(), herald_announcer::sink::SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
struct NoAddrs;
impl LocalAddrs for NoAddrs {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, herald_announcer::sink::LocalAddrsError> {
        Ok(Vec::new())
    }
}

/// Every metric name the announcer exposes once it has run: a VIP group that comes up and is
/// then shut down (so every group family has samples), and a BGP peer with traffic.
async fn registered_names() -> BTreeSet<String> {
    let mut registry = Registry::default();
    #[derive(serde::Deserialize)]
    struct W {
        g: VipGroupConfig,
    }
    let w: W = toml::from_str(
        "[g]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\"]\nvip_address = \"ignore\"\ninterval = \"100ms\"\nrise = 1\n",
    )
    .unwrap();
    let rt = ControlLoop::new(
        vec![w.g],
        Arc::new(OneService::default()),
        Arc::new(NoSink),
        Arc::new(NoAddrs),
        LoopSettings {
            drain_time: Duration::from_secs(1),
            maintenance_file: None,
            state_file: None,
        },
        &mut registry,
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(rt.run(rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (done, done_rx) = tokio::sync::oneshot::channel();
    tx.send(Control::Shutdown {
        drain_time: Duration::ZERO,
        done,
    })
    .await
    .unwrap();
    done_rx.await.unwrap();
    task.await.unwrap();

    let m = herald_announcer::bgp::metrics::Metrics::register(&mut registry);
    m.init_peer("p", &[Family::Ipv4]);
    m.transition("p", State::Idle, State::Connect);
    m.message("p", true, "update");
    m.notification("p", true, 6, 2);
    m.connect_attempt("p");
    m.connect_failure("p");
    m.ignored_update_errors("p", 1);

    // The BGP speaker registers the BFD metrics beside its own.
    use herald_announcer::bfd::{metrics::Metrics as BfdMetrics, packet::Diag, State as Bfd};
    let b = BfdMetrics::register(&mut registry);
    b.set_state("p", Bfd::Up, Diag::NoDiagnostic);
    b.transition("p", Bfd::Up, Bfd::Down);
    b.set_intervals("p", Duration::from_millis(300), Duration::from_millis(900));

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let kind = it.next()?;
            Some(if kind == "counter" {
                format!("{name}_total")
            } else {
                name
            })
        })
        .collect()
}

fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ipvs_herald_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(start_paused = true)]
async fn dashboard_and_rules_use_only_registered_metrics() {
    let registered = registered_names().await;
    assert!(
        registered.contains("ipvs_herald_vip_group_announced")
            && registered.contains("ipvs_herald_bgp_session_state")
            && registered.contains("ipvs_herald_bfd_session_transitions_total"),
        "{registered:?}"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards/announcer");
    let mut checked = 0;
    for f in [
        "ipvs-herald-announcer.json",
        "ipvs-herald-announcer.rules.yml",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let used = names_in(&text);
        assert!(!used.is_empty(), "{f} names no ipvs_herald_ metric");
        for name in used {
            assert!(
                registered.contains(&name),
                "{f} uses {name}, which the announcer does not register; registered: {registered:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} metric references checked");
}

#[test]
fn dashboard_uses_the_datasource_variable_everywhere() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards/announcer");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("ipvs-herald-announcer.json")).unwrap(),
    )
    .unwrap();
    let panels = v["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
}
