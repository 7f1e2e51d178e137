//! The speaker: starts one session task per peer and the passive listener, owns the route
//! table every session announces, answers the status API, shuts down, and applies live
//! reconfiguration (the pure diff is [`super::reconfig`]; this module carries it out on the
//! running sessions and the listener).

use super::config::{BgpConfig, Family, PeerConfig};
use super::error::BgpError;
use super::fsm::State;
use super::metrics::Metrics;
use super::network::{self, PassivePeers};
use super::packet::consts::CeaseSubcode;
use super::packet::Notification;
use super::reconfig::{self, PeerChange, Plan};
use super::rib::{RouteAttrs, RouteTable};
use super::session::{InitialHold, PeerShared, Session, SessionCtl, SessionInit};
use super::tasks;
use ipnet::IpNet;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Status of one peer, as returned by [`SpeakerHandle::peer_states`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// Configured name.
    pub name: String,
    /// Configured address.
    pub address: std::net::IpAddr,
    /// FSM state.
    pub state: State,
    /// Time since the session reached Established, when it is.
    pub uptime: Option<Duration>,
    /// Prefixes currently announced to the peer.
    pub prefixes_sent: usize,
    /// Latest error (NOTIFICATION sent or received, connection failure), if any.
    pub last_error: Option<String>,
    /// Established, but the initial table and End-of-RIB are held back, and why.
    pub initial_hold: Option<InitialHold>,
    /// With `bfd` enabled: the BFD session (Down with zero timing when it could not start).
    pub bfd: Option<crate::bfd::Snapshot>,
}

/// One configured peer and its session task.
#[derive(Debug)]
struct PeerEntry {
    cfg: PeerConfig,
    state: watch::Receiver<State>,
    shared: Arc<Mutex<PeerShared>>,
    ctl: mpsc::Sender<SessionCtl>,
    /// Where the listener hands this (passive) peer's connections.
    incoming: Option<mpsc::Sender<TcpStream>>,
    task: Option<JoinHandle<()>>,
}

/// The passive listener.
#[derive(Debug)]
struct ListenerEntry {
    socket: Arc<TcpListener>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// What reconfiguration replaces.
#[derive(Debug)]
struct Running {
    cfg: BgpConfig,
    peers: Vec<PeerEntry>,
    listener: Option<ListenerEntry>,
    /// Sessions started so far (seeds the jitter of each).
    started: usize,
}

#[derive(Debug)]
struct Inner {
    table: watch::Sender<RouteTable>,
    /// False after a graceful restart until the table reflects the first health decision
    /// ([`SpeakerHandle::release_routes`]): sessions hold their initial UPDATEs and End-of-RIB.
    routes_ready: watch::Sender<bool>,
    shutdown: watch::Sender<Option<String>>,
    metrics: Metrics,
    rt: tokio::runtime::Handle,
    running: Mutex<Running>,
    /// The listener's view of the passive peers.
    passive: PassivePeers,
    /// Serialises [`SpeakerHandle::reconfigure`] calls.
    reconfiguring: tokio::sync::Mutex<()>,
    /// BFD for the peers that enable it.
    bfd: crate::bfd::Bfd,
}

/// The BGP speaker.
#[derive(Debug)]
pub struct Speaker;

/// A start after a graceful restart (RFC 4724): the peers that keep our routes as stale, and
/// until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulStart {
    /// By peer name: the end of the restart time the peer keeps our routes for. Until then the
    /// peer's OPENs carry the Restart State and Forwarding State bits (not after: a late start
    /// is a fresh start).
    pub restart_until: BTreeMap<String, tokio::time::Instant>,
    /// When the initial UPDATEs and End-of-RIB go out even without
    /// [`SpeakerHandle::release_routes`] (a health check that never answers must not leave
    /// stale routes at the peer for ever): the table then says what is announced.
    pub release_by: tokio::time::Instant,
}

impl Speaker {
    /// Validate `cfg`, register the metrics, and spawn one task per peer (plus a listener when
    /// a peer is passive) on the current tokio runtime.
    pub fn start(cfg: BgpConfig, registry: &mut Registry) -> Result<SpeakerHandle, BgpError> {
        Self::start_with(cfg, registry, None)
    }

    /// [`Speaker::start`], after a graceful restart when `graceful` is given: sessions hold
    /// their initial UPDATEs and End-of-RIB until [`SpeakerHandle::release_routes`] (or
    /// [`GracefulStart::release_by`]), and the peers in it get OPENs with the Restart State bit.
    pub fn start_with(
        cfg: BgpConfig,
        registry: &mut Registry,
        graceful: Option<GracefulStart>,
    ) -> Result<SpeakerHandle, BgpError> {
        cfg.validate()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| BgpError::NoRuntime)?;
        let metrics = Metrics::register(registry);
        // Binds nothing until a peer with BFD starts its session.
        let bfd = crate::bfd::Bfd::new(crate::bfd::metrics::Metrics::register(registry));
        let (table, _) = watch::channel(RouteTable::new());
        let (routes_ready, _) = watch::channel(graceful.is_none());
        let (shutdown, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            table,
            routes_ready,
            shutdown,
            metrics,
            rt,
            running: Mutex::new(Running {
                cfg: cfg.clone(),
                peers: Vec::new(),
                listener: None,
                started: 0,
            }),
            passive: Arc::new(Mutex::new(Vec::new())),
            reconfiguring: tokio::sync::Mutex::new(()),
            bfd,
        });
        let handle = SpeakerHandle { inner };
        let mut started = 0;
        let mut prepared = Vec::new();
        for p in &cfg.peers {
            handle.inner.metrics.init_peer(&p.name, &p.families());
            prepared.push(Prepared::new(p));
        }
        let table: Vec<_> = prepared.iter().filter_map(|x| x.listener_entry()).collect();
        if !table.is_empty() {
            let listener = handle.bind_listener(cfg.listen, table)?;
            lock(&handle.inner.running).listener = Some(listener);
        }
        let mut entries = Vec::new();
        let restart_until = graceful
            .as_ref()
            .map(|g| g.restart_until.clone())
            .unwrap_or_default();
        for x in prepared {
            let until = restart_until.get(&x.peer.name).copied();
            entries.push(handle.spawn_session(&cfg, x, started, until));
            started += 1;
        }
        if let Some(g) = graceful {
            let h = handle.clone();
            handle.inner.rt.spawn(async move {
                tokio::time::sleep_until(g.release_by).await;
                if !*h.inner.routes_ready.borrow() {
                    tracing::warn!("no health decision within the restart time: sending the table as it is, and End-of-RIB");
                    h.release_routes();
                }
            });
        }
        {
            let mut r = lock(&handle.inner.running);
            r.peers = entries;
            r.started = started;
        }
        Ok(handle)
    }
}

/// Lock a std mutex, recovering the data of a poisoned one (a panicking holder cannot leave
/// these structures half-updated: every critical section is a plain assignment or push).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session about to be spawned: its channels, made before the listener learns about it.
struct Prepared {
    peer: PeerConfig,
    incoming: Option<(mpsc::Sender<TcpStream>, mpsc::Receiver<TcpStream>)>,
}

impl Prepared {
    fn new(p: &PeerConfig) -> Self {
        Prepared {
            peer: p.clone(),
            incoming: p.accepts().then(|| mpsc::channel(4)),
        }
    }

    fn listener_entry(&self) -> Option<(PeerConfig, mpsc::Sender<TcpStream>)> {
        self.incoming
            .as_ref()
            .map(|(tx, _)| (self.peer.clone(), tx.clone()))
    }
}

/// Bound on closing the sessions of removed or reset peers during a reconfiguration.
pub const RECONFIGURE_STOP_TIMEOUT: Duration = Duration::from_secs(5);

fn seed(i: usize) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64) << 32 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What happened to the passive listener in a reconfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerChange {
    /// Nothing changed (or there is no listener before and after).
    Unchanged,
    /// Same socket; the peer table, TCP-MD5 keys or GTSM setting were updated in place.
    Updated,
    /// A listener was started (the first passive peer) on this address.
    Started(std::net::SocketAddr),
    /// The listener was closed (no passive peer left).
    Stopped,
    /// The listener moved to a new address (`listen` changed).
    Rebound(std::net::SocketAddr),
}

/// Outcome of [`SpeakerHandle::reconfigure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// What was done, per peer.
    pub plan: Plan,
    /// What was done to the listener.
    pub listener: ListenerChange,
}

impl ReconfigureReport {
    /// One human-readable line per peer plus the listener and global changes, for logs.
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.plan.global_reset.is_empty() {
            v.push(format!(
                "{} changed: every session is reset",
                self.plan.global_reset.join(", ")
            ));
        }
        v.extend(self.plan.peers.iter().map(|p| p.to_string()));
        match &self.listener {
            ListenerChange::Unchanged => {}
            ListenerChange::Updated => v.push("listener: passive peers updated".into()),
            ListenerChange::Started(a) => v.push(format!("listener: started on {a}")),
            ListenerChange::Stopped => v.push("listener: closed (no passive peer left)".into()),
            ListenerChange::Rebound(a) => v.push(format!("listener: rebound to {a}")),
        }
        v
    }
}

/// Handle to a running speaker; cheap to clone.
#[derive(Debug, Clone)]
pub struct SpeakerHandle {
    inner: Arc<Inner>,
}

impl SpeakerHandle {
    /// Announce `prefix` (host bits are cleared) with `attrs`, or change its attributes.
    pub fn announce(&self, prefix: IpNet, attrs: RouteAttrs) {
        let prefix = prefix.trunc();
        self.inner.table.send_if_modified(|t| {
            if t.get(&prefix) == Some(&attrs) {
                false
            } else {
                t.insert(prefix, attrs);
                true
            }
        });
    }

    /// Withdraw `prefix` (no-op when not announced).
    pub fn withdraw(&self, prefix: IpNet) {
        let prefix = prefix.trunc();
        self.inner
            .table
            .send_if_modified(|t| t.remove(&prefix).is_some());
    }

    /// Announce (or update) many prefixes in one table change.
    pub fn announce_many(&self, routes: impl IntoIterator<Item = (IpNet, RouteAttrs)>) {
        let routes: Vec<_> = routes.into_iter().collect();
        self.inner.table.send_if_modified(|t| {
            let mut changed = false;
            for (p, a) in routes {
                let p = p.trunc();
                if t.get(&p) != Some(&a) {
                    t.insert(p, a);
                    changed = true;
                }
            }
            changed
        });
    }

    /// Withdraw many prefixes in one table change.
    pub fn withdraw_many(&self, prefixes: impl IntoIterator<Item = IpNet>) {
        let prefixes: Vec<_> = prefixes.into_iter().collect();
        self.inner.table.send_if_modified(|t| {
            let mut changed = false;
            for p in prefixes {
                changed |= t.remove(&p.trunc()).is_some();
            }
            changed
        });
    }

    /// Replace the whole route table (prefixes must have their host bits clear); sessions
    /// send only the difference.
    pub fn set_routes(&self, table: RouteTable) {
        self.inner.table.send_if_modified(|t| {
            if *t == table {
                false
            } else {
                *t = table;
                true
            }
        });
    }

    /// The table now reflects a health decision: sessions held after a graceful restart send
    /// it and End-of-RIB. Idempotent; without a graceful restart there is nothing to release.
    pub fn release_routes(&self) {
        self.inner
            .routes_ready
            .send_if_modified(|r| !std::mem::replace(r, true));
    }

    /// Peers whose Established session negotiated graceful restart, with the restart time they
    /// keep our routes for when it ends without a NOTIFICATION.
    pub fn graceful_peers(&self) -> Vec<(String, u16)> {
        let running = lock(&self.inner.running);
        running
            .peers
            .iter()
            .filter(|p| *p.state.borrow() == State::Established)
            .filter_map(|p| {
                let t = lock(&p.shared).graceful_restart?;
                Some((p.cfg.name.clone(), t))
            })
            .collect()
    }

    /// The current route table.
    pub fn routes(&self) -> RouteTable {
        self.inner.table.borrow().clone()
    }

    /// Status of every peer, in configuration order.
    pub fn peer_states(&self) -> Vec<PeerStatus> {
        let running = lock(&self.inner.running);
        running
            .peers
            .iter()
            .map(|p| {
                let (uptime, prefixes_sent, last_error, initial_hold, bfd) = match p.shared.lock() {
                    Ok(s) => (
                        s.established_at.map(|t| t.elapsed()),
                        s.prefixes_sent,
                        s.last_error.clone(),
                        s.initial_hold,
                        s.bfd
                            .as_ref()
                            .map(|b| b.lock().map(|b| *b).unwrap_or_default()),
                    ),
                    Err(_) => (None, 0, Some("status unavailable".into()), None, None),
                };
                let bfd = p.cfg.bfd_params().map(|_| bfd.unwrap_or_default());
                PeerStatus {
                    name: p.cfg.name.clone(),
                    address: p.cfg.address,
                    state: *p.state.borrow(),
                    uptime,
                    prefixes_sent,
                    last_error,
                    initial_hold,
                    bfd,
                }
            })
            .collect()
    }

    /// The configuration in force (the last one applied by [`Self::reconfigure`]).
    pub fn config(&self) -> BgpConfig {
        lock(&self.inner.running).cfg.clone()
    }

    /// Wait until `peer` is Established (true) or `timeout` passes / the peer is unknown (false).
    pub async fn wait_established(&self, peer: &str, timeout: Duration) -> bool {
        self.wait_state(peer, State::Established, timeout).await
    }

    /// Wait until `peer` is in `state` (true) or `timeout` passes / the peer is unknown (false).
    pub async fn wait_state(&self, peer: &str, state: State, timeout: Duration) -> bool {
        let rx = lock(&self.inner.running)
            .peers
            .iter()
            .find(|p| p.cfg.name == peer)
            .map(|p| p.state.clone());
        let Some(mut rx) = rx else {
            return false;
        };
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == state))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Stop for a graceful restart (RFC 4724), within `timeout`: each Established session whose
    /// peer negotiated graceful restart is closed without withdrawing and without a
    /// NOTIFICATION, so the peer keeps our routes as stale for the restart time; every other
    /// session is closed as by [`Self::shutdown`] (withdraw, Cease / Administrative Shutdown).
    /// Tasks still running after `timeout` are aborted (the kernel closes their connections,
    /// which again sends no NOTIFICATION).
    pub async fn stop_for_restart(self, timeout: Duration) {
        let _guard = self.inner.reconfiguring.lock().await;
        let tasks: Vec<JoinHandle<()>> = {
            let mut r = lock(&self.inner.running);
            r.peers
                .iter_mut()
                .filter_map(|p| {
                    let t = p.task.take()?;
                    if p.ctl.try_send(SessionCtl::StopForRestart).is_err() {
                        t.abort();
                    }
                    Some(t)
                })
                .collect()
        };
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(timeout, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                "BGP stop for restart did not finish within {timeout:?}; aborting sessions"
            );
            for a in aborts {
                a.abort();
            }
        }
        // The sessions are gone: now the listener may stop as on shutdown.
        self.inner
            .shutdown
            .send_replace(Some("ipvs-herald restarting".to_string()));
        let listener = lock(&self.inner.running)
            .listener
            .as_mut()
            .and_then(|l| l.task.take());
        if let Some(t) = listener {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
    }

    /// Withdraw everything from every peer, close each session with Cease / Administrative
    /// Shutdown carrying `message` (RFC 9003), and stop all tasks — within `timeout`; tasks
    /// still running then are aborted.
    pub async fn shutdown(self, message: &str, timeout: Duration) {
        // No reconfiguration may start sessions behind our back.
        let _guard = self.inner.reconfiguring.lock().await;
        self.inner.shutdown.send_replace(Some(message.to_string()));
        let tasks: Vec<JoinHandle<()>> = {
            let mut r = lock(&self.inner.running);
            let mut t: Vec<_> = r.peers.iter_mut().filter_map(|p| p.task.take()).collect();
            t.extend(r.listener.as_mut().and_then(|l| l.task.take()));
            t
        };
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(timeout, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("BGP shutdown did not finish within {timeout:?}; aborting sessions");
            for a in aborts {
                a.abort();
            }
        }
    }
}

/// Session and listener management, and live reconfiguration.
impl SpeakerHandle {
    fn spawn_session(
        &self,
        cfg: &BgpConfig,
        x: Prepared,
        n: usize,
        restart_until: Option<tokio::time::Instant>,
    ) -> PeerEntry {
        let (state_tx, state_rx) = watch::channel(State::Idle);
        let shared = Arc::new(Mutex::new(PeerShared {
            established_at: None,
            prefixes_sent: 0,
            last_error: None,
            graceful_restart: None,
            initial_hold: None,
            bfd: None,
        }));
        let (ctl_tx, ctl_rx) = mpsc::channel(4);
        let (incoming_tx, incoming_rx) = match x.incoming {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let session = Session::new(
            SessionInit {
                local_as: cfg.local_as,
                router_id: cfg.router_id,
                peer: x.peer.clone(),
                seed: seed(n),
                restart_until,
                bfd: Some(self.inner.bfd.clone()),
            },
            self.inner.table.subscribe(),
            self.inner.shutdown.subscribe(),
            incoming_rx,
            Some(ctl_rx),
            state_tx,
            shared.clone(),
            self.inner.metrics.clone(),
            self.inner.routes_ready.subscribe(),
        );
        let task = tasks::session(&self.inner.rt, session);
        PeerEntry {
            cfg: x.peer,
            state: state_rx,
            shared,
            ctl: ctl_tx,
            incoming: incoming_tx,
            task: Some(task),
        }
    }

    /// Bind the listener on `addr` for the passive peers in `table` and start its task.
    fn bind_listener(
        &self,
        addr: std::net::SocketAddr,
        table: Vec<(PeerConfig, mpsc::Sender<TcpStream>)>,
    ) -> Result<ListenerEntry, BgpError> {
        let socket = network::bind_listener(addr, &table)
            .map(Arc::new)
            .map_err(|source| BgpError::Listen { addr, source })?;
        *lock(&self.inner.passive) = table;
        let (stop, stop_rx) = watch::channel(false);
        let task = tasks::listener(
            &self.inner.rt,
            socket.clone(),
            self.inner.passive.clone(),
            self.inner.shutdown.subscribe(),
            stop_rx,
        );
        Ok(ListenerEntry {
            socket,
            stop,
            task: Some(task),
        })
    }

    /// Stop a listener task and wait (bounded) until its socket is closed.
    async fn close_listener(mut l: ListenerEntry) {
        l.stop.send_replace(true);
        let socket = l.socket;
        if let Some(t) = l.task.take() {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        drop(socket);
    }

    /// Apply a new configuration to the running speaker: unchanged peers keep their sessions
    /// untouched, removed peers are closed with Cease / Peer De-configured, added peers start,
    /// peers whose session keys changed are reset with Cease / Other Configuration Change,
    /// peers with only next-hop or timer changes are updated in place (routes re-sent when a
    /// next hop changed), and the listener follows `listen` and the set of passive peers. See
    /// [`reconfig`] for the full rules.
    ///
    /// Errors leave the running configuration in force: an invalid `new`, a listener that
    /// cannot be bound (checked before any session is touched), or a speaker shutting down.
    pub async fn reconfigure(&self, new: BgpConfig) -> Result<ReconfigureReport, BgpError> {
        new.validate()?;
        let _guard = self.inner.reconfiguring.lock().await;
        if self.inner.shutdown.borrow().is_some() {
            return Err(BgpError::ShuttingDown);
        }
        let old = lock(&self.inner.running).cfg.clone();
        let plan = reconfig::plan(&old, &new);
        let changes: std::collections::HashMap<&str, &PeerChange> = plan
            .peers
            .iter()
            .map(|p| (p.name.as_str(), &p.change))
            .collect();
        let restart = |name: &str| {
            matches!(
                changes.get(name),
                Some(PeerChange::Added | PeerChange::Reset { .. })
            )
        };

        // 1. Channels of the sessions to start, and the listener's new peer table.
        let mut prepared: Vec<Prepared> = new
            .peers
            .iter()
            .filter(|p| restart(&p.name))
            .map(Prepared::new)
            .collect();
        let table: Vec<(PeerConfig, mpsc::Sender<TcpStream>)> = {
            let running = lock(&self.inner.running);
            new.peers
                .iter()
                .filter(|p| p.accepts())
                .filter_map(|p| {
                    if restart(&p.name) {
                        prepared
                            .iter()
                            .find(|x| x.peer.name == p.name)
                            .and_then(|x| x.listener_entry())
                    } else {
                        running
                            .peers
                            .iter()
                            .find(|e| e.cfg.name == p.name)
                            .and_then(|e| e.incoming.clone())
                            .map(|tx| (p.clone(), tx))
                    }
                })
                .collect()
        };

        // 2. The listener first: the only step that can fail, before any session is touched.
        let listener = self.reconfigure_listener(&old, &new, table).await?;

        // 3. Close removed and reset sessions.
        let mut closing = Vec::new();
        {
            let mut running = lock(&self.inner.running);
            let mut kept = Vec::new();
            for mut e in std::mem::take(&mut running.peers) {
                let subcode = match changes.get(e.cfg.name.as_str()) {
                    Some(PeerChange::Reset { .. }) => CeaseSubcode::OtherConfigurationChange,
                    None | Some(PeerChange::Removed) => CeaseSubcode::PeerDeconfigured,
                    _ => {
                        kept.push(e);
                        continue;
                    }
                };
                let n = Notification::cease(subcode);
                if e.ctl.try_send(SessionCtl::Stop(n)).is_err() {
                    // Full or closed command queue: the task is wedged or gone.
                    if let Some(t) = &e.task {
                        t.abort();
                    }
                }
                closing.push((e.cfg.clone(), subcode, e.task.take()));
            }
            running.peers = kept;
        }
        let handles: Vec<JoinHandle<()>> = closing
            .iter_mut()
            .filter_map(|(_, _, t)| t.take())
            .collect();
        let aborts: Vec<_> = handles.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(RECONFIGURE_STOP_TIMEOUT, futures::future::join_all(handles))
            .await
            .is_err()
        {
            tracing::warn!(
                "closing sessions did not finish within {RECONFIGURE_STOP_TIMEOUT:?}; aborting them"
            );
            for a in aborts {
                a.abort();
            }
        }
        for (cfg, subcode, _) in &closing {
            if *subcode == CeaseSubcode::PeerDeconfigured {
                self.inner.metrics.remove_peer(&cfg.name);
                self.inner.bfd.remove_metrics(&cfg.name);
            } else if let Some(n) = new.peers.iter().find(|p| p.name == cfg.name) {
                let now = n.families();
                let gone: Vec<Family> = cfg
                    .families()
                    .into_iter()
                    .filter(|f| !now.contains(f))
                    .collect();
                self.inner.metrics.remove_prefixes(&cfg.name, &gone);
            }
        }

        // 4. Start the added and reset sessions; update the others in place.
        let mut running = lock(&self.inner.running);
        let mut n = running.started;
        for x in prepared.drain(..) {
            self.inner
                .metrics
                .init_peer(&x.peer.name, &x.peer.families());
            let e = self.spawn_session(&new, x, n, None);
            n += 1;
            running.peers.push(e);
        }
        running.started = n;
        for e in running.peers.iter_mut() {
            if let Some(PeerChange::Update { resend, .. }) = changes.get(e.cfg.name.as_str()) {
                if let Some(p) = new.peers.iter().find(|p| p.name == e.cfg.name) {
                    e.cfg = p.clone();
                    let cmd = SessionCtl::Update {
                        peer: Box::new(p.clone()),
                        resend: *resend,
                    };
                    if e.ctl.try_send(cmd).is_err() {
                        tracing::warn!(peer = %p.name, "session busy: new settings apply at its next start");
                    }
                }
            }
        }
        // Configuration order, for peer_states().
        let order = |name: &str| new.peers.iter().position(|p| p.name == name);
        running.peers.sort_by_key(|e| order(&e.cfg.name));
        running.cfg = new.clone();
        drop(running);
        Ok(ReconfigureReport {
            plan: plan.clone(),
            listener,
        })
    }

    async fn reconfigure_listener(
        &self,
        old: &BgpConfig,
        new: &BgpConfig,
        table: Vec<(PeerConfig, mpsc::Sender<TcpStream>)>,
    ) -> Result<ListenerChange, BgpError> {
        let current = lock(&self.inner.running).listener.take();
        match current {
            None if table.is_empty() => Ok(ListenerChange::Unchanged),
            None => {
                let l = self.bind_listener(new.listen, table)?;
                lock(&self.inner.running).listener = Some(l);
                Ok(ListenerChange::Started(new.listen))
            }
            Some(l) if table.is_empty() => {
                lock(&self.inner.passive).clear();
                Self::close_listener(l).await;
                Ok(ListenerChange::Stopped)
            }
            Some(l) if old.listen == new.listen => {
                let old_table = lock(&self.inner.passive).clone();
                let same = old_table.len() == table.len()
                    && old_table
                        .iter()
                        .zip(&table)
                        .all(|((a, ta), (b, tb))| a == b && ta.same_channel(tb));
                if let Err(e) = network::update_listener(&l.socket, &old_table, &table) {
                    // Keep the old keys and table: nothing else is changed either.
                    let _ = network::update_listener(&l.socket, &table, &old_table);
                    lock(&self.inner.running).listener = Some(l);
                    return Err(BgpError::Listen {
                        addr: new.listen,
                        source: e,
                    });
                }
                *lock(&self.inner.passive) = table;
                lock(&self.inner.running).listener = Some(l);
                Ok(if same {
                    ListenerChange::Unchanged
                } else {
                    ListenerChange::Updated
                })
            }
            Some(l) => {
                // A new address: close the old socket first (the port may be the same).
                let old_table = lock(&self.inner.passive).clone();
                Self::close_listener(l).await;
                match self.bind_listener(new.listen, table) {
                    Ok(l) => {
                        lock(&self.inner.running).listener = Some(l);
                        Ok(ListenerChange::Rebound(new.listen))
                    }
                    Err(e) => {
                        match self.bind_listener(old.listen, old_table) {
                            Ok(l) => lock(&self.inner.running).listener = Some(l),
                            Err(e2) => tracing::error!(
                                error = %e2,
                                "cannot re-bind the previous BGP listener: passive peers cannot connect"
                            ),
                        }
                        Err(e)
                    }
                }
            }
        }
    }
}
