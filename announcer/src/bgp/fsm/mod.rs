//! The BGP finite state machine of RFC 4271 §8, pure and I/O-free.
//!
//! [`Fsm::step`] takes one [`Event`] (named after its RFC 4271 §8.1 event) and returns the
//! [`Action`]s the session task must carry out (send, connect, drop, arm or stop a [`Timer`]).
//! The task owns the socket and the timers; this module owns every decision, so it is tested
//! without sockets or clocks.
//!
//! Deviations from RFC 4271, on purpose:
//! - The optional `DampPeerOscillations` behaviour is always on: every failure ends in `Idle`
//!   with the IdleHold timer armed with an exponential backoff with jitter; its expiry is the
//!   automatic restart (event 3, or 5 for passive peers). A successful session resets the backoff.
//! - Connection collision detection (§6.8) only for active peers that also accept incoming
//!   connections (`accept_incoming`): the session keeps one connection and at most one
//!   colliding incoming connection on hold ([`Event::IncomingConnection`],
//!   [`Action::HoldIncoming`]); [`collision_winner`] decides which survives once the peer's
//!   BGP identifier is known. When the current connection loses, the FSM does what RFC 4271
//!   event 23 (OpenCollisionDump) does, returning to Active, and hands the session to the
//!   incoming connection ([`Action::AcceptIncoming`]) without counting a failure.
//! - An incoming connection during the IdleHold backoff starts the session at once (the
//!   automatic start with passive TCP establishment, event 5).
//! - Capabilities the peer refuses with an Unsupported Capability NOTIFICATION (RFC 5492 §5)
//!   are left out of later OPENs ([`Action::SuppressCapabilities`]).
//! - DelayOpen is not implemented: the OPEN is sent as soon as TCP is up.

use super::config::Backoff;
use super::packet::consts::{CapabilityCode, CeaseSubcode, FsmErrorSubcode, OpenErrorSubcode};
use super::packet::{unsupported_capabilities, DecodeError, ErrorKind, Notification, PeerOpen};
use std::net::Ipv4Addr;
use std::time::Duration;
use tracing::{debug, info};

/// Session states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// No connection; waiting for the IdleHold (backoff) timer or stopped.
    Idle,
    /// TCP connection attempt in progress.
    Connect,
    /// Waiting for the peer to connect (passive).
    Active,
    /// OPEN sent, waiting for the peer's OPEN.
    OpenSent,
    /// OPENs exchanged, waiting for the first KEEPALIVE.
    OpenConfirm,
    /// Session up: routes are exchanged.
    Established,
}

impl State {
    /// All states, in RFC order (for one-hot metrics).
    pub const ALL: [State; 6] = [
        State::Idle,
        State::Connect,
        State::Active,
        State::OpenSent,
        State::OpenConfirm,
        State::Established,
    ];

    /// Lower-case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connect => "connect",
            State::Active => "active",
            State::OpenSent => "opensent",
            State::OpenConfirm => "openconfirm",
            State::Established => "established",
        }
    }
}

/// Timers the session task runs for the FSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// ConnectRetryTimer: bounds one TCP connection attempt / wait for a passive connection.
    ConnectRetry,
    /// HoldTimer: the peer must send something within this time.
    Hold,
    /// KeepaliveTimer: when to send our next KEEPALIVE.
    Keepalive,
    /// IdleHoldTimer: backoff before the automatic restart after a failure.
    IdleHold,
}

/// Parameters negotiated from the peer's OPEN, carried by [`Event::BgpOpen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenParams {
    /// The peer's proposed hold time (already checked: 0 or ≥ 3).
    pub peer_hold_time: u16,
    /// The peer's BGP identifier (decides a connection collision, RFC 4271 §6.8).
    pub bgp_id: Ipv4Addr,
}

/// FSM input events (RFC 4271 §8.1; the number is the RFC's event number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// 1: ManualStart — the operator (speaker start) enables the peer.
    ManualStart,
    /// 2: ManualStop — shutdown; the NOTIFICATION carries this Cease / Administrative Shutdown.
    ManualStop(Notification),
    /// ManualStop for a graceful restart (RFC 4724): the connection is closed without a
    /// NOTIFICATION, so that a peer that negotiated graceful restart keeps our routes as stale
    /// until we come back (or its restart timer ends).
    ManualStopForRestart,
    /// 3: AutomaticStart — restart after the IdleHold timer (active peers).
    AutomaticStart,
    /// 5: AutomaticStart_with_PassiveTcpEstablishment (passive peers).
    AutomaticStartPassive,
    /// 9: ConnectRetryTimer_Expires.
    ConnectRetryTimerExpires,
    /// 10: HoldTimer_Expires.
    HoldTimerExpires,
    /// 11: KeepaliveTimer_Expires.
    KeepaliveTimerExpires,
    /// 13: IdleHoldTimer_Expires.
    IdleHoldTimerExpires,
    /// 16: Tcp_CR_Acked — our outgoing connection is up.
    TcpCrAcked,
    /// 17: TcpConnectionConfirmed — an incoming connection was accepted.
    TcpConnectionConfirmed,
    /// 18: TcpConnectionFails — connect failed, or the connection was closed / broke.
    TcpConnectionFails,
    /// 19: BGPOpen — a valid OPEN arrived.
    BgpOpen(OpenParams),
    /// 21: BGPHeaderErr — bad marker, length or type.
    BgpHeaderErr(Notification),
    /// The peer connected to our listener (RFC 4271 event 14, TcpConnection_Valid, for a
    /// passive or `accept_incoming` peer). Answered with exactly one of
    /// [`Action::AcceptIncoming`] ([`Incoming::New`]), [`Action::HoldIncoming`],
    /// [`Action::RejectIncoming`] ([`Incoming::New`]) or [`Action::RefuseIncoming`].
    IncomingConnection,
    /// 22: BGPOpenMsgErr — the OPEN was rejected.
    BgpOpenMsgErr(Notification),
    /// 24: NotifMsgVerErr — the peer sent a version-error NOTIFICATION.
    NotifMsgVerErr(Notification),
    /// 25: NotifMsg — the peer sent any other NOTIFICATION.
    NotifMsg(Notification),
    /// 26: KeepAliveMsg.
    KeepAliveMsg,
    /// 27: UpdateMsg — a valid UPDATE (its routes are ignored).
    UpdateMsg,
    /// 28: UpdateMsgErr — an UPDATE that requires a session reset.
    UpdateMsgErr(Notification),
    /// RFC 2918 ROUTE-REFRESH received (not an RFC 4271 event).
    RouteRefreshMsg,
    /// RFC 7313 malformed ROUTE-REFRESH (not an RFC 4271 event).
    RouteRefreshMsgErr(Notification),
    /// The peer's BFD session went Down (RFC 5882 §4.3.1; not an RFC 4271 event): the
    /// session closes with Cease / BFD Down (RFC 9384) and restarts after the backoff.
    BfdDown,
}

impl From<DecodeError> for Event {
    fn from(e: DecodeError) -> Event {
        match e.kind {
            ErrorKind::Header => Event::BgpHeaderErr(e.notification),
            ErrorKind::Open => Event::BgpOpenMsgErr(e.notification),
            ErrorKind::Update => Event::UpdateMsgErr(e.notification),
            ErrorKind::RouteRefresh => Event::RouteRefreshMsgErr(e.notification),
        }
    }
}

impl From<&PeerOpen> for OpenParams {
    fn from(o: &PeerOpen) -> OpenParams {
        OpenParams {
            peer_hold_time: o.hold_time,
            bgp_id: o.bgp_id,
        }
    }
}

/// Which incoming connection an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// The connection of the [`Event::IncomingConnection`] being handled.
    New,
    /// The colliding connection kept by [`Action::HoldIncoming`].
    Held,
}

/// What the session task must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer (result: `TcpCrAcked` or `TcpConnectionFails`).
    Connect,
    /// Accept the pending or next incoming connection (result: `TcpConnectionConfirmed`).
    Listen,
    /// Send our OPEN.
    SendOpen,
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send this NOTIFICATION (before the connection is dropped).
    SendNotification(Notification),
    /// Close the TCP connection and forget the session's Adj-RIB-Out.
    DropConnection,
    /// Arm (or re-arm) a timer.
    StartTimer(Timer, Duration),
    /// Stop a timer.
    StopTimer(Timer),
    /// The session reached Established: send the whole Adj-RIB-Out and End-of-RIB.
    SendInitialRib,
    /// Re-send the whole Adj-RIB-Out (ROUTE-REFRESH received).
    ResendRib,
    /// Make this incoming connection the session's (TTL security, attach); result:
    /// `TcpConnectionConfirmed` (nothing when it cannot be set up). Follows a
    /// `DropConnection` when the session had a connection or an attempt in flight.
    AcceptIncoming(Incoming),
    /// Keep the new incoming connection aside until the peer's OPEN on the current connection
    /// tells its BGP identifier (a collision to decide, RFC 4271 §6.8).
    HoldIncoming,
    /// Close this incoming connection with Cease / Connection Collision Resolution (best
    /// effort, not waited for): it lost a collision, or the session it was held for ended.
    RejectIncoming(Incoming),
    /// Close the new incoming connection without a word: the session has no use for it.
    RefuseIncoming,
    /// A connection collision (RFC 4271 §6.8) was decided in favour of the connection this
    /// side opened (for the metrics; the actions that carry it out follow).
    CollisionResolved(Initiator),
    /// Leave these capability codes out of every later OPEN: the peer refused them
    /// (RFC 5492 §5).
    SuppressCapabilities(Vec<u8>),
}

/// Which side opened a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// We connected.
    Local,
    /// The peer connected to our listener.
    Remote,
}

/// RFC 4271 §6.8 collision resolution: the connection initiated by the speaker with the
/// higher BGP Identifier (compared as unsigned 32-bit integers) survives.
pub fn collision_winner(local_id: std::net::Ipv4Addr, remote_id: std::net::Ipv4Addr) -> Initiator {
    if u32::from(local_id) < u32::from(remote_id) {
        Initiator::Remote
    } else {
        Initiator::Local
    }
}

/// Hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);

/// Static inputs of the FSM.
#[derive(Debug, Clone)]
pub struct FsmConfig {
    /// Our BGP identifier (decides connection collisions).
    pub router_id: Ipv4Addr,
    /// Our proposed hold time in seconds.
    pub hold_time: u16,
    /// Configured keepalive interval (seconds), if any.
    pub keepalive: Option<u16>,
    /// Passive peer: wait for the connection instead of connecting.
    pub passive: bool,
    /// Active peer that also accepts the peer's connections: collisions are detected and
    /// resolved (RFC 4271 §6.8). Without effect on a passive peer.
    pub accept_incoming: bool,
    /// ConnectRetry time: bound on one connection attempt.
    pub connect_retry: Duration,
    /// IdleHold backoff.
    pub backoff: Backoff,
}

/// The FSM of one peer.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    /// Consecutive failures since the last Established (drives the backoff).
    failures: u32,
    /// ManualStop received: never restart.
    stopped: bool,
    /// Negotiated hold time (0 = no hold/keepalive timers).
    hold: Duration,
    keepalive: Duration,
    rng: u64,
    /// Who opened the session's current connection (`None`: no connection).
    conn: Option<Initiator>,
    /// A colliding incoming connection is held ([`Action::HoldIncoming`]).
    held: bool,
    /// The peer's BGP identifier, from its OPEN on the current connection.
    peer_id: Option<Ipv4Addr>,
    /// Capability codes the peer refused (RFC 5492 §5).
    suppressed: Vec<u8>,
}

/// Capabilities we stop offering when the peer refuses them; the others are needed for the
/// session to work at all (RFC 5492 §5 leaves the choice to the speaker).
const REFUSABLE: [CapabilityCode; 4] = [
    CapabilityCode::MultiProtocol,
    CapabilityCode::RouteRefresh,
    CapabilityCode::GracefulRestart,
    CapabilityCode::FourOctetAs,
];

impl Fsm {
    /// A new FSM in Idle; `seed` feeds the jitter of the backoff.
    pub fn new(cfg: FsmConfig, seed: u64) -> Self {
        Fsm {
            cfg,
            state: State::Idle,
            failures: 0,
            stopped: false,
            hold: Duration::ZERO,
            keepalive: Duration::ZERO,
            rng: seed | 1,
            conn: None,
            held: false,
            peer_id: None,
            suppressed: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Negotiated hold time (valid from OpenConfirm on).
    pub fn hold_time(&self) -> Duration {
        self.hold
    }

    /// Negotiated keepalive interval (valid from OpenConfirm on).
    pub fn keepalive_time(&self) -> Duration {
        self.keepalive
    }

    /// True after ManualStop.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Consecutive failures since the last Established session.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Capability codes left out of our OPENs because the peer refused them.
    pub fn suppressed_capabilities(&self) -> &[u8] {
        &self.suppressed
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: plenty for jitter.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `d` times a uniform random factor in [0.75, 1.0] (RFC 4271 §10: KeepaliveTimer and
    /// ConnectRetryTimer are jittered so that many sessions do not fire in step).
    fn jitter(&mut self, d: Duration) -> Duration {
        let frac = (self.next_rand() >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.75 + frac / 4.0)
    }

    /// Apply new local-only settings (keepalive interval, backoff) to a running FSM. When the
    /// session has negotiated timers, returns the new keepalive interval to re-arm the timer
    /// with (`None` when keepalives are off or not yet negotiated).
    pub fn reconfigure(&mut self, keepalive: Option<u16>, backoff: Backoff) -> Option<Duration> {
        self.cfg.keepalive = keepalive;
        self.cfg.backoff = backoff;
        if !matches!(self.state, State::OpenConfirm | State::Established) || self.hold.is_zero() {
            return None;
        }
        let hold = u16::try_from(self.hold.as_secs()).unwrap_or(u16::MAX);
        let third = u64::from(hold / 3);
        let ka = match keepalive {
            Some(k) => u64::from(k).min(third),
            None => third,
        };
        self.keepalive = Duration::from_secs(ka.max(1));
        Some(self.jitter(self.keepalive))
    }

    /// Backoff for the current failure count, with jitter: a uniform factor in [0.5, 1.0].
    fn backoff_delay(&mut self) -> Duration {
        let base = self.cfg.backoff.delay(self.failures.saturating_sub(1));
        let frac = (self.next_rand() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + frac / 2.0)
    }

    fn start_sequence(&mut self, passive: bool) -> Vec<Action> {
        let mut a = vec![Action::StartTimer(
            Timer::ConnectRetry,
            self.jitter(self.cfg.connect_retry),
        )];
        if passive {
            self.state = State::Active;
            a.push(Action::Listen);
        } else {
            self.state = State::Connect;
            a.push(Action::Connect);
        }
        a
    }

    /// Go to Idle after a failure: optionally notify, drop, stop timers, arm the backoff.
    fn fail(&mut self, notify: Option<Notification>) -> Vec<Action> {
        let mut a = Vec::new();
        if let Some(n) = notify {
            a.push(Action::SendNotification(n));
        }
        a.extend(self.drop_connection());
        a.extend(self.stop_all_timers());
        self.state = State::Idle;
        if !self.stopped {
            self.failures = self.failures.saturating_add(1);
            let d = self.backoff_delay();
            a.push(Action::StartTimer(Timer::IdleHold, d));
        }
        a
    }

    /// Drop the current connection (and reject a held one: the session it waited for is gone).
    fn drop_connection(&mut self) -> Vec<Action> {
        let mut a = Vec::new();
        if std::mem::take(&mut self.held) {
            a.push(Action::RejectIncoming(Incoming::Held));
        }
        a.push(Action::DropConnection);
        self.conn = None;
        self.peer_id = None;
        a
    }

    /// RFC 4271 event 23, OpenCollisionDump: the current connection lost a collision. Cease /
    /// Connection Collision Resolution on it, drop it and wait in Active for the winner; not a
    /// failure (no backoff).
    fn collision_dump(&mut self) -> Vec<Action> {
        self.state = State::Active;
        let mut a = vec![Action::SendNotification(Notification::cease(
            CeaseSubcode::ConnectionCollisionResolution,
        ))];
        a.extend(self.drop_connection());
        a.push(Action::StopTimer(Timer::Hold));
        a.push(Action::StopTimer(Timer::Keepalive));
        a.push(Action::StartTimer(
            Timer::ConnectRetry,
            self.jitter(self.cfg.connect_retry),
        ));
        a
    }

    /// Decide a collision between our current (outgoing) connection and an incoming one
    /// (`which`) now that the peer's identifier is known: reject the incoming connection, or
    /// dump ours and accept it. Also says whether ours survives (the caller carries on with it).
    fn resolve_collision(&mut self, remote_id: Ipv4Addr, which: Incoming) -> (Vec<Action>, bool) {
        let kept = collision_winner(self.cfg.router_id, remote_id);
        let mut a = vec![Action::CollisionResolved(kept)];
        match kept {
            Initiator::Local => {
                info!(%remote_id, "connection collision: keeping our connection (higher BGP identifier)");
                a.push(Action::RejectIncoming(which));
                (a, true)
            }
            Initiator::Remote => {
                info!(%remote_id, "connection collision: keeping the peer's connection (higher BGP identifier)");
                a.extend(self.collision_dump());
                a.push(Action::AcceptIncoming(which));
                (a, false)
            }
        }
    }

    /// The peer connected to our listener.
    fn incoming(&mut self) -> Vec<Action> {
        use State as S;
        let collisions = self.cfg.accept_incoming && !self.cfg.passive;
        let ours = self.conn == Some(Initiator::Local);
        match self.state {
            S::Connect if collisions && self.conn.is_none() => {
                // Our attempt is still in flight: take the peer's connection.
                debug!("incoming connection while connecting: taking it");
                let mut a = self.drop_connection();
                a.push(Action::AcceptIncoming(Incoming::New));
                return a;
            }
            S::OpenSent if collisions && ours => {
                debug!("colliding incoming connection held until the peer's OPEN");
                let mut a = Vec::new();
                if self.held {
                    a.push(Action::RejectIncoming(Incoming::Held));
                }
                self.held = true;
                a.push(Action::HoldIncoming);
                return a;
            }
            S::OpenConfirm if collisions && ours => {
                if let Some(id) = self.peer_id {
                    return self.resolve_collision(id, Incoming::New).0;
                }
            }
            _ => {}
        }
        if self.conn.is_some() || !matches!(self.state, S::Active | S::Idle) || self.stopped {
            debug!("refusing a second connection from the peer");
            return vec![Action::RefuseIncoming];
        }
        let mut a = Vec::new();
        if self.state == S::Idle {
            // The peer may connect during our backoff: start at once (event 5).
            a.push(Action::StopTimer(Timer::IdleHold));
            a.extend(self.start_sequence(true));
        }
        a.push(Action::AcceptIncoming(Incoming::New));
        a
    }

    /// Capability codes of an Unsupported Capability NOTIFICATION that we can do without and
    /// have not left out yet; remembered as left out.
    fn refused_capabilities(&mut self, n: &Notification) -> Vec<u8> {
        let unsupported = Notification::open_error(OpenErrorSubcode::UnsupportedCapability, vec![]);
        if (n.code, n.subcode) != (unsupported.code, unsupported.subcode) {
            return vec![];
        }
        let refusable = REFUSABLE.map(u8::from);
        let mut new = Vec::new();
        for code in unsupported_capabilities(&n.data) {
            if refusable.contains(&code) && !self.suppressed.contains(&code) {
                self.suppressed.push(code);
                new.push(code);
            }
        }
        new
    }

    fn stop_all_timers(&self) -> Vec<Action> {
        vec![
            Action::StopTimer(Timer::ConnectRetry),
            Action::StopTimer(Timer::Hold),
            Action::StopTimer(Timer::Keepalive),
        ]
    }

    fn restart_hold(&self) -> Vec<Action> {
        if self.hold.is_zero() {
            vec![]
        } else {
            vec![Action::StartTimer(Timer::Hold, self.hold)]
        }
    }

    fn negotiate(&mut self, p: OpenParams) {
        let hold = self.cfg.hold_time.min(p.peer_hold_time);
        self.hold = Duration::from_secs(u64::from(hold));
        let third = u64::from(hold / 3);
        let ka = match self.cfg.keepalive {
            Some(k) => u64::from(k).min(third),
            None => third,
        };
        self.keepalive = Duration::from_secs(if hold == 0 { 0 } else { ka.max(1) });
    }

    /// Feed one event; returns the actions to carry out, in order.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        use Event as E;
        use State as S;
        // ManualStop is the same from every state.
        if let E::ManualStop(_) | E::ManualStopForRestart = &event {
            self.stopped = true;
            let mut a = Vec::new();
            if let E::ManualStop(n) = &event {
                if matches!(self.state, S::OpenSent | S::OpenConfirm | S::Established) {
                    a.push(Action::SendNotification(n.clone()));
                }
            }
            a.extend(self.drop_connection());
            a.extend(self.stop_all_timers());
            a.push(Action::StopTimer(Timer::IdleHold));
            self.state = S::Idle;
            return a;
        }
        if event == E::IncomingConnection {
            return self.incoming();
        }
        // A refused capability is left out of later OPENs whatever the state.
        let mut a = Vec::new();
        if let E::NotifMsg(n) | E::NotifMsgVerErr(n) = &event {
            let codes = self.refused_capabilities(n);
            if !codes.is_empty() {
                a.push(Action::SuppressCapabilities(codes));
            }
        }
        a.extend(self.transition(event));
        a
    }

    /// The state-by-event table of RFC 4271 §8.2.2 (ManualStop and incoming connections are
    /// handled before it).
    fn transition(&mut self, event: Event) -> Vec<Action> {
        use Event as E;
        use State as S;
        match (self.state, event) {
            // ---- Idle ----
            (S::Idle, E::ManualStart) if !self.stopped => {
                self.failures = 0;
                self.start_sequence(self.cfg.passive)
            }
            (S::Idle, E::AutomaticStart | E::IdleHoldTimerExpires) if !self.stopped => {
                self.start_sequence(self.cfg.passive)
            }
            (S::Idle, E::AutomaticStartPassive) if !self.stopped => self.start_sequence(true),
            // Everything else is ignored in Idle (RFC 4271: "all other events are ignored").
            (S::Idle, _) => vec![],

            // ---- Connect ----
            (S::Connect, E::ConnectRetryTimerExpires) => {
                // The attempt took too long: give up on it and retry right away.
                let mut a = self.drop_connection();
                a.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.jitter(self.cfg.connect_retry),
                ));
                a.push(Action::Connect);
                a
            }
            (S::Connect | S::Active, e @ (E::TcpCrAcked | E::TcpConnectionConfirmed)) => {
                self.state = S::OpenSent;
                self.conn = Some(if e == E::TcpCrAcked {
                    Initiator::Local
                } else {
                    Initiator::Remote
                });
                vec![
                    Action::StopTimer(Timer::ConnectRetry),
                    Action::SendOpen,
                    Action::StartTimer(Timer::Hold, LARGE_HOLD_TIME),
                ]
            }
            (S::Connect | S::Active, E::TcpConnectionFails) => self.fail(None),

            // ---- Active (passive peer waiting) ----
            (S::Active, E::ConnectRetryTimerExpires) => {
                vec![Action::StartTimer(
                    Timer::ConnectRetry,
                    self.jitter(self.cfg.connect_retry),
                )]
            }

            // ---- OpenSent ----
            (S::OpenSent, E::BgpOpen(p)) => {
                let mut a = Vec::new();
                if std::mem::take(&mut self.held) {
                    // The OPEN tells who wins the collision with the held connection.
                    let (resolved, ours) = self.resolve_collision(p.bgp_id, Incoming::Held);
                    if !ours {
                        return resolved;
                    }
                    a = resolved;
                }
                self.negotiate(p);
                self.peer_id = Some(p.bgp_id);
                self.state = S::OpenConfirm;
                a.push(Action::SendKeepalive);
                if self.hold.is_zero() {
                    a.push(Action::StopTimer(Timer::Hold));
                    a.push(Action::StopTimer(Timer::Keepalive));
                } else {
                    let ka = self.jitter(self.keepalive);
                    a.push(Action::StartTimer(Timer::Keepalive, ka));
                    a.push(Action::StartTimer(Timer::Hold, self.hold));
                }
                a
            }
            (S::OpenSent, E::TcpConnectionFails) => self.fail(None),

            // ---- OpenConfirm ----
            (S::OpenConfirm, E::KeepAliveMsg) => {
                self.state = S::Established;
                self.failures = 0;
                let mut a = self.restart_hold();
                a.push(Action::SendInitialRib);
                a
            }

            // ---- Established ----
            (S::Established, E::KeepAliveMsg | E::UpdateMsg) => self.restart_hold(),
            (S::Established, E::RouteRefreshMsg) => {
                let mut a = self.restart_hold();
                a.push(Action::ResendRib);
                a
            }

            // ---- common to OpenSent / OpenConfirm / Established ----
            (S::OpenConfirm | S::Established, E::KeepaliveTimerExpires) => {
                vec![
                    Action::SendKeepalive,
                    Action::StartTimer(Timer::Keepalive, self.jitter(self.keepalive)),
                ]
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::HoldTimerExpires) => {
                self.fail(Some(Notification::hold_timer_expired()))
            }
            (
                S::OpenSent | S::OpenConfirm | S::Established,
                E::BgpHeaderErr(n)
                | E::BgpOpenMsgErr(n)
                | E::UpdateMsgErr(n)
                | E::RouteRefreshMsgErr(n),
            ) => self.fail(Some(n)),
            (
                S::OpenSent | S::OpenConfirm | S::Established,
                E::NotifMsg(_) | E::NotifMsgVerErr(_) | E::TcpConnectionFails,
            ) => self.fail(None),
            // Unexpected message in state: FSM error with the RFC 6608 subcode.
            (
                s @ (S::OpenSent | S::OpenConfirm | S::Established),
                E::BgpOpen(_) | E::KeepAliveMsg | E::UpdateMsg | E::RouteRefreshMsg,
            ) => {
                let sub = match s {
                    S::OpenSent => FsmErrorSubcode::UnexpectedMessageInOpenSent,
                    S::OpenConfirm => FsmErrorSubcode::UnexpectedMessageInOpenConfirm,
                    _ => FsmErrorSubcode::UnexpectedMessageInEstablished,
                };
                self.fail(Some(Notification::fsm_error(sub)))
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::BfdDown) => {
                self.fail(Some(Notification::cease(CeaseSubcode::BfdDown)))
            }
            // Without a BGP session there is nothing for BFD to take down.
            (S::Connect | S::Active, E::BfdDown) => vec![],
            // Connecting / waiting states: timers of the other states and stray events.
            (S::Connect | S::Active, E::HoldTimerExpires | E::KeepaliveTimerExpires) => vec![],
            (S::Connect | S::Active, _) => self.fail(None),
            // Remaining combinations (start events while running, stray timers, late TCP
            // confirmations) are ignored.
            (_, _) => vec![],
        }
    }
}

#[cfg(test)]
mod tests;
