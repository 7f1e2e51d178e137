//! The announcer's control loop: checks every VIP group's health on its interval, applies drains
//! (admin socket, maintenance file, shutdown) and reloads, and carries out the resulting route
//! actions on a [`RouteSink`] (BGP speaker or kernel routes, see `crate::sinks`), in order.
//!
//! ```text
//!  admin socket ─┐                      ┌──────────── one loop task ─────────────┐
//!  SIGHUP reload ┼─ Control channel ──▶ │ wake at the next check or drain end    │
//!  SIGTERM      ─┘                      │ read IPVS once for all due groups      │──▶ RouteSink   
//!                                       │ GroupRuntime::step -> RouteActions     │   (BGP speaker,
//!  IpvsSource (spawn_blocking) ───────▶ │ metrics                                │    kernel routes)
//!                                       └────────────────────────────────────────┘
//! ```
//!
//! One snapshot serves every group due at the same instant, so a thousand VIPs checked ten
//! times a second cost ten kernel reads a second, not ten thousand.

use crate::admin::{Envelope, GroupStatus, Maintenance, Reply, Request, Target};
use crate::group::{GroupRuntime, Phase, RouteAction};
use crate::health::{evaluate_with, CheckInput, Health};
use crate::vip::VipGroupConfig;
use herald_shared::reader::IpvsSource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where route actions go: the BGP speaker's route table, kernel routes for OSPF, or both.
pub trait RouteSink: Send + Sync {
    /// Carry out one action. An error is logged and counted; the loop goes on (the next change
    /// is applied afresh).
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), String>>;

    /// Wait until the work that `apply` left running in the background (a managed address
    /// removal waiting out its linger) is done. The loop calls it once everything is withdrawn
    /// at shutdown; the caller bounds it in time.
    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The addresses configured on this host (for `vip_address = "require"`).
pub trait LocalAddrs: Send + Sync {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, String>;
}

/// Messages to the loop.
#[derive(Debug)]
pub enum Control {
    /// A request from the admin socket.
    Admin(Envelope),
    /// A validated new set of groups (SIGHUP).
    Reload(Vec<VipGroupConfig>, oneshot::Sender<Result<(), String>>),
    /// Drain everything for `drain_time`, withdraw, then answer.
    Shutdown {
        drain_time: Duration,
        done: oneshot::Sender<()>,
    },
}

/// Settings of the loop that are not per group.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Default drain time for `drain` without one.
    pub drain_time: Duration,
    /// Maintenance file (drains when present).
    pub maintenance_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupServiceLabel {
    group: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPhaseLabel {
    group: String,
    phase: String,
}

/// The announcer's metrics (registered into the shared registry).
#[derive(Debug, Clone, Default)]
struct Metrics {
    healthy: Family<GroupLabel, Gauge>,
    announced: Family<GroupLabel, Gauge>,
    drained: Family<GroupLabel, Gauge>,
    phase: Family<GroupPhaseLabel, Gauge>,
    healthy_dests: Family<GroupServiceLabel, Gauge>,
    total_dests: Family<GroupServiceLabel, Gauge>,
    pool_up: Family<GroupServiceLabel, Gauge>,
    pool_down_count: Family<GroupLabel, Gauge>,
    transitions: Family<GroupLabel, Counter>,
    last_transition: Family<GroupLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    checks_failed: Family<GroupLabel, Counter>,
    backend_errors: Counter,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
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
struct GroupGauges {
    healthy: Gauge,
    announced: Gauge,
    drained: Gauge,
    pool_down_count: Gauge,
    phase: [Gauge; 5],
    /// healthy destinations, destinations, pool up; per service.
    services: BTreeMap<herald_shared::model::ServiceKey, [Gauge; 3]>,
}

impl GroupGauges {
    fn new(m: &Metrics, group: &str) -> Self {
        let label = GroupLabel {
            group: group.to_string(),
        };
        GroupGauges {
            healthy: m.healthy.get_or_create(&label).clone(),
            announced: m.announced.get_or_create(&label).clone(),
            drained: m.drained.get_or_create(&label).clone(),
            pool_down_count: m.pool_down_count.get_or_create(&label).clone(),
            phase: PHASES.map(|p| {
                m.phase
                    .get_or_create(&GroupPhaseLabel {
                        group: group.to_string(),
                        phase: p.to_string(),
                    })
                    .clone()
            }),
            services: BTreeMap::new(),
        }
    }

    fn service(
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
    fn remove_group(
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
        self.last_transition.remove(&l);
        self.checks_failed.remove(&l);
        for p in PHASES {
            self.phase.remove(&GroupPhaseLabel {
                group: name.to_string(),
                phase: p.to_string(),
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

const PHASES: [&str; 5] = [
    "withdrawn",
    "announced_down",
    "announced",
    "draining",
    "drained",
];

/// The loop and its state.
pub struct Runtime {
    groups: Vec<(GroupRuntime, Instant)>,
    source: Arc<dyn IpvsSource>,
    sink: Arc<dyn RouteSink>,
    local: Arc<dyn LocalAddrs>,
    settings: RuntimeSettings,
    admin_drains: BTreeMap<String, Duration>,
    admin_drain_all: Option<Duration>,
    shutdown: Option<(Duration, oneshot::Sender<()>)>,
    metrics: Metrics,
    /// Metric handles by group name.
    gauges: BTreeMap<String, GroupGauges>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the loop for `groups` (already validated), registering its metrics.
    pub fn new(
        groups: Vec<VipGroupConfig>,
        source: Arc<dyn IpvsSource>,
        sink: Arc<dyn RouteSink>,
        local: Arc<dyn LocalAddrs>,
        settings: RuntimeSettings,
        registry: &mut Registry,
    ) -> Result<Self, String> {
        let now = tokio::time::Instant::now().into_std();
        let groups = groups
            .into_iter()
            .map(|g| GroupRuntime::new(g).map(|g| (g, now)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Runtime {
            groups,
            source,
            sink,
            local,
            settings,
            admin_drains: BTreeMap::new(),
            admin_drain_all: None,
            shutdown: None,
            metrics: Metrics::register(registry),
            gauges: BTreeMap::new(),
        })
    }

    /// Run until a [`Control::Shutdown`] has drained and withdrawn everything, or until the
    /// control channel closes (then routes are left as they are: the BGP session's end withdraws
    /// them).
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        loop {
            let now = tokio::time::Instant::now().into_std();
            self.tick(now).await;
            if let Some((_, _)) = &self.shutdown {
                if self.groups.iter().all(|(g, _)| !g.phase().is_announced()) {
                    self.sink.settle().await;
                    if let Some((_, done)) = self.shutdown.take() {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            let wake = self.next_wake(now);
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                msg = control.recv() => match msg {
                    None => return,
                    Some(msg) => self.control(msg).await,
                },
            }
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        self.groups
            .iter()
            .flat_map(|(g, due)| [Some(*due), g.deadline()])
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1))
    }

    fn drain_of(&self, name: &str, maintenance: &Maintenance) -> Option<Duration> {
        if let Some((d, _)) = &self.shutdown {
            return Some(*d);
        }
        if let Some(d) = self.admin_drains.get(name) {
            return Some(*d);
        }
        if let Some(d) = self.admin_drain_all {
            return Some(d);
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
        let (snapshot, local) = if any_due {
            let source = self.source.clone();
            let local = self.local.clone();
            let read =
                tokio::task::spawn_blocking(move || (source.snapshot(), local.local_addrs())).await;
            match read {
                Ok((s, l)) => (
                    Some(s.map_err(|e| e.to_string())),
                    l.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot list local addresses");
                        Vec::new()
                    }),
                ),
                Err(e) => (Some(Err(format!("reader task failed: {e}"))), Vec::new()),
            }
        } else {
            (None, Vec::new())
        };
        // The read can take long (large tables, a loaded host): decide at the time the actions
        // go out, so that a drain starting now announces its draining attributes for the whole
        // drain_time instead of losing the read's duration.
        let now = if any_due {
            tokio::time::Instant::now().into_std().max(now)
        } else {
            now
        };

        // Indexed once for every group due now.
        let input = snapshot
            .as_ref()
            .map(|s| CheckInput::new(s.as_ref().map_err(String::as_str), &local));
        let mut all_actions = Vec::new();
        for i in 0..self.groups.len() {
            let name = self.groups[i].0.name().to_string();
            let drain = self.drain_of(&name, &maintenance);
            let (group, due) = &mut self.groups[i];
            let observation = match (&input, *due <= now) {
                (Some(input), true) => {
                    *due = crate::group::instant_after(now, group.config().interval);
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
            let actions = group.step(
                now,
                observation,
                drain.is_some(),
                drain.unwrap_or(Duration::ZERO),
            );
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
                tracing::info!(group = %name, from = before.as_str(), to = after.as_str(), "route phase change");
                self.metrics
                    .transitions
                    .get_or_create(&GroupLabel {
                        group: name.clone(),
                    })
                    .inc();
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
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
        self.execute(&all_actions).await;
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
        let phase = group.phase().as_str();
        for (gauge, p) in g.phase.iter().zip(PHASES) {
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
                let r = self.admin(req);
                let _ = reply.send(r);
            }
            Control::Reload(groups, reply) => {
                let r = self.reload(groups).await;
                let _ = reply.send(r);
            }
            Control::Shutdown { drain_time, done } => {
                tracing::info!(?drain_time, "shutting down: draining every VIP group");
                self.shutdown = Some((drain_time, done));
            }
        }
    }

    fn admin(&mut self, req: Request) -> Reply {
        let ok = |message: String| Reply {
            ok: true,
            message,
            groups: Vec::new(),
        };
        let known = |s: &Self, name: &str| s.groups.iter().any(|(g, _)| g.name() == name);
        match req {
            Request::Drain { target, drain_time } => {
                let d = drain_time.unwrap_or(self.settings.drain_time);
                match target {
                    Target::All => {
                        self.admin_drain_all = Some(d);
                        ok(format!("draining every VIP group ({}s)", d.as_secs_f64()))
                    }
                    Target::Group(name) if known(self, &name) => {
                        self.admin_drains.insert(name.clone(), d);
                        ok(format!("draining {name} ({}s)", d.as_secs_f64()))
                    }
                    Target::Group(name) => Reply {
                        ok: false,
                        message: format!("no VIP group named {name:?}"),
                        groups: Vec::new(),
                    },
                }
            }
            Request::Undrain { target } => match target {
                Target::All => {
                    self.admin_drain_all = None;
                    self.admin_drains.clear();
                    ok("undrained every VIP group".into())
                }
                Target::Group(name) if known(self, &name) => {
                    self.admin_drains.remove(&name);
                    let note = if self.admin_drain_all.is_some() {
                        " (but a drain of all groups is still in force)"
                    } else {
                        ""
                    };
                    ok(format!("undrained {name}{note}"))
                }
                Target::Group(name) => Reply {
                    ok: false,
                    message: format!("no VIP group named {name:?}"),
                    groups: Vec::new(),
                },
            },
            Request::Status => Reply {
                ok: true,
                message: format!("{} VIP groups", self.groups.len()),
                groups: self
                    .groups
                    .iter()
                    .map(|(g, _)| GroupStatus {
                        name: g.name().to_string(),
                        state: g.phase().as_str().to_string(),
                        reasons: g
                            .last_observation()
                            .map(|o| o.reasons.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
            },
        }
    }

    async fn reload(&mut self, new: Vec<VipGroupConfig>) -> Result<(), String> {
        crate::vip::validate_groups(&new)?;
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
                None => kept.push((GroupRuntime::new(cfg)?, now)),
            }
        }
        self.groups = kept;
        self.admin_drains.retain(|name, _| new_names.contains(name));
        let removed: Vec<_> = removed
            .into_iter()
            .map(|name| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
    use herald_shared::model::*;
    use herald_shared::reader::ReadError;
    use std::sync::Mutex;

    /// IPVS as the test sets it: the weights of three real servers behind 192.0.2.10:80.
    struct FakeIpvs(Mutex<Option<[i32; 3]>>);

    impl IpvsSource for FakeIpvs {
        fn snapshot(&self) -> Result<Snapshot, ReadError> {
            let Some(w) = *self.0.lock().unwrap() else {
                return Err(ReadError::ModuleNotLoaded);
            };
            let dest = |i: usize| {
                let address: IpAddr = format!("198.51.100.{}", i + 1).parse().unwrap();
                Destination {
                    address,
                    family: AddressFamily::Inet,
                    port: 80,
                    forward: ForwardMethod::Route,
                    weight: w[i],
                    upper_threshold: 0,
                    lower_threshold: 0,
                    active_conns: 0,
                    inactive_conns: 0,
                    persistent_conns: 0,
                    tunnel: None,
                    stats: Stats::default(),
                }
            };
            Ok(Snapshot {
                services: vec![Service {
                    key: ServiceKey::Addr {
                        protocol: Protocol::Tcp,
                        address: "192.0.2.10".parse().unwrap(),
                        port: 80,
                    },
                    scheduler: "wrr".into(),
                    flags: ServiceFlags::default(),
                    persistence_timeout: 0,
                    netmask: 0,
                    pe_name: None,
                    stats: Stats::default(),
                    destinations: (0..3).map(dest).collect(),
                }],
                ..Snapshot::default()
            })
        }

        fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
            Ok(ConnTableSummary::default())
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Duration, String)>>, Mutex<Option<Instant>>);

    impl RouteSink for Recorder {
        fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                let start = self
                    .1
                    .lock()
                    .unwrap()
                    .get_or_insert(tokio::time::Instant::now().into_std())
                    .to_owned();
                let what = match action {
                    RouteAction::Announce { prefix, attrs } => {
                        format!(
                            "announce {prefix} med={:?} comm={:?}",
                            attrs.med, attrs.communities
                        )
                    }
                    RouteAction::Withdraw { prefix } => format!("withdraw {prefix}"),
                    other => format!("{other:?}"),
                };
                self.0
                    .lock()
                    .unwrap()
                    .push((tokio::time::Instant::now().into_std() - start, what));
                Ok(())
            })
        }
    }

    struct NoAddrs;
    impl LocalAddrs for NoAddrs {
        fn local_addrs(&self) -> Result<Vec<IpAddr>, String> {
            Ok(vec!["192.0.2.10".parse().unwrap()])
        }
    }

    fn group() -> VipGroupConfig {
        #[derive(serde::Deserialize)]
        struct W {
            g: VipGroupConfig,
        }
        let w: W = toml::from_str(
            "[g]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\"]\ninterval = \"100ms\"\nrise = 2\nfall = 2\nhold_down = \"1s\"\n",
        )
        .unwrap();
        w.g
    }

    fn events(r: &Recorder) -> Vec<String> {
        r.0.lock().unwrap().iter().map(|(_, s)| s.clone()).collect()
    }

    /// IPVS whose first read after the file `.1` appears takes 600 ms (a large table, a loaded
    /// host), every other read none.
    struct SlowIpvs(FakeIpvs, PathBuf, std::sync::atomic::AtomicBool);

    impl IpvsSource for SlowIpvs {
        fn snapshot(&self) -> Result<Snapshot, ReadError> {
            if self.1.exists() && !self.2.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(600));
            }
            self.0.snapshot()
        }

        fn conn_table(&self, l: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
            self.0.conn_table(l)
        }
    }

    /// A drain announces its draining attributes for the whole drain_time, however long the
    /// IPVS read before the announcement took (the lab's maintenance-file step found 0.7 s of a
    /// 2 s drain when the timer started before a slow read and the next read was fast).
    #[tokio::test]
    async fn drain_time_counts_from_the_draining_announcement_not_from_before_the_read() {
        let dir = std::env::temp_dir().join(format!("herald-drain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let maintenance = dir.join("maintenance");
        let _ = std::fs::remove_file(&maintenance);
        let rec = Arc::new(Recorder::default());
        let ipvs = Arc::new(SlowIpvs(
            FakeIpvs(Mutex::new(Some([1, 1, 1]))),
            maintenance.clone(),
            std::sync::atomic::AtomicBool::new(false),
        ));
        let (_tx, task) = spawn_runtime(
            vec![group()],
            ipvs,
            rec.clone(),
            RuntimeSettings {
                drain_time: Duration::from_millis(500),
                maintenance_file: Some(maintenance.clone()),
            },
            &mut Registry::default(),
        );
        let wait_for = |n: usize| {
            let rec = rec.clone();
            async move {
                for _ in 0..100 {
                    if rec.0.lock().unwrap().len() >= n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("fewer than {n} actions after 10 s: {:?}", events(&rec));
            }
        };
        wait_for(1).await;
        // The read of the tick that sees the maintenance file takes 600 ms, the later ones none.
        std::fs::write(&maintenance, "").unwrap();
        wait_for(3).await;
        let log = rec.0.lock().unwrap().clone();
        std::fs::remove_dir_all(&dir).unwrap();
        task.abort();
        assert_eq!(
            log[1].1,
            "announce 192.0.2.10/32 med=None comm=[4294901760]"
        );
        assert_eq!(log[2].1, "withdraw 192.0.2.10/32");
        let drained_for = log[2].0 - log[1].0;
        assert!(
            drained_for >= Duration::from_millis(500),
            "draining attributes announced for {drained_for:?} only, drain_time is 500 ms"
        );
    }

    /// A runtime over `groups` with no local-address check, running in its own task.
    fn spawn_runtime(
        groups: Vec<VipGroupConfig>,
        ipvs: Arc<dyn IpvsSource>,
        sink: Arc<dyn RouteSink>,
        settings: RuntimeSettings,
        registry: &mut Registry,
    ) -> (mpsc::Sender<Control>, tokio::task::JoinHandle<()>) {
        let rt = Runtime::new(groups, ipvs, sink, Arc::new(NoAddrs), settings, registry).unwrap();
        let (tx, rx) = mpsc::channel(8);
        (tx, tokio::spawn(rt.run(rx)))
    }

    #[tokio::test(start_paused = true)]
    async fn flips_drains_and_shuts_down_on_time() {
        let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
        let rec = Arc::new(Recorder::default());
        let mut registry = Registry::default();
        let (tx, task) = spawn_runtime(
            vec![group()],
            ipvs.clone(),
            rec.clone(),
            RuntimeSettings {
                drain_time: Duration::from_secs(3),
                maintenance_file: None,
            },
            &mut registry,
        );

        // Announced after rise = 2 checks.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);

        // Pool empties: withdrawn after fall = 2 checks (within interval x fall).
        *ipvs.0.lock().unwrap() = Some([0, 0, 0]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");

        // Recovers: back only after the 1 s hold-down.
        *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(events(&rec).len(), 2, "held down");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(events(&rec).len(), 3);

        // IPVS module gone: counts as a failed check.
        *ipvs.0.lock().unwrap() = None;
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
        *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(events(&rec).len(), 5);

        // Admin drain: graceful-shutdown community, then withdraw after 3 s.
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Admin((
            Request::Drain {
                target: Target::Group("web".into()),
                drain_time: None,
            },
            rtx,
        )))
        .await
        .unwrap();
        assert!(rrx.await.unwrap().ok);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            events(&rec).last().unwrap(),
            "announce 192.0.2.10/32 med=None comm=[4294901760]"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");

        // Unknown group is refused by name.
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Admin((
            Request::Undrain {
                target: Target::Group("nope".into()),
            },
            rtx,
        )))
        .await
        .unwrap();
        assert_eq!(rrx.await.unwrap().message, "no VIP group named \"nope\"");

        // Undrain, re-announce, then shutdown drains for 2 s and withdraws before answering.
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Admin((
            Request::Undrain {
                target: Target::All,
            },
            rtx,
        )))
        .await
        .unwrap();
        rrx.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(events(&rec)
            .last()
            .unwrap()
            .starts_with("announce 192.0.2.10/32 med=None comm=[]"));
        let (done_tx, done_rx) = oneshot::channel();
        let t0 = tokio::time::Instant::now();
        tx.send(Control::Shutdown {
            drain_time: Duration::from_secs(2),
            done: done_tx,
        })
        .await
        .unwrap();
        done_rx.await.unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(2));
        assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
        task.await.unwrap();

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("ipvs_herald_vip_group_transitions_total{group=\"web\"}"),
            "{text}"
        );
        assert!(
            text.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"drained\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ipvs_herald_vip_group_checks_failed_total{group=\"web\"} 5"),
            "{text}"
        );
        // Per-service gauges (set through cached handles) carry the last check's counts.
        let line = text
            .lines()
            .find(|l| l.starts_with("ipvs_herald_vip_group_healthy_destinations{group=\"web\""))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.ends_with("} 3"), "{line}");
        assert!(
            text.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"announced\"} 0"),
            "{text}"
        );
    }
    #[tokio::test(start_paused = true)]
    async fn reload_removes_the_series_of_a_removed_group() {
        let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
        let rec = Arc::new(Recorder::default());
        let mut registry = Registry::default();
        let mut other = group();
        other.name = "api".into();
        other.prefixes = vec!["192.0.2.11/32".parse().unwrap()];
        let (tx, task) = spawn_runtime(
            vec![group(), other.clone()],
            ipvs,
            rec.clone(),
            RuntimeSettings {
                drain_time: Duration::from_secs(3),
                maintenance_file: None,
            },
            &mut registry,
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        let text = |r: &Registry| {
            let mut t = String::new();
            prometheus_client::encoding::text::encode(&mut t, r).unwrap();
            t
        };
        let before = text(&registry);
        // web (healthy, announced) has every kind of series; api (no IPVS service) the rest.
        for m in [
            "healthy",
            "announced",
            "drained",
            "phase",
            "pool_down_count",
            "healthy_destinations",
            "destinations",
            "service_pool_up",
            "transitions_total",
            "last_transition_timestamp_seconds",
        ] {
            assert!(
                before.contains(&format!("ipvs_herald_vip_group_{m}{{group=\"web\"")),
                "{m} of web missing before:\n{before}"
            );
        }
        assert!(before.contains("ipvs_herald_vip_group_checks_failed_total{group=\"api\"}"));
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Reload(vec![other.clone()], rtx))
            .await
            .unwrap();
        rrx.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let after = text(&registry);
        assert!(!after.contains("group=\"web\""), "stale series:\n{after}");
        assert!(after.contains("ipvs_herald_vip_group_healthy{group=\"api\"} 0"));
        assert!(after.contains("ipvs_herald_vip_group_checks_failed_total{group=\"api\"}"));
        assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
        // Added back: its series come back with live values (the metric handles cached for
        // the removed group are not reused: they would update series no longer registered).
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Reload(vec![group(), other], rtx))
            .await
            .unwrap();
        rrx.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let again = text(&registry);
        assert!(
            again.contains("ipvs_herald_vip_group_healthy{group=\"web\"} 1"),
            "{again}"
        );
        assert!(
            again.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"announced\"} 1"),
            "{again}"
        );
        let line = again
            .lines()
            .find(|l| l.starts_with("ipvs_herald_vip_group_healthy_destinations{group=\"web\""))
            .unwrap_or_else(|| panic!("{again}"));
        assert!(line.ends_with("} 3"), "{line}");
        drop(tx);
        let _ = task.await;
    }
}
