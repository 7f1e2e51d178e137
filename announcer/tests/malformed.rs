//! Scripted-peer tests over loopback TCP: the speaker against a peer that sends exactly the
//! bytes each case needs. Every malformed case asserts the exact NOTIFICATION code/subcode the
//! speaker answers with, then that it reconnects after its backoff.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_announcer::bgp::testutil::{frame, keepalive, open, PeerConn, ScriptedPeer};
use herald_announcer::bgp::{
    Backoff, BgpConfig, Family, PeerConfig, RouteAttrs, Speaker, SpeakerHandle, State,
};
use herald_test_support::free_port;
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, MultiProtocolExtensionsCapability, UnrecognizedCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::path_attribute::{MpReach, MpUnreach, PathAttributeValue};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use std::net::Ipv4Addr;
use std::time::Duration;

const LOCAL_AS: u32 = 65001;
const PEER_AS: u32 = 65002;
const T: Duration = Duration::from_secs(5);

fn peer_id() -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 2)
}

async fn start(tweak: impl FnOnce(&mut PeerConfig)) -> (SpeakerHandle, ScriptedPeer) {
    let sp = ScriptedPeer::bind().await.expect("bind scripted peer");
    let addr = sp.addr().expect("addr");
    let mut p = PeerConfig::new("scripted", addr.ip(), PEER_AS);
    p.port = addr.port();
    p.hold_time = 30;
    p.connect_retry = Backoff { min: 0.2, max: 0.4 };
    p.families = Some(vec![Family::Ipv4, Family::Ipv6]);
    p.next_hop_v6 = herald_announcer::bgp::NextHop::Addr("2001:db8::1".parse().unwrap());
    tweak(&mut p);
    let cfg = BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_as: LOCAL_AS,
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: vec![p],
    };
    let mut reg = prometheus_client::registry::Registry::default();
    let h = Speaker::start(cfg, &mut reg).expect("speaker starts");
    (h, sp)
}

async fn established(sp: &ScriptedPeer, h: &SpeakerHandle) -> PeerConn {
    let mut c = sp.accept(T).await.expect("speaker connects");
    c.handshake(&open(PEER_AS, 30, peer_id()), T)
        .await
        .expect("handshake");
    assert!(h.wait_established("scripted", T).await, "not established");
    c
}

/// The speaker answers `bytes` (sent after the OPEN exchange when `after_open`) with
/// `code/subcode`, closes, and connects again after its backoff.
async fn expect_reject(bytes: Vec<u8>, after_open: bool, code: u8, subcode: u8) {
    let (h, sp) = start(|_| {}).await;
    let mut c = sp.accept(T).await.expect("speaker connects");
    c.recv_type(1, T).await.expect("speaker OPEN");
    if after_open {
        c.send_raw(&open(PEER_AS, 30, peer_id())).await.unwrap();
        c.send_raw(&keepalive()).await.unwrap();
        c.recv_type(4, T).await.expect("keepalive");
        assert!(h.wait_established("scripted", T).await);
    }
    c.send_raw(&bytes).await.unwrap();
    let n = c.expect_notification(T).await.expect("NOTIFICATION");
    assert_eq!(
        (n.code, n.subcode),
        (code, subcode),
        "notification {n:?} for {bytes:02x?}"
    );
    assert!(
        c.closed(T).await,
        "connection not closed after NOTIFICATION"
    );
    let st = h.peer_states();
    assert_ne!(st[0].state, State::Established);
    assert!(
        st[0].last_error.as_deref().unwrap_or("").contains("sent"),
        "{st:?}"
    );
    // Reconnect after backoff, and the new session works.
    let mut c2 = sp
        .accept(T)
        .await
        .expect("speaker reconnects after backoff");
    c2.handshake(&open(PEER_AS, 30, peer_id()), T)
        .await
        .expect("second handshake");
    assert!(h.wait_established("scripted", T).await);
    h.shutdown("test done", T).await;
}

fn open_with(caps: Vec<BgpCapability>, asn: u16) -> Vec<u8> {
    let m = BgpMessage::Open(BgpOpenMessage::new(
        asn,
        30,
        peer_id(),
        vec![BgpOpenMessageParameter::new_capabilities(caps)],
    ));
    herald_announcer::bgp::packet::encode(&m).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_marker() {
    let mut b = keepalive();
    b[0] = 0;
    expect_reject(b, false, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_too_long() {
    let mut b = keepalive();
    b[16..18].copy_from_slice(&5000u16.to_be_bytes());
    expect_reject(b, true, 1, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_for_type() {
    // A 20-byte KEEPALIVE.
    expect_reject(frame(4, &[0]), true, 1, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_type() {
    expect_reject(frame(9, &[]), true, 1, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_bad_version() {
    let mut b = open(PEER_AS, 30, peer_id());
    b[19] = 3;
    expect_reject(b, false, 2, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_bad_peer_as() {
    expect_reject(open(65099, 30, peer_id()), false, 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_bad_hold_time() {
    expect_reject(open(PEER_AS, 2, peer_id()), false, 2, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_bad_bgp_id() {
    expect_reject(open(PEER_AS, 30, Ipv4Addr::UNSPECIFIED), false, 2, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_without_common_family_is_unsupported_capability() {
    // The speaker only wants IPv4; the peer offers only IPv6.
    let (h, sp) = start(|p| p.families = Some(vec![Family::Ipv4])).await;
    let mut c = sp.accept(T).await.unwrap();
    c.recv_type(1, T).await.unwrap();
    let caps = vec![
        BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
            AddressType::Ipv6Unicast,
        )),
        BgpCapability::FourOctetAs(FourOctetAsCapability::new(PEER_AS)),
    ];
    c.send_raw(&open_with(caps, PEER_AS as u16)).await.unwrap();
    let n = c.expect_notification(T).await.unwrap();
    assert_eq!((n.code, n.subcode), (2, 7));
    // The data names the capability we need: MP-BGP IPv4 unicast.
    assert_eq!(n.data, vec![1, 4, 0, 1, 0, 1]);
    assert!(c.closed(T).await);
    sp.accept(T).await.expect("reconnect");
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_capability_is_ignored_and_two_octet_peer_works() {
    let (h, sp) = start(|p| p.families = Some(vec![Family::Ipv4])).await;
    let mut c = sp.accept(T).await.unwrap();
    c.recv_type(1, T).await.unwrap();
    // No 4-octet-AS capability, no MP capability (implicit IPv4), one unknown capability.
    let caps = vec![BgpCapability::Unrecognized(UnrecognizedCapability::new(
        250,
        vec![1, 2, 3],
    ))];
    c.send_raw(&open_with(caps, PEER_AS as u16)).await.unwrap();
    c.send_raw(&keepalive()).await.unwrap();
    c.recv_type(4, T)
        .await
        .expect("keepalive back: OPEN accepted");
    assert!(h.wait_established("scripted", T).await);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_malformed_attribute_list() {
    // Attribute declares 5 bytes, only 1 present.
    expect_reject(frame(2, &[0, 0, 0, 4, 0x40, 1, 5, 0]), true, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_withdrawn_length_overrun() {
    expect_reject(frame(2, &[0, 200, 0, 0]), true, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_mp_reach_bad_next_hop_length_is_optional_attribute_error() {
    // Well-framed MP_REACH_NLRI (optional, type 14) for IPv6 unicast whose next-hop length
    // overruns the attribute value.
    let attr = [0x80, 14, 5, 0, 2, 1, 16, 0];
    let mut body = vec![0, 0, 0, attr.len() as u8];
    body.extend_from_slice(&attr);
    expect_reject(frame(2, &body), true, 3, 9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_invalid_nlri_is_invalid_network_field() {
    // Valid ORIGIN, AS_PATH, NEXT_HOP; NLRI with prefix length 33.
    let attrs = [
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 0, // empty AS_PATH
        0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
    ];
    let mut body = vec![0, 0, 0, attrs.len() as u8];
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[33, 198, 51, 100, 1, 0]);
    expect_reject(frame(2, &body), true, 3, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_mp_reach_bad_prefix_is_optional_attribute_error() {
    // Well-framed MP_REACH_NLRI for IPv6 unicast carrying a /200 prefix: RFC 7606 says the
    // NLRI cannot be trusted, so session reset, with Optional Attribute Error (RFC 4271 §6.3).
    let mut value = vec![0, 2, 1, 16];
    value.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    value.extend_from_slice(&[0, 200]);
    value.extend_from_slice(&[0x20; 25]);
    let mut attr = vec![0x80, 14, value.len() as u8];
    attr.extend_from_slice(&value);
    let mut body = vec![0, 0, 0, attr.len() as u8];
    body.extend_from_slice(&attr);
    expect_reject(frame(2, &body), true, 3, 9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_refresh_bad_length() {
    expect_reject(frame(5, &[0, 1, 0, 1, 0]), true, 7, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_keepalive_in_opensent() {
    expect_reject(keepalive(), false, 5, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_update_in_openconfirm() {
    let (h, sp) = start(|_| {}).await;
    let mut c = sp.accept(T).await.unwrap();
    c.recv_type(1, T).await.unwrap();
    c.send_raw(&open(PEER_AS, 30, peer_id())).await.unwrap();
    c.recv_type(4, T).await.unwrap(); // the speaker's KEEPALIVE: it is in OpenConfirm
    c.send_raw(&frame(2, &[0, 0, 0, 0])).await.unwrap();
    let n = c.expect_notification(T).await.unwrap();
    assert_eq!((n.code, n.subcode), (5, 2));
    sp.accept(T).await.expect("reconnect");
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_open_in_established() {
    expect_reject(open(PEER_AS, 30, peer_id()), true, 5, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_origin_is_treat_as_withdraw() {
    let (h, sp) = start(|_| {}).await;
    let mut c = established(&sp, &h).await;
    // ORIGIN value 7 (undefined): RFC 7606 treat-as-withdraw, the session stays up.
    c.send_raw(&frame(2, &[0, 0, 0, 4, 0x40, 1, 1, 7, 24, 198, 51, 100]))
        .await
        .unwrap();
    h.announce("192.0.2.80/32".parse().unwrap(), RouteAttrs::default());
    let m = c.recv_type(2, T).await.expect("UPDATE still flows");
    let BgpMessage::Update(u) = m.parse().unwrap() else {
        panic!("not an update")
    };
    // The first UPDATE after establishment may be End-of-RIB; wait for the route.
    let mut got = !u.nlri().is_empty();
    for _ in 0..4 {
        if got {
            break;
        }
        let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
            panic!()
        };
        got = !u.nlri().is_empty();
    }
    assert!(got, "route not announced after ignored UPDATE");
    assert_eq!(h.peer_states()[0].state, State::Established);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_notification_closes_and_reconnects() {
    let (h, sp) = start(|_| {}).await;
    let mut c = established(&sp, &h).await;
    c.send_raw(&frame(3, &[6, 4])).await.unwrap();
    assert!(c.closed(T).await);
    let st = h.peer_states();
    assert!(
        st[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("received Cease"),
        "{st:?}"
    );
    sp.accept(T).await.expect("reconnect");
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_close_reconnects_with_backoff() {
    let (h, sp) = start(|_| {}).await;
    let c = established(&sp, &h).await;
    drop(c);
    let t0 = std::time::Instant::now();
    sp.accept(T).await.expect("reconnect");
    // Backoff min 0.2 s with jitter in [0.5, 1]: at least 0.1 s.
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_eor_refresh_withdraw_and_shutdown() {
    let (h, sp) = start(|_| {}).await;
    let attrs = RouteAttrs {
        med: Some(7),
        communities: vec![(65001 << 16) | 42],
        large_communities: vec![(65001, 1, 2)],
        as_path_prepend: 1,
        ..Default::default()
    };
    h.announce("192.0.2.80/32".parse().unwrap(), attrs.clone());
    h.announce("2001:db8::80/128".parse().unwrap(), attrs.clone());
    let mut c = established(&sp, &h).await;
    // Initial table, then End-of-RIB for both families.
    let mut v4 = 0;
    let mut v6 = 0;
    let mut eor = Vec::new();
    while eor.len() < 2 {
        let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
            panic!()
        };
        if let Some(f) = u.end_of_rib() {
            eor.push(f);
            continue;
        }
        v4 += u.nlri().len();
        for a in u.path_attributes() {
            match a.value() {
                PathAttributeValue::MpReach(MpReach::Ipv6Unicast {
                    next_hop_global,
                    nlri,
                    ..
                }) => {
                    assert_eq!(next_hop_global.to_string(), "2001:db8::1");
                    v6 += nlri.len();
                }
                PathAttributeValue::MultiExitDiscriminator(m) => assert_eq!(m.metric(), 7),
                _ => {}
            }
        }
    }
    assert_eq!((v4, v6), (1, 1));
    assert_eq!(
        eor,
        vec![AddressType::Ipv4Unicast, AddressType::Ipv6Unicast]
    );
    assert_eq!(h.peer_states()[0].prefixes_sent, 2);
    // Re-announcing the same attributes sends nothing; withdrawing sends a withdrawal.
    h.announce("192.0.2.80/32".parse().unwrap(), attrs.clone());
    h.withdraw("192.0.2.80/32".parse().unwrap());
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert_eq!(u.withdraw_routes().len(), 1);
    // ROUTE-REFRESH for IPv6 re-sends the IPv6 table only.
    h.announce("192.0.2.81/32".parse().unwrap(), attrs.clone());
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert_eq!(u.nlri().len(), 1);
    c.send_raw(&frame(5, &[0, 2, 0, 1])).await.unwrap();
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert!(u
        .path_attributes()
        .iter()
        .any(|a| matches!(a.value(), PathAttributeValue::MpReach(_))));
    assert!(u.nlri().is_empty());
    // ROUTE-REFRESH for IPv4 re-sends the IPv4 route; the next message after it is the
    // withdrawal below, so nothing for IPv6 was sent in between.
    c.send_raw(&frame(5, &[0, 1, 0, 1])).await.unwrap();
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert_eq!(u.nlri().len(), 1);
    h.withdraw("192.0.2.81/32".parse().unwrap());
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert_eq!(u.withdraw_routes().len(), 1);
    // Shutdown: withdraw everything, then Cease / Administrative Shutdown with the message.
    let h2 = h.clone();
    let stop = tokio::spawn(async move { h2.shutdown("maintenance window", T).await });
    let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
        panic!()
    };
    assert!(u.path_attributes().iter().any(|a| matches!(
        a.value(),
        PathAttributeValue::MpUnreach(MpUnreach::Ipv6Unicast { nlri }) if nlri.len() == 1
    )));
    let n = c.expect_notification(T).await.unwrap();
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.shutdown_message().as_deref(), Some("maintenance window"));
    assert!(c.closed(T).await);
    tokio::time::timeout(T, stop).await.unwrap().unwrap();
    // No reconnect after shutdown.
    assert!(sp.accept(Duration::from_millis(800)).await.is_err());
}

async fn start_passive(md5: Option<&str>) -> (SpeakerHandle, std::net::SocketAddr) {
    start_passive_on("127.0.0.1", md5).await
}

async fn start_passive_on(host: &str, md5: Option<&str>) -> (SpeakerHandle, std::net::SocketAddr) {
    let port = free_port();
    let mut p = PeerConfig::new("passive", "127.0.0.1".parse().unwrap(), PEER_AS);
    p.passive = true;
    p.hold_time = 30;
    p.md5_password = md5.map(str::to_string);
    p.ttl_security = Some(1);
    p.connect_retry = Backoff { min: 0.2, max: 0.4 };
    let listen: std::net::SocketAddr = format!("{host}:{port}").parse().unwrap();
    let cfg = BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_as: LOCAL_AS,
        listen,
        peers: vec![p],
    };
    let mut reg = prometheus_client::registry::Registry::default();
    (Speaker::start(cfg, &mut reg).expect("start"), listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_peer_with_md5_and_gtsm() {
    use herald_announcer::bgp::testutil::connect;
    let (h, listen) = start_passive(Some("s3cret")).await;
    assert!(h.wait_state("passive", State::Active, T).await);
    // Without the key the SYN is dropped by the kernel: no connection.
    assert!(connect(listen, None, 255, Duration::from_millis(1500))
        .await
        .is_err());
    // Wrong key: same.
    assert!(
        connect(listen, Some("wrong"), 255, Duration::from_millis(1500))
            .await
            .is_err()
    );
    // Right key but TTL 64: GTSM (1 hop = TTL 255 required) drops even the SYN.
    assert!(
        connect(listen, Some("s3cret"), 64, Duration::from_millis(1500))
            .await
            .is_err()
    );
    let mut c = connect(listen, Some("s3cret"), 255, T)
        .await
        .expect("MD5 connect");
    c.handshake(&open(PEER_AS, 30, peer_id()), T).await.unwrap();
    assert!(h.wait_established("passive", T).await);
    // After the peer leaves, the passive session waits again and accepts a new connection.
    drop(c);
    assert!(
        h.wait_state("passive", State::Idle, T).await
            || h.wait_state("passive", State::Active, T).await
    );
    let mut c = connect(listen, Some("s3cret"), 255, T)
        .await
        .expect("second connect");
    c.handshake(&open(PEER_AS, 30, peer_id()), T).await.unwrap();
    assert!(h.wait_established("passive", T).await);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_peer_with_md5() {
    let sp = ScriptedPeer::bind_md5("127.0.0.1".parse().unwrap(), "k3y")
        .await
        .expect("md5 listener");
    let addr = sp.addr().unwrap();
    let mk = |key: &str| {
        let mut p = PeerConfig::new("md5", addr.ip(), PEER_AS);
        p.port = addr.port();
        p.md5_password = Some(key.into());
        p.connect_retry = Backoff { min: 0.2, max: 0.4 };
        BgpConfig {
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            local_as: LOCAL_AS,
            listen: "127.0.0.1:0".parse().unwrap(),
            peers: vec![p],
        }
    };
    let mut reg = prometheus_client::registry::Registry::default();
    let bad = Speaker::start(mk("nope"), &mut reg).unwrap();
    assert!(
        sp.accept(Duration::from_millis(1500)).await.is_err(),
        "wrong key accepted"
    );
    bad.shutdown("done", T).await;
    let mut reg = prometheus_client::registry::Registry::default();
    let h = Speaker::start(mk("k3y"), &mut reg).unwrap();
    let mut c = sp.accept(T).await.expect("MD5 session connects");
    c.handshake(&open(PEER_AS, 30, peer_id()), T).await.unwrap();
    assert!(h.wait_established("md5", T).await);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_capability_is_dropped_on_reconnect() {
    use herald_announcer::bgp::GracefulRestart;
    let (h, sp) = start(|p| p.graceful_restart = Some(GracefulRestart { restart_time: 60 })).await;
    let has_gr = |m: &herald_announcer::bgp::testutil::RawMsg| match m.parse().unwrap() {
        BgpMessage::Open(o) => o
            .capabilities()
            .iter()
            .any(|c| matches!(c, BgpCapability::GracefulRestartCapability(_))),
        _ => panic!("not an OPEN"),
    };
    let mut c = sp.accept(T).await.unwrap();
    let o = c.recv_type(1, T).await.unwrap();
    assert!(has_gr(&o), "graceful restart configured but not sent");
    // Unsupported Capability: graceful restart (code 64, length 2).
    c.send_raw(&frame(3, &[2, 7, 64, 2, 0, 60])).await.unwrap();
    assert!(c.closed(T).await);
    let mut c = sp.accept(T).await.expect("reconnect");
    let o = c.recv_type(1, T).await.unwrap();
    assert!(!has_gr(&o), "refused capability sent again");
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_unsupported_optional_parameter() {
    // OPEN with optional parameter type 1 (the deprecated authentication parameter).
    let mut body = vec![4];
    body.extend_from_slice(&(PEER_AS as u16).to_be_bytes());
    body.extend_from_slice(&30u16.to_be_bytes());
    body.extend_from_slice(&peer_id().octets());
    body.extend_from_slice(&[3, 1, 1, 0]);
    expect_reject(frame(1, &body), false, 2, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_truncated_parameters() {
    // Optional parameters length says 10, only 2 bytes follow.
    let mut body = vec![4];
    body.extend_from_slice(&(PEER_AS as u16).to_be_bytes());
    body.extend_from_slice(&30u16.to_be_bytes());
    body.extend_from_slice(&peer_id().octets());
    body.extend_from_slice(&[10, 2, 0]);
    expect_reject(frame(1, &body), false, 2, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_capability_length_overruns_its_parameter() {
    // One Capabilities parameter of 8 bytes: MP-BGP IPv4 unicast (1, 4, …), then a 4-octet AS
    // capability (65) whose length 4 overruns the 2 bytes left in the parameter. RFC 4271
    // §6.2: a recognised but malformed optional parameter is OPEN Message Error / Unspecific.
    let mut body = vec![4];
    body.extend_from_slice(&(PEER_AS as u16).to_be_bytes());
    body.extend_from_slice(&30u16.to_be_bytes());
    body.extend_from_slice(&peer_id().octets());
    body.extend_from_slice(&[10, 2, 8, 1, 4, 0, 1, 0, 1, 65, 4]);
    expect_reject(frame(1, &body), false, 2, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_dual_stack_listener_with_md5_for_ipv4_peer() {
    use herald_announcer::bgp::testutil::connect;
    // Listener on [::] (dual stack): the IPv4 peer arrives as a v4-mapped address and its
    // MD5 key must be installed for that form.
    let (h, listen) = start_passive_on("[::]", Some("s3cret")).await;
    assert!(h.wait_state("passive", State::Active, T).await);
    let v4: std::net::SocketAddr = format!("127.0.0.1:{}", listen.port()).parse().unwrap();
    assert!(connect(v4, None, 255, Duration::from_millis(1500))
        .await
        .is_err());
    // TTL security applies to the v4-mapped connection too.
    assert!(connect(v4, Some("s3cret"), 64, Duration::from_millis(1500))
        .await
        .is_err());
    let mut c = connect(v4, Some("s3cret"), 255, T)
        .await
        .expect("MD5 connect via [::]");
    c.handshake(&open(PEER_AS, 30, peer_id()), T).await.unwrap();
    assert!(h.wait_established("passive", T).await);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_table_changes_are_sent_as_packed_differences() {
    let (h, sp) = start(|p| p.families = Some(vec![Family::Ipv4])).await;
    let mut c = established(&sp, &h).await;
    c.recv_type(2, T).await.unwrap(); // End-of-RIB of the empty table
    let net = |i: u32| -> ipnet::IpNet {
        ipnet::IpNet::new(std::net::Ipv4Addr::from(0xc633_6400 + i).into(), 32).unwrap()
    };
    h.announce_many((0..2000).map(|i| (net(i), RouteAttrs::default())));
    let mut got = 0;
    let mut msgs = 0;
    while got < 2000 {
        let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
            panic!()
        };
        got += u.nlri().len();
        msgs += 1;
    }
    assert_eq!(got, 2000);
    // 2000 × 5 bytes of NLRI: 3 full messages.
    assert!(msgs <= 3, "{msgs} UPDATEs for 2000 prefixes");
    // Replacing the table with its second half withdraws the first half only.
    let mut t = herald_announcer::bgp::RouteTable::new();
    for i in 1000..2000 {
        t.insert(net(i), RouteAttrs::default());
    }
    h.set_routes(t);
    let mut withdrawn = 0;
    while withdrawn < 1000 {
        let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
            panic!()
        };
        assert!(u.nlri().is_empty());
        withdrawn += u.withdraw_routes().len();
    }
    assert_eq!(withdrawn, 1000);
    h.withdraw_many((1000..2000).map(net));
    let mut withdrawn = 0;
    while withdrawn < 1000 {
        let BgpMessage::Update(u) = c.recv_type(2, T).await.unwrap().parse().unwrap() else {
            panic!()
        };
        withdrawn += u.withdraw_routes().len();
    }
    assert_eq!(h.peer_states()[0].prefixes_sent, 0);
    h.shutdown("done", T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_single_announcements_does_not_starve_the_session() {
    // Regression: one announce() per prefix in a tight loop used to keep the session busy
    // diffing, so the peer's KEEPALIVEs went unread and the hold timer expired.
    let (h, sp) = start(|p| {
        p.families = Some(vec![Family::Ipv4]);
        p.hold_time = 3;
    })
    .await;
    let mut c = sp.accept(T).await.unwrap();
    c.handshake(&open(PEER_AS, 3, peer_id()), T).await.unwrap();
    assert!(h.wait_established("scripted", T).await);
    let h2 = h.clone();
    let storm = tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        let mut i = 0u32;
        while t0.elapsed() < Duration::from_secs(5) && i < 200_000 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            h2.announce(
                ipnet::IpNet::new(a.into(), 32).unwrap(),
                RouteAttrs::default(),
            );
            i += 1;
        }
        i
    });
    // The peer keeps the session alive with a KEEPALIVE per second and drains what it gets.
    let mut got = 0usize;
    let t0 = std::time::Instant::now();
    let mut last_ka = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(6) {
        if last_ka.elapsed() >= Duration::from_secs(1) {
            c.send_raw(&keepalive()).await.unwrap();
            last_ka = std::time::Instant::now();
        }
        if let Ok(m) = c.recv(Duration::from_millis(100)).await {
            assert_ne!(m.ty, 3, "NOTIFICATION {:?}", m.notification());
            if let Ok(BgpMessage::Update(u)) = m.parse() {
                got += u.nlri().len();
            }
        }
    }
    let announced = storm.await.unwrap();
    assert!(announced > 1000, "only {announced} announcements");
    assert_eq!(h.peer_states()[0].state, State::Established);
    // Everything announced arrives.
    while got < announced as usize {
        c.send_raw(&keepalive()).await.unwrap();
        if let Ok(BgpMessage::Update(u)) = c.recv_type(2, T).await.unwrap().parse() {
            got += u.nlri().len();
        }
    }
    assert_eq!(got, announced as usize);
    h.shutdown("done", T).await;
}
