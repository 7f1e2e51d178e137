//! Turning a [`Snapshot`] (and a connection-table summary) into metric families.
//!
//! This is a pure function of its inputs: no I/O, no clock. The collector calls it at scrape time;
//! tests and the lab call it (through `render_snapshot`, a `testing` feature item) on a fixed snapshot. Label sets
//! are designed so that every series is unique (see `exporter/README.md`, "Labels"):
//!
//! * address services: `protocol` (`tcp`/`udp`/`sctp`), `address`, `port`;
//! * fwmark services: `protocol="fwm"`, `family` (`ipv4`/`ipv6`), `mark`;
//! * plus `name` when a friendly name is configured for the service;
//! * destinations add `dest_address`, `dest_port`.
//!
//! No label value is ever empty. A snapshot that contains the same service (or the same
//! destination within a service) twice keeps the first and counts the rest as dropped.
//!
//! The builder is split along the families it writes: `global` (version, reader, hash table,
//! global traffic, timeouts), `sync` (sync daemons), `services` and `destinations` (written
//! at encoding time from the snapshot), `conntable` (the connection-table scan); `family` is
//! the family type and its encoder, `labels` the label sets, `traffic` the ten traffic
//! families the first three share.

mod conntable;
mod destinations;
mod family;
mod global;
mod labels;
mod services;
mod sync;
mod traffic;

pub(crate) use family::{Family, Kind, Value};
pub use services::imbalance;

use crate::config::Config;
use conntable::ConnRow;
use herald_shared::conntable::ConnTableSummary;
use herald_shared::model::{Snapshot, SnapshotSource};
use prometheus_client::encoding::DescriptorEncoder;
use services::ServiceTable;

/// What [`build`] produced: the small families, built eagerly, and the service table, from
/// which the per-service and per-destination families are written at encoding time, straight
/// from the snapshot. Nothing per series is held in memory: a 10,000 × 10 table costs the
/// snapshot itself, not millions of label sets.
#[derive(Debug, Default)]
pub(crate) struct Built {
    /// Global, timeout and sync-daemon families (before the services).
    head: Vec<Family>,
    /// The selected services, each once, each with its destinations once.
    table: ServiceTable,
    per_destination: bool,
    /// Connection-table rows, aggregated and in output order (after the services).
    conn: Vec<ConnRow>,
    /// Services or destinations skipped because the snapshot held them twice.
    pub duplicates_dropped: u64,
}

/// Build every IPVS family from a snapshot and an optional connection-table summary. The
/// snapshot is kept (filtered and deduplicated) inside the result.
pub(crate) fn build(snap: Snapshot, conn: Option<&ConnTableSummary>, cfg: &Config) -> Built {
    let mut head = global::families(&snap);
    let (sync, sync_dropped) = sync::families(&snap);
    head.extend(sync);
    let full = snap.source == SnapshotSource::Netlink;
    let (table, dropped) = ServiceTable::select(snap.services, full, cfg);
    Built {
        head,
        table,
        per_destination: cfg.per_destination,
        conn: conn
            .map(|c| conntable::conn_rows(c, cfg))
            .unwrap_or_default(),
        duplicates_dropped: sync_dropped + dropped,
    }
}

impl Built {
    /// Write every family, in the documented order, through a prometheus-client encoder.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.head {
            f.encode(encoder)?;
        }
        self.table.encode_services(encoder)?;
        if self.per_destination {
            self.table.encode_destinations(encoder)?;
        }
        conntable::encode(&self.conn, encoder)
    }
}

#[cfg(test)]
mod tests;
