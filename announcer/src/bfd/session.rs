//! One BFD session's task: the I/O and clocks around the pure FSM ([`super::fsm`]).
//!
//! The task owns the session's [`TxSocket`], its two timers (deadlines on tokio's clock, so
//! tests can pause time) and the FSM. Packets arrive already decoded and TTL-checked from the
//! receive task ([`super::service`]) through a bounded queue. It runs on its own tokio task,
//! apart from the BGP session and the control loop, so a busy peer or a slow IPVS read never
//! delays a transmission; a send is one non-blocking syscall.
//!
//! The state goes out through a `watch` (the BGP session waits on it), the metrics, and a
//! [`Snapshot`] that `ipvs-herald status` reads.

use super::fsm::{Action, Event, Fsm, Params, Timer};
use super::metrics::{DropReason, Metrics};
use super::network::TxSocket;
use super::packet::{ControlPacket, Diag, State};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn, Instrument};

/// AdminDown packets sent when a session stops (RFC 5880 §6.8.16: the peer learns it was an
/// administrative stop, not a failure, from any one of them).
pub const ADMIN_DOWN_PACKETS: u32 = 3;

/// Commands to a running session.
#[derive(Debug)]
pub enum Ctl {
    /// New timing (a Poll Sequence when Up).
    Reconfigure(Params),
    /// Send AdminDown and stop the task.
    Stop,
}

/// What the session's users see of it (through a `watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// bfd.SessionState.
    pub state: State,
    /// bfd.LocalDiag.
    pub diag: Diag,
    /// bfd.RemoteSessionState: AdminDown tells a planned stop from a failure (RFC 5882
    /// §4.3.2).
    pub remote: State,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Down,
            diag: Diag::NoDiagnostic,
            remote: State::Down,
        }
    }
}

/// The session as `ipvs-herald status` shows it: its [`Status`] and the negotiated timing.
/// Shared with the task behind a mutex that is taken only when something changed, so the
/// status reader never waits on a watch and the task never notifies the BGP session for a
/// mere timing change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    /// Negotiated transmit interval before jitter (RFC 5880 §6.8.2).
    pub tx_interval: Duration,
    /// Negotiated detection time (RFC 5880 §6.8.4); zero before the peer was heard.
    pub detection_time: Duration,
}

/// The static description of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Label for logs and metrics (the BGP peer's name).
    pub name: String,
    /// Where to send: the peer's address and port 3784 (another port in tests).
    pub peer: SocketAddr,
    /// Timing.
    pub params: Params,
}

/// One session's task state.
#[derive(Debug)]
pub struct SessionTask {
    pub(crate) cfg: SessionConfig,
    pub(crate) fsm: Fsm,
    pub(crate) tx: TxSocket,
    pub(crate) rx: mpsc::Receiver<ControlPacket>,
    pub(crate) ctl: mpsc::Receiver<Ctl>,
    pub(crate) state: watch::Sender<Status>,
    pub(crate) metrics: Metrics,
    pub(crate) rng: u64,
    /// Deadlines of [`Timer::Tx`] and [`Timer::Detect`].
    timers: [Option<Instant>; 2],
    /// The last published [`Snapshot`] and where readers find it.
    published: Snapshot,
    snapshot: Arc<Mutex<Snapshot>>,
}

fn index(t: Timer) -> usize {
    match t {
        Timer::Tx => 0,
        Timer::Detect => 1,
    }
}

impl SessionTask {
    /// A task for `cfg` (not started).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: SessionConfig,
        local_discr: u32,
        tx: TxSocket,
        rx: mpsc::Receiver<ControlPacket>,
        ctl: mpsc::Receiver<Ctl>,
        state: watch::Sender<Status>,
        metrics: Metrics,
        seed: u64,
    ) -> Self {
        SessionTask {
            fsm: Fsm::new(cfg.params, local_discr),
            cfg,
            tx,
            rx,
            ctl,
            state,
            metrics,
            rng: seed | 1,
            timers: [None; 2],
            published: Snapshot::default(),
            snapshot: Arc::default(),
        }
    }

    /// Where the task publishes its [`Snapshot`].
    pub(crate) fn snapshot(&self) -> Arc<Mutex<Snapshot>> {
        self.snapshot.clone()
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64*: plenty for jitter.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Run until stopped (or the handle is dropped).
    pub async fn run(self) {
        let span = info_span!("bfd_peer", peer = %self.cfg.name, addr = %self.cfg.peer.ip());
        self.run_inner().instrument(span).await
    }

    async fn run_inner(mut self) {
        info!(
            tx_ms = self.cfg.params.desired_min_tx.as_millis() as u64,
            rx_ms = self.cfg.params.required_min_rx.as_millis() as u64,
            mult = self.cfg.params.detect_mult,
            "starting BFD session"
        );
        let name = self.cfg.name.clone();
        self.metrics.set_state(&name, State::Down, self.fsm.diag());
        self.handle(Event::Start);
        loop {
            let next = self
                .timers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (t, i)))
                .min();
            tokio::select! {
                biased;
                // Timers first: a flood of packets must not delay our own transmissions.
                i = async {
                    match next {
                        Some((at, i)) => { tokio::time::sleep_until(at).await; i }
                        None => std::future::pending().await,
                    }
                } => {
                    self.timers[i] = None;
                    self.handle(if i == 0 { Event::TxTimerExpires } else { Event::DetectTimerExpires });
                }
                c = self.ctl.recv() => match c {
                    Some(Ctl::Reconfigure(p)) => {
                        info!(?p, "BFD timing changed");
                        self.cfg.params = p;
                        self.handle(Event::Reconfigure(p));
                    }
                    Some(Ctl::Stop) | None => break,
                },
                p = self.rx.recv() => match p {
                    Some(p) => self.handle(Event::Received(p)),
                    None => break,
                },
            }
        }
        // AdminDown, sent a few times at the slow rate's pace would outlive the caller's
        // shutdown: send them back to back instead.
        self.handle(Event::AdminDown);
        for _ in 1..ADMIN_DOWN_PACKETS {
            self.timers = [None; 2];
            self.handle(Event::TxTimerExpires);
        }
        info!("BFD session stopped");
    }

    fn handle(&mut self, ev: Event) {
        let received = matches!(ev, Event::Received(_));
        let j = self.jitter();
        let actions = self.fsm.step(ev, j);
        let mut discarded = false;
        for a in actions {
            match a {
                Action::Send(p) => match self.tx.send(&p, self.cfg.peer) {
                    Ok(()) => self.metrics.packet(&self.cfg.name, "sent"),
                    Err(e) => {
                        debug!(error = %e, "BFD send failed");
                        self.metrics.send_error(&self.cfg.name);
                    }
                },
                Action::StartTimer(t, d) => self.timers[index(t)] = Some(Instant::now() + d),
                Action::StopTimer(t) => self.timers[index(t)] = None,
                Action::StateChange { from, to, diag } => {
                    if from == State::Up {
                        warn!(%from, %to, %diag, "BFD session state change");
                    } else {
                        info!(%from, %to, %diag, "BFD session state change");
                    }
                    self.metrics.transition(&self.cfg.name, from, to);
                    self.metrics.set_state(&self.cfg.name, to, diag);
                    self.state.send_replace(Status {
                        state: to,
                        diag,
                        remote: self.fsm.remote_state(),
                    });
                }
                Action::Discarded(why) => {
                    debug!(?why, "BFD packet discarded");
                    discarded = true;
                    self.metrics.dropped(DropReason::Discarded);
                }
            }
        }
        if received && !discarded {
            self.metrics.packet(&self.cfg.name, "received");
        }
        self.metrics.set_intervals(
            &self.cfg.name,
            self.fsm.tx_interval(),
            self.fsm.detection_time(),
        );
        // The watch's `remote` is as of the last state change; status wants the latest.
        let now = Snapshot {
            status: Status {
                remote: self.fsm.remote_state(),
                ..*self.state.borrow()
            },
            tx_interval: self.fsm.tx_interval(),
            detection_time: self.fsm.detection_time(),
        };
        if now != self.published {
            self.published = now;
            if let Ok(mut s) = self.snapshot.lock() {
                *s = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The task's timers on tokio's paused clock, with a real socket on 127.0.0.1.
    use super::*;
    use crate::bfd::packet::Flags;
    use std::net::{IpAddr, Ipv4Addr, UdpSocket};
    use std::time::Duration;

    const OURS: u32 = 0x51;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    struct Rig {
        sink: UdpSocket,
        to_task: mpsc::Sender<ControlPacket>,
        _ctl: mpsc::Sender<Ctl>,
        state: watch::Receiver<Status>,
    }

    fn start() -> Rig {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sink = UdpSocket::bind((lo, 0)).unwrap();
        sink.set_nonblocking(true).unwrap();
        let (to_task, rx) = mpsc::channel(16);
        let (ctl_tx, ctl) = mpsc::channel(4);
        let (state_tx, state) = watch::channel(Status::default());
        let task = SessionTask::new(
            SessionConfig {
                name: "p".into(),
                peer: sink.local_addr().unwrap(),
                params: crate::bfd::Params::default(),
            },
            OURS,
            TxSocket::bind(lo, 1).unwrap(),
            rx,
            ctl,
            state_tx,
            Metrics::default(),
            7,
        );
        tokio::spawn(task.run());
        Rig {
            sink,
            to_task,
            _ctl: ctl_tx,
            state,
        }
    }

    /// Every packet the task sent so far.
    fn drain(sink: &UdpSocket) -> Vec<ControlPacket> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(n) = sink.recv(&mut buf) {
            out.push(ControlPacket::decode(&buf[..n]).unwrap());
        }
        out
    }

    fn peer(state: State) -> ControlPacket {
        ControlPacket {
            diag: Diag::NoDiagnostic,
            state,
            flags: Flags::default(),
            detect_mult: 3,
            my_discr: 0x99,
            your_discr: if state == State::Down { 0 } else { OURS },
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_rate_until_up_then_fast_then_detection_after_900_ms_of_silence() {
        let mut r = start();
        // 10 s while Down: one packet at start, then every 0.75-1 s.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let sent = drain(&r.sink);
        assert!((11..=14).contains(&sent.len()), "{} packets", sent.len());
        assert!(sent
            .iter()
            .all(|p| p.state == State::Down && p.desired_min_tx == 1_000_000));

        r.to_task.send(peer(State::Down)).await.unwrap();
        r.to_task.send(peer(State::Up)).await.unwrap();
        tokio::time::sleep(MS(1)).await;
        assert_eq!(r.state.borrow_and_update().state, State::Up);
        drain(&r.sink);
        // Up: 300 ms jittered to 225-300 ms. Keep the peer alive meanwhile.
        for _ in 0..6 {
            tokio::time::sleep(MS(500)).await;
            r.to_task.send(peer(State::Up)).await.unwrap();
        }
        tokio::time::sleep(MS(1)).await;
        let sent = drain(&r.sink);
        assert!(
            (10..=14).contains(&sent.len()),
            "{} packets in 3 s",
            sent.len()
        );
        assert!(sent.iter().all(|p| p.state == State::Up));
        assert!(sent[0].flags.poll, "the rate change is polled");

        // Silence: still Up just before 3 x 300 ms, Down just after.
        tokio::time::sleep(MS(880)).await;
        assert_eq!(r.state.borrow().state, State::Up);
        tokio::time::sleep(MS(40)).await;
        let st = *r.state.borrow();
        assert_eq!(
            (st.state, st.diag),
            (State::Down, Diag::ControlDetectionTimeExpired)
        );
        // Back to the slow rate.
        drain(&r.sink);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let sent = drain(&r.sink);
        assert!((3..=4).contains(&sent.len()), "{} packets", sent.len());
    }
}
