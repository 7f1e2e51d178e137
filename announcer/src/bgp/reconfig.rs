//! Live reconfiguration of the speaker: the pure diff between the running and the new
//! [`BgpConfig`], as a per-peer [`Plan`] that the speaker then carries out
//! ([`super::SpeakerHandle::reconfigure`]).
//!
//! Peers are matched by `name` (the identity used in logs and metric labels); a renamed peer
//! is a removal plus an addition. For each peer:
//!
//! | change | what happens |
//! |---|---|
//! | nothing | the session is not touched: no NOTIFICATION, no ROUTE-REFRESH, no UPDATE |
//! | removed | NOTIFICATION Cease / Peer De-configured (RFC 4486 subcode 3), session closed, its metric series removed |
//! | added | a new session starts (connect, or wait for the peer when passive) and gets the whole table once Established |
//! | a session key ([`SESSION_KEYS`]) | NOTIFICATION Cease / Other Configuration Change (subcode 6), then a new session with the new values |
//! | only route keys ([`ROUTE_KEYS`]) | applied in place; when a next-hop key changed, every announced route is re-sent as UPDATEs |
//! | only local keys ([`LOCAL_KEYS`]) | applied in place (timers, backoff); nothing is sent |
//!
//! Global keys: a new `router_id` or `local_as` changes what every OPEN carries (and eBGP vs
//! iBGP), so every session is reset with Cease / Other Configuration Change — the same as
//! BIRD and FRR do. A new `listen` address rebinds the passive listener; sessions already
//! established are not affected (they do not depend on the listening socket).

use super::config::{BgpConfig, PeerConfig};
use std::fmt;

/// Peer keys whose change needs a new session (they are in the OPEN, or shape the TCP
/// connection).
pub const SESSION_KEYS: &[&str] = &[
    "address",
    "remote_as",
    "port",
    "local_address",
    "interface",
    "passive",
    "accept_incoming",
    "hold_time",
    "md5_password",
    "ttl_security",
    "families",
    "graceful_restart",
    "bfd",
];

/// Peer keys that change the UPDATEs sent (applied by re-sending the announced routes).
pub const ROUTE_KEYS: &[&str] = &["next_hop_v4", "next_hop_v6", "ipv6_link_local_next_hop"];

/// Peer keys that only change local behaviour (applied without sending anything).
/// `bfd_timers` is a change of the BFD intervals or multiplier with BFD on before and after
/// (a Poll Sequence, RFC 5880 §6.8.3); turning BFD on or off is the session key `bfd`.
pub const LOCAL_KEYS: &[&str] = &["keepalive", "connect_retry", "bfd_timers"];

/// What happens to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Same configuration: the session is not touched.
    Unchanged,
    /// New peer: a session is started.
    Added,
    /// Peer gone: Cease / Peer De-configured, session stopped.
    Removed,
    /// Session keys changed: Cease / Other Configuration Change, then a new session.
    Reset {
        /// The changed keys (peer keys, or `router_id` / `local_as` for a global change).
        keys: Vec<&'static str>,
    },
    /// Only route or local keys changed: applied to the running session.
    Update {
        /// The changed keys.
        keys: Vec<&'static str>,
        /// True when announced routes must be re-sent (a next-hop key changed).
        resend: bool,
    },
}

impl PeerChange {
    /// Short verb for logs and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            PeerChange::Unchanged => "unchanged",
            PeerChange::Added => "added",
            PeerChange::Removed => "removed",
            PeerChange::Reset { .. } => "reset",
            PeerChange::Update { .. } => "updated",
        }
    }
}

/// One peer's entry in a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    /// Peer name.
    pub name: String,
    /// What happens to it.
    pub change: PeerChange,
}

impl fmt::Display for PeerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.change {
            PeerChange::Unchanged => write!(f, "{}: unchanged, session kept", self.name),
            PeerChange::Added => write!(f, "{}: added, session started", self.name),
            PeerChange::Removed => write!(
                f,
                "{}: removed, session closed with Cease/Peer De-configured",
                self.name
            ),
            PeerChange::Reset { keys } => write!(
                f,
                "{}: {} changed, session reset with Cease/Other Configuration Change",
                self.name,
                keys.join(", ")
            ),
            PeerChange::Update { keys, resend } => write!(
                f,
                "{}: {} changed, applied without reset{}",
                self.name,
                keys.join(", "),
                if *resend { ", routes re-sent" } else { "" }
            ),
        }
    }
}

/// The whole difference between two configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Peers of the new configuration in its order, then the removed peers.
    pub peers: Vec<PeerPlan>,
    /// Global keys that changed and reset every session (`router_id`, `local_as`).
    pub global_reset: Vec<&'static str>,
    /// The listener address changed.
    pub listen_changed: bool,
}

impl Plan {
    /// True when nothing at all changes.
    pub fn is_empty(&self) -> bool {
        !self.listen_changed && self.peers.iter().all(|p| p.change == PeerChange::Unchanged)
    }

    /// The entry of peer `name`.
    pub fn peer(&self, name: &str) -> Option<&PeerChange> {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.change)
    }
}

/// Keys of a peer whose values differ between `a` and `b`, in [`SESSION_KEYS`],
/// [`ROUTE_KEYS`], [`LOCAL_KEYS`] order.
pub fn changed_keys(a: &PeerConfig, b: &PeerConfig) -> Vec<&'static str> {
    let mut k = Vec::new();
    macro_rules! cmp {
        ($($field:ident),*) => {
            $( if a.$field != b.$field { k.push(stringify!($field)); } )*
        };
    }
    cmp!(
        address,
        remote_as,
        port,
        local_address,
        interface,
        passive,
        accept_incoming,
        hold_time,
        md5_password,
        ttl_security
    );
    // `families` compares the effective set: omitting the key equals listing the address's family.
    if a.families() != b.families() {
        k.push("families");
    }
    cmp!(
        graceful_restart,
        next_hop_v4,
        next_hop_v6,
        ipv6_link_local_next_hop,
        keepalive,
        connect_retry
    );
    match (a.bfd_params(), b.bfd_params()) {
        // Single hop and multihop are different sessions (ports, TTL rule): a new one.
        (Some(_), Some(_)) if a.bfd_hop() != b.bfd_hop() => k.push("bfd"),
        (Some(x), Some(y)) if x != y => k.push("bfd_timers"),
        (x, y) if x.is_some() != y.is_some() => k.push("bfd"),
        _ => {}
    }
    k
}

/// The difference between the running configuration `old` and `new` (both already valid).
pub fn plan(old: &BgpConfig, new: &BgpConfig) -> Plan {
    let mut global_reset = Vec::new();
    if old.router_id != new.router_id {
        global_reset.push("router_id");
    }
    if old.local_as != new.local_as {
        global_reset.push("local_as");
    }
    let mut peers = Vec::new();
    for n in &new.peers {
        let change = match old.peers.iter().find(|o| o.name == n.name) {
            None => PeerChange::Added,
            Some(o) => {
                let keys = changed_keys(o, n);
                let session: Vec<_> = keys
                    .iter()
                    .copied()
                    .filter(|k| SESSION_KEYS.contains(k))
                    .collect();
                if !global_reset.is_empty() {
                    let mut all = global_reset.clone();
                    all.extend(session);
                    PeerChange::Reset { keys: all }
                } else if !session.is_empty() {
                    PeerChange::Reset { keys: session }
                } else if keys.is_empty() {
                    PeerChange::Unchanged
                } else {
                    let resend = keys.iter().any(|k| ROUTE_KEYS.contains(k));
                    PeerChange::Update { keys, resend }
                }
            }
        };
        peers.push(PeerPlan {
            name: n.name.clone(),
            change,
        });
    }
    for o in &old.peers {
        if !new.peers.iter().any(|n| n.name == o.name) {
            peers.push(PeerPlan {
                name: o.name.clone(),
                change: PeerChange::Removed,
            });
        }
    }
    Plan {
        peers,
        global_reset,
        listen_changed: old.listen != new.listen,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{Backoff, Family, GracefulRestart, NextHop};
    use super::*;

    fn base() -> BgpConfig {
        BgpConfig {
            router_id: "192.0.2.10".parse().unwrap(),
            local_as: 65001,
            listen: "[::]:179".parse().unwrap(),
            peers: vec![
                PeerConfig::new("a", "192.0.2.1".parse().unwrap(), 65000),
                PeerConfig::new("b", "192.0.2.2".parse().unwrap(), 65000),
            ],
        }
    }

    #[test]
    fn identical_configs_change_nothing() {
        let p = plan(&base(), &base());
        assert!(p.is_empty());
        assert_eq!(p.peer("a"), Some(&PeerChange::Unchanged));
        assert_eq!(p.peer("b"), Some(&PeerChange::Unchanged));
        assert!(p.global_reset.is_empty());
    }

    #[test]
    fn added_and_removed_peers_leave_the_others_alone() {
        let mut new = base();
        new.peers.remove(0);
        new.peers
            .push(PeerConfig::new("c", "192.0.2.3".parse().unwrap(), 65003));
        let p = plan(&base(), &new);
        assert_eq!(p.peer("a"), Some(&PeerChange::Removed));
        assert_eq!(p.peer("b"), Some(&PeerChange::Unchanged));
        assert_eq!(p.peer("c"), Some(&PeerChange::Added));
        assert_eq!(p.peers.len(), 3);
        // New order first, removed last.
        assert_eq!(p.peers[2].name, "a");
        assert!(!p.is_empty());
    }

    #[test]
    fn every_session_key_resets_only_its_peer() {
        type Tweak = fn(&mut PeerConfig);
        let tweaks: [(&str, Tweak); 13] = [
            ("address", |p| p.address = "192.0.2.9".parse().unwrap()),
            ("remote_as", |p| p.remote_as = 65009),
            ("port", |p| p.port = 1179),
            ("local_address", |p| {
                p.local_address = Some("192.0.2.10".parse().unwrap())
            }),
            ("interface", |p| p.interface = Some("eth1".into())),
            ("passive", |p| p.passive = true),
            ("accept_incoming", |p| p.accept_incoming = true),
            ("hold_time", |p| p.hold_time = 9),
            ("md5_password", |p| p.md5_password = Some("x".into())),
            ("ttl_security", |p| p.ttl_security = Some(1)),
            ("families", |p| {
                p.families = Some(vec![Family::Ipv4, Family::Ipv6]);
                p.next_hop_v6 = NextHop::Addr("2001:db8::1".parse().unwrap());
            }),
            ("graceful_restart", |p| {
                p.graceful_restart = Some(GracefulRestart::default())
            }),
            ("bfd", |p| {
                p.bfd = Some(crate::bgp::config::BfdConfig::default())
            }),
        ];
        for (key, tweak) in tweaks {
            let mut new = base();
            tweak(&mut new.peers[0]);
            let p = plan(&base(), &new);
            match p.peer("a") {
                Some(PeerChange::Reset { keys }) => assert!(keys.contains(&key), "{key}: {keys:?}"),
                other => panic!("{key}: expected a reset, got {other:?}"),
            }
            assert_eq!(p.peer("b"), Some(&PeerChange::Unchanged), "{key}");
        }
        for key in SESSION_KEYS {
            // The table above covers the whole list.
            assert!(
                [
                    "address",
                    "remote_as",
                    "port",
                    "local_address",
                    "interface",
                    "passive",
                    "accept_incoming",
                    "hold_time",
                    "md5_password",
                    "ttl_security",
                    "families",
                    "graceful_restart",
                    "bfd"
                ]
                .contains(key),
                "{key}"
            );
        }
    }

    #[test]
    fn bfd_timer_changes_apply_in_place_and_disabled_bfd_is_off() {
        use crate::bgp::config::BfdConfig;
        let mut old = base();
        old.peers[0].bfd = Some(BfdConfig::default());
        let mut new = old.clone();
        new.peers[0].bfd = Some(BfdConfig {
            detect_multiplier: 5,
            ..Default::default()
        });
        assert_eq!(
            plan(&old, &new).peer("a"),
            Some(&PeerChange::Update {
                keys: vec!["bfd_timers"],
                resend: false
            })
        );
        // Disabled equals absent; a timer change while disabled is no change at all.
        let mut off = base();
        off.peers[0].bfd = Some(BfdConfig {
            enabled: false,
            detect_multiplier: 7,
            ..Default::default()
        });
        assert_eq!(plan(&base(), &off).peer("a"), Some(&PeerChange::Unchanged));
        match plan(&off, &old).peer("a") {
            Some(PeerChange::Reset { keys }) => assert_eq!(keys, &vec!["bfd"]),
            other => panic!("expected a reset, got {other:?}"),
        }
        // Single hop to multihop, or another minimum TTL: a new BFD session, so a reset.
        for changed in [
            BfdConfig {
                multihop: true,
                ..Default::default()
            },
            BfdConfig {
                multihop: true,
                min_ttl: Some(250),
                ..Default::default()
            },
        ] {
            let mut mh = base();
            mh.peers[0].bfd = Some(changed);
            match plan(&old, &mh).peer("a") {
                Some(PeerChange::Reset { keys }) => assert_eq!(keys, &vec!["bfd"]),
                other => panic!("expected a reset for {changed:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn families_compare_by_effect() {
        let mut new = base();
        new.peers[0].families = Some(vec![Family::Ipv4]);
        assert_eq!(plan(&base(), &new).peer("a"), Some(&PeerChange::Unchanged));
    }

    #[test]
    fn route_keys_update_and_resend_local_keys_only_update() {
        let mut new = base();
        new.peers[0].next_hop_v4 = NextHop::Addr("192.0.2.77".parse().unwrap());
        new.peers[1].keepalive = Some(5);
        new.peers[1].connect_retry = Backoff { min: 2.0, max: 9.0 };
        let p = plan(&base(), &new);
        assert_eq!(
            p.peer("a"),
            Some(&PeerChange::Update {
                keys: vec!["next_hop_v4"],
                resend: true
            })
        );
        assert_eq!(
            p.peer("b"),
            Some(&PeerChange::Update {
                keys: vec!["keepalive", "connect_retry"],
                resend: false
            })
        );
        let shown = p.peers[0].to_string();
        assert!(
            shown.contains("next_hop_v4") && shown.contains("re-sent"),
            "{shown}"
        );
    }

    #[test]
    fn mixed_session_and_route_keys_reset() {
        let mut new = base();
        new.peers[0].next_hop_v4 = NextHop::Addr("192.0.2.77".parse().unwrap());
        new.peers[0].hold_time = 30;
        assert_eq!(
            plan(&base(), &new).peer("a"),
            Some(&PeerChange::Reset {
                keys: vec!["hold_time"]
            })
        );
    }

    #[test]
    fn router_id_or_local_as_resets_every_kept_peer() {
        let mut new = base();
        new.router_id = "192.0.2.11".parse().unwrap();
        new.peers
            .push(PeerConfig::new("c", "192.0.2.3".parse().unwrap(), 65003));
        let p = plan(&base(), &new);
        assert_eq!(p.global_reset, vec!["router_id"]);
        for n in ["a", "b"] {
            assert_eq!(
                p.peer(n),
                Some(&PeerChange::Reset {
                    keys: vec!["router_id"]
                })
            );
        }
        assert_eq!(p.peer("c"), Some(&PeerChange::Added));
        let mut new = base();
        new.local_as = 65000;
        new.peers[1].port = 1179;
        let p = plan(&base(), &new);
        assert_eq!(
            p.peer("b"),
            Some(&PeerChange::Reset {
                keys: vec!["local_as", "port"]
            })
        );
    }

    #[test]
    fn listen_change_touches_no_session() {
        let mut new = base();
        new.listen = "192.0.2.10:179".parse().unwrap();
        let p = plan(&base(), &new);
        assert!(p.listen_changed);
        assert!(!p.is_empty());
        assert!(p.peers.iter().all(|x| x.change == PeerChange::Unchanged));
    }

    #[test]
    fn renamed_peer_is_removed_and_added() {
        let mut new = base();
        new.peers[0].name = "a2".into();
        let p = plan(&base(), &new);
        assert_eq!(p.peer("a"), Some(&PeerChange::Removed));
        assert_eq!(p.peer("a2"), Some(&PeerChange::Added));
    }
}
