//! Series-by-series comparison of a real scrape of `ipvs-herald run`'s /metrics with the ipvsadm
//! views read around it in the same lab VM (tests/lab_exporter.rs).
//!
//! From the ipvsadm views alone (never from the dump) this builds the exact set of IPVS series
//! the exporter must serve — names, label sets and values — for the globals, every service,
//! every destination, the timeouts, the sync daemons and the connection table, and compares it
//! with the scrape both ways: a missing series, an extra series and a different value are each
//! one mismatch naming the series.
#![allow(dead_code)]

use crate::lab_support::compare::Views;
use crate::lab_support::ipvsadm::{self, DestAddr, ViewService};
use herald_exporter::exposition::oracle::ParsedSample;
use herald_shared::model::{AddressFamily, ServiceKey, SyncRole};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A series: metric name and its labels (sorted by name).
pub type SeriesKey = (String, BTreeMap<String, String>);

/// Expected value of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// Exactly this integer (counters, gauges, info = 1).
    Int(u64),
    /// This float within a relative 1e-9 (the imbalance ratio).
    Float(f64),
}

/// Families this comparison owns completely: every series of these names in the scrape must be
/// expected, and every expected one present.
pub const OWNED_PREFIXES: &[&str] = &[
    "ipvs_service_",
    "ipvs_destination_",
    "ipvs_connection_table_",
    "ipvs_timeout_seconds",
    "ipvs_sync_daemon",
    "ipvs_info",
    "ipvs_up",
    "ipvs_connections_total",
    "ipvs_incoming_",
    "ipvs_outgoing_",
    "ipvs_estimated_",
];

/// Result of one comparison.
#[derive(Debug, Default)]
pub struct MetricsOutcome {
    pub mismatches: Vec<String>,
    pub series_checked: usize,
    /// Series expected per family name (for the scenario's own assertions).
    pub per_family: BTreeMap<String, usize>,
}

fn owned(name: &str) -> bool {
    OWNED_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn labels(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn service_labels(key: &ServiceKey) -> Vec<(&'static str, String)> {
    match key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => vec![
            ("protocol", protocol.as_str().to_string()),
            ("address", address.to_string()),
            ("port", port.to_string()),
        ],
        ServiceKey::Fwmark { family, mark } => vec![
            ("protocol", "fwm".to_string()),
            (
                "family",
                match family {
                    AddressFamily::Inet => "ipv4",
                    AddressFamily::Inet6 => "ipv6",
                }
                .to_string(),
            ),
            ("mark", mark.to_string()),
        ],
    }
}

const TRAFFIC: [&str; 5] = [
    "connections",
    "incoming_packets",
    "outgoing_packets",
    "incoming_bytes",
    "outgoing_bytes",
];

struct Expected {
    series: BTreeMap<SeriesKey, Expect>,
    problems: Vec<String>,
}

impl Expected {
    fn put(&mut self, name: &str, l: &[(&str, String)], v: Expect) {
        let key = (name.to_string(), labels(l));
        if self.series.insert(key, v).is_some() {
            self.problems.push(format!(
                "ipvsadm views imply the series {name}{l:?} twice (comparison bug or duplicate in ipvsadm)"
            ));
        }
    }

    /// Five counters and five rates with `prefix` (`ipvs`, `ipvs_service`, `ipvs_destination`).
    fn traffic(
        &mut self,
        prefix: &str,
        l: &[(&str, String)],
        counters: Option<[u64; 5]>,
        rates: Option<[u64; 5]>,
        what: &str,
    ) {
        match counters {
            Some(n) => {
                for (i, t) in TRAFFIC.iter().enumerate() {
                    self.put(&format!("{prefix}_{t}_total"), l, Expect::Int(n[i]));
                }
            }
            None => self
                .problems
                .push(format!("{what}: no counters in ipvsadm --stats")),
        }
        match rates {
            Some(n) => {
                for (i, t) in TRAFFIC.iter().enumerate() {
                    self.put(
                        &format!("{prefix}_estimated_{t}_per_second"),
                        l,
                        Expect::Int(n[i]),
                    );
                }
            }
            None => self
                .problems
                .push(format!("{what}: no rates in ipvsadm --rate")),
        }
    }
}

fn find<'a, D: DestAddr>(
    v: &'a [ViewService<D>],
    key: &ServiceKey,
    addr: Option<SocketAddr>,
) -> Option<(&'a ViewService<D>, Option<&'a D>)> {
    let s = v.iter().find(|s| &s.key == key)?;
    Some((s, addr.and_then(|a| s.dests.iter().find(|d| d.addr() == a))))
}

/// `flags` label as the kernel reports it for what ipvsadm printed: every live service is
/// hashed (`IP_VS_SVC_F_HASHED`); persistent, one-packet and the scheduler flag bits follow
/// ipvsadm's `persistent`, `ops` and `flag-N`/`sh-*`/`mh-*` words.
fn expected_flags(info: &ipvsadm::ServiceInfo) -> String {
    let mut v = Vec::new();
    if info.persistent.is_some() {
        v.push("persistent");
    }
    v.push("hashed");
    if info.one_packet {
        v.push("one-packet");
    }
    for (bit, name) in [(1, "flag-1"), (2, "flag-2"), (4, "flag-3")] {
        if info.sched_flags & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

/// The imbalance formula of exporter/README.md over ipvsadm's weights and active+inactive.
fn expected_imbalance(dests: &[ipvsadm::ListDest]) -> Option<f64> {
    let usable: Vec<&ipvsadm::ListDest> = dests.iter().filter(|d| d.weight > 0).collect();
    let wsum: f64 = usable.iter().map(|d| f64::from(d.weight)).sum();
    let csum: f64 = usable
        .iter()
        .map(|d| f64::from(d.active) + f64::from(d.inactive))
        .sum();
    if usable.is_empty() || csum == 0.0 || wsum == 0.0 {
        return None;
    }
    usable
        .iter()
        .map(|d| {
            ((f64::from(d.active) + f64::from(d.inactive)) / csum) / (f64::from(d.weight) / wsum)
        })
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}

/// Every IPVS series the exporter must serve for these ipvsadm views.
fn expected(v: &Views) -> Expected {
    let mut e = Expected {
        series: BTreeMap::new(),
        problems: Vec::new(),
    };
    // Globals.
    e.put("ipvs_up", &[], Expect::Int(1));
    e.put(
        "ipvs_info",
        &[("version", v.header.version.clone())],
        Expect::Int(1),
    );
    e.put(
        "ipvs_connection_table_size",
        &[],
        Expect::Int(u64::from(v.header.conn_table_size)),
    );
    e.traffic(
        "ipvs",
        &[],
        Some(v.global.counters),
        Some(v.global.rates),
        "/proc/net/ip_vs_stats",
    );
    for (name, t) in [
        ("tcp", v.timeouts.tcp),
        ("tcp_fin", v.timeouts.tcp_fin),
        ("udp", v.timeouts.udp),
    ] {
        e.put(
            "ipvs_timeout_seconds",
            &[("timeout", name.to_string())],
            Expect::Int(u64::from(t)),
        );
    }
    for (role, rname) in [(SyncRole::Master, "master"), (SyncRole::Backup, "backup")] {
        let n = v.daemons.iter().filter(|d| d.role == role).count() as u64;
        e.put(
            "ipvs_sync_daemons",
            &[("role", rname.to_string())],
            Expect::Int(n),
        );
        for d in v.daemons.iter().filter(|d| d.role == role) {
            let mut l = vec![
                ("role", rname.to_string()),
                ("interface", d.interface.clone()),
                ("sync_id", d.sync_id.to_string()),
            ];
            if let Some(m) = d.max_len.filter(|m| *m != 0) {
                l.push(("max_len", m.to_string()));
            }
            if let Some(g) = d.group {
                l.push(("mcast_group", g.to_string()));
            }
            if let Some(p) = d.port.filter(|p| *p != 0) {
                l.push(("mcast_port", p.to_string()));
            }
            if let Some(t) = d.ttl.filter(|t| *t != 0) {
                l.push(("mcast_ttl", t.to_string()));
            }
            e.put("ipvs_sync_daemon_info", &l, Expect::Int(1));
        }
    }

    // Services and destinations.
    for ls in &v.list {
        let sl = service_labels(&ls.key);
        let what = format!("service {}", ls.key);
        let mut il = sl.clone();
        il.push(("scheduler", ls.info.scheduler.clone()));
        il.push(("flags", expected_flags(&ls.info)));
        if let Some(p) = ls.info.persistent {
            // ipvsadm prints `mask` only when it is not the full mask; the exporter always
            // labels persistent services with their netmask.
            let mask = ls
                .info
                .mask
                .clone()
                .unwrap_or_else(|| match ls.key.family() {
                    AddressFamily::Inet => "255.255.255.255".to_string(),
                    AddressFamily::Inet6 => "128".to_string(),
                });
            il.push(("netmask", mask));
            e.put(
                "ipvs_service_persistence_timeout_seconds",
                &sl,
                Expect::Int(u64::from(p)),
            );
        }
        if let Some(pe) = &ls.info.pe {
            il.push(("pe", pe.clone()));
        }
        e.put("ipvs_service_info", &il, Expect::Int(1));
        let stats = find(&v.stats, &ls.key, None).and_then(|(s, _)| s.info.numbers);
        let rates = find(&v.rate, &ls.key, None).and_then(|(s, _)| s.info.numbers);
        e.traffic("ipvs_service", &sl, stats, rates, &what);
        let active: u64 = ls.dests.iter().map(|d| u64::from(d.active)).sum();
        let inactive: u64 = ls.dests.iter().map(|d| u64::from(d.inactive)).sum();
        let persistent: u64 = find(&v.pconn, &ls.key, None)
            .map(|(s, _)| s.dests.iter().map(|d| u64::from(d.persistent)).sum())
            .unwrap_or_else(|| {
                e.problems
                    .push(format!("{what}: missing from --persistent-conn"));
                0
            });
        e.put("ipvs_service_active_connections", &sl, Expect::Int(active));
        e.put(
            "ipvs_service_inactive_connections",
            &sl,
            Expect::Int(inactive),
        );
        e.put(
            "ipvs_service_persistent_connections",
            &sl,
            Expect::Int(persistent),
        );
        e.put(
            "ipvs_service_destinations",
            &sl,
            Expect::Int(ls.dests.len() as u64),
        );
        e.put(
            "ipvs_service_usable_destinations",
            &sl,
            Expect::Int(ls.dests.iter().filter(|d| d.weight > 0).count() as u64),
        );
        if let Some(r) = expected_imbalance(&ls.dests) {
            e.put("ipvs_service_imbalance_ratio", &sl, Expect::Float(r));
        }
        for ld in &ls.dests {
            let mut dl = sl.clone();
            dl.push(("dest_address", ld.addr.ip().to_string()));
            dl.push(("dest_port", ld.addr.port().to_string()));
            let dwhat = format!("{what} dest {}", ld.addr);
            let mut il = dl.clone();
            il.push(("forward", ld.forward.to_ascii_lowercase()));
            il.push((
                "dest_family",
                match AddressFamily::of(&ld.addr.ip()) {
                    AddressFamily::Inet => "ipv4",
                    AddressFamily::Inet6 => "ipv6",
                }
                .to_string(),
            ));
            match find(&v.tun, &ls.key, Some(ld.addr)) {
                Some((_, Some(t))) => match ipvsadm::parse_tun_info(0, &t.tun_info) {
                    Ok(None) => {}
                    Ok(Some(ti)) => {
                        il.push(("tunnel_type", ti.kind.to_string()));
                        if ti.port != 0 {
                            il.push(("tunnel_port", ti.port.to_string()));
                        }
                        il.push(("tunnel_flags", ti.csum.to_string()));
                    }
                    Err(err) => e.problems.push(format!("{dwhat}: tun-info: {err}")),
                },
                _ => e.problems.push(format!("{dwhat}: missing from --tun-info")),
            }
            e.put("ipvs_destination_info", &il, Expect::Int(1));
            let stats = find(&v.stats, &ls.key, Some(ld.addr))
                .and_then(|(_, d)| d)
                .map(|d| d.numbers);
            let rates = find(&v.rate, &ls.key, Some(ld.addr))
                .and_then(|(_, d)| d)
                .map(|d| d.numbers);
            e.traffic("ipvs_destination", &dl, stats, rates, &dwhat);
            e.put(
                "ipvs_destination_active_connections",
                &dl,
                Expect::Int(u64::from(ld.active)),
            );
            e.put(
                "ipvs_destination_inactive_connections",
                &dl,
                Expect::Int(u64::from(ld.inactive)),
            );
            // A weight is never negative in the kernel (ipvsadm refuses one).
            e.put(
                "ipvs_destination_weight",
                &dl,
                Expect::Int(u64::try_from(ld.weight).unwrap_or(u64::MAX)),
            );
            match find(&v.pconn, &ls.key, Some(ld.addr)) {
                Some((_, Some(p))) => e.put(
                    "ipvs_destination_persistent_connections",
                    &dl,
                    Expect::Int(u64::from(p.persistent)),
                ),
                _ => e
                    .problems
                    .push(format!("{dwhat}: missing from --persistent-conn")),
            }
            match find(&v.thresholds, &ls.key, Some(ld.addr)) {
                Some((_, Some(t))) => {
                    e.put(
                        "ipvs_destination_upper_threshold_connections",
                        &dl,
                        Expect::Int(u64::from(t.upper)),
                    );
                    e.put(
                        "ipvs_destination_lower_threshold_connections",
                        &dl,
                        Expect::Int(u64::from(t.lower)),
                    );
                }
                _ => e
                    .problems
                    .push(format!("{dwhat}: missing from --thresholds")),
            }
        }
    }

    // Connection table, aggregated as -Lnc counts it.
    let total: u64 = v.conns.values().sum();
    e.put("ipvs_connection_table_scan_enabled", &[], Expect::Int(1));
    e.put(
        "ipvs_connection_table_scan_entries",
        &[],
        Expect::Int(total),
    );
    e.put("ipvs_connection_table_scan_truncated", &[], Expect::Int(0));
    e.put(
        "ipvs_connection_table_scan_malformed_lines",
        &[],
        Expect::Int(0),
    );
    let mut conns: BTreeMap<SeriesKey, u64> = BTreeMap::new();
    for (k, n) in &v.conns {
        let mut l = Vec::new();
        let name = if k.protocol == "template" {
            "ipvs_connection_table_templates"
        } else {
            l.push(("protocol", k.protocol.clone()));
            l.push(("state", k.state.clone()));
            "ipvs_connection_table_connections"
        };
        l.push(("address", k.virtual_addr.ip().to_string()));
        l.push(("port", k.virtual_addr.port().to_string()));
        l.push(("dest_address", k.dest_addr.ip().to_string()));
        l.push(("dest_port", k.dest_addr.port().to_string()));
        *conns.entry((name.to_string(), labels(&l))).or_insert(0) += n;
    }
    for (key, n) in conns {
        e.series.insert(key, Expect::Int(n));
    }
    e
}

fn show(key: &SeriesKey) -> String {
    let l: Vec<String> = key.1.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", key.0, l.join(","))
}

/// Compare a scrape (parsed samples) with what the ipvsadm views say it must contain.
pub fn compare_metrics(v: &Views, samples: &[ParsedSample]) -> MetricsOutcome {
    let e = expected(v);
    let mut o = MetricsOutcome {
        mismatches: e.problems.clone(),
        ..MetricsOutcome::default()
    };
    let mut scraped: BTreeMap<SeriesKey, &str> = BTreeMap::new();
    for s in samples.iter().filter(|s| owned(&s.name)) {
        if scraped
            .insert((s.name.clone(), s.labels.clone()), s.value.as_str())
            .is_some()
        {
            o.mismatches.push(format!(
                "{}: served twice",
                show(&(s.name.clone(), s.labels.clone()))
            ));
        }
    }
    for (key, want) in &e.series {
        o.series_checked += 1;
        *o.per_family.entry(key.0.clone()).or_insert(0) += 1;
        let Some(got) = scraped.get(key) else {
            o.mismatches
                .push(format!("{}: ipvsadm implies it, not served", show(key)));
            continue;
        };
        let ok = match (*want, got.parse::<f64>()) {
            (_, Err(_)) => false,
            (Expect::Int(w), Ok(g)) => {
                // Exact: integers below 2^53 are exact in f64; larger ones are compared as text.
                if w < (1u64 << 53) {
                    g == w as f64
                } else {
                    got.parse::<u64>().ok() == Some(w)
                }
            }
            (Expect::Float(w), Ok(g)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
        };
        if !ok {
            o.mismatches
                .push(format!("{}: ipvsadm {:?} != scrape {got}", show(key), want));
        }
    }
    for key in scraped.keys() {
        if !e.series.contains_key(key) {
            o.mismatches.push(format!(
                "{}: served, but ipvsadm shows no such series (value {})",
                show(key),
                scraped.get(key).copied().unwrap_or("")
            ));
        }
    }
    o
}
