//! Where the speaker's tasks are spawned, and what flows between them.
//!
//! ```text
//!   SpeakerHandle ──announce/withdraw──▶ watch<RouteTable> ──────────────┐
//!        │ shutdown(msg) ─▶ watch<Option<String>> ─────────────┐         │
//!        │ reconfigure ─▶ mpsc<SessionCtl> ─────────────────┐  │         │
//!        │                                                  ▼  ▼         ▼
//!        │   listener task (only with passive peers)     ┌──────── Session task (per peer) ─────────┐
//!        │   accept ─▶ match peer address ─mpsc<TcpStream>─▶ select! { shutdown, ctl, timers(4),  │
//!        │                                               │           connect future, socket reads, │
//!        │                                               │           incoming conn, table change } │
//!        │                                               │     │ Event                             │
//!        │                                               │     ▼                                   │
//!        │                                               │  Fsm::step ─▶ [Action] ─▶ socket writes, │
//!        │                                               │                timers, Adj-RIB-Out sync │
//!        └── peer_states / wait_established ◀── watch<State> + Mutex<PeerShared> + metrics ───────┘
//! ```
//!
//! - The listener task (`listener`, body in [`super::network`]) accepts connections on
//!   `listen`, refuses addresses that are not passive or `accept_incoming` peers, and hands the
//!   others to their session.
//! - One session task per peer (`session`, body in [`super::session`]) runs the FSM and owns
//!   the peer's connection, timers and Adj-RIB-Out.
//!
//! The speaker ([`super::speaker`]) spawns both, on the runtime it was started in, and keeps
//! their handles to stop them (shutdown, reconfiguration).

use super::network::{run_listener, PassivePeers};
use super::session::Session;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Spawn one peer's session task; it runs until shutdown or a [`super::session::SessionCtl::Stop`].
pub(crate) fn session(rt: &Handle, session: Session) -> JoinHandle<()> {
    rt.spawn(session.run())
}

/// Spawn the listener task on a bound socket; it stops at shutdown or when `stop` turns true.
pub(crate) fn listener(
    rt: &Handle,
    socket: Arc<TcpListener>,
    peers: PassivePeers,
    shutdown: watch::Receiver<Option<String>>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    rt.spawn(run_listener(socket, peers, shutdown, stop))
}
