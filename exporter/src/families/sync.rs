//! The families of the connection-synchronisation daemons: how many run in each role, and one
//! `_info` series per daemon with its settings.

use super::family::{Family, Kind, Labels, Value};
use super::labels::{non_empty, role_label};
use herald_shared::model::{Snapshot, SyncRole};
use std::collections::HashSet;

/// The sync-daemon families of `snap`, in output order, and how many daemons were dropped
/// because the snapshot held the same one twice.
pub(super) fn families(snap: &Snapshot) -> ([Family; 2], u64) {
    let mut dropped = 0;
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
            dropped += 1;
        }
    }
    ([daemons, dinfo], dropped)
}
