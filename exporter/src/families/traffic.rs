//! The ten traffic families (five 64-bit counters, five rate estimates) that the whole of IPVS,
//! each service and each destination share, under the prefixes `ipvs`, `ipvs_service` and
//! `ipvs_destination`.

use super::family::{Family, Kind, SharedLabels, Value};
use herald_shared::model::{Counters, Rates};
use prometheus_client::registry::Unit;

/// The five counters and five rates, for one prefix (`ipvs`, `ipvs_service`, `ipvs_destination`).
pub(super) struct TrafficFamilies {
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
    /// The families of the whole of IPVS (`ipvs_*`).
    pub(super) fn global() -> Self {
        traffic_families!("ipvs", "by all services")
    }

    /// The per-service families (`ipvs_service_*`).
    pub(super) fn service() -> Self {
        traffic_families!("ipvs_service", "to this service")
    }

    /// The per-destination families (`ipvs_destination_*`).
    pub(super) fn destination() -> Self {
        traffic_families!("ipvs_destination", "to this destination (real server)")
    }

    pub(super) fn push(&mut self, labels: &SharedLabels, c: &Counters, r: &Rates) {
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

    pub(super) fn into_vec(self) -> Vec<Family> {
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

/// Counter or rate number `i` (in [`TrafficFamilies::into_vec`] order).
pub(super) fn traffic_value(i: usize, c: &Counters, r: &Rates) -> u64 {
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
