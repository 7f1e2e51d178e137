//! The BFD service: the receive sockets shared by every session, and the sessions.
//!
//! [`Bfd::session`] starts one session (one per BGP peer, RFC 5882 §2) and returns its
//! [`SessionHandle`]: the session's state as a `watch`, reconfiguration, and stop (also on
//! drop). One receive task per address family and encapsulation, started with the first
//! session that needs it, owns the [`RxSocket`] on port 3784 (single hop) or 4784 (multihop):
//! it drops datagrams whose TTL / hop limit the session's [`Hop`] refuses (single hop: not
//! 255) or that do not decode, and hands the others to the session of their source address.
//!
//! Sessions are keyed by the peer's address and the encapsulation: BFD here has one session
//! per BGP peer, and the address is known before the peer's discriminator is.

use super::fsm::Params;
use super::metrics::{DropReason, Metrics};
use super::network::{Hop, RxSocket, TxSocket, MULTIHOP_PORT, PORT};
use super::packet::ControlPacket;
use super::session::{Ctl, SessionConfig, SessionTask, Snapshot, Status};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;

/// Packets queued per session before the receive task drops them.
const QUEUE: usize = 64;

/// Why a session could not start.
#[derive(Debug, Error)]
pub enum BfdError {
    /// The receive socket (port 3784 or 4784 of this family) could not be bound: another BFD
    /// daemon (a local BIRD or FRR) may hold it.
    #[error("cannot bind the BFD receive socket {addr}: {source}")]
    BindRx {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// No sending socket could be bound.
    #[error("cannot bind a BFD sending socket on {addr}: {source}")]
    BindTx {
        /// The local address.
        addr: IpAddr,
        /// The error.
        source: io::Error,
    },
    /// A session for this address exists already.
    #[error("a BFD session for {0} exists already")]
    Duplicate(IpAddr),
}

/// A session's key: the peer's address, and whether the session is multihop.
type PeerKey = (IpAddr, bool);

/// Where the receive task hands a session's packets, and the TTL rule they must pass.
#[derive(Clone, Debug)]
struct PeerEntry {
    tx: mpsc::Sender<ControlPacket>,
    hop: Hop,
}

type Peers = Arc<Mutex<HashMap<PeerKey, PeerEntry>>>;

/// The UDP ports of a service: where it listens and where its peers listen, per encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Single-hop receive port ([`PORT`]).
    pub single: u16,
    /// Multihop receive port ([`MULTIHOP_PORT`]).
    pub multi: u16,
    /// The peers' single-hop port.
    pub peer_single: u16,
    /// The peers' multihop port.
    pub peer_multi: u16,
}

impl Ports {
    /// The standard ports (RFC 5881 §4, RFC 5883 §5).
    pub const STANDARD: Ports = Ports {
        single: PORT,
        multi: MULTIHOP_PORT,
        peer_single: PORT,
        peer_multi: MULTIHOP_PORT,
    };
}

struct Inner {
    peers: Peers,
    /// Receive tasks: IPv4 and IPv6 single hop, then IPv4 and IPv6 multihop.
    rx_tasks: Mutex<[Option<JoinHandle<()>>; 4]>,
    metrics: Metrics,
    /// Ports ([`Ports::STANDARD`]; others in tests).
    ports: Ports,
    next_discr: AtomicU32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(tasks) = self.rx_tasks.lock() {
            for t in tasks.iter().flatten() {
                t.abort();
            }
        }
    }
}

/// The BFD service; cheap to clone.
#[derive(Clone)]
pub struct Bfd {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bfd")
            .field("ports", &self.inner.ports)
            .finish()
    }
}

/// One running session.
#[derive(Debug)]
pub struct SessionHandle {
    key: PeerKey,
    state: watch::Receiver<Status>,
    snapshot: Arc<Mutex<Snapshot>>,
    ctl: mpsc::Sender<Ctl>,
    peers: Peers,
    task: Option<JoinHandle<()>>,
}

impl SessionHandle {
    /// The session's state, updated on every change.
    pub fn state(&self) -> watch::Receiver<Status> {
        self.state.clone()
    }

    /// The session's state and negotiated timing, for `ipvs-herald status`.
    pub fn snapshot(&self) -> Arc<Mutex<Snapshot>> {
        self.snapshot.clone()
    }

    /// New timing (a Poll Sequence when Up).
    pub fn reconfigure(&self, params: Params) {
        let _ = self.ctl.try_send(Ctl::Reconfigure(params));
    }

    /// Send AdminDown and wait for the task to end.
    pub async fn stop(mut self) {
        let _ = self.ctl.try_send(Ctl::Stop);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        // The task sees its queues close, sends AdminDown and ends.
        if let Ok(mut p) = self.peers.lock() {
            p.remove(&self.key);
        }
        let _ = self.ctl.try_send(Ctl::Stop);
    }
}

impl Bfd {
    /// A service on the standard ports ([`Ports::STANDARD`]).
    pub fn new(metrics: Metrics) -> Self {
        Self::with_ports(metrics, Ports::STANDARD)
    }

    /// A service on other ports (tests on one host).
    pub fn with_ports(metrics: Metrics, ports: Ports) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Bfd {
            inner: Arc::new(Inner {
                peers: Arc::default(),
                rx_tasks: Mutex::new([None, None, None, None]),
                metrics,
                ports,
                next_discr: AtomicU32::new(seed | 1),
            }),
        }
    }

    /// Start a session to `peer` (sending from `local`, or a kernel-chosen source when
    /// `None`), single hop or multihop. Must be called within a tokio runtime.
    pub fn session(
        &self,
        name: &str,
        peer: IpAddr,
        local: Option<IpAddr>,
        params: Params,
        hop: Hop,
    ) -> Result<SessionHandle, BfdError> {
        self.ensure_rx(peer.is_ipv6(), hop.is_multi())?;
        let local = local.unwrap_or(if peer.is_ipv6() {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
        let mut discr = self.inner.next_discr.fetch_add(1, Ordering::Relaxed);
        if discr == 0 {
            discr = self.inner.next_discr.fetch_add(1, Ordering::Relaxed);
        }
        let tx = TxSocket::bind(local, u64::from(discr)).map_err(|source| BfdError::BindTx {
            addr: local,
            source,
        })?;
        let (ptx, prx) = mpsc::channel(QUEUE);
        {
            let mut peers = self
                .inner
                .peers
                .lock()
                .map_err(|_| BfdError::Duplicate(peer))?;
            if peers.contains_key(&(peer, hop.is_multi())) {
                return Err(BfdError::Duplicate(peer));
            }
            peers.insert((peer, hop.is_multi()), PeerEntry { tx: ptx, hop });
        }
        let (ctl_tx, ctl_rx) = mpsc::channel(4);
        let (state_tx, state_rx) = watch::channel(Status::default());
        let task = SessionTask::new(
            SessionConfig {
                name: name.to_owned(),
                peer: SocketAddr::new(
                    peer,
                    if hop.is_multi() {
                        self.inner.ports.peer_multi
                    } else {
                        self.inner.ports.peer_single
                    },
                ),
                params,
            },
            discr,
            tx,
            prx,
            ctl_rx,
            state_tx,
            self.inner.metrics.clone(),
            u64::from(discr).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let snapshot = task.snapshot();
        let task = tokio::spawn(task.run());
        Ok(SessionHandle {
            key: (peer, hop.is_multi()),
            state: state_rx,
            snapshot,
            ctl: ctl_tx,
            peers: self.inner.peers.clone(),
            task: Some(task),
        })
    }

    /// Remove a session's metric series (its peer was removed; its task has ended).
    pub fn remove_metrics(&self, name: &str) {
        self.inner.metrics.remove_peer(name);
    }

    fn ensure_rx(&self, v6: bool, multi: bool) -> Result<(), BfdError> {
        let port = if multi {
            self.inner.ports.multi
        } else {
            self.inner.ports.single
        };
        let mut tasks = self.inner.rx_tasks.lock().map_err(|_| BfdError::BindRx {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            source: io::Error::other("lock poisoned"),
        })?;
        let slot = &mut tasks[usize::from(v6) + 2 * usize::from(multi)];
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let addr = SocketAddr::new(ip, port);
        let sock = RxSocket::bind(addr).map_err(|source| BfdError::BindRx { addr, source })?;
        *slot = Some(tokio::spawn(receive(
            sock,
            multi,
            self.inner.peers.clone(),
            self.inner.metrics.clone(),
        )));
        Ok(())
    }
}

/// The receive task of one family and encapsulation: check, decode, hand to the session.
async fn receive(sock: RxSocket, multi: bool, peers: Peers, metrics: Metrics) {
    let mut buf = [0u8; 512];
    loop {
        let d = match sock.recv(&mut buf).await {
            Ok(d) => d,
            Err(e) => {
                // ICMP errors and the like surface here; never spin on a broken socket.
                debug!(error = %e, "BFD receive error");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let ip = match d.from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let entry = peers.lock().ok().and_then(|p| p.get(&(ip, multi)).cloned());
        // The session's rule; a single-hop packet from an unknown address is held to 255 too,
        // so that what is dropped for its TTL is counted the same whoever sent it.
        let hop = match &entry {
            Some(e) => e.hop,
            None if multi => Hop::Multi { min_ttl: 0 },
            None => Hop::Single,
        };
        if !hop.accepts(d.ttl) {
            debug!(from = %d.from, ttl = ?d.ttl, ?hop, "BFD packet with a refused TTL dropped");
            metrics.dropped(DropReason::Ttl);
            continue;
        }
        let p = match ControlPacket::decode(buf.get(..d.len).unwrap_or_default()) {
            Ok(p) => p,
            Err(e) => {
                debug!(from = %d.from, error = %e, "malformed BFD packet dropped");
                metrics.dropped(DropReason::Malformed);
                continue;
            }
        };
        match entry {
            Some(e) => {
                if e.tx.try_send(p).is_err() {
                    metrics.dropped(DropReason::QueueFull);
                }
            }
            None => {
                // Counted, not logged at warn: anyone on the link could flood the log.
                debug!(from = %d.from, "BFD packet from an address with no session dropped");
                metrics.dropped(DropReason::UnknownPeer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! A real session on loopback against a peer driven by a second [`Fsm`] in the test.
    use super::*;
    use crate::bfd::fsm::{Action, Event, Fsm};
    use crate::bfd::packet::State;
    use std::time::Duration;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn free_udp_port(ip: IpAddr) -> u16 {
        std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn fast() -> Params {
        Params {
            desired_min_tx: Duration::from_millis(50),
            required_min_rx: Duration::from_millis(50),
            detect_mult: 3,
        }
    }

    /// The peer: a socket on 127.0.0.2 with the given TTL and an FSM, run by hand.
    struct Peer {
        sock: std::net::UdpSocket,
        fsm: Fsm,
        to: SocketAddr,
    }

    impl Peer {
        fn new(port: u16, to: SocketAddr, ttl: u32) -> Peer {
            let sock = std::net::UdpSocket::bind(SocketAddr::new(PEER, port)).unwrap();
            sock.set_ttl(ttl).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            Peer {
                sock,
                fsm: Fsm::new(fast(), 0xabcd),
                to,
            }
        }

        fn act(&self, a: Vec<Action>) {
            for a in a {
                if let Action::Send(p) = a {
                    self.sock.send_to(&p.encode(), self.to).unwrap();
                }
            }
        }

        /// One round: read what arrived (up to 20 ms), answer, send a periodic packet.
        fn round(&mut self, talk: bool) {
            let mut buf = [0u8; 64];
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                if let Ok(p) = ControlPacket::decode(&buf[..n]) {
                    let a = self.fsm.step(Event::Received(p), 1.0);
                    if talk {
                        self.act(a);
                    }
                }
            }
            if talk {
                let a = self.fsm.step(Event::TxTimerExpires, 1.0);
                self.act(a);
            }
        }
    }

    /// Run peer rounds (blocking reads, off the runtime) until our state is `want`.
    async fn wait_for(
        state: &mut watch::Receiver<Status>,
        peer: Peer,
        want: State,
        talk: bool,
        limit: Duration,
    ) -> (bool, Peer) {
        let start = tokio::time::Instant::now();
        let mut peer = peer;
        while start.elapsed() < limit && state.borrow().state != want {
            peer = tokio::task::spawn_blocking(move || {
                peer.round(talk);
                peer
            })
            .await
            .unwrap();
        }
        (state.borrow().state == want, peer)
    }

    /// Ports on loopback: `ours` and `theirs` for the encapsulation `hop` uses, unused ones
    /// for the other (so a packet on the wrong port is never heard).
    fn ports(ours: u16, theirs: u16, hop: Hop) -> Ports {
        let (spare_ours, spare_theirs) = (free_udp_port(LOCAL), free_udp_port(PEER));
        if hop.is_multi() {
            Ports {
                single: spare_ours,
                multi: ours,
                peer_single: spare_theirs,
                peer_multi: theirs,
            }
        } else {
            Ports {
                single: ours,
                multi: spare_ours,
                peer_single: theirs,
                peer_multi: spare_theirs,
            }
        }
    }

    async fn setup(ttl: u32) -> (Bfd, SessionHandle, Peer) {
        setup_hop(ttl, Hop::Single).await
    }

    async fn setup_hop(ttl: u32, hop: Hop) -> (Bfd, SessionHandle, Peer) {
        let (ours, theirs) = (free_udp_port(LOCAL), free_udp_port(PEER));
        let bfd = Bfd::with_ports(Metrics::default(), ports(ours, theirs, hop));
        let s = bfd.session("p1", PEER, Some(LOCAL), fast(), hop).unwrap();
        let mut peer = Peer::new(theirs, SocketAddr::new(LOCAL, ours), ttl);
        let a = peer.fsm.step(Event::Start, 1.0);
        peer.act(a);
        (bfd, s, peer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn comes_up_then_detects_a_silent_peer_then_sends_admin_down() {
        let (_bfd, s, peer) = setup(255).await;
        let mut st = s.state();
        let (up, mut peer) =
            wait_for(&mut st, peer, State::Up, true, Duration::from_secs(10)).await;
        assert!(up, "session Up within 10 s");
        for _ in 0..100 {
            if peer.fsm.state() == State::Up {
                break;
            }
            peer = tokio::task::spawn_blocking(move || {
                peer.round(true);
                peer
            })
            .await
            .unwrap();
        }
        assert_eq!(peer.fsm.state(), State::Up);
        // The peer goes silent: we go Down within the detection time (3 x 50 ms) plus slack.
        let t = tokio::time::Instant::now();
        let (down, peer) =
            wait_for(&mut st, peer, State::Down, false, Duration::from_secs(5)).await;
        assert!(down, "session Down after the peer went silent");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Talk again: Up again; then our stop reaches the peer as AdminDown.
        let (up, mut peer) =
            wait_for(&mut st, peer, State::Up, true, Duration::from_secs(10)).await;
        assert!(up, "Up again");
        s.stop().await;
        for _ in 0..20 {
            peer.round(false);
            if peer.fsm.remote_state() == State::AdminDown {
                break;
            }
        }
        assert_eq!(peer.fsm.remote_state(), State::AdminDown);
        assert_eq!(peer.fsm.state(), State::Down);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packets_with_ttl_below_255_never_bring_the_session_up() {
        let (_bfd, s, peer) = setup(254).await;
        let mut st = s.state();
        let (up, _) = wait_for(&mut st, peer, State::Up, true, Duration::from_secs(3)).await;
        assert!(!up, "a TTL 254 peer must not be heard");
        assert_eq!(st.borrow().state, State::Down);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multihop_comes_up_with_packets_one_router_away() {
        // TTL 254: the peer sent 255 through one router (RFC 5883; our default minimum).
        let hop = Hop::Multi {
            min_ttl: crate::bfd::DEFAULT_MIN_TTL,
        };
        let (_bfd, s, peer) = setup_hop(254, hop).await;
        let mut st = s.state();
        let (up, peer) = wait_for(&mut st, peer, State::Up, true, Duration::from_secs(10)).await;
        assert!(up, "multihop session Up within 10 s with TTL 254");
        let (down, _) = wait_for(&mut st, peer, State::Down, false, Duration::from_secs(5)).await;
        assert!(down, "multihop session Down after the peer went silent");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multihop_refuses_packets_below_its_minimum_ttl() {
        let (_bfd, s, peer) = setup_hop(200, Hop::Multi { min_ttl: 254 }).await;
        let mut st = s.state();
        let (up, _) = wait_for(&mut st, peer, State::Up, true, Duration::from_secs(3)).await;
        assert!(!up, "a TTL 200 peer must not be heard with min_ttl 254");
        // The same distance is accepted when configured so.
        let (_bfd, s, peer) = setup_hop(200, Hop::Multi { min_ttl: 200 }).await;
        let mut st = s.state();
        let (up, _) = wait_for(&mut st, peer, State::Up, true, Duration::from_secs(10)).await;
        assert!(up, "a TTL 200 peer is heard with min_ttl 200");
    }

    #[test]
    fn hop_rules() {
        assert!(Hop::Single.accepts(Some(255)));
        assert!(!Hop::Single.accepts(Some(254)));
        assert!(!Hop::Single.accepts(None));
        let m = Hop::Multi { min_ttl: 250 };
        assert!(m.accepts(Some(255)) && m.accepts(Some(250)));
        assert!(!m.accepts(Some(249)) && !m.accepts(None));
    }

    #[tokio::test]
    async fn one_session_per_peer_address() {
        let (ours, theirs) = (free_udp_port(LOCAL), free_udp_port(PEER));
        let bfd = Bfd::with_ports(Metrics::default(), ports(ours, theirs, Hop::Single));
        let _a = bfd
            .session("a", PEER, Some(LOCAL), fast(), Hop::Single)
            .unwrap();
        assert!(matches!(
            bfd.session("b", PEER, Some(LOCAL), fast(), Hop::Single),
            Err(BfdError::Duplicate(_))
        ));
    }
}
