//! Graceful restart at the session level (RFC 4724), against a scripted peer: the OPEN's
//! Restart State and Forwarding State bits, the initial UPDATEs and End-of-RIB held until the
//! first health decision, and the stop for restart that closes without a NOTIFICATION.

use crate::bgp::testutil::{keepalive, PeerConn, RawMsg, ScriptedPeer};
use crate::bgp::{
    packet, BgpConfig, Family, GracefulRestart, GracefulStart, PeerConfig, RouteAttrs, Speaker,
    SpeakerHandle,
};
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartCapability,
    MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use prometheus_client::registry::Registry;
use std::net::Ipv4Addr;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// The peer's OPEN (AS 65002, IPv4 unicast), with the graceful restart capability or not.
fn peer_open(graceful: bool) -> Vec<u8> {
    let mut caps = vec![
        BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
            AddressType::Ipv4Unicast,
        )),
        BgpCapability::FourOctetAs(FourOctetAsCapability::new(65002)),
    ];
    if graceful {
        caps.push(BgpCapability::GracefulRestartCapability(
            GracefulRestartCapability::new(false, false, 90, vec![]),
        ));
    }
    let m = BgpMessage::Open(BgpOpenMessage::new(
        65002,
        90,
        Ipv4Addr::new(192, 0, 2, 200),
        vec![BgpOpenMessageParameter::new_capabilities(caps)],
    ));
    packet::encode(&m).unwrap()
}

fn config(sp: &ScriptedPeer) -> BgpConfig {
    let addr = sp.addr().unwrap();
    let mut p = PeerConfig::new("p", addr.ip(), 65002);
    p.port = addr.port();
    p.families = Some(vec![Family::Ipv4]);
    p.graceful_restart = Some(GracefulRestart { restart_time: 120 });
    BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 100),
        local_as: 65001,
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: vec![p],
    }
}

/// The graceful restart capability of the speaker's OPEN: (R bit, F bits).
fn gr_bits(open: &RawMsg) -> (bool, Vec<bool>) {
    let BgpMessage::Open(o) = open.parse().unwrap() else {
        panic!("not an OPEN")
    };
    o.capabilities()
        .into_iter()
        .find_map(|c| match c {
            BgpCapability::GracefulRestartCapability(g) => Some((
                g.restart(),
                g.address_families()
                    .iter()
                    .map(|f| f.forwarding_state())
                    .collect(),
            )),
            _ => None,
        })
        .expect("graceful restart capability")
}

/// An IPv4 End-of-RIB: an UPDATE with nothing in it (RFC 4724 §2).
fn is_eor(m: &RawMsg) -> bool {
    m.ty == 2 && m.bytes.len() == 23
}

async fn established(
    graceful: Option<GracefulStart>,
    peer_gr: bool,
) -> (ScriptedPeer, SpeakerHandle, PeerConn, RawMsg) {
    let sp = ScriptedPeer::bind().await.unwrap();
    let h = Speaker::start_with(config(&sp), &mut Registry::default(), graceful).unwrap();
    h.announce("192.0.2.80/32".parse().unwrap(), RouteAttrs::default());
    let mut c = sp.accept(T).await.unwrap();
    let ours = c.handshake(&peer_open(peer_gr), T).await.unwrap();
    assert!(h.wait_established("p", T).await);
    (sp, h, c, ours)
}

fn graceful(until: Duration, release: Duration) -> GracefulStart {
    let now = tokio::time::Instant::now();
    GracefulStart {
        restart_until: [("p".to_string(), now + until)].into(),
        release_by: now + release,
    }
}

/// After a graceful restart: R = 1 and F = 1 in the OPEN; nothing (no UPDATE, no End-of-RIB)
/// before `release_routes`; then the table, then End-of-RIB.
#[tokio::test]
async fn end_of_rib_waits_for_the_first_health_decision() {
    let (_sp, h, mut c, open) = established(Some(graceful(T * 6, T * 6)), true).await;
    assert_eq!(gr_bits(&open), (true, vec![true]));
    let early = c.recv(Duration::from_millis(700)).await;
    assert!(
        early.as_ref().map_or(true, |m| m.ty == 4),
        "nothing but KEEPALIVEs before the first decision: {early:?}"
    );
    h.release_routes();
    let first = c.recv_type(2, T).await.unwrap();
    assert!(!is_eor(&first), "the route comes first");
    let second = c.recv_type(2, T).await.unwrap();
    assert!(is_eor(&second), "then End-of-RIB: {second:?}");
    assert_eq!(h.graceful_peers(), [("p".to_string(), 120)]);
    h.shutdown("done", T).await;
}

/// A health decision that never comes: the table as it is and End-of-RIB go out at
/// `release_by`, so the peer never keeps stale routes for ever.
#[tokio::test]
async fn end_of_rib_goes_out_at_release_by_without_a_decision() {
    let (_sp, h, mut c, _) =
        established(Some(graceful(T * 6, Duration::from_millis(800))), true).await;
    let first = c.recv_type(2, T).await.unwrap();
    assert!(!is_eor(&first));
    assert!(is_eor(&c.recv_type(2, T).await.unwrap()));
    h.shutdown("done", T).await;
}

/// A normal start, and a start after the restart time is over: R = 0, F = 0, and the table
/// and End-of-RIB at once.
#[tokio::test]
async fn late_or_normal_start_has_no_restart_bits() {
    for g in [None, Some(graceful(Duration::ZERO, Duration::ZERO))] {
        let (_sp, h, mut c, open) = established(g, true).await;
        assert_eq!(gr_bits(&open), (false, vec![false]));
        let first = c.recv_type(2, T).await.unwrap();
        assert!(!is_eor(&first));
        assert!(is_eor(&c.recv_type(2, T).await.unwrap()));
        h.shutdown("done", T).await;
    }
}

/// Stop for restart: a peer that negotiated graceful restart sees the connection close with
/// no withdrawal and no NOTIFICATION.
#[tokio::test]
async fn stop_for_restart_closes_silently_when_graceful_restart_was_negotiated() {
    let (_sp, h, mut c, _) = established(None, true).await;
    c.recv_type(2, T).await.unwrap();
    assert!(is_eor(&c.recv_type(2, T).await.unwrap()));
    h.stop_for_restart(T).await;
    let t0 = std::time::Instant::now();
    let mut after = Vec::new();
    while let Ok(m) = c.recv(T).await {
        after.push(m.ty);
    }
    assert!(t0.elapsed() < T, "the connection was closed");
    assert!(
        after.iter().all(|t| *t == 4),
        "only KEEPALIVEs may come before the close: {after:?}"
    );
}

/// Stop for restart with a peer that did not negotiate graceful restart: withdraw, then Cease
/// / Administrative Shutdown, as on a plain stop.
#[tokio::test]
async fn stop_for_restart_withdraws_from_a_peer_without_graceful_restart() {
    let (_sp, h, mut c, _) = established(None, false).await;
    c.recv_type(2, T).await.unwrap();
    assert!(is_eor(&c.recv_type(2, T).await.unwrap()));
    assert!(h.graceful_peers().is_empty());
    h.stop_for_restart(T).await;
    let withdraw = c.recv_type(2, T).await.unwrap();
    assert!(!is_eor(&withdraw));
    let n = c.expect_notification(T).await.unwrap();
    assert_eq!((n.code, n.subcode), (6, 2));
    c.send_raw(&keepalive()).await.ok();
}

/// The first health decision arriving while the session is busy between two selects (here:
/// reading a burst of KEEPALIVEs on another worker thread) still releases the held table and
/// End-of-RIB. Seen in the lab: the decision came in that window, the select was armed with
/// the watch already set and its branch off, and the table was never sent while the router
/// held our routes as stale. The decision lands at a different moment of the burst each round;
/// without the catch-up some rounds hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_while_the_session_is_busy_still_releases_the_table() {
    let burst: Vec<u8> = std::iter::repeat_n(keepalive(), 50_000).flatten().collect();
    for round in 0..20u64 {
        let (_sp, h, mut c, _) = established(Some(graceful(T * 6, T * 6)), true).await;
        c.send_raw(&burst).await.unwrap();
        tokio::time::sleep(Duration::from_micros(round * 200)).await;
        h.release_routes();
        let first = c
            .recv_type(2, T)
            .await
            .unwrap_or_else(|e| panic!("round {round}: no UPDATE after the decision: {e}"));
        assert!(!is_eor(&first), "round {round}: the route comes first");
        assert!(
            is_eor(&c.recv_type(2, T).await.unwrap()),
            "round {round}: then End-of-RIB"
        );
        h.shutdown("done", T).await;
    }
}
