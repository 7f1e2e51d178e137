//! Prometheus metrics of the BFD sessions, registered in the binary's shared registry like the
//! BGP speaker's (`crate::bgp::metrics`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ipvs_herald_bfd_session_state` | gauge, 1 for the current state | peer, state |
//! | `ipvs_herald_bfd_session_transitions_total` | counter | peer, from, to |
//! | `ipvs_herald_bfd_tx_interval_seconds` | gauge: negotiated TX interval before jitter | peer |
//! | `ipvs_herald_bfd_detection_time_seconds` | gauge: negotiated detection time (0: none yet) | peer |
//! | `ipvs_herald_bfd_last_diagnostic_info` | gauge, 1 for our last diagnostic | peer, diag |
//! | `ipvs_herald_bfd_packets_total` | counter | peer, direction (`sent`/`received`) |
//! | `ipvs_herald_bfd_send_errors_total` | counter | peer |
//! | `ipvs_herald_bfd_packets_dropped_total` | counter: datagrams no session took | reason |

use super::packet::{Diag, State};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::peer_labels::{PeerLabels, StateLabels, TransitionLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiagLabels {
    peer: String,
    diag: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    peer: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a received datagram reached no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// TTL / hop limit other than 255 (RFC 5881 §5).
    Ttl,
    /// Not a valid Control packet (see [`super::packet::DecodeError`]).
    Malformed,
    /// From an address that is no configured BFD peer.
    UnknownPeer,
    /// The session's queue was full (the session task is behind).
    QueueFull,
    /// Discarded by the session (wrong discriminator, AdminDown).
    Discarded,
}

impl DropReason {
    fn as_str(self) -> &'static str {
        match self {
            DropReason::Ttl => "ttl",
            DropReason::Malformed => "malformed",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::QueueFull => "queue_full",
            DropReason::Discarded => "discarded",
        }
    }
}

/// All BFD metric families; cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    state: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    tx_interval: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    detection_time: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    diag: Family<DiagLabels, Gauge>,
    packets: Family<DirectionLabels, Counter>,
    send_errors: Family<PeerLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
}

fn peer(p: &str) -> PeerLabels {
    PeerLabels { peer: p.to_owned() }
}

impl Metrics {
    /// Create the families and register them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let p = "ipvs_herald_bfd";
        registry.register(
            format!("{p}_session_state"),
            "BFD session state per peer: 1 for the current state, 0 for the others",
            m.state.clone(),
        );
        registry.register(
            format!("{p}_session_transitions"),
            "BFD session state transitions",
            m.transitions.clone(),
        );
        registry.register(
            format!("{p}_tx_interval_seconds"),
            "Negotiated BFD transmit interval before jitter (RFC 5880 6.8.2)",
            m.tx_interval.clone(),
        );
        registry.register(
            format!("{p}_detection_time_seconds"),
            "Negotiated BFD detection time (RFC 5880 6.8.4), 0 before the peer was heard",
            m.detection_time.clone(),
        );
        registry.register(
            format!("{p}_last_diagnostic_info"),
            "Our BFD diagnostic for the session's last state change: 1 for the current code",
            m.diag.clone(),
        );
        registry.register(
            format!("{p}_packets"),
            "BFD Control packets sent and accepted per session",
            m.packets.clone(),
        );
        registry.register(
            format!("{p}_send_errors"),
            "BFD Control packets that could not be sent",
            m.send_errors.clone(),
        );
        registry.register(
            format!("{p}_packets_dropped"),
            "Received BFD datagrams that no session accepted, by reason",
            m.dropped.clone(),
        );
        m
    }

    /// Set the one-hot state and the diagnostic (a new session, or a state change).
    pub fn set_state(&self, p: &str, state: State, diag: Diag) {
        for s in State::ALL {
            self.state
                .get_or_create(&StateLabels {
                    peer: p.to_owned(),
                    state: s.as_str(),
                })
                .set(i64::from(s == state));
        }
        for d in Diag::NAMED {
            self.diag
                .get_or_create(&DiagLabels {
                    peer: p.to_owned(),
                    diag: d.as_str(),
                })
                .set(i64::from(d == diag));
        }
    }

    /// Count a state change.
    pub fn transition(&self, p: &str, from: State, to: State) {
        self.transitions
            .get_or_create(&TransitionLabels {
                peer: p.to_owned(),
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    /// The negotiated intervals.
    pub fn set_intervals(&self, p: &str, tx: Duration, detect: Duration) {
        self.tx_interval
            .get_or_create(&peer(p))
            .set(tx.as_secs_f64());
        self.detection_time
            .get_or_create(&peer(p))
            .set(detect.as_secs_f64());
    }

    /// One packet sent (`sent`) or accepted by the session (`received`).
    pub fn packet(&self, p: &str, direction: &'static str) {
        self.packets
            .get_or_create(&DirectionLabels {
                peer: p.to_owned(),
                direction,
            })
            .inc();
    }

    /// One failed send.
    pub fn send_error(&self, p: &str) {
        self.send_errors.get_or_create(&peer(p)).inc();
    }

    /// One received datagram dropped.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Remove a session's series (the peer was removed).
    pub fn remove_peer(&self, p: &str) {
        for s in State::ALL {
            self.state.remove(&StateLabels {
                peer: p.to_owned(),
                state: s.as_str(),
            });
            for t in State::ALL {
                self.transitions.remove(&TransitionLabels {
                    peer: p.to_owned(),
                    from: s.as_str(),
                    to: t.as_str(),
                });
            }
        }
        for d in Diag::NAMED {
            self.diag.remove(&DiagLabels {
                peer: p.to_owned(),
                diag: d.as_str(),
            });
        }
        for direction in ["sent", "received"] {
            self.packets.remove(&DirectionLabels {
                peer: p.to_owned(),
                direction,
            });
        }
        self.tx_interval.remove(&peer(p));
        self.detection_time.remove(&peer(p));
        self.send_errors.remove(&peer(p));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn text(r: &Registry) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, r).unwrap();
        s
    }

    #[test]
    fn series_are_named_one_hot_and_removed_per_peer() {
        let mut r = Registry::default();
        let m = Metrics::register(&mut r);
        for p in ["a", "b"] {
            m.set_state(p, State::Up, Diag::NoDiagnostic);
            m.transition(p, State::Init, State::Up);
            m.set_intervals(p, Duration::from_millis(300), Duration::from_millis(900));
            m.packet(p, "sent");
        }
        m.set_state("a", State::Down, Diag::ControlDetectionTimeExpired);
        m.dropped(DropReason::Ttl);
        let t = text(&r);
        for line in [
            "ipvs_herald_bfd_session_state{peer=\"a\",state=\"down\"} 1",
            "ipvs_herald_bfd_session_state{peer=\"a\",state=\"up\"} 0",
            "ipvs_herald_bfd_session_transitions_total{peer=\"a\",from=\"init\",to=\"up\"} 1",
            "ipvs_herald_bfd_tx_interval_seconds{peer=\"a\"} 0.3",
            "ipvs_herald_bfd_detection_time_seconds{peer=\"a\"} 0.9",
            "ipvs_herald_bfd_last_diagnostic_info{peer=\"a\",diag=\"control_detection_time_expired\"} 1",
            "ipvs_herald_bfd_last_diagnostic_info{peer=\"a\",diag=\"none\"} 0",
            "ipvs_herald_bfd_packets_total{peer=\"a\",direction=\"sent\"} 1",
            "ipvs_herald_bfd_packets_dropped_total{reason=\"ttl\"} 1",
        ] {
            assert!(t.contains(line), "missing {line} in\n{t}");
        }
        m.remove_peer("a");
        let t = text(&r);
        assert!(!t.contains("peer=\"a\""), "{t}");
        assert!(t.contains("ipvs_herald_bfd_session_state{peer=\"b\",state=\"up\"} 1"));
    }
}
