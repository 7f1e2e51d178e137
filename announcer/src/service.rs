//! The announcer as one service with an entry point, in the shape of the exporter's
//! (`herald_exporter::register` + `serve`) and mini-redis's `run(listener, shutdown)`:
//! [`start`] takes the `[announcer]` configuration, the IPVS source and the shared metrics
//! registry and returns a [`Handle`]; [`Handle::reconfigure`] applies a SIGHUP's new
//! configuration; [`Handle::shutdown`] drains, withdraws and closes the BGP sessions;
//! [`Handle::status`] (and the admin socket's `status`) reports every VIP group and BGP peer.
//!
//! ```text
//!  start ── single-instance lock, admin socket ── BGP speaker ── stale kernel routes and
//!           addresses removed ── route sink ── control loop (crate::control) ── admin socket served
//! ```
//!
//! The binary keeps what is the process's: signals, the configuration file, the fail-safe
//! watchdog (fed by [`Handle::heartbeat`]) and the last-gasp actions ([`StartOptions::on_fatal`]).

use crate::admin;
use crate::bgp::{BgpError, GracefulStart, Speaker, SpeakerHandle};
use crate::config::{BackendKind, Config};
use crate::control::{Control, ControlLoop, FaultHooks, Heartbeat, LoopSettings, ReloadError};
use crate::group_config::{GroupConfigError, VipAddressMode};
use crate::restart::{marker_path, RestartMarker, Resume};
use crate::sink::kernel::{
    KernelBackend, KernelConfig, KernelError, VipAddresses, WithVipAddresses,
};
use crate::sink::{BgpSink, InterfaceAddrs, RouteSink};
use herald_shared::reader::IpvsSource;
use herald_shared::status::{BfdReport, PeerReport, StatusReport, SCHEMA_VERSION};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An action for the process's last gasp (a panic, a wedged loop): quick, and without the
/// async runtime, which may be the thing that is wedged.
pub type LastGasp = Box<dyn Fn() + Send + Sync>;

/// What the announcer needs from the process around it, besides its configuration.
pub struct StartOptions {
    /// The network namespace whose interface addresses count as this host's for
    /// `vip_address = "require"` (the reader's: `reader.netns`).
    pub local_netns: Option<String>,
    /// The test-only fault hooks (inert unless their environment variable is set).
    pub faults: FaultHooks,
    /// Registers a [`LastGasp`] with the process: the kernel backend hands over the withdrawal
    /// of its routes, which, unlike BGP sessions, outlive the process.
    pub on_fatal: Box<dyn Fn(LastGasp) + Send + Sync>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("local_netns", &self.local_netns)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// Why the announcer did not start. The admin socket it bound is removed again.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The single-instance lock or the admin socket.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error("cannot start the BGP speaker")]
    Speaker(#[source] BgpError),
    #[error("cannot set up the kernel route backend")]
    KernelBackend(#[source] KernelError),
    #[error("cannot open rtnetlink for vip_address = \"manage\"")]
    ManagedAddresses(#[source] KernelError),
    #[error("announcer.backend = \"bgp\" needs an [announcer.bgp] section")]
    NoBgpSection,
    #[error("announcer: {0}")]
    Groups(GroupConfigError),
}

/// Why a new configuration was not applied; the running one stays in force (except for what
/// the message says was done).
#[derive(Debug, thiserror::Error)]
pub enum ReconfigureError {
    #[error("announcer.admin_socket: cannot bind {}", path.display())]
    AdminSocket {
        path: std::path::PathBuf,
        #[source]
        error: admin::AdminError,
    },
    #[error("announcer.bgp: {0}")]
    Bgp(BgpError),
    #[error("announcer.vip_groups: {0}")]
    Groups(ReloadError),
}

/// How long a `status` waits for the control loop: a wedged loop must not hang the caller (the
/// admin client, the status page).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Why no [`StatusReport`] could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("the announcer's control loop is gone")]
    LoopGone,
    #[error("the announcer's control loop did not answer within {0:?}")]
    Timeout(Duration),
}

/// [`Handle::status`] without the handle: see [`Handle::status_source`].
#[derive(Debug, Clone)]
pub struct StatusSource {
    control: mpsc::Sender<Control>,
    speaker: Option<SpeakerHandle>,
}

impl StatusSource {
    /// What [`Handle::status`] answers.
    pub async fn status(&self) -> Result<StatusReport, StatusError> {
        status_report(&self.control, self.speaker.as_ref()).await
    }
}

/// Why the kernel routes of an earlier run could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("cannot start a runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open the kernel route backend")]
    Open(#[source] KernelError),
    #[error(transparent)]
    Reconcile(KernelError),
}

/// The running announcer: the BGP speaker (if any), the control loop and the admin socket.
pub struct Handle {
    /// The configuration in force: the one started with, with each reload's live keys applied.
    config: Config,
    speaker: Option<SpeakerHandle>,
    control: mpsc::Sender<Control>,
    admin_stop: Option<oneshot::Sender<()>>,
    /// Where the admin socket's requests go (cloned for a rebound socket).
    admin_tx: mpsc::Sender<admin::Envelope>,
    /// The control loop's proof of life, for the watchdog thread.
    heartbeat: Heartbeat,
    /// The single-instance locks of every admin socket path this process has served, held until
    /// the announcer stops (so that no second instance takes over a path it moved away from).
    locks: Vec<admin::InstanceLock>,
    /// `ipvs-herald stop` requests accepted on the admin socket (`true`: keep routes), for the
    /// process to act on ([`Handle::take_stop_requests`]).
    stop_requests: Option<mpsc::Receiver<bool>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("admin_socket", &self.config.admin_socket)
            .field("bgp", &self.speaker.is_some())
            .finish_non_exhaustive()
    }
}

/// Start the announcer for `config` (already validated), registering its metrics into
/// `registry`.
///
/// The single-instance lock and the admin socket come first, before anything else is touched
/// (BGP listener, kernel routes, managed addresses): a second instance fails without
/// disturbing the running one. The admin socket is removed again if a later step fails.
pub async fn start(
    config: Config,
    source: Arc<dyn IpvsSource>,
    registry: &mut Registry,
    options: StartOptions,
) -> Result<Handle, StartError> {
    let lock = admin::InstanceLock::acquire(&config.admin_socket)?;
    let listener = admin::bind(&config.admin_socket)?;
    let admin_socket = config.admin_socket.clone();
    match start_locked(config, source, registry, listener, options).await {
        Ok(mut started) => {
            started.locks.push(lock);
            Ok(started)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&admin_socket);
            Err(e)
        }
    }
}

async fn start_locked(
    a: Config,
    source: Arc<dyn IpvsSource>,
    registry: &mut Registry,
    listener: tokio::net::UnixListener,
    options: StartOptions,
) -> Result<Handle, StartError> {
    let resume = match (&a.bgp, a.backend) {
        (Some(b), BackendKind::Bgp) => graceful_resume(&a, b),
        _ => None,
    };
    let speaker = match &a.bgp {
        Some(b) => Some(
            Speaker::start_with(b.clone(), registry, resume.as_ref().map(|(_, g)| g.clone()))
                .map_err(StartError::Speaker)?,
        ),
        None => None,
    };
    let kept = resume
        .as_ref()
        .map(|(r, _)| r.announced.clone())
        .unwrap_or_default();
    let sink = route_sink(&a, speaker.as_ref(), &options, &kept).await?;
    let control_loop = ControlLoop::new(
        a.vip_groups.clone(),
        source,
        sink,
        Arc::new(InterfaceAddrs::new(options.local_netns.clone())),
        LoopSettings {
            drain_time: a.drain_time,
            maintenance_file: a.maintenance_file.clone(),
            state_file: Some(a.state_file.clone()),
        },
        registry,
    )
    .map_err(StartError::Groups)?
    .with_fault_hooks(options.faults);
    let control_loop = match (&resume, &speaker) {
        (Some((r, _)), Some(s)) => {
            let (decided, decided_rx) = oneshot::channel();
            let s = s.clone();
            tokio::spawn(async move {
                if decided_rx.await.is_ok() {
                    s.release_routes();
                }
            });
            control_loop.with_graceful_start(&r.announced, decided)
        }
        _ => control_loop,
    };
    let heartbeat = control_loop.heartbeat();
    let (control, control_rx) = mpsc::channel(16);
    tokio::spawn(control_loop.run(control_rx));

    let (admin_tx, mut admin_rx) = mpsc::channel::<admin::Envelope>(8);
    let admin_stop = serve_admin(listener, admin_tx.clone());
    let forward = control.clone();
    let peers = speaker.clone();
    let backend = a.backend;
    let (stop_tx, stop_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some((req, reply)) = admin_rx.recv().await {
            if let admin::Request::Stop { keep_routes } = req {
                let r = stop_reply(keep_routes, backend, peers.as_ref());
                if r.ok && stop_tx.try_send(keep_routes).is_err() {
                    let _ = reply.send(admin::Reply {
                        ok: false,
                        message: "a stop is already under way".into(),
                        status: None,
                    });
                    continue;
                }
                let _ = reply.send(r);
            } else if req == admin::Request::Status {
                // Off this task: a wedged loop holds the status up, not the other requests.
                let (control, peers) = (forward.clone(), peers.clone());
                tokio::spawn(async move {
                    let _ = reply.send(status_reply(status_report(&control, peers.as_ref()).await));
                });
            } else if forward.send(Control::Admin((req, reply))).await.is_err() {
                break;
            }
        }
    });
    tracing::info!(
        groups = a.vip_groups.len(),
        peers = a.bgp.as_ref().map(|b| b.peers.len()).unwrap_or(0),
        backend = ?a.backend,
        admin_socket = %a.admin_socket.display(),
        "announcer started"
    );
    Ok(Handle {
        config: a,
        speaker,
        control,
        admin_stop: Some(admin_stop),
        admin_tx,
        heartbeat,
        locks: Vec::new(),
        stop_requests: Some(stop_rx),
    })
}

/// The graceful restart this start continues, from the marker a stop for restart left beside
/// the state file (taken: it serves one start). Only peers still configured with
/// `graceful_restart` count. `None`: a normal start (no marker, a bad one, or every restart
/// time over).
fn graceful_resume(a: &Config, b: &crate::bgp::BgpConfig) -> Option<(Resume, GracefulStart)> {
    let path = marker_path(&a.state_file);
    let marker = match RestartMarker::take(&path) {
        Ok(Some(m)) => m,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the graceful-restart marker: a normal start");
            return None;
        }
    };
    let away = crate::restart::unix_now() - marker.stopped_at;
    let Some(mut resume) = marker.resume(crate::restart::unix_now()) else {
        tracing::warn!(
            away_seconds = away,
            peers = ?marker.peers,
            "graceful restart: the restart time is over (or the clock went back); a normal start: routers flush our stale routes"
        );
        return None;
    };
    resume.peers.retain(|name, _| {
        b.peers
            .iter()
            .any(|p| &p.name == name && p.graceful_restart.is_some())
    });
    let now = tokio::time::Instant::now();
    let restart_until: std::collections::BTreeMap<_, _> = resume
        .peers
        .iter()
        .map(|(n, left)| (n.clone(), now + *left))
        .collect();
    let release_by = restart_until.values().max().copied()?;
    tracing::info!(
        away_seconds = away,
        peers = ?resume.peers.keys().collect::<Vec<_>>(),
        announced = ?resume.announced,
        "graceful restart: OPENs carry the Restart State bit; routes and End-of-RIB wait for the first health check"
    );
    Some((
        resume,
        GracefulStart {
            restart_until,
            release_by,
        },
    ))
}

/// The admin socket's answer to `stop` (and whether it is accepted).
fn stop_reply(
    keep_routes: bool,
    backend: BackendKind,
    speaker: Option<&SpeakerHandle>,
) -> admin::Reply {
    let reply = |ok, message: String| admin::Reply {
        ok,
        message,
        status: None,
    };
    if !keep_routes {
        return reply(
            true,
            "stopping: draining, withdrawing, closing the BGP sessions".into(),
        );
    }
    if backend != BackendKind::Bgp {
        return reply(
            false,
            "--keep-routes is BGP graceful restart: with backend = \"kernel\" the routing daemon's own graceful restart applies; use a plain stop".into(),
        );
    }
    let peers = speaker.map(|s| s.graceful_peers()).unwrap_or_default();
    if peers.is_empty() {
        return reply(
            false,
            "no Established BGP session negotiated graceful restart (graceful_restart on the peer, and the router's support): nothing would keep the routes; use a plain stop".into(),
        );
    }
    let list: Vec<String> = peers.iter().map(|(n, t)| format!("{n} ({t}s)")).collect();
    reply(
        true,
        format!(
            "stopping for a restart: routes kept as stale by {}; start ipvs-herald again within that time",
            list.join(", ")
        ),
    )
}

/// The route sink `a.backend` names, with managed VIP addresses when a group asks for them.
///
/// Every group starts withdrawn (a VIP is announced only after `rise` passed checks), so
/// whatever an earlier run left in the kernel is stale: it is removed before starting.
async fn route_sink(
    a: &Config,
    speaker: Option<&SpeakerHandle>,
    options: &StartOptions,
    graceful: &BTreeSet<String>,
) -> Result<Arc<dyn RouteSink>, StartError> {
    let manages = a
        .vip_groups
        .iter()
        .any(|g| g.vip_address == VipAddressMode::Manage);
    let managed_interfaces: std::collections::BTreeSet<&str> = a
        .vip_groups
        .iter()
        .filter(|g| g.vip_address == VipAddressMode::Manage)
        .map(|g| g.manage_interface.as_str())
        .collect();
    // After a graceful restart the groups still announced at the routers keep their addresses:
    // IPVS goes on forwarding for them.
    let keep_on = |iface: &str| -> Vec<ipnet::IpNet> {
        a.vip_groups
            .iter()
            .filter(|g| g.vip_address == VipAddressMode::Manage && g.manage_interface == iface)
            .filter(|g| graceful.contains(&g.name))
            .flat_map(|g| g.prefixes.iter().copied())
            .collect()
    };
    let reconcile_addresses = |addrs: VipAddresses| async move {
        for iface in &managed_interfaces {
            match addrs.reconcile(iface, &keep_on(iface)).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(
                        interface = iface,
                        ?removed,
                        "removed stale managed VIP addresses"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(interface = iface, error = %e, "cannot reconcile managed VIP addresses")
                }
            }
        }
        addrs
    };
    Ok(match (a.backend, speaker) {
        (BackendKind::Kernel, _) => {
            let backend = KernelBackend::new(a.kernel.clone())
                .await
                .map_err(StartError::KernelBackend)?;
            // Kernel routes outlive the process, unlike BGP sessions.
            let kernel = a.kernel.clone();
            (options.on_fatal)(Box::new(move || withdraw_kernel_routes(kernel.clone())));
            match backend.reconcile(&[]).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(?removed, "removed stale VIPs of an earlier run")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot reconcile the kernel backend"),
            }
            let addrs = reconcile_addresses(backend.addresses().clone()).await;
            let backend: Arc<dyn RouteSink> = Arc::new(backend);
            if manages {
                // Address removals wait out each group's address_linger.
                Arc::new(WithVipAddresses::new(backend, addrs))
            } else {
                backend
            }
        }
        (BackendKind::Bgp, Some(s)) if manages => {
            let addrs = VipAddresses::open(a.kernel.netns.clone(), a.kernel.protocol)
                .await
                .map_err(StartError::ManagedAddresses)?;
            let addrs = reconcile_addresses(addrs).await;
            Arc::new(WithVipAddresses::new(
                Arc::new(BgpSink::new(s.clone())),
                addrs,
            ))
        }
        (BackendKind::Bgp, Some(s)) => Arc::new(BgpSink::new(s.clone())),
        (BackendKind::Bgp, None) => return Err(StartError::NoBgpSection),
    })
}

/// Every VIP group (from the control loop, within [`STATUS_TIMEOUT`]) and every BGP peer.
async fn status_report(
    control: &mpsc::Sender<Control>,
    speaker: Option<&SpeakerHandle>,
) -> Result<StatusReport, StatusError> {
    let ask = async {
        let (tx, rx) = oneshot::channel();
        control
            .send(Control::Status(tx))
            .await
            .map_err(|_| StatusError::LoopGone)?;
        rx.await.map_err(|_| StatusError::LoopGone)
    };
    let groups = tokio::time::timeout(STATUS_TIMEOUT, ask)
        .await
        .map_err(|_| StatusError::Timeout(STATUS_TIMEOUT))??;
    let peers = speaker
        .map(|s| s.peer_states().into_iter().map(peer_report).collect())
        .unwrap_or_default();
    Ok(StatusReport {
        schema: SCHEMA_VERSION,
        generated_at: crate::control::unix_now(),
        groups,
        peers,
    })
}

fn peer_report(p: crate::bgp::PeerStatus) -> PeerReport {
    PeerReport {
        name: p.name,
        address: p.address.to_string(),
        state: p.state.as_str().to_string(),
        uptime_seconds: p.uptime.map(|d| d.as_secs_f64()),
        prefixes_sent: u64::try_from(p.prefixes_sent).unwrap_or(u64::MAX),
        last_error: p.last_error,
        bfd: p.bfd.map(|b| b.status.state.as_str().to_string()),
        bfd_session: p.bfd.map(|b| BfdReport {
            state: b.status.state.as_str().to_string(),
            remote_state: b.status.remote.as_str().to_string(),
            tx_interval_seconds: b.tx_interval.as_secs_f64(),
            detection_time_seconds: b.detection_time.as_secs_f64(),
            diagnostic: b.status.diag.as_str().to_string(),
        }),
        initial_table_held: p.initial_hold.map(|h| h.as_str().to_string()),
    }
}

/// The admin socket's answer to `status`.
fn status_reply(r: Result<StatusReport, StatusError>) -> admin::Reply {
    match r {
        Ok(report) => admin::Reply {
            ok: true,
            message: format!(
                "{} VIP groups, {} BGP peers",
                report.groups.len(),
                report.peers.len()
            ),
            status: Some(report),
        },
        Err(e) => admin::Reply {
            ok: false,
            message: e.to_string(),
            status: None,
        },
    }
}

/// Start serving the admin socket `listener`; returns the sender that stops it.
fn serve_admin(
    listener: tokio::net::UnixListener,
    admin_tx: mpsc::Sender<admin::Envelope>,
) -> oneshot::Sender<()> {
    let (admin_stop, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(admin::serve(listener, admin_tx, async move {
        let _ = stop_rx.await;
    }));
    admin_stop
}

impl Handle {
    /// The control loop's proof of life, for a watchdog outside the async runtime.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Every VIP group and BGP peer as they are now. The control loop is asked over its
    /// channel, as the admin socket's `status` does, for at most [`STATUS_TIMEOUT`].
    pub async fn status(&self) -> Result<StatusReport, StatusError> {
        status_report(&self.control, self.speaker.as_ref()).await
    }

    /// The `ipvs-herald stop` requests the admin socket accepted (`true`: keep routes, see
    /// [`Handle::stop_for_restart`]); `None` after the first call.
    pub fn take_stop_requests(&mut self) -> Option<mpsc::Receiver<bool>> {
        self.stop_requests.take()
    }

    /// A cloneable [`Handle::status`] for a task that cannot borrow the handle (the status
    /// page's HTTP requests). It answers as long as the announcer runs.
    pub fn status_source(&self) -> StatusSource {
        StatusSource {
            control: self.control.clone(),
            speaker: self.speaker.clone(),
        }
    }

    /// The configuration in force: what [`start`] got, with the live keys of every successful
    /// [`Handle::reconfigure`] applied (`vip_groups`, `bgp` while the section stays,
    /// `admin_socket`, `shutdown_drain_time`, `shutdown_timeout`); the other keys keep their
    /// values until a restart.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Apply the live part of `new` (already validated): admin socket, BGP sessions, VIP
    /// groups — in that order, so that the steps that can fail (binding sockets) come before
    /// anything is changed for good: a new admin socket is bound first (under its own
    /// single-instance lock, and with the same care as at start: never replacing a live socket
    /// or something that is not a socket) and only replaces the old one once the BGP
    /// reconfiguration (atomic itself) succeeded. On an error the configuration in force stays
    /// as it was.
    pub async fn reconfigure(&mut self, new: Config) -> Result<(), ReconfigureError> {
        let old = &self.config;
        let new_admin = if new.admin_socket != old.admin_socket {
            let context = |error| ReconfigureError::AdminSocket {
                path: new.admin_socket.clone(),
                error,
            };
            let lock_path = admin::InstanceLock::path_for(&new.admin_socket);
            let lock = if self.locks.iter().any(|l| l.path() == lock_path) {
                None
            } else {
                Some(admin::InstanceLock::acquire(&new.admin_socket).map_err(context)?)
            };
            let listener = admin::bind(&new.admin_socket).map_err(context)?;
            Some((listener, lock))
        } else {
            None
        };
        if let (Some(speaker), Some(bgp)) = (&self.speaker, &new.bgp) {
            match speaker.reconfigure(bgp.clone()).await {
                Ok(report) if report.plan.is_empty() => {
                    tracing::info!("SIGHUP: BGP configuration unchanged, every session kept");
                }
                Ok(report) => {
                    for line in report.lines() {
                        tracing::info!("SIGHUP: BGP {line}");
                    }
                }
                Err(e) => {
                    if new_admin.is_some() {
                        let _ = std::fs::remove_file(&new.admin_socket);
                    }
                    return Err(ReconfigureError::Bgp(e));
                }
            }
        }
        if let Some((listener, lock)) = new_admin {
            self.locks.extend(lock);
            if let Some(stop) = self.admin_stop.take() {
                let _ = stop.send(());
            }
            let _ = std::fs::remove_file(&old.admin_socket);
            self.admin_stop = Some(serve_admin(listener, self.admin_tx.clone()));
            tracing::info!(
                from = %old.admin_socket.display(),
                to = %new.admin_socket.display(),
                "SIGHUP: admin socket moved"
            );
        }
        self.reload(new.vip_groups.clone())
            .await
            .map_err(ReconfigureError::Groups)?;
        // What was applied live; restart-only keys keep their running values.
        let r = &mut self.config;
        if r.bgp.is_some() && new.bgp.is_some() {
            r.bgp = new.bgp;
        }
        r.vip_groups = new.vip_groups;
        r.admin_socket = new.admin_socket;
        r.shutdown_drain_time = new.shutdown_drain_time;
        r.shutdown_timeout = new.shutdown_timeout;
        Ok(())
    }

    async fn reload(
        &self,
        groups: Vec<crate::group_config::VipGroupConfig>,
    ) -> Result<(), ReloadError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Reload(groups, tx))
            .await
            .map_err(|_| ReloadError::LoopGone)?;
        rx.await.map_err(|_| ReloadError::LoopGone)?
    }

    /// Stop for a graceful restart (RFC 4724), keeping the routes at the routers: write the
    /// marker (`crate::restart`) with the announced groups and the peers that negotiated
    /// graceful restart, then close those sessions without withdrawing and without a
    /// NOTIFICATION (the others withdraw and Cease as on shutdown); within `shutdown_timeout`.
    /// Nothing is drained. When no session negotiated graceful restart, or the marker cannot be
    /// written, this is [`Handle::shutdown`] instead (the next process could not tell the
    /// routers it restarted). Returns whether the routes were kept.
    pub async fn stop_for_restart(mut self) -> bool {
        let Some(speaker) = self.speaker.clone() else {
            tracing::warn!("no BGP speaker: a stop for restart is a plain stop");
            self.shutdown().await;
            return false;
        };
        if let Some(s) = self.admin_stop.take() {
            let _ = s.send(());
        }
        let peers: std::collections::BTreeMap<String, u16> =
            speaker.graceful_peers().into_iter().collect();
        if peers.is_empty() {
            tracing::warn!(
                "no BGP session negotiated graceful restart: stopping with a drain instead"
            );
            self.shutdown().await;
            return false;
        }
        let announced: BTreeSet<String> = match self.status().await {
            Ok(r) => r
                .groups
                .iter()
                .filter(|g| g.phase == herald_shared::status::GroupPhase::Announced)
                .map(|g| g.name.clone())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the announced VIP groups: stopping with a drain instead");
                self.shutdown().await;
                return false;
            }
        };
        let marker = RestartMarker::new(crate::restart::unix_now(), peers.clone(), announced);
        let path = marker_path(&self.config.state_file);
        let stored = tokio::task::spawn_blocking(move || marker.store(&path)).await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot write the graceful-restart marker: stopping with a drain instead");
                self.shutdown().await;
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "graceful-restart marker task failed: stopping with a drain instead");
                self.shutdown().await;
                return false;
            }
        }
        tracing::info!(
            ?peers,
            "stopping for a restart: BGP sessions close without withdrawing"
        );
        speaker
            .stop_for_restart(self.config.shutdown_timeout.max(Duration::from_secs(1)))
            .await;
        let _ = std::fs::remove_file(&self.config.admin_socket);
        true
    }

    /// Drain every group for `shutdown_drain_time`, withdraw, then close the BGP sessions with
    /// Cease / Administrative Shutdown; everything within `shutdown_timeout`.
    pub async fn shutdown(mut self) {
        let cfg = &self.config;
        let deadline = tokio::time::Instant::from_std(crate::health::instant_after(
            tokio::time::Instant::now().into_std(),
            cfg.shutdown_timeout,
        ));
        if let Some(s) = self.admin_stop.take() {
            let _ = s.send(());
        }
        let (done, done_rx) = oneshot::channel();
        let asked = self
            .control
            .send(Control::Shutdown {
                drain_time: cfg.shutdown_drain_time,
                done,
            })
            .await
            .is_ok();
        if asked && tokio::time::timeout_at(deadline, done_rx).await.is_err() {
            tracing::warn!("VIP groups did not finish draining within shutdown_timeout");
        }
        if let Some(speaker) = self.speaker {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            speaker
                .shutdown("ipvs-herald stopping", left.max(Duration::from_secs(1)))
                .await;
        }
        let _ = std::fs::remove_file(&cfg.admin_socket);
    }
}

/// The kernel backend's last gasp: remove every route (or address) of ours, from a runtime of
/// its own (the daemon's may be the thing that is wedged). Printed to standard error, not
/// logged: the process is about to abort and the log writer may be what is stuck.
fn withdraw_kernel_routes(cfg: KernelConfig) {
    match remove_kernel_routes(cfg) {
        Ok(removed) => eprintln!("ipvs-herald: withdrew kernel routes {removed:?}"),
        Err(e) => eprintln!("ipvs-herald: cannot withdraw kernel routes: {}", chain(&e)),
    }
}

/// Remove every kernel route or VIP address of ours that the kernel backend `cfg` would
/// install, on a runtime of its own (blocking): the last gasp, and `ipvs-herald flush` after the
/// daemon has stopped.
pub fn remove_kernel_routes(cfg: KernelConfig) -> Result<Vec<ipnet::IpNet>, FlushError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FlushError::Runtime)?;
    rt.block_on(async {
        let backend = KernelBackend::new(cfg).await.map_err(FlushError::Open)?;
        backend.reconcile(&[]).await.map_err(FlushError::Reconcile)
    })
}

/// An error with its sources, `outer: inner: …`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        next = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::tests::FakeIpvs;
    use crate::control::FaultHooks;
    use herald_shared::status::GroupPhase;
    use std::sync::Mutex;

    fn options() -> StartOptions {
        StartOptions {
            local_netns: None,
            faults: FaultHooks::default(),
            on_fatal: Box::new(|_| {}),
        }
    }

    /// A director with one group (two of three destinations healthy) and one BGP peer nobody
    /// answers for: `Handle::status` and the admin socket's `status` report both, from the
    /// running loop and speaker.
    #[tokio::test]
    async fn status_reports_the_running_groups_and_peers() {
        let dir = std::env::temp_dir().join(format!("herald-svc-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = herald_test_support::free_port();
        let config: Config = toml::from_str(&format!(
            r#"
backend = "bgp"
admin_socket = "{dir}/admin.sock"
state_file = "{dir}/state.json"
shutdown_drain_time = "0s"
[bgp]
router_id = "192.0.2.1"
local_as = 65001
[[bgp.peers]]
name = "tor-a"
address = "127.0.0.1"
remote_as = 65000
port = {port}
[[vip_groups]]
name = "web"
prefixes = ["192.0.2.10/32"]
interval = "100ms"
rise = 2
fall = 2
pool = {{ down_count = 2, up_count = 2 }}
vip_address = "ignore"
"#,
            dir = dir.display()
        ))
        .unwrap();
        config.validate().unwrap();
        let admin_socket = config.admin_socket.clone();
        let handle = start(
            config,
            Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 0])))),
            &mut Registry::default(),
            options(),
        )
        .await
        .unwrap();

        let started = std::time::Instant::now();
        let report = loop {
            let r = handle.status().await.unwrap();
            if r.groups[0].phase == GroupPhase::Announced {
                break r;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "{r:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(report.schema, SCHEMA_VERSION);
        let web = &report.groups[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.vips, ["192.0.2.10/32"]);
        assert_eq!(web.health, "up");
        assert!(
            web.drained_by.is_empty() && web.reasons.is_empty(),
            "{web:?}"
        );
        let t = web.last_transition.as_ref().unwrap();
        assert_eq!(
            (t.from, t.to),
            (GroupPhase::Withdrawn, GroupPhase::Announced)
        );
        assert_eq!(t.reason, "healthy: every required pool is up");
        assert_eq!(web.services.len(), 1);
        let s = &web.services[0];
        assert_eq!(s.service, "TCP 192.0.2.10:80");
        assert!(s.present && s.up);
        assert_eq!((s.healthy, s.configured), (2, 3));
        assert_eq!((s.down_threshold, s.up_threshold), (2, 2));
        assert_eq!(report.peers.len(), 1);
        let p = &report.peers[0];
        assert_eq!(
            (p.name.as_str(), p.address.as_str()),
            ("tor-a", "127.0.0.1")
        );
        assert_ne!(p.state, "established");
        assert_eq!(
            (p.uptime_seconds, p.prefixes_sent, p.bfd.as_ref()),
            (None, 0, None)
        );

        // The admin socket answers with the same report.
        let reply = admin::request(&admin_socket, &admin::Request::Status)
            .await
            .unwrap();
        let over_socket = reply.into_report().unwrap();
        assert_eq!(over_socket.groups, report.groups);
        assert_eq!(over_socket.peers[0].name, "tor-a");

        handle.shutdown().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A wedged loop costs the caller [`STATUS_TIMEOUT`], not a hang; a stopped one an error.
    #[tokio::test(start_paused = true)]
    async fn status_of_a_wedged_or_gone_loop_is_an_error() {
        let (tx, rx) = mpsc::channel(1);
        let asked = tokio::time::Instant::now();
        assert_eq!(
            status_report(&tx, None).await,
            Err(StatusError::Timeout(STATUS_TIMEOUT))
        );
        assert_eq!(asked.elapsed(), STATUS_TIMEOUT);
        drop(rx);
        assert_eq!(status_report(&tx, None).await, Err(StatusError::LoopGone));
    }
}
