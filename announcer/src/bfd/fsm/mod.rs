//! The BFD state machine of RFC 5880 §6.2 and §6.8 (asynchronous mode), pure and I/O-free.
//!
//! [`Fsm::step`] takes one [`Event`] and returns the [`Action`]s the session task must carry
//! out (send a packet, arm or stop a [`Timer`], report a state change), in order, like the BGP
//! FSM (`crate::bgp::fsm`). The task owns the socket and the clocks; this module owns every
//! decision, so every rule and timer is tested with explicit durations and no clock.
//!
//! Randomness is an input: every `step` takes the jitter fraction for a TX timer armed during
//! that step (uniform in [0, 1), drawn by the task), so tests choose it.
//!
//! What is implemented (RFC 5880):
//! - §6.8.6 reception rules: discriminator check, the remote variables, Final ends a Poll
//!   Sequence, AdminDown discards, the Down → Init → Up three-way handshake, a remote Down or
//!   AdminDown takes an Up session Down (diag 3), a Poll is answered at once with a Final.
//! - §6.8.2/§6.8.3 timers: TX interval = max(our Desired Min TX, remote Required Min RX); no
//!   periodic TX when the remote Required Min RX is 0; Desired Min TX of at least 1 s while
//!   the session is not Up; a Poll Sequence on every change of our advertised intervals while
//!   Up (including the switch from 1 s to the configured rate on reaching Up), an increased TX
//!   interval and a decreased RX interval taking effect only at its Final.
//! - §6.8.4 detection time = remote Detect Mult × max(our Required Min RX in use, the remote
//!   Desired Min TX); on expiry an Init/Up session goes Down (diag 1) and the remote
//!   discriminator is forgotten (§6.8.1).
//! - §6.8.7 TX jitter: 75–100 % of the interval, 75–90 % when our Detect Mult is 1; no
//!   periodic TX while the remote is in Demand mode and both sides are Up.
//! - §6.8.16 AdminDown: diag 7, the detection timer stopped, packets still sent.
//!
//! Not implemented: Demand mode on our side (we never set D), the Echo function (we advertise
//! a Required Min Echo RX of 0), authentication ([`super::packet`]). We never set the C bit:
//! BFD runs in the same process as BGP, so it does not survive a control-plane restart
//! (RFC 5882 §4.3).
//!
//! Deviations, on purpose: one packet is sent at once on [`Event::Start`] and on
//! [`Event::AdminDown`] (so the peer learns of a shutdown before the task exits), besides the
//! RFC's immediate Final.

use super::packet::{ControlPacket, Diag, Flags, State};
use std::time::Duration;
use tracing::debug;

/// The slowest TX rate used until the session is Up (RFC 5880 §6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// One session's configured timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult (≥ 1).
    pub detect_mult: u8,
}

impl Default for Params {
    /// 300 ms × 3: sub-second detection (BIRD and FRR default to 100 ms RX with mult 5 /
    /// 300 ms × 3).
    fn default() -> Self {
        Params {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

/// Timers the session task runs for the FSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// When to send the next periodic Control packet.
    Tx,
    /// The detection time: the remote must be heard from within it.
    Detect,
}

/// FSM input events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin the session (from Down, or leave AdminDown).
    Start,
    /// A Control packet from the peer, already decoded (see [`ControlPacket::decode`]).
    Received(ControlPacket),
    /// The TX timer fired.
    TxTimerExpires,
    /// The detection timer fired.
    DetectTimerExpires,
    /// Hold the session down administratively (shutdown, maintenance).
    AdminDown,
    /// New configured timing.
    Reconfigure(Params),
}

/// Why a received packet was discarded by the session (the codec's reasons are
/// [`super::packet::DecodeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Your Discriminator is not ours.
    WrongDiscriminator {
        /// Your Discriminator in the packet.
        received: u32,
        /// Ours.
        ours: u32,
    },
    /// We are AdminDown (RFC 5880 §6.8.6).
    AdminDown,
}

/// What the session task must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet now.
    Send(ControlPacket),
    /// Arm (or re-arm) a timer.
    StartTimer(Timer, Duration),
    /// Stop a timer.
    StopTimer(Timer),
    /// The session changed state, for this reason.
    StateChange {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// bfd.LocalDiag after the change.
        diag: Diag,
    },
    /// The packet was ignored.
    Discarded(Discard),
}

/// The FSM of one BFD session.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: Params,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    /// bfd.RemoteMinRxInterval (initially 1 µs, RFC 5880 §6.8.1).
    remote_min_rx: Duration,
    /// The Desired Min TX of the last packet received.
    remote_desired_tx: Duration,
    /// The Detect Mult of the last packet received (0: none yet).
    remote_detect_mult: u8,
    remote_demand: bool,
    /// The Desired Min TX / Required Min RX we put in our packets.
    adv_tx: Duration,
    adv_rx: Duration,
    /// The values in force for our TX rate and for the detection time: they lag the advertised
    /// ones during a Poll Sequence (RFC 5880 §6.8.3).
    tx_in_use: Duration,
    rx_in_use: Duration,
    /// A Poll Sequence is in progress.
    poll: bool,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Fsm {
    /// A new session in Down; `local_discr` must be non-zero and unique among our sessions.
    pub fn new(cfg: Params, local_discr: u32) -> Self {
        let adv_tx = cfg.desired_min_tx.max(SLOW_TX);
        Fsm {
            cfg,
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::NoDiagnostic,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            adv_tx,
            adv_rx: cfg.required_min_rx,
            tx_in_use: adv_tx,
            rx_in_use: cfg.required_min_rx,
            poll: false,
        }
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// bfd.LocalDiag.
    pub fn diag(&self) -> Diag {
        self.local_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr (0: unknown).
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    /// The configured timing.
    pub fn params(&self) -> Params {
        self.cfg
    }

    /// A Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.poll
    }

    /// The negotiated TX interval before jitter (RFC 5880 §6.8.2).
    pub fn tx_interval(&self) -> Duration {
        self.tx_in_use.max(self.remote_min_rx)
    }

    /// The detection time (RFC 5880 §6.8.4); zero until a packet was received.
    pub fn detection_time(&self) -> Duration {
        self.rx_in_use
            .max(self.remote_desired_tx)
            .saturating_mul(u32::from(self.remote_detect_mult))
    }

    /// `d` reduced by the RFC 5880 §6.8.7 jitter: 75–100 %, 75–90 % with Detect Mult 1.
    pub fn jittered(&self, d: Duration, jitter: f64) -> Duration {
        let j = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let span = if self.cfg.detect_mult == 1 {
            0.15
        } else {
            0.25
        };
        d.mul_f64(0.75 + span * j)
    }

    fn packet(&self, poll: bool, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            flags: Flags {
                poll,
                final_,
                cpi: false,
                demand: false,
            },
            detect_mult: self.cfg.detect_mult.max(1),
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: micros(self.adv_tx),
            required_min_rx: micros(self.adv_rx),
            required_min_echo_rx: 0,
        }
    }

    fn arm_tx(&self, jitter: f64) -> Action {
        Action::StartTimer(Timer::Tx, self.jittered(self.tx_interval(), jitter))
    }

    /// Advertise the intervals the current state calls for; start a Poll Sequence when they
    /// change while Up (RFC 5880 §6.8.3). Returns whether the TX rate in use changed.
    fn update_params(&mut self) -> bool {
        let up = self.state == State::Up;
        let tx = if up {
            self.cfg.desired_min_tx
        } else {
            self.cfg.desired_min_tx.max(SLOW_TX)
        };
        let rx = self.cfg.required_min_rx;
        let old_in_use = self.tx_in_use;
        if up && (tx != self.adv_tx || rx != self.adv_rx) {
            self.poll = true;
        }
        // Slower TX or faster RX must wait for the peer's Final while Up.
        if !(up && tx > self.adv_tx) {
            self.tx_in_use = tx;
        }
        if !(up && rx < self.adv_rx) {
            self.rx_in_use = rx;
        }
        self.adv_tx = tx;
        self.adv_rx = rx;
        old_in_use != self.tx_in_use
    }

    fn end_poll(&mut self) {
        self.poll = false;
        self.tx_in_use = self.adv_tx;
        self.rx_in_use = self.adv_rx;
    }

    fn set_state(&mut self, to: State, diag: Diag, a: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        if from == State::Up {
            // Leaving Up: back to the slow rate at once, no Poll (RFC 5880 §6.8.3).
            self.end_poll();
        }
        debug!(%from, %to, %diag, "BFD state change");
        a.push(Action::StateChange { from, to, diag });
    }

    /// Feed one event; `jitter` (in [0, 1)) is the random fraction for a TX timer armed now.
    pub fn step(&mut self, event: Event, jitter: f64) -> Vec<Action> {
        let mut a = Vec::new();
        match event {
            Event::Start => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, self.local_diag, &mut a);
                }
                self.update_params();
                a.push(Action::Send(self.packet(self.poll, false)));
                a.push(self.arm_tx(jitter));
            }
            Event::AdminDown => {
                self.set_state(State::AdminDown, Diag::AdministrativelyDown, &mut a);
                self.update_params();
                a.push(Action::StopTimer(Timer::Detect));
                a.push(Action::Send(self.packet(false, false)));
                a.push(self.arm_tx(jitter));
            }
            Event::Reconfigure(p) => {
                self.cfg = p;
                if self.update_params() {
                    a.push(self.arm_tx(jitter));
                }
            }
            Event::TxTimerExpires => {
                let demand_quiet = self.remote_demand
                    && self.state == State::Up
                    && self.remote_state == State::Up
                    && !self.poll;
                if !self.remote_min_rx.is_zero() && !demand_quiet {
                    a.push(Action::Send(self.packet(self.poll, false)));
                }
                a.push(self.arm_tx(jitter));
            }
            Event::DetectTimerExpires => {
                if matches!(self.state, State::Init | State::Up) {
                    self.set_state(State::Down, Diag::ControlDetectionTimeExpired, &mut a);
                    self.update_params();
                }
                // RFC 5880 §6.8.1: the remote is forgotten after a silent detection time.
                self.remote_discr = 0;
                self.remote_state = State::Down;
                self.remote_demand = false;
                self.remote_detect_mult = 0;
            }
            Event::Received(p) => self.receive(p, jitter, &mut a),
        }
        a
    }

    /// RFC 5880 §6.8.6, after the codec's checks.
    fn receive(&mut self, p: ControlPacket, jitter: f64, a: &mut Vec<Action>) {
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            a.push(Action::Discarded(Discard::WrongDiscriminator {
                received: p.your_discr,
                ours: self.local_discr,
            }));
            return;
        }
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_demand = p.flags.demand;
        let old_tx = self.tx_interval();
        self.remote_min_rx = Duration::from_micros(u64::from(p.required_min_rx));
        self.remote_desired_tx = Duration::from_micros(u64::from(p.desired_min_tx));
        self.remote_detect_mult = p.detect_mult;
        if p.flags.final_ && self.poll {
            self.end_poll();
        }
        if self.state == State::AdminDown {
            a.push(Action::Discarded(Discard::AdminDown));
            return;
        }
        let before = self.state;
        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, Diag::NeighborSignaledSessionDown, a);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.set_state(State::Init, Diag::NoDiagnostic, a),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, Diag::NoDiagnostic, a)
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Diag::NeighborSignaledSessionDown, a)
                }
                _ => {}
            }
        }
        if before != self.state {
            self.update_params();
        }
        if p.flags.poll {
            a.push(Action::Send(self.packet(false, true)));
        }
        // A new rate (our state's, or the peer's Required Min RX) applies from now on.
        if before != self.state || old_tx != self.tx_interval() {
            a.push(self.arm_tx(jitter));
        }
        a.push(Action::StartTimer(Timer::Detect, self.detection_time()));
    }
}

#[cfg(test)]
mod tests;
