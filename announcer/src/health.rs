//! The VIP health policy: from an IPVS [`Snapshot`] to "announce, drain or withdraw" per VIP group.
//!
//! Pure and I/O-free: the caller reads the kernel, lists the addresses configured locally and
//! passes the current time; this module decides. That keeps every rule (pool thresholds with
//! hysteresis, every/any service, rise and fall counts, hold-down) unit-testable with fabricated
//! snapshots and instants.
//!
//! The decision for one group has two layers:
//!
//! 1. **Check** ([`evaluate`]): one observation of the group's health. It fails when IPVS is
//!    unreadable, a VIP is not configured locally (when required), a selected service is missing,
//!    or the pool of healthy destinations of every (or, with `require = "any"`, of at least one)
//!    service is below its threshold. Each service's pool has its own hysteresis: it goes down
//!    below `down` and comes back only at `up`.
//! 2. **State** ([`GroupTracker`]): `fall` failed checks in a row take an announced group down,
//!    `rise` passed checks in a row bring it up, but never sooner than `hold_down` after it went
//!    down, so a flapping pool does not flap routes.

use herald_shared::model::{Destination, Service, ServiceKey, Snapshot};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// `t + d`, or a point decades ahead when that would overflow: a configured or requested
/// duration, however large, moves a deadline far out instead of panicking the control loop.
pub fn instant_after(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    t.checked_add(d)
        .or_else(|| t.checked_add(FAR.min(d)))
        .unwrap_or(t)
}

/// How a VIP group picks its IPVS services.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSelector {
    /// `tcp`, `udp`, `sctp`, or `fwmark`.
    pub protocol: String,
    /// Virtual address (for `tcp`/`udp`/`sctp`).
    pub address: Option<IpAddr>,
    /// Virtual port (for `tcp`/`udp`/`sctp`); 0 matches a port-0 (all ports) service.
    pub port: Option<u16>,
    /// Firewall mark (for `fwmark`).
    pub mark: Option<u32>,
    /// `inet6` for an IPv6 fwmark service; default `inet`.
    pub family: Option<String>,
}

impl ServiceSelector {
    pub(crate) fn matches(&self, key: &ServiceKey) -> bool {
        match key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => {
                self.protocol.eq_ignore_ascii_case(protocol.as_str())
                    && self.address == Some(*address)
                    && self.port == Some(*port)
            }
            ServiceKey::Fwmark { family, mark } => {
                let want_family = self.family.as_deref().unwrap_or("inet");
                self.protocol.eq_ignore_ascii_case("fwmark")
                    && self.mark == Some(*mark)
                    && want_family.eq_ignore_ascii_case(&family.to_string())
            }
        }
    }

    /// Checks the selector names a service completely; the error says what is missing.
    pub fn validate(&self) -> Result<(), SelectorError> {
        match self.protocol.to_ascii_lowercase().as_str() {
            "tcp" | "udp" | "sctp" => {
                if self.address.is_none() || self.port.is_none() {
                    return Err(SelectorError::NeedsAddressAndPort(self.protocol.clone()));
                }
                if self.mark.is_some() {
                    return Err(SelectorError::MarkWithoutFwmark);
                }
            }
            "fwmark" => {
                if self.mark.is_none() {
                    return Err(SelectorError::NeedsMark);
                }
                if self.address.is_some() || self.port.is_some() {
                    return Err(SelectorError::FwmarkWithAddress);
                }
                match self.family.as_deref() {
                    None | Some("inet") | Some("inet6") => {}
                    Some(other) => return Err(SelectorError::Family(other.to_string())),
                }
            }
            other => return Err(SelectorError::Protocol(other.to_string())),
        }
        Ok(())
    }
}

/// A service selector that does not name a service completely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("service selector for {0} needs both `address` and `port`")]
    NeedsAddressAndPort(String),
    #[error("`mark` only applies to protocol = \"fwmark\"")]
    MarkWithoutFwmark,
    #[error("service selector for fwmark needs `mark`")]
    NeedsMark,
    #[error("a fwmark selector takes `mark` (and `family`), not address/port")]
    FwmarkWithAddress,
    #[error("family must be \"inet\" or \"inet6\", not {0:?}")]
    Family(String),
    #[error("unknown protocol {0:?} (expected tcp, udp, sctp or fwmark)")]
    Protocol(String),
}

/// Pool thresholds that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("pool fractions must be between 0.0 and 1.0")]
    FractionRange,
    #[error("pool up_count ({up}) must not be below down_count ({down})")]
    UpCountBelowDownCount { up: u32, down: u32 },
    #[error("pool up_fraction must not be below down_fraction")]
    UpFractionBelowDownFraction,
}

/// Whether every selected service must have its pool, or any one is enough.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// A VIP on :80 and :443 is down if :443 has no pool (default).
    #[default]
    Every,
    /// One service with its pool keeps the VIP up.
    Any,
}

/// Pool thresholds with hysteresis. A service's pool goes down when its healthy destinations fall
/// below `down_count` (or `down_fraction` of its destinations) and comes back up only when they
/// reach `up_count` (and `up_fraction`). `up_*` default to the matching `down_*`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolThreshold {
    /// Fewest healthy destinations a service may have and stay up. Default 1.
    pub down_count: u32,
    /// Healthy destinations needed to come back up. Default: `down_count`.
    pub up_count: Option<u32>,
    /// Smallest share (0.0–1.0) of a service's destinations that must be healthy. Default 0.
    pub down_fraction: f64,
    /// Share needed to come back up. Default: `down_fraction`.
    pub up_fraction: Option<f64>,
}

impl Default for PoolThreshold {
    fn default() -> Self {
        PoolThreshold {
            down_count: 1,
            up_count: None,
            down_fraction: 0.0,
            up_fraction: None,
        }
    }
}

impl PoolThreshold {
    /// Healthy destinations needed to come back up (`up_count`, else `down_count`).
    pub fn up_count(&self) -> u32 {
        self.up_count.unwrap_or(self.down_count)
    }

    fn up_fraction(&self) -> f64 {
        self.up_fraction.unwrap_or(self.down_fraction)
    }

    /// Checks the levels are consistent; the error says which.
    pub fn validate(&self) -> Result<(), PoolError> {
        let in_unit = |f: f64| (0.0..=1.0).contains(&f);
        if !in_unit(self.down_fraction) || !in_unit(self.up_fraction()) {
            return Err(PoolError::FractionRange);
        }
        if self.up_count() < self.down_count {
            return Err(PoolError::UpCountBelowDownCount {
                up: self.up_count(),
                down: self.down_count,
            });
        }
        if self.up_fraction() < self.down_fraction {
            return Err(PoolError::UpFractionBelowDownFraction);
        }
        Ok(())
    }

    /// The pool's next state given its previous one (hysteresis).
    fn next(&self, was_up: bool, healthy: u32, total: u32) -> bool {
        let share = if total == 0 {
            0.0
        } else {
            f64::from(healthy) / f64::from(total)
        };
        if was_up {
            healthy >= self.down_count && share >= self.down_fraction && healthy > 0
        } else {
            healthy >= self.up_count() && share >= self.up_fraction() && healthy > 0
        }
    }
}

/// Which destinations count as healthy.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DestinationRule {
    /// A destination over its upper connection threshold (`-x`) is not healthy. Default false.
    pub respect_upper_threshold: bool,
}

impl DestinationRule {
    /// Weight above 0 (keepalived and operators drain with weight 0), and optionally not over its
    /// upper threshold (the kernel stops scheduling to it at active + inactive >= threshold).
    pub fn is_healthy(&self, d: &Destination) -> bool {
        if d.weight <= 0 {
            return false;
        }
        if self.respect_upper_threshold && d.upper_threshold > 0 {
            let total = u64::from(d.active_conns) + u64::from(d.inactive_conns);
            if total >= u64::from(d.upper_threshold) {
                return false;
            }
        }
        true
    }
}

/// Everything [`evaluate`] needs to know about one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPolicy {
    pub name: String,
    /// The VIP addresses (the prefixes' addresses as announced).
    pub vips: Vec<IpAddr>,
    /// Explicit services; empty = every service whose virtual address is one of `vips`.
    pub services: Vec<ServiceSelector>,
    pub require: Require,
    pub pool: PoolThreshold,
    pub destinations: DestinationRule,
    /// The VIPs must be configured on a local interface for the group to pass.
    pub require_local_vip: bool,
}

/// One service's share of an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    pub key: ServiceKey,
    pub healthy: u32,
    pub total: u32,
    /// Pool state after hysteresis.
    pub pool_up: bool,
}

/// One check of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub passed: bool,
    /// Why it failed (empty when it passed): stable, human-readable, fit for a log line.
    pub reasons: Vec<String>,
    pub services: Vec<ServiceHealth>,
}

/// One read of IPVS and of the local addresses, indexed once for every group checked against
/// it: services by virtual address, addresses in a set. Checking N groups against N services
/// then costs N lookups, not N scans of every service and every address (at 1,000 VIPs the
/// scans were most of a tick's user-space time; `announcer/bench/tick.rs`).
#[derive(Debug)]
pub struct CheckInput<'a> {
    snapshot: Result<&'a Snapshot, &'a str>,
    /// Indices into `snapshot.services` of the address-keyed services, by virtual address, in
    /// snapshot order.
    by_addr: HashMap<IpAddr, Vec<usize>>,
    /// Indices of the fwmark services, in snapshot order.
    fwmarks: Vec<usize>,
    local: HashSet<IpAddr>,
}

impl<'a> CheckInput<'a> {
    /// Index `snapshot` (`Err` when IPVS could not be read) and `local` (the addresses
    /// configured on this host).
    pub fn new(snapshot: Result<&'a Snapshot, &'a str>, local: &[IpAddr]) -> Self {
        let mut by_addr: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        let mut fwmarks = Vec::new();
        if let Ok(snap) = snapshot {
            for (i, s) in snap.services.iter().enumerate() {
                match s.key {
                    ServiceKey::Addr { address, .. } => by_addr.entry(address).or_default().push(i),
                    ServiceKey::Fwmark { .. } => fwmarks.push(i),
                }
            }
        }
        CheckInput {
            snapshot,
            by_addr,
            fwmarks,
            local: local.iter().copied().collect(),
        }
    }

    fn with_address(&self, address: &IpAddr) -> &[usize] {
        self.by_addr.get(address).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Check one group against a snapshot. `snapshot` is `Err` when IPVS could not be read (its
/// message goes into the reasons); `local` lists the addresses configured on this host;
/// `pools_up` carries each service's pool state from the previous check (for hysteresis) and is
/// updated in place. To check many groups against one read, build a [`CheckInput`] once and
/// call [`evaluate_with`].
pub fn evaluate(
    policy: &GroupPolicy,
    snapshot: Result<&Snapshot, &str>,
    local: &[IpAddr],
    pools_up: &mut BTreeMap<ServiceKey, bool>,
) -> Observation {
    evaluate_with(policy, &CheckInput::new(snapshot, local), pools_up)
}

/// [`evaluate`] against an indexed read: the same verdict, reasons and service order.
pub fn evaluate_with(
    policy: &GroupPolicy,
    input: &CheckInput<'_>,
    pools_up: &mut BTreeMap<ServiceKey, bool>,
) -> Observation {
    let snapshot = match input.snapshot {
        Ok(s) => s,
        Err(e) => {
            return Observation {
                passed: false,
                reasons: vec![format!("IPVS unreadable: {e}")],
                services: Vec::new(),
            }
        }
    };
    let mut reasons = Vec::new();
    if policy.require_local_vip {
        for vip in &policy.vips {
            if !input.local.contains(vip) {
                reasons.push(format!("VIP {vip} is not configured on a local interface"));
            }
        }
    }

    let selected: Vec<&Service> = if policy.services.is_empty() {
        // Every service on one of the VIPs, each once, in snapshot order.
        let mut idx: Vec<usize> = policy
            .vips
            .iter()
            .flat_map(|v| input.with_address(v).iter().copied())
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.iter()
            .filter_map(|&i| snapshot.services.get(i))
            .collect()
    } else {
        let mut found = Vec::new();
        for sel in &policy.services {
            // The first matching service in snapshot order: an address-keyed service matches
            // only with its own address, a fwmark service with any.
            let candidates = sel
                .address
                .as_ref()
                .map(|a| input.with_address(a))
                .unwrap_or(&[]);
            let first = candidates
                .iter()
                .chain(input.fwmarks.iter())
                .copied()
                .filter(|&i| {
                    snapshot
                        .services
                        .get(i)
                        .is_some_and(|s| sel.matches(&s.key))
                })
                .min()
                .and_then(|i| snapshot.services.get(i));
            match first {
                Some(s) => found.push(s),
                None => reasons.push(format!("IPVS service {} does not exist", describe(sel))),
            }
        }
        found
    };
    if selected.is_empty() && policy.services.is_empty() {
        reasons.push("no IPVS service on the group's VIPs".to_string());
    }

    let mut services = Vec::with_capacity(selected.len());
    for s in &selected {
        let total = u32::try_from(s.destinations.len()).unwrap_or(u32::MAX);
        let healthy = u32::try_from(
            s.destinations
                .iter()
                .filter(|d| policy.destinations.is_healthy(d))
                .count(),
        )
        .unwrap_or(u32::MAX);
        let was_up = pools_up.get(&s.key).copied().unwrap_or(false);
        let pool_up = policy.pool.next(was_up, healthy, total);
        pools_up.insert(s.key, pool_up);
        services.push(ServiceHealth {
            key: s.key,
            healthy,
            total,
            pool_up,
        });
    }
    // Forget services that disappeared, so they start "down" if they come back.
    pools_up.retain(|k, _| selected.iter().any(|s| s.key == *k));

    let pools_ok = match policy.require {
        Require::Every => services.iter().all(|s| s.pool_up),
        Require::Any => services.iter().any(|s| s.pool_up),
    };
    if !pools_ok {
        for s in services.iter().filter(|s| !s.pool_up) {
            reasons.push(format!(
                "{}: {} of {} destinations healthy, below the pool threshold",
                s.key, s.healthy, s.total
            ));
        }
    }
    Observation {
        passed: reasons.is_empty() && !services.is_empty(),
        reasons,
        services,
    }
}

/// A selector as [`ServiceKey`]'s `Display` writes the service it selects.
pub(crate) fn describe(sel: &ServiceSelector) -> String {
    match (sel.address, sel.port, sel.mark) {
        (Some(IpAddr::V6(a)), Some(p), _) => format!("{} [{a}]:{p}", sel.protocol.to_uppercase()),
        (Some(a), Some(p), _) => format!("{} {a}:{p}", sel.protocol.to_uppercase()),
        (_, _, Some(m)) => format!("FWM {m}"),
        _ => sel.protocol.clone(),
    }
}

/// Health state of a group, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    /// Not (yet) healthy: withdrawn (or announced with "down" attributes).
    Down,
    /// Healthy: announced with "up" attributes.
    Up,
}

/// Rise/fall/hold-down settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damping {
    /// Passed checks in a row to go up. At least 1.
    pub rise: u32,
    /// Failed checks in a row to go down. At least 1.
    pub fall: u32,
    /// Least time between going down and coming back up.
    pub hold_down: Duration,
}

/// A state change for the caller to act on (announce or withdraw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Health,
    pub to: Health,
    pub reasons: Vec<String>,
}

/// Rise/fall counting and hold-down for one group. Starts [`Health::Down`]: a VIP is never
/// announced before `rise` checks have seen its services and destinations.
#[derive(Debug, Clone)]
pub struct GroupTracker {
    damping: Damping,
    state: Health,
    passes: u32,
    fails: u32,
    down_since: Option<Instant>,
    /// Pool hysteresis state per service, fed back into [`evaluate`].
    pub pools_up: BTreeMap<ServiceKey, bool>,
    /// Set by [`GroupTracker::resume`]: the next observation alone decides.
    first_decides: bool,
}

impl GroupTracker {
    pub fn new(damping: Damping) -> Self {
        GroupTracker {
            damping: Damping {
                rise: damping.rise.max(1),
                fall: damping.fall.max(1),
                hold_down: damping.hold_down,
            },
            state: Health::Down,
            passes: 0,
            fails: 0,
            down_since: None,
            pools_up: BTreeMap::new(),
            first_decides: false,
        }
    }

    /// After a graceful restart, for a group that was up when the previous process stopped
    /// (its route is still at the routers, as stale): the next observation alone decides, in
    /// both directions. A pass makes the group up at once, as if `rise` had been met (it was,
    /// before the restart); a failure makes it down at once, with the hold-down starting then,
    /// as if `fall` had been met (the router drops the stale route at our End-of-RIB, so there
    /// is no announced route to keep through `fall`). Until that observation the group is down.
    pub fn resume(&mut self) {
        self.first_decides = true;
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// Change the damping (on reload) without losing the state.
    pub fn set_damping(&mut self, damping: Damping) {
        self.damping = Damping {
            rise: damping.rise.max(1),
            fall: damping.fall.max(1),
            hold_down: damping.hold_down,
        };
    }

    /// Feed one observation made at `now`; returns the transition it causes, if any.
    pub fn observe(&mut self, now: Instant, obs: &Observation) -> Option<Transition> {
        if std::mem::take(&mut self.first_decides) {
            let from = self.state;
            if obs.passed {
                (self.passes, self.fails) = (self.damping.rise, 0);
                self.state = Health::Up;
                self.down_since = None;
            } else {
                (self.passes, self.fails) = (0, self.damping.fall);
                self.state = Health::Down;
                self.down_since = Some(now);
            }
            return (from != self.state).then(|| Transition {
                from,
                to: self.state,
                reasons: obs.reasons.clone(),
            });
        }
        if obs.passed {
            self.fails = 0;
            self.passes = self.passes.saturating_add(1);
        } else {
            self.passes = 0;
            self.fails = self.fails.saturating_add(1);
        }
        match self.state {
            Health::Up if self.fails >= self.damping.fall => {
                self.state = Health::Down;
                self.down_since = Some(now);
                Some(Transition {
                    from: Health::Up,
                    to: Health::Down,
                    reasons: obs.reasons.clone(),
                })
            }
            Health::Down if self.passes >= self.damping.rise => {
                let held = self
                    .down_since
                    .map(|t| now.saturating_duration_since(t) >= self.damping.hold_down)
                    .unwrap_or(true);
                if !held {
                    return None;
                }
                self.state = Health::Up;
                self.down_since = None;
                Some(Transition {
                    from: Health::Down,
                    to: Health::Up,
                    reasons: Vec::new(),
                })
            }
            _ => None,
        }
    }

    /// Declare the group down now, whatever the counts say: nothing has checked it within the
    /// watchdog bound (a hung IPVS read, a blocked file), so its last verdict is worth nothing.
    /// It must then pass `rise` checks again, after the hold-down, like any other fall.
    pub fn force_down(&mut self, now: Instant) {
        self.passes = 0;
        self.fails = self.damping.fall;
        if self.state == Health::Up {
            self.state = Health::Down;
            self.down_since = Some(now);
        }
    }

    /// When the hold-down ends (if the group is held down), so a caller can report it.
    pub fn hold_down_until(&self) -> Option<Instant> {
        self.down_since
            .map(|t| instant_after(t, self.damping.hold_down))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::model::*;

    fn dest(addr: &str, weight: i32) -> Destination {
        Destination {
            weight,
            ..Destination::new(addr.parse().unwrap(), 80)
        }
    }

    fn svc(vip: &str, port: u16, dests: Vec<Destination>) -> Service {
        Service {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: vip.parse().unwrap(),
                port,
            },
            scheduler: "wrr".into(),
            flags: ServiceFlags::from_raw(2),
            persistence_timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
            stats: Stats::default(),
            destinations: dests,
        }
    }

    fn policy() -> GroupPolicy {
        GroupPolicy {
            name: "web".into(),
            vips: vec!["192.0.2.10".parse().unwrap()],
            services: vec![],
            require: Require::Every,
            pool: PoolThreshold {
                down_count: 2,
                up_count: Some(3),
                ..PoolThreshold::default()
            },
            destinations: DestinationRule::default(),
            require_local_vip: false,
        }
    }

    fn snap(services: Vec<Service>) -> Snapshot {
        Snapshot {
            services,
            ..Snapshot::default()
        }
    }

    fn three(w: [i32; 3]) -> Vec<Destination> {
        vec![
            dest("198.51.100.1", w[0]),
            dest("198.51.100.2", w[1]),
            dest("198.51.100.3", w[2]),
        ]
    }

    #[test]
    fn pool_hysteresis_needs_up_level_to_return() {
        let p = policy();
        let mut pools = BTreeMap::new();
        let local = [];
        // Starts down; 2 healthy is not enough to come up (up_count 3).
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 0]))]);
        assert!(!evaluate(&p, Ok(&s), &local, &mut pools).passed);
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 1]))]);
        assert!(evaluate(&p, Ok(&s), &local, &mut pools).passed);
        // Once up, 2 healthy keeps it up (down_count 2) …
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 0, 1]))]);
        assert!(evaluate(&p, Ok(&s), &local, &mut pools).passed);
        // … and 1 takes it down, naming the service and the counts.
        let s = snap(vec![svc("192.0.2.10", 80, three([0, 0, 1]))]);
        let o = evaluate(&p, Ok(&s), &local, &mut pools);
        assert!(!o.passed);
        assert_eq!(
            o.reasons,
            vec!["TCP 192.0.2.10:80: 1 of 3 destinations healthy, below the pool threshold"]
        );
    }

    #[test]
    fn every_versus_any() {
        let mut p = policy();
        p.pool = PoolThreshold::default();
        let s = snap(vec![
            svc("192.0.2.10", 80, three([1, 1, 1])),
            svc("192.0.2.10", 443, three([0, 0, 0])),
        ]);
        let mut pools = BTreeMap::new();
        let o = evaluate(&p, Ok(&s), &[], &mut pools);
        assert!(!o.passed, ":443 without a pool takes the VIP down");
        assert_eq!(o.services.len(), 2);
        p.require = Require::Any;
        let mut pools = BTreeMap::new();
        assert!(evaluate(&p, Ok(&s), &[], &mut pools).passed);
    }

    #[test]
    fn fraction_threshold() {
        let mut p = policy();
        p.pool = PoolThreshold {
            down_count: 1,
            up_count: None,
            down_fraction: 0.5,
            up_fraction: Some(0.9),
        };
        let mut pools = BTreeMap::new();
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 0]))]);
        assert!(!evaluate(&p, Ok(&s), &[], &mut pools).passed, "2/3 < 0.9");
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 1]))]);
        assert!(evaluate(&p, Ok(&s), &[], &mut pools).passed);
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 0]))]);
        assert!(evaluate(&p, Ok(&s), &[], &mut pools).passed, "2/3 >= 0.5");
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 0, 0]))]);
        assert!(!evaluate(&p, Ok(&s), &[], &mut pools).passed, "1/3 < 0.5");
    }

    #[test]
    fn upper_threshold_rule() {
        let mut d = dest("198.51.100.1", 1);
        d.upper_threshold = 10;
        d.active_conns = 7;
        d.inactive_conns = 3;
        assert!(DestinationRule::default().is_healthy(&d));
        let r = DestinationRule {
            respect_upper_threshold: true,
        };
        assert!(!r.is_healthy(&d));
        d.inactive_conns = 2;
        assert!(r.is_healthy(&d));
        assert!(!r.is_healthy(&dest("198.51.100.1", 0)));
        assert!(!r.is_healthy(&dest("198.51.100.1", -1)));
    }

    #[test]
    fn missing_services_unreadable_ipvs_and_local_vip() {
        let mut p = policy();
        let mut pools = BTreeMap::new();
        let o = evaluate(&p, Ok(&snap(vec![])), &[], &mut pools);
        assert_eq!(o.reasons, vec!["no IPVS service on the group's VIPs"]);
        let o = evaluate(&p, Err("module not loaded"), &[], &mut pools);
        assert_eq!(o.reasons, vec!["IPVS unreadable: module not loaded"]);

        p.services = vec![ServiceSelector {
            protocol: "fwmark".into(),
            address: None,
            port: None,
            mark: Some(7),
            family: None,
        }];
        p.pool = PoolThreshold::default();
        p.require_local_vip = true;
        let s = snap(vec![svc("192.0.2.10", 80, three([1, 1, 1]))]);
        let o = evaluate(&p, Ok(&s), &[], &mut pools);
        assert_eq!(
            o.reasons,
            vec![
                "VIP 192.0.2.10 is not configured on a local interface",
                "IPVS service FWM 7 does not exist"
            ]
        );
        let mut fw = svc("192.0.2.10", 80, three([1, 1, 1]));
        fw.key = ServiceKey::Fwmark {
            family: AddressFamily::Inet,
            mark: 7,
        };
        let o = evaluate(
            &p,
            Ok(&snap(vec![fw])),
            &["192.0.2.10".parse().unwrap()],
            &mut pools,
        );
        assert!(o.passed, "{:?}", o.reasons);
    }

    #[test]
    fn selector_validation() {
        let ok = ServiceSelector {
            protocol: "tcp".into(),
            address: Some("192.0.2.1".parse().unwrap()),
            port: Some(443),
            mark: None,
            family: None,
        };
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.port = None;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs both"));
        bad.protocol = "icmp".into();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("unknown protocol"));
        let p = PoolThreshold {
            down_count: 3,
            up_count: Some(2),
            ..PoolThreshold::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("up_count"));
    }

    fn obs(passed: bool) -> Observation {
        Observation {
            passed,
            reasons: if passed { vec![] } else { vec!["x".into()] },
            services: vec![],
        }
    }

    #[test]
    fn rise_fall_and_hold_down() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(100 * n);
        let mut t = GroupTracker::new(Damping {
            rise: 2,
            fall: 3,
            hold_down: Duration::from_secs(1),
        });
        assert_eq!(t.state(), Health::Down);
        assert_eq!(t.observe(s(0), &obs(true)), None);
        let up = t.observe(s(1), &obs(true)).unwrap();
        assert_eq!((up.from, up.to), (Health::Down, Health::Up));
        // Two failures then a pass resets the fall count.
        assert_eq!(t.observe(s(2), &obs(false)), None);
        assert_eq!(t.observe(s(3), &obs(false)), None);
        assert_eq!(t.observe(s(4), &obs(true)), None);
        assert_eq!(t.observe(s(5), &obs(false)), None);
        assert_eq!(t.observe(s(6), &obs(false)), None);
        let down = t.observe(s(7), &obs(false)).unwrap();
        assert_eq!(down.to, Health::Down);
        assert_eq!(down.reasons, vec!["x"]);
        assert_eq!(t.hold_down_until(), Some(s(7) + Duration::from_secs(1)));
        // Rise is met at s(9) but hold-down lasts until s(17).
        assert_eq!(t.observe(s(8), &obs(true)), None);
        assert_eq!(t.observe(s(9), &obs(true)), None);
        assert_eq!(t.observe(s(16), &obs(true)), None);
        assert_eq!(t.observe(s(17), &obs(true)).unwrap().to, Health::Up);
        assert_eq!(t.hold_down_until(), None);
    }

    /// After a graceful restart the first observation alone decides: a pass is up at once
    /// (no `rise` from zero, no hold-down), a failure is down at once with the hold-down
    /// starting then; afterwards rise/fall count as usual.
    #[test]
    fn after_a_graceful_restart_the_first_check_decides() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(100 * n);
        let damping = Damping {
            rise: 3,
            fall: 3,
            hold_down: Duration::from_secs(1),
        };
        let mut t = GroupTracker::new(damping);
        t.resume();
        assert_eq!(t.state(), Health::Down, "down until the first check");
        let up = t.observe(s(0), &obs(true)).unwrap();
        assert_eq!((up.from, up.to), (Health::Down, Health::Up));
        // From then on, fall counts as usual.
        assert_eq!(t.observe(s(1), &obs(false)), None);
        assert_eq!(t.observe(s(2), &obs(false)), None);
        assert_eq!(t.observe(s(3), &obs(false)).unwrap().to, Health::Down);

        let mut t = GroupTracker::new(damping);
        t.resume();
        assert_eq!(t.observe(s(0), &obs(false)), None, "was down, stays down");
        assert_eq!(t.state(), Health::Down);
        assert_eq!(t.hold_down_until(), Some(s(0) + Duration::from_secs(1)));
        // Back only through rise and the hold-down.
        assert_eq!(t.observe(s(1), &obs(true)), None);
        assert_eq!(t.observe(s(2), &obs(true)), None);
        assert_eq!(t.observe(s(3), &obs(true)), None);
        assert_eq!(t.observe(s(10), &obs(true)).unwrap().to, Health::Up);

        // Without resume, one pass is not enough.
        let mut t = GroupTracker::new(damping);
        assert_eq!(t.observe(s(0), &obs(true)), None);
    }

    #[test]
    fn zero_rise_fall_are_treated_as_one() {
        let mut t = GroupTracker::new(Damping {
            rise: 0,
            fall: 0,
            hold_down: Duration::ZERO,
        });
        let now = Instant::now();
        assert!(t.observe(now, &obs(true)).is_some());
        assert!(t.observe(now, &obs(false)).is_some());
    }

    /// The selection rules before the index: a scan of every service per group. The indexed
    /// [`evaluate_with`] must pick the same services, in the same order, with the same reasons.
    fn scan_selection(policy: &GroupPolicy, snapshot: &Snapshot) -> Vec<ServiceKey> {
        if policy.services.is_empty() {
            snapshot
                .services
                .iter()
                .filter(|s| matches!(s.key, ServiceKey::Addr { address, .. } if policy.vips.contains(&address)))
                .map(|s| s.key)
                .collect()
        } else {
            policy
                .services
                .iter()
                .filter_map(|sel| snapshot.services.iter().find(|s| sel.matches(&s.key)))
                .map(|s| s.key)
                .collect()
        }
    }

    #[test]
    fn indexed_selection_is_the_scan_selection() {
        let fwm = |family, mark| {
            let mut s = svc("192.0.2.1", 1, three([1, 1, 1]));
            s.key = ServiceKey::Fwmark { family, mark };
            s
        };
        let mut udp = svc("192.0.2.10", 53, three([1, 1, 1]));
        udp.key = ServiceKey::Addr {
            protocol: Protocol::Udp,
            address: "192.0.2.10".parse().unwrap(),
            port: 53,
        };
        let s = snap(vec![
            svc("192.0.2.11", 80, three([1, 1, 1])),
            fwm(AddressFamily::Inet6, 7),
            svc("192.0.2.10", 443, three([0, 0, 1])),
            udp,
            svc("2001:db8::10", 80, three([1, 1, 1])),
            fwm(AddressFamily::Inet, 7),
            svc("192.0.2.10", 80, three([1, 1, 1])),
        ]);
        let sel = |protocol: &str, address: Option<&str>, port, mark, family: Option<&str>| {
            ServiceSelector {
                protocol: protocol.into(),
                address: address.map(|a| a.parse().unwrap()),
                port,
                mark,
                family: family.map(str::to_string),
            }
        };
        let mut policies = Vec::new();
        for vips in [
            vec!["192.0.2.10"],
            vec!["192.0.2.10", "192.0.2.10"],
            vec!["2001:db8::10", "192.0.2.11", "192.0.2.10"],
            vec!["198.51.100.1"],
        ] {
            let mut p = policy();
            p.vips = vips.iter().map(|v| v.parse().unwrap()).collect();
            p.pool = PoolThreshold::default();
            policies.push(p);
        }
        let mut p = policy();
        p.pool = PoolThreshold::default();
        p.services = vec![
            sel("tcp", Some("192.0.2.10"), Some(443), None, None),
            sel("fwmark", None, None, Some(7), Some("inet6")),
            sel("FWMARK", None, None, Some(7), None),
            // Not valid configuration, but evaluate must not care: a fwmark service matches
            // whatever the address says.
            sel("fwmark", Some("203.0.113.1"), None, Some(7), None),
            sel("udp", Some("192.0.2.10"), Some(53), None, None),
            sel("tcp", Some("192.0.2.99"), Some(80), None, None),
            sel("fwmark", None, None, Some(8), None),
        ];
        policies.push(p);
        let local: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap()];
        let input = CheckInput::new(Ok(&s), &local);
        for p in &policies {
            let mut pools = BTreeMap::new();
            let indexed = evaluate_with(p, &input, &mut pools);
            let keys: Vec<ServiceKey> = indexed.services.iter().map(|h| h.key).collect();
            assert_eq!(keys, scan_selection(p, &s), "{:?}", p.vips);
            let mut pools2 = BTreeMap::new();
            assert_eq!(indexed, evaluate(p, Ok(&s), &local, &mut pools2));
        }
        // The explicit selectors: two missing services are named, in selector order.
        let mut pools = BTreeMap::new();
        let o = evaluate_with(&policies[4], &input, &mut pools);
        assert_eq!(
            o.reasons,
            [
                "IPVS service TCP 192.0.2.99:80 does not exist",
                "IPVS service FWM 8 does not exist"
            ]
        );
        assert!(!o.passed);
    }
}
