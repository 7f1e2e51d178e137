//! The OPEN message: building ours (capabilities per RFC 5492, minus those the peer refused),
//! checking the peer's against the configuration (RFC 4271 §6.2, RFC 6286, RFC 4760, RFC 6793),
//! and the framing check of its optional parameters that runs before netgauze parses it.

use super::consts::{CapabilityCode, OpenErrorSubcode, OpenParamType, AS_TRANS, BGP_VERSION};
use super::framing::{DecodeError, ErrorKind};
use super::notification::Notification;
use crate::bgp::config::Family;
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartAddressFamily, GracefulRestartCapability,
    MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use std::net::Ipv4Addr;

pub(super) fn address_type(f: Family) -> AddressType {
    match f {
        Family::Ipv4 => AddressType::Ipv4Unicast,
        Family::Ipv6 => AddressType::Ipv6Unicast,
    }
}

/// AFI/SAFI of a family.
pub fn afi_safi(f: Family) -> (u16, u8) {
    match f {
        Family::Ipv4 => (1, 1),
        Family::Ipv6 => (2, 1),
    }
}

/// What goes into our OPEN.
#[derive(Debug, Clone)]
pub struct LocalOpen {
    /// Local AS.
    pub local_as: u32,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time.
    pub hold_time: u16,
    /// Families to negotiate.
    pub families: Vec<Family>,
    /// Graceful-restart time, when enabled.
    pub graceful_restart: Option<u16>,
    /// This OPEN follows a graceful restart (RFC 4724 §3): the Restart State bit is set, and the
    /// Forwarding State bit of every family (IPVS kept forwarding while the daemon was away).
    /// Without `graceful_restart` it has no effect.
    pub restarting: bool,
    /// Capability codes not to send because the peer refused them with an Unsupported
    /// Capability NOTIFICATION (RFC 5492 §5): any of 2 (route refresh), 64 (graceful
    /// restart), 65 (4-octet AS), and 1 (multiprotocol) on an IPv4-only session.
    pub suppress: Vec<u8>,
}

/// Capability codes listed in the data of an OPEN / Unsupported Capability NOTIFICATION
/// (a sequence of code, length, value); a truncated entry ends the list.
pub fn unsupported_capabilities(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    while let (Some(&code), Some(&len)) = (rest.first(), rest.get(1)) {
        out.push(code);
        match rest.get(2 + usize::from(len)..) {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// Build our OPEN: MP-BGP per family, ROUTE-REFRESH, 4-octet AS, optional graceful restart.
pub fn build_open(l: &LocalOpen) -> BgpMessage {
    let mut caps: Vec<BgpCapability> = l
        .families
        .iter()
        .map(|f| {
            BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
                address_type(*f),
            ))
        })
        .collect();
    let suppressed = |c: CapabilityCode| l.suppress.contains(&u8::from(c));
    if suppressed(CapabilityCode::MultiProtocol) && l.families == [Family::Ipv4] {
        caps.clear(); // RFC 4760: no capability means IPv4 unicast
    }
    if !suppressed(CapabilityCode::RouteRefresh) {
        caps.push(BgpCapability::RouteRefresh);
    }
    if !suppressed(CapabilityCode::FourOctetAs) {
        caps.push(BgpCapability::FourOctetAs(FourOctetAsCapability::new(
            l.local_as,
        )));
    }
    if let Some(t) = l
        .graceful_restart
        .filter(|_| !suppressed(CapabilityCode::GracefulRestart))
    {
        let afs: Vec<_> = l
            .families
            .iter()
            .map(|f| GracefulRestartAddressFamily::new(l.restarting, address_type(*f)))
            .collect();
        // The N bit (RFC 8538) stays clear: a NOTIFICATION always makes the peer flush our
        // routes, so a plain stop's Cease withdraws as it always did, and a stop for restart
        // closes the connection without one.
        caps.push(BgpCapability::GracefulRestartCapability(
            GracefulRestartCapability::new(l.restarting, false, t.min(4095), afs),
        ));
    }
    let my_as = u16::try_from(l.local_as).unwrap_or(AS_TRANS);
    BgpMessage::Open(BgpOpenMessage::new(
        my_as,
        l.hold_time,
        l.router_id,
        vec![BgpOpenMessageParameter::new_capabilities(caps)],
    ))
}

/// What we learned from the peer's OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOpen {
    /// Peer AS (4-octet if advertised).
    pub asn: u32,
    /// Peer's hold time.
    pub hold_time: u16,
    /// Peer's BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// The peer supports 4-octet AS numbers.
    pub asn4: bool,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// The peer supports ROUTE-REFRESH.
    pub route_refresh: bool,
    /// The peer sent the graceful restart capability (RFC 4724): it keeps our routes when the
    /// connection ends without a NOTIFICATION.
    pub graceful_restart: bool,
}

/// Check the peer's OPEN against the configuration (RFC 4271 §6.2, RFC 6286, RFC 4760, RFC 5492).
pub fn check_open(
    open: &BgpOpenMessage,
    expected_as: u32,
    local_id: Ipv4Addr,
    ibgp: bool,
    ours: &[Family],
) -> Result<PeerOpen, DecodeError> {
    let err = |sub: OpenErrorSubcode, data: Vec<u8>, d: String| {
        Err(DecodeError::new(
            ErrorKind::Open,
            Notification::open_error(sub, data),
            d,
        ))
    };
    if open.version() != BGP_VERSION {
        return err(
            OpenErrorSubcode::UnsupportedVersionNumber,
            vec![0, BGP_VERSION],
            format!("unsupported version {}", open.version()),
        );
    }
    let caps = open.capabilities();
    let asn4 = caps
        .iter()
        .any(|c| matches!(c, BgpCapability::FourOctetAs(_)));
    let asn = open.my_asn4();
    if asn != expected_as {
        return err(
            OpenErrorSubcode::BadPeerAs,
            open.my_as().to_be_bytes().to_vec(),
            format!("peer AS {asn}, expected {expected_as}"),
        );
    }
    let h = open.hold_time();
    if h == 1 || h == 2 {
        return err(
            OpenErrorSubcode::UnacceptableHoldTime,
            h.to_be_bytes().to_vec(),
            format!("hold time {h}"),
        );
    }
    let id = open.bgp_id();
    if id.is_unspecified() || id.is_broadcast() || id.is_multicast() || (ibgp && id == local_id) {
        return err(
            OpenErrorSubcode::BadBgpIdentifier,
            id.octets().to_vec(),
            format!("unacceptable BGP identifier {id}"),
        );
    }
    let mut mp: Vec<Family> = Vec::new();
    let mut any_mp = false;
    for c in &caps {
        if let BgpCapability::MultiProtocolExtensions(m) = c {
            any_mp = true;
            match m.address_type() {
                AddressType::Ipv4Unicast => mp.push(Family::Ipv4),
                AddressType::Ipv6Unicast => mp.push(Family::Ipv6),
                _ => {}
            }
        }
    }
    if !any_mp {
        // RFC 4760: without the capability, only IPv4 unicast is spoken.
        mp.push(Family::Ipv4);
    }
    let families: Vec<Family> = ours.iter().copied().filter(|f| mp.contains(f)).collect();
    if families.is_empty() {
        // RFC 5492 §5: the capability we need, in the data field.
        let mut data = Vec::new();
        for f in ours {
            let (afi, safi) = afi_safi(*f);
            data.extend_from_slice(&[CapabilityCode::MultiProtocol.into(), 4]);
            data.extend_from_slice(&afi.to_be_bytes());
            data.extend_from_slice(&[0, safi]);
        }
        return err(
            OpenErrorSubcode::UnsupportedCapability,
            data,
            format!("no common address family (we need {ours:?}, peer offers {mp:?})"),
        );
    }
    let route_refresh = caps.iter().any(|c| {
        matches!(
            c,
            BgpCapability::RouteRefresh
                | BgpCapability::EnhancedRouteRefresh
                | BgpCapability::CiscoRouteRefresh
        )
    });
    let graceful_restart = caps
        .iter()
        .any(|c| matches!(c, BgpCapability::GracefulRestartCapability(_)));
    Ok(PeerOpen {
        asn,
        hold_time: h,
        bgp_id: id,
        asn4,
        families,
        route_refresh,
        graceful_restart,
    })
}

/// The framing of an OPEN's optional parameters and of the capabilities inside each
/// Capabilities parameter: every length must stay inside what contains it.
///
/// The parser skips a capability it cannot read (RFC 5492: unknown capabilities are ignored), and
/// after one whose length overruns its parameter it would read the following bytes as
/// capabilities of their own. A malformed recognised optional parameter is an OPEN Message Error
/// with subcode 0, Unspecific (RFC 4271 §6.2). Shorter bodies, a parameter list longer than the
/// body, and the extended parameter format of RFC 9072 are left to the parser, which answers
/// them already.
pub(super) fn check_open_parameters(body: &[u8]) -> Result<(), DecodeError> {
    let (Some(&len), Some(rest)) = (body.get(9), body.get(10..)) else {
        return Ok(());
    };
    let Some(mut params) = rest.get(..usize::from(len)) else {
        return Ok(());
    };
    if len == 255 && params.first() == Some(&255) {
        return Ok(());
    }
    let malformed = |detail: String| {
        DecodeError::new(
            ErrorKind::Open,
            Notification::open_error(OpenErrorSubcode::Unspecific, vec![]),
            detail,
        )
    };
    while let Some((&ty, after)) = params.split_first() {
        let Some((&plen, after)) = after.split_first() else {
            return Err(malformed(format!(
                "OPEN optional parameter {ty} has no length octet"
            )));
        };
        let (Some(value), Some(next)) = (
            after.get(..usize::from(plen)),
            after.get(usize::from(plen)..),
        ) else {
            return Err(malformed(format!(
                "OPEN optional parameter {ty} of length {plen} overruns the optional parameters ({} bytes left)",
                after.len()
            )));
        };
        if ty == u8::from(OpenParamType::Capabilities) {
            let mut caps = value;
            while let Some((&code, after)) = caps.split_first() {
                let Some((&clen, after)) = after.split_first() else {
                    return Err(malformed(format!(
                        "OPEN capability {code} has no length octet"
                    )));
                };
                let Some(next) = after.get(usize::from(clen)..) else {
                    return Err(malformed(format!(
                        "OPEN capability {code} of length {clen} overruns its optional parameter ({} bytes left)",
                        after.len()
                    )));
                };
                caps = next;
            }
        }
        params = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_open() -> LocalOpen {
        LocalOpen {
            local_as: 4_200_000_001,
            router_id: "192.0.2.10".parse().unwrap(),
            hold_time: 90,
            families: vec![Family::Ipv4, Family::Ipv6],
            graceful_restart: Some(120),
            restarting: false,
            suppress: vec![],
        }
    }

    fn graceful_capability(l: &LocalOpen) -> Option<GracefulRestartCapability> {
        let BgpMessage::Open(o) = build_open(l) else {
            panic!()
        };
        o.capabilities().into_iter().find_map(|c| match c {
            BgpCapability::GracefulRestartCapability(g) => Some(g.clone()),
            _ => None,
        })
    }

    /// A normal start: R = 0 and F = 0 for every family (a peer holding stale routes of ours,
    /// after a crash, flushes them at once, RFC 4724 §4.2). After a graceful restart: R = 1 and
    /// F = 1 for each configured family, with the configured restart time.
    #[test]
    fn restart_and_forwarding_bits() {
        let mut l = local_open();
        let g = graceful_capability(&l).unwrap();
        assert!(!g.restart());
        assert!(!g.graceful_notification());
        assert_eq!(g.time(), 120);
        assert_eq!(g.address_families().len(), 2);
        assert!(g.address_families().iter().all(|f| !f.forwarding_state()));

        l.restarting = true;
        l.graceful_restart = Some(30);
        let g = graceful_capability(&l).unwrap();
        assert!(g.restart());
        assert!(!g.graceful_notification(), "no RFC 8538 N bit");
        assert_eq!(g.time(), 30);
        let fams: Vec<_> = g
            .address_families()
            .iter()
            .map(|f| (f.address_type(), f.forwarding_state()))
            .collect();
        assert_eq!(
            fams,
            [
                (AddressType::Ipv4Unicast, true),
                (AddressType::Ipv6Unicast, true)
            ]
        );
        // Without graceful restart configured nothing is advertised, restarting or not.
        l.graceful_restart = None;
        assert!(graceful_capability(&l).is_none());
    }

    #[test]
    fn refused_capabilities_are_not_sent_again() {
        assert_eq!(
            unsupported_capabilities(&[64, 2, 0, 120, 2, 0]),
            vec![64, 2]
        );
        assert_eq!(unsupported_capabilities(&[65, 9, 1]), vec![65]);
        assert!(unsupported_capabilities(&[7]).is_empty());
        let mut l = local_open();
        l.suppress = vec![2, 64];
        let BgpMessage::Open(o) = build_open(&l) else {
            panic!()
        };
        let caps = o.capabilities();
        assert!(!caps.iter().any(|c| matches!(
            c,
            BgpCapability::RouteRefresh | BgpCapability::GracefulRestartCapability(_)
        )));
        assert!(caps
            .iter()
            .any(|c| matches!(c, BgpCapability::FourOctetAs(_))));
    }
}
