//! Every rule and timer of the BFD FSM with explicit durations (no clock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;
const OURS: u32 = 0x1111;
const THEIRS: u32 = 0x2222;

fn params(tx: u64, rx: u64, mult: u8) -> Params {
    Params {
        desired_min_tx: MS(tx),
        required_min_rx: MS(rx),
        detect_mult: mult,
    }
}

/// A packet from the peer: 300 ms × 3 unless changed.
fn peer(state: State) -> ControlPacket {
    ControlPacket {
        diag: Diag::NoDiagnostic,
        state,
        flags: Flags::default(),
        detect_mult: 3,
        my_discr: THEIRS,
        your_discr: if state == State::Down { 0 } else { OURS },
        desired_min_tx: 300_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
}

fn sent(a: &[Action]) -> Vec<ControlPacket> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn timer(a: &[Action], t: Timer) -> Option<Duration> {
    a.iter().rev().find_map(|x| match x {
        Action::StartTimer(u, d) if *u == t => Some(*d),
        _ => None,
    })
}

fn changes(a: &[Action]) -> Vec<(State, State, Diag)> {
    a.iter()
        .filter_map(|x| match x {
            Action::StateChange { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn started() -> Fsm {
    let mut f = Fsm::new(Params::default(), OURS);
    f.step(Event::Start, 1.0);
    f
}

/// Down → Init (peer Down) → Up (peer Up): the three-way handshake.
fn up() -> Fsm {
    let mut f = started();
    f.step(Event::Received(peer(State::Down)), 1.0);
    f.step(Event::Received(peer(State::Up)), 1.0);
    assert_eq!(f.state(), State::Up);
    f
}

#[test]
fn start_sends_down_at_the_slow_rate() {
    let mut f = Fsm::new(Params::default(), OURS);
    let a = f.step(Event::Start, 1.0);
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, State::Down);
    assert_eq!(p[0].your_discr, 0);
    assert_eq!(p[0].my_discr, OURS);
    // RFC 5880 §6.8.3: at least 1 s while not Up, whatever is configured.
    assert_eq!(p[0].desired_min_tx, 1_000_000);
    assert_eq!(p[0].required_min_rx, 300_000);
    assert_eq!(p[0].required_min_echo_rx, 0);
    assert!(!p[0].flags.cpi && !p[0].flags.poll && !p[0].flags.demand);
    assert_eq!(timer(&a, Timer::Tx), Some(MS(1000)));
    assert_eq!(f.tx_interval(), MS(1000));
}

#[test]
fn slow_rate_keeps_a_slower_configured_rate() {
    let mut f = Fsm::new(params(2000, 300, 3), OURS);
    let a = f.step(Event::Start, 1.0);
    assert_eq!(sent(&a)[0].desired_min_tx, 2_000_000);
}

#[test]
fn down_to_init_on_peer_down_then_up_on_peer_up() {
    let mut f = started();
    let a = f.step(Event::Received(peer(State::Down)), 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Down, State::Init, Diag::NoDiagnostic)]
    );
    assert_eq!(f.remote_discr(), THEIRS);
    // Still slow in Init.
    assert_eq!(f.tx_interval(), MS(1000));
    let a = f.step(Event::Received(peer(State::Up)), 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Up, Diag::NoDiagnostic)]
    );
    // Up: the configured rate at once (a decrease), re-armed now.
    assert_eq!(f.tx_interval(), MS(300));
    assert_eq!(timer(&a, Timer::Tx), Some(MS(300)));
}

#[test]
fn down_to_up_on_peer_init() {
    let mut f = started();
    let a = f.step(Event::Received(peer(State::Init)), 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Down, State::Up, Diag::NoDiagnostic)]
    );
}

#[test]
fn init_to_up_on_peer_init() {
    let mut f = started();
    f.step(Event::Received(peer(State::Down)), 1.0);
    let a = f.step(Event::Received(peer(State::Init)), 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Up, Diag::NoDiagnostic)]
    );
}

#[test]
fn init_stays_on_peer_down_and_down_ignores_peer_up() {
    let mut f = started();
    f.step(Event::Received(peer(State::Down)), 1.0);
    let a = f.step(Event::Received(peer(State::Down)), 1.0);
    assert!(changes(&a).is_empty());
    assert_eq!(f.state(), State::Init);

    let mut f = started();
    let a = f.step(Event::Received(peer(State::Up)), 1.0);
    assert!(changes(&a).is_empty());
    assert_eq!(f.state(), State::Down);
}

#[test]
fn up_goes_down_when_the_peer_signals_down() {
    let mut f = up();
    let a = f.step(Event::Received(peer(State::Down)), 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    assert_eq!(f.tx_interval(), MS(1000));
    assert!(!f.polling());
    assert_eq!(sent(&f.step(Event::TxTimerExpires, 1.0))[0].diag.code(), 3);
}

#[test]
fn peer_admin_down_takes_init_and_up_down_but_not_down() {
    for mut f in [up(), {
        let mut f = started();
        f.step(Event::Received(peer(State::Down)), 1.0);
        f
    }] {
        let from = f.state();
        let a = f.step(Event::Received(peer(State::AdminDown)), 1.0);
        assert_eq!(
            changes(&a),
            vec![(from, State::Down, Diag::NeighborSignaledSessionDown)]
        );
    }
    let mut f = started();
    let a = f.step(Event::Received(peer(State::AdminDown)), 1.0);
    assert!(changes(&a).is_empty());
    assert_eq!(f.diag(), Diag::NoDiagnostic);
}

#[test]
fn wrong_your_discriminator_is_discarded_without_effect() {
    let mut f = started();
    let mut p = peer(State::Init);
    p.your_discr = 0x9999;
    let a = f.step(Event::Received(p), 1.0);
    assert_eq!(
        a,
        vec![Action::Discarded(Discard::WrongDiscriminator {
            received: 0x9999,
            ours: OURS
        })]
    );
    assert_eq!(f.state(), State::Down);
    assert_eq!(f.remote_discr(), 0);
}

#[test]
fn detection_time_is_remote_mult_times_max_of_our_rx_and_their_tx() {
    let mut f = started();
    let mut p = peer(State::Down);
    p.detect_mult = 5;
    p.desired_min_tx = 1_000_000; // the peer is slow while not Up
    let a = f.step(Event::Received(p), 1.0);
    assert_eq!(timer(&a, Timer::Detect), Some(MS(5000)));
    // Their TX below our RX: our RX (300 ms) counts.
    p.state = State::Up;
    p.your_discr = OURS;
    p.desired_min_tx = 100_000;
    let a = f.step(Event::Received(p), 1.0);
    assert_eq!(timer(&a, Timer::Detect), Some(MS(1500)));
    assert_eq!(f.detection_time(), MS(1500));
}

#[test]
fn every_valid_packet_rearms_the_detection_timer() {
    let mut f = up();
    for _ in 0..3 {
        let a = f.step(Event::Received(peer(State::Up)), 1.0);
        assert_eq!(timer(&a, Timer::Detect), Some(MS(900)));
        assert!(
            timer(&a, Timer::Tx).is_none(),
            "no TX re-arm without a rate change"
        );
    }
}

#[test]
fn detection_timeout_takes_up_down_with_diag_1_and_forgets_the_peer() {
    let mut f = up();
    let a = f.step(Event::DetectTimerExpires, 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    assert_eq!(f.remote_discr(), 0);
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert_eq!((p.state, p.your_discr, p.diag.code()), (State::Down, 0, 1));
    assert_eq!(p.desired_min_tx, 1_000_000);
    assert_eq!(f.tx_interval(), MS(1000));
}

#[test]
fn detection_timeout_in_init_goes_down_and_in_down_only_forgets() {
    let mut f = started();
    f.step(Event::Received(peer(State::Down)), 1.0);
    let a = f.step(Event::DetectTimerExpires, 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    let mut f = started();
    f.step(Event::Received(peer(State::AdminDown)), 1.0);
    assert_eq!(f.remote_discr(), THEIRS);
    assert!(changes(&f.step(Event::DetectTimerExpires, 1.0)).is_empty());
    assert_eq!(f.remote_discr(), 0);
}

#[test]
fn tx_jitter_is_75_to_100_percent() {
    let mut f = up();
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, 0.0), Timer::Tx),
        Some(MS(225))
    );
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, 0.5), Timer::Tx),
        Some(Duration::from_micros(262_500))
    );
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, 1.0), Timer::Tx),
        Some(MS(300))
    );
    // Out-of-range inputs are clamped, never beyond the interval.
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, 7.0), Timer::Tx),
        Some(MS(300))
    );
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, f64::NAN), Timer::Tx),
        Some(MS(225))
    );
}

#[test]
fn tx_jitter_is_at_most_90_percent_with_detect_mult_1() {
    let mut f = Fsm::new(params(300, 300, 1), OURS);
    assert_eq!(timer(&f.step(Event::Start, 1.0), Timer::Tx), Some(MS(900)));
    assert_eq!(
        timer(&f.step(Event::TxTimerExpires, 0.0), Timer::Tx),
        Some(MS(750))
    );
}

#[test]
fn tx_interval_is_the_larger_of_our_tx_and_their_rx() {
    let mut f = up();
    let mut p = peer(State::Up);
    p.required_min_rx = 500_000;
    let a = f.step(Event::Received(p), 1.0);
    // Their slower RX applies at once: the TX timer is re-armed.
    assert_eq!(timer(&a, Timer::Tx), Some(MS(500)));
    assert_eq!(f.tx_interval(), MS(500));
}

#[test]
fn no_periodic_tx_when_the_peer_wants_none() {
    let mut f = up();
    let mut p = peer(State::Up);
    p.required_min_rx = 0;
    f.step(Event::Received(p), 1.0);
    let a = f.step(Event::TxTimerExpires, 1.0);
    assert!(sent(&a).is_empty());
    assert!(timer(&a, Timer::Tx).is_some());
}

#[test]
fn no_periodic_tx_in_remote_demand_mode_when_both_up() {
    let mut f = up();
    // Complete the Poll Sequence of the Up transition first.
    let mut fin = peer(State::Up);
    fin.flags.final_ = true;
    f.step(Event::Received(fin), 1.0);
    let mut p = peer(State::Up);
    p.flags.demand = true;
    f.step(Event::Received(p), 1.0);
    assert!(sent(&f.step(Event::TxTimerExpires, 1.0)).is_empty());
    // A Poll is still answered.
    p.flags.poll = true;
    let a = f.step(Event::Received(p), 1.0);
    assert!(sent(&a)[0].flags.final_);
}

#[test]
fn going_up_starts_a_poll_sequence_ended_by_final() {
    let mut f = up();
    assert!(f.polling());
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert!(p.flags.poll && !p.flags.final_);
    assert_eq!(p.desired_min_tx, 300_000);
    let mut fin = peer(State::Up);
    fin.flags.final_ = true;
    f.step(Event::Received(fin), 1.0);
    assert!(!f.polling());
    assert!(!sent(&f.step(Event::TxTimerExpires, 1.0))[0].flags.poll);
}

#[test]
fn going_up_without_a_rate_change_needs_no_poll() {
    let mut f = Fsm::new(params(1000, 300, 3), OURS);
    f.step(Event::Start, 1.0);
    f.step(Event::Received(peer(State::Init)), 1.0);
    assert_eq!(f.state(), State::Up);
    assert!(!f.polling());
}

#[test]
fn final_without_a_poll_changes_nothing() {
    let mut f = started();
    let mut fin = peer(State::Down);
    fin.flags.final_ = true;
    f.step(Event::Received(fin), 1.0);
    assert!(!f.polling());
    assert_eq!(f.tx_interval(), MS(1000));
}

#[test]
fn a_poll_is_answered_at_once_with_final_and_never_both_bits() {
    let mut f = up();
    assert!(f.polling());
    let mut p = peer(State::Up);
    p.flags.poll = true;
    let a = f.step(Event::Received(p), 1.0);
    let s = sent(&a);
    assert_eq!(s.len(), 1);
    assert!(s[0].flags.final_ && !s[0].flags.poll);
    // Our own Poll Sequence goes on.
    assert!(f.polling());
}

#[test]
fn slower_tx_waits_for_final_while_up() {
    let mut f = up();
    f.step(
        Event::Received(ControlPacket {
            flags: Flags {
                final_: true,
                ..Flags::default()
            },
            ..peer(State::Up)
        }),
        1.0,
    );
    let a = f.step(Event::Reconfigure(params(800, 300, 3)), 1.0);
    assert!(timer(&a, Timer::Tx).is_none());
    assert!(f.polling());
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert!(p.flags.poll);
    assert_eq!(p.desired_min_tx, 800_000, "advertised at once");
    assert_eq!(f.tx_interval(), MS(300), "used only after the Final");
    let mut fin = peer(State::Up);
    fin.flags.final_ = true;
    f.step(Event::Received(fin), 1.0);
    assert_eq!(f.tx_interval(), MS(800));
}

#[test]
fn faster_tx_applies_at_once() {
    let mut f = up();
    let a = f.step(Event::Reconfigure(params(100, 300, 3)), 1.0);
    assert_eq!(
        timer(&a, Timer::Tx),
        Some(MS(300)),
        "the peer's RX still bounds it"
    );
    let mut p = peer(State::Up);
    p.required_min_rx = 100_000;
    f.step(Event::Received(p), 1.0);
    assert_eq!(f.tx_interval(), MS(100));
}

#[test]
fn faster_rx_waits_for_final_for_the_detection_time() {
    let mut f = up();
    let mut fin = peer(State::Up);
    fin.flags.final_ = true;
    fin.desired_min_tx = 50_000;
    f.step(Event::Received(fin), 1.0);
    f.step(Event::Reconfigure(params(300, 100, 3)), 1.0);
    assert!(f.polling());
    let mut p = peer(State::Up);
    p.desired_min_tx = 50_000;
    let a = f.step(Event::Received(p), 1.0);
    assert_eq!(
        timer(&a, Timer::Detect),
        Some(MS(900)),
        "old RX until the Final"
    );
    assert_eq!(
        sent(&f.step(Event::TxTimerExpires, 1.0))[0].required_min_rx,
        100_000
    );
    let a = f.step(Event::Received(fin), 1.0);
    assert_eq!(timer(&a, Timer::Detect), Some(MS(300)));
}

#[test]
fn slower_rx_applies_at_once() {
    let mut f = up();
    f.step(Event::Reconfigure(params(300, 600, 3)), 1.0);
    let a = f.step(Event::Received(peer(State::Up)), 1.0);
    assert_eq!(timer(&a, Timer::Detect), Some(MS(1800)));
}

#[test]
fn reconfigure_while_down_needs_no_poll_and_keeps_the_slow_rate() {
    let mut f = started();
    f.step(Event::Reconfigure(params(50, 50, 2)), 1.0);
    assert!(!f.polling());
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert_eq!(
        (p.desired_min_tx, p.required_min_rx, p.detect_mult),
        (1_000_000, 50_000, 2)
    );
}

#[test]
fn admin_down_sends_diag_7_stops_detection_and_keeps_sending() {
    let mut f = up();
    let a = f.step(Event::AdminDown, 1.0);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    assert!(a.contains(&Action::StopTimer(Timer::Detect)));
    let p = sent(&a)[0];
    assert_eq!((p.state, p.diag.code()), (State::AdminDown, 7));
    assert_eq!(timer(&a, Timer::Tx), Some(MS(1000)));
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert_eq!(p.state, State::AdminDown);
    // Received packets are discarded, without re-arming detection.
    let a = f.step(Event::Received(peer(State::Up)), 1.0);
    assert_eq!(a, vec![Action::Discarded(Discard::AdminDown)]);
    // Leaving AdminDown: Down.
    let a = f.step(Event::Start, 1.0);
    assert_eq!(changes(&a)[0].1, State::Down);
    assert_eq!(f.state(), State::Down);
}

#[test]
fn the_peer_discriminator_is_echoed_in_your_discriminator() {
    let mut f = up();
    let p = sent(&f.step(Event::TxTimerExpires, 1.0))[0];
    assert_eq!(p.your_discr, THEIRS);
    assert_eq!(p.state, State::Up);
    assert_eq!(p.diag, Diag::NoDiagnostic);
}

#[test]
fn two_fsms_come_up_with_each_other() {
    let mut a = Fsm::new(Params::default(), 1);
    let mut b = Fsm::new(params(100, 100, 5), 2);
    let mut to_b = sent(&a.step(Event::Start, 1.0));
    let mut to_a = sent(&b.step(Event::Start, 1.0));
    for _ in 0..10 {
        let mut na = Vec::new();
        for p in to_a.drain(..) {
            na.extend(sent(&a.step(Event::Received(p), 1.0)));
        }
        na.extend(sent(&a.step(Event::TxTimerExpires, 1.0)));
        let mut nb = Vec::new();
        for p in to_b.drain(..) {
            nb.extend(sent(&b.step(Event::Received(p), 1.0)));
        }
        nb.extend(sent(&b.step(Event::TxTimerExpires, 1.0)));
        to_b = na;
        to_a = nb;
    }
    assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    assert!(!a.polling() && !b.polling(), "both Poll Sequences ended");
    // a's TX: max(its 300 ms, b's RX 100 ms); b's: max(100, a's RX 300).
    assert_eq!((a.tx_interval(), b.tx_interval()), (MS(300), MS(300)));
    // a detects b after 5 × max(300, 100); b detects a after 3 × max(100, 300).
    assert_eq!(
        (a.detection_time(), b.detection_time()),
        (MS(1500), MS(900))
    );
}
