//! Connection collisions (RFC 4271 §6.8) of an `accept_incoming` peer, against a scripted
//! peer that both accepts the speaker's connection and connects to the speaker's listener.

use crate::bgp::testutil::{self, keepalive, open, PeerConn, ScriptedPeer};
use crate::bgp::{BgpConfig, Family, PeerConfig, Speaker, SpeakerHandle, State};
use prometheus_client::registry::Registry;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

/// One active `accept_incoming` peer "p" (AS 65002) at `addr`, and a free loopback listener.
fn collision_config(addr: SocketAddr) -> (BgpConfig, SocketAddr) {
    let mut p = PeerConfig::new("p", addr.ip(), 65002);
    p.port = addr.port();
    p.accept_incoming = true;
    p.families = Some(vec![Family::Ipv4]);
    let listen: SocketAddr = format!("127.0.0.1:{}", herald_test_support::free_port())
        .parse()
        .expect("addr");
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
    assert!(
        text.contains(r#"ipvs_herald_bgp_connection_collisions_total{peer="p",kept="remote"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"kept="local""#), "{text}");
    // A collision is not a failure: no backoff was counted.
    assert!(!text.contains(r#"to="idle""#), "{text}");
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn speaker_with_higher_identifier_keeps_its_connection() {
    let sp = ScriptedPeer::bind().await.expect("bind");
    let (h, mut out, listen, reg) = start(&sp).await;
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
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
    assert!(
        text.contains(r#"ipvs_herald_bgp_connection_collisions_total{peer="p",kept="local"} 1"#),
        "{text}"
    );
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
