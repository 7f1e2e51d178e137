//! The connection-table families: the scanned connections aggregated per virtual service,
//! destination and state, and the persistence templates.

use super::family::{encode_lazy, Family, Kind, Value};
use super::labels::{label, non_empty_str, Shown};
use crate::config::{Config, ServiceSpec, Target};
use herald_shared::conntable::{ConnProtocol, ConnTableSummary};
use herald_shared::model::ServiceKey;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use std::net::IpAddr;

/// One aggregated connection-table series: (protocol, virtual address, port, [destination],
/// state) and its count; `proto` is `None` for persistence templates.
#[derive(Debug)]
pub(super) struct ConnRow {
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
pub(super) fn conn_rows(c: &ConnTableSummary, cfg: &Config) -> Vec<ConnRow> {
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

/// Write the connection-table families from `rows`.
pub(super) fn encode(
    rows: &[ConnRow],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
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
        rows.iter()
            .filter(|r| r.proto.is_some())
            .map(|r| (r, Value::U64(r.count))),
    )?;
    encode_lazy(
        &templates,
        encoder,
        rows.iter()
            .filter(|r| r.proto.is_none())
            .map(|r| (r, Value::U64(r.count))),
    )
}
