//! The announcer's control loop: checks every VIP group's health on its interval, applies drains
//! (admin socket, maintenance file, shutdown) and reloads, and carries out the resulting route
//! actions on a [`RouteSink`] (BGP speaker or kernel routes, see `crate::sink`), in order.
//!
//! ```text
//!  admin socket ─┐                      ┌──────────── one loop task ─────────────┐
//!  SIGHUP reload ┼─ Control channel ──▶ │ wake at the next check or drain end    │
//!  SIGTERM      ─┘                      │ read IPVS once for all due groups      │──▶ RouteSink
//!                                       │ GroupState::step -> RouteActions       │   (BGP speaker,
//!  IpvsSource (spawn_blocking) ───────▶ │ metrics                                │    kernel routes)
//!                                       └────────────────────────────────────────┘
//! ```
//!
//! One snapshot serves every group due at the same instant, so a thousand VIPs checked ten
//! times a second cost ten kernel reads a second, not ten thousand.
//!
//! Fail safe: the loop never waits on an IPVS read for longer than it can afford. A read that
//! hangs (a stuck kernel, a blocked procfs file) stays pending while the loop goes on answering
//! the admin socket and reloads; an announced group that has had no verdict for its
//! [watchdog bound](GroupState::watchdog_bound) is withdrawn (log line and
//! `ipvs_herald_vip_group_watchdog_withdrawals_total`). The loop beats a [`Heartbeat`] at least
//! once a second; the binary watches it from a thread of its own and ends the process when the
//! loop itself is wedged, so that the kernel closes the BGP sessions.
//!
//! The loop itself ([`ControlLoop`]) is here; `metrics` holds its series, `heartbeat` its
//! liveness ([`Heartbeat`]) and the test-only [`FaultHooks`], `drains` the admin requests and
//! the state file that keeps their drains, `report` the groups' share of `status`.

mod drains;
mod heartbeat;
mod metrics;
mod report;
#[cfg(test)]
pub(crate) mod tests;

pub use heartbeat::{FaultHooks, Heartbeat, Wedged, LOOP_WEDGE_BOUND};
use metrics::{GroupGauges, GroupLabel, Metrics};

use crate::admin::{Envelope, Maintenance};
use crate::group::{GroupState, Phase, RouteAction};
use crate::group_config::{GroupConfigError, VipGroupConfig};
use crate::health::{evaluate_with, CheckInput, Health};
use crate::sink::{LocalAddrs, RouteSink};
use crate::state::{Drain, StateFile};
use herald_shared::model::Snapshot;
use herald_shared::reader::IpvsSource;
use herald_shared::status::{GroupPhase, GroupReport, Transition};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Seconds since the Unix epoch, now (the time of `status` reports and transitions).
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The loop beats its heartbeat at least this often, even with nothing due.
const BEAT_PERIOD: Duration = Duration::from_secs(1);

/// The longest the loop waits on a pending IPVS read in one go before it looks at its other
/// work (control messages, drain deadlines, the watchdog) again.
const READ_SLICE: Duration = Duration::from_millis(250);

/// What one read of the loop returns: the IPVS snapshot and the host's addresses.
type ReadResult = (Result<Snapshot, ReadFailure>, Vec<IpAddr>);

/// Why the loop's IPVS read gave no snapshot (the message goes into the groups' reasons).
#[derive(Debug, thiserror::Error)]
enum ReadFailure {
    #[error(transparent)]
    Read(#[from] herald_shared::reader::ReadError),
    #[error("reader task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// Why a reload of the VIP groups was refused; the groups in force stay.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Groups(#[from] GroupConfigError),
    #[error("the announcer loop is gone")]
    LoopGone,
}

/// Messages to the loop.
#[derive(Debug)]
pub enum Control {
    /// A request from the admin socket.
    Admin(Envelope),
    /// A validated new set of groups (SIGHUP).
    Reload(
        Vec<VipGroupConfig>,
        oneshot::Sender<Result<(), ReloadError>>,
    ),
    /// Every group's [`GroupReport`], for `status`.
    Status(oneshot::Sender<Vec<GroupReport>>),
    /// Drain everything for `drain_time`, withdraw, then answer.
    Shutdown {
        drain_time: Duration,
        done: oneshot::Sender<()>,
    },
}

/// Settings of the loop that are not per group.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Default drain time for `drain` without one.
    pub drain_time: Duration,
    /// Maintenance file (drains when present).
    pub maintenance_file: Option<PathBuf>,
    /// Where admin drains are kept across restarts (`None`: not kept).
    pub state_file: Option<PathBuf>,
}

/// The loop and its state.
pub struct ControlLoop {
    groups: Vec<(GroupState, Instant)>,
    source: Arc<dyn IpvsSource>,
    sink: Arc<dyn RouteSink>,
    local: Arc<dyn LocalAddrs>,
    settings: LoopSettings,
    admin_drains: BTreeMap<String, Drain>,
    admin_drain_all: Option<Drain>,
    /// Set when the state file could not be read at start: every group is drained
    /// (`admin_drain_all`) until `undrain --all`, and `status` says why.
    drain_fault: Option<String>,
    state_file: Option<StateFile>,
    /// Generation of the last drain state handed to the state file.
    state_generation: u64,
    shutdown: Option<(Duration, oneshot::Sender<()>)>,
    /// The maintenance file as the last turn read it.
    maintenance: Maintenance,
    /// Each group's last phase change since the start, by group name.
    last_transitions: BTreeMap<String, Transition>,
    metrics: Metrics,
    /// Metric handles by group name.
    gauges: BTreeMap<String, GroupGauges>,
    /// The IPVS read under way, kept across turns so that a hung read never blocks the loop,
    /// and when it started.
    pending: Option<(tokio::task::JoinHandle<ReadResult>, Instant)>,
    heartbeat: Heartbeat,
    faults: FaultHooks,
    /// After a graceful restart: told once every group has had its first check and its
    /// actions have gone to the sink (the speaker may then send End-of-RIB).
    first_decision: Option<oneshot::Sender<()>>,
    /// The groups a graceful start resumed (announced before the restart).
    resumed: BTreeSet<String>,
}

impl std::fmt::Debug for ControlLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlLoop")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl ControlLoop {
    /// Build the loop for `groups` (already validated), registering its metrics.
    pub fn new(
        groups: Vec<VipGroupConfig>,
        source: Arc<dyn IpvsSource>,
        sink: Arc<dyn RouteSink>,
        local: Arc<dyn LocalAddrs>,
        settings: LoopSettings,
        registry: &mut Registry,
    ) -> Result<Self, GroupConfigError> {
        let now = tokio::time::Instant::now().into_std();
        let groups = groups
            .into_iter()
            .map(|g| GroupState::new(g).map(|g| (g, now)))
            .collect::<Result<Vec<_>, _>>()?;
        let state_file = settings.state_file.clone().map(StateFile::new);
        let (restored, drain_fault) = Self::restore_drains(state_file.as_ref(), &groups, &settings);
        Ok(ControlLoop {
            groups,
            source,
            sink,
            local,
            settings,
            admin_drains: restored.groups,
            admin_drain_all: restored.all,
            drain_fault,
            state_file,
            state_generation: 0,
            shutdown: None,
            maintenance: Maintenance::None,
            last_transitions: BTreeMap::new(),
            metrics: Metrics::register(registry),
            gauges: BTreeMap::new(),
            pending: None,
            heartbeat: Heartbeat::new(),
            faults: FaultHooks::default(),
            first_decision: None,
            resumed: BTreeSet::new(),
        })
    }

    /// Start after a graceful restart: the groups in `announced` (those the previous process
    /// had announced, still at the routers as stale) are decided by their first check alone
    /// ([`crate::health::GroupTracker::resume`]); `decided` is told once every group has had
    /// its first check and the resulting actions have been carried out. Drains restored from
    /// the state file and the maintenance file apply as on any start.
    pub fn with_graceful_start(
        mut self,
        announced: &BTreeSet<String>,
        decided: oneshot::Sender<()>,
    ) -> Self {
        for (g, _) in &mut self.groups {
            if announced.contains(g.name()) {
                g.tracker_mut().resume();
            }
        }
        self.first_decision = Some(decided);
        self.resumed = announced.clone();
        self
    }

    /// The loop's proof of life, to be watched from outside (see [`Heartbeat`]).
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Turn on the test-only [`FaultHooks`].
    pub fn with_fault_hooks(mut self, faults: FaultHooks) -> Self {
        self.faults = faults;
        self
    }

    /// Run until a [`Control::Shutdown`] has drained and withdrawn everything, or until the
    /// control channel closes (then routes are left as they are: the BGP session's end withdraws
    /// them).
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        loop {
            self.heartbeat.beat();
            self.faults.hold("wedge");
            assert!(
                !self.faults.on("panic"),
                "fault hook: control-loop panic ({}/panic exists)",
                FaultHooks::ENV
            );
            let now = tokio::time::Instant::now().into_std();
            self.tick(now).await;
            if let Some((_, _)) = &self.shutdown {
                if self.groups.iter().all(|(g, _)| !g.phase().is_announced()) {
                    self.sink.settle().await;
                    if let Some((_, done)) = self.shutdown.take() {
                        let _ = done.send(());
                    }
                    self.heartbeat.stop();
                    return;
                }
            }
            let wake = self.next_wake(now);
            // Control first: while a read is pending every turn is due at once, and a fair
            // choice would leave an admin request waiting for several read slices. Each message
            // is followed by a turn, so checks are never starved.
            tokio::select! {
                biased;
                msg = control.recv() => match msg {
                    None => {
                        self.heartbeat.stop();
                        return;
                    }
                    Some(msg) => self.control(msg).await,
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        self.groups
            .iter()
            .flat_map(|(g, due)| [Some(*due), g.deadline(), g.watchdog_deadline()])
            .flatten()
            .chain(now.checked_add(BEAT_PERIOD))
            .min()
            .unwrap_or(now)
    }

    /// The IPVS read for this turn: the pending one if a read is under way, else a new one;
    /// waited on for at most [`READ_SLICE`] and never past the first watchdog deadline. `None`
    /// when it has not answered yet (it stays pending for the next turn).
    async fn read(&mut self, now: Instant) -> Option<ReadResult> {
        let (handle, started) = self.pending.get_or_insert_with(|| {
            let source = self.source.clone();
            let local = self.local.clone();
            let faults = self.faults.clone();
            let handle = tokio::task::spawn_blocking(move || {
                faults.hold("stuck-read");
                let snapshot = source.snapshot().map_err(ReadFailure::from);
                let local = local.local_addrs().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot list local addresses");
                    Vec::new()
                });
                (snapshot, local)
            });
            (handle, now)
        });
        let started = *started;
        let first_deadline = self
            .groups
            .iter()
            .filter_map(|(g, _)| g.watchdog_deadline())
            .min();
        let wait = first_deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(READ_SLICE)
            .clamp(Duration::from_millis(10), READ_SLICE);
        let result = tokio::time::timeout(wait, handle).await;
        let waited = tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(started);
        let Ok(joined) = result else {
            self.metrics.read_pending.set(waited.as_secs_f64());
            if waited >= Duration::from_secs(1) && waited - wait < Duration::from_secs(1) {
                tracing::warn!(pending = ?waited, "IPVS read has not answered yet");
            }
            return None;
        };
        self.pending = None;
        self.metrics.read_pending.set(0.0);
        Some(match joined {
            Ok(r) => r,
            Err(e) => (Err(ReadFailure::Task(e)), Vec::new()),
        })
    }

    fn drain_of(&self, name: &str, maintenance: &Maintenance) -> Option<Duration> {
        if let Some((d, _)) = &self.shutdown {
            return Some(*d);
        }
        if let Some(d) = self.admin_drains.get(name) {
            return Some(d.drain_time);
        }
        if let Some(d) = &self.admin_drain_all {
            return Some(d.drain_time);
        }
        maintenance.drains(name).then_some(self.settings.drain_time)
    }

    async fn tick(&mut self, now: Instant) {
        let any_due = self.groups.iter().any(|(_, due)| *due <= now);
        let maintenance = match &self.settings.maintenance_file {
            Some(p) => {
                let (m, warning) = Maintenance::read(p);
                if let Some(w) = warning {
                    tracing::warn!("{w}");
                }
                m
            }
            None => Maintenance::None,
        };
        let (snapshot, local) = match any_due {
            true => match self.read(now).await {
                Some((s, l)) => (Some(s), l),
                None => (None, Vec::new()),
            },
            false => (None, Vec::new()),
        };
        // The read can take long (large tables, a loaded host): decide at the time the actions
        // go out, so that a drain starting now announces its draining attributes for the whole
        // drain_time instead of losing the read's duration.
        let now = if any_due {
            tokio::time::Instant::now().into_std().max(now)
        } else {
            now
        };

        // Indexed once for every group due now; a failed read's message goes into the reasons.
        let failure = match &snapshot {
            Some(Err(e)) => e.to_string(),
            _ => String::new(),
        };
        let input = snapshot
            .as_ref()
            .map(|s| CheckInput::new(s.as_ref().map_err(|_| failure.as_str()), &local));
        let mut all_actions = Vec::new();
        for i in 0..self.groups.len() {
            let name = self.groups[i].0.name().to_string();
            let drain = self.drain_of(&name, &maintenance);
            let drained_by = self.drain_sources(&name, &maintenance);
            let (group, due) = &mut self.groups[i];
            let observation = match (&input, *due <= now) {
                (Some(input), true) => {
                    *due = crate::health::instant_after(now, group.config().interval);
                    let policy = group.config().policy();
                    let mut pools = std::mem::take(&mut group.tracker_mut().pools_up);
                    let obs = evaluate_with(&policy, input, &mut pools);
                    group.tracker_mut().pools_up = pools;
                    if !obs.passed {
                        self.metrics
                            .checks_failed
                            .get_or_create(&GroupLabel {
                                group: name.clone(),
                            })
                            .inc();
                    }
                    Some(obs)
                }
                _ => None,
            };
            let before = group.phase();
            let health_before = group.health();
            let mut actions = Vec::new();
            let mut expired = None;
            if let (None, Some(deadline)) = (&observation, group.watchdog_deadline()) {
                if now >= deadline {
                    let bound = group.watchdog_bound();
                    let reason = match &self.pending {
                        Some((_, started)) => format!(
                            "watchdog: no health verdict within {bound:?} (the IPVS read has not answered for {:?})",
                            now.saturating_duration_since(*started)
                        ),
                        None => format!("watchdog: no health verdict within {bound:?}"),
                    };
                    tracing::error!(group = %name, %reason, "withdrawing a VIP group nobody is checking");
                    self.metrics
                        .watchdog_withdrawals
                        .get_or_create(&GroupLabel {
                            group: name.clone(),
                        })
                        .inc();
                    actions = group.expire(now, reason.clone());
                    expired = Some(reason);
                }
            }
            actions.extend(group.step(
                now,
                observation,
                drain.is_some(),
                drain.unwrap_or(Duration::ZERO),
            ));
            let after = group.phase();
            if health_before != group.health() {
                let reasons = group
                    .last_observation()
                    .map(|o| o.reasons.join("; "))
                    .unwrap_or_default();
                match group.health() {
                    Health::Up => tracing::info!(group = %name, "VIP group healthy"),
                    Health::Down => {
                        tracing::warn!(group = %name, %reasons, "VIP group unhealthy")
                    }
                }
            }
            if std::mem::discriminant(&before) != std::mem::discriminant(&after) {
                let reason = Self::transition_reason(
                    before,
                    after,
                    &drained_by,
                    expired.as_deref(),
                    group.last_observation(),
                );
                tracing::info!(group = %name, from = before.as_str(), to = after.as_str(), %reason, "route phase change");
                self.metrics
                    .transitions
                    .get_or_create(&GroupLabel {
                        group: name.clone(),
                    })
                    .inc();
                let ts = unix_now();
                self.last_transitions.insert(
                    name.clone(),
                    Transition {
                        from: before.report(),
                        to: after.report(),
                        at: ts,
                        reason,
                    },
                );
                self.metrics
                    .last_transition
                    .get_or_create(&GroupLabel {
                        group: name.clone(),
                    })
                    .set(ts);
            }
            self.update_metrics(i, drain.is_some());
            all_actions.extend(actions);
        }
        self.maintenance = maintenance;
        self.execute(&all_actions).await;
        if self.first_decision.is_some()
            && self
                .groups
                .iter()
                .all(|(g, _)| g.last_observation().is_some())
        {
            if let Some(tx) = self.first_decision.take() {
                tracing::info!("graceful restart: every VIP group has had its first check");
                let released: Vec<RouteAction> = self
                    .groups
                    .iter()
                    .filter(|(g, _)| self.resumed.contains(g.name()))
                    .flat_map(|(g, _)| g.release_kept_addresses())
                    .collect();
                self.execute(&released).await;
                let _ = tx.send(());
            }
        }
    }

    fn update_metrics(&mut self, i: usize, drained: bool) {
        let Some((group, _)) = self.groups.get(i) else {
            return;
        };
        let name = group.name();
        if !self.gauges.contains_key(name) {
            self.gauges
                .insert(name.to_string(), GroupGauges::new(&self.metrics, name));
        }
        let Some(g) = self.gauges.get_mut(name) else {
            return;
        };
        g.healthy.set(i64::from(group.health() == Health::Up));
        g.announced.set(i64::from(group.phase().is_announced()));
        g.drained.set(i64::from(drained));
        g.pool_down_count
            .set(i64::from(group.config().pool.down_count));
        let phase = group.phase().report();
        for (gauge, p) in g.phase.iter().zip(GroupPhase::ALL) {
            gauge.set(i64::from(phase == p));
        }
        if let Some(obs) = group.last_observation() {
            for s in &obs.services {
                let [healthy, total, pool_up] = g.service(&self.metrics, name, s.key);
                healthy.set(i64::from(s.healthy));
                total.set(i64::from(s.total));
                pool_up.set(i64::from(s.pool_up));
            }
        }
    }

    async fn execute(&self, actions: &[RouteAction]) {
        for a in actions {
            if let Err(e) = self.sink.apply(a).await {
                self.metrics.backend_errors.inc();
                tracing::error!(action = ?a, error = %e, "route backend failed");
            }
        }
    }

    async fn control(&mut self, msg: Control) {
        match msg {
            Control::Admin((req, reply)) => {
                let (r, drains_changed) = self.admin(req);
                if drains_changed {
                    self.save_drains(Some((r, reply)));
                } else {
                    let _ = reply.send(r);
                }
            }
            Control::Reload(groups, reply) => {
                let r = self.reload(groups).await;
                let _ = reply.send(r);
            }
            Control::Status(reply) => {
                let _ = reply.send(self.group_reports());
            }
            Control::Shutdown { drain_time, done } => {
                tracing::info!(?drain_time, "shutting down: draining every VIP group");
                self.shutdown = Some((drain_time, done));
            }
        }
    }

    async fn reload(&mut self, new: Vec<VipGroupConfig>) -> Result<(), ReloadError> {
        crate::group_config::validate_groups(&new)?;
        let new_names: BTreeSet<String> = new.iter().map(|g| g.name.clone()).collect();
        let mut actions = Vec::new();
        // Groups that are gone: withdraw (and remove managed addresses).
        let mut kept = Vec::new();
        let mut removed = Vec::new();
        for (mut g, due) in std::mem::take(&mut self.groups) {
            if new_names.contains(g.name()) {
                kept.push((g, due));
            } else {
                removed.push(g.name().to_string());
                tracing::info!(group = g.name(), "VIP group removed by reload: withdrawing");
                actions.extend(g.step(
                    tokio::time::Instant::now().into_std(),
                    None,
                    true,
                    Duration::ZERO,
                ));
            }
        }
        let now = tokio::time::Instant::now().into_std();
        for cfg in new {
            match kept.iter_mut().find(|(g, _)| g.name() == cfg.name) {
                Some((g, _)) => actions.extend(g.reconfigure(cfg)?),
                None => kept.push((GroupState::new(cfg)?, now)),
            }
        }
        self.groups = kept;
        let drains = self.admin_drains.len();
        self.admin_drains.retain(|name, _| new_names.contains(name));
        if self.admin_drains.len() != drains {
            self.save_drains(None);
        }
        let removed: Vec<_> = removed
            .into_iter()
            .map(|name| {
                self.last_transitions.remove(&name);
                let gauges = self.gauges.remove(&name);
                (name, gauges)
            })
            .collect();
        self.execute(&actions).await;
        // After the withdrawal: its series would otherwise stay in /metrics with the last values.
        for (name, gauges) in removed {
            let services = gauges.map(|g| g.services.into_keys().collect::<Vec<_>>());
            self.metrics
                .remove_group(&name, services.unwrap_or_default());
        }
        Ok(())
    }

    /// Phases by group name (for tests and status).
    pub fn phases(&self) -> Vec<(String, Phase)> {
        self.groups
            .iter()
            .map(|(g, _)| (g.name().to_string(), g.phase()))
            .collect()
    }
}
