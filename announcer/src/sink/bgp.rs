//! The BGP sink: route actions into the speaker's route table, and the host's addresses read with
//! `getifaddrs` (for `vip_address = "require"`). The kernel sink is in [`super::kernel`].

use herald_shared::netns::run_in_netns;

use super::traits::{BoxFuture, LocalAddrs, LocalAddrsError, RouteSink, SinkError};
use crate::bgp::{Origin, RouteAttrs as BgpAttrs, SpeakerHandle};
use crate::group::RouteAction;
use crate::group_config::ParsedAttrs;
use std::net::IpAddr;
use std::time::Duration;

/// Converts the configured attributes of a state into the speaker's.
pub fn bgp_attrs(a: &ParsedAttrs) -> BgpAttrs {
    BgpAttrs {
        origin: Origin::Igp,
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.clone(),
        large_communities: a.large_communities.clone(),
        extended_communities: a.extended_communities.clone(),
        as_path_prepend: a.as_path_prepend,
    }
}

/// Routes through the BGP speaker. Address actions (`vip_address = "manage"`) are not the
/// speaker's business: wrap it in [`super::kernel::WithVipAddresses`] for those.
#[derive(Debug, Clone)]
pub struct BgpSink {
    speaker: SpeakerHandle,
}

impl BgpSink {
    pub fn new(speaker: SpeakerHandle) -> Self {
        BgpSink { speaker }
    }
}

impl RouteSink for BgpSink {
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            match action {
                RouteAction::Announce { prefix, attrs } => {
                    self.speaker.announce(*prefix, bgp_attrs(attrs));
                    Ok(())
                }
                RouteAction::Withdraw { prefix } => {
                    self.speaker.withdraw(*prefix);
                    Ok(())
                }
                RouteAction::AddAddress { .. } | RouteAction::RemoveAddress { .. } => {
                    Err(SinkError::AddressesNotManaged)
                }
            }
        })
    }
}

/// Local addresses of a network namespace (the daemon's own, or the reader's), read with
/// `getifaddrs` on a thread inside that namespace.
#[derive(Debug, Clone)]
pub struct InterfaceAddrs {
    netns: Option<String>,
}

impl InterfaceAddrs {
    pub fn new(netns: Option<String>) -> Self {
        InterfaceAddrs { netns }
    }
}

impl LocalAddrs for InterfaceAddrs {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, LocalAddrsError> {
        run_in_netns(self.netns.as_deref(), Duration::from_secs(2), || {
            let addrs = nix::ifaddrs::getifaddrs().map_err(LocalAddrsError::Getifaddrs)?;
            let mut out: Vec<IpAddr> = addrs
                .filter_map(|ifa| ifa.address)
                .filter_map(|sa| {
                    if let Some(v4) = sa.as_sockaddr_in() {
                        Some(IpAddr::V4(v4.ip()))
                    } else {
                        sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
                    }
                })
                .collect();
            out.sort();
            out.dedup();
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_convert_field_by_field() {
        let p = ParsedAttrs {
            med: Some(5),
            local_pref: Some(200),
            communities: vec![0xFFFF_0000],
            large_communities: vec![(1, 2, 3)],
            extended_communities: vec!["rt:65000:100".parse().unwrap()],
            as_path_prepend: 2,
        };
        let b = bgp_attrs(&p);
        assert_eq!(b.origin, Origin::Igp);
        assert_eq!(b.med, Some(5));
        assert_eq!(b.local_pref, Some(200));
        assert_eq!(b.communities, vec![0xFFFF_0000]);
        assert_eq!(b.large_communities, vec![(1, 2, 3)]);
        assert_eq!(b.extended_communities, p.extended_communities);
        assert_eq!(b.as_path_prepend, 2);
    }

    #[test]
    fn loopback_is_a_local_address() {
        let l = InterfaceAddrs::new(None).local_addrs().unwrap();
        assert!(l.contains(&"127.0.0.1".parse().unwrap()), "{l:?}");
    }
}
