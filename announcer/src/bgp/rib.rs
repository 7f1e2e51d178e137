//! The speaker's route table (what the binary wants announced) and the per-session
//! Adj-RIB-Out that is kept in step with it by sending only differences.

use super::config::Family;
use super::ext_community::ExtendedCommunity;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;

/// ORIGIN attribute value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// IGP (0): the usual value for locally originated VIPs.
    #[default]
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

/// Path attributes of one announced prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteAttrs {
    /// ORIGIN. Default: IGP.
    pub origin: Origin,
    /// MULTI_EXIT_DISC, if any.
    pub med: Option<u32>,
    /// LOCAL_PREF, sent to iBGP peers only (default there: 100).
    pub local_pref: Option<u32>,
    /// Standard communities (RFC 1997), as `(asn << 16) | value`.
    pub communities: Vec<u32>,
    /// Large communities (RFC 8092).
    pub large_communities: Vec<(u32, u32, u32)>,
    /// Extended communities (RFC 4360): route targets and route origins.
    pub extended_communities: Vec<ExtendedCommunity>,
    /// Extra copies of the local AS prepended to AS_PATH on eBGP sessions.
    pub as_path_prepend: u8,
}

/// The route table shared by all sessions: prefix → attributes.
pub type RouteTable = BTreeMap<IpNet, RouteAttrs>;

/// Family of a prefix.
pub fn family_of(p: &IpNet) -> Family {
    match p {
        IpNet::V4(_) => Family::Ipv4,
        IpNet::V6(_) => Family::Ipv6,
    }
}

/// What a session must send to bring its peer in step with the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RibDiff {
    /// Prefixes to (re-)announce with their attributes.
    pub announce: Vec<(IpNet, RouteAttrs)>,
    /// Prefixes to withdraw.
    pub withdraw: Vec<IpNet>,
}

impl RibDiff {
    /// True when nothing needs sending.
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

/// Adj-RIB-Out of one session: what the peer has been told.
#[derive(Debug, Clone, Default)]
pub struct AdjRibOut {
    sent: RouteTable,
}

impl AdjRibOut {
    /// Prefixes currently announced to the peer.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// True when nothing is announced.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Prefixes announced in one family.
    pub fn count(&self, f: Family) -> usize {
        self.sent.keys().filter(|p| family_of(p) == f).count()
    }

    /// Forget everything (session down).
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// Differences between the table (restricted to `families`) and what was sent; the
    /// Adj-RIB-Out is updated as if the diff had been sent.
    pub fn sync(&mut self, table: &RouteTable, families: &[Family]) -> RibDiff {
        let mut diff = RibDiff::default();
        for (p, a) in table {
            if !families.contains(&family_of(p)) {
                continue;
            }
            if self.sent.get(p) != Some(a) {
                diff.announce.push((*p, a.clone()));
            }
        }
        for p in self.sent.keys() {
            if !table.contains_key(p) || !families.contains(&family_of(p)) {
                diff.withdraw.push(*p);
            }
        }
        for p in &diff.withdraw {
            self.sent.remove(p);
        }
        for (p, a) in &diff.announce {
            self.sent.insert(*p, a.clone());
        }
        diff
    }

    /// Everything currently announced (for ROUTE-REFRESH).
    pub fn full(&self) -> RibDiff {
        RibDiff {
            announce: self.sent.iter().map(|(p, a)| (*p, a.clone())).collect(),
            withdraw: vec![],
        }
    }

    /// Withdraw everything (shutdown); the Adj-RIB-Out becomes empty.
    pub fn withdraw_all(&mut self) -> RibDiff {
        let withdraw = self.sent.keys().copied().collect();
        self.sent.clear();
        RibDiff {
            announce: vec![],
            withdraw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn sync_sends_only_differences() {
        let mut t = RouteTable::new();
        let mut rib = AdjRibOut::default();
        let fams = [Family::Ipv4, Family::Ipv6];
        t.insert(net("192.0.2.10/32"), RouteAttrs::default());
        t.insert(net("2001:db8::10/128"), RouteAttrs::default());
        let d = rib.sync(&t, &fams);
        assert_eq!(d.announce.len(), 2);
        assert!(d.withdraw.is_empty());
        assert!(rib.sync(&t, &fams).is_empty());
        // Attribute change re-announces only that prefix.
        t.insert(
            net("192.0.2.10/32"),
            RouteAttrs {
                med: Some(5),
                ..Default::default()
            },
        );
        let d = rib.sync(&t, &fams);
        assert_eq!(d.announce.len(), 1);
        assert_eq!(d.announce[0].1.med, Some(5));
        t.remove(&net("2001:db8::10/128"));
        let d = rib.sync(&t, &fams);
        assert_eq!(d.withdraw, vec![net("2001:db8::10/128")]);
        assert_eq!(rib.len(), 1);
        assert_eq!(rib.count(Family::Ipv4), 1);
        let d = rib.withdraw_all();
        assert_eq!(d.withdraw, vec![net("192.0.2.10/32")]);
        assert!(rib.is_empty());
    }

    #[test]
    fn sync_filters_families() {
        let mut t = RouteTable::new();
        t.insert(net("192.0.2.10/32"), RouteAttrs::default());
        t.insert(net("2001:db8::10/128"), RouteAttrs::default());
        let mut rib = AdjRibOut::default();
        let d = rib.sync(&t, &[Family::Ipv6]);
        assert_eq!(d.announce.len(), 1);
        assert_eq!(d.announce[0].0, net("2001:db8::10/128"));
        assert_eq!(rib.full().announce.len(), 1);
    }
}
