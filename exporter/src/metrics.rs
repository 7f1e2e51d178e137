//! Turning a [`Snapshot`] (and a connection-table summary) into metric families.
//!
//! This is a pure function of its inputs: no I/O, no clock. The collector calls it at scrape time;
//! tests and the lab call it (through `render_snapshot`, a `testing` feature item) on a fixed
//! snapshot. Label sets are designed so that every series is unique (see `exporter/README.md`,
//! "Labels"):
//!
//! * address services: `protocol` (`tcp`/`udp`/`sctp`), `address`, `port`;
//! * fwmark services: `protocol="fwm"`, `family` (`ipv4`/`ipv6`), `mark`;
//! * plus `name` when a friendly name is configured for the service;
//! * destinations add `dest_address`, `dest_port`.
//!
//! No label value is ever empty. A snapshot that contains the same service (or the same
//! destination within a service) twice keeps the first and counts the rest as dropped.

use crate::config::{Config, ServiceSpec, Target};
use herald_shared::conntable::{ConnProtocol, ConnTableSummary};
use herald_shared::model::{
    AddressFamily, Counters, Destination, Rates, Service, ServiceKey, Snapshot, SnapshotSource,
    SyncRole,
};
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder,
    LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::collections::HashSet;
use std::net::IpAddr;

/// Labels of one sample, in output order.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Labels shared by the samples of one service or destination across families (cloning is a
/// reference-count increment, not a copy of every label string).
pub(crate) type SharedLabels = std::sync::Arc<[(&'static str, String)]>;

/// Value of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// The kind of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Name given without `_total` (the encoder appends it).
    Counter,
    Gauge,
    /// Name given without `_info` (the encoder appends it); value is always 1.
    Info,
}

/// One metric family with its samples.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// Name without the unit suffix (the encoder appends `_<unit>`), `_total` or `_info`.
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub kind: Kind,
    pub samples: Vec<(SharedLabels, Value)>,
}

impl Family {
    pub(crate) fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Family {
            name,
            help,
            unit: None,
            kind,
            samples: Vec::new(),
        }
    }

    pub(crate) fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    pub(crate) fn push(&mut self, labels: impl Into<SharedLabels>, value: Value) {
        self.samples.push((labels.into(), value));
    }

    /// Write this family through a prometheus-client encoder (skipped when it has no samples).
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let metric_type = match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Info => MetricType::Info,
        };
        let mut me =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), metric_type)?;
        for (labels, value) in &self.samples {
            let labels: &[(&'static str, String)] = labels;
            if self.kind == Kind::Info {
                me.encode_info(&labels)?;
            } else if labels.is_empty() {
                // Without encode_family: an empty label set would be written as `{}`.
                encode_value(&mut me, self.kind, *value)?;
            } else {
                let mut fe = me.encode_family(&labels)?;
                encode_value(&mut fe, self.kind, *value)?;
            }
        }
        Ok(())
    }
}

fn encode_value(
    me: &mut prometheus_client::encoding::MetricEncoder,
    kind: Kind,
    value: Value,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (Kind::Counter, Value::U64(v)) => me.encode_counter::<NoLabelSet, u64, u64>(&v, None),
        (Kind::Counter, Value::I64(v)) => {
            me.encode_counter::<NoLabelSet, u64, u64>(&u64::try_from(v).unwrap_or(0), None)
        }
        (Kind::Counter, Value::F64(v)) => me.encode_counter::<NoLabelSet, f64, u64>(&v, None),
        (_, Value::U64(v)) => me.encode_gauge(&v),
        (_, Value::I64(v)) => me.encode_gauge(&v),
        (_, Value::F64(v)) => me.encode_gauge(&v),
    }
}

/// The five counters and five rates, for one prefix (`ipvs`, `ipvs_service`, `ipvs_destination`).
struct TrafficFamilies {
    conns: Family,
    in_packets: Family,
    out_packets: Family,
    in_bytes: Family,
    out_bytes: Family,
    conns_rate: Family,
    in_packets_rate: Family,
    out_packets_rate: Family,
    in_bytes_rate: Family,
    out_bytes_rate: Family,
}

macro_rules! traffic_families {
    ($prefix:literal, $what:literal) => {
        TrafficFamilies {
            conns: Family::new(
                concat!($prefix, "_connections"),
                concat!("Connections scheduled ", $what, " (64-bit kernel counter)."),
                Kind::Counter,
            ),
            in_packets: Family::new(
                concat!($prefix, "_incoming_packets"),
                concat!("Packets from clients ", $what, " (64-bit kernel counter)."),
                Kind::Counter,
            ),
            out_packets: Family::new(
                concat!($prefix, "_outgoing_packets"),
                concat!(
                    "Packets to clients ",
                    $what,
                    " (seen by the director in NAT mode only)."
                ),
                Kind::Counter,
            ),
            in_bytes: Family::new(
                concat!($prefix, "_incoming"),
                concat!("Bytes from clients ", $what, " (64-bit kernel counter)."),
                Kind::Counter,
            )
            .with_unit(Unit::Bytes),
            out_bytes: Family::new(
                concat!($prefix, "_outgoing"),
                concat!(
                    "Bytes to clients ",
                    $what,
                    " (seen by the director in NAT mode only)."
                ),
                Kind::Counter,
            )
            .with_unit(Unit::Bytes),
            conns_rate: Family::new(
                concat!($prefix, "_estimated_connections_per_second"),
                concat!(
                    "Kernel rate estimate of new connections per second ",
                    $what,
                    "."
                ),
                Kind::Gauge,
            ),
            in_packets_rate: Family::new(
                concat!($prefix, "_estimated_incoming_packets_per_second"),
                concat!(
                    "Kernel rate estimate of packets per second from clients ",
                    $what,
                    "."
                ),
                Kind::Gauge,
            ),
            out_packets_rate: Family::new(
                concat!($prefix, "_estimated_outgoing_packets_per_second"),
                concat!(
                    "Kernel rate estimate of packets per second to clients ",
                    $what,
                    "."
                ),
                Kind::Gauge,
            ),
            in_bytes_rate: Family::new(
                concat!($prefix, "_estimated_incoming_bytes_per_second"),
                concat!(
                    "Kernel rate estimate of bytes (not bits) per second from clients ",
                    $what,
                    "."
                ),
                Kind::Gauge,
            ),
            out_bytes_rate: Family::new(
                concat!($prefix, "_estimated_outgoing_bytes_per_second"),
                concat!(
                    "Kernel rate estimate of bytes (not bits) per second to clients ",
                    $what,
                    "."
                ),
                Kind::Gauge,
            ),
        }
    };
}

impl TrafficFamilies {
    fn push(&mut self, labels: &SharedLabels, c: &Counters, r: &Rates) {
        self.conns.push(labels.clone(), Value::U64(c.conns));
        self.in_packets
            .push(labels.clone(), Value::U64(c.in_packets));
        self.out_packets
            .push(labels.clone(), Value::U64(c.out_packets));
        self.in_bytes.push(labels.clone(), Value::U64(c.in_bytes));
        self.out_bytes.push(labels.clone(), Value::U64(c.out_bytes));
        self.conns_rate
            .push(labels.clone(), Value::U64(r.conns_per_second));
        self.in_packets_rate
            .push(labels.clone(), Value::U64(r.in_packets_per_second));
        self.out_packets_rate
            .push(labels.clone(), Value::U64(r.out_packets_per_second));
        self.in_bytes_rate
            .push(labels.clone(), Value::U64(r.in_bytes_per_second));
        self.out_bytes_rate
            .push(labels.clone(), Value::U64(r.out_bytes_per_second));
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.conns,
            self.in_packets,
            self.out_packets,
            self.in_bytes,
            self.out_bytes,
            self.conns_rate,
            self.in_packets_rate,
            self.out_packets_rate,
            self.in_bytes_rate,
            self.out_bytes_rate,
        ]
    }
}

/// Label value of an address family.
pub(crate) fn family_label(f: AddressFamily) -> &'static str {
    match f {
        AddressFamily::Inet => "ipv4",
        AddressFamily::Inet6 => "ipv6",
    }
}

/// IPv4 persistence netmask (host-order bits) as dotted quad; IPv6 as prefix length.
fn netmask_label(key: &ServiceKey, netmask: u32) -> String {
    match key.family() {
        AddressFamily::Inet => std::net::Ipv4Addr::from(netmask).to_string(),
        AddressFamily::Inet6 => netmask.to_string(),
    }
}

/// Comma-separated names of the service flags that are set, or `none`.
fn flags_label(s: &Service) -> String {
    let f = &s.flags;
    let mut v = Vec::new();
    for (set, name) in [
        (f.persistent, "persistent"),
        (f.hashed, "hashed"),
        (f.one_packet, "one-packet"),
        (f.sched_flag_1, "flag-1"),
        (f.sched_flag_2, "flag-2"),
        (f.sched_flag_3, "flag-3"),
    ] {
        if set {
            v.push(name);
        }
    }
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(",")
    }
}

/// Scheduler imbalance over current connections (active + inactive) of the destinations with a
/// positive weight: `max_i (c_i / Σc) / (w_i / Σw)`. 1 means exactly as weighted; 2 means some
/// destination carries twice its weighted share. `None` when no destination has a positive
/// weight or none of them has a connection (nothing to measure).
pub fn imbalance(destinations: &[Destination]) -> Option<f64> {
    let mut sum_w = 0.0f64;
    let mut sum_c = 0.0f64;
    for d in destinations.iter().filter(|d| d.weight > 0) {
        sum_w += f64::from(d.weight);
        sum_c += f64::from(d.active_conns) + f64::from(d.inactive_conns);
    }
    if sum_w <= 0.0 || sum_c <= 0.0 {
        return None;
    }
    destinations
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| {
            let share_c = (f64::from(d.active_conns) + f64::from(d.inactive_conns)) / sum_c;
            let share_w = f64::from(d.weight) / sum_w;
            share_c / share_w
        })
        .fold(None, |acc: Option<f64>, r| {
            Some(acc.map_or(r, |a| a.max(r)))
        })
}

/// What [`build`] produced: the small families, built eagerly, and the service table, from
/// which the per-service and per-destination families are written at encoding time, straight
/// from the snapshot. Nothing per series is held in memory: a 10,000 × 10 table costs the
/// snapshot itself, not millions of label sets.
#[derive(Debug, Default)]
pub(crate) struct Built {
    /// Global, timeout and sync-daemon families (before the services).
    head: Vec<Family>,
    /// The selected services, each once, each with its destinations once.
    services: Vec<Service>,
    /// The configured friendly name of each service in `services`, if any.
    names: Vec<Option<String>>,
    /// Netlink snapshot: traffic, rates, thresholds and persistent connections are known.
    full: bool,
    per_destination: bool,
    /// Connection-table rows, aggregated and in output order (after the services).
    conn: Vec<ConnRow>,
    /// Services or destinations skipped because the snapshot held them twice.
    pub duplicates_dropped: u64,
}

/// Build every IPVS family from a snapshot and an optional connection-table summary. The
/// snapshot is kept (filtered and deduplicated) inside the result.
pub(crate) fn build(snap: Snapshot, conn: Option<&ConnTableSummary>, cfg: &Config) -> Built {
    let mut out = Built::default();
    let mut fams = Vec::new();
    let snap_ref = &snap;
    {
        let snap = snap_ref;
        // Global.
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
            let mut t = traffic_families!("ipvs", "by all services");
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

        // Sync daemons.
        let mut daemons = Family::new(
            "ipvs_sync_daemons",
            "Connection-synchronisation daemons running, by role (0 when none).",
            Kind::Gauge,
        );
        for role in [SyncRole::Master, SyncRole::Backup] {
            let n = snap.daemons.iter().filter(|d| d.role == role).count();
            daemons.push(
                vec![("role", role_label(role).to_string())],
                Value::U64(n as u64),
            );
        }
        fams.push(daemons);
        let mut dinfo = Family::new(
            "ipvs_sync_daemon",
            "A connection-synchronisation daemon and its settings.",
            Kind::Info,
        );
        let mut seen_daemons = HashSet::new();
        for d in &snap.daemons {
            let mut l: Labels = vec![
                ("role", role_label(d.role).to_string()),
                ("interface", non_empty(&d.interface)),
                ("sync_id", d.sync_id.to_string()),
            ];
            if d.max_len != 0 {
                l.push(("max_len", d.max_len.to_string()));
            }
            if let Some(g) = d.mcast_group {
                l.push(("mcast_group", g.to_string()));
            }
            if d.mcast_port != 0 {
                l.push(("mcast_port", d.mcast_port.to_string()));
            }
            if d.mcast_ttl != 0 {
                l.push(("mcast_ttl", d.mcast_ttl.to_string()));
            }
            if seen_daemons.insert(l.clone()) {
                dinfo.push(l, Value::U64(1));
            } else {
                out.duplicates_dropped += 1;
            }
        }
        fams.push(dinfo);
    }
    out.head = fams;

    // Services and destinations: keep the selected ones, each service once, each destination
    // (address, port) once within its service; everything else is counted as dropped.
    let full = snap.source == SnapshotSource::Netlink;
    let mut services = snap.services;
    let mut seen_services = HashSet::new();
    let mut dropped = 0u64;
    services.retain(|s| {
        if !cfg.selected(Target::from(&s.key)) {
            return false;
        }
        if !seen_services.insert(s.key) {
            dropped += 1;
            return false;
        }
        true
    });
    for s in &mut services {
        let mut seen_dests = HashSet::new();
        s.destinations.retain(|d| {
            if seen_dests.insert((d.address, d.port)) {
                true
            } else {
                dropped += 1;
                false
            }
        });
    }
    out.duplicates_dropped += dropped;
    out.names = services
        .iter()
        .map(|s| {
            cfg.service_names
                .get(&ServiceSpec(s.key))
                .filter(|n| !n.is_empty())
                .cloned()
        })
        .collect();
    out.services = services;
    out.full = full;
    out.per_destination = cfg.per_destination;
    if let Some(c) = conn {
        out.conn = conn_rows(c, cfg);
    }
    out
}

/// Descriptors (name, help, unit, kind) of the per-service and per-destination families, in
/// output order; their samples are produced at encoding time.
struct TableFamilies {
    svc: TrafficFamilies,
    dst: TrafficFamilies,
    svc_info: Family,
    svc_persist: Family,
    svc_active: Family,
    svc_inactive: Family,
    svc_persistent: Family,
    svc_dests: Family,
    svc_usable: Family,
    svc_imbalance: Family,
    dst_info: Family,
    dst_active: Family,
    dst_inactive: Family,
    dst_persistent: Family,
    dst_weight: Family,
    dst_upper: Family,
    dst_lower: Family,
}

impl TableFamilies {
    fn new() -> Self {
        TableFamilies {
            svc: traffic_families!("ipvs_service", "to this service"),
            dst: traffic_families!("ipvs_destination", "to this destination (real server)"),
            svc_info: Family::new(
                "ipvs_service",
                "Virtual service details: scheduler, flags, persistence netmask and engine.",
                Kind::Info,
            ),
            svc_persist: Family::new(
                "ipvs_service_persistence_timeout",
                "Persistence timeout of a persistent service (ipvsadm -p).",
                Kind::Gauge,
            )
            .with_unit(Unit::Seconds),
            svc_active: Family::new(
                "ipvs_service_active_connections",
                "Active connections (e.g. TCP ESTABLISHED) summed over the service's destinations.",
                Kind::Gauge,
            ),
            svc_inactive: Family::new(
                "ipvs_service_inactive_connections",
                "Inactive connections (other states) summed over the service's destinations.",
                Kind::Gauge,
            ),
            svc_persistent: Family::new(
                "ipvs_service_persistent_connections",
                "Persistence templates summed over the service's destinations.",
                Kind::Gauge,
            ),
            svc_dests: Family::new(
                "ipvs_service_destinations",
                "Destinations (real servers) configured for the service.",
                Kind::Gauge,
            ),
            svc_usable: Family::new(
                "ipvs_service_usable_destinations",
                "Destinations with a weight above 0 (that can receive new connections).",
                Kind::Gauge,
            ),
            svc_imbalance: Family::new(
                "ipvs_service_imbalance_ratio",
                "Largest ratio of a destination's share of current connections to its share of the weights (1 = as weighted); absent when no weighted destination has a connection.",
                Kind::Gauge,
            ),
            dst_info: Family::new(
                "ipvs_destination",
                "Destination details: forwarding method, address family, tunnel type.",
                Kind::Info,
            ),
            dst_active: Family::new(
                "ipvs_destination_active_connections",
                "Active connections (e.g. TCP ESTABLISHED) to the destination.",
                Kind::Gauge,
            ),
            dst_inactive: Family::new(
                "ipvs_destination_inactive_connections",
                "Inactive connections (other states) to the destination.",
                Kind::Gauge,
            ),
            dst_persistent: Family::new(
                "ipvs_destination_persistent_connections",
                "Persistence templates pointing at the destination.",
                Kind::Gauge,
            ),
            dst_weight: Family::new(
                "ipvs_destination_weight",
                "Scheduling weight of the destination; 0 = drained (no new connections).",
                Kind::Gauge,
            ),
            dst_upper: Family::new(
                "ipvs_destination_upper_threshold_connections",
                "Upper connection threshold (ipvsadm -x); 0 = none.",
                Kind::Gauge,
            ),
            dst_lower: Family::new(
                "ipvs_destination_lower_threshold_connections",
                "Lower connection threshold (ipvsadm -y); 0 = none.",
                Kind::Gauge,
            ),
        }
    }
}

/// Counter or rate number `i` (in [`TrafficFamilies::into_vec`] order).
fn traffic_value(i: usize, c: &Counters, r: &Rates) -> u64 {
    match i {
        0 => c.conns,
        1 => c.in_packets,
        2 => c.out_packets,
        3 => c.in_bytes,
        4 => c.out_bytes,
        5 => r.conns_per_second,
        6 => r.in_packets_per_second,
        7 => r.out_packets_per_second,
        8 => r.in_bytes_per_second,
        _ => r.out_bytes_per_second,
    }
}

impl Built {
    /// Write every family, in the documented order, through a prometheus-client encoder.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.head {
            f.encode(encoder)?;
        }
        let t = TableFamilies::new();
        let full = self.full;
        self.per_service(&t.svc_info, encoder, |s, l| {
            Some((SvcInfoLabels { svc: l, s }, Value::U64(1)))
        })?;
        self.per_service(&t.svc_persist, encoder, |s, l| {
            s.flags
                .persistent
                .then(|| (l, Value::U64(u64::from(s.persistence_timeout))))
        })?;
        for (i, f) in t.svc.into_vec().iter().enumerate() {
            self.per_service(f, encoder, |s, l| {
                full.then(|| {
                    let v = traffic_value(i, &s.stats.counters, &s.stats.rates);
                    (l, Value::U64(v))
                })
            })?;
        }
        let sum = |s: &Service, f: fn(&Destination) -> u32| -> u64 {
            s.destinations.iter().map(|d| u64::from(f(d))).sum()
        };
        self.per_service(&t.svc_active, encoder, |s, l| {
            Some((l, Value::U64(sum(s, |d| d.active_conns))))
        })?;
        self.per_service(&t.svc_inactive, encoder, |s, l| {
            Some((l, Value::U64(sum(s, |d| d.inactive_conns))))
        })?;
        self.per_service(&t.svc_persistent, encoder, |s, l| {
            full.then(|| (l, Value::U64(sum(s, |d| d.persistent_conns))))
        })?;
        self.per_service(&t.svc_dests, encoder, |s, l| {
            Some((l, Value::U64(s.destinations.len() as u64)))
        })?;
        self.per_service(&t.svc_usable, encoder, |s, l| {
            let usable = s.destinations.iter().filter(|d| d.weight > 0).count();
            Some((l, Value::U64(usable as u64)))
        })?;
        self.per_service(&t.svc_imbalance, encoder, |s, l| {
            imbalance(&s.destinations).map(|r| (l, Value::F64(r)))
        })?;
        if !self.per_destination {
            return self.encode_conn(encoder);
        }
        self.per_dest(&t.dst_info, encoder, |d, l| {
            Some((DestInfoLabels { dest: l, d }, Value::U64(1)))
        })?;
        for (i, f) in t.dst.into_vec().iter().enumerate() {
            self.per_dest(f, encoder, |d, l| {
                full.then(|| {
                    let v = traffic_value(i, &d.stats.counters, &d.stats.rates);
                    (l, Value::U64(v))
                })
            })?;
        }
        self.per_dest(&t.dst_active, encoder, |d, l| {
            Some((l, Value::U64(u64::from(d.active_conns))))
        })?;
        self.per_dest(&t.dst_inactive, encoder, |d, l| {
            Some((l, Value::U64(u64::from(d.inactive_conns))))
        })?;
        self.per_dest(&t.dst_persistent, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.persistent_conns))))
        })?;
        self.per_dest(&t.dst_weight, encoder, |d, l| {
            Some((l, Value::I64(i64::from(d.weight))))
        })?;
        self.per_dest(&t.dst_upper, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.upper_threshold))))
        })?;
        self.per_dest(&t.dst_lower, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.lower_threshold))))
        })?;
        self.encode_conn(encoder)
    }

    fn encode_conn(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let conns = Family::new(
            "ipvs_connection_table_connections",
            "Connections in the IPVS connection table by virtual address/port, destination and state (partial when ipvs_connection_table_scan_truncated is 1).",
            Kind::Gauge,
        );
        let templates = Family::new(
            "ipvs_connection_table_templates",
            "Persistence templates in the IPVS connection table by virtual address/port and destination.",
            Kind::Gauge,
        );
        encode_lazy(
            &conns,
            encoder,
            self.conn
                .iter()
                .filter(|r| r.proto.is_some())
                .map(|r| (r, Value::U64(r.count))),
        )?;
        encode_lazy(
            &templates,
            encoder,
            self.conn
                .iter()
                .filter(|r| r.proto.is_none())
                .map(|r| (r, Value::U64(r.count))),
        )
    }

    fn service_labels(&self) -> impl Iterator<Item = (&Service, SvcLabels<'_>)> {
        self.services.iter().enumerate().map(|(i, s)| {
            let name = self.names.get(i).and_then(|n| n.as_deref());
            (s, SvcLabels { key: &s.key, name })
        })
    }

    /// One family with (at most) one sample per service.
    fn per_service<'a, L: EncodeLabelSet>(
        &'a self,
        desc: &Family,
        encoder: &mut DescriptorEncoder,
        sample: impl Fn(&'a Service, SvcLabels<'a>) -> Option<(L, Value)>,
    ) -> Result<(), std::fmt::Error> {
        encode_lazy(
            desc,
            encoder,
            self.service_labels().filter_map(|(s, l)| sample(s, l)),
        )
    }

    /// One family with (at most) one sample per destination.
    fn per_dest<'a, L: EncodeLabelSet>(
        &'a self,
        desc: &Family,
        encoder: &mut DescriptorEncoder,
        sample: impl Fn(&'a Destination, DestLabels<'a>) -> Option<(L, Value)>,
    ) -> Result<(), std::fmt::Error> {
        let sample = &sample;
        let samples = self.service_labels().flat_map(move |(s, svc)| {
            s.destinations
                .iter()
                .filter_map(move |d| sample(d, DestLabels { svc, d }))
        });
        encode_lazy(desc, encoder, samples)
    }
}

/// Write one family from samples made on the fly; nothing (not even the descriptor) when there
/// are none, like [`Family::encode`].
fn encode_lazy<L: EncodeLabelSet>(
    desc: &Family,
    encoder: &mut DescriptorEncoder,
    samples: impl Iterator<Item = (L, Value)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let metric_type = match desc.kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Info => MetricType::Info,
    };
    let mut me =
        encoder.encode_descriptor(desc.name, desc.help, desc.unit.as_ref(), metric_type)?;
    for (labels, value) in samples {
        if desc.kind == Kind::Info {
            me.encode_info(&labels)?;
        } else {
            let mut fe = me.encode_family(&labels)?;
            encode_value(&mut fe, desc.kind, value)?;
        }
    }
    Ok(())
}

/// A label value written with `Display`, without an intermediate `String` (escaped like any
/// other value by the encoder).
struct Shown<T>(T);

impl<T: std::fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        write!(encoder, "{}", self.0)
    }
}

fn label(
    encoder: &mut LabelSetEncoder,
    key: &'static str,
    value: impl EncodeLabelValue,
) -> Result<(), std::fmt::Error> {
    (key, value).encode(encoder.encode_label())
}

/// The labels identifying a service: `protocol`, `address`, `port` or `protocol="fwm"`,
/// `family`, `mark`; plus `name` when one is configured.
#[derive(Clone, Copy)]
struct SvcLabels<'a> {
    key: &'a ServiceKey,
    name: Option<&'a str>,
}

impl EncodeLabelSet for SvcLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match *self.key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => {
                label(e, "protocol", protocol.as_str())?;
                label(e, "address", Shown(address))?;
                label(e, "port", Shown(port))?;
            }
            ServiceKey::Fwmark { family, mark } => {
                label(e, "protocol", "fwm")?;
                label(e, "family", family_label(family))?;
                label(e, "mark", Shown(mark))?;
            }
        }
        if let Some(name) = self.name {
            label(e, "name", name)?;
        }
        Ok(())
    }
}

/// `ipvs_service_info` labels: the service's, then scheduler, flags, netmask, pe.
struct SvcInfoLabels<'a> {
    svc: SvcLabels<'a>,
    s: &'a Service,
}

impl EncodeLabelSet for SvcInfoLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let s = self.s;
        self.svc.encode(e)?;
        label(e, "scheduler", non_empty_str(&s.scheduler))?;
        label(e, "flags", flags_label(s).as_str())?;
        if s.flags.persistent {
            label(e, "netmask", netmask_label(&s.key, s.netmask).as_str())?;
        }
        if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
            label(e, "pe", pe)?;
        }
        Ok(())
    }
}

/// The labels identifying a destination: its service's, then `dest_address`, `dest_port`.
#[derive(Clone, Copy)]
struct DestLabels<'a> {
    svc: SvcLabels<'a>,
    d: &'a Destination,
}

impl EncodeLabelSet for DestLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.svc.encode(e)?;
        label(e, "dest_address", Shown(self.d.address))?;
        label(e, "dest_port", Shown(self.d.port))
    }
}

/// `ipvs_destination_info` labels: the destination's, then forward, family and tunnel.
struct DestInfoLabels<'a> {
    dest: DestLabels<'a>,
    d: &'a Destination,
}

impl EncodeLabelSet for DestInfoLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let d = self.d;
        self.dest.encode(e)?;
        label(e, "forward", d.forward.as_str())?;
        label(e, "dest_family", family_label(d.family))?;
        if let Some(t) = &d.tunnel {
            label(e, "tunnel_type", t.kind.as_str())?;
            if t.port != 0 {
                label(e, "tunnel_port", Shown(t.port))?;
            }
            label(e, "tunnel_flags", tunnel_flags_label(t.flags).as_str())?;
        }
        Ok(())
    }
}

fn non_empty_str(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

fn role_label(r: SyncRole) -> &'static str {
    match r {
        SyncRole::Master => "master",
        SyncRole::Backup => "backup",
    }
}

fn tunnel_flags_label(flags: u16) -> String {
    let mut v = Vec::new();
    if flags & 1 != 0 {
        v.push("csum");
    }
    if flags & 2 != 0 {
        v.push("remcsum");
    }
    if v.is_empty() {
        "nocsum".to_string()
    } else {
        v.join(",")
    }
}

/// Empty strings become `unknown` so that no label value is ever empty.
fn non_empty(s: &str) -> String {
    if s.is_empty() {
        "unknown".to_string()
    } else {
        s.to_string()
    }
}

/// One aggregated connection-table series: (protocol, virtual address, port, [destination],
/// state) and its count; `proto` is `None` for persistence templates.
#[derive(Debug)]
struct ConnRow {
    proto: Option<&'static str>,
    address: IpAddr,
    port: u16,
    /// The configured service name, when there is one.
    name: Option<String>,
    dest: Option<(IpAddr, u16)>,
    /// Shared between the rows with the same state (a handful of distinct values).
    state: std::sync::Arc<str>,
    count: u64,
}

impl EncodeLabelSet for &ConnRow {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        if let Some(p) = self.proto {
            label(e, "protocol", p)?;
        }
        label(e, "address", Shown(self.address))?;
        label(e, "port", Shown(self.port))?;
        if let Some(name) = &self.name {
            label(e, "name", name.as_str())?;
        }
        if let Some((da, dp)) = self.dest {
            label(e, "dest_address", Shown(da))?;
            label(e, "dest_port", Shown(dp))?;
        }
        if self.proto.is_some() {
            label(e, "state", &*self.state)?;
        }
        Ok(())
    }
}

/// Connection-table rows: per (protocol, virtual address, port, [destination], state), summed
/// (dropping the destination when per-destination series are off), in label order. Built as one
/// exactly sized list, sorted and merged in place: no map per group.
fn conn_rows(c: &ConnTableSummary, cfg: &Config) -> Vec<ConnRow> {
    let mut states: std::collections::HashMap<&str, std::sync::Arc<str>> =
        std::collections::HashMap::new();
    let mut rows: Vec<ConnRow> = Vec::with_capacity(c.groups.len());
    for (g, n) in &c.groups {
        let proto = match g.protocol {
            ConnProtocol::Tcp => Some(herald_shared::model::Protocol::Tcp),
            ConnProtocol::Udp => Some(herald_shared::model::Protocol::Udp),
            ConnProtocol::Sctp => Some(herald_shared::model::Protocol::Sctp),
            ConnProtocol::Template => None,
        };
        if !cfg.selected(Target::Addr {
            protocol: proto,
            address: g.virtual_address,
            port: g.virtual_port,
        }) {
            continue;
        }
        let state = if proto.is_none() {
            ""
        } else {
            non_empty_str(&g.state)
        };
        let state = states
            .entry(state)
            .or_insert_with(|| std::sync::Arc::from(state))
            .clone();
        rows.push(ConnRow {
            proto: proto.map(|p| p.as_str()),
            address: g.virtual_address,
            port: g.virtual_port,
            name: None,
            dest: cfg.per_destination.then_some((g.dest_address, g.dest_port)),
            state,
            count: *n,
        });
    }
    /// The label order of a row.
    type RowKey<'a> = (
        Option<&'static str>,
        IpAddr,
        u16,
        Option<(IpAddr, u16)>,
        &'a str,
    );
    fn key(r: &ConnRow) -> RowKey<'_> {
        (r.proto, r.address, r.port, r.dest, &r.state)
    }
    rows.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    rows.dedup_by(|later, kept| {
        if key(later) == key(kept) {
            kept.count = kept.count.saturating_add(later.count);
            true
        } else {
            false
        }
    });
    if !cfg.service_names.is_empty() {
        for r in &mut rows {
            r.name = r
                .proto
                .and_then(|p| p.parse_protocol())
                .and_then(|p| {
                    cfg.service_names.get(&ServiceSpec(ServiceKey::Addr {
                        protocol: p,
                        address: r.address,
                        port: r.port,
                    }))
                })
                .cloned();
        }
    }
    if rows.len() < rows.capacity() / 2 {
        rows.shrink_to_fit();
    }
    rows
}

trait ParseProtocol {
    fn parse_protocol(self) -> Option<herald_shared::model::Protocol>;
}

impl ParseProtocol for &str {
    fn parse_protocol(self) -> Option<herald_shared::model::Protocol> {
        use herald_shared::model::Protocol;
        match self {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{check_series, parse_exposition, render_snapshot, Format};
    use crate::fixture::{addr_key, dest, rich_conn_table, rich_snapshot, service};
    use herald_shared::model::Protocol;

    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
        parse_exposition(text)
            .unwrap()
            .into_iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn render(cfg: &Config) -> String {
        render_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            cfg,
            Format::Prometheus,
        )
    }

    const WEB: [(&str, &str); 3] = [
        ("protocol", "tcp"),
        ("address", "192.0.2.10"),
        ("port", "80"),
    ];

    #[test]
    fn procfs_snapshots_leave_out_what_procfs_cannot_see() {
        let mut snap = rich_snapshot();
        snap.source = SnapshotSource::Procfs;
        let t = render_snapshot(&snap, None, &Config::default(), Format::Prometheus);
        assert_eq!(
            value(&t, "ipvs_reader_info", &[("source", "procfs")]).as_deref(),
            Some("1")
        );
        assert!(value(&t, "ipvs_service_connections_total", &WEB).is_none());
        assert!(value(&t, "ipvs_service_persistent_connections", &WEB).is_none());
        assert!(!t.contains("ipvs_destination_incoming_bytes_total"), "{t}");
        assert!(!t.contains("ipvs_destination_upper_threshold_connections{"));
        // What procfs does show is still there.
        assert!(value(&t, "ipvs_service_active_connections", &WEB).is_some());
        assert!(t.contains("ipvs_destination_weight{"));
        let netlink = render(&Config::default());
        assert_eq!(
            value(&netlink, "ipvs_reader_info", &[("source", "netlink")]).as_deref(),
            Some("1")
        );
        assert!(value(&netlink, "ipvs_service_connections_total", &WEB).is_some());
    }

    #[test]
    fn rich_snapshot_series_are_unique_and_labelled() {
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = render_snapshot(
                &rich_snapshot(),
                Some(&rich_conn_table()),
                &Config::default(),
                format,
            );
            check_series(&text).unwrap_or_else(|e| panic!("{format:?}: {e:#?}\n{text}"));
        }
    }

    #[test]
    fn counters_and_gauges_carry_the_model_values() {
        let t = render(&Config::default());
        assert_eq!(
            value(&t, "ipvs_service_incoming_bytes_total", &WEB).as_deref(),
            Some("5000000006")
        );
        assert_eq!(
            value(&t, "ipvs_service_connections_total", &WEB).as_deref(),
            Some("6000")
        );
        assert_eq!(
            value(&t, "ipvs_service_active_connections", &WEB).as_deref(),
            Some("77")
        );
        assert_eq!(
            value(&t, "ipvs_service_inactive_connections", &WEB).as_deref(),
            Some("23")
        );
        assert_eq!(
            value(&t, "ipvs_service_destinations", &WEB).as_deref(),
            Some("3")
        );
        assert_eq!(
            value(&t, "ipvs_service_usable_destinations", &WEB).as_deref(),
            Some("2")
        );
        let d1 = [
            WEB[0],
            WEB[1],
            WEB[2],
            ("dest_address", "198.51.100.1"),
            ("dest_port", "80"),
        ];
        assert_eq!(
            value(&t, "ipvs_destination_weight", &d1).as_deref(),
            Some("100")
        );
        assert_eq!(
            value(&t, "ipvs_destination_upper_threshold_connections", &d1).as_deref(),
            Some("5000")
        );
        assert_eq!(
            value(&t, "ipvs_destination_lower_threshold_connections", &d1).as_deref(),
            Some("4000")
        );
        assert_eq!(
            value(&t, "ipvs_destination_active_connections", &d1).as_deref(),
            Some("40")
        );
        assert_eq!(
            value(
                &t,
                "ipvs_destination_estimated_incoming_bytes_per_second",
                &d1
            )
            .as_deref(),
            Some("41000")
        );
        assert_eq!(
            value(&t, "ipvs_outgoing_bytes_total", &[]).as_deref(),
            Some("2199023255557")
        );
        assert_eq!(
            value(&t, "ipvs_estimated_incoming_bytes_per_second", &[]).as_deref(),
            Some("1250000")
        );
        assert_eq!(
            value(&t, "ipvs_timeout_seconds", &[("timeout", "tcp_fin")]).as_deref(),
            Some("120")
        );
        assert_eq!(
            value(&t, "ipvs_connection_table_size", &[]).as_deref(),
            Some("4096")
        );
        assert_eq!(
            value(&t, "ipvs_info", &[("version", "1.2.1")]).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&t, "ipvs_sync_daemons", &[("role", "backup")]).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(
                &t,
                "ipvs_sync_daemon_info",
                &[
                    ("role", "master"),
                    ("interface", "eth1"),
                    ("sync_id", "51"),
                    ("max_len", "1472"),
                    ("mcast_group", "224.0.0.81"),
                    ("mcast_port", "8848"),
                    ("mcast_ttl", "1")
                ]
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            value(
                &t,
                "ipvs_sync_daemon_info",
                &[("role", "backup"), ("interface", "eth1"), ("sync_id", "51")]
            )
            .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn info_metrics_describe_services_and_destinations() {
        let t = render(&Config::default());
        let sip = [
            ("protocol", "udp"),
            ("address", "192.0.2.60"),
            ("port", "5060"),
        ];
        let mut l = sip.to_vec();
        l.extend([
            ("scheduler", "wrr"),
            ("flags", "persistent,hashed"),
            ("netmask", "255.255.255.0"),
            ("pe", "sip"),
        ]);
        assert_eq!(value(&t, "ipvs_service_info", &l).as_deref(), Some("1"));
        assert_eq!(
            value(&t, "ipvs_service_persistence_timeout_seconds", &sip).as_deref(),
            Some("360")
        );
        assert_eq!(
            value(
                &t,
                "ipvs_destination_persistent_connections",
                &[
                    sip[0],
                    sip[1],
                    sip[2],
                    ("dest_address", "198.51.100.60"),
                    ("dest_port", "5060")
                ]
            )
            .as_deref(),
            Some("7")
        );
        let fwm6 = [("protocol", "fwm"), ("family", "ipv6"), ("mark", "7")];
        let mut l = fwm6.to_vec();
        l.extend([
            ("scheduler", "ovf"),
            ("flags", "persistent,hashed"),
            ("netmask", "64"),
        ]);
        assert_eq!(value(&t, "ipvs_service_info", &l).as_deref(), Some("1"));
        let sctp = [
            ("protocol", "sctp"),
            ("address", "192.0.2.20"),
            ("port", "3868"),
            ("dest_address", "198.51.100.20"),
            ("dest_port", "3868"),
        ];
        let mut l = sctp.to_vec();
        l.extend([
            ("forward", "tunnel"),
            ("dest_family", "ipv4"),
            ("tunnel_type", "gue"),
            ("tunnel_port", "6080"),
            ("tunnel_flags", "csum"),
        ]);
        assert_eq!(
            value(&t, "ipvs_destination_info", &l).as_deref(),
            Some("1"),
            "{t}"
        );
        // A non-persistent service has no netmask and no persistence timeout.
        assert!(!t.lines().any(|l| l
            .starts_with("ipvs_service_info{protocol=\"tcp\",address=\"192.0.2.10\"")
            && l.contains("netmask")));
        assert_eq!(
            value(&t, "ipvs_service_persistence_timeout_seconds", &WEB),
            None
        );
    }

    #[test]
    fn fwmark_services_of_both_families_are_distinct_and_have_no_address() {
        let t = render(&Config::default());
        let v4 = [("protocol", "fwm"), ("family", "ipv4"), ("mark", "7")];
        let v6 = [("protocol", "fwm"), ("family", "ipv6"), ("mark", "7")];
        assert!(value(&t, "ipvs_service_connections_total", &v4).is_some());
        assert!(value(&t, "ipvs_service_connections_total", &v6).is_some());
        for s in parse_exposition(&t).unwrap() {
            if s.labels.get("protocol").map(String::as_str) == Some("fwm") {
                assert!(
                    !s.labels.contains_key("address") && !s.labels.contains_key("port"),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn connection_table_counts_by_state_and_templates() {
        let t = render(&Config::default());
        let l = [
            WEB[0],
            WEB[1],
            WEB[2],
            ("dest_address", "198.51.100.1"),
            ("dest_port", "80"),
            ("state", "TIME_WAIT"),
        ];
        assert_eq!(
            value(&t, "ipvs_connection_table_connections", &l).as_deref(),
            Some("9")
        );
        let tl = [
            ("address", "192.0.2.60"),
            ("port", "5060"),
            ("dest_address", "198.51.100.60"),
            ("dest_port", "5060"),
        ];
        assert_eq!(
            value(&t, "ipvs_connection_table_templates", &tl).as_deref(),
            Some("7")
        );
        // Without per-destination series the table is summed per service and state.
        let cfg = Config {
            per_destination: false,
            ..Config::default()
        };
        let t = render(&cfg);
        let l = [WEB[0], WEB[1], WEB[2], ("state", "ESTABLISHED")];
        assert_eq!(
            value(&t, "ipvs_connection_table_connections", &l).as_deref(),
            Some("75")
        );
        assert!(!t.contains("ipvs_destination_"), "per_destination = false");
        assert!(!t.contains("dest_address"));
        check_series(&t).unwrap();
    }

    #[test]
    fn names_filters_and_cardinality_controls() {
        let cfg: Config = toml::from_str(
            r#"
            [[exclude]]
            protocol = "udp"
            [[exclude]]
            fwmark = 7
            [service_names]
            "tcp/192.0.2.10:80" = "web \"front\""
            "#,
        )
        .unwrap();
        let t = render(&cfg);
        check_series(&t).unwrap();
        let named = [WEB[0], WEB[1], WEB[2], ("name", "web \"front\"")];
        assert_eq!(
            value(&t, "ipvs_service_connections_total", &named).as_deref(),
            Some("6000")
        );
        assert!(
            t.contains(r#"name="web \"front\"""#),
            "label values are escaped"
        );
        assert!(
            !t.contains("protocol=\"udp\""),
            "udp excluded, also from the connection table"
        );
        assert!(
            !t.contains("mark=\"7\""),
            "fwmark 7 excluded (both families)"
        );
        assert!(t.contains("protocol=\"sctp\""));
        // Include only IPv6.
        let cfg: Config = toml::from_str("[[include]]\naddress = \"2001:db8::/32\"\n").unwrap();
        let t = render(&cfg);
        let svcs: std::collections::BTreeSet<String> = parse_exposition(&t)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == "ipvs_service_connections_total")
            .map(|s| s.labels["address"].clone())
            .collect();
        assert_eq!(
            svcs.into_iter().collect::<Vec<_>>(),
            vec!["2001:db8::10".to_string()]
        );
    }

    #[test]
    fn imbalance_is_defined_as_documented() {
        // Equal weights, 50/47 connections (the drained destination does not count).
        let d = vec![
            dest("198.51.100.1", 80, 100, 40, 10),
            dest("198.51.100.2", 80, 100, 35, 12),
            dest("198.51.100.3", 80, 0, 2, 1),
        ];
        let r = imbalance(&d).unwrap();
        assert!((r - (50.0 / 97.0) / 0.5).abs() < 1e-9, "{r}");
        // Exactly as weighted (3:1) = 1.
        let d = vec![
            dest("198.51.100.1", 80, 3, 30, 0),
            dest("198.51.100.2", 80, 1, 10, 0),
        ];
        assert!((imbalance(&d).unwrap() - 1.0).abs() < 1e-12);
        // Everything on the light destination: its share 1 against weight share 1/4 = 4.
        let d = vec![
            dest("198.51.100.1", 80, 3, 0, 0),
            dest("198.51.100.2", 80, 1, 10, 0),
        ];
        assert!((imbalance(&d).unwrap() - 4.0).abs() < 1e-12);
        // Nothing to measure.
        assert_eq!(imbalance(&[]), None);
        assert_eq!(imbalance(&[dest("198.51.100.1", 80, 0, 5, 5)]), None);
        assert_eq!(imbalance(&[dest("198.51.100.1", 80, 1, 0, 0)]), None);
        // Negative weights (nonsense from the kernel) count as 0.
        assert_eq!(imbalance(&[dest("198.51.100.1", 80, -1, 5, 5)]), None);
        // Huge values do not overflow.
        let d = vec![
            dest("198.51.100.1", 80, i32::MAX, u32::MAX, u32::MAX),
            dest("198.51.100.2", 80, 1, 0, 0),
        ];
        assert!(imbalance(&d).unwrap().is_finite());
        let t = render(&Config::default());
        assert!(value(&t, "ipvs_service_imbalance_ratio", &WEB).is_some());
        assert_eq!(
            value(
                &t,
                "ipvs_service_imbalance_ratio",
                &[
                    ("protocol", "tcp"),
                    ("address", "203.0.113.5"),
                    ("port", "8080")
                ]
            ),
            None,
            "no destinations: absent"
        );
    }

    #[test]
    fn duplicates_in_a_snapshot_are_dropped_not_exported_twice() {
        let mut s = rich_snapshot();
        let first = s.services[0].clone();
        s.services.push(first);
        let d0 = s.services[1].destinations[0].clone();
        s.services[1].destinations.push(d0);
        s.daemons.push(s.daemons[0].clone());
        let built = build(s.clone(), None, &Config::default());
        assert_eq!(built.duplicates_dropped, 3);
        let t = render_snapshot(&s, None, &Config::default(), Format::OpenMetrics);
        check_series(&t).unwrap();
    }

    #[test]
    fn empty_and_odd_snapshots_render_cleanly() {
        let t = render_snapshot(
            &Snapshot::default(),
            None,
            &Config::default(),
            Format::Prometheus,
        );
        check_series(&t).unwrap();
        assert_eq!(
            value(&t, "ipvs_info", &[("version", "0.0.0")]).as_deref(),
            Some("1")
        );
        let mut odd = service(
            addr_key(Protocol::Tcp, "192.0.2.1", 0),
            "",
            vec![dest("0.0.0.0", 0, 0, 0, 0)],
        );
        odd.pe_name = Some(String::new());
        let snap = Snapshot {
            services: vec![odd],
            ..Snapshot::default()
        };
        let t = render_snapshot(
            &snap,
            Some(&ConnTableSummary::default()),
            &Config::default(),
            Format::Prometheus,
        );
        check_series(&t).unwrap();
        assert!(t.contains("scheduler=\"unknown\""));
        assert!(!t.contains("pe=\""));
    }

    /// Deterministic xorshift generator, so that failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_snapshots_never_produce_duplicate_or_empty_labels() {
        use herald_shared::conntable::{ConnGroup, ConnProtocol};
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let addrs = [
            "192.0.2.1",
            "192.0.2.2",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "0.0.0.0",
            "::",
        ];
        for round in 0..300 {
            let mut snap = Snapshot::default();
            let mut conn = ConnTableSummary::default();
            for _ in 0..rng.below(8) {
                let key = match rng.below(4) {
                    0 => ServiceKey::Fwmark {
                        family: if rng.below(2) == 0 {
                            AddressFamily::Inet
                        } else {
                            AddressFamily::Inet6
                        },
                        mark: rng.below(3) as u32,
                    },
                    p => addr_key(
                        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][p as usize - 1],
                        addrs[rng.below(addrs.len() as u64) as usize],
                        rng.below(3) as u16,
                    ),
                };
                let dests = (0..rng.below(4))
                    .map(|_| {
                        dest(
                            addrs[rng.below(addrs.len() as u64) as usize],
                            rng.below(2) as u16,
                            rng.below(3) as i32 - 1,
                            rng.below(5) as u32,
                            rng.below(5) as u32,
                        )
                    })
                    .collect();
                snap.services
                    .push(service(key, ["rr", "", "mh"][rng.below(3) as usize], dests));
            }
            for _ in 0..rng.below(6) {
                let g = ConnGroup {
                    protocol: [
                        ConnProtocol::Tcp,
                        ConnProtocol::Udp,
                        ConnProtocol::Sctp,
                        ConnProtocol::Template,
                    ][rng.below(4) as usize],
                    virtual_address: addrs[rng.below(addrs.len() as u64) as usize]
                        .parse()
                        .unwrap(),
                    virtual_port: rng.below(2) as u16,
                    dest_address: addrs[rng.below(addrs.len() as u64) as usize]
                        .parse()
                        .unwrap(),
                    dest_port: rng.below(2) as u16,
                    state: ["ESTABLISHED", "", "NONE"][rng.below(3) as usize].to_string(),
                };
                conn.groups.insert(g, rng.below(10));
            }
            for per_destination in [true, false] {
                let cfg = Config {
                    per_destination,
                    ..Config::default()
                };
                let t = render_snapshot(&snap, Some(&conn), &cfg, Format::Prometheus);
                if let Err(e) = check_series(&t) {
                    panic!("round {round}: {e:#?}\n{snap:#?}\n{t}");
                }
            }
        }
    }
}
