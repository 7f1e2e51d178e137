//! The per-destination (real server) families, written from the service table at encoding time.

use super::family::{encode_lazy, Family, Kind, Value};
use super::labels::{DestInfoLabels, DestLabels};
use super::services::ServiceTable;
use super::traffic::{traffic_value, TrafficFamilies};
use herald_shared::model::Destination;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};

impl ServiceTable {
    /// Write the per-destination families, in output order.
    pub(super) fn encode_destinations(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let t = DestinationFamilies::new();
        let full = self.full;
        self.per_dest(&t.info, encoder, |d, l| {
            Some((DestInfoLabels { dest: l, d }, Value::U64(1)))
        })?;
        for (i, f) in t.traffic.into_vec().iter().enumerate() {
            self.per_dest(f, encoder, |d, l| {
                full.then(|| {
                    let v = traffic_value(i, &d.stats.counters, &d.stats.rates);
                    (l, Value::U64(v))
                })
            })?;
        }
        self.per_dest(&t.active, encoder, |d, l| {
            Some((l, Value::U64(u64::from(d.active_conns))))
        })?;
        self.per_dest(&t.inactive, encoder, |d, l| {
            Some((l, Value::U64(u64::from(d.inactive_conns))))
        })?;
        self.per_dest(&t.persistent, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.persistent_conns))))
        })?;
        self.per_dest(&t.weight, encoder, |d, l| {
            Some((l, Value::I64(i64::from(d.weight))))
        })?;
        self.per_dest(&t.upper, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.upper_threshold))))
        })?;
        self.per_dest(&t.lower, encoder, |d, l| {
            full.then(|| (l, Value::U64(u64::from(d.lower_threshold))))
        })?;
        Ok(())
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

/// Descriptors (name, help, unit, kind) of the per-destination families, in output order; their
/// samples are produced at encoding time.
struct DestinationFamilies {
    traffic: TrafficFamilies,
    info: Family,
    active: Family,
    inactive: Family,
    persistent: Family,
    weight: Family,
    upper: Family,
    lower: Family,
}

impl DestinationFamilies {
    fn new() -> Self {
        DestinationFamilies {
            traffic: TrafficFamilies::destination(),
            info: Family::new(
                "ipvs_destination",
                "Destination details: forwarding method, address family, tunnel type.",
                Kind::Info,
            ),
            active: Family::new(
                "ipvs_destination_active_connections",
                "Active connections (e.g. TCP ESTABLISHED) to the destination.",
                Kind::Gauge,
            ),
            inactive: Family::new(
                "ipvs_destination_inactive_connections",
                "Inactive connections (other states) to the destination.",
                Kind::Gauge,
            ),
            persistent: Family::new(
                "ipvs_destination_persistent_connections",
                "Persistence templates pointing at the destination.",
                Kind::Gauge,
            ),
            weight: Family::new(
                "ipvs_destination_weight",
                "Scheduling weight of the destination; 0 = drained (no new connections).",
                Kind::Gauge,
            ),
            upper: Family::new(
                "ipvs_destination_upper_threshold_connections",
                "Upper connection threshold (ipvsadm -x); 0 = none.",
                Kind::Gauge,
            ),
            lower: Family::new(
                "ipvs_destination_lower_threshold_connections",
                "Lower connection threshold (ipvsadm -y); 0 = none.",
                Kind::Gauge,
            ),
        }
    }
}
