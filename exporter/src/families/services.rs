//! The per-service families, and the service table that they and the per-destination families
//! are written from at encoding time: the snapshot's selected services, each once, each with its
//! destinations once.

use super::family::{encode_lazy, Family, Kind, Value};
use super::labels::{SvcInfoLabels, SvcLabels};
use super::traffic::{traffic_value, TrafficFamilies};
use crate::config::{Config, ServiceSpec, Target};
use herald_shared::model::{Destination, Service};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::registry::Unit;
use std::collections::HashSet;

/// The services whose families are written at encoding time, straight from the snapshot.
#[derive(Debug, Default)]
pub(super) struct ServiceTable {
    /// The selected services, each once, each with its destinations once.
    pub(super) services: Vec<Service>,
    /// The configured friendly name of each service in `services`, if any.
    pub(super) names: Vec<Option<String>>,
    /// Netlink snapshot: traffic, rates, thresholds and persistent connections are known.
    pub(super) full: bool,
}

impl ServiceTable {
    /// Keep the services that `cfg` selects, each service once and each destination (address,
    /// port) once within its service; also returns how many duplicates were dropped. `full`: the
    /// snapshot came from netlink.
    pub(super) fn select(mut services: Vec<Service>, full: bool, cfg: &Config) -> (Self, u64) {
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
        let names = services
            .iter()
            .map(|s| {
                cfg.service_names
                    .get(&ServiceSpec(s.key))
                    .filter(|n| !n.is_empty())
                    .cloned()
            })
            .collect();
        let table = ServiceTable {
            services,
            names,
            full,
        };
        (table, dropped)
    }

    /// Write the per-service families, in output order.
    pub(super) fn encode_services(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let t = ServiceFamilies::new();
        let full = self.full;
        self.per_service(&t.info, encoder, |s, l| {
            Some((SvcInfoLabels { svc: l, s }, Value::U64(1)))
        })?;
        self.per_service(&t.persist, encoder, |s, l| {
            s.flags
                .persistent
                .then(|| (l, Value::U64(u64::from(s.persistence_timeout))))
        })?;
        for (i, f) in t.traffic.into_vec().iter().enumerate() {
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
        self.per_service(&t.active, encoder, |s, l| {
            Some((l, Value::U64(sum(s, |d| d.active_conns))))
        })?;
        self.per_service(&t.inactive, encoder, |s, l| {
            Some((l, Value::U64(sum(s, |d| d.inactive_conns))))
        })?;
        self.per_service(&t.persistent, encoder, |s, l| {
            full.then(|| (l, Value::U64(sum(s, |d| d.persistent_conns))))
        })?;
        self.per_service(&t.dests, encoder, |s, l| {
            Some((l, Value::U64(s.destinations.len() as u64)))
        })?;
        self.per_service(&t.usable, encoder, |s, l| {
            let usable = s.destinations.iter().filter(|d| d.weight > 0).count();
            Some((l, Value::U64(usable as u64)))
        })?;
        self.per_service(&t.imbalance, encoder, |s, l| {
            imbalance(&s.destinations).map(|r| (l, Value::F64(r)))
        })?;
        Ok(())
    }

    /// Each service with its labels, which its destinations' label sets start with.
    pub(super) fn service_labels(&self) -> impl Iterator<Item = (&Service, SvcLabels<'_>)> {
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
}

/// Descriptors (name, help, unit, kind) of the per-service families, in output order; their
/// samples are produced at encoding time.
struct ServiceFamilies {
    traffic: TrafficFamilies,
    info: Family,
    persist: Family,
    active: Family,
    inactive: Family,
    persistent: Family,
    dests: Family,
    usable: Family,
    imbalance: Family,
}

impl ServiceFamilies {
    fn new() -> Self {
        ServiceFamilies {
            traffic: TrafficFamilies::service(),
            info: Family::new(
                "ipvs_service",
                "Virtual service details: scheduler, flags, persistence netmask and engine.",
                Kind::Info,
            ),
            persist: Family::new(
                "ipvs_service_persistence_timeout",
                "Persistence timeout of a persistent service (ipvsadm -p).",
                Kind::Gauge,
            )
            .with_unit(Unit::Seconds),
            active: Family::new(
                "ipvs_service_active_connections",
                "Active connections (e.g. TCP ESTABLISHED) summed over the service's destinations.",
                Kind::Gauge,
            ),
            inactive: Family::new(
                "ipvs_service_inactive_connections",
                "Inactive connections (other states) summed over the service's destinations.",
                Kind::Gauge,
            ),
            persistent: Family::new(
                "ipvs_service_persistent_connections",
                "Persistence templates summed over the service's destinations.",
                Kind::Gauge,
            ),
            dests: Family::new(
                "ipvs_service_destinations",
                "Destinations (real servers) configured for the service.",
                Kind::Gauge,
            ),
            usable: Family::new(
                "ipvs_service_usable_destinations",
                "Destinations with a weight above 0 (that can receive new connections).",
                Kind::Gauge,
            ),
            imbalance: Family::new(
                "ipvs_service_imbalance_ratio",
                "Largest ratio of a destination's share of current connections to its share of the weights (1 = as weighted); absent when no weighted destination has a connection.",
                Kind::Gauge,
            ),
        }
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
