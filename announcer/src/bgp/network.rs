//! The network side of the BGP speaker: opening the TCP connection to a peer, the passive
//! listener (bind, accept and hand each connection to its peer's session) and the socket
//! options both need: TCP-MD5 keys (RFC 2385) and GTSM (RFC 5082).

use super::config::{is_link_local_v6, PeerConfig};
use super::sockopt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, info_span, warn, Instrument};

/// The passive peers the listener hands connections to, by address; replaced on
/// reconfiguration while the listener runs.
pub(crate) type PassivePeers = Arc<Mutex<Vec<(PeerConfig, mpsc::Sender<TcpStream>)>>>;

fn scope_id(p: &PeerConfig) -> io::Result<u32> {
    match &p.interface {
        Some(i) => nix::net::if_::if_nametoindex(i.as_str())
            .map_err(|e| io::Error::other(format!("interface {i}: {e}"))),
        None => Ok(0),
    }
}

/// Open the TCP connection to a peer with its socket options (bind, MD5, GTSM).
pub async fn connect(p: &PeerConfig) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let scope = scope_id(p)?;
    let domain = if p.address.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    if let Some(pw) = &p.md5_password {
        sockopt::set_tcp_md5(&sock, p.address, scope, pw.as_bytes())?;
    }
    if let Some(hops) = p.ttl_security {
        set_gtsm(&sock, p.address.is_ipv6(), hops)?;
    }
    if let Some(i) = &p.interface {
        sock.bind_device(Some(i.as_bytes()))?;
    }
    if let Some(local) = p.local_address {
        let la = match local {
            IpAddr::V6(a) if is_link_local_v6(&a) => {
                SocketAddr::V6(std::net::SocketAddrV6::new(a, 0, 0, scope))
            }
            a => SocketAddr::new(a, 0),
        };
        sock.bind(&la.into())?;
    }
    let remote = match p.address {
        IpAddr::V6(a) => SocketAddr::V6(std::net::SocketAddrV6::new(a, p.port, 0, scope)),
        a => SocketAddr::new(a, p.port),
    };
    let std: std::net::TcpStream = sock.into();
    let ts = tokio::net::TcpSocket::from_std_stream(std);
    // No timeout here: the FSM's ConnectRetry timer bounds the attempt.
    ts.connect(remote).await
}

fn set_gtsm(sock: &socket2::Socket, v6: bool, hops: u8) -> io::Result<()> {
    if v6 {
        sock.set_unicast_hops_v6(255)?;
    } else {
        sock.set_ttl_v4(255)?;
    }
    sockopt::set_min_ttl(sock, v6, 255u8.saturating_sub(hops.saturating_sub(1)))
}

pub(crate) fn apply_gtsm(s: &TcpStream, p: &PeerConfig) -> io::Result<()> {
    if let Some(hops) = p.ttl_security {
        // A v4-mapped connection on a dual-stack listener is IPv4 on the wire.
        let v6 = s.local_addr()?.ip().to_canonical().is_ipv6();
        let r = socket2::SockRef::from(s);
        if v6 {
            r.set_unicast_hops_v6(255)?;
        } else {
            r.set_ttl_v4(255)?;
        }
        sockopt::set_min_ttl(s, v6, 255u8.saturating_sub(hops.saturating_sub(1)))?;
    }
    Ok(())
}

/// GTSM on the listener, inherited by accepted sockets so that the check is active from the
/// SYN on: only when every passive peer uses TTL security, with the most lenient of their
/// limits (each accepted socket is then tightened to its own peer's limit).
/// Without that (or when updating a running listener whose peers no longer all use it) the
/// check is switched off on the listener (minimum TTL 0).
fn listener_gtsm(
    sock: &socket2::Socket,
    v6: bool,
    peers: &[(PeerConfig, mpsc::Sender<TcpStream>)],
    update: bool,
) {
    let hops: Option<Vec<u8>> = peers.iter().map(|(p, _)| p.ttl_security).collect();
    let Some(max_hops) = hops.and_then(|h| h.into_iter().max()) else {
        if update {
            for ipv6 in [false, true] {
                if ipv6 && !v6 {
                    continue;
                }
                if let Err(e) = sockopt::set_min_ttl(sock, ipv6, 0) {
                    warn!(error = %e, "cannot clear the minimum TTL of the listener");
                }
            }
        }
        return;
    };
    let min_ttl = 255u8.saturating_sub(max_hops.saturating_sub(1));
    // IPv4 (and v4-mapped traffic on a dual-stack socket) and IPv6.
    let _ = sock.set_ttl_v4(255);
    if let Err(e) = sockopt::set_min_ttl(sock, false, min_ttl) {
        warn!(error = %e, "cannot set IP_MINTTL on the listener");
    }
    if v6 {
        let _ = sock.set_unicast_hops_v6(255);
        if let Err(e) = sockopt::set_min_ttl(sock, true, min_ttl) {
            warn!(error = %e, "cannot set IPV6_MINHOPCOUNT on the listener");
        }
    }
}

/// Bind the passive listener, with the MD5 keys of the passive peers.
pub(crate) fn bind_listener(
    addr: SocketAddr,
    peers: &[(PeerConfig, mpsc::Sender<TcpStream>)],
) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(false)?;
    }
    sock.set_nonblocking(true)?;
    for (p, _) in peers {
        if let Some(pw) = &p.md5_password {
            sockopt::set_tcp_md5(
                &sock,
                listener_key_addr(addr, p),
                scope_id(p)?,
                pw.as_bytes(),
            )?;
        }
    }
    listener_gtsm(&sock, addr.is_ipv6(), peers, false);
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    TcpListener::from_std(sock.into())
}

/// The address a peer's TCP-MD5 key is installed under on a listener bound to `listen`: a
/// v4 peer on a dual-stack socket is keyed by its v4-mapped address.
fn listener_key_addr(listen: SocketAddr, p: &PeerConfig) -> IpAddr {
    match (listen.is_ipv6(), p.address) {
        (true, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (_, a) => a,
    }
}

/// Bring a running listener's TCP-MD5 keys and GTSM setting from the `old` passive peers to
/// the `new` ones (keys of peers gone or changed are deleted first).
pub(crate) fn update_listener(
    listener: &TcpListener,
    old: &[(PeerConfig, mpsc::Sender<TcpStream>)],
    new: &[(PeerConfig, mpsc::Sender<TcpStream>)],
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let sock = socket2::SockRef::from(listener);
    for (o, _) in old {
        if o.md5_password.is_none() {
            continue;
        }
        let kept = new.iter().any(|(n, _)| {
            n.address == o.address && n.md5_password == o.md5_password && n.interface == o.interface
        });
        if !kept {
            let scope = scope_id(o).unwrap_or(0);
            if let Err(e) = sockopt::set_tcp_md5(listener, listener_key_addr(addr, o), scope, &[]) {
                debug!(peer = %o.name, error = %e, "cannot delete the listener's TCP-MD5 key");
            }
        }
    }
    for (p, _) in new {
        if let Some(pw) = &p.md5_password {
            sockopt::set_tcp_md5(
                listener,
                listener_key_addr(addr, p),
                scope_id(p)?,
                pw.as_bytes(),
            )?;
        }
    }
    listener_gtsm(&sock, addr.is_ipv6(), new, true);
    Ok(())
}

/// Accept connections and hand each to its passive peer's session; others are closed.
/// Runs until shutdown or until `stop` turns true (listener rebind on reconfiguration).
pub(crate) async fn run_listener(
    listener: Arc<TcpListener>,
    peers: PassivePeers,
    mut shutdown: watch::Receiver<Option<String>>,
    mut stop: watch::Receiver<bool>,
) {
    let span = info_span!("bgp_listener", addr = ?listener.local_addr().ok());
    async move {
        loop {
            tokio::select! {
                r = shutdown.changed() => {
                    if r.is_err() || shutdown.borrow().is_some() { break; }
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() { break; }
                }
                r = listener.accept() => match r {
                    Ok((s, from)) => {
                        let ip = from.ip().to_canonical();
                        let found = match peers.lock() {
                            Ok(t) => t.iter().find(|(p, _)| p.address == ip).map(|(p, tx)| (p.name.clone(), tx.clone())),
                            Err(_) => None,
                        };
                        match found {
                            Some((name, tx)) => {
                                debug!(peer = %name, %from, "accepted connection");
                                if tx.try_send(s).is_err() {
                                    debug!(peer = %name, "session busy: connection dropped");
                                }
                            }
                            None => info!(%from, "connection from an unknown or active-only peer refused"),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}
