//! The families about IPVS as a whole: the kernel's version, which reader produced the snapshot
//! (and so which series it can carry), the connection hash table's size, the traffic over all
//! services and the connection timeouts.

use super::family::{Family, Kind, SharedLabels, Value};
use super::traffic::TrafficFamilies;
use herald_shared::model::Snapshot;
use prometheus_client::registry::Unit;

/// The global families of `snap`, in output order.
pub(super) fn families(snap: &Snapshot) -> Vec<Family> {
    let mut fams = Vec::new();
    let mut info = Family::new("ipvs", "IPVS version reported by the kernel.", Kind::Info);
    info.push(vec![("version", snap.info.version_string())], Value::U64(1));
    fams.push(info);
    // The procfs reader cannot see per-service/per-destination traffic, rates, thresholds or
    // persistent connections: those series are left out rather than exported as zeros.
    let mut reader = Family::new(
        "ipvs_reader",
        "Which reader produced this scrape's IPVS state: netlink (everything) or procfs (fallback without CAP_NET_ADMIN: no per-service/per-destination traffic, rates, thresholds or persistent connections).",
        Kind::Info,
    );
    reader.push(
        vec![("source", snap.source.as_str().to_string())],
        Value::U64(1),
    );
    fams.push(reader);
    let mut table = Family::new(
        "ipvs_connection_table_size",
        "Size of the kernel's IPVS connection hash table (number of buckets, 2^conn_tab_bits).",
        Kind::Gauge,
    );
    table.push(Vec::new(), Value::U64(u64::from(snap.info.conn_table_size)));
    fams.push(table);
    if let Some(g) = &snap.global {
        let mut t = TrafficFamilies::global();
        t.push(&SharedLabels::from(Vec::new()), &g.counters, &g.rates);
        fams.extend(t.into_vec());
    }
    if let Some(t) = &snap.timeouts {
        let mut f = Family::new(
            "ipvs_timeout",
            "IPVS connection timeouts (ipvsadm --set): tcp, tcp_fin, udp.",
            Kind::Gauge,
        )
        .with_unit(Unit::Seconds);
        for (name, v) in [("tcp", t.tcp), ("tcp_fin", t.tcp_fin), ("udp", t.udp)] {
            f.push(
                vec![("timeout", name.to_string())],
                Value::U64(u64::from(v)),
            );
        }
        fams.push(f);
    }
    fams
}
