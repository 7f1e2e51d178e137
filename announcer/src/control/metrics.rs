//! The control loop's metrics (`ipvs_herald_vip_group_*`, the IPVS read and route backend
//! series), registered into the shared registry, with per-group gauge handles looked up once.

use herald_shared::status::GroupPhase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GroupLabel {
    pub(super) group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GroupServiceLabel {
    pub(super) group: String,
    pub(super) service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GroupPhaseLabel {
    pub(super) group: String,
    pub(super) phase: String,
}

/// The announcer's metrics (registered into the shared registry).
#[derive(Debug, Clone, Default)]
pub(super) struct Metrics {
    pub(super) healthy: Family<GroupLabel, Gauge>,
    pub(super) announced: Family<GroupLabel, Gauge>,
    pub(super) drained: Family<GroupLabel, Gauge>,
    pub(super) phase: Family<GroupPhaseLabel, Gauge>,
    pub(super) healthy_dests: Family<GroupServiceLabel, Gauge>,
    pub(super) total_dests: Family<GroupServiceLabel, Gauge>,
    pub(super) pool_up: Family<GroupServiceLabel, Gauge>,
    pub(super) pool_down_count: Family<GroupLabel, Gauge>,
    pub(super) transitions: Family<GroupLabel, Counter>,
    pub(super) last_transition: Family<GroupLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub(super) checks_failed: Family<GroupLabel, Counter>,
    pub(super) watchdog_withdrawals: Family<GroupLabel, Counter>,
    pub(super) read_pending: Gauge<f64, AtomicU64>,
    pub(super) backend_errors: Counter,
}

impl Metrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("ipvs_herald_vip_group");
        r.register(
            "healthy",
            "1 when the group's last health verdict (after rise/fall) is healthy",
            m.healthy.clone(),
        );
        r.register(
            "announced",
            "1 when the group's prefixes are announced (with any attributes)",
            m.announced.clone(),
        );
        r.register(
            "drained",
            "1 when the group is drained (admin socket, maintenance file or shutdown)",
            m.drained.clone(),
        );
        r.register(
            "phase",
            "1 for the group's current route phase (withdrawn, announced, announced_down, draining, drained)",
            m.phase.clone(),
        );
        r.register(
            "healthy_destinations",
            "Healthy destinations per service of the group at the last check",
            m.healthy_dests.clone(),
        );
        r.register(
            "destinations",
            "Destinations per service of the group at the last check",
            m.total_dests.clone(),
        );
        r.register(
            "service_pool_up",
            "1 while the service's pool of healthy destinations is above the group's threshold (after hysteresis)",
            m.pool_up.clone(),
        );
        r.register(
            "pool_down_count",
            "Fewest healthy destinations a service of the group may have and stay up (pool.down_count)",
            m.pool_down_count.clone(),
        );
        r.register(
            "transitions",
            "Route phase changes of the group",
            m.transitions.clone(),
        );
        r.register(
            "last_transition_timestamp_seconds",
            "Unix time of the group's last route phase change",
            m.last_transition.clone(),
        );
        r.register(
            "checks_failed",
            "Health checks of the group that failed",
            m.checks_failed.clone(),
        );
        r.register(
            "watchdog_withdrawals",
            "Withdrawals of the group because no health verdict came within its watchdog bound (max(3 x interval, 2s)): a hung IPVS read or a blocked loop",
            m.watchdog_withdrawals.clone(),
        );
        registry.register(
            "ipvs_herald_announcer_ipvs_read_pending_seconds",
            "How long the announcer's current IPVS read has been running (0 when none is)",
            m.read_pending.clone(),
        );
        registry.register(
            "ipvs_herald_route_backend_errors",
            "Route actions the backend could not carry out",
            m.backend_errors.clone(),
        );
        m
    }
}

/// One group's metric handles, looked up once: the gauges share their values with the
/// registered families, so a tick sets atomics instead of building label sets and hashing them
/// (at 1,000 groups the lookups were half of a tick's user-space time; `announcer/bench`).
#[derive(Debug, Clone)]
pub(super) struct GroupGauges {
    pub(super) healthy: Gauge,
    pub(super) announced: Gauge,
    pub(super) drained: Gauge,
    pub(super) pool_down_count: Gauge,
    pub(super) phase: [Gauge; 5],
    /// healthy destinations, destinations, pool up; per service.
    pub(super) services: BTreeMap<herald_shared::model::ServiceKey, [Gauge; 3]>,
}

impl GroupGauges {
    pub(super) fn new(m: &Metrics, group: &str) -> Self {
        let label = GroupLabel {
            group: group.to_string(),
        };
        GroupGauges {
            healthy: m.healthy.get_or_create(&label).clone(),
            announced: m.announced.get_or_create(&label).clone(),
            drained: m.drained.get_or_create(&label).clone(),
            pool_down_count: m.pool_down_count.get_or_create(&label).clone(),
            // One series per phase, in the order of `GroupPhase::ALL`.
            phase: GroupPhase::ALL.map(|p| {
                m.phase
                    .get_or_create(&GroupPhaseLabel {
                        group: group.to_string(),
                        phase: p.as_str().to_string(),
                    })
                    .clone()
            }),
            services: BTreeMap::new(),
        }
    }

    pub(super) fn service(
        &mut self,
        m: &Metrics,
        group: &str,
        key: herald_shared::model::ServiceKey,
    ) -> &[Gauge; 3] {
        self.services.entry(key).or_insert_with(|| {
            let l = GroupServiceLabel {
                group: group.to_string(),
                service: key.to_string(),
            };
            [
                m.healthy_dests.get_or_create(&l).clone(),
                m.total_dests.get_or_create(&l).clone(),
                m.pool_up.get_or_create(&l).clone(),
            ]
        })
    }
}

impl Metrics {
    /// Remove every series labelled with group `name` (the group left the configuration);
    /// `services` are the services its per-service series were created for (the keys of its
    /// [`GroupGauges`]: a `Family` cannot be iterated).
    pub(super) fn remove_group(
        &self,
        name: &str,
        services: impl IntoIterator<Item = herald_shared::model::ServiceKey>,
    ) {
        let l = GroupLabel {
            group: name.to_string(),
        };
        for f in [
            &self.healthy,
            &self.announced,
            &self.drained,
            &self.pool_down_count,
        ] {
            f.remove(&l);
        }
        self.transitions.remove(&l);
        self.watchdog_withdrawals.remove(&l);
        self.last_transition.remove(&l);
        self.checks_failed.remove(&l);
        for p in GroupPhase::ALL {
            self.phase.remove(&GroupPhaseLabel {
                group: name.to_string(),
                phase: p.as_str().to_string(),
            });
        }
        for service in services {
            let l = GroupServiceLabel {
                group: name.to_string(),
                service: service.to_string(),
            };
            self.healthy_dests.remove(&l);
            self.total_dests.remove(&l);
            self.pool_up.remove(&l);
        }
    }
}
