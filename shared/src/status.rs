//! The announcer's status as data: what `ipvs-herald status --json` prints, what the status page
//! at `/status` renders and what `ipvs-herald top` shows beside the IPVS table.
//!
//! It lives here, not in the announcer, because three consumers that must not depend on the
//! announcer (the exporter's HTTP server, the binary's terminal view, the admin client) read it.
//! The announcer fills it; nobody else writes it. The JSON form is documented in
//! `docs/status-json.md` and versioned by [`SCHEMA_VERSION`]: a field may be added without a new
//! version, never renamed or removed.

use serde::{Deserialize, Serialize};

/// Version of the JSON schema ([`StatusReport::schema`]).
pub const SCHEMA_VERSION: u32 = 1;

/// Everything the announcer knows about its VIP groups and BGP sessions at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// [`SCHEMA_VERSION`] of the producer.
    pub schema: u32,
    /// When the report was made, seconds since the Unix epoch.
    pub generated_at: f64,
    /// Every configured VIP group, in configuration order.
    pub groups: Vec<GroupReport>,
    /// Every configured BGP peer (empty with the kernel backend), in configuration order.
    pub peers: Vec<PeerReport>,
}

/// The one vocabulary of a VIP group's route state, used by `status`, `--json`, the page, the
/// logs and the `ipvs_herald_vip_group_phase` metric's `phase` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupPhase {
    /// Not announced: the pool is down (or not yet up).
    Withdrawn,
    /// Announced with the `down` attributes (`down_action = "announce"` while unhealthy).
    AnnouncedDown,
    /// Announced with the `up` attributes.
    Announced,
    /// Announced with the `draining` attributes until the drain time is over.
    Draining,
    /// Withdrawn because drained, until undrained.
    Drained,
}

impl GroupPhase {
    /// Every phase, in the order of the `phase` metric's series. A new variant does not
    /// compile until it has a place here: [`GroupPhase::position`] must name it.
    pub const ALL: [GroupPhase; 5] = [
        GroupPhase::Withdrawn,
        GroupPhase::AnnouncedDown,
        GroupPhase::Announced,
        GroupPhase::Draining,
        GroupPhase::Drained,
    ];

    /// This phase's index in [`GroupPhase::ALL`].
    pub const fn position(self) -> usize {
        match self {
            GroupPhase::Withdrawn => 0,
            GroupPhase::AnnouncedDown => 1,
            GroupPhase::Announced => 2,
            GroupPhase::Draining => 3,
            GroupPhase::Drained => 4,
        }
    }

    /// The name used everywhere (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupPhase::Withdrawn => "withdrawn",
            GroupPhase::AnnouncedDown => "announced_down",
            GroupPhase::Announced => "announced",
            GroupPhase::Draining => "draining",
            GroupPhase::Drained => "drained",
        }
    }

    /// Whether the group's routes are out there in this phase.
    pub fn is_announced(self) -> bool {
        matches!(
            self,
            GroupPhase::Announced | GroupPhase::AnnouncedDown | GroupPhase::Draining
        )
    }
}

/// Who asked for a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainSource {
    /// `ipvs-herald drain` over the admin socket (kept in the state file).
    Admin,
    /// The maintenance file exists (or names this group).
    MaintenanceFile,
    /// The daemon is stopping (SIGTERM).
    Shutdown,
    /// The state file could not be read at start: drained until `undrain --all`.
    CorruptState,
}

impl DrainSource {
    /// The name used everywhere (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            DrainSource::Admin => "admin",
            DrainSource::MaintenanceFile => "maintenance_file",
            DrainSource::Shutdown => "shutdown",
            DrainSource::CorruptState => "corrupt_state",
        }
    }
}

/// One VIP group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    /// The group's prefixes, as configured (`192.0.2.10/32`).
    pub vips: Vec<String>,
    pub phase: GroupPhase,
    /// Health of the pool after rise/fall: `up`, `down` or `unknown` (no verdict yet).
    pub health: String,
    /// The last phase change, if any since the daemon started.
    pub last_transition: Option<Transition>,
    /// Every drain in force (empty when not drained).
    pub drained_by: Vec<DrainSource>,
    /// Why the group is where it is, one line each (failed checks, drain source).
    pub reasons: Vec<String>,
    /// The services the group's health is computed from.
    pub services: Vec<ServiceReport>,
}

/// A phase change of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: GroupPhase,
    pub to: GroupPhase,
    /// Seconds since the Unix epoch.
    pub at: f64,
    /// Why, in one line.
    pub reason: String,
}

/// One IPVS service of a group, against the group's thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// `TCP 192.0.2.10:80`, `TCP [2001:db8::1]:443` or `FWM 1`, as in the
    /// `ipvs_herald_vip_group_*` metrics' `service` label.
    pub service: String,
    /// Whether the service exists in IPVS at all.
    pub present: bool,
    /// Destinations with a weight above zero (what counts as healthy).
    pub healthy: u32,
    /// Destinations configured in IPVS.
    pub configured: u32,
    /// The pool is down when `healthy` falls below this.
    pub down_threshold: u32,
    /// The pool comes back up when `healthy` reaches this.
    pub up_threshold: u32,
    /// The pool's verdict after hysteresis.
    pub up: bool,
}

/// One BGP peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    pub name: String,
    pub address: String,
    /// RFC 4271 FSM state as the `ipvs_herald_bgp_*` metrics name it: `idle`, `connect`,
    /// `active`, `opensent`, `openconfirm`, `established`.
    pub state: String,
    /// Seconds since the session reached Established, when it is.
    pub uptime_seconds: Option<f64>,
    /// Prefixes currently announced to the peer.
    pub prefixes_sent: u64,
    /// The latest error (NOTIFICATION sent or received, connection failure).
    pub last_error: Option<String>,
    /// BFD session state (`up`, `down`, `init`, `admindown`) when the peer has `bfd`
    /// enabled; `None` when BFD is off. The same as `bfd_session.state`.
    pub bfd: Option<String>,
    /// The BFD session in detail when the peer has `bfd` enabled (added within schema 1).
    #[serde(default)]
    pub bfd_session: Option<BfdReport>,
    /// Established, but the initial table and End-of-RIB are held back: `first_health_decision`
    /// (a graceful start: the peer keeps our stale routes until the first health decision
    /// replaces them) or `bfd_up` (BFD is not Up yet). `None` otherwise (added within schema 1).
    #[serde(default)]
    pub initial_table_held: Option<String>,
}

/// One peer's BFD session (RFC 5880).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfdReport {
    /// Our state: `up`, `down`, `init`, `admindown`.
    pub state: String,
    /// The state the peer last reported.
    pub remote_state: String,
    /// Negotiated transmit interval before jitter, seconds (0 before the peer was heard).
    pub tx_interval_seconds: f64,
    /// Negotiated detection time, seconds (0 before the peer was heard).
    pub detection_time_seconds: f64,
    /// Our diagnostic for the last state change (`none`, `control_detection_time_expired`,
    /// `neighbor_signaled_session_down`, …), as the `diag` label of
    /// `ipvs_herald_bfd_last_diagnostic_info` writes it.
    pub diagnostic: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_the_serde_names() {
        for (i, p) in GroupPhase::ALL.into_iter().enumerate() {
            assert_eq!(p.position(), i, "{p:?} is out of place in GroupPhase::ALL");
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<GroupPhase>(&json).unwrap(), p);
        }
        for d in [
            DrainSource::Admin,
            DrainSource::MaintenanceFile,
            DrainSource::Shutdown,
            DrainSource::CorruptState,
        ] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
    }

    /// `status --json` and the admin socket carry times as JSON numbers: they must come back
    /// bit for bit (serde_json's `float_roundtrip`; without it this value came back 2 ulp off).
    #[test]
    fn times_round_trip_exactly() {
        let t = Transition {
            from: GroupPhase::Withdrawn,
            to: GroupPhase::Announced,
            at: 1_796_314_918.217_678_5,
            reason: "healthy".into(),
        };
        let back: Transition = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back.at.to_bits(), t.at.to_bits());
    }

    /// A report from a daemon that predates the BFD and graceful-restart fields still reads:
    /// they were added within schema 1.
    #[test]
    fn peer_without_the_newer_fields_reads() {
        let old = r#"{"name":"rt","address":"192.0.2.1","state":"established",
            "uptime_seconds":84.2,"prefixes_sent":0,"last_error":null,"bfd":null}"#;
        let p: PeerReport = serde_json::from_str(old).unwrap();
        assert_eq!(p.bfd_session, None);
        assert_eq!(p.initial_table_held, None);
    }

    #[test]
    fn peer_with_bfd_has_the_documented_json() {
        let p = PeerReport {
            name: "rt".into(),
            address: "192.0.2.1".into(),
            state: "established".into(),
            uptime_seconds: None,
            prefixes_sent: 0,
            last_error: None,
            bfd: Some("up".into()),
            bfd_session: Some(BfdReport {
                state: "up".into(),
                remote_state: "up".into(),
                tx_interval_seconds: 0.3,
                detection_time_seconds: 0.9,
                diagnostic: "none".into(),
            }),
            initial_table_held: Some("first_health_decision".into()),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["bfd_session"],
            serde_json::json!({
                "state": "up",
                "remote_state": "up",
                "tx_interval_seconds": 0.3,
                "detection_time_seconds": 0.9,
                "diagnostic": "none"
            })
        );
        assert_eq!(v["initial_table_held"], "first_health_decision");
        assert_eq!(serde_json::from_value::<PeerReport>(v).unwrap(), p);
    }

    #[test]
    fn unknown_phase_is_refused() {
        assert!(serde_json::from_str::<GroupPhase>("\"up\"").is_err());
    }
}
