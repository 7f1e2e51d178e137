//! BFD sockets: RFC 5881 single-hop sessions (UDP port 3784, TTL / hop limit 255 sent and
//! checked on receipt: the Generalized TTL Security Mechanism of RFC 5881 §5 is the only
//! protection of an unauthenticated session) and RFC 5883 multihop sessions (UDP port 4784,
//! 255 sent, at least a configured minimum required, see [`Hop`]); source ports in
//! 49152–65535 (RFC 5881 §4, RFC 5883 §5).
//!
//! - [`RxSocket`]: the listening socket of one address family on port 3784 or 4784; every
//!   datagram comes with the TTL / hop limit it arrived with (`IP_RECVTTL` /
//!   `IPV6_RECVHOPLIMIT` control messages, read through `nix::sys::socket::recvmsg`).
//! - [`TxSocket`]: one session's sending socket, bound to a free port in the RFC's range with
//!   TTL / hop limit 255.

use super::packet::ControlPacket;
use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::RangeInclusive;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// UDP port of single-hop BFD Control packets (RFC 5881 §4).
pub const PORT: u16 = 3784;
/// UDP port of multihop BFD Control packets (RFC 5883 §5).
pub const MULTIHOP_PORT: u16 = 4784;
/// The TTL / hop limit sent, and required on receipt by single-hop sessions (RFC 5881 §5).
pub const TTL: u8 = 255;
/// The lowest TTL a multihop session accepts unless configured otherwise: a peer that sends
/// 255 (as BIRD and FRR do) through at most one router. RFC 5883 §5 leaves the check to
/// configuration; a default that refuses far-away senders keeps the protection GTSM gives.
pub const DEFAULT_MIN_TTL: u8 = 254;

/// Which encapsulation a session uses, and so which port and TTL rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hop {
    /// RFC 5881: port 3784, TTL / hop limit exactly 255.
    #[default]
    Single,
    /// RFC 5883: port 4784, TTL / hop limit at least `min_ttl`.
    Multi {
        /// The lowest TTL / hop limit accepted.
        min_ttl: u8,
    },
}

impl Hop {
    /// Whether a packet that arrived with `ttl` may be processed (`None`: the kernel gave no
    /// TTL, which never passes).
    pub fn accepts(self, ttl: Option<u8>) -> bool {
        match (self, ttl) {
            (_, None) => false,
            (Hop::Single, Some(t)) => t == TTL,
            (Hop::Multi { min_ttl }, Some(t)) => t >= min_ttl,
        }
    }

    /// Multihop or not.
    pub fn is_multi(self) -> bool {
        matches!(self, Hop::Multi { .. })
    }
}
/// Source ports of BFD Control packets (RFC 5881 §4).
pub const SOURCE_PORTS: RangeInclusive<u16> = 49152..=65535;
/// Ports tried before [`TxSocket::bind`] gives up.
const BIND_ATTEMPTS: u32 = 64;

/// One received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// TTL / hop limit it arrived with (`None`: the kernel gave none).
    pub ttl: Option<u8>,
}

/// The listening socket of one address family.
#[derive(Debug)]
pub struct RxSocket {
    sock: UdpSocket,
}

fn udp(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

impl RxSocket {
    /// Bind to `addr` (normally the unspecified address and [`PORT`]) and ask for each
    /// datagram's TTL / hop limit. Must be called within a tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let s = udp(addr)?;
        s.set_reuse_address(true)?;
        if addr.is_ipv6() {
            s.set_recv_hoplimit_v6(true)?;
        } else {
            crate::bgp::sockopt::set_recv_ttl(&s)?;
        }
        s.bind(&addr.into())?;
        Ok(RxSocket {
            sock: UdpSocket::from_std(s.into())?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Wait for the next datagram.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        self.sock
            .async_io(Interest::READABLE, || recv_with_ttl(&self.sock, buf))
            .await
    }
}

/// `recvmsg(2)` with the TTL control message. The control buffer is zeroed, so what the
/// kernel did not write reads as an empty header and ends the walk.
fn recv_with_ttl(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    let mut cmsg = vec![0u8; 64];
    let mut iov = [IoSliceMut::new(buf)];
    let (len, from) = {
        let msg = recvmsg::<SockaddrStorage>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        (msg.bytes, msg.address.and_then(|a| socket_addr(&a)))
    };
    let from = from.ok_or_else(|| io::Error::other("datagram without a sender address"))?;
    Ok(Datagram {
        len,
        from,
        ttl: ttl_from_cmsgs(&cmsg),
    })
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// The `IP_TTL` or `IPV6_HOPLIMIT` value among the control messages in `buf` (Linux layout:
/// `cmsghdr { size_t len; int level; int type; }`, data and each header aligned to `size_t`).
fn ttl_from_cmsgs(buf: &[u8]) -> Option<u8> {
    const W: usize = std::mem::size_of::<usize>();
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let align = |n: usize| n.div_ceil(W) * W;
    let int_at = |at: usize| -> Option<i32> {
        let b = buf.get(at..at + 4)?;
        Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut at = 0;
    while at + hdr <= buf.len() {
        let mut w = [0u8; W];
        w.copy_from_slice(buf.get(at..at + W)?);
        let len = usize::from_ne_bytes(w);
        if len < hdr || len > buf.len() - at {
            return None;
        }
        let level = int_at(at + W)?;
        let ty = int_at(at + W + 4)?;
        let wanted = (level == libc::IPPROTO_IP && ty == libc::IP_TTL)
            || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT);
        if wanted {
            return int_at(at + hdr).and_then(|v| u8::try_from(v).ok());
        }
        at += align(len);
    }
    None
}

/// One session's sending socket.
#[derive(Debug)]
pub struct TxSocket {
    // A plain non-blocking socket: a send is one syscall that never waits for the reactor.
    sock: std::net::UdpSocket,
}

impl TxSocket {
    /// Bind to `local` (the unspecified address lets the kernel choose the source) on a free
    /// port of [`SOURCE_PORTS`], starting at a port derived from `seed`; TTL / hop limit 255.
    pub fn bind(local: IpAddr, seed: u64) -> io::Result<Self> {
        let first = u32::from(*SOURCE_PORTS.start());
        let span = u32::from(*SOURCE_PORTS.end()) - first + 1;
        let mut last = io::Error::from(io::ErrorKind::AddrInUse);
        for i in 0..BIND_ATTEMPTS {
            let off = u32::try_from((seed.wrapping_add(u64::from(i) * 7919)) % u64::from(span))
                .unwrap_or(0);
            let port = u16::try_from(first + off).unwrap_or(*SOURCE_PORTS.start());
            let addr = SocketAddr::new(local, port);
            let s = udp(addr)?;
            if local.is_ipv6() {
                s.set_unicast_hops_v6(u32::from(TTL))?;
            } else {
                s.set_ttl_v4(u32::from(TTL))?;
            }
            match s.bind(&addr.into()) {
                Ok(()) => return Ok(TxSocket { sock: s.into() }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Send one Control packet to `to` (port [`PORT`] for a real peer). Never waits for
    /// buffer space: a full socket buffer is an error the caller counts, not a stall.
    pub fn send(&self, p: &ControlPacket, to: SocketAddr) -> io::Result<()> {
        let n = self.sock.send_to(&p.encode(), to)?;
        if n == super::packet::LEN {
            Ok(())
        } else {
            Err(io::Error::other("short BFD send"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::bfd::packet::{Diag, Flags, State};
    use std::time::Duration;

    fn pkt() -> ControlPacket {
        ControlPacket {
            diag: Diag::NoDiagnostic,
            state: State::Down,
            flags: Flags::default(),
            detect_mult: 3,
            my_discr: 7,
            your_discr: 0,
            desired_min_tx: 1_000_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }

    async fn one(rx: &RxSocket) -> (Datagram, Vec<u8>) {
        let mut buf = [0u8; 128];
        let d = tokio::time::timeout(Duration::from_secs(5), rx.recv(&mut buf))
            .await
            .expect("datagram within 5 s")
            .unwrap();
        (d, buf[..d.len].to_vec())
    }

    async fn check_family(local: IpAddr) {
        let rx = RxSocket::bind(SocketAddr::new(local, 0)).unwrap();
        let to = rx.local_addr().unwrap();
        let tx = TxSocket::bind(local, 12345).unwrap();
        let port = tx.local_addr().unwrap().port();
        assert!(SOURCE_PORTS.contains(&port), "source port {port}");
        tx.send(&pkt(), to).unwrap();
        let (d, bytes) = one(&rx).await;
        assert_eq!(d.ttl, Some(TTL), "TTL of our own packet");
        assert_eq!(d.from, tx.local_addr().unwrap());
        assert_eq!(ControlPacket::decode(&bytes), Ok(pkt()));

        // A socket with the default TTL: the receiver sees it, below 255.
        let plain = std::net::UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
        if local.is_ipv6() {
            socket2::SockRef::from(&plain)
                .set_unicast_hops_v6(64)
                .unwrap();
        } else {
            plain.set_ttl(64).unwrap();
        }
        plain.send_to(&pkt().encode(), to).unwrap();
        let (d, _) = one(&rx).await;
        assert_eq!(d.ttl, Some(64));
    }

    #[tokio::test]
    async fn ipv4_ttl_255_is_sent_and_the_received_ttl_is_reported() {
        check_family(IpAddr::from([127, 0, 0, 1])).await;
    }

    #[tokio::test]
    async fn ipv6_hop_limit_255_is_sent_and_the_received_hop_limit_is_reported() {
        check_family("::1".parse().unwrap()).await;
    }

    #[tokio::test]
    async fn tx_ports_stay_in_range_when_taken() {
        let local = IpAddr::from([127, 0, 0, 1]);
        let a = TxSocket::bind(local, 5).unwrap();
        let b = TxSocket::bind(local, 5).unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_ne!(pa, pb);
        assert!(SOURCE_PORTS.contains(&pa) && SOURCE_PORTS.contains(&pb));
    }

    #[test]
    fn cmsg_walk_finds_the_ttl_and_stops_on_garbage() {
        const W: usize = std::mem::size_of::<usize>();
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        let mut b = vec![0u8; 64];
        // One unrelated message, then IP_TTL = 255.
        let first = hdr + 4;
        b[..W].copy_from_slice(&first.to_ne_bytes());
        b[W..W + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        b[W + 4..W + 8].copy_from_slice(&1i32.to_ne_bytes());
        let at = first.div_ceil(W) * W;
        b[at..at + W].copy_from_slice(&(hdr + 4).to_ne_bytes());
        b[at + W..at + W + 4].copy_from_slice(&libc::IPPROTO_IP.to_ne_bytes());
        b[at + W + 4..at + W + 8].copy_from_slice(&libc::IP_TTL.to_ne_bytes());
        b[at + hdr..at + hdr + 4].copy_from_slice(&255i32.to_ne_bytes());
        assert_eq!(ttl_from_cmsgs(&b), Some(255));
        assert_eq!(ttl_from_cmsgs(&[]), None);
        assert_eq!(ttl_from_cmsgs(&[0u8; 64]), None);
        // A length running past the buffer ends the walk.
        let mut bad = vec![0u8; 24];
        bad[..W].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(ttl_from_cmsgs(&bad), None);
        assert_eq!(ttl_from_cmsgs(&[0xff; 40]), None);
    }
}
