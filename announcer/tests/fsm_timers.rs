//! Session-task timer tests on tokio's paused clock (`start_paused`): Hold, Keepalive and the
//! IdleHold backoff of the real session task against a scripted loopback peer. Virtual time
//! advances only when every task is idle, so the measured intervals are exact-ish and the tests
//! take milliseconds of wall time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_announcer::bgp::testutil::{keepalive, open, ScriptedPeer};
use herald_announcer::bgp::{
    Backoff, BgpConfig, Family, PeerConfig, Speaker, SpeakerHandle, State,
};
use prometheus_client::registry::Registry;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::time::Instant;

const PEER_AS: u32 = 65002;
/// Generous virtual timeout: only reached if the speaker misbehaves.
const T: Duration = Duration::from_secs(600);

async fn start(tweak: impl FnOnce(&mut PeerConfig)) -> (SpeakerHandle, ScriptedPeer, Registry) {
    let sp = ScriptedPeer::bind().await.expect("bind");
    let addr = sp.addr().expect("addr");
    let mut p = PeerConfig::new("p", addr.ip(), PEER_AS);
    p.port = addr.port();
    p.families = Some(vec![Family::Ipv4]);
    tweak(&mut p);
    let cfg = BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_as: 65001,
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: vec![p],
    };
    let mut reg = Registry::default();
    let h = Speaker::start(cfg, &mut reg).expect("start");
    (h, sp, reg)
}

fn approx(d: Duration, want: Duration) {
    let lo = want.saturating_sub(Duration::from_millis(50));
    let hi = want + Duration::from_millis(500);
    assert!(
        d >= lo && d <= hi,
        "interval {d:?}, expected about {want:?}"
    );
}

/// A KeepaliveTimer / ConnectRetryTimer interval: RFC 4271 §10 jitter puts it between 0.75 and
/// 1.0 times the configured value.
fn approx_jittered(d: Duration, base: Duration) {
    let lo = base.mul_f64(0.75).saturating_sub(Duration::from_millis(50));
    let hi = base + Duration::from_millis(500);
    assert!(
        d >= lo && d <= hi,
        "interval {d:?}, expected 0.75..1.0 x {base:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn hold_timer_expiry_sends_hold_timer_expired() {
    let (h, sp, reg) = start(|p| p.hold_time = 9).await;
    let mut c = sp.accept(T).await.unwrap();
    c.handshake(&open(PEER_AS, 3, Ipv4Addr::new(192, 0, 2, 2)), T)
        .await
        .unwrap();
    assert!(h.wait_established("p", T).await);
    let t0 = Instant::now();
    // Peer stays silent: negotiated hold time is min(9, 3) = 3 s.
    let n = c.expect_notification(T).await.unwrap();
    assert_eq!((n.code, n.subcode), (4, 0));
    approx(t0.elapsed(), Duration::from_secs(3));
    assert!(c.closed(T).await);
    assert!(h.wait_state("p", State::Idle, T).await);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(
        text.contains(r#"ipvs_herald_bgp_notifications_total{peer="p",direction="sent",code="4",subcode="0"} 1"#),
        "{text}"
    );
    assert!(text.contains(
        r#"ipvs_herald_bgp_last_error_info{peer="p",direction="sent",code="4",subcode="0"} 1"#
    ));
    assert!(text.contains(r#"ipvs_herald_bgp_session_transitions_total{peer="p",from="openconfirm",to="established"} 1"#));
    assert!(
        text.contains(r#"ipvs_herald_bgp_messages_total{peer="p",direction="sent",type="open"} 1"#)
    );
    h.shutdown("done", T).await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_timer_runs_at_a_third_of_hold() {
    let (h, sp, _reg) = start(|_| {}).await;
    let mut c = sp.accept(T).await.unwrap();
    c.handshake(&open(PEER_AS, 30, Ipv4Addr::new(192, 0, 2, 2)), T)
        .await
        .unwrap();
    let mut last = Instant::now();
    let mut intervals = Vec::new();
    for _ in 0..4 {
        c.send_raw(&keepalive()).await.unwrap();
        let m = c.recv(T).await.unwrap();
        // Skip End-of-RIB.
        let m = if m.ty == 2 {
            c.recv(T).await.unwrap()
        } else {
            m
        };
        assert_eq!(m.ty, 4);
        approx_jittered(last.elapsed(), Duration::from_secs(10));
        intervals.push(last.elapsed());
        last = Instant::now();
    }
    // Jittered: four draws of a continuous factor are not all the same.
    assert!(
        intervals.windows(2).any(|w| w[0] != w[1]),
        "keepalive intervals are not jittered: {intervals:?}"
    );
    assert_eq!(h.peer_states()[0].state, State::Established);
    h.shutdown("done", T).await;
}

#[tokio::test(start_paused = true)]
async fn configured_keepalive_interval() {
    let (h, sp, _reg) = start(|p| p.keepalive = Some(2)).await;
    let mut c = sp.accept(T).await.unwrap();
    c.handshake(&open(PEER_AS, 90, Ipv4Addr::new(192, 0, 2, 2)), T)
        .await
        .unwrap();
    c.recv_type(2, T).await.unwrap(); // End-of-RIB
    let t0 = Instant::now();
    c.recv_type(4, T).await.unwrap();
    approx_jittered(t0.elapsed(), Duration::from_secs(2));
    h.shutdown("done", T).await;
}

#[tokio::test(start_paused = true)]
async fn zero_hold_time_means_no_keepalives_and_no_expiry() {
    let (h, sp, _reg) = start(|_| {}).await;
    let mut c = sp.accept(T).await.unwrap();
    c.handshake(&open(PEER_AS, 0, Ipv4Addr::new(192, 0, 2, 2)), T)
        .await
        .unwrap();
    c.recv_type(2, T).await.unwrap(); // End-of-RIB
                                      // Nothing at all for an hour of virtual time.
    assert!(c.recv(Duration::from_secs(3600)).await.is_err());
    assert_eq!(h.peer_states()[0].state, State::Established);
    h.shutdown("done", T).await;
}

#[tokio::test(start_paused = true)]
async fn idle_hold_backoff_grows_exponentially_with_jitter_and_caps() {
    let (h, sp, _reg) = start(|p| p.connect_retry = Backoff { min: 1.0, max: 8.0 }).await;
    // Accept and close at once, six times; measure the gaps between attempts.
    let c = sp.accept(T).await.unwrap();
    drop(c);
    let mut last = Instant::now();
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let c = sp.accept(T).await.unwrap();
        gaps.push(last.elapsed());
        last = Instant::now();
        drop(c);
    }
    let bases = [1u64, 2, 4, 8, 8, 8];
    for (g, b) in gaps.iter().zip(bases) {
        let base = Duration::from_secs(b);
        assert!(
            *g >= base / 2 - Duration::from_millis(10) && *g <= base + Duration::from_millis(500),
            "gaps {gaps:?}"
        );
    }
    // Jitter: not all capped gaps are identical.
    assert!(
        gaps[3] != gaps[4] || gaps[4] != gaps[5],
        "no jitter: {gaps:?}"
    );
    h.shutdown("done", T).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_bounded_when_the_peer_stops_reading() {
    let (h, sp, _reg) = start(|_| {}).await;
    let _c = sp.accept(T).await.unwrap();
    // The peer never answers the OPEN; shutdown must still finish within its bound.
    let t0 = Instant::now();
    h.shutdown("bye", Duration::from_secs(2)).await;
    assert!(t0.elapsed() <= Duration::from_secs(2) + Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn connect_retry_timer_restarts_a_hanging_connect() {
    use socket2::{Domain, Socket, Type};
    // A listener that never accepts, with its accept queue full: further SYNs are dropped
    // by the kernel, so the speaker's connect hangs until its ConnectRetry timer fires.
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100)); // let the handshakes settle (wall clock)
    let mut p = PeerConfig::new("p", addr.ip(), PEER_AS);
    p.port = addr.port();
    let cfg = BgpConfig {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_as: 65001,
        listen: "127.0.0.1:0".parse().unwrap(),
        peers: vec![p],
    };
    let mut reg = Registry::default();
    let h = Speaker::start(cfg, &mut reg).unwrap();
    assert!(h.wait_state("p", State::Connect, T).await);
    // ConnectRetry is 30 s jittered to 22.5..30 s: after 95 s of virtual time, four or five
    // attempts (the first plus one per expiry), still in Connect.
    tokio::time::sleep(Duration::from_secs(95)).await;
    assert_eq!(h.peer_states()[0].state, State::Connect);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(
        text.contains(r#"ipvs_herald_bgp_connect_attempts_total{peer="p"} 4"#)
            || text.contains(r#"ipvs_herald_bgp_connect_attempts_total{peer="p"} 5"#),
        "{text}"
    );
    // Never faster than 0.75 x 30 s: no sixth attempt even with the shortest draws.
    tokio::time::sleep(Duration::from_secs(17)).await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    let attempts: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"ipvs_herald_bgp_connect_attempts_total{peer="p"} "#))
        .and_then(|v| v.trim().parse().ok())
        .expect("connect_attempts series");
    // 112 s: at most 1 + 112 / 22.5 = 5 attempts, at least 1 + 112 / 30 = 4.
    assert!((4..=5).contains(&attempts), "{attempts} attempts in 112 s");
    h.shutdown("done", T).await;
    drop(fillers);
}
