//! The control loop's share of `ipvs-herald status`: each VIP group as a
//! [`GroupReport`] (phase, health, the last transition and why, services against the pool
//! thresholds, the drains in force and who asked for them). The BGP peers are added by
//! `crate::service`, which holds the speaker.

use super::ControlLoop;
use crate::admin::Maintenance;
use crate::group::{GroupState, Phase};
use crate::health::{describe, Health, Observation};
use herald_shared::status::{DrainSource, GroupPhase, GroupReport, ServiceReport};

impl ControlLoop {
    /// Every drain in force on group `name` and who asked for it, given the maintenance file's
    /// last reading.
    pub(super) fn drain_sources(&self, name: &str, maintenance: &Maintenance) -> Vec<DrainSource> {
        let mut sources = Vec::new();
        // The drain of every group set for an unreadable state file is not an operator's.
        let admin_all = self.admin_drain_all.is_some() && self.drain_fault.is_none();
        if self.admin_drains.contains_key(name) || admin_all {
            sources.push(DrainSource::Admin);
        }
        if maintenance.drains(name) {
            sources.push(DrainSource::MaintenanceFile);
        }
        if self.shutdown.is_some() {
            sources.push(DrainSource::Shutdown);
        }
        if self.drain_fault.is_some() {
            sources.push(DrainSource::CorruptState);
        }
        sources
    }

    /// Why group `name` is where it is: the last check's reasons, then each drain's.
    fn reasons(&self, g: &GroupState, drained_by: &[DrainSource]) -> Vec<String> {
        let mut reasons = g
            .last_observation()
            .map(|o| o.reasons.clone())
            .unwrap_or_default();
        reasons.extend(self.admin_drain_reason(g.name()));
        if drained_by.contains(&DrainSource::MaintenanceFile) {
            let file = self
                .settings
                .maintenance_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            reasons.push(format!("drained by the maintenance file {file}"));
        }
        if drained_by.contains(&DrainSource::Shutdown) {
            reasons.push("drained: the daemon is stopping".to_string());
        }
        reasons
    }

    /// Every group, in configuration order.
    pub fn group_reports(&self) -> Vec<GroupReport> {
        self.groups
            .iter()
            .map(|(g, _)| {
                let drained_by = self.drain_sources(g.name(), &self.maintenance);
                GroupReport {
                    name: g.name().to_string(),
                    vips: g.config().prefixes.iter().map(|p| p.to_string()).collect(),
                    phase: g.phase().report(),
                    health: health_name(g).to_string(),
                    last_transition: self.last_transitions.get(g.name()).cloned(),
                    reasons: self.reasons(g, &drained_by),
                    drained_by,
                    services: services(g),
                }
            })
            .collect()
    }

    /// Why a group went from `from` to `to`, in one line. `expired` is the watchdog's reason when
    /// it withdrew the group in this step; `obs` the check just made (or the last one).
    pub(super) fn transition_reason(
        from: Phase,
        to: Phase,
        drained_by: &[DrainSource],
        expired: Option<&str>,
        obs: Option<&Observation>,
    ) -> String {
        if let Some(r) = expired {
            return r.to_string();
        }
        let by = || {
            drained_by
                .iter()
                .map(|d| match d {
                    DrainSource::Admin => "ipvs-herald drain",
                    DrainSource::MaintenanceFile => "the maintenance file",
                    DrainSource::Shutdown => "shutdown",
                    DrainSource::CorruptState => "an unreadable state file",
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let failed = || match obs {
            Some(o) if !o.reasons.is_empty() => o.reasons.join("; "),
            Some(_) => "check failed".to_string(),
            None => "no health verdict".to_string(),
        };
        let was_drained = matches!(from.report(), GroupPhase::Draining | GroupPhase::Drained);
        match (from.report(), to.report()) {
            (_, GroupPhase::Draining) => format!("drained by {}", by()),
            (GroupPhase::Draining, GroupPhase::Drained) => "drain time over".to_string(),
            (_, GroupPhase::Drained) => format!("drained by {}", by()),
            (_, GroupPhase::Announced) if was_drained => "undrained; healthy".to_string(),
            (_, GroupPhase::Announced) => "healthy: every required pool is up".to_string(),
            (_, _) if was_drained => format!("undrained; unhealthy: {}", failed()),
            (_, _) => format!("unhealthy: {}", failed()),
        }
    }
}

/// `up`, `down`, or `unknown` before the first check.
fn health_name(g: &GroupState) -> &'static str {
    match (g.last_observation(), g.health()) {
        (None, _) => "unknown",
        (Some(_), Health::Up) => "up",
        (Some(_), Health::Down) => "down",
    }
}

/// The services of the last check against the group's thresholds, then the configured
/// services the check found missing.
pub(super) fn services(g: &GroupState) -> Vec<ServiceReport> {
    let pool = g.config().pool;
    let Some(obs) = g.last_observation() else {
        return Vec::new();
    };
    let mut out: Vec<ServiceReport> = obs
        .services
        .iter()
        .map(|s| ServiceReport {
            service: s.key.to_string(),
            present: true,
            healthy: s.healthy,
            configured: s.total,
            down_threshold: pool.down_count,
            up_threshold: pool.up_count(),
            up: s.pool_up,
        })
        .collect();
    for sel in &g.config().services {
        let name = describe(sel);
        let missing = format!("IPVS service {name} does not exist");
        if obs.reasons.contains(&missing) {
            out.push(ServiceReport {
                service: name,
                present: false,
                healthy: 0,
                configured: 0,
                down_threshold: pool.down_count,
                up_threshold: pool.up_count(),
                up: false,
            });
        }
    }
    out
}
