//! The BGP speaker: announces the binary's route table to every configured peer.
//!
//! # Design choice
//! Wire format: `netgauze-bgp-pkt` 0.13 (messages, attributes, capabilities, NOTIFICATION
//! mapping of its parse errors). Session: our own FSM ([`fsm`]) rather than
//! `netgauze-bgp-speaker` 0.13. Reading its source (0.13.0): it has a full RFC 4271 FSM with
//! collision detection and jittered timers, but it is built around *receiving* (each peer
//! hands received UPDATEs to the application) and has no Adj-RIB-Out, no UPDATE packing, no
//! End-of-RIB or ROUTE-REFRESH re-send; its idle-hold is a fixed number of seconds (no
//! exponential backoff); its Cease / Administrative Shutdown carries no RFC 9003 message; and
//! its default connector is a plain `TcpStream::connect` (TCP-MD5 and GTSM would need our own
//! `ActiveConnect` and listener code anyway). The missing parts are the bulk of this issue and
//! would have to be built around its peer/connection tasks. Our FSM is pure (`State`/`Event`/`Timer`,
//! `step(event) -> actions`), tested without sockets, and driven
//! by one tokio task per peer ([`tasks`]).
//!
//! # Use
//! ```no_run
//! # async fn f(cfg: herald_announcer::bgp::BgpConfig) -> Result<(), herald_announcer::bgp::BgpError> {
//! use herald_announcer::bgp::{RouteAttrs, Speaker};
//! let mut registry = prometheus_client::registry::Registry::default();
//! let speaker = Speaker::start(cfg, &mut registry)?;
//! speaker.announce("192.0.2.80/32".parse().unwrap(), RouteAttrs::default());
//! speaker.withdraw("192.0.2.80/32".parse().unwrap());
//! speaker.shutdown("maintenance", std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Every session keeps an Adj-RIB-Out and sends only the difference to the route table; the
//! table may change at any rate, sessions coalesce intermediate states.
//!
//! # Behaviour
//! - OPEN: MP-BGP for the configured families, ROUTE-REFRESH, 4-octet AS, optionally graceful
//!   restart (R=0, F=0: the peer may keep our routes for `restart_time` while we are away; see
//!   [`PeerConfig::graceful_restart`] for the trade-off). A capability the peer refuses with
//!   an Unsupported Capability NOTIFICATION is left out of the next OPEN (RFC 5492).
//! - UPDATEs: withdrawals first, then announcements grouped by attribute set, each message
//!   packed with as many NLRI as fit in 4096 bytes; End-of-RIB per family after the initial
//!   table; ROUTE-REFRESH re-sends the requested family.
//! - Received UPDATEs are validated and ignored (RFC 7606: attribute-value errors are
//!   treat-as-withdraw and counted; framing, NLRI and MP_REACH/MP_UNREACH errors reset).
//! - Shutdown withdraws everything, then sends Cease / Administrative Shutdown with the
//!   RFC 9003 message, bounded in time.
//! - Metrics: see [`metrics`]; tracing: one `bgp_peer` span per session.
//!
//! # Limitations
//! - No connection-collision detection: an active peer is only connected to (its incoming
//!   connections are refused), a passive peer is only accepted from.
//! - No extended messages (RFC 8654), ADD-PATH, enhanced route refresh or BFD.
//! - ConnectRetry is fixed at 30 s ([`tasks::CONNECT_RETRY`]); failures back off
//!   exponentially (configurable `connect_retry`).

pub mod config;
pub mod fsm;
pub mod metrics;
pub mod msg;
pub mod nexthop;
pub mod rib;
pub mod reconfig;
mod sockopt;
pub mod tasks;
pub mod testutil;

pub use config::{Backoff, BgpConfig, Family, GracefulRestart, NextHop, PeerConfig};
pub use fsm::State;
pub use rib::{Origin, RouteAttrs, RouteTable};

use ipnet::IpNet;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Errors of [`Speaker::start`].
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    /// The configuration is inconsistent (the message names the key).
    #[error("BGP configuration: {0}")]
    Config(String),
    /// Not called from inside a tokio runtime.
    #[error("the BGP speaker must be started inside a tokio runtime")]
    NoRuntime,
    /// The passive listener could not be set up.
    #[error("BGP listener on {addr}: {source}")]
    Listen {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Status of one peer, as returned by [`SpeakerHandle::peer_states`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// Configured name.
    pub name: String,
    /// FSM state.
    pub state: State,
    /// Time since the session reached Established, when it is.
    pub uptime: Option<Duration>,
    /// Prefixes currently announced to the peer.
    pub prefixes_sent: usize,
    /// Latest error (NOTIFICATION sent or received, connection failure), if any.
    pub last_error: Option<String>,
}

/// Mutable per-peer status shared between the session task and the handle.
#[derive(Debug)]
pub(crate) struct PeerShared {
    pub(crate) established_at: Option<tokio::time::Instant>,
    pub(crate) prefixes_sent: usize,
    pub(crate) last_error: Option<String>,
}

#[derive(Debug)]
struct PeerEntry {
    name: String,
    state: watch::Receiver<State>,
    shared: Arc<Mutex<PeerShared>>,
}

#[derive(Debug)]
struct Inner {
    table: watch::Sender<RouteTable>,
    shutdown: watch::Sender<Option<String>>,
    peers: Vec<PeerEntry>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The BGP speaker.
#[derive(Debug)]
pub struct Speaker;

impl Speaker {
    /// Validate `cfg`, register the metrics, and spawn one task per peer (plus a listener when
    /// a peer is passive) on the current tokio runtime.
    pub fn start(cfg: BgpConfig, registry: &mut Registry) -> Result<SpeakerHandle, BgpError> {
        cfg.validate()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| BgpError::NoRuntime)?;
        let metrics = metrics::Metrics::register(registry);
        let (table, _) = watch::channel(RouteTable::new());
        let (shutdown, _) = watch::channel(None);
        let mut peers = Vec::new();
        let mut tasks = Vec::new();
        let mut passive = Vec::new();
        for (i, p) in cfg.peers.iter().enumerate() {
            let (state_tx, state_rx) = watch::channel(State::Idle);
            let shared = Arc::new(Mutex::new(PeerShared {
                established_at: None,
                prefixes_sent: 0,
                last_error: None,
            }));
            let incoming = if p.passive {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                passive.push((p.clone(), tx));
                Some(rx)
            } else {
                None
            };
            metrics.init_peer(&p.name, &p.families());
            let session = tasks::Session::new(
                tasks::SessionInit {
                    local_as: cfg.local_as,
                    router_id: cfg.router_id,
                    peer: p.clone(),
                    seed: seed(i),
                },
                table.subscribe(),
                shutdown.subscribe(),
                incoming,
                state_tx,
                shared.clone(),
                metrics.clone(),
            );
            tasks.push(rt.spawn(session.run()));
            peers.push(PeerEntry {
                name: p.name.clone(),
                state: state_rx,
                shared,
            });
        }
        if !passive.is_empty() {
            let listener =
                tasks::bind_listener(cfg.listen, &passive).map_err(|source| BgpError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
            tasks.push(rt.spawn(tasks::run_listener(listener, passive, shutdown.subscribe())));
        }
        Ok(SpeakerHandle {
            inner: Arc::new(Inner {
                table,
                shutdown,
                peers,
                tasks: Mutex::new(tasks),
            }),
        })
    }
}

fn seed(i: usize) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64) << 32 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
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

    /// The current route table.
    pub fn routes(&self) -> RouteTable {
        self.inner.table.borrow().clone()
    }

    /// Status of every peer, in configuration order.
    pub fn peer_states(&self) -> Vec<PeerStatus> {
        self.inner
            .peers
            .iter()
            .map(|p| {
                let (uptime, prefixes_sent, last_error) = match p.shared.lock() {
                    Ok(s) => (
                        s.established_at.map(|t| t.elapsed()),
                        s.prefixes_sent,
                        s.last_error.clone(),
                    ),
                    Err(_) => (None, 0, Some("status unavailable".into())),
                };
                PeerStatus {
                    name: p.name.clone(),
                    state: *p.state.borrow(),
                    uptime,
                    prefixes_sent,
                    last_error,
                }
            })
            .collect()
    }

    /// Wait until `peer` is Established (true) or `timeout` passes / the peer is unknown (false).
    pub async fn wait_established(&self, peer: &str, timeout: Duration) -> bool {
        self.wait_state(peer, State::Established, timeout).await
    }

    /// Wait until `peer` is in `state` (true) or `timeout` passes / the peer is unknown (false).
    pub async fn wait_state(&self, peer: &str, state: State, timeout: Duration) -> bool {
        let Some(p) = self.inner.peers.iter().find(|p| p.name == peer) else {
            return false;
        };
        let mut rx = p.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == state))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Withdraw everything from every peer, close each session with Cease / Administrative
    /// Shutdown carrying `message` (RFC 9003), and stop all tasks — within `timeout`; tasks
    /// still running then are aborted.
    pub async fn shutdown(self, message: &str, timeout: Duration) {
        self.inner.shutdown.send_replace(Some(message.to_string()));
        let tasks: Vec<JoinHandle<()>> = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return,
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
