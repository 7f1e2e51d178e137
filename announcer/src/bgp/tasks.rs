//! Session tasks: the I/O around the pure FSM, one tokio task per peer.
//!
//! ```text
//!   SpeakerHandle ──announce/withdraw──▶ watch<RouteTable> ──────────────┐
//!        │ shutdown(msg) ─▶ watch<Option<String>> ─────────────┐         │
//!        │                                                     ▼         ▼
//!        │   listener task (only with passive peers)     ┌──────── Session task (per peer) ─────────┐
//!        │   accept ─▶ match peer address ─mpsc<TcpStream>─▶ select! { shutdown, timers(4),       │
//!        │                                               │           connect future, socket reads, │
//!        │                                               │           incoming conn, table change } │
//!        │                                               │     │ Event                             │
//!        │                                               │     ▼                                   │
//!        │                                               │  Fsm::step ─▶ [Action] ─▶ socket writes, │
//!        │                                               │                timers, Adj-RIB-Out sync │
//!        └── peer_states / wait_established ◀── watch<State> + Mutex<PeerShared> + metrics ───────┘
//! ```
//!
//! The task owns the connection (a `FramedRead` over the read half plus the write half), the
//! four timers (as deadlines on tokio's clock, so tests can pause time), and the session's
//! Adj-RIB-Out. Writes are bounded by [`WRITE_TIMEOUT`]; a failed write is a
//! `TcpConnectionFails` event.

use super::config::{Family, PeerConfig};
use super::fsm::{Action, Event, Fsm, FsmConfig, Incoming, State, Timer};
use super::metrics::Metrics;
use super::network::{apply_gtsm, connect};
use super::packet::consts::{CeaseSubcode, HeaderErrorSubcode};
use super::packet::{self, Message, Notification, PeerOpen, UpdateCtx};
use super::rib::{AdjRibOut, RouteTable};
use super::PeerShared;
use futures::StreamExt;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_bgp_pkt::BgpMessage;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, info_span, warn, Instrument};

/// Bound on one socket write (a peer that stops reading must not wedge the task).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// ConnectRetry time: bound on one TCP connection attempt (RFC 4271 suggests 120 s; a short
/// bound makes an unreachable router be retried with backoff instead).
pub const CONNECT_RETRY: Duration = Duration::from_secs(30);

/// Table changes are collected for this long before a session sends them, so a burst of
/// changes becomes one diff and densely packed UPDATEs.
pub const SYNC_DELAY: Duration = Duration::from_millis(25);

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
}

/// Commands from the speaker to one running session (live reconfiguration).
#[derive(Debug)]
pub enum SessionCtl {
    /// Close the session with this NOTIFICATION (sent when OPEN was exchanged) and stop the
    /// task for good (peer removed, or reset to be replaced by a new session).
    Stop(Notification),
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
    /// Capabilities the peer refused (RFC 5492 §5), left out of later OPENs.
    suppress: Vec<u8>,
    /// Families with a pending ROUTE-REFRESH request.
    refresh: Vec<Family>,
    /// When to send the pending table changes.
    sync_at: Option<Instant>,
    /// The incoming connection of the [`Event::IncomingConnection`] being handled.
    arrived: Option<TcpStream>,
    /// A colliding incoming connection kept until the peer's OPEN on the current (outgoing)
    /// connection tells its BGP identifier ([`Action::HoldIncoming`]).
    held: Option<TcpStream>,
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
            init,
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
        self.pending.push_back(Event::ManualStart);
        loop {
            while let Some(ev) = self.pending.pop_front() {
                self.handle(ev).await;
            }
            if self.fsm.is_stopped() {
                break;
            }
            let established = self.fsm.state() == State::Established;
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
                }, if established => { self.sync_at = None; Input::TableChanged },
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
                r = self.table.changed(), if established && self.sync_at.is_none() => match r {
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
            Input::Ctl(SessionCtl::Stop(n)) => {
                info!(notification = %n.describe(), "session stopped by reconfiguration");
                self.pending.push_back(Event::ManualStop(n));
            }
            Input::Ctl(SessionCtl::Update { peer, resend }) => {
                info!("peer settings updated without a session reset");
                self.init.peer = *peer;
                let p = &self.init.peer;
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
                if self.fsm.state() == State::Established {
                    let diff = self.rib.withdraw_all();
                    if !diff.withdraw.is_empty() {
                        self.send_diff(&diff.announce, &diff.withdraw).await;
                    }
                    self.set_prefix_status();
                }
                self.pending
                    .push_back(Event::ManualStop(Notification::admin_shutdown(&m)));
            }
        }
    }

    /// Use an incoming connection of an `accept_incoming` peer (our own attempt was dropped, or
    /// it won a collision): GTSM, attach, TcpConnectionConfirmed.
    fn take_incoming(&mut self, stream: TcpStream) {
        if let Err(e) = apply_gtsm(&stream, &self.init.peer) {
            warn!(error = %e, "cannot apply TTL security to accepted connection");
            return;
        }
        match self.attach(stream) {
            Ok(()) => self.pending.push_back(Event::TcpConnectionConfirmed),
            Err(e) => self.note_error(format!("socket setup: {e}")),
        }
    }

    /// Close a connection that lost a collision, with Cease / Connection Collision Resolution
    /// (best effort: one non-blocking write of 21 bytes into an empty send buffer).
    fn reject_collision(&self, s: TcpStream) {
        let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
        if let Ok(b) = packet::encode_notification(&n) {
            if s.try_write(&b).is_ok() {
                self.metrics
                    .notification(&self.init.peer.name, true, n.code, n.subcode);
            }
        }
        drop(s);
    }

    fn attach(&mut self, stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?.ip().to_canonical();
        let (r, w) = stream.into_split();
        self.conn = Some(Conn {
            reader: FramedRead::new(r, packet::BgpFraming),
            writer: w,
            local,
        });
        self.ctx = packet::parsing_context(true);
        Ok(())
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

    /// Decode one frame into an event.
    fn received(&mut self, frame: &[u8]) {
        let peer = self.init.peer.name.clone();
        // Defence in depth: a panic inside the parser must not kill the session task.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            packet::decode(frame, &mut self.ctx)
        }));
        let decoded = decoded.unwrap_or_else(|_| {
            self.ctx = packet::parsing_context(self.peer_open.as_ref().is_none_or(|o| o.asn4));
            Err(packet::DecodeError {
                kind: packet::ErrorKind::Header,
                notification: Notification::header_error(HeaderErrorSubcode::Unspecific, vec![]),
                detail: "message parser panicked".into(),
            })
        });
        let m = match decoded {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "malformed message from peer");
                self.pending.push_back(e.into());
                return;
            }
        };
        self.metrics.message(&peer, false, m.kind());
        let ev = match m {
            Message::Open(o) => {
                if self.fsm.state() == State::OpenSent {
                    match packet::check_open(
                        &o,
                        self.init.peer.remote_as,
                        self.init.router_id,
                        self.init.peer.is_ibgp(self.init.local_as),
                        &self.families,
                    ) {
                        Ok(p) => {
                            info!(peer_id = %p.bgp_id, hold = p.hold_time, families = ?p.families, asn4 = p.asn4, "OPEN accepted");
                            self.ctx = packet::parsing_context(p.asn4);
                            let ev = Event::BgpOpen((&p).into());
                            self.peer_open = Some(p);
                            ev
                        }
                        Err(e) => {
                            warn!(error = %e, "OPEN rejected");
                            e.into()
                        }
                    }
                } else {
                    Event::BgpOpen(super::fsm::OpenParams {
                        peer_hold_time: o.hold_time(),
                        bgp_id: o.bgp_id(),
                    })
                }
            }
            Message::Update { ignored_errors } => {
                if ignored_errors > 0 {
                    warn!(
                        ignored_errors,
                        "UPDATE with malformed attributes treated as withdraw (RFC 7606)"
                    );
                    self.metrics.ignored_update_errors(&peer, ignored_errors);
                }
                Event::UpdateMsg
            }
            Message::Notification(n) => {
                warn!(notification = %n.describe(), "NOTIFICATION received");
                self.metrics.notification(&peer, false, n.code, n.subcode);
                self.note_error(format!("received {}", n.describe()));
                if (n.code, n.subcode) == (2, 1) {
                    Event::NotifMsgVerErr(n)
                } else {
                    Event::NotifMsg(n)
                }
            }
            Message::Keepalive => Event::KeepAliveMsg,
            Message::RouteRefresh { afi, safi } => match packet::family_of_afi(afi, safi) {
                Some(f) if self.negotiated().contains(&f) => {
                    if !self.refresh.contains(&f) {
                        self.refresh.push(f);
                    }
                    Event::RouteRefreshMsg
                }
                _ => {
                    debug!(
                        afi,
                        safi, "ROUTE-REFRESH for a family not negotiated: ignored"
                    );
                    return;
                }
            },
        };
        self.pending.push_back(ev);
    }

    fn negotiated(&self) -> Vec<Family> {
        self.peer_open
            .as_ref()
            .map(|p| p.families.clone())
            .unwrap_or_default()
    }

    async fn handle(&mut self, ev: Event) {
        let before = self.fsm.state();
        debug!(state = before.as_str(), event = ?ev, "FSM event");
        let actions = self.fsm.step(ev);
        let after = self.fsm.state();
        if before != after {
            info!(from = before.as_str(), to = after.as_str(), "state change");
            self.metrics.transition(&self.init.peer.name, before, after);
            if let Ok(mut s) = self.shared.lock() {
                s.established_at = (after == State::Established).then(Instant::now);
            }
            self.state_tx.send_replace(after);
        }
        for a in actions {
            self.act(a).await;
        }
    }

    async fn act(&mut self, a: Action) {
        match a {
            Action::Connect => {
                self.metrics.connect_attempt(&self.init.peer.name);
                let peer = self.init.peer.clone();
                self.connecting = Some(Box::pin(async move { connect(&peer).await }));
            }
            Action::Listen => {}
            Action::SendOpen => {
                let open = packet::build_open(&packet::LocalOpen {
                    local_as: self.init.local_as,
                    router_id: self.init.router_id,
                    hold_time: self.init.peer.hold_time,
                    families: self.families.clone(),
                    graceful_restart: self.init.peer.graceful_restart.map(|g| g.restart_time),
                    suppress: self.suppress.clone(),
                });
                self.send(&open, "open").await;
            }
            Action::SendKeepalive => self.send(&BgpMessage::KeepAlive, "keepalive").await,
            Action::SendNotification(n) => {
                warn!(notification = %n.describe(), "sending NOTIFICATION");
                self.metrics
                    .notification(&self.init.peer.name, true, n.code, n.subcode);
                self.note_error(format!("sent {}", n.describe()));
                self.send(&BgpMessage::Notification(n.to_netgauze()), "notification")
                    .await;
            }
            Action::DropConnection => {
                if let Some(mut c) = self.conn.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), c.writer.shutdown()).await;
                }
                self.connecting = None;
                self.peer_open = None;
                self.sync_at = None;
                self.rib.clear();
                self.set_prefix_status();
            }
            Action::StartTimer(t, d) => self.timers[timer_index(t)] = Some(Instant::now() + d),
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::SendInitialRib => {
                self.sync_rib(true).await;
            }
            Action::ResendRib => {
                // Only the families the peer asked for (RFC 2918 §4).
                let fams = std::mem::take(&mut self.refresh);
                let announce: Vec<_> = self
                    .rib
                    .full()
                    .announce
                    .into_iter()
                    .filter(|(p, _)| fams.contains(&super::rib::family_of(p)))
                    .collect();
                debug!(prefixes = announce.len(), families = ?fams, "answering ROUTE-REFRESH");
                self.send_diff(&announce, &[]).await;
            }
            Action::AcceptIncoming(which) => {
                if let Some(s) = self.incoming_conn(which) {
                    self.take_incoming(s);
                }
            }
            Action::HoldIncoming => self.held = self.arrived.take(),
            Action::RejectIncoming(which) => {
                if let Some(s) = self.incoming_conn(which) {
                    self.reject_collision(s);
                }
            }
            Action::RefuseIncoming => self.arrived = None,
            Action::SuppressCapabilities(codes) => {
                for code in codes {
                    info!(
                        capability = code,
                        "peer refused capability: not sending it again"
                    );
                    self.suppress.push(code);
                }
            }
        }
    }

    fn incoming_conn(&mut self, which: Incoming) -> Option<TcpStream> {
        match which {
            Incoming::New => self.arrived.take(),
            Incoming::Held => self.held.take(),
        }
    }

    /// Bring the peer in step with the table; with `eor`, follow with End-of-RIB markers.
    async fn sync_rib(&mut self, eor: bool) {
        if self.fsm.state() != State::Established {
            return;
        }
        let fams = self.negotiated();
        // Diff under the read guard (no copy of the table); the guard is gone before sending.
        let diff = {
            let table = self.table.borrow_and_update();
            self.rib.sync(&table, &fams)
        };
        self.set_prefix_status();
        if !diff.is_empty() {
            debug!(
                announce = diff.announce.len(),
                withdraw = diff.withdraw.len(),
                "sending route changes"
            );
            self.send_diff(&diff.announce, &diff.withdraw).await;
        }
        if eor {
            for f in fams {
                match packet::end_of_rib(f) {
                    Ok(m) => self.send(&m, "update").await,
                    Err(e) => warn!(error = %e, "cannot build End-of-RIB"),
                }
            }
        }
        self.set_prefix_status();
    }

    fn update_ctx(&self) -> UpdateCtx {
        let p = &self.init.peer;
        let local = self.conn.as_ref().map(|c| c.local);
        let (nh_v4, nh_v6) =
            super::nexthop::next_hops(p, local, &super::nexthop::interface_v6_addrs());
        UpdateCtx {
            local_as: self.init.local_as,
            ibgp: p.is_ibgp(self.init.local_as),
            asn4: self.peer_open.as_ref().is_some_and(|o| o.asn4),
            nh_v4,
            nh_v6,
        }
    }

    async fn send_diff(
        &mut self,
        announce: &[(ipnet::IpNet, super::RouteAttrs)],
        withdraw: &[ipnet::IpNet],
    ) {
        let ctx = self.update_ctx();
        if ctx.nh_v4.is_none() && announce.iter().any(|(p, _)| p.addr().is_ipv4()) {
            warn!("no IPv4 next hop for this session: IPv4 routes are not sent");
        }
        if ctx.nh_v6.is_none() && announce.iter().any(|(p, _)| p.addr().is_ipv6()) {
            warn!("no IPv6 next hop for this session: IPv6 routes are not sent");
        }
        match packet::build_updates(&ctx, announce, withdraw) {
            Ok(msgs) => {
                for m in msgs {
                    self.send(&m, "update").await;
                    if self.conn.is_none() {
                        return;
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot build UPDATE"),
        }
    }

    async fn send(&mut self, m: &BgpMessage, kind: &'static str) {
        let Some(c) = self.conn.as_mut() else { return };
        let bytes = match packet::encode(m) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot encode {kind}");
                return;
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, c.writer.write_all(&bytes)).await {
            Ok(Ok(())) => self.metrics.message(&self.init.peer.name, true, kind),
            Ok(Err(e)) => {
                info!(error = %e, "write failed");
                self.note_error(format!("write: {e}"));
                self.conn = None;
                self.pending.push_back(Event::TcpConnectionFails);
            }
            Err(_) => {
                info!("write timed out");
                self.note_error("write timed out".into());
                self.conn = None;
                self.pending.push_back(Event::TcpConnectionFails);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Connection collisions (RFC 4271 §6.8) of an `accept_incoming` peer, against a scripted
    //! peer that both accepts the speaker's connection and connects to the speaker's listener.

    use super::super::testutil::{self, keepalive, open, PeerConn, ScriptedPeer};
    use super::super::{BgpConfig, Family, PeerConfig, Speaker, SpeakerHandle, State};
    use prometheus_client::registry::Registry;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Duration;

    const T: Duration = Duration::from_secs(10);
    const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// One active `accept_incoming` peer "p" (AS 65002) at `addr`, and a free loopback listener.
    fn collision_config(addr: SocketAddr) -> (BgpConfig, SocketAddr) {
        let mut p = PeerConfig::new("p", addr.ip(), 65002);
        p.port = addr.port();
        p.accept_incoming = true;
        p.families = Some(vec![Family::Ipv4]);
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let cfg = BgpConfig {
            router_id: LOCAL_ID,
            local_as: 65001,
            listen,
            peers: vec![p],
        };
        (cfg, listen)
    }

    /// The speaker with one active `accept_incoming` peer at `sp`; returns the speaker and the
    /// outgoing connection (its OPEN already read) and the listener address.
    async fn start(sp: &ScriptedPeer) -> (SpeakerHandle, PeerConn, SocketAddr, Registry) {
        let (cfg, listen) = collision_config(sp.addr().expect("addr"));
        let mut reg = Registry::default();
        let h = Speaker::start(cfg, &mut reg).expect("start");
        let mut out = sp.accept(T).await.expect("outgoing connection");
        out.recv_type(1, T).await.expect("speaker OPEN");
        (h, out, listen, reg)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn peer_with_higher_identifier_keeps_its_connection() {
        let sp = ScriptedPeer::bind().await.expect("bind");
        let (h, mut out, listen, reg) = start(&sp).await;
        // The peer connects too (speaker in OpenSent on `out`): held.
        let mut inc = testutil::connect(listen, None, 64, T)
            .await
            .expect("connect");
        settle().await;
        let remote = Ipv4Addr::new(192, 0, 2, 200);
        out.send_raw(&open(65002, 90, remote)).await.expect("OPEN");
        // The speaker's connection loses: Cease / Connection Collision Resolution.
        let n = out.expect_notification(T).await.expect("NOTIFICATION");
        assert_eq!((n.code, n.subcode), (6, 7));
        assert!(out.closed(T).await);
        // The peer's connection carries the session.
        inc.handshake(&open(65002, 90, remote), T)
            .await
            .expect("handshake on the peer's connection");
        assert!(h.wait_established("p", T).await);
        inc.send_raw(&keepalive()).await.expect("keepalive");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
        assert!(text.contains(
            r#"ipvs_herald_bgp_notifications_total{peer="p",direction="sent",code="6",subcode="7"} 1"#
        ));
        // A collision is not a failure: no backoff was counted.
        assert!(!text.contains(r#"to="idle""#), "{text}");
        h.shutdown("done", T).await;
    }

    #[tokio::test]
    async fn speaker_with_higher_identifier_keeps_its_connection() {
        let sp = ScriptedPeer::bind().await.expect("bind");
        let (h, mut out, listen, _reg) = start(&sp).await;
        let mut inc = testutil::connect(listen, None, 64, T)
            .await
            .expect("connect");
        settle().await;
        let remote = Ipv4Addr::new(10, 0, 0, 1);
        out.send_raw(&open(65002, 90, remote)).await.expect("OPEN");
        let n = inc
            .expect_notification(T)
            .await
            .expect("NOTIFICATION on the peer's connection");
        assert_eq!((n.code, n.subcode), (6, 7));
        assert!(inc.closed(T).await);
        out.send_raw(&keepalive()).await.expect("keepalive");
        out.recv_type(4, T).await.expect("speaker KEEPALIVE");
        assert!(h.wait_established("p", T).await);
        h.shutdown("done", T).await;
    }

    #[tokio::test]
    async fn collision_in_openconfirm_is_resolved_at_once() {
        let sp = ScriptedPeer::bind().await.expect("bind");
        let (h, mut out, listen, _reg) = start(&sp).await;
        let remote = Ipv4Addr::new(192, 0, 2, 250);
        out.send_raw(&open(65002, 90, remote)).await.expect("OPEN");
        out.recv_type(4, T)
            .await
            .expect("speaker KEEPALIVE (OpenConfirm)");
        assert!(h.wait_state("p", State::OpenConfirm, T).await);
        let mut inc = testutil::connect(listen, None, 64, T)
            .await
            .expect("connect");
        let n = out.expect_notification(T).await.expect("NOTIFICATION");
        assert_eq!((n.code, n.subcode), (6, 7));
        inc.handshake(&open(65002, 90, remote), T)
            .await
            .expect("handshake on the peer's connection");
        assert!(h.wait_established("p", T).await);
        h.shutdown("done", T).await;
    }

    #[tokio::test]
    async fn established_session_refuses_further_incoming_connections() {
        let sp = ScriptedPeer::bind().await.expect("bind");
        let (h, mut out, listen, _reg) = start(&sp).await;
        out.send_raw(&open(65002, 90, Ipv4Addr::new(192, 0, 2, 200)))
            .await
            .expect("OPEN");
        out.send_raw(&keepalive()).await.expect("keepalive");
        assert!(h.wait_established("p", T).await);
        let mut late = testutil::connect(listen, None, 64, T)
            .await
            .expect("connect");
        assert!(late.closed(T).await);
        assert_eq!(h.peer_states()[0].state, State::Established);
        h.shutdown("done", T).await;
    }

    #[tokio::test]
    async fn incoming_connection_while_connecting_is_taken() {
        use socket2::{Domain, Socket, Type};
        // The peer's port: a listener that never accepts, its backlog full, so the speaker's
        // connect hangs in Connect (SYNs dropped by the kernel).
        let l = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        l.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        l.listen(0).expect("listen");
        let addr = l.local_addr().expect("addr").as_socket().expect("inet");
        let mut fillers = Vec::new();
        for _ in 0..3 {
            let f = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            f.set_nonblocking(true).expect("nonblocking");
            let _ = f.connect(&addr.into());
            fillers.push(f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (cfg, listen) = collision_config(addr);
        let mut reg = Registry::default();
        let h = Speaker::start(cfg, &mut reg).expect("start");
        assert!(h.wait_state("p", State::Connect, T).await);
        let mut inc = testutil::connect(listen, None, 64, T)
            .await
            .expect("connect");
        inc.handshake(&open(65002, 90, Ipv4Addr::new(192, 0, 2, 200)), T)
            .await
            .expect("handshake on the peer's connection");
        assert!(h.wait_established("p", T).await);
        h.shutdown("done", T).await;
        drop(fillers);
    }
}
