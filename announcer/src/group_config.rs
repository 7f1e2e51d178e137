//! VIP groups as configured (`[[announcer.vip_groups]]`) and their translation into the pure
//! health policy of [`crate::health`].
//!
//! A VIP group is what is announced or withdrawn as one: a name, its prefixes (IPv4 and IPv6), the
//! IPVS services that make it up, the health rules and the route attributes per state. This
//! module only parses and validates; it does no I/O.

use crate::bgp::ext_community::{ExtCommunityError, ExtendedCommunity};
use crate::health::{
    Damping, DestinationRule, GroupPolicy, PoolThreshold, Require, ServiceSelector,
};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// One `[[announcer.vip_groups]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VipGroupConfig {
    /// Unique name, used in logs, metrics and `ipvs-herald drain NAME`. Required.
    pub name: String,
    /// Prefixes announced for this group (usually /32 and /128 VIPs). Required, at least one.
    pub prefixes: Vec<IpNet>,
    /// IPVS services that make up the group. Default: every service whose virtual address is one
    /// of the prefixes' addresses.
    #[serde(default)]
    pub services: Vec<ServiceSelector>,
    /// `every` (default): every service must have its pool; `any`: one is enough.
    #[serde(default)]
    pub require: Require,
    /// Pool thresholds with hysteresis. Default: at least 1 healthy destination.
    #[serde(default)]
    pub pool: PoolThreshold,
    /// Which destinations count as healthy. Default: weight > 0.
    #[serde(default)]
    pub destinations: DestinationRule,
    /// Time between checks. Default `1s`; at least `100ms`, at most [`MAX_INTERVAL`].
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Passed checks in a row before announcing. Default 3; at least 1.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failed checks in a row before withdrawing. Default 2; at least 1.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Least time between a withdrawal and the next announcement. Default `10s`; at most
    /// [`MAX_HOLD_DOWN`].
    #[serde(default = "default_hold_down", with = "humantime_serde")]
    pub hold_down: Duration,
    /// How the VIP address itself is handled: `require` (default: it must be configured on a local
    /// interface, by keepalived or the operator), `ignore`, or `manage` (ipvs-herald adds it to
    /// `manage_interface` before announcing and removes it after withdrawing).
    #[serde(default)]
    pub vip_address: VipAddressMode,
    /// Interface for `vip_address = "manage"`. Default `herald0` (a dummy interface, created if
    /// missing).
    #[serde(default = "default_manage_interface")]
    pub manage_interface: String,
    /// With `vip_address = "manage"`: how long the address stays after the withdrawal before it
    /// is removed, so that packets the routers still send while they process the withdrawal are
    /// answered, not dropped. An announcement within that time keeps the address. Default `1s`;
    /// `0s` removes it as soon as the withdrawal is queued; at most [`MAX_ADDRESS_LINGER`].
    #[serde(default = "default_address_linger", with = "humantime_serde")]
    pub address_linger: Duration,
    /// Route attributes while healthy.
    #[serde(default)]
    pub up: StateAttrs,
    /// Route attributes while draining (before the withdrawal). Default: the GRACEFUL_SHUTDOWN
    /// community (65535:0, RFC 8326).
    #[serde(default = "default_draining")]
    pub draining: StateAttrs,
    /// What to do while unhealthy: `withdraw` (default) or `announce` with the `down` attributes.
    #[serde(default)]
    pub down_action: DownAction,
    /// Route attributes while unhealthy, with `down_action = "announce"`.
    #[serde(default)]
    pub down: StateAttrs,
}

/// The longest `interval`: a group checked less often than hourly is not health-checked.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// The longest `hold_down`.
pub const MAX_HOLD_DOWN: Duration = Duration::from_secs(3600);
/// The longest `address_linger`: routers act on a withdrawal within seconds.
pub const MAX_ADDRESS_LINGER: Duration = Duration::from_secs(600);

/// A duration past its bound; `key` is named as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is {}; it must be at most {}", humantime(*.value), humantime(*.max))]
pub struct TooLong {
    pub key: &'static str,
    pub value: Duration,
    pub max: Duration,
}

fn humantime(d: Duration) -> humantime_serde::re::humantime::FormattedDuration {
    humantime_serde::re::humantime::format_duration(d)
}

/// Refuse a duration past its bound.
pub(crate) fn at_most(key: &'static str, value: Duration, max: Duration) -> Result<(), TooLong> {
    if value > max {
        return Err(TooLong { key, value, max });
    }
    Ok(())
}

/// A community that does not parse; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    #[error("community {0:?} is not ASN:VALUE or a well-known name")]
    NotAsnValue(String),
    #[error("community {community:?}: {part:?} is not a 16-bit number")]
    Not16Bit { community: String, part: String },
    #[error("large community {0:?} is not GLOBAL:LOCAL1:LOCAL2")]
    NotLarge(String),
    #[error("large community {community:?}: {part:?} is not a 32-bit number")]
    Not32Bit { community: String, part: String },
    #[error(transparent)]
    Extended(#[from] ExtCommunityError),
}

/// What is wrong inside one VIP group.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupProblem {
    #[error("`prefixes` must list at least one prefix")]
    NoPrefixes,
    #[error("`interval` is {0:?}; the shortest is 100ms")]
    IntervalTooShort(Duration),
    #[error(transparent)]
    TooLong(#[from] TooLong),
    #[error("`rise` must be at least 1")]
    ZeroRise,
    #[error("`fall` must be at least 1")]
    ZeroFall,
    #[error(transparent)]
    Service(#[from] crate::health::SelectorError),
    #[error(transparent)]
    Pool(#[from] crate::health::PoolError),
    /// The attributes of the `[up]`, `[draining]` or `[down]` table.
    #[error("[{state}] {error}")]
    Attrs {
        state: &'static str,
        error: CommunityError,
    },
}

/// Why a list of VIP groups is refused; the message names the group and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupConfigError {
    #[error("vip group: `name` must not be empty")]
    EmptyName,
    #[error("vip group {group:?}: {problem}")]
    Group {
        group: String,
        problem: GroupProblem,
    },
    #[error("vip group name {0:?} is used twice")]
    DuplicateName(String),
    #[error("vip group {group:?}: prefix {prefix} is listed twice (as {written} and {prefix}, route {route})")]
    PrefixTwice {
        group: String,
        prefix: IpNet,
        written: IpNet,
        route: IpNet,
    },
    #[error("prefix {route} is in two vip groups: {first:?} (as {first_prefix}) and {second:?} (as {second_prefix}); a route belongs to one group only")]
    RouteInTwoGroups {
        route: IpNet,
        first: String,
        first_prefix: IpNet,
        second: String,
        second_prefix: IpNet,
    },
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> u32 {
    3
}
fn default_fall() -> u32 {
    2
}
fn default_hold_down() -> Duration {
    Duration::from_secs(10)
}
fn default_address_linger() -> Duration {
    Duration::from_secs(1)
}
fn default_manage_interface() -> String {
    "herald0".to_string()
}
fn default_draining() -> StateAttrs {
    StateAttrs {
        communities: vec!["graceful-shutdown".to_string()],
        ..StateAttrs::default()
    }
}

/// How the VIP address is handled.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VipAddressMode {
    #[default]
    Require,
    Ignore,
    Manage,
}

/// What an unhealthy group does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DownAction {
    #[default]
    Withdraw,
    Announce,
}

/// Route attributes for one state, as written in the config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StateAttrs {
    /// MULTI_EXIT_DISC. Default: none.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP only). Default: none (the speaker sends 100 on iBGP).
    pub local_pref: Option<u32>,
    /// Standard communities: `ASN:VALUE` or a well-known name (`graceful-shutdown`,
    /// `no-export`, `no-advertise`, `no-export-subconfed`, `blackhole`). Default: none.
    pub communities: Vec<String>,
    /// Large communities `GLOBAL:LOCAL1:LOCAL2`. Default: none.
    pub large_communities: Vec<String>,
    /// Extended communities (RFC 4360) `KIND:ADMINISTRATOR:VALUE`: `rt` (route target) or `ro`
    /// (route origin), then an AS number or an IPv4 address, then the value; the syntax and the
    /// three forms are in [`crate::bgp::ext_community`]. Default: none.
    pub extended_communities: Vec<String>,
    /// How many times to prepend the local AS. Default 0.
    pub as_path_prepend: u8,
}

/// [`StateAttrs`] with the communities parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedAttrs {
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
    pub extended_communities: Vec<ExtendedCommunity>,
    pub as_path_prepend: u8,
}

impl StateAttrs {
    /// Parse the communities; the error names the bad one.
    pub fn parse(&self) -> Result<ParsedAttrs, CommunityError> {
        let communities = self
            .communities
            .iter()
            .map(|c| parse_community(c))
            .collect::<Result<Vec<_>, _>>()?;
        let large_communities = self
            .large_communities
            .iter()
            .map(|c| parse_large_community(c))
            .collect::<Result<Vec<_>, _>>()?;
        let extended_communities = self
            .extended_communities
            .iter()
            .map(|c| c.parse::<ExtendedCommunity>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParsedAttrs {
            med: self.med,
            local_pref: self.local_pref,
            communities,
            large_communities,
            extended_communities,
            as_path_prepend: self.as_path_prepend,
        })
    }
}

/// `65535:0` or a well-known community name, to its 32-bit value.
pub fn parse_community(s: &str) -> Result<u32, CommunityError> {
    let well_known = match s.to_ascii_lowercase().as_str() {
        "graceful-shutdown" | "graceful_shutdown" => Some(0xFFFF_0000),
        "blackhole" => Some(0xFFFF_029A),
        "no-export" | "no_export" => Some(0xFFFF_FF01),
        "no-advertise" | "no_advertise" => Some(0xFFFF_FF02),
        "no-export-subconfed" | "no_export_subconfed" => Some(0xFFFF_FF03),
        _ => None,
    };
    if let Some(v) = well_known {
        return Ok(v);
    }
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| CommunityError::NotAsnValue(s.to_string()))?;
    let half = |part: &str| {
        part.parse::<u16>().map_err(|_| CommunityError::Not16Bit {
            community: s.to_string(),
            part: part.to_string(),
        })
    };
    let (a, b) = (half(a)?, half(b)?);
    Ok((u32::from(a) << 16) | u32::from(b))
}

/// `GLOBAL:LOCAL1:LOCAL2` (three 32-bit numbers).
pub fn parse_large_community(s: &str) -> Result<(u32, u32, u32), CommunityError> {
    let parts: Vec<&str> = s.split(':').collect();
    let [g, l1, l2] = parts.as_slice() else {
        return Err(CommunityError::NotLarge(s.to_string()));
    };
    let num = |p: &str| {
        p.parse::<u32>().map_err(|_| CommunityError::Not32Bit {
            community: s.to_string(),
            part: p.to_string(),
        })
    };
    Ok((num(g)?, num(l1)?, num(l2)?))
}

impl VipGroupConfig {
    /// Check everything that serde cannot; the error names the group and the key.
    pub fn validate(&self) -> Result<(), GroupConfigError> {
        if self.name.is_empty() {
            return Err(GroupConfigError::EmptyName);
        }
        self.check().map_err(|problem| GroupConfigError::Group {
            group: self.name.clone(),
            problem,
        })
    }

    fn check(&self) -> Result<(), GroupProblem> {
        if self.prefixes.is_empty() {
            return Err(GroupProblem::NoPrefixes);
        }
        if self.interval < Duration::from_millis(100) {
            return Err(GroupProblem::IntervalTooShort(self.interval));
        }
        at_most("`interval`", self.interval, MAX_INTERVAL)?;
        at_most("`hold_down`", self.hold_down, MAX_HOLD_DOWN)?;
        at_most("`address_linger`", self.address_linger, MAX_ADDRESS_LINGER)?;
        // Zero would mean "never", which the tracker cannot express: refuse it rather than
        // reading it as 1.
        if self.rise == 0 {
            return Err(GroupProblem::ZeroRise);
        }
        if self.fall == 0 {
            return Err(GroupProblem::ZeroFall);
        }
        for s in &self.services {
            s.validate()?;
        }
        self.pool.validate()?;
        for (state, attrs) in [
            ("up", &self.up),
            ("draining", &self.draining),
            ("down", &self.down),
        ] {
            attrs
                .parse()
                .map_err(|error| GroupProblem::Attrs { state, error })?;
        }
        Ok(())
    }

    /// The addresses announced (each prefix's address).
    pub fn vips(&self) -> Vec<IpAddr> {
        self.prefixes.iter().map(|p| p.addr()).collect()
    }

    /// The pure policy for [`crate::health::evaluate`].
    pub fn policy(&self) -> GroupPolicy {
        GroupPolicy {
            name: self.name.clone(),
            vips: self.vips(),
            services: self.services.clone(),
            require: self.require,
            pool: self.pool,
            destinations: self.destinations,
            require_local_vip: self.vip_address == VipAddressMode::Require,
        }
    }

    /// Rise/fall/hold-down for [`crate::health::GroupTracker`].
    pub fn damping(&self) -> Damping {
        Damping {
            rise: self.rise,
            fall: self.fall,
            hold_down: self.hold_down,
        }
    }
}

/// Check a list of groups: each valid, names unique, and no route in two places.
///
/// A route belongs to one group only: were it in two, one group's withdrawal would remove the
/// route the other still reports as announced. Prefixes are compared as routes (host bits
/// cleared), so `192.0.2.10/24` and `192.0.2.11/24` are the same route `192.0.2.0/24`.
pub fn validate_groups(groups: &[VipGroupConfig]) -> Result<(), GroupConfigError> {
    let mut names = std::collections::BTreeSet::new();
    // Route → (group, prefix as written).
    let mut routes: std::collections::BTreeMap<IpNet, (&str, &IpNet)> = Default::default();
    for g in groups {
        g.validate()?;
        if !names.insert(g.name.as_str()) {
            return Err(GroupConfigError::DuplicateName(g.name.clone()));
        }
        for p in &g.prefixes {
            if let Some((other, written)) = routes.insert(p.trunc(), (g.name.as_str(), p)) {
                let route = p.trunc();
                return Err(if other == g.name {
                    GroupConfigError::PrefixTwice {
                        group: other.to_string(),
                        prefix: *p,
                        written: *written,
                        route,
                    }
                } else {
                    GroupConfigError::RouteInTwoGroups {
                        route,
                        first: other.to_string(),
                        first_prefix: *written,
                        second: g.name.clone(),
                        second_prefix: *p,
                    }
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrapper {
        vip_groups: Vec<VipGroupConfig>,
    }

    fn parse(text: &str) -> Result<Vec<VipGroupConfig>, String> {
        let w: Wrapper = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_groups(&w.vip_groups).map_err(|e| e.to_string())?;
        Ok(w.vip_groups)
    }

    #[test]
    fn minimal_group_gets_documented_defaults() {
        let g = parse("[[vip_groups]]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\"]\n")
            .unwrap()
            .remove(0);
        assert_eq!(g.interval, Duration::from_secs(1));
        assert_eq!((g.rise, g.fall), (3, 2));
        assert_eq!(g.hold_down, Duration::from_secs(10));
        assert_eq!(g.require, Require::Every);
        assert_eq!(g.pool, PoolThreshold::default());
        assert_eq!(g.vip_address, VipAddressMode::Require);
        assert_eq!(g.down_action, DownAction::Withdraw);
        assert_eq!(g.draining.parse().unwrap().communities, vec![0xFFFF_0000]);
        assert!(g.policy().require_local_vip);
    }

    #[test]
    fn full_group_parses() {
        let g = parse(
            r#"
            [[vip_groups]]
            name = "api"
            prefixes = ["203.0.113.5/32", "2001:db8::5/128"]
            services = [
              { protocol = "tcp", address = "203.0.113.5", port = 443 },
              { protocol = "fwmark", mark = 7, family = "inet6" },
            ]
            require = "any"
            interval = "100ms"
            rise = 1
            fall = 1
            hold_down = "0s"
            vip_address = "manage"
            manage_interface = "vip0"
            down_action = "announce"
            pool = { down_count = 2, up_count = 3, down_fraction = 0.25, up_fraction = 0.5 }
            destinations = { respect_upper_threshold = true }
            up = { med = 10, communities = ["64500:1"], large_communities = ["64500:1:2"] }
            draining = { med = 500, communities = ["graceful-shutdown", "no-export"] }
            down = { med = 1000, as_path_prepend = 3, extended_communities = ["rt:65000:100", "ro:192.0.2.1:7", "rt:4200000001:5"] }
            "#,
        )
        .unwrap()
        .remove(0);
        assert_eq!(g.vips().len(), 2);
        assert_eq!(g.interval, Duration::from_millis(100));
        let up = g.up.parse().unwrap();
        assert_eq!(up.communities, vec![(64500 << 16) | 1]);
        assert_eq!(up.large_communities, vec![(64500, 1, 2)]);
        assert!(up.extended_communities.is_empty());
        let down: Vec<String> = g
            .down
            .parse()
            .unwrap()
            .extended_communities
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(down, ["rt:65000:100", "ro:192.0.2.1:7", "rt:4200000001:5"]);
        assert_eq!(
            g.draining.parse().unwrap().communities,
            vec![0xFFFF_0000, 0xFFFF_FF01]
        );
        assert!(!g.policy().require_local_vip);
    }

    #[test]
    fn errors_name_group_and_problem() {
        let e = parse("[[vip_groups]]\nname = \"w\"\nprefixes = []\n").unwrap_err();
        assert_eq!(
            e,
            "vip group \"w\": `prefixes` must list at least one prefix"
        );
        let e = parse(
            "[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\ninterval = \"50ms\"\n",
        )
        .unwrap_err();
        assert!(e.contains("shortest is 100ms"), "{e}");
        let e = parse("[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\nup = { communities = [\"70000:1\"] }\n")
            .unwrap_err();
        assert!(e.contains("[up]") && e.contains("70000"), "{e}");
        let e = parse("[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\ndown = { extended_communities = [\"rt:65000:1\", \"rt:4200000001:70000\"] }\n")
            .unwrap_err();
        assert_eq!(
            e,
            "vip group \"w\": [down] extended community \"rt:4200000001:70000\": value 70000 is too large for the four-octet-AS specific form (at most 65535)"
        );
        let e = parse("[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\ndraining = { extended_communities = [\"65000:1\"] }\n")
            .unwrap_err();
        assert!(
            e.contains("[draining]") && e.contains("KIND:ADMINISTRATOR:VALUE"),
            "{e}"
        );
        let e = parse(
            "[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\n[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.2/32\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("used twice"), "{e}");
        let e = parse("[[vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\nbogus = 1\n")
            .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    fn group(name: &str, prefixes: &[&str], extra: &str) -> String {
        let list: Vec<String> = prefixes.iter().map(|p| format!("{p:?}")).collect();
        format!(
            "[[vip_groups]]\nname = {name:?}\nprefixes = [{}]\n{extra}\n",
            list.join(", ")
        )
    }

    #[test]
    fn durations_have_upper_bounds_and_the_bound_itself_is_accepted() {
        for (key, max, past) in [
            ("interval", "1h", "1h 1ms"),
            ("hold_down", "1h", "61m"),
            ("address_linger", "10m", "601s"),
        ] {
            parse(&group("w", &["192.0.2.1/32"], &format!("{key} = {max:?}")))
                .unwrap_or_else(|e| panic!("{key} = {max}: {e}"));
            for bad in [past, "500000000000y"] {
                let e =
                    parse(&group("w", &["192.0.2.1/32"], &format!("{key} = {bad:?}"))).unwrap_err();
                assert!(
                    e.contains(&format!("`{key}`")) && e.contains(&format!("at most {max}")),
                    "{key} = {bad}: {e}"
                );
            }
        }
    }

    #[test]
    fn rise_and_fall_of_zero_are_refused() {
        for key in ["rise", "fall"] {
            let e = parse(&group("w", &["192.0.2.1/32"], &format!("{key} = 0"))).unwrap_err();
            assert_eq!(e, format!("vip group \"w\": `{key}` must be at least 1"));
        }
        parse(&group("w", &["192.0.2.1/32"], "rise = 1\nfall = 1")).unwrap();
    }

    #[test]
    fn one_route_in_two_groups_is_refused_naming_both() {
        let e = parse(&format!(
            "{}{}",
            group("web", &["192.0.2.10/32", "2001:db8::10/128"], ""),
            group("api", &["192.0.2.11/32", "2001:db8::10/128"], "")
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "prefix 2001:db8::10/128 is in two vip groups: \"web\" (as 2001:db8::10/128) and \"api\" (as 2001:db8::10/128); a route belongs to one group only"
        );
        // Host bits do not make another route.
        let e = parse(&format!(
            "{}{}",
            group("web", &["192.0.2.10/24"], ""),
            group("api", &["192.0.2.11/24"], "")
        ))
        .unwrap_err();
        assert!(
            e.contains("prefix 192.0.2.0/24 is in two vip groups")
                && e.contains("\"web\" (as 192.0.2.10/24)")
                && e.contains("\"api\" (as 192.0.2.11/24)"),
            "{e}"
        );
        let e = parse(&group("web", &["192.0.2.10/32", "192.0.2.10/32"], "")).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        // Overlapping but different routes are different announcements.
        parse(&format!(
            "{}{}",
            group("web", &["192.0.2.0/24"], ""),
            group("api", &["192.0.2.10/32"], "")
        ))
        .unwrap();
    }

    #[test]
    fn community_parsing() {
        assert_eq!(parse_community("65535:0"), Ok(0xFFFF_0000));
        assert_eq!(parse_community("NO-EXPORT"), Ok(0xFFFF_FF01));
        assert!(parse_community("1:2:3")
            .unwrap_err()
            .to_string()
            .contains("16-bit"));
        assert!(parse_community("x")
            .unwrap_err()
            .to_string()
            .contains("well-known"));
        assert_eq!(
            parse_large_community("4200000000:1:2"),
            Ok((4_200_000_000, 1, 2))
        );
        assert!(parse_large_community("1:2").is_err());
    }
}
