//! Loading `ipvs-herald dump --json --conns` output: the snapshot (the documented schema of
//! `herald_shared::model::Snapshot`) and the connection-table summary, aggregated to the same
//! keys the `-Lnc` parser uses.

use super::ipvsadm::ConnKey;
use herald_shared::model::Snapshot;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// One parsed dump.
#[derive(Debug, Clone)]
pub struct Dump {
    /// `source` (`netlink` or `procfs`), when the dump names it.
    pub source: Option<String>,
    pub snapshot: Snapshot,
    /// `None` when the dump carried no connection table.
    pub conns: Option<ConnTable>,
}

/// The connection-table part of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnTable {
    pub groups: BTreeMap<ConnKey, u64>,
    pub entries: u64,
    pub truncated: bool,
    pub malformed_lines: u64,
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| v.get(*n))
}

fn ip(v: Option<&Value>, what: &str) -> Result<IpAddr, String> {
    v.and_then(Value::as_str)
        .ok_or_else(|| format!("connection group without string {what}"))?
        .parse()
        .map_err(|e| format!("connection group {what}: {e}"))
}

fn port(v: Option<&Value>, what: &str) -> Result<u16, String> {
    v.and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("connection group without a valid {what}"))
}

/// One group: either `{"group": {…ConnGroup…}, "count": N}` or the `ConnGroup` fields flattened
/// next to `count`.
fn parse_group(g: &Value) -> Result<(ConnKey, u64), String> {
    let fields = g.get("group").unwrap_or(g);
    let count = field(g, &["count", "entries", "conns"])
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("connection group without a count: {g}"))?;
    let protocol = fields
        .get("protocol")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("connection group without protocol: {g}"))?
        .to_lowercase();
    let key = ConnKey {
        protocol,
        virtual_addr: SocketAddr::new(
            ip(fields.get("virtual_address"), "virtual_address")?,
            port(fields.get("virtual_port"), "virtual_port")?,
        ),
        dest_addr: SocketAddr::new(
            ip(fields.get("dest_address"), "dest_address")?,
            port(fields.get("dest_port"), "dest_port")?,
        ),
        state: fields
            .get("state")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("connection group without state: {g}"))?
            .to_string(),
    };
    Ok((key, count))
}

fn parse_conn_table(v: &Value) -> Result<ConnTable, String> {
    let groups_v = v
        .get("groups")
        .ok_or_else(|| "connection table without `groups`".to_string())?;
    let mut groups = BTreeMap::new();
    let list = groups_v
        .as_array()
        .ok_or_else(|| "connection table `groups` is not an array".to_string())?;
    for g in list {
        let (k, n) = parse_group(g)?;
        *groups.entry(k).or_insert(0) += n;
    }
    Ok(ConnTable {
        groups,
        entries: v.get("entries").and_then(Value::as_u64).unwrap_or(0),
        truncated: v.get("truncated").and_then(Value::as_bool).unwrap_or(false),
        malformed_lines: v
            .get("malformed_lines")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

/// Parse the JSON text of `ipvs-herald dump --json [--conns]`. Accepts the snapshot at the top
/// level or under `snapshot`, and the connection table under `conn_table`, `conns` or
/// `connections`.
pub fn parse_dump(text: &str) -> Result<Dump, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("dump is not JSON: {e}"))?;
    let snap_v = if v.get("services").is_some() {
        v.clone()
    } else {
        v.get("snapshot")
            .cloned()
            .ok_or_else(|| "dump JSON has neither `services` nor `snapshot`".to_string())?
    };
    let snapshot: Snapshot = serde_json::from_value(snap_v)
        .map_err(|e| format!("dump JSON does not match the Snapshot schema: {e}"))?;
    let conns = match field(&v, &["conn_table", "conns", "connections"]) {
        None | Some(Value::Null) => None,
        Some(c) => Some(parse_conn_table(c)?),
    };
    let source = v.get("source").and_then(Value::as_str).map(str::to_string);
    Ok(Dump {
        source,
        snapshot,
        conns,
    })
}
