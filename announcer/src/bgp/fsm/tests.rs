//! The FSM's decisions, event by event, without sockets or clocks.

use super::*;

/// Our BGP identifier in these tests.
const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// A peer identifier above ours: the peer's connection wins a collision.
const HIGHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// A peer identifier below ours: our connection wins a collision.
const LOWER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn cfg(passive: bool) -> FsmConfig {
    FsmConfig {
        router_id: LOCAL_ID,
        hold_time: 90,
        keepalive: None,
        passive,
        accept_incoming: false,
        connect_retry: Duration::from_secs(5),
        backoff: Backoff { min: 1.0, max: 8.0 },
    }
}

fn open(hold: u16) -> Event {
    open_from(hold, HIGHER)
}

fn open_from(hold: u16, bgp_id: Ipv4Addr) -> Event {
    Event::BgpOpen(OpenParams {
        peer_hold_time: hold,
        bgp_id,
    })
}

fn established(f: &mut Fsm) {
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(open(90));
    f.step(Event::KeepAliveMsg);
    assert_eq!(f.state(), State::Established);
}

fn idle_hold(a: &[Action]) -> Option<Duration> {
    a.iter().find_map(|x| match x {
        Action::StartTimer(Timer::IdleHold, d) => Some(*d),
        _ => None,
    })
}

fn timer(a: &[Action], t: Timer) -> Duration {
    a.iter()
        .find_map(|x| match x {
            Action::StartTimer(tt, d) if *tt == t => Some(*d),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{t:?} not armed in {a:?}"))
}

/// RFC 4271 §10: between 0.75 and 1.0 times the configured value.
fn jittered(d: Duration, base: Duration) {
    assert!(
        d >= base.mul_f64(0.75) && d <= base,
        "{d:?} is not within [0.75, 1.0] x {base:?}"
    );
}

#[test]
fn keepalive_and_connect_retry_are_jittered_over_the_whole_range() {
    let mut ka = Vec::new();
    let mut cr = Vec::new();
    for seed in 1..=200u64 {
        let mut f = Fsm::new(cfg(false), seed);
        cr.push(timer(&f.step(Event::ManualStart), Timer::ConnectRetry));
        f.step(Event::TcpCrAcked);
        f.step(open(90));
        f.step(Event::KeepAliveMsg);
        ka.push(timer(
            &f.step(Event::KeepaliveTimerExpires),
            Timer::Keepalive,
        ));
    }
    for (v, base) in [
        (&ka, Duration::from_secs(30)),
        (&cr, Duration::from_secs(5)),
    ] {
        for d in v.iter() {
            jittered(*d, base);
        }
        let min = v.iter().min().copied().unwrap_or_default();
        let max = v.iter().max().copied().unwrap_or_default();
        // 200 draws of a uniform factor: both ends of the range are reached closely.
        assert!(min < base.mul_f64(0.78), "min {min:?} of {base:?}");
        assert!(max > base.mul_f64(0.97), "max {max:?} of {base:?}");
    }
}

#[test]
fn reconfigure_recomputes_keepalive_only_when_negotiated() {
    let mut f = Fsm::new(cfg(false), 3);
    assert_eq!(f.reconfigure(Some(5), Backoff { min: 2.0, max: 4.0 }), None);
    established(&mut f);
    let d = f
        .reconfigure(Some(5), Backoff { min: 2.0, max: 4.0 })
        .expect("re-armed");
    jittered(d, Duration::from_secs(5));
    assert_eq!(f.keepalive_time(), Duration::from_secs(5));
    // Capped to a third of the negotiated hold time, as at negotiation.
    f.reconfigure(Some(60), Backoff::default());
    assert_eq!(f.keepalive_time(), Duration::from_secs(30));
    // The new backoff drives the next failure.
    f.reconfigure(None, Backoff { min: 2.0, max: 4.0 });
    let a = f.step(Event::TcpConnectionFails);
    let d = idle_hold(&a).expect("idle hold");
    assert!(
        d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
        "{d:?}"
    );
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let lo = Ipv4Addr::new(192, 0, 2, 1);
    let hi = Ipv4Addr::new(192, 0, 2, 200);
    assert_eq!(collision_winner(lo, hi), Initiator::Remote);
    assert_eq!(collision_winner(hi, lo), Initiator::Local);
    // Unsigned comparison in host order, not octet-wise signed or string order.
    assert_eq!(
        collision_winner(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(200, 0, 0, 1)),
        Initiator::Remote
    );
    assert_eq!(
        collision_winner(Ipv4Addr::new(9, 255, 255, 255), Ipv4Addr::new(10, 0, 0, 0)),
        Initiator::Remote
    );
    // Equal identifiers cannot happen between two speakers (OPEN check); keep ours.
    assert_eq!(collision_winner(lo, lo), Initiator::Local);
}

/// An active peer that also accepts the peer's connections.
fn accepting() -> Fsm {
    let mut c = cfg(false);
    c.accept_incoming = true;
    Fsm::new(c, 5)
}

/// `accepting()` in OpenSent on its own connection, with a colliding connection held.
fn holding() -> Fsm {
    let mut f = accepting();
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::HoldIncoming]
    );
    f
}

/// The current connection lost a collision (RFC 4271 event 23) to `winner`: Cease /
/// Connection Collision Resolution, drop, wait in Active, hand over; no backoff.
fn assert_dumped(f: &Fsm, a: &[Action], winner: Incoming) {
    assert_eq!(a.len(), 7, "{a:?}");
    assert_eq!(a[0], Action::CollisionResolved(Initiator::Remote));
    assert_eq!(
        a[1],
        Action::SendNotification(Notification::cease(
            CeaseSubcode::ConnectionCollisionResolution
        ))
    );
    assert_eq!(a[2], Action::DropConnection);
    assert_eq!(a[3], Action::StopTimer(Timer::Hold));
    assert_eq!(a[4], Action::StopTimer(Timer::Keepalive));
    jittered(timer(a, Timer::ConnectRetry), Duration::from_secs(5));
    assert_eq!(a[6], Action::AcceptIncoming(winner));
    assert!(idle_hold(a).is_none(), "a collision is not a failure");
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.failures(), 0);
}

#[test]
fn incoming_while_connecting_abandons_the_attempt() {
    let mut f = accepting();
    f.step(Event::ManualStart);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![
            Action::DropConnection,
            Action::AcceptIncoming(Incoming::New)
        ]
    );
    assert_eq!(f.state(), State::Connect);
    let a = f.step(Event::TcpConnectionConfirmed);
    assert_eq!(f.state(), State::OpenSent);
    assert!(a.contains(&Action::SendOpen));
    // The session runs on the peer's connection: no collision to detect on it.
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    let a = f.step(open_from(90, LOWER));
    assert!(
        !a.contains(&Action::RejectIncoming(Incoming::Held)),
        "{a:?}"
    );
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::OpenConfirm);
}

#[test]
fn without_accept_incoming_an_active_peer_refuses_connections() {
    let mut f = Fsm::new(cfg(false), 5);
    f.step(Event::ManualStart);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::Connect);
    f.step(Event::TcpCrAcked);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    f.step(open_from(90, HIGHER));
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::OpenConfirm);
    // accept_incoming means nothing to a passive peer: one connection, no collisions.
    let mut c = cfg(true);
    c.accept_incoming = true;
    let mut f = Fsm::new(c, 5);
    f.step(Event::ManualStart);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::AcceptIncoming(Incoming::New)]
    );
    f.step(Event::TcpConnectionConfirmed);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn a_second_colliding_connection_replaces_the_held_one() {
    let mut f = holding();
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RejectIncoming(Incoming::Held), Action::HoldIncoming]
    );
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn held_connection_wins_against_a_higher_peer_identifier() {
    let mut f = holding();
    let a = f.step(open_from(90, HIGHER));
    assert_dumped(&f, &a, Incoming::Held);
    // The held connection continues the session; no collision is left to decide.
    let a = f.step(Event::TcpConnectionConfirmed);
    assert_eq!(f.state(), State::OpenSent);
    assert!(a.contains(&Action::SendOpen));
    let a = f.step(open_from(90, HIGHER));
    assert_eq!(a[0], Action::SendKeepalive);
    assert_eq!(f.state(), State::OpenConfirm);
    // Nothing held any more: a failure rejects nothing.
    let a = f.step(Event::TcpConnectionFails);
    assert!(
        !a.contains(&Action::RejectIncoming(Incoming::Held)),
        "{a:?}"
    );
}

#[test]
fn our_connection_wins_against_a_lower_peer_identifier() {
    let mut f = holding();
    let a = f.step(open_from(90, LOWER));
    assert_eq!(a[0], Action::CollisionResolved(Initiator::Local));
    assert_eq!(a[1], Action::RejectIncoming(Incoming::Held));
    assert_eq!(a[2], Action::SendKeepalive);
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(f.hold_time(), Duration::from_secs(90));
    let a = f.step(Event::KeepAliveMsg);
    assert!(a.contains(&Action::SendInitialRib));
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::Established);
}

#[test]
fn collision_in_openconfirm_is_resolved_at_once() {
    for (peer_id, ours_wins) in [(HIGHER, false), (LOWER, true)] {
        let mut f = accepting();
        f.step(Event::ManualStart);
        f.step(Event::TcpCrAcked);
        f.step(open_from(90, peer_id));
        assert_eq!(f.state(), State::OpenConfirm);
        let a = f.step(Event::IncomingConnection);
        if ours_wins {
            assert_eq!(
                a,
                vec![
                    Action::CollisionResolved(Initiator::Local),
                    Action::RejectIncoming(Incoming::New)
                ]
            );
            assert_eq!(f.state(), State::OpenConfirm);
        } else {
            assert_dumped(&f, &a, Incoming::New);
        }
    }
    // Equal identifiers (refused at OPEN between two real speakers): ours stays.
    let mut f = accepting();
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(open_from(90, LOCAL_ID));
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![
            Action::CollisionResolved(Initiator::Local),
            Action::RejectIncoming(Incoming::New)
        ]
    );
}

#[test]
fn held_connection_is_rejected_when_the_session_ends_first() {
    let hold = Notification::hold_timer_expired();
    let stop = Notification::cease(CeaseSubcode::AdministrativeShutdown);
    let header = Notification::new(1, 2, vec![0, 10]);
    for (event, notified) in [
        (Event::HoldTimerExpires, Some(hold)),
        (Event::ManualStop(stop.clone()), Some(stop)),
        (Event::BgpHeaderErr(header.clone()), Some(header)),
        (Event::TcpConnectionFails, None),
        (Event::NotifMsg(Notification::new(6, 4, vec![])), None),
        (
            Event::KeepAliveMsg,
            Some(Notification::fsm_error(
                FsmErrorSubcode::UnexpectedMessageInOpenSent,
            )),
        ),
    ] {
        let mut f = holding();
        let a = f.step(event.clone());
        let start = match notified {
            Some(n) => {
                assert_eq!(a[0], Action::SendNotification(n), "{event:?}");
                1
            }
            None => 0,
        };
        assert_eq!(
            a[start..start + 2],
            [
                Action::RejectIncoming(Incoming::Held),
                Action::DropConnection
            ],
            "{event:?}: {a:?}"
        );
        assert_eq!(f.state(), State::Idle);
    }
}

#[test]
fn established_session_refuses_incoming_connections() {
    let mut f = accepting();
    established(&mut f);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::Established);
}

#[test]
fn incoming_connection_during_the_backoff_starts_the_session_at_once() {
    for mut f in [Fsm::new(cfg(true), 9), accepting()] {
        f.step(Event::ManualStart);
        let a = f.step(Event::TcpConnectionFails);
        assert!(idle_hold(&a).is_some());
        assert_eq!(f.state(), State::Idle);
        let a = f.step(Event::IncomingConnection);
        assert_eq!(a.len(), 4, "{a:?}");
        assert_eq!(a[0], Action::StopTimer(Timer::IdleHold));
        jittered(timer(&a, Timer::ConnectRetry), Duration::from_secs(5));
        assert_eq!(a[2], Action::Listen);
        assert_eq!(a[3], Action::AcceptIncoming(Incoming::New));
        assert_eq!(f.state(), State::Active);
        // Still counting: the backoff is reset by an Established session only.
        assert_eq!(f.failures(), 1);
        f.step(Event::TcpConnectionConfirmed);
        assert_eq!(f.state(), State::OpenSent);
    }
    // A passive peer waiting in Active takes the connection.
    let mut f = Fsm::new(cfg(true), 9);
    f.step(Event::ManualStart);
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::AcceptIncoming(Incoming::New)]
    );
    // After ManualStop nothing is accepted any more.
    let mut f = Fsm::new(cfg(true), 9);
    f.step(Event::ManualStart);
    f.step(Event::ManualStop(Notification::cease(
        CeaseSubcode::AdministrativeShutdown,
    )));
    assert_eq!(
        f.step(Event::IncomingConnection),
        vec![Action::RefuseIncoming]
    );
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn refused_capabilities_are_suppressed_once_and_only_the_refusable_ones() {
    let refused = |data: Vec<u8>| {
        Event::NotifMsg(Notification::open_error(
            OpenErrorSubcode::UnsupportedCapability,
            data,
        ))
    };
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    // Route refresh, graceful restart (with a value), ADD-PATH (69: needed by nobody
    // here, but not ours to leave out), 4-octet AS.
    let a = f.step(refused(vec![
        2, 0, 64, 2, 0, 120, 69, 4, 0, 1, 1, 1, 65, 4, 0, 0, 0, 1,
    ]));
    assert_eq!(a[0], Action::SuppressCapabilities(vec![2, 64, 65]));
    assert_eq!(a[1], Action::DropConnection);
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.suppressed_capabilities(), &[2, 64, 65]);
    // Again with one new code: only that one; a truncated entry still names its code.
    f.step(Event::IdleHoldTimerExpires);
    f.step(Event::TcpCrAcked);
    let a = f.step(refused(vec![2, 0, 1, 4, 0]));
    assert_eq!(a[0], Action::SuppressCapabilities(vec![1]));
    assert_eq!(f.suppressed_capabilities(), &[2, 64, 65, 1]);
    // Nothing new, or another NOTIFICATION with the same data: no suppression.
    for e in [
        refused(vec![2, 0]),
        Event::NotifMsg(Notification::new(6, 2, vec![2, 0])),
        Event::NotifMsg(Notification::open_error(
            OpenErrorSubcode::UnsupportedOptionalParameter,
            vec![64, 0],
        )),
    ] {
        let mut g = f.clone();
        g.step(Event::IdleHoldTimerExpires);
        g.step(Event::TcpCrAcked);
        let a = g.step(e);
        assert_eq!(a[0], Action::DropConnection, "{a:?}");
        assert_eq!(g.suppressed_capabilities(), &[2, 64, 65, 1]);
    }
}

#[test]
fn idle_ignores_everything_but_start() {
    let mut f = Fsm::new(cfg(false), 7);
    for e in [
        Event::HoldTimerExpires,
        Event::KeepaliveTimerExpires,
        Event::ConnectRetryTimerExpires,
        Event::KeepAliveMsg,
        Event::TcpConnectionFails,
    ] {
        assert!(f.step(e).is_empty());
        assert_eq!(f.state(), State::Idle);
    }
    let a = f.step(Event::ManualStart);
    assert_eq!(f.state(), State::Connect);
    assert_eq!(a.len(), 2);
    jittered(timer(&a, Timer::ConnectRetry), Duration::from_secs(5));
    assert_eq!(a[1], Action::Connect);
}

#[test]
fn happy_path_negotiates_hold_and_keepalive() {
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    let a = f.step(Event::TcpCrAcked);
    assert_eq!(f.state(), State::OpenSent);
    assert!(a.contains(&Action::SendOpen));
    assert!(a.contains(&Action::StartTimer(Timer::Hold, LARGE_HOLD_TIME)));
    let a = f.step(open(30));
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(f.hold_time(), Duration::from_secs(30));
    assert_eq!(f.keepalive_time(), Duration::from_secs(10));
    assert_eq!(a[0], Action::SendKeepalive);
    jittered(timer(&a, Timer::Keepalive), Duration::from_secs(10));
    assert!(a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(30))));
    let a = f.step(Event::KeepAliveMsg);
    assert_eq!(f.state(), State::Established);
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::Hold, Duration::from_secs(30)),
            Action::SendInitialRib
        ]
    );
}

#[test]
fn configured_keepalive_is_capped_to_a_third() {
    let mut c = cfg(false);
    c.keepalive = Some(60);
    let mut f = Fsm::new(c.clone(), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(open(9));
    assert_eq!(f.keepalive_time(), Duration::from_secs(3));
    c.keepalive = Some(2);
    let mut f = Fsm::new(c, 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(open(90));
    assert_eq!(f.keepalive_time(), Duration::from_secs(2));
}

#[test]
fn zero_hold_time_disables_timers() {
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    let a = f.step(open(0));
    assert!(a.contains(&Action::StopTimer(Timer::Hold)));
    assert!(a.contains(&Action::StopTimer(Timer::Keepalive)));
    let a = f.step(Event::KeepAliveMsg);
    assert_eq!(a, vec![Action::SendInitialRib]);
}

#[test]
fn passive_waits_in_active() {
    let mut f = Fsm::new(cfg(true), 1);
    let a = f.step(Event::ManualStart);
    assert_eq!(f.state(), State::Active);
    assert!(a.contains(&Action::Listen));
    let a = f.step(Event::ConnectRetryTimerExpires);
    assert_eq!(f.state(), State::Active);
    assert_eq!(a.len(), 1);
    jittered(timer(&a, Timer::ConnectRetry), Duration::from_secs(5));
    f.step(Event::TcpConnectionConfirmed);
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn connect_retry_timer_retries_connect() {
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    let a = f.step(Event::ConnectRetryTimerExpires);
    assert_eq!(f.state(), State::Connect);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0], Action::DropConnection);
    jittered(timer(&a, Timer::ConnectRetry), Duration::from_secs(5));
    assert_eq!(a[2], Action::Connect);
}

#[test]
fn connect_failure_backs_off_exponentially_with_jitter_and_caps() {
    let mut f = Fsm::new(cfg(false), 42);
    f.step(Event::ManualStart);
    let mut last_bases = Vec::new();
    for i in 0..8u32 {
        let a = f.step(Event::TcpConnectionFails);
        assert_eq!(f.state(), State::Idle);
        let d = idle_hold(&a).expect("idle hold armed");
        let base = Backoff { min: 1.0, max: 8.0 }.delay(i);
        assert!(d <= base && d >= base / 2, "attempt {i}: {d:?} vs {base:?}");
        last_bases.push(base);
        let a = f.step(Event::IdleHoldTimerExpires);
        assert_eq!(f.state(), State::Connect);
        assert!(a.contains(&Action::Connect));
    }
    assert_eq!(last_bases.last(), Some(&Duration::from_secs(8)));
    // A successful session resets the backoff.
    f.step(Event::TcpCrAcked);
    f.step(open(90));
    f.step(Event::KeepAliveMsg);
    assert_eq!(f.failures(), 0);
    let a = f.step(Event::TcpConnectionFails);
    assert!(idle_hold(&a).unwrap() <= Duration::from_secs(1));
}

#[test]
fn hold_timer_expiry_sends_notification_in_every_open_state() {
    for steps in 1..=3 {
        let mut f = Fsm::new(cfg(false), 1);
        f.step(Event::ManualStart);
        f.step(Event::TcpCrAcked);
        if steps >= 2 {
            f.step(open(90));
        }
        if steps >= 3 {
            f.step(Event::KeepAliveMsg);
        }
        let a = f.step(Event::HoldTimerExpires);
        assert_eq!(
            a[0],
            Action::SendNotification(Notification::hold_timer_expired())
        );
        assert!(a.contains(&Action::DropConnection));
        assert!(idle_hold(&a).is_some());
        assert_eq!(f.state(), State::Idle);
    }
}

#[test]
fn keepalive_timer_sends_keepalive() {
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(Event::KeepaliveTimerExpires);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0], Action::SendKeepalive);
    jittered(timer(&a, Timer::Keepalive), Duration::from_secs(30));
    // Keepalive and Update restart the hold timer.
    assert_eq!(
        f.step(Event::UpdateMsg),
        vec![Action::StartTimer(Timer::Hold, Duration::from_secs(90))]
    );
}

#[test]
fn unexpected_messages_get_rfc6608_subcodes() {
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    let a = f.step(Event::UpdateMsg);
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(5, 1, vec![]))
    );
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(open(90));
    let a = f.step(Event::UpdateMsg);
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(5, 2, vec![]))
    );
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(open(90));
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(5, 3, vec![]))
    );
}

#[test]
fn errors_and_notifications_go_idle() {
    let n = Notification::new(3, 1, vec![]);
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(Event::UpdateMsgErr(n.clone()));
    assert_eq!(a[0], Action::SendNotification(n.clone()));
    assert_eq!(f.state(), State::Idle);
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(Event::NotifMsg(Notification::new(6, 2, vec![])));
    assert_eq!(a[0], Action::DropConnection);
    assert_eq!(f.state(), State::Idle);
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    let a = f.step(Event::BgpOpenMsgErr(Notification::new(2, 2, vec![])));
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(2, 2, vec![]))
    );
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    f.step(Event::TcpCrAcked);
    f.step(Event::BgpHeaderErr(Notification::new(1, 1, vec![])));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn route_refresh_resends() {
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    assert!(f.step(Event::RouteRefreshMsg).contains(&Action::ResendRib));
}

#[test]
fn manual_stop_notifies_only_when_open_and_never_restarts() {
    let cease = Notification::new(6, 2, vec![0]);
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(Event::ManualStop(cease.clone()));
    assert_eq!(a[0], Action::SendNotification(cease.clone()));
    assert!(idle_hold(&a).is_none());
    assert!(f.is_stopped());
    assert!(f.step(Event::IdleHoldTimerExpires).is_empty());
    assert!(f.step(Event::AutomaticStart).is_empty());
    let mut f = Fsm::new(cfg(false), 1);
    f.step(Event::ManualStart);
    let a = f.step(Event::ManualStop(cease));
    assert_eq!(a[0], Action::DropConnection);
    assert_eq!(f.state(), State::Idle);
}

/// A stop for a graceful restart closes the connection without a NOTIFICATION (the peer keeps
/// our routes as stale, RFC 4724 §4.2) and, like any ManualStop, never restarts.
#[test]
fn manual_stop_for_restart_sends_no_notification() {
    let mut f = Fsm::new(cfg(false), 1);
    established(&mut f);
    let a = f.step(Event::ManualStopForRestart);
    assert!(
        !a.iter().any(|x| matches!(x, Action::SendNotification(_))),
        "{a:?}"
    );
    assert_eq!(a[0], Action::DropConnection);
    assert!(idle_hold(&a).is_none());
    assert!(f.is_stopped());
    assert_eq!(f.state(), State::Idle);
    assert!(f.step(Event::IdleHoldTimerExpires).is_empty());
}

#[test]
fn bfd_down_closes_the_session_with_cease_bfd_down_and_backs_off() {
    use crate::bgp::packet::consts::CeaseSubcode;
    for target in [State::OpenSent, State::OpenConfirm, State::Established] {
        let mut f = Fsm::new(cfg(false), 1);
        for ev in [
            Event::ManualStart,
            Event::TcpCrAcked,
            open(90),
            Event::KeepAliveMsg,
        ] {
            if f.state() == target {
                break;
            }
            f.step(ev);
        }
        assert_eq!(f.state(), target);
        let a = f.step(Event::BfdDown);
        assert_eq!(f.state(), State::Idle, "from {target:?}");
        assert_eq!(
            a.first(),
            Some(&Action::SendNotification(Notification::cease(
                CeaseSubcode::BfdDown
            )))
        );
        assert!(a.contains(&Action::DropConnection));
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::StartTimer(Timer::IdleHold, _))));
    }
    for (passive, target) in [
        (false, State::Idle),
        (false, State::Connect),
        (true, State::Active),
    ] {
        let mut f = Fsm::new(cfg(passive), 1);
        if target != State::Idle {
            f.step(Event::ManualStart);
        }
        assert!(f.step(Event::BfdDown).is_empty(), "from {target:?}");
        assert_eq!(f.state(), target);
    }
}
