//! The announcer's control loop: checks every VIP group's health on its interval, applies drains
//! (admin socket, maintenance file, shutdown) and reloads, and carries out the resulting route
//! actions on a [`RouteSink`] (BGP speaker or kernel routes, see `crate::sink`), in order.
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
//!
//! Fail safe: the loop never waits on an IPVS read for longer than it can afford. A read that
//! hangs (a stuck kernel, a blocked procfs file) stays pending while the loop goes on answering
//! the admin socket and reloads; an announced group that has had no verdict for its
//! [watchdog bound](GroupRuntime::watchdog_bound) is withdrawn (log line and
//! `ipvs_herald_vip_group_watchdog_withdrawals_total`). The loop beats a [`Heartbeat`] at least
//! once a second; the binary watches it from a thread of its own and ends the process when the
//! loop itself is wedged, so that the kernel closes the BGP sessions.

use crate::admin::{Envelope, GroupStatus, Maintenance, Reply, Request, Target};
use crate::group::{GroupRuntime, Phase, RouteAction};
use crate::health::{evaluate_with, CheckInput, Health};
pub use crate::sink::{BoxFuture, LocalAddrs, RouteSink};
use crate::state::{Drain, DrainState, StateFile};
use crate::vip::VipGroupConfig;
use herald_shared::model::Snapshot;
use herald_shared::reader::IpvsSource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// The loop beats its heartbeat at least this often, even with nothing due.
const BEAT_PERIOD: Duration = Duration::from_secs(1);

/// The longest the loop waits on a pending IPVS read in one go before it looks at its other
/// work (control messages, drain deadlines, the watchdog) again.
const READ_SLICE: Duration = Duration::from_millis(250);

/// How long the loop may go without a beat before it counts as wedged. A turn waits on a read
/// for at most 250 ms (`READ_SLICE`), so this only has to cover a large batch of route actions or a
/// reload on a slow host; it does not grow with the groups' intervals, which a hung read
/// cannot stretch (see the group watchdog).
pub const LOOP_WEDGE_BOUND: Duration = Duration::from_secs(15);

/// Proof of life of the control loop, for a watcher outside the async runtime.
///
/// The loop [beats](Heartbeat::beat) it on every turn (at least once a second);
/// [`Heartbeat::check`] answers whether it has been silent for longer than its bound
/// ([`LOOP_WEDGE_BOUND`] for the control loop). After the loop has ended on
/// purpose (shutdown) the heartbeat is stopped and always passes.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

#[derive(Debug)]
struct HeartbeatInner {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last beat.
    last_ms: AtomicU64,
    /// Longest silence allowed, in milliseconds; `u64::MAX` once stopped.
    bound_ms: AtomicU64,
}

/// A loop that has not beaten its [`Heartbeat`] within its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no heartbeat for {silent:?} (bound {bound:?})")]
pub struct Wedged {
    pub silent: Duration,
    pub bound: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    pub fn new() -> Self {
        Heartbeat {
            inner: Arc::new(HeartbeatInner {
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
                bound_ms: AtomicU64::new(millis(LOOP_WEDGE_BOUND)),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.inner.epoch.elapsed())
    }

    /// A heartbeat that fails when not beaten for longer than `bound`.
    pub fn with_bound(bound: Duration) -> Self {
        let h = Self::new();
        h.set_bound(bound);
        h
    }

    /// Alive now.
    pub fn beat(&self) {
        self.inner.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn set_bound(&self, bound: Duration) {
        self.inner.bound_ms.store(millis(bound), Ordering::Relaxed);
    }

    /// The loop ended on purpose: no longer watched.
    pub fn stop(&self) {
        self.inner.bound_ms.store(u64::MAX, Ordering::Relaxed);
    }

    /// `Err` when the loop has been silent for longer than its bound.
    pub fn check(&self) -> Result<(), Wedged> {
        let bound = self.inner.bound_ms.load(Ordering::Relaxed);
        let silent = self
            .now_ms()
            .saturating_sub(self.inner.last_ms.load(Ordering::Relaxed));
        if bound != u64::MAX && silent > bound {
            return Err(Wedged {
                silent: Duration::from_millis(silent),
                bound: Duration::from_millis(bound),
            });
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Faults that only tests turn on, to prove the fail-safe paths with the real binary: inert
/// unless the environment variable `IPVS_HERALD_FAULT_DIR` names a directory. Then, while the
/// file `<dir>/stuck-read` exists every IPVS read of the loop blocks; while `<dir>/wedge` exists
/// the loop blocks its thread; when `<dir>/panic` exists the loop panics at its next turn; when
/// `<dir>/metrics-server-exits` appears the binary's metrics server ends as if it had failed.
#[derive(Debug, Clone, Default)]
pub struct FaultHooks {
    dir: Option<PathBuf>,
}

impl FaultHooks {
    /// The environment variable that turns the hooks on.
    pub const ENV: &'static str = "IPVS_HERALD_FAULT_DIR";

    pub fn from_env() -> Self {
        let dir = std::env::var_os(Self::ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let Some(d) = &dir {
            tracing::warn!(dir = %d.display(), "fault hooks are on ({}): for tests only", Self::ENV);
        }
        FaultHooks { dir }
    }

    /// Whether the fault `name` is turned on now (`<dir>/<name>` exists).
    pub fn on(&self, name: &str) -> bool {
        self.dir.as_ref().is_some_and(|d| d.join(name).exists())
    }

    /// Complete once the fault `name` is turned on; never when the hooks are off.
    pub async fn turned_on(&self, name: &str) {
        if self.dir.is_none() {
            return std::future::pending().await;
        }
        while !self.on(name) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Block while `<dir>/<name>` exists (bounded: ten minutes at most).
    fn hold(&self, name: &str) {
        let start = Instant::now();
        while self.on(name) && start.elapsed() < Duration::from_secs(600) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What one read of the loop returns: the IPVS snapshot and the host's addresses.
type ReadResult = (Result<Snapshot, String>, Vec<IpAddr>);

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
    /// Where admin drains are kept across restarts (`None`: not kept).
    pub state_file: Option<PathBuf>,
}

/// How long an admin request waits for its drain to reach the state file before the reply says
/// it was not saved.
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

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
    watchdog_withdrawals: Family<GroupLabel, Counter>,
    read_pending: Gauge<f64, AtomicU64>,
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
        self.watchdog_withdrawals.remove(&l);
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

/// The admin drains saved by an earlier run, restored before the first tick so that a drained
/// group is never announced after a restart. A restored drain goes straight to drained (the
/// group starts withdrawn, and the route was withdrawn before the restart): announcing it again
/// with the draining attributes would draw traffic back to a director taken out of service.
///
/// A state file that exists but cannot be read or parsed drains every group (fail safe: an
/// operator's drain is never lost), logs an error naming the file, and `status` says why; the
/// returned fault is that reason. Drains of groups no longer configured are dropped, as a reload
/// does.
fn restore_drains(
    file: Option<&StateFile>,
    groups: &[(GroupRuntime, Instant)],
    settings: &RuntimeSettings,
) -> (DrainState, Option<String>) {
    let Some(file) = file else {
        return (DrainState::default(), None);
    };
    match file.load() {
        Ok(mut state) => {
            state.groups.retain(|name, _| {
                let known = groups.iter().any(|(g, _)| g.name() == name);
                if !known {
                    tracing::warn!(group = %name, state_file = %file.path().display(), "saved drain of a VIP group that is no longer configured: dropped");
                }
                known
            });
            if state.all.is_some() {
                tracing::info!(state_file = %file.path().display(), "restored the drain of every VIP group");
            }
            for name in state.groups.keys() {
                tracing::info!(group = %name, state_file = %file.path().display(), "restored admin drain");
            }
            (state, None)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot restore the admin drains: draining every VIP group until `ipvs-herald undrain --all`");
            (
                DrainState {
                    all: Some(Drain::now(settings.drain_time)),
                    groups: BTreeMap::new(),
                },
                Some(format!("{e} at start")),
            )
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
    admin_drains: BTreeMap<String, Drain>,
    admin_drain_all: Option<Drain>,
    /// Set when the state file could not be read at start: every group is drained
    /// (`admin_drain_all`) until `undrain --all`, and `status` says why.
    drain_fault: Option<String>,
    state_file: Option<StateFile>,
    /// Generation of the last drain state handed to the state file.
    state_generation: u64,
    shutdown: Option<(Duration, oneshot::Sender<()>)>,
    metrics: Metrics,
    /// Metric handles by group name.
    gauges: BTreeMap<String, GroupGauges>,
    /// The IPVS read under way, kept across turns so that a hung read never blocks the loop,
    /// and when it started.
    pending: Option<(tokio::task::JoinHandle<ReadResult>, Instant)>,
    heartbeat: Heartbeat,
    faults: FaultHooks,
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
        let state_file = settings.state_file.clone().map(StateFile::new);
        let (restored, drain_fault) = restore_drains(state_file.as_ref(), &groups, &settings);
        Ok(Runtime {
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
            metrics: Metrics::register(registry),
            gauges: BTreeMap::new(),
            pending: None,
            heartbeat: Heartbeat::new(),
            faults: FaultHooks::default(),
        })
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
                let snapshot = source.snapshot().map_err(|e| e.to_string());
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
            Err(e) => (Err(format!("reader task failed: {e}")), Vec::new()),
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
            let mut actions = Vec::new();
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
                    actions = group.expire(now, reason);
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
            Control::Shutdown { drain_time, done } => {
                tracing::info!(?drain_time, "shutting down: draining every VIP group");
                self.shutdown = Some((drain_time, done));
            }
        }
    }

    /// Answer an admin request; the flag is set when the admin drains changed (to be saved).
    fn admin(&mut self, req: Request) -> (Reply, bool) {
        let ok = |message: String| Reply {
            ok: true,
            message,
            groups: Vec::new(),
        };
        let unknown = |name: &str| Reply {
            ok: false,
            message: format!("no VIP group named {name:?}"),
            groups: Vec::new(),
        };
        let known = |s: &Self, name: &str| s.groups.iter().any(|(g, _)| g.name() == name);
        match req {
            Request::Drain { target, drain_time } => {
                let d = drain_time.unwrap_or(self.settings.drain_time);
                match target {
                    Target::All => {
                        self.admin_drain_all = Some(Drain::now(d));
                        (
                            ok(format!("draining every VIP group ({}s)", d.as_secs_f64())),
                            true,
                        )
                    }
                    Target::Group(name) if known(self, &name) => {
                        self.admin_drains.insert(name.clone(), Drain::now(d));
                        (ok(format!("draining {name} ({}s)", d.as_secs_f64())), true)
                    }
                    Target::Group(name) => (unknown(&name), false),
                }
            }
            Request::Undrain { target } => match target {
                Target::All => {
                    self.admin_drain_all = None;
                    self.admin_drains.clear();
                    self.drain_fault = None;
                    (ok("undrained every VIP group".into()), true)
                }
                Target::Group(name) if known(self, &name) => {
                    self.admin_drains.remove(&name);
                    let note = if self.admin_drain_all.is_some() {
                        " (but a drain of all groups is still in force)"
                    } else {
                        ""
                    };
                    (ok(format!("undrained {name}{note}")), true)
                }
                Target::Group(name) => (unknown(&name), false),
            },
            Request::Status => {
                let groups = self
                    .groups
                    .iter()
                    .map(|(g, _)| {
                        let mut reasons = g
                            .last_observation()
                            .map(|o| o.reasons.clone())
                            .unwrap_or_default();
                        reasons.extend(self.admin_drain_reason(g.name()));
                        GroupStatus {
                            name: g.name().to_string(),
                            state: g.phase().as_str().to_string(),
                            reasons,
                        }
                    })
                    .collect();
                (
                    Reply {
                        ok: true,
                        message: format!("{} VIP groups", self.groups.len()),
                        groups,
                    },
                    false,
                )
            }
        }
    }

    /// Why the admin drains hold group `name`, for `status`.
    fn admin_drain_reason(&self, name: &str) -> Option<String> {
        if let Some(fault) = &self.drain_fault {
            return Some(format!(
                "drained: {fault}; `ipvs-herald undrain --all` ends it"
            ));
        }
        let (what, d) = match (self.admin_drains.get(name), &self.admin_drain_all) {
            (Some(d), _) => (format!("ipvs-herald drain {name}"), d),
            (None, Some(d)) => ("ipvs-herald drain --all".to_string(), d),
            (None, None) => return None,
        };
        Some(format!("drained by `{what}` (unix time {})", d.since))
    }

    /// The admin drains as the state file keeps them.
    fn drain_state(&self) -> DrainState {
        DrainState {
            all: self.admin_drain_all,
            groups: self.admin_drains.clone(),
        }
    }

    /// Write the admin drains to the state file off the loop (a slow disk must not hold up the
    /// health checks), then send `reply`, turned into an error if the drains could not be
    /// saved: they are in force, but a restart would bring back the ones saved before.
    fn save_drains(&mut self, reply: Option<(Reply, oneshot::Sender<Reply>)>) {
        let Some(file) = self.state_file.clone() else {
            if let Some((r, tx)) = reply {
                let _ = tx.send(r);
            }
            return;
        };
        self.state_generation += 1;
        let generation = self.state_generation;
        let state = self.drain_state();
        tokio::spawn(async move {
            let path = file.path().display().to_string();
            let write = tokio::task::spawn_blocking(move || file.store(generation, &state));
            let failed = match tokio::time::timeout(STATE_WRITE_TIMEOUT, write).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(e.to_string()),
                Ok(Err(e)) => Some(format!("state file {path}: write task failed: {e}")),
                Err(_) => Some(format!(
                    "state file {path}: not written within {STATE_WRITE_TIMEOUT:?}"
                )),
            };
            if let Some(e) = &failed {
                tracing::error!(error = %e, "admin drains not saved: a restart would restore the drains saved before");
            }
            if let Some((mut r, tx)) = reply {
                if let Some(e) = failed {
                    r.ok = false;
                    r.message = format!(
                        "{}; in force now, but NOT saved ({e}): a restart would restore the drains saved before",
                        r.message
                    );
                }
                let _ = tx.send(r);
            }
        });
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
        let drains = self.admin_drains.len();
        self.admin_drains.retain(|name, _| new_names.contains(name));
        if self.admin_drains.len() != drains {
            self.save_drains(None);
        }
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
                    weight: w[i],
                    ..Destination::new(address, 80)
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
                state_file: None,
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
                state_file: None,
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
    async fn ask(tx: &mpsc::Sender<Control>, req: Request) -> Reply {
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Admin((req, rtx))).await.unwrap();
        rrx.await.unwrap()
    }

    fn drained_group(reply: &Reply) -> (String, String) {
        let g = &reply.groups[0];
        (g.state.clone(), g.reasons.join("; "))
    }

    /// `drain web`, the daemon dies (no shutdown drain), a new one starts on the same state
    /// file with the pool healthy: web is never announced, not even with the draining
    /// attributes, until `undrain web`; then it returns under its health policy.
    #[tokio::test(start_paused = true)]
    async fn a_saved_drain_keeps_a_healthy_group_withdrawn_after_a_restart() {
        let dir = std::env::temp_dir().join(format!("herald-restore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("state.json");
        let settings = RuntimeSettings {
            drain_time: Duration::from_secs(1),
            maintenance_file: None,
            state_file: Some(state.clone()),
        };
        let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
        let rec = Arc::new(Recorder::default());
        let (tx, task) = spawn_runtime(
            vec![group()],
            ipvs.clone(),
            rec.clone(),
            settings.clone(),
            &mut Registry::default(),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
        let r = ask(
            &tx,
            Request::Drain {
                target: Target::Group("web".into()),
                drain_time: None,
            },
        )
        .await;
        assert!(r.ok, "{}", r.message);
        let saved = StateFile::new(state.clone()).load().unwrap();
        assert_eq!(saved.groups["web"].drain_time, Duration::from_secs(1));
        // Killed in the middle of the drain.
        task.abort();
        let _ = task.await;

        let rec = Arc::new(Recorder::default());
        let mut registry = Registry::default();
        let (tx, task) = spawn_runtime(
            vec![group()],
            ipvs.clone(),
            rec.clone(),
            settings.clone(),
            &mut registry,
        );
        // Ten checks of a healthy pool (rise is 2): nothing announced.
        tokio::time::sleep(Duration::from_millis(1050)).await;
        assert_eq!(events(&rec), Vec::<String>::new());
        let (state_now, reasons) = drained_group(&ask(&tx, Request::Status).await);
        assert_eq!(state_now, "drained");
        assert!(
            reasons.contains("drained by `ipvs-herald drain web`"),
            "{reasons}"
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("ipvs_herald_vip_group_drained{group=\"web\"} 1"),
            "{text}"
        );

        let r = ask(
            &tx,
            Request::Undrain {
                target: Target::Group("web".into()),
            },
        )
        .await;
        assert!(r.ok, "{}", r.message);
        assert!(StateFile::new(state.clone()).load().unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
        drop(tx);
        let _ = task.await;

        // Undrained for good: the next start announces as usual.
        let rec = Arc::new(Recorder::default());
        let (tx, task) = spawn_runtime(
            vec![group()],
            ipvs,
            rec.clone(),
            settings,
            &mut Registry::default(),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
        drop(tx);
        let _ = task.await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A state file that cannot be parsed: every group stays drained (an operator's drain may be
    /// in it), `status` names the file, and `undrain --all` ends it and rewrites the file.
    #[tokio::test(start_paused = true)]
    async fn a_corrupt_state_file_drains_everything_until_undrained() {
        let dir = std::env::temp_dir().join(format!("herald-corrupt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.json");
        std::fs::write(&state, "{\"version\":1,\"all\":nu").unwrap();
        let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
        let rec = Arc::new(Recorder::default());
        let (tx, task) = spawn_runtime(
            vec![group()],
            ipvs,
            rec.clone(),
            RuntimeSettings {
                drain_time: Duration::from_secs(1),
                maintenance_file: None,
                state_file: Some(state.clone()),
            },
            &mut Registry::default(),
        );
        tokio::time::sleep(Duration::from_millis(1050)).await;
        assert_eq!(events(&rec), Vec::<String>::new());
        let (state_now, reasons) = drained_group(&ask(&tx, Request::Status).await);
        assert_eq!(state_now, "drained");
        assert!(
            reasons.contains(&format!("state file {} is corrupt", state.display()))
                && reasons.contains("undrain --all"),
            "{reasons}"
        );
        // Undraining one group is not enough.
        let r = ask(
            &tx,
            Request::Undrain {
                target: Target::Group("web".into()),
            },
        )
        .await;
        assert!(r.message.contains("still in force"), "{}", r.message);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(events(&rec), Vec::<String>::new());
        let r = ask(
            &tx,
            Request::Undrain {
                target: Target::All,
            },
        )
        .await;
        assert!(r.ok, "{}", r.message);
        assert!(StateFile::new(state.clone()).load().unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
        drop(tx);
        let _ = task.await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A drain whose state cannot be written is in force, but the reply says it is not saved.
    #[tokio::test]
    async fn a_drain_that_cannot_be_saved_is_reported() {
        let dir = std::env::temp_dir().join(format!("herald-unsaved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The state file's directory is a regular file: no write can succeed.
        std::fs::write(dir.join("file"), "").unwrap();
        let rec = Arc::new(Recorder::default());
        let (tx, task) = spawn_runtime(
            vec![group()],
            Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1])))),
            rec.clone(),
            RuntimeSettings {
                drain_time: Duration::from_secs(1),
                maintenance_file: None,
                state_file: Some(dir.join("file/state.json")),
            },
            &mut Registry::default(),
        );
        let r = ask(
            &tx,
            Request::Drain {
                target: Target::All,
                drain_time: Some(Duration::ZERO),
            },
        )
        .await;
        assert!(!r.ok);
        assert!(
            r.message
                .starts_with("draining every VIP group (0s); in force now, but NOT saved"),
            "{}",
            r.message
        );
        let (state_now, _) = drained_group(&ask(&tx, Request::Status).await);
        assert_eq!(state_now, "drained");
        drop(tx);
        let _ = task.await;
        std::fs::remove_dir_all(&dir).unwrap();
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
                state_file: None,
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

    /// IPVS that blocks every read while `stuck` is set (a hung kernel read), bounded at 20 s.
    struct StuckIpvs(FakeIpvs, std::sync::atomic::AtomicBool);

    impl IpvsSource for StuckIpvs {
        fn snapshot(&self) -> Result<Snapshot, ReadError> {
            let start = Instant::now();
            while self.1.load(std::sync::atomic::Ordering::SeqCst)
                && start.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.0.snapshot()
        }

        fn conn_table(&self, l: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
            self.0.conn_table(l)
        }
    }

    /// A read that hangs withdraws the group at its watchdog bound (2 s for a 100 ms interval),
    /// not never; the loop answers the admin socket meanwhile and beats its heartbeat; when
    /// reads answer again the group comes back through rise and hold-down. Real time: a hung
    /// blocking read keeps tokio's paused clock from moving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_read_withdraws_at_the_watchdog_bound_and_the_loop_stays_responsive() {
        let ipvs = Arc::new(StuckIpvs(
            FakeIpvs(Mutex::new(Some([1, 1, 1]))),
            std::sync::atomic::AtomicBool::new(false),
        ));
        let rec = Arc::new(Recorder::default());
        let mut registry = Registry::default();
        let rt = Runtime::new(
            vec![group()],
            ipvs.clone(),
            rec.clone(),
            Arc::new(NoAddrs),
            RuntimeSettings {
                drain_time: Duration::from_secs(3),
                maintenance_file: None,
                state_file: None,
            },
            &mut registry,
        )
        .unwrap();
        let heartbeat = rt.heartbeat();
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(rt.run(rx));
        let wait_for = |n: usize, within: Duration| {
            let rec = rec.clone();
            async move {
                let start = Instant::now();
                while rec.0.lock().unwrap().len() < n {
                    assert!(
                        start.elapsed() < within,
                        "fewer than {n} actions after {within:?}: {:?}",
                        events(&rec)
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                start.elapsed()
            }
        };
        wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);

        ipvs.1.store(true, std::sync::atomic::Ordering::SeqCst);
        let stuck_at = Instant::now();
        // The loop still answers while the read hangs.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (rtx, rrx) = oneshot::channel();
        let asked = Instant::now();
        tx.send(Control::Admin((Request::Status, rtx)))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(1), rrx)
            .await
            .expect("status answered while the read hangs")
            .unwrap();
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(reply.groups[0].state, "announced");
        assert!(heartbeat.check().is_ok());

        wait_for(2, Duration::from_secs(4)).await;
        let withdrawn_after = stuck_at.elapsed();
        assert_eq!(events(&rec)[1], "withdraw 192.0.2.10/32");
        // Bound 2 s after the last verdict, which came at most one interval before the hang.
        assert!(
            withdrawn_after >= Duration::from_millis(1800)
                && withdrawn_after < Duration::from_millis(2600),
            "withdrawn {withdrawn_after:?} after the read hung"
        );
        let mut t = String::new();
        prometheus_client::encoding::text::encode(&mut t, &registry).unwrap();
        assert!(
            t.contains("ipvs_herald_vip_group_watchdog_withdrawals_total{group=\"web\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"withdrawn\"} 1"),
            "{t}"
        );
        let (rtx, rrx) = oneshot::channel();
        tx.send(Control::Admin((Request::Status, rtx)))
            .await
            .unwrap();
        let reply = rrx.await.unwrap();
        assert!(
            reply.groups[0].reasons[0].starts_with("watchdog: no health verdict within 2s"),
            "{:?}",
            reply.groups[0].reasons
        );
        assert!(heartbeat.check().is_ok());

        // Reads answer again: back after rise (2 x 100 ms) and the 1 s hold-down, which counts
        // from the watchdog's withdrawal.
        ipvs.1.store(false, std::sync::atomic::Ordering::SeqCst);
        wait_for(3, Duration::from_secs(5)).await;
        let log = rec.0.lock().unwrap().clone();
        assert_eq!(log[2].1, "announce 192.0.2.10/32 med=None comm=[]");
        let held = log[2].0 - log[1].0;
        assert!(
            held >= Duration::from_secs(1),
            "back {held:?} after the withdrawal"
        );
        drop(tx);
        let _ = task.await;
        // The loop ended on purpose: nothing to watch any more.
        std::thread::sleep(Duration::from_millis(20));
        assert!(heartbeat.check().is_ok());
    }

    #[test]
    fn heartbeat_fails_after_its_bound_and_passes_once_stopped() {
        let h = Heartbeat::new();
        h.set_bound(Duration::from_millis(50));
        h.beat();
        assert!(h.check().is_ok());
        std::thread::sleep(Duration::from_millis(120));
        let e = h.check().unwrap_err();
        assert!(e.silent >= Duration::from_millis(100), "{e}");
        assert_eq!(e.bound, Duration::from_millis(50));
        h.beat();
        assert!(h.check().is_ok());
        std::thread::sleep(Duration::from_millis(120));
        h.stop();
        assert!(h.check().is_ok());
    }
}
