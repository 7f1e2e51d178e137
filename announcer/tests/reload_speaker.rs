//! Live reconfiguration of the speaker (`SpeakerHandle::reconfigure`) against scripted peers on
//! loopback: what each kind of change puts on the wire of every session — nothing for an
//! unchanged peer, Cease / Peer De-configured for a removed one, Cease / Other Configuration
//! Change and a new OPEN for a session-key change, a re-sent UPDATE for a next-hop change —
//! plus the listener following added and removed passive peers, and refused configurations
//! changing nothing. Real time (no paused clock): "nothing arrives" must mean nothing was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_announcer::bgp::reconfig::PeerChange;
use herald_announcer::bgp::testutil::{self, open, PeerConn, ScriptedPeer};
use herald_announcer::bgp::{
    BgpConfig, BgpError, Family, ListenerChange, NextHop, PeerConfig, RouteAttrs, Speaker,
    SpeakerHandle, State,
};
use herald_test_support::free_port;
use prometheus_client::registry::Registry;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const LOCAL_AS: u32 = 65001;
const PEER_AS: u32 = 65002;
const T: Duration = Duration::from_secs(10);
/// How long an untouched session is watched for any message after a reconfiguration.
const QUIET: Duration = Duration::from_millis(1500);
/// 192.0.2.80/32 as NLRI bytes.
const NLRI: [u8; 5] = [32, 192, 0, 2, 80];

fn peer(name: &str, sp: &ScriptedPeer) -> PeerConfig {
    let addr = sp.addr().expect("addr");
    let mut p = PeerConfig::new(name, addr.ip(), PEER_AS);
    p.port = addr.port();
    p.families = Some(vec![Family::Ipv4]);
    p.connect_retry = herald_announcer::bgp::Backoff { min: 0.1, max: 0.5 };
    p
}

fn config(peers: Vec<PeerConfig>) -> BgpConfig {
    BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_as: LOCAL_AS,
        listen: "127.0.0.1:0".parse().expect("addr"),
        peers,
    }
}

fn metrics(reg: &Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, reg).expect("encode");
    s
}

/// Accept the speaker's connection and bring the session up with hold time 0 (no
/// keepalives, so any later message is caused by the test); returns the connection after
/// the initial table and End-of-RIB.
async fn establish(sp: &ScriptedPeer, h: &SpeakerHandle, name: &str) -> (PeerConn, Vec<u8>) {
    let mut c = sp.accept(T).await.expect("speaker connects");
    let their_open = c
        .handshake(&open(PEER_AS, 0, Ipv4Addr::new(192, 0, 2, 2)), T)
        .await
        .expect("handshake");
    assert!(h.wait_established(name, T).await, "{name} established");
    (c, their_open.bytes)
}

/// Read UPDATEs until one carries the test prefix; returns its bytes.
async fn expect_route(c: &mut PeerConn) -> Vec<u8> {
    loop {
        let m = c.recv_type(2, T).await.expect("UPDATE");
        if m.bytes.windows(NLRI.len()).any(|w| w == NLRI) {
            return m.bytes;
        }
    }
}

async fn quiet(c: &mut PeerConn, what: &str) {
    match c.recv(QUIET).await {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
        Err(e) => panic!("{what}: connection broke: {e}"),
        Ok(m) => panic!("{what}: unexpected message type {} after reconfigure", m.ty),
    }
}

fn hold_of_open(open: &[u8]) -> u16 {
    // Header (19), version (1), my AS (2), hold time (2).
    u16::from_be_bytes([open[22], open[23]])
}

fn route() -> RouteAttrs {
    RouteAttrs::default()
}

#[tokio::test]
async fn unchanged_peer_untouched_removed_peer_deconfigured_added_peer_gets_routes() {
    let (spa, spb, spc) = (
        ScriptedPeer::bind().await.unwrap(),
        ScriptedPeer::bind().await.unwrap(),
        ScriptedPeer::bind().await.unwrap(),
    );
    let mut reg = Registry::default();
    let old = config(vec![peer("a", &spa), peer("b", &spb)]);
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    h.announce("192.0.2.80/32".parse().unwrap(), route());
    let (mut a, _) = establish(&spa, &h, "a").await;
    let (mut b, _) = establish(&spb, &h, "b").await;
    expect_route(&mut a).await;
    expect_route(&mut b).await;
    a.recv_type(2, T).await.unwrap(); // End-of-RIB
    let uptime_before = h.peer_states()[0].uptime.expect("a is up");

    let mut new = old.clone();
    new.peers.retain(|p| p.name != "b");
    new.peers.push(peer("c", &spc));
    let report = h.reconfigure(new.clone()).await.expect("reconfigure");
    assert_eq!(report.plan.peer("a"), Some(&PeerChange::Unchanged));
    assert_eq!(report.plan.peer("b"), Some(&PeerChange::Removed));
    assert_eq!(report.plan.peer("c"), Some(&PeerChange::Added));
    assert_eq!(report.listener, ListenerChange::Unchanged);
    assert!(report
        .lines()
        .iter()
        .any(|l| l.contains("Peer De-configured")));

    // b: Cease / Peer De-configured, then closed.
    let n = b.expect_notification(T).await.expect("NOTIFICATION to b");
    assert_eq!((n.code, n.subcode), (6, 3));
    assert!(b.closed(T).await);
    // c: a new session that gets the table.
    let (mut c, _) = establish(&spc, &h, "c").await;
    expect_route(&mut c).await;
    // a: nothing at all.
    quiet(&mut a, "unchanged peer a").await;
    let st = h.peer_states();
    assert_eq!(
        st.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    assert_eq!(st[0].state, State::Established);
    assert!(st[0].uptime.expect("a still up") > uptime_before);
    assert_eq!(h.config(), new);

    let text = metrics(&reg);
    assert!(
        !text.contains(r#"peer="b""#),
        "series of removed b:\n{text}"
    );
    assert!(text.contains(r#"ipvs_herald_bgp_session_state{peer="c",state="established"} 1"#));
    assert!(text.contains(r#"ipvs_herald_bgp_session_state{peer="a",state="established"} 1"#));
    // a went through Established exactly once.
    assert!(text.contains(
        r#"ipvs_herald_bgp_session_transitions_total{peer="a",from="openconfirm",to="established"} 1"#
    ));
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn hold_time_change_resets_only_that_peer() {
    let (spa, spb) = (
        ScriptedPeer::bind().await.unwrap(),
        ScriptedPeer::bind().await.unwrap(),
    );
    let mut reg = Registry::default();
    let old = config(vec![peer("a", &spa), peer("b", &spb)]);
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    let (mut a, open_a) = establish(&spa, &h, "a").await;
    let (mut b, _) = establish(&spb, &h, "b").await;
    assert_eq!(hold_of_open(&open_a), 90);
    a.recv_type(2, T).await.unwrap(); // End-of-RIB
    b.recv_type(2, T).await.unwrap();

    let mut new = old.clone();
    new.peers[0].hold_time = 30;
    let report = h.reconfigure(new).await.expect("reconfigure");
    assert_eq!(
        report.plan.peer("a"),
        Some(&PeerChange::Reset {
            keys: vec!["hold_time"]
        })
    );
    let n = a.expect_notification(T).await.expect("NOTIFICATION to a");
    assert_eq!((n.code, n.subcode), (6, 6));
    assert!(a.closed(T).await);
    // The new session proposes the new hold time.
    let (_a2, open_a2) = establish(&spa, &h, "a").await;
    assert_eq!(hold_of_open(&open_a2), 30);
    quiet(&mut b, "unchanged peer b").await;
    let text = metrics(&reg);
    assert!(text.contains(
        r#"ipvs_herald_bgp_notifications_total{peer="a",direction="sent",code="6",subcode="6"} 1"#
    ));
    assert!(text.contains(
        r#"ipvs_herald_bgp_session_transitions_total{peer="b",from="openconfirm",to="established"} 1"#
    ));
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn next_hop_change_resends_routes_without_reset() {
    let spa = ScriptedPeer::bind().await.unwrap();
    let mut reg = Registry::default();
    let mut p = peer("a", &spa);
    p.next_hop_v4 = NextHop::Addr("192.0.2.1".parse().unwrap());
    let old = config(vec![p]);
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    h.announce("192.0.2.80/32".parse().unwrap(), route());
    let (mut a, _) = establish(&spa, &h, "a").await;
    let first = expect_route(&mut a).await;
    assert!(first.windows(4).any(|w| w == [192, 0, 2, 1]));
    a.recv_type(2, T).await.unwrap(); // End-of-RIB

    let mut new = old.clone();
    new.peers[0].next_hop_v4 = NextHop::Addr("192.0.2.77".parse().unwrap());
    let report = h.reconfigure(new).await.expect("reconfigure");
    assert_eq!(
        report.plan.peer("a"),
        Some(&PeerChange::Update {
            keys: vec!["next_hop_v4"],
            resend: true
        })
    );
    let m = a.recv(T).await.expect("re-sent UPDATE");
    assert_eq!(m.ty, 2, "expected an UPDATE, got type {}", m.ty);
    assert!(m.bytes.windows(NLRI.len()).any(|w| w == NLRI));
    assert!(
        m.bytes.windows(4).any(|w| w == [192, 0, 2, 77]),
        "new next hop missing"
    );
    quiet(&mut a, "after the re-sent UPDATE").await;
    assert_eq!(h.peer_states()[0].state, State::Established);
    let text = metrics(&reg);
    assert!(!text.contains(r#"ipvs_herald_bgp_notifications_total{peer="a""#));
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn router_id_change_resets_every_session() {
    let (spa, spb) = (
        ScriptedPeer::bind().await.unwrap(),
        ScriptedPeer::bind().await.unwrap(),
    );
    let mut reg = Registry::default();
    let old = config(vec![peer("a", &spa), peer("b", &spb)]);
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    let (mut a, _) = establish(&spa, &h, "a").await;
    let (mut b, _) = establish(&spb, &h, "b").await;
    let mut new = old.clone();
    new.router_id = Ipv4Addr::new(192, 0, 2, 9);
    let report = h.reconfigure(new).await.expect("reconfigure");
    assert_eq!(report.plan.global_reset, vec!["router_id"]);
    for c in [&mut a, &mut b] {
        let n = c.expect_notification(T).await.expect("NOTIFICATION");
        assert_eq!((n.code, n.subcode), (6, 6));
    }
    // The new OPEN carries the new identifier (bytes 24..28 of the OPEN).
    let (_a2, open_a2) = establish(&spa, &h, "a").await;
    assert_eq!(open_a2[24..28], [192, 0, 2, 9]);
    h.shutdown("done", T).await;
}

/// A free loopback port for the passive listener.
#[tokio::test]
async fn passive_peers_are_added_and_removed_live() {
    let spa = ScriptedPeer::bind().await.unwrap();
    let mut reg = Registry::default();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut old = config(vec![peer("a", &spa)]);
    old.listen = listen;
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    h.announce("192.0.2.80/32".parse().unwrap(), route());
    let (mut a, _) = establish(&spa, &h, "a").await;
    expect_route(&mut a).await;
    a.recv_type(2, T).await.unwrap(); // End-of-RIB
                                      // No passive peer: no listener.
    assert!(testutil::connect(listen, None, 64, T).await.is_err());

    let mut new = old.clone();
    let mut p = PeerConfig::new("p", IpAddr::V4(Ipv4Addr::LOCALHOST), PEER_AS);
    p.passive = true;
    p.families = Some(vec![Family::Ipv4]);
    new.peers.push(p);
    let report = h.reconfigure(new.clone()).await.expect("add passive peer");
    assert_eq!(report.listener, ListenerChange::Started(listen));
    let mut c = testutil::connect(listen, None, 64, T)
        .await
        .expect("connect");
    c.handshake(&open(PEER_AS, 0, Ipv4Addr::new(192, 0, 2, 3)), T)
        .await
        .expect("handshake with passive peer");
    assert!(h.wait_established("p", T).await);
    expect_route(&mut c).await;

    // Replace p by q at another address: the listener stays, p is de-configured, and
    // connections from p's address are now refused.
    let mut newer = new.clone();
    newer.peers.retain(|x| x.name != "p");
    let mut q = PeerConfig::new("q", "127.0.0.3".parse().unwrap(), PEER_AS);
    q.passive = true;
    newer.peers.push(q);
    let report = h
        .reconfigure(newer.clone())
        .await
        .expect("swap passive peers");
    assert_eq!(report.listener, ListenerChange::Updated);
    let n = c.expect_notification(T).await.expect("NOTIFICATION to p");
    assert_eq!((n.code, n.subcode), (6, 3));
    let mut stranger = testutil::connect(listen, None, 64, T)
        .await
        .expect("TCP accept");
    assert!(
        stranger.closed(T).await,
        "connection from an unknown source must be closed"
    );

    // Back to no passive peer: the listener closes.
    let report = h.reconfigure(old.clone()).await.expect("remove q");
    assert_eq!(report.listener, ListenerChange::Stopped);
    assert!(testutil::connect(listen, None, 64, T).await.is_err());
    quiet(&mut a, "active peer a through three reconfigurations").await;
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn refused_configurations_change_nothing() {
    let (spa, spb) = (
        ScriptedPeer::bind().await.unwrap(),
        ScriptedPeer::bind().await.unwrap(),
    );
    let mut reg = Registry::default();
    let old = config(vec![peer("a", &spa)]);
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    let (mut a, _) = establish(&spa, &h, "a").await;
    a.recv_type(2, T).await.unwrap(); // End-of-RIB

    // Invalid: duplicate name.
    let mut bad = old.clone();
    bad.peers.push(peer("a", &spb));
    let e = h.reconfigure(bad).await.unwrap_err();
    assert!(matches!(e, BgpError::Config(_)), "{e}");
    assert!(e.to_string().contains("duplicate"), "{e}");

    // Valid but the listener cannot be bound (not a local address): refused before any
    // session is touched, so b is not started.
    let mut unbindable = old.clone();
    unbindable.listen = "192.0.2.99:1179".parse().unwrap();
    unbindable.peers.push(peer("b", &spb));
    let mut p = PeerConfig::new("p", "127.0.0.1".parse().unwrap(), PEER_AS);
    p.passive = true;
    unbindable.peers.push(p);
    let e = h.reconfigure(unbindable).await.unwrap_err();
    assert!(matches!(e, BgpError::Listen { .. }), "{e}");
    assert!(
        spb.accept(Duration::from_secs(1)).await.is_err(),
        "b started"
    );
    assert_eq!(h.config(), old);
    assert_eq!(h.peer_states().len(), 1);
    quiet(&mut a, "peer a after refused configurations").await;
    assert!(!metrics(&reg).contains(r#"peer="b""#));
    h.shutdown("done", T).await;
}

#[tokio::test]
async fn reconfigure_after_shutdown_is_refused() {
    let spa = ScriptedPeer::bind().await.unwrap();
    let mut reg = Registry::default();
    let cfg = config(vec![peer("a", &spa)]);
    let h = Speaker::start(cfg.clone(), &mut reg).unwrap();
    let h2 = h.clone();
    h.shutdown("bye", T).await;
    let e = h2.reconfigure(cfg).await.unwrap_err();
    assert!(matches!(e, BgpError::ShuttingDown), "{e}");
}

#[tokio::test]
async fn listen_change_rebinds_and_keeps_established_sessions() {
    let mut reg = Registry::default();
    // Both bound at once, so the two ports differ.
    let (la, lb) = (
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (port_a, port_b) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    drop((la, lb));
    let listen_a: SocketAddr = format!("127.0.0.1:{port_a}").parse().unwrap();
    let listen_b: SocketAddr = format!("127.0.0.1:{port_b}").parse().unwrap();
    let mut p = PeerConfig::new("p", IpAddr::V4(Ipv4Addr::LOCALHOST), PEER_AS);
    p.passive = true;
    p.families = Some(vec![Family::Ipv4]);
    let mut old = config(vec![p]);
    old.listen = listen_a;
    let h = Speaker::start(old.clone(), &mut reg).unwrap();
    let mut c = testutil::connect(listen_a, None, 64, T)
        .await
        .expect("connect to A");
    c.handshake(&open(PEER_AS, 0, Ipv4Addr::new(192, 0, 2, 3)), T)
        .await
        .expect("handshake");
    assert!(h.wait_established("p", T).await);
    c.recv_type(2, T).await.unwrap(); // End-of-RIB

    let mut new = old.clone();
    new.listen = listen_b;
    let report = h.reconfigure(new).await.expect("rebind");
    assert_eq!(report.listener, ListenerChange::Rebound(listen_b));
    assert!(report.plan.listen_changed);
    assert_eq!(report.plan.peer("p"), Some(&PeerChange::Unchanged));
    // The established session does not depend on the listening socket.
    quiet(&mut c, "established passive session across the rebind").await;
    assert_eq!(h.peer_states()[0].state, State::Established);
    assert!(
        testutil::connect(listen_a, None, 64, T).await.is_err(),
        "old address still listens"
    );
    // The new address accepts (the session is busy, so this second connection is closed).
    let mut again = testutil::connect(listen_b, None, 64, T)
        .await
        .expect("new address listens");
    assert!(again.closed(T).await);
    h.shutdown("done", T).await;
}
