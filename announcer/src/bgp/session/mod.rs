//! One peer's session task: the I/O around the pure FSM ([`super::fsm`]).
//!
//! [`Session::run`] is the task ([`super::tasks`] spawns it). Its select loop turns shutdown,
//! reconfiguration commands ([`SessionCtl`]), incoming connections from the listener, the four
//! timers, table changes, socket reads and the connect attempt into FSM [`Event`]s;
//! [`Fsm::step`] decides, and the submodules carry the [`Action`](super::fsm::Action)s out:
//! - `actions`: connect, drop, timers, the incoming connections the FSM accepts, holds or
//!   rejects, the Adj-RIB-Out sends it asks for;
//! - `messages`: message I/O, from a received frame to its event, and every write (OPEN,
//!   KEEPALIVE, UPDATEs, End-of-RIB, NOTIFICATION), each bounded by [`WRITE_TIMEOUT`].
//!
//! The task owns the connection (a `FramedRead` over the read half plus the write half), the
//! four timers (as deadlines on tokio's clock, so tests can pause time), and the session's
//! Adj-RIB-Out. A failed write is a `TcpConnectionFails` event. What the speaker's handle reads
//! (state, uptime, prefixes sent, last error) goes out through a `watch` and `PeerShared`.

use super::config::{Family, PeerConfig};
use super::fsm::{Event, Fsm, FsmConfig, State, Timer};
use super::metrics::Metrics;
use super::packet::{self, Notification, PeerOpen};
use super::rib::{AdjRibOut, RouteTable};
use futures::StreamExt;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, info_span, warn, Instrument};

mod actions;
#[cfg(test)]
mod graceful_tests;
mod messages;
#[cfg(test)]
mod tests;

/// Bound on one socket write (a peer that stops reading must not wedge the task).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// ConnectRetry time: bound on one TCP connection attempt (RFC 4271 suggests 120 s; a short
/// bound makes an unreachable router be retried with backoff instead).
pub const CONNECT_RETRY: Duration = Duration::from_secs(30);

/// Table changes are collected for this long before a session sends them, so a burst of
/// changes becomes one diff and densely packed UPDATEs.
pub const SYNC_DELAY: Duration = Duration::from_millis(25);

/// After a session closed for a graceful restart, BFD keeps running this long before its
/// AdminDown: the router must see the BGP session end (and start helping) before it sees BFD go
/// down, or a router that takes every BFD Down of an Established session as a failure (FRR
/// with plain `neighbor X bfd`) flushes our routes. Seen in the FRR test: without the pause the
/// two raced at the router, and FRR kept or flushed the routes run by run.
pub const RESTART_BFD_GRACE: Duration = Duration::from_millis(500);

/// Static session parameters.
#[derive(Debug, Clone)]
pub struct SessionInit {
    /// Local AS.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The peer.
    pub peer: PeerConfig,
    /// Seed for the backoff jitter.
    pub seed: u64,
    /// After a graceful restart (RFC 4724): until this instant (the end of the restart time
    /// the peer holds our routes for), OPENs carry the Restart State bit and the Forwarding
    /// State bit of every family. Cleared once the session is Established; `None` on a normal
    /// start.
    pub restart_until: Option<Instant>,
    /// The speaker's BFD service, for a peer with `bfd` enabled.
    pub bfd: Option<crate::bfd::Bfd>,
}

/// Commands from the speaker to one running session (live reconfiguration).
#[derive(Debug)]
pub enum SessionCtl {
    /// Close the session with this NOTIFICATION (sent when OPEN was exchanged) and stop the
    /// task for good (peer removed, or reset to be replaced by a new session).
    Stop(Notification),
    /// Stop for a graceful restart and stop the task for good: an Established session whose
    /// peer negotiated graceful restart is closed without withdrawing and without a
    /// NOTIFICATION (the peer keeps our routes as stale); any other session is closed as on
    /// shutdown (withdraw, Cease / Administrative Shutdown).
    StopForRestart,
    /// Replace the peer's settings that need no new session (next hops, keepalive interval,
    /// backoff); with `resend`, send every announced route again (next hops changed).
    Update {
        /// The new peer configuration (its session keys equal the running ones).
        peer: Box<PeerConfig>,
        /// Re-send the Adj-RIB-Out as UPDATEs.
        resend: bool,
    },
}

type ConnectFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<TcpStream>> + Send>>;

struct Conn {
    reader: FramedRead<OwnedReadHalf, packet::BgpFraming>,
    writer: OwnedWriteHalf,
    local: IpAddr,
}

/// Inputs the select loop turns into FSM events or work.
enum Input {
    Fsm(Event),
    Frame(Result<bytes::BytesMut, packet::FramingError>),
    Closed,
    Connected(io::Result<TcpStream>),
    Incoming(TcpStream),
    Ctl(SessionCtl),
    TableChanged,
    Shutdown(String),
    /// The first health decision is in ([`super::speaker::SpeakerHandle::release_routes`]):
    /// the deferred initial table and End-of-RIB may go out.
    RoutesReady,
    Bfd(crate::bfd::Status),
}

/// One peer's session.
pub struct Session {
    init: SessionInit,
    fsm: Fsm,
    table: watch::Receiver<RouteTable>,
    shutdown: watch::Receiver<Option<String>>,
    incoming: Option<mpsc::Receiver<TcpStream>>,
    ctl: Option<mpsc::Receiver<SessionCtl>>,
    state_tx: watch::Sender<State>,
    shared: Arc<Mutex<PeerShared>>,
    metrics: Metrics,
    timers: [Option<Instant>; 4],
    conn: Option<Conn>,
    connecting: Option<ConnectFuture>,
    pending: VecDeque<Event>,
    rib: AdjRibOut,
    peer_open: Option<PeerOpen>,
    ctx: BgpParsingContext,
    families: Vec<Family>,
    /// Capabilities the peer refused (RFC 5492 §5), left out of later OPENs
    /// ([`super::fsm::Action::SuppressCapabilities`]).
    suppress: Vec<u8>,
    /// Families with a pending ROUTE-REFRESH request.
    refresh: Vec<Family>,
    /// When to send the pending table changes.
    sync_at: Option<Instant>,
    /// The incoming connection of the [`Event::IncomingConnection`] being handled.
    arrived: Option<TcpStream>,
    /// A colliding incoming connection kept until the peer's OPEN on the current (outgoing)
    /// connection tells its BGP identifier ([`super::fsm::Action::HoldIncoming`]).
    held: Option<TcpStream>,
    /// True once the route table reflects a health decision. After a graceful restart it
    /// starts false: the initial UPDATEs and End-of-RIB wait for it, so that the peer never
    /// drops a stale route of a healthy pool, nor keeps one of a dead pool.
    routes_ready: watch::Receiver<bool>,
    /// Established, with the initial table and End-of-RIB waiting for `routes_ready` and for
    /// BFD to be Up (`bfd_open`).
    initial_pending: bool,
    /// `routes_ready` said true, or its sender is gone (which releases as well).
    released: bool,
    /// What [`PeerShared::initial_hold`] last said (written only on change).
    published_hold: Option<InitialHold>,
    /// The peer's BFD session (`bfd` enabled); stopped with AdminDown when dropped.
    bfd: Option<crate::bfd::SessionHandle>,
    bfd_state: Option<watch::Receiver<crate::bfd::Status>>,
    /// BFD is Up, or went down only because the peer held it AdminDown (RFC 5882 §4.3.2):
    /// routes may be announced.
    bfd_open: bool,
    /// The session closed for a graceful restart (see [`RESTART_BFD_GRACE`]).
    restarting: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.init.peer.name)
            .field("state", &self.fsm.state())
            .finish()
    }
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMERS: [Timer; 4] = [
    Timer::ConnectRetry,
    Timer::Hold,
    Timer::Keepalive,
    Timer::IdleHold,
];

impl Session {
    /// Build a session (not started).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        init: SessionInit,
        table: watch::Receiver<RouteTable>,
        shutdown: watch::Receiver<Option<String>>,
        incoming: Option<mpsc::Receiver<TcpStream>>,
        ctl: Option<mpsc::Receiver<SessionCtl>>,
        state_tx: watch::Sender<State>,
        shared: Arc<Mutex<PeerShared>>,
        metrics: Metrics,
        routes_ready: watch::Receiver<bool>,
    ) -> Self {
        let p = &init.peer;
        let fsm = Fsm::new(
            FsmConfig {
                router_id: init.router_id,
                hold_time: p.hold_time,
                keepalive: p.keepalive,
                passive: p.passive,
                accept_incoming: p.accept_incoming,
                connect_retry: CONNECT_RETRY,
                backoff: p.connect_retry,
            },
            init.seed,
        );
        let families = p.families();
        Session {
            fsm,
            table,
            shutdown,
            incoming,
            ctl,
            state_tx,
            shared,
            metrics,
            timers: [None; 4],
            conn: None,
            connecting: None,
            pending: VecDeque::new(),
            rib: AdjRibOut::default(),
            peer_open: None,
            ctx: packet::parsing_context(true),
            families,
            suppress: Vec::new(),
            refresh: Vec::new(),
            sync_at: None,
            arrived: None,
            held: None,
            routes_ready,
            initial_pending: false,
            released: false,
            published_hold: None,
            bfd: None,
            bfd_state: None,
            bfd_open: true,
            restarting: false,
            init,
        }
    }

    /// Start the peer's BFD session when `bfd` is enabled. A failure (port 3784/4784 taken) leaves
    /// the session without BFD and without routes: fail safe, never announced unchecked.
    fn start_bfd(&mut self) {
        let p = &self.init.peer;
        let (Some(params), Some(hop), Some(service)) =
            (p.bfd_params(), p.bfd_hop(), self.init.bfd.as_ref())
        else {
            return;
        };
        self.bfd_open = false;
        match service.session(&p.name, p.address, p.local_address, params, hop) {
            Ok(h) => {
                if let Ok(mut s) = self.shared.lock() {
                    s.bfd = Some(h.snapshot());
                }
                self.bfd_state = Some(h.state());
                self.bfd = Some(h);
            }
            Err(e) => {
                warn!(error = %e, "BFD session could not start: no routes for this peer");
                self.note_error(format!("BFD: {e}"));
            }
        }
    }

    /// A BFD state change: Up opens the session for routes (sending the deferred initial
    /// table); leaving Up closes the BGP session with Cease / BFD Down, unless the peer set
    /// BFD AdminDown (RFC 5882 §4.3.2: a planned stop is no failure).
    /// The first health decision is in (always so on a normal start): the initial table and
    /// End-of-RIB may go out as far as graceful restart is concerned.
    fn routes_released(&self) -> bool {
        self.released || *self.routes_ready.borrow()
    }

    /// Tell `ipvs-herald status` why an Established session holds its initial table.
    fn publish_hold(&mut self) {
        let hold = if !self.initial_pending || self.fsm.state() != State::Established {
            None
        } else if !self.routes_released() {
            Some(InitialHold::FirstHealthDecision)
        } else {
            Some(InitialHold::BfdUp)
        };
        if hold != self.published_hold {
            self.published_hold = hold;
            if let Ok(mut s) = self.shared.lock() {
                s.initial_hold = hold;
            }
        }
    }

    async fn bfd_changed(&mut self, st: crate::bfd::Status) {
        use crate::bfd::State as B;
        if st.state == B::Up {
            if !self.bfd_open {
                info!("BFD up: routes may be announced");
                self.bfd_open = true;
            }
            if self.initial_pending
                && self.fsm.state() == State::Established
                && self.routes_released()
            {
                self.initial_pending = false;
                self.sync_rib(true).await;
            }
        } else if self.bfd_open && st.remote == B::AdminDown {
            info!("peer set BFD AdminDown: keeping the BGP session (RFC 5882 §4.3.2)");
        } else if self.bfd_open {
            self.bfd_open = false;
            warn!(diag = %st.diag, "BFD down: closing the BGP session (Cease / BFD Down)");
            self.note_error(format!("BFD down: {}", st.diag));
            self.pending.push_back(Event::BfdDown);
        }
    }

    /// Run until shutdown.
    pub async fn run(self) {
        let span =
            info_span!("bgp_peer", peer = %self.init.peer.name, addr = %self.init.peer.address);
        self.run_inner().instrument(span).await
    }

    async fn run_inner(mut self) {
        info!(
            remote_as = self.init.peer.remote_as,
            passive = self.init.peer.passive,
            "starting BGP session"
        );
        self.start_bfd();
        self.pending.push_back(Event::ManualStart);
        loop {
            while let Some(ev) = self.pending.pop_front() {
                self.handle(ev).await;
            }
            if self.fsm.is_stopped() {
                break;
            }
            // The first health decision can arrive while this task is between two selects
            // (handling an input): the select below is then armed with the watch already true,
            // its guard off, and nothing would ever send the held table. Catch up here.
            if self.initial_pending
                && self.fsm.state() == State::Established
                && self.bfd_open
                && self.routes_released()
            {
                self.initial_pending = false;
                self.released = true;
                info!("first health decision made: sending the table and End-of-RIB");
                self.sync_rib(true).await;
                continue;
            }
            self.publish_hold();
            // A session waiting for BFD has sent no table: changes wait with it.
            let established = self.fsm.state() == State::Established && !self.initial_pending;
            let sync_at = self.sync_at;
            let next_timer = self
                .timers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (t, i)))
                .min();
            let input = tokio::select! {
                biased;
                r = self.shutdown.changed() => match r {
                    Ok(()) => match self.shutdown.borrow_and_update().clone() {
                        Some(m) => Input::Shutdown(m),
                        None => continue,
                    },
                    // Handle dropped without shutdown: stop quietly as well.
                    Err(_) => Input::Shutdown("speaker stopped".into()),
                },
                // Reconfiguration commands are rare and must not wait behind a busy peer.
                c = async {
                    match self.ctl.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => match c {
                    Some(c) => Input::Ctl(c),
                    None => { self.ctl = None; continue }
                },
                // A dropped sender releases as well: the table then says what is announced.
                r = self.routes_ready.changed(), if self.initial_pending && !self.routes_released() => match r {
                    Ok(()) if !*self.routes_ready.borrow_and_update() => continue,
                    _ => Input::RoutesReady,
                },
                // BFD before reads: a dead peer must be acted on at once.
                r = async {
                    match self.bfd_state.as_mut() {
                        Some(rx) => rx.changed().await,
                        None => std::future::pending().await,
                    }
                } => match (r, self.bfd_state.as_mut()) {
                    (Ok(()), Some(rx)) => Input::Bfd(*rx.borrow_and_update()),
                    _ => { self.bfd_state = None; continue }
                },
                // Before reads: a peer connecting while its OPEN on our connection is already
                // buffered is a collision to detect (RFC 4271 §6.8), not to refuse later.
                s = async {
                    match self.incoming.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => match s {
                    Some(s) => Input::Incoming(s),
                    None => { self.incoming = None; continue }
                },
                i = async {
                    match next_timer {
                        Some((at, i)) => { tokio::time::sleep_until(at).await; i }
                        None => std::future::pending().await,
                    }
                } => {
                    self.timers[i] = None;
                    Input::Fsm(match TIMERS[i] {
                        Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                        Timer::Hold => Event::HoldTimerExpires,
                        Timer::Keepalive => Event::KeepaliveTimerExpires,
                        Timer::IdleHold => Event::IdleHoldTimerExpires,
                    })
                },
                // Before reads: a peer sending a full table must not delay our own changes.
                () = async {
                    match sync_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if established && !self.initial_pending => { self.sync_at = None; Input::TableChanged },
                r = async {
                    match self.conn.as_mut() {
                        Some(c) => c.reader.next().await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Some(f) => Input::Frame(f),
                    None => Input::Closed,
                },
                r = async {
                    match self.connecting.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                } => { self.connecting = None; Input::Connected(r) },
                // Last, and only while no sync is pending: a burst of table changes costs one
                // wake-up and one diff per SYNC_DELAY, never starving reads or timers.
                r = self.table.changed(), if established && self.sync_at.is_none() && !self.initial_pending => match r {
                    Ok(()) => {
                        self.sync_at = Some(Instant::now() + SYNC_DELAY);
                        continue;
                    }
                    Err(_) => Input::Shutdown("speaker stopped".into()),
                },
            };
            self.input(input).await;
        }
        self.set_prefix_status();
        if let Ok(mut s) = self.shared.lock() {
            s.initial_hold = None;
            s.bfd = None;
        }
        if let Some(b) = self.bfd.take() {
            if self.restarting {
                tokio::time::sleep(RESTART_BFD_GRACE).await;
            }
            // AdminDown to the peer, and no BFD task outliving its session.
            b.stop().await;
        }
        info!("BGP session stopped");
    }

    async fn input(&mut self, input: Input) {
        match input {
            Input::Fsm(e) => self.pending.push_back(e),
            Input::Closed => {
                info!("peer closed the connection");
                self.note_error("connection closed by peer".into());
                self.metrics.connect_failure(&self.init.peer.name);
                self.pending.push_back(Event::TcpConnectionFails);
            }
            Input::Frame(Err(packet::FramingError::Io(e))) => {
                info!(error = %e, "connection failed");
                self.note_error(format!("read error: {e}"));
                self.metrics.connect_failure(&self.init.peer.name);
                self.pending.push_back(Event::TcpConnectionFails);
            }
            Input::Frame(Err(packet::FramingError::Bad(e))) => {
                warn!(error = %e, "bad message header from peer");
                self.pending.push_back(e.into());
            }
            Input::Frame(Ok(frame)) => self.received(&frame),
            Input::Connected(Ok(stream)) => {
                if self.fsm.state() == State::Connect {
                    match self.attach(stream) {
                        Ok(()) => self.pending.push_back(Event::TcpCrAcked),
                        Err(e) => {
                            self.note_error(format!("socket setup: {e}"));
                            self.pending.push_back(Event::TcpConnectionFails);
                        }
                    }
                }
            }
            Input::Connected(Err(e)) => {
                info!(error = %e, "connect failed");
                self.note_error(format!("connect: {e}"));
                self.metrics.connect_failure(&self.init.peer.name);
                self.pending.push_back(Event::TcpConnectionFails);
            }
            Input::Incoming(stream) => {
                // The FSM decides what becomes of it (accept, hold, reject or refuse).
                self.arrived = Some(stream);
                self.handle(Event::IncomingConnection).await;
                self.arrived = None;
            }
            Input::TableChanged => self.sync_rib(false).await,
            Input::RoutesReady => {
                self.released = true;
                if self.initial_pending && self.bfd_open {
                    self.initial_pending = false;
                    info!("first health decision made: sending the table and End-of-RIB");
                    self.sync_rib(true).await;
                }
            }
            Input::Ctl(SessionCtl::StopForRestart) => {
                let keeps =
                    self.fsm.state() == State::Established && self.graceful_time().is_some();
                if keeps {
                    info!("closing without NOTIFICATION for a graceful restart: the peer keeps our routes as stale");
                    self.restarting = true;
                    self.pending.push_back(Event::ManualStopForRestart);
                } else {
                    info!(
                        "peer did not negotiate graceful restart: withdrawing before the restart"
                    );
                    self.stop_withdrawing("ipvs-herald restarting").await;
                }
            }
            Input::Bfd(st) => self.bfd_changed(st).await,
            Input::Ctl(SessionCtl::Stop(n)) => {
                info!(notification = %n.describe(), "session stopped by reconfiguration");
                self.pending.push_back(Event::ManualStop(n));
            }
            Input::Ctl(SessionCtl::Update { peer, resend }) => {
                info!("peer settings updated without a session reset");
                self.init.peer = *peer;
                let p = &self.init.peer;
                if let (Some(h), Some(params)) = (self.bfd.as_ref(), p.bfd_params()) {
                    h.reconfigure(params);
                }
                if let Some(ka) = self.fsm.reconfigure(p.keepalive, p.connect_retry) {
                    let i = timer_index(Timer::Keepalive);
                    if self.timers[i].is_some() {
                        self.timers[i] = Some(Instant::now() + ka);
                    }
                }
                if resend && self.fsm.state() == State::Established {
                    let announce = self.rib.full().announce;
                    debug!(
                        prefixes = announce.len(),
                        "re-sending routes with the new next hops"
                    );
                    self.send_diff(&announce, &[]).await;
                }
            }
            Input::Shutdown(m) => {
                info!(message = %m, "administrative shutdown");
                self.stop_withdrawing(&m).await;
            }
        }
    }

    /// Withdraw everything (when Established), then ManualStop with Cease / Administrative
    /// Shutdown carrying `message`.
    async fn stop_withdrawing(&mut self, message: &str) {
        if self.fsm.state() == State::Established {
            let diff = self.rib.withdraw_all();
            if !diff.withdraw.is_empty() {
                self.send_diff(&diff.announce, &diff.withdraw).await;
            }
            self.set_prefix_status();
        }
        self.pending
            .push_back(Event::ManualStop(Notification::admin_shutdown(message)));
    }

    /// The restart time the peer keeps our routes for when this session ends without a
    /// NOTIFICATION: both sides sent the graceful restart capability (ours not refused).
    pub(super) fn graceful_time(&self) -> Option<u16> {
        let ours = self.init.peer.graceful_restart?;
        let code = u8::from(packet::consts::CapabilityCode::GracefulRestart);
        let peer = self.peer_open.as_ref()?.graceful_restart;
        (peer && !self.suppress.contains(&code)).then_some(ours.restart_time.min(4095))
    }
    async fn handle(&mut self, ev: Event) {
        let before = self.fsm.state();
        debug!(state = before.as_str(), event = ?ev, "FSM event");
        let actions = self.fsm.step(ev);
        let after = self.fsm.state();
        if before != after {
            info!(from = before.as_str(), to = after.as_str(), "state change");
            self.metrics.transition(&self.init.peer.name, before, after);
            if after == State::Established && self.init.restart_until.take().is_some() {
                debug!("graceful restart: later OPENs carry no Restart State bit");
            }
            let graceful = (after == State::Established)
                .then(|| self.graceful_time())
                .flatten();
            if let Ok(mut s) = self.shared.lock() {
                s.established_at = (after == State::Established).then(Instant::now);
                s.graceful_restart = graceful;
            }
            self.state_tx.send_replace(after);
        }
        for a in actions {
            self.act(a).await;
        }
    }

    fn note_error(&self, e: String) {
        if let Ok(mut s) = self.shared.lock() {
            s.last_error = Some(e);
        }
    }

    fn set_prefix_status(&self) {
        for f in &self.families {
            self.metrics
                .set_prefixes(&self.init.peer.name, *f, self.rib.count(*f));
        }
        if let Ok(mut s) = self.shared.lock() {
            s.prefixes_sent = self.rib.len();
        }
    }
}

/// Mutable per-peer status shared between the session task and the speaker's handle.
#[derive(Debug)]
pub(crate) struct PeerShared {
    pub(crate) established_at: Option<Instant>,
    pub(crate) prefixes_sent: usize,
    pub(crate) last_error: Option<String>,
    /// While Established: the restart time the peer keeps our routes for if the session ends
    /// without a NOTIFICATION (both sides negotiated graceful restart).
    pub(crate) graceful_restart: Option<u16>,
    /// Established, but the initial table and End-of-RIB are held back, and why.
    pub(crate) initial_hold: Option<InitialHold>,
    /// The peer's running BFD session, when `bfd` is enabled and it started.
    pub(crate) bfd: Option<Arc<Mutex<crate::bfd::Snapshot>>>,
}

/// Why an Established session has not sent its initial table and End-of-RIB yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialHold {
    /// After a graceful start (`stop --keep-routes`): the peer keeps our stale routes until
    /// the first health decision replaces them.
    FirstHealthDecision,
    /// BFD is enabled and not Up yet.
    BfdUp,
}

impl InitialHold {
    /// The name `ipvs-herald status` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            InitialHold::FirstHealthDecision => "first_health_decision",
            InitialHold::BfdUp => "bfd_up",
        }
    }
}
