//! Prometheus metrics of the BGP speaker, registered in the binary's shared registry.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ipvs_herald_bgp_session_state` | gauge, 1 for the current state | peer, state |
//! | `ipvs_herald_bgp_session_transitions_total` | counter | peer, from, to |
//! | `ipvs_herald_bgp_session_established_timestamp_seconds` | gauge (0 when down) | peer |
//! | `ipvs_herald_bgp_messages_total` | counter | peer, direction (`sent`/`received`), type |
//! | `ipvs_herald_bgp_prefixes_announced` | gauge | peer, family |
//! | `ipvs_herald_bgp_notifications_total` | counter | peer, direction, code, subcode |
//! | `ipvs_herald_bgp_last_error_info` | gauge, 1 for the latest error only | peer, direction, code, subcode |
//! | `ipvs_herald_bgp_last_error_timestamp_seconds` | gauge | peer |
//! | `ipvs_herald_bgp_update_errors_ignored_total` | counter (RFC 7606 treat-as-withdraw) | peer |
//! | `ipvs_herald_bgp_connect_failures_total` | counter | peer |
//! | `ipvs_herald_bgp_connect_attempts_total` | counter (outgoing TCP connection attempts) | peer |
//! | `ipvs_herald_bgp_connection_collisions_total` | counter (RFC 4271 §6.8, by the connection kept: `local` = ours, `remote` = the peer's) | peer, kept |

use super::fsm::{Initiator, State};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::peer_labels::{PeerLabels, StateLabels, TransitionLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    peer: String,
    direction: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    peer: String,
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollisionLabels {
    peer: String,
    kept: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    peer: String,
    direction: &'static str,
    code: String,
    subcode: String,
}

/// All BGP metric families; cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    state: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    established_ts: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    messages: Family<MessageLabels, Counter>,
    prefixes: Family<FamilyLabels, Gauge>,
    notifications: Family<ErrorLabels, Counter>,
    last_error: Family<ErrorLabels, Gauge>,
    last_error_ts: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    ignored: Family<PeerLabels, Counter>,
    connect_failures: Family<PeerLabels, Counter>,
    connect_attempts: Family<PeerLabels, Counter>,
    collisions: Family<CollisionLabels, Counter>,
    /// Label sets of `notifications` / `last_error` in use (prometheus-client's `Family` cannot
    /// be iterated): for the one-hot last error and for removing a peer's series.
    errors_seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<ErrorLabels>>>,
}

/// Every `type` label value of `messages` (sent and received).
const MESSAGE_TYPES: [&str; 5] = [
    "open",
    "update",
    "notification",
    "keepalive",
    "route_refresh",
];

/// The `kept` label of a collision: whose connection survived.
fn kept_label(kept: Initiator) -> &'static str {
    match kept {
        Initiator::Local => "local",
        Initiator::Remote => "remote",
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Metrics {
    /// Create the families and register them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let p = "ipvs_herald_bgp";
        registry.register(
            format!("{p}_session_state"),
            "BGP session state per peer: 1 for the current state, 0 for the others",
            m.state.clone(),
        );
        registry.register(
            format!("{p}_session_transitions"),
            "BGP FSM state transitions",
            m.transitions.clone(),
        );
        registry.register(
            format!("{p}_session_established_timestamp_seconds"),
            "Unix time the session reached Established, 0 while it is down",
            m.established_ts.clone(),
        );
        registry.register(
            format!("{p}_messages"),
            "BGP messages by direction and type",
            m.messages.clone(),
        );
        registry.register(
            format!("{p}_prefixes_announced"),
            "Prefixes currently announced to the peer (Adj-RIB-Out size)",
            m.prefixes.clone(),
        );
        registry.register(
            format!("{p}_notifications"),
            "NOTIFICATION messages by direction, error code and subcode",
            m.notifications.clone(),
        );
        registry.register(
            format!("{p}_last_error_info"),
            "The latest NOTIFICATION sent or received on the session (value 1)",
            m.last_error.clone(),
        );
        registry.register(
            format!("{p}_last_error_timestamp_seconds"),
            "Unix time of the latest NOTIFICATION or connection failure",
            m.last_error_ts.clone(),
        );
        registry.register(
            format!("{p}_update_errors_ignored"),
            "Malformed UPDATE contents ignored under RFC 7606 treat-as-withdraw",
            m.ignored.clone(),
        );
        registry.register(
            format!("{p}_connect_failures"),
            "Failed TCP connection attempts and broken connections",
            m.connect_failures.clone(),
        );
        registry.register(
            format!("{p}_connect_attempts"),
            "Outgoing TCP connection attempts",
            m.connect_attempts.clone(),
        );
        registry.register(
            format!("{p}_connection_collisions"),
            "Connection collisions resolved (RFC 4271 section 6.8), by whose connection was kept",
            m.collisions.clone(),
        );
        m
    }

    /// Count a connection collision resolved in favour of the connection `kept` opened.
    pub fn collision(&self, peer: &str, kept: Initiator) {
        self.collisions
            .get_or_create(&CollisionLabels {
                peer: peer.into(),
                kept: kept_label(kept),
            })
            .inc();
    }

    /// Count an outgoing connection attempt.
    pub fn connect_attempt(&self, peer: &str) {
        self.connect_attempts
            .get_or_create(&PeerLabels { peer: peer.into() })
            .inc();
    }

    /// Initialise a peer's series (state Idle, zero prefixes).
    pub fn init_peer(&self, peer: &str, families: &[super::config::Family]) {
        self.set_state(peer, State::Idle);
        for f in families {
            self.set_prefixes(peer, *f, 0);
        }
        self.established_ts
            .get_or_create(&PeerLabels { peer: peer.into() })
            .set(0.0);
    }

    fn set_state(&self, peer: &str, s: State) {
        for st in State::ALL {
            self.state
                .get_or_create(&StateLabels {
                    peer: peer.into(),
                    state: st.as_str(),
                })
                .set(i64::from(st == s));
        }
    }

    /// Record a state change.
    pub fn transition(&self, peer: &str, from: State, to: State) {
        self.set_state(peer, to);
        self.transitions
            .get_or_create(&TransitionLabels {
                peer: peer.into(),
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
        let ts = self
            .established_ts
            .get_or_create(&PeerLabels { peer: peer.into() });
        if to == State::Established {
            ts.set(now());
        } else if from == State::Established {
            ts.set(0.0);
        }
    }

    /// Count a message.
    pub fn message(&self, peer: &str, sent: bool, kind: &'static str) {
        self.messages
            .get_or_create(&MessageLabels {
                peer: peer.into(),
                direction: if sent { "sent" } else { "received" },
                r#type: kind,
            })
            .inc();
    }

    /// Set the Adj-RIB-Out size of a family.
    pub fn set_prefixes(&self, peer: &str, f: super::config::Family, n: usize) {
        self.prefixes
            .get_or_create(&FamilyLabels {
                peer: peer.into(),
                family: f.as_str(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Record a NOTIFICATION sent or received.
    pub fn notification(&self, peer: &str, sent: bool, code: u8, subcode: u8) {
        let l = ErrorLabels {
            peer: peer.into(),
            direction: if sent { "sent" } else { "received" },
            code: code.to_string(),
            subcode: subcode.to_string(),
        };
        self.notifications.get_or_create(&l).inc();
        // Only the latest error of this peer has value 1.
        for e in self.errors_of(peer) {
            self.last_error.get_or_create(&e).set(0);
        }
        self.last_error.get_or_create(&l).set(1);
        if let Ok(mut seen) = self.errors_seen.lock() {
            seen.insert(l);
        }
        self.last_error_ts
            .get_or_create(&PeerLabels { peer: peer.into() })
            .set(now());
    }

    fn errors_of(&self, peer: &str) -> Vec<ErrorLabels> {
        match self.errors_seen.lock() {
            Ok(seen) => seen.iter().filter(|e| e.peer == peer).cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Remove every series of `peer` (a peer removed from the configuration): its name no
    /// longer appears in `/metrics`.
    pub fn remove_peer(&self, peer: &str) {
        let p = || PeerLabels { peer: peer.into() };
        for st in State::ALL {
            self.state.remove(&StateLabels {
                peer: peer.into(),
                state: st.as_str(),
            });
            for to in State::ALL {
                self.transitions.remove(&TransitionLabels {
                    peer: peer.into(),
                    from: st.as_str(),
                    to: to.as_str(),
                });
            }
        }
        for direction in ["sent", "received"] {
            for r#type in MESSAGE_TYPES {
                self.messages.remove(&MessageLabels {
                    peer: peer.into(),
                    direction,
                    r#type,
                });
            }
        }
        self.remove_prefixes(
            peer,
            &[super::config::Family::Ipv4, super::config::Family::Ipv6],
        );
        for e in self.errors_of(peer) {
            self.notifications.remove(&e);
            self.last_error.remove(&e);
        }
        if let Ok(mut seen) = self.errors_seen.lock() {
            seen.retain(|e| e.peer != peer);
        }
        self.established_ts.remove(&p());
        self.last_error_ts.remove(&p());
        self.ignored.remove(&p());
        self.connect_failures.remove(&p());
        self.connect_attempts.remove(&p());
        for kept in [Initiator::Local, Initiator::Remote] {
            self.collisions.remove(&CollisionLabels {
                peer: peer.into(),
                kept: kept_label(kept),
            });
        }
    }

    /// Remove the `prefixes_announced` series of `families` (no longer negotiated with `peer`).
    pub fn remove_prefixes(&self, peer: &str, families: &[super::config::Family]) {
        for f in families {
            self.prefixes.remove(&FamilyLabels {
                peer: peer.into(),
                family: f.as_str(),
            });
        }
    }

    /// Count ignored (treat-as-withdraw) UPDATE errors.
    pub fn ignored_update_errors(&self, peer: &str, n: usize) {
        self.ignored
            .get_or_create(&PeerLabels { peer: peer.into() })
            .inc_by(n as u64);
    }

    /// Count a connection failure.
    pub fn connect_failure(&self, peer: &str) {
        self.connect_failures
            .get_or_create(&PeerLabels { peer: peer.into() })
            .inc();
        self.last_error_ts
            .get_or_create(&PeerLabels { peer: peer.into() })
            .set(now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reg: &Registry) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, reg).expect("encode");
        s
    }

    #[test]
    fn state_is_one_hot_and_last_error_is_the_latest_only() {
        let mut reg = Registry::default();
        let m = Metrics::register(&mut reg);
        m.init_peer("p", &[super::super::config::Family::Ipv4]);
        m.transition("p", State::Idle, State::Connect);
        let t = text(&reg);
        assert!(t.contains(r#"ipvs_herald_bgp_session_state{peer="p",state="connect"} 1"#));
        assert!(t.contains(r#"ipvs_herald_bgp_session_state{peer="p",state="idle"} 0"#));
        assert!(t.contains(r#"ipvs_herald_bgp_prefixes_announced{peer="p",family="ipv4"} 0"#));
        m.notification("p", false, 6, 4);
        m.notification("p", true, 4, 0);
        let t = text(&reg);
        assert!(t.contains(
            r#"ipvs_herald_bgp_last_error_info{peer="p",direction="received",code="6",subcode="4"} 0"#
        ));
        assert!(t.contains(
            r#"ipvs_herald_bgp_last_error_info{peer="p",direction="sent",code="4",subcode="0"} 1"#
        ));
        assert!(t.contains(
            r#"ipvs_herald_bgp_notifications_total{peer="p",direction="received",code="6",subcode="4"} 1"#
        ));
    }

    #[test]
    fn remove_peer_drops_every_series_of_that_peer_only() {
        use super::super::config::Family as F;
        let mut reg = Registry::default();
        let m = Metrics::register(&mut reg);
        for p in ["gone", "kept"] {
            m.init_peer(p, &[F::Ipv4, F::Ipv6]);
            m.transition(p, State::Idle, State::Connect);
            m.transition(p, State::Connect, State::Established);
            m.connect_attempt(p);
            m.connect_failure(p);
            m.message(p, true, "open");
            m.message(p, false, "route_refresh");
            m.notification(p, false, 6, 3);
            m.notification(p, true, 200, 77);
            m.ignored_update_errors(p, 2);
            m.collision(p, Initiator::Local);
            m.collision(p, Initiator::Remote);
        }
        m.remove_peer("gone");
        let t = text(&reg);
        assert!(!t.contains(r#"peer="gone""#), "{t}");
        for name in [
            "session_state",
            "session_transitions_total",
            "session_established_timestamp_seconds",
            "messages_total",
            "prefixes_announced",
            "notifications_total",
            "last_error_info",
            "last_error_timestamp_seconds",
            "update_errors_ignored_total",
            "connect_failures_total",
            "connect_attempts_total",
            "connection_collisions_total",
        ] {
            assert!(
                t.contains(&format!("ipvs_herald_bgp_{name}{{peer=\"kept\"")),
                "{name} of the kept peer is missing:\n{t}"
            );
        }
        // The one-hot last error of the kept peer still works.
        m.notification("kept", true, 6, 6);
        let t = text(&reg);
        assert!(t.contains(
            r#"ipvs_herald_bgp_last_error_info{peer="kept",direction="sent",code="200",subcode="77"} 0"#
        ));
        assert!(t.contains(
            r#"ipvs_herald_bgp_last_error_info{peer="kept",direction="sent",code="6",subcode="6"} 1"#
        ));
    }
}
