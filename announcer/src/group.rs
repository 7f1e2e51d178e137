//! One VIP group's route state: health (from [`crate::health`]) combined with drains, turned into
//! ordered route actions.
//!
//! Pure: [`GroupState::step`] takes the current time, an observation and whether the group is
//! drained, and returns what to do, in order. The order is the safety property: when ipvs-herald
//! manages the VIP address itself, the address is added *before* the route is announced and
//! removed only *after* the route is withdrawn, so a router never sends traffic to a director
//! that does not answer for the VIP.
//!
//! ```text
//!            health up                   drain            drain_time over
//! Withdrawn ───────────▶ Announced ───────────▶ Draining ───────────────▶ Drained
//!     ▲  ▲                  │   ▲                  │ undrain                 │ undrain
//!     │  └── health down ───┘   └──────────────────┘                         │
//!     └───────────────────────────────────────────────────────────────────────┘
//! (with down_action = "announce", "Withdrawn" is "AnnouncedDown": announced with the down attributes)
//! ```

use crate::group_config::{
    DownAction, GroupConfigError, GroupProblem, ParsedAttrs, VipAddressMode, VipGroupConfig,
};
use crate::health::{instant_after, GroupTracker, Health, Observation};
use herald_shared::status::GroupPhase;
use ipnet::IpNet;
use std::time::{Duration, Instant};

/// Where a group's routes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not announced (start, or unhealthy with `down_action = "withdraw"`).
    Withdrawn,
    /// Announced with the `down` attributes (unhealthy with `down_action = "announce"`).
    AnnouncedDown,
    /// Announced with the `up` attributes.
    Announced,
    /// Announced with the `draining` attributes until the instant, then withdrawn.
    Draining { until: Instant },
    /// Withdrawn because drained; stays so until undrained.
    Drained,
}

impl Phase {
    /// The phase in the one vocabulary of `status`, the logs and the metrics.
    pub fn report(&self) -> GroupPhase {
        match self {
            Phase::Withdrawn => GroupPhase::Withdrawn,
            Phase::AnnouncedDown => GroupPhase::AnnouncedDown,
            Phase::Announced => GroupPhase::Announced,
            Phase::Draining { .. } => GroupPhase::Draining,
            Phase::Drained => GroupPhase::Drained,
        }
    }

    /// Short name for logs, metrics and `status` ([`GroupPhase::as_str`]).
    pub fn as_str(&self) -> &'static str {
        self.report().as_str()
    }

    /// Whether routes are announced in this phase.
    pub fn is_announced(&self) -> bool {
        matches!(
            self,
            Phase::Announced | Phase::AnnouncedDown | Phase::Draining { .. }
        )
    }
}

/// One step of work for the route backend, to be carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Add the VIP address to the managed interface (`vip_address = "manage"`).
    AddAddress { prefix: IpNet, interface: String },
    /// Announce (or re-announce with new attributes).
    Announce { prefix: IpNet, attrs: ParsedAttrs },
    /// Withdraw.
    Withdraw { prefix: IpNet },
    /// Remove the VIP address from the managed interface, `linger` after the withdrawal that
    /// precedes it (an `AddAddress` of the same prefix within that time cancels the removal).
    RemoveAddress {
        prefix: IpNet,
        interface: String,
        linger: Duration,
    },
}

/// The attributes of each state, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attrs {
    up: ParsedAttrs,
    draining: ParsedAttrs,
    down: ParsedAttrs,
}

/// A group's live state.
#[derive(Debug, Clone)]
pub struct GroupState {
    cfg: VipGroupConfig,
    attrs: Attrs,
    tracker: GroupTracker,
    phase: Phase,
    last_observation: Option<Observation>,
    /// When the last health observation was fed in (the watchdog's reference).
    checked_at: Option<Instant>,
    transitions: u64,
}

/// The shortest time without a health verdict after which an announced group is withdrawn.
pub const MIN_WATCHDOG_BOUND: Duration = Duration::from_secs(2);

impl GroupState {
    /// A new group, withdrawn. `cfg` must have passed [`VipGroupConfig::validate`].
    pub fn new(cfg: VipGroupConfig) -> Result<Self, GroupConfigError> {
        let attrs = Self::parse_attrs(&cfg)?;
        Ok(GroupState {
            tracker: GroupTracker::new(cfg.damping()),
            cfg,
            attrs,
            phase: Phase::Withdrawn,
            last_observation: None,
            checked_at: None,
            transitions: 0,
        })
    }

    fn parse_attrs(cfg: &VipGroupConfig) -> Result<Attrs, GroupConfigError> {
        let parse = |state: &'static str, attrs: &crate::group_config::StateAttrs| {
            attrs.parse().map_err(|error| GroupConfigError::Group {
                group: cfg.name.clone(),
                problem: GroupProblem::Attrs { state, error },
            })
        };
        Ok(Attrs {
            up: parse("up", &cfg.up)?,
            draining: parse("draining", &cfg.draining)?,
            down: parse("down", &cfg.down)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &VipGroupConfig {
        &self.cfg
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn health(&self) -> Health {
        self.tracker.state()
    }

    /// Phase changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    pub fn last_observation(&self) -> Option<&Observation> {
        self.last_observation.as_ref()
    }

    /// Pool hysteresis state, to feed [`crate::health::evaluate`].
    pub fn tracker_mut(&mut self) -> &mut GroupTracker {
        &mut self.tracker
    }

    /// Apply a reloaded configuration for the same group name. Health state is kept; when the
    /// attributes of the current phase changed, the routes are re-announced with the new ones
    /// (no session reset); when the prefixes changed, removed ones are withdrawn and new ones
    /// announced as the phase says.
    pub fn reconfigure(
        &mut self,
        cfg: VipGroupConfig,
    ) -> Result<Vec<RouteAction>, GroupConfigError> {
        let attrs = Self::parse_attrs(&cfg)?;
        let old_prefixes = self.cfg.prefixes.clone();
        let old_attrs = self.current_attrs();
        self.tracker.set_damping(cfg.damping());
        let old_manage = self.manages_address();
        let old_interface = self.cfg.manage_interface.clone();
        self.cfg = cfg;
        self.attrs = attrs;
        let mut actions = Vec::new();
        if !self.phase.is_announced() {
            return Ok(actions);
        }
        for p in old_prefixes
            .iter()
            .filter(|p| !self.cfg.prefixes.contains(p))
        {
            actions.push(RouteAction::Withdraw { prefix: *p });
            if old_manage {
                actions.push(RouteAction::RemoveAddress {
                    prefix: *p,
                    interface: old_interface.clone(),
                    linger: self.cfg.address_linger,
                });
            }
        }
        let new_attrs = self.current_attrs();
        for p in self.cfg.prefixes.clone() {
            let is_new = !old_prefixes.contains(&p);
            if is_new && self.manages_address() {
                actions.push(RouteAction::AddAddress {
                    prefix: p,
                    interface: self.cfg.manage_interface.clone(),
                });
            }
            if is_new || old_attrs != new_attrs {
                if let Some(attrs) = &new_attrs {
                    actions.push(RouteAction::Announce {
                        prefix: p,
                        attrs: attrs.clone(),
                    });
                }
            }
        }
        Ok(actions)
    }

    /// After a graceful restart the managed addresses of the groups that were announced are
    /// kept at start (IPVS forwards for their stale routes). One that is not announced after its
    /// first check gives its addresses up, `address_linger` after the End-of-RIB that drops its
    /// stale route.
    pub fn release_kept_addresses(&self) -> Vec<RouteAction> {
        if !self.manages_address() || self.phase.is_announced() {
            return Vec::new();
        }
        self.cfg
            .prefixes
            .iter()
            .map(|p| RouteAction::RemoveAddress {
                prefix: *p,
                interface: self.cfg.manage_interface.clone(),
                linger: self.cfg.address_linger,
            })
            .collect()
    }

    fn manages_address(&self) -> bool {
        self.cfg.vip_address == VipAddressMode::Manage
    }

    fn current_attrs(&self) -> Option<ParsedAttrs> {
        match self.phase {
            Phase::Announced => Some(self.attrs.up.clone()),
            Phase::AnnouncedDown => Some(self.attrs.down.clone()),
            Phase::Draining { .. } => Some(self.attrs.draining.clone()),
            Phase::Withdrawn | Phase::Drained => None,
        }
    }

    /// Feed one health observation (or `None` when no check was due, e.g. only a drain deadline
    /// passed) and the drain state; return the actions that bring the routes where they should
    /// be, in order.
    pub fn step(
        &mut self,
        now: Instant,
        observation: Option<Observation>,
        drained: bool,
        drain_time: Duration,
    ) -> Vec<RouteAction> {
        if let Some(obs) = observation {
            self.tracker.observe(now, &obs);
            self.last_observation = Some(obs);
            self.checked_at = Some(now);
        }
        let healthy = self.tracker.state() == Health::Up;
        let next = match (self.phase, drained) {
            (Phase::Announced, true) if drain_time.is_zero() => Phase::Drained,
            (Phase::Announced, true) => Phase::Draining {
                until: instant_after(now, drain_time),
            },
            (Phase::Draining { until }, true) if now >= until => Phase::Drained,
            (Phase::Draining { until }, true) => Phase::Draining { until },
            (_, true) => Phase::Drained,
            (_, false) if healthy => Phase::Announced,
            // Announcing "down" still claims someone checks the pool: not after the watchdog
            // withdrew the group, until a verdict comes in again.
            (_, false) => match self.cfg.down_action {
                DownAction::Announce if self.checked_at.is_some() => Phase::AnnouncedDown,
                DownAction::Announce | DownAction::Withdraw => Phase::Withdrawn,
            },
        };
        self.move_to(next)
    }

    /// How long an announced group may go without a health verdict before the watchdog
    /// withdraws it: three intervals, and never less than [`MIN_WATCHDOG_BOUND`].
    pub fn watchdog_bound(&self) -> Duration {
        self.cfg.interval.saturating_mul(3).max(MIN_WATCHDOG_BOUND)
    }

    /// When the watchdog must act on this group if no verdict comes first: `None` while nothing
    /// is announced (a withdrawn group needs `rise` fresh checks before it is announced anyway).
    pub fn watchdog_deadline(&self) -> Option<Instant> {
        if !self.phase.is_announced() {
            return None;
        }
        self.checked_at
            .and_then(|t| t.checked_add(self.watchdog_bound()))
    }

    /// The watchdog's verdict: no health check has answered within the bound, so nobody knows
    /// whether the pool is alive. Whatever the phase and `down_action`, the routes are
    /// withdrawn (a route for a pool nobody checks is the one thing an announcer must never
    /// leave up); the group counts as down and returns through `rise` and the hold-down once
    /// checks answer again. A drain in force still ends in `Drained` at the next step.
    pub fn expire(&mut self, now: Instant, reason: String) -> Vec<RouteAction> {
        self.tracker.force_down(now);
        self.last_observation = Some(Observation {
            passed: false,
            reasons: vec![reason],
            services: Vec::new(),
        });
        self.checked_at = None;
        if self.phase.is_announced() {
            self.move_to(Phase::Withdrawn)
        } else {
            Vec::new()
        }
    }

    /// The earliest instant at which [`GroupState::step`] must run again without an
    /// observation (the end of a drain).
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining { until } => Some(until),
            _ => None,
        }
    }

    fn move_to(&mut self, next: Phase) -> Vec<RouteAction> {
        let before = self.current_attrs();
        let was_announced = self.phase.is_announced();
        let same_kind = std::mem::discriminant(&self.phase) == std::mem::discriminant(&next);
        self.phase = next;
        if same_kind {
            return Vec::new();
        }
        self.transitions += 1;
        let after = self.current_attrs();
        let mut actions = Vec::new();
        let iface = self.cfg.manage_interface.clone();
        match (was_announced, after) {
            (_, Some(attrs)) => {
                for p in &self.cfg.prefixes {
                    if !was_announced && self.manages_address() {
                        actions.push(RouteAction::AddAddress {
                            prefix: *p,
                            interface: iface.clone(),
                        });
                    }
                    if before.as_ref() != Some(&attrs) || !was_announced {
                        actions.push(RouteAction::Announce {
                            prefix: *p,
                            attrs: attrs.clone(),
                        });
                    }
                }
            }
            (true, None) => {
                for p in &self.cfg.prefixes {
                    actions.push(RouteAction::Withdraw { prefix: *p });
                }
                if self.manages_address() {
                    for p in &self.cfg.prefixes {
                        actions.push(RouteAction::RemoveAddress {
                            prefix: *p,
                            interface: iface.clone(),
                            linger: self.cfg.address_linger,
                        });
                    }
                }
            }
            (false, None) => {}
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> VipGroupConfig {
        #[derive(serde::Deserialize)]
        struct W {
            g: VipGroupConfig,
        }
        let text = format!(
            "[g]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\", \"2001:db8::10/128\"]\nrise = 2\nfall = 2\nhold_down = \"0s\"\nup = {{ med = 10 }}\n{extra}"
        );
        let w: W = toml::from_str(&text).unwrap();
        w.g.validate().unwrap();
        w.g
    }

    fn obs(passed: bool) -> Option<Observation> {
        Some(Observation {
            passed,
            reasons: if passed { vec![] } else { vec!["pool".into()] },
            services: vec![],
        })
    }

    fn kinds(actions: &[RouteAction]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                RouteAction::AddAddress { .. } => "add",
                RouteAction::Announce { .. } => "announce",
                RouteAction::Withdraw { .. } => "withdraw",
                RouteAction::RemoveAddress { .. } => "remove",
            })
            .collect()
    }

    #[test]
    fn never_announced_before_rise_checks() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        assert!(g.step(t, obs(true), false, Duration::ZERO).is_empty());
        assert_eq!(g.phase(), Phase::Withdrawn);
        let a = g.step(t, obs(true), false, Duration::ZERO);
        assert_eq!(kinds(&a), ["announce", "announce"]);
        assert_eq!(g.phase(), Phase::Announced);
        let RouteAction::Announce { attrs, .. } = &a[0] else {
            panic!()
        };
        assert_eq!(attrs.med, Some(10));
        // Steady state: nothing to do.
        assert!(g.step(t, obs(true), false, Duration::ZERO).is_empty());
        assert_eq!(g.transitions(), 1);
    }

    #[test]
    fn watchdog_withdraws_an_announced_group_that_nobody_checks() {
        let mut g = GroupState::new(cfg("interval = \"100ms\"\n")).unwrap();
        let t = Instant::now();
        // Withdrawn groups have no deadline: they need fresh checks before any announcement.
        assert_eq!(g.watchdog_deadline(), None);
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        assert_eq!(g.phase(), Phase::Announced);
        // 3 x 100 ms is below the floor: the bound is 2 s from the last verdict.
        assert_eq!(g.watchdog_bound(), MIN_WATCHDOG_BOUND);
        assert_eq!(g.watchdog_deadline(), Some(t + MIN_WATCHDOG_BOUND));
        // Steps without an observation (drain deadlines) do not feed the watchdog.
        let later = t + Duration::from_secs(1);
        assert!(g.step(later, None, false, Duration::ZERO).is_empty());
        assert_eq!(g.watchdog_deadline(), Some(t + MIN_WATCHDOG_BOUND));
        let a = g.expire(t + MIN_WATCHDOG_BOUND, "no verdict".into());
        assert_eq!(kinds(&a), ["withdraw", "withdraw"]);
        assert_eq!(g.phase(), Phase::Withdrawn);
        assert_eq!(g.health(), Health::Down);
        assert_eq!(g.watchdog_deadline(), None);
        assert_eq!(g.last_observation().unwrap().reasons, ["no verdict"]);
        // Back through rise (2) once checks answer again.
        let t2 = t + Duration::from_secs(5);
        assert!(g.step(t2, obs(true), false, Duration::ZERO).is_empty());
        assert_eq!(
            kinds(&g.step(t2, obs(true), false, Duration::ZERO)),
            ["announce", "announce"]
        );
    }

    #[test]
    fn watchdog_bound_is_three_intervals_above_the_floor() {
        let g = GroupState::new(cfg("interval = \"5s\"\n")).unwrap();
        assert_eq!(g.watchdog_bound(), Duration::from_secs(15));
    }

    #[test]
    fn after_the_watchdog_the_hold_down_applies() {
        let mut c = cfg("");
        c.hold_down = Duration::from_secs(1);
        let mut g = GroupState::new(c).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        g.expire(t, "stuck".into());
        let soon = t + Duration::from_millis(500);
        assert!(g.step(soon, obs(true), false, Duration::ZERO).is_empty());
        assert!(g.step(soon, obs(true), false, Duration::ZERO).is_empty());
        let later = t + Duration::from_secs(1);
        assert_eq!(
            kinds(&g.step(later, obs(true), false, Duration::ZERO)),
            ["announce", "announce"]
        );
    }

    #[test]
    fn watchdog_withdraws_despite_down_action_announce_until_checks_answer() {
        let mut g = GroupState::new(cfg("down_action = \"announce\"\n")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        assert_eq!(
            kinds(&g.expire(t, "stuck".into())),
            ["withdraw", "withdraw"]
        );
        // No verdict yet: "down" attributes would still claim a checked pool.
        assert!(g.step(t, None, false, Duration::ZERO).is_empty());
        assert_eq!(g.phase(), Phase::Withdrawn);
        // A (failing) verdict: announced with the down attributes, as configured.
        assert_eq!(
            kinds(&g.step(t, obs(false), false, Duration::ZERO)),
            ["announce", "announce"]
        );
        assert_eq!(g.phase(), Phase::AnnouncedDown);
    }

    #[test]
    fn watchdog_during_a_drain_ends_drained() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, None, true, Duration::from_secs(30));
        assert!(matches!(g.phase(), Phase::Draining { .. }));
        assert_eq!(
            kinds(&g.expire(t, "stuck".into())),
            ["withdraw", "withdraw"]
        );
        assert!(g.step(t, None, true, Duration::from_secs(30)).is_empty());
        assert_eq!(g.phase(), Phase::Drained);
    }

    #[test]
    fn managed_address_is_added_first_and_removed_last() {
        let mut g = GroupState::new(cfg("vip_address = \"manage\"\n")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        let a = g.step(t, obs(true), false, Duration::ZERO);
        assert_eq!(kinds(&a), ["add", "announce", "add", "announce"]);
        g.step(t, obs(false), false, Duration::ZERO);
        let a = g.step(t, obs(false), false, Duration::ZERO);
        assert_eq!(kinds(&a), ["withdraw", "withdraw", "remove", "remove"]);
        assert_eq!(g.phase(), Phase::Withdrawn);
    }

    #[test]
    fn drain_announces_draining_attrs_then_withdraws_and_holds() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        let drain = Duration::from_secs(5);
        let a = g.step(t, obs(true), true, drain);
        assert_eq!(kinds(&a), ["announce", "announce"]);
        let RouteAction::Announce { attrs, .. } = &a[0] else {
            panic!()
        };
        assert_eq!(attrs.communities, vec![0xFFFF_0000], "GRACEFUL_SHUTDOWN");
        assert_eq!(g.deadline(), Some(t + drain));
        assert!(g
            .step(t + Duration::from_secs(4), None, true, drain)
            .is_empty());
        let a = g.step(t + drain, None, true, drain);
        assert_eq!(kinds(&a), ["withdraw", "withdraw"]);
        assert_eq!(g.phase(), Phase::Drained);
        // Healthy but drained: stays withdrawn.
        assert!(g.step(t + drain, obs(true), true, drain).is_empty());
        // Undrain: back to announced with up attributes.
        let a = g.step(t + drain, obs(true), false, drain);
        assert_eq!(kinds(&a), ["announce", "announce"]);
        assert_eq!(g.phase(), Phase::Announced);
    }

    /// A drain of any length (from the admin socket or a configuration past its bound) moves
    /// the deadline far out; it never overflows the clock.
    #[test]
    fn a_huge_drain_time_drains_without_overflowing() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        let a = g.step(t, obs(true), true, Duration::MAX);
        assert_eq!(kinds(&a), ["announce", "announce"]);
        let until = g.deadline().expect("draining");
        assert!(until > t + Duration::from_secs(365 * 86_400), "{until:?}");
        assert_eq!(
            instant_after(t, Duration::from_secs(3)),
            t + Duration::from_secs(3)
        );
        assert!(instant_after(t, Duration::MAX) > t);
    }

    #[test]
    fn undrain_during_drain_reannounces_up_attrs() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, None, true, Duration::from_secs(5));
        let a = g.step(t, None, false, Duration::from_secs(5));
        assert_eq!(kinds(&a), ["announce", "announce"]);
        let RouteAction::Announce { attrs, .. } = &a[1] else {
            panic!()
        };
        assert_eq!(attrs.med, Some(10));
    }

    #[test]
    fn drain_with_zero_time_withdraws_at_once_and_drain_of_unhealthy_is_quiet() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        assert!(g.step(t, obs(false), true, Duration::ZERO).is_empty());
        assert_eq!(g.phase(), Phase::Drained);
        let mut g = GroupState::new(cfg("")).unwrap();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        let a = g.step(t, None, true, Duration::ZERO);
        assert_eq!(kinds(&a), ["withdraw", "withdraw"]);
    }

    #[test]
    fn down_action_announce_uses_down_attrs() {
        let mut g =
            GroupState::new(cfg("down_action = \"announce\"\ndown = { med = 1000 }\n")).unwrap();
        let t = Instant::now();
        let a = g.step(t, obs(false), false, Duration::ZERO);
        assert_eq!(g.phase(), Phase::AnnouncedDown);
        let RouteAction::Announce { attrs, .. } = &a[0] else {
            panic!()
        };
        assert_eq!(attrs.med, Some(1000));
        g.step(t, obs(true), false, Duration::ZERO);
        let a = g.step(t, obs(true), false, Duration::ZERO);
        assert_eq!(
            kinds(&a),
            ["announce", "announce"],
            "re-announce with up attrs"
        );
    }

    #[test]
    fn reload_resends_changed_attrs_and_prefix_changes() {
        let mut g = GroupState::new(cfg("")).unwrap();
        let t = Instant::now();
        g.step(t, obs(true), false, Duration::ZERO);
        g.step(t, obs(true), false, Duration::ZERO);
        // Same config: nothing.
        assert!(g.reconfigure(cfg("")).unwrap().is_empty());
        // New MED: re-announce both, no withdraw.
        let mut c = cfg("");
        c.up.med = Some(20);
        let a = g.reconfigure(c.clone()).unwrap();
        assert_eq!(kinds(&a), ["announce", "announce"]);
        // Drop the IPv6 prefix: only it is withdrawn.
        c.prefixes.truncate(1);
        let a = g.reconfigure(c).unwrap();
        assert_eq!(
            a,
            vec![RouteAction::Withdraw {
                prefix: "2001:db8::10/128".parse().unwrap()
            }]
        );
        assert_eq!(g.phase(), Phase::Announced, "health state is kept");
    }
}
