//! The UPDATE message: building UPDATEs for a route table diff (attributes per session, NLRI
//! packed under 4096 bytes, End-of-RIB markers), and locating the fault in an UPDATE that failed
//! to parse (RFC 7606: errors in attribute *contents* are treat-as-withdraw, which for a speaker
//! that ignores received routes means "count and ignore"; errors that lose the NLRI framing, and
//! malformed MP_REACH/MP_UNREACH, reset the session).

use super::consts::{AttrType, AS_TRANS, ATTR_FLAG_EXTENDED_LENGTH, HEADER_LEN, MAX_MESSAGE_LEN};
use super::framing::{encode, EncodeError};
use crate::bgp::config::Family;
use crate::bgp::ext_community::{ExtAdmin, ExtKind, ExtendedCommunity as ExtCommunity};
use crate::bgp::rib::{Origin, RouteAttrs};
use ipnet::IpNet;
use netgauze_bgp_pkt::community::{Community, ExtendedCommunity, LargeCommunity};
use netgauze_bgp_pkt::nlri::{Ipv4Unicast, Ipv4UnicastAddress, Ipv6Unicast, Ipv6UnicastAddress};
use netgauze_bgp_pkt::path_attribute::{
    As2PathSegment, As4Path, As4PathSegment, AsPath, AsPathSegmentType, Communities,
    ExtendedCommunities, InvalidPathAttribute, LargeCommunities, LocalPreference, MpReach,
    MpUnreach, MultiExitDiscriminator, NextHop, Origin as NgOrigin, PathAttribute,
    PathAttributeValue,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Everything needed to turn route table entries into UPDATEs for one session.
#[derive(Debug, Clone)]
pub struct UpdateCtx {
    /// Local AS.
    pub local_as: u32,
    /// Internal session.
    pub ibgp: bool,
    /// Peer speaks 4-octet AS.
    pub asn4: bool,
    /// IPv4 next hop.
    pub nh_v4: Option<Ipv4Addr>,
    /// IPv6 global and optional link-local next hop.
    pub nh_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
}

/// Why UPDATEs (or an End-of-RIB marker) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// netgauze refused an attribute's flags for its value.
    #[error("cannot build {what} {value:?}: {reason:?}")]
    Attribute {
        /// `path attribute`, `MP_REACH` or `MP_UNREACH`.
        what: &'static str,
        /// The attribute value.
        value: Box<PathAttributeValue>,
        /// netgauze's objection.
        reason: InvalidPathAttribute,
    },
    /// A message could not be encoded to measure it.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl BuildError {
    fn attribute(
        what: &'static str,
    ) -> impl Fn((PathAttributeValue, InvalidPathAttribute)) -> Self {
        move |(value, reason)| BuildError::Attribute {
            what,
            value: Box::new(value),
            reason,
        }
    }
}

fn attr(
    optional: bool,
    transitive: bool,
    value_len: usize,
    v: PathAttributeValue,
) -> Result<PathAttribute, BuildError> {
    PathAttribute::from(optional, transitive, false, value_len > 255, v)
        .map_err(BuildError::attribute("path attribute"))
}

fn as_segments(path: &[u32]) -> Vec<Vec<u32>> {
    path.chunks(255).map(|c| c.to_vec()).collect()
}

/// Path attributes (without MP_REACH and NEXT_HOP) for one attribute set.
fn common_attrs(ctx: &UpdateCtx, a: &RouteAttrs) -> Result<Vec<PathAttribute>, BuildError> {
    let mut out = Vec::new();
    let origin = match a.origin {
        Origin::Igp => NgOrigin::IGP,
        Origin::Egp => NgOrigin::EGP,
        Origin::Incomplete => NgOrigin::Incomplete,
    };
    out.push(attr(false, true, 1, PathAttributeValue::Origin(origin))?);
    let path: Vec<u32> = if ctx.ibgp {
        vec![]
    } else {
        vec![ctx.local_as; 1 + usize::from(a.as_path_prepend)]
    };
    let segs = as_segments(&path);
    let width = if ctx.asn4 { 4 } else { 2 };
    let path_len: usize = segs.iter().map(|s| 2 + width * s.len()).sum();
    let needs_as4 = !ctx.asn4 && path.iter().any(|&x| x > u32::from(u16::MAX));
    let as_path = if ctx.asn4 {
        AsPath::As4PathSegments(
            segs.iter()
                .map(|s| As4PathSegment::new(AsPathSegmentType::AsSequence, s.clone()))
                .collect::<Vec<_>>()
                .into(),
        )
    } else {
        AsPath::As2PathSegments(
            segs.iter()
                .map(|s| {
                    let v: Vec<u16> = s
                        .iter()
                        .map(|&x| u16::try_from(x).unwrap_or(AS_TRANS))
                        .collect();
                    As2PathSegment::new(AsPathSegmentType::AsSequence, v)
                })
                .collect::<Vec<_>>()
                .into(),
        )
    };
    out.push(attr(
        false,
        true,
        path_len,
        PathAttributeValue::AsPath(as_path),
    )?);
    if let Some(med) = a.med {
        out.push(attr(
            true,
            false,
            4,
            PathAttributeValue::MultiExitDiscriminator(MultiExitDiscriminator::new(med)),
        )?);
    }
    if ctx.ibgp {
        out.push(attr(
            false,
            true,
            4,
            PathAttributeValue::LocalPreference(LocalPreference::new(a.local_pref.unwrap_or(100))),
        )?);
    }
    if !a.communities.is_empty() {
        let c: Vec<Community> = a.communities.iter().map(|&c| Community::new(c)).collect();
        out.push(attr(
            true,
            true,
            4 * c.len(),
            PathAttributeValue::Communities(Communities::new(c)),
        )?);
    }
    if !a.extended_communities.is_empty() {
        let c: Vec<ExtendedCommunity> = a.extended_communities.iter().map(ng_ext).collect();
        out.push(attr(
            true,
            true,
            8 * c.len(),
            PathAttributeValue::ExtendedCommunities(ExtendedCommunities::new(c)),
        )?);
    }
    if needs_as4 {
        let segs4: Vec<As4PathSegment> = segs
            .iter()
            .map(|s| As4PathSegment::new(AsPathSegmentType::AsSequence, s.clone()))
            .collect();
        out.push(attr(
            true,
            true,
            segs.iter().map(|s| 2 + 4 * s.len()).sum(),
            PathAttributeValue::As4Path(As4Path::new(segs4)),
        )?);
    }
    if !a.large_communities.is_empty() {
        let c: Vec<LargeCommunity> = a
            .large_communities
            .iter()
            .map(|&(g, l1, l2)| LargeCommunity::new(g, l1, l2))
            .collect();
        out.push(attr(
            true,
            true,
            12 * c.len(),
            PathAttributeValue::LargeCommunities(LargeCommunities::new(c)),
        )?);
    }
    Ok(out)
}

/// netgauze's value for one of our extended communities (all transitive).
fn ng_ext(c: &ExtCommunity) -> ExtendedCommunity {
    use netgauze_bgp_pkt::community::{
        TransitiveFourOctetExtendedCommunity as As4, TransitiveIpv4ExtendedCommunity as V4,
        TransitiveTwoOctetExtendedCommunity as As2,
    };
    let rt = c.kind == ExtKind::RouteTarget;
    match c.admin {
        ExtAdmin::As2 { asn, value } => ExtendedCommunity::TransitiveTwoOctet(if rt {
            As2::RouteTarget {
                global_admin: asn,
                local_admin: value,
            }
        } else {
            As2::RouteOrigin {
                global_admin: asn,
                local_admin: value,
            }
        }),
        ExtAdmin::Ipv4 { addr, value } => ExtendedCommunity::TransitiveIpv4(if rt {
            V4::RouteTarget {
                global_admin: addr,
                local_admin: value,
            }
        } else {
            V4::RouteOrigin {
                global_admin: addr,
                local_admin: value,
            }
        }),
        ExtAdmin::As4 { asn, value } => ExtendedCommunity::TransitiveFourOctet(if rt {
            As4::RouteTarget {
                global_admin: asn,
                local_admin: value,
            }
        } else {
            As4::RouteOrigin {
                global_admin: asn,
                local_admin: value,
            }
        }),
    }
}

fn prefix_wire_len(p: &IpNet) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

/// Split `prefixes` into chunks so that `base + Σ prefix sizes ≤ 4096`.
fn pack(base: usize, prefixes: &[IpNet]) -> Vec<Vec<IpNet>> {
    let budget = MAX_MESSAGE_LEN.saturating_sub(base).max(17);
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let l = prefix_wire_len(p);
        if used + l > budget && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += l;
        cur.push(*p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn v4_nlri(ps: &[IpNet]) -> Vec<Ipv4UnicastAddress> {
    ps.iter()
        .filter_map(|p| match p {
            IpNet::V4(n) => Ipv4Unicast::from_net(n.trunc())
                .ok()
                .map(Ipv4UnicastAddress::new_no_path_id),
            IpNet::V6(_) => None,
        })
        .collect()
}

fn v6_nlri(ps: &[IpNet]) -> Vec<Ipv6UnicastAddress> {
    ps.iter()
        .filter_map(|p| match p {
            IpNet::V6(n) => Ipv6Unicast::from_net(n.trunc())
                .ok()
                .map(|u| Ipv6UnicastAddress::new(None, u)),
            IpNet::V4(_) => None,
        })
        .collect()
}

fn mp_reach_v6(
    nh: (Ipv6Addr, Option<Ipv6Addr>),
    ps: &[IpNet],
) -> Result<PathAttribute, BuildError> {
    let v = PathAttributeValue::MpReach(MpReach::Ipv6Unicast {
        next_hop_global: nh.0,
        next_hop_local: nh.1,
        nlri: v6_nlri(ps).into(),
    });
    PathAttribute::from(true, false, false, true, v).map_err(BuildError::attribute("MP_REACH"))
}

fn mp_unreach_v6(ps: &[IpNet]) -> Result<PathAttribute, BuildError> {
    let v = PathAttributeValue::MpUnreach(MpUnreach::Ipv6Unicast {
        nlri: v6_nlri(ps).into(),
    });
    PathAttribute::from(true, false, false, true, v).map_err(BuildError::attribute("MP_UNREACH"))
}

fn update(
    w: Vec<Ipv4UnicastAddress>,
    a: Vec<PathAttribute>,
    n: Vec<Ipv4UnicastAddress>,
) -> BgpMessage {
    BgpMessage::Update(BgpUpdateMessage::new(w, a, n))
}

/// UPDATEs for a diff: withdrawals first, then announcements grouped by attributes, each
/// message packed with as many NLRI as fit in 4096 bytes. Prefixes of a family without a next
/// hop in `ctx` are skipped (the caller filters by negotiated family first).
pub fn build_updates(
    ctx: &UpdateCtx,
    announce: &[(IpNet, RouteAttrs)],
    withdraw: &[IpNet],
) -> Result<Vec<BgpMessage>, BuildError> {
    let mut out = Vec::new();
    let w4: Vec<IpNet> = withdraw
        .iter()
        .filter(|p| p.addr().is_ipv4())
        .copied()
        .collect();
    let w6: Vec<IpNet> = withdraw
        .iter()
        .filter(|p| p.addr().is_ipv6())
        .copied()
        .collect();
    for chunk in pack(HEADER_LEN + 4, &w4) {
        out.push(update(v4_nlri(&chunk), vec![], vec![]));
    }
    if !w6.is_empty() {
        let base = encode(&update(vec![], vec![mp_unreach_v6(&[])?], vec![]))?.len();
        for chunk in pack(base, &w6) {
            out.push(update(vec![], vec![mp_unreach_v6(&chunk)?], vec![]));
        }
    }
    let mut groups: BTreeMap<(bool, &RouteAttrs), Vec<IpNet>> = BTreeMap::new();
    for (p, a) in announce {
        groups.entry((p.addr().is_ipv6(), a)).or_default().push(*p);
    }
    for ((v6, a), ps) in groups {
        let common = common_attrs(ctx, a)?;
        if v6 {
            let Some(nh) = ctx.nh_v6 else { continue };
            let mut attrs = vec![mp_reach_v6(nh, &[])?];
            attrs.extend(common.iter().cloned());
            let base = encode(&update(vec![], attrs, vec![]))?.len();
            for chunk in pack(base, &ps) {
                let mut attrs = vec![mp_reach_v6(nh, &chunk)?];
                attrs.extend(common.iter().cloned());
                out.push(update(vec![], attrs, vec![]));
            }
        } else {
            let Some(nh) = ctx.nh_v4 else { continue };
            let mut attrs = common.clone();
            attrs.insert(
                2,
                attr(
                    false,
                    true,
                    4,
                    PathAttributeValue::NextHop(NextHop::new(nh)),
                )?,
            );
            let base = encode(&update(vec![], attrs.clone(), vec![]))?.len();
            for chunk in pack(base, &ps) {
                out.push(update(vec![], attrs.clone(), v4_nlri(&chunk)));
            }
        }
    }
    Ok(out)
}

/// End-of-RIB marker (RFC 4724) for a family.
pub fn end_of_rib(f: Family) -> Result<BgpMessage, BuildError> {
    Ok(match f {
        Family::Ipv4 => update(vec![], vec![], vec![]),
        Family::Ipv6 => update(vec![], vec![mp_unreach_v6(&[])?], vec![]),
    })
}

/// Family of an AFI/SAFI pair, if we speak it.
pub fn family_of_afi(afi: u16, safi: u8) -> Option<Family> {
    match (afi, safi) {
        (1, 1) => Some(Family::Ipv4),
        (2, 1) => Some(Family::Ipv6),
        _ => None,
    }
}

/// Where an UPDATE that failed to parse is broken (RFC 7606 §3–§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpdateFault {
    /// Withdrawn/attribute lengths or an attribute length overrun: the NLRI cannot be located.
    Framing,
    /// A well-framed MP_REACH_NLRI / MP_UNREACH_NLRI with a bad value (session reset).
    MpAttribute,
    /// Another well-framed attribute with a bad value (treat-as-withdraw).
    OtherAttribute,
    /// Attributes are fine: the withdrawn routes or NLRI field is invalid.
    Nlri,
}

/// Walk the UPDATE body's framing and re-parse each attribute alone to find the fault.
pub(super) fn classify_update(body: &[u8], asn4: bool) -> UpdateFault {
    let u16_at = |b: &[u8], i: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *b.get(i)?,
            *b.get(i + 1)?,
        ])))
    };
    let Some(wlen) = u16_at(body, 0) else {
        return UpdateFault::Framing;
    };
    let Some(alen) = u16_at(body, 2 + wlen) else {
        return UpdateFault::Framing;
    };
    let start = 4 + wlen;
    let Some(mut attrs) = body.get(start..start + alen) else {
        return UpdateFault::Framing;
    };
    let mut strict = BgpParsingContext::new(
        asn4,
        HashMap::new(),
        HashMap::new(),
        false,
        false,
        false,
        true,
    );
    let mut mp_bad = false;
    let mut other_bad = false;
    while !attrs.is_empty() {
        let (Some(&flags), Some(&code)) = (attrs.first(), attrs.get(1)) else {
            return UpdateFault::Framing;
        };
        let (hdr, len) = if flags & ATTR_FLAG_EXTENDED_LENGTH != 0 {
            (4, u16_at(attrs, 2))
        } else {
            (3, attrs.get(2).map(|&l| usize::from(l)))
        };
        let Some(len) = len else {
            return UpdateFault::Framing;
        };
        let Some(tlv) = attrs.get(..hdr + len) else {
            return UpdateFault::Framing;
        };
        if PathAttribute::parse(&mut SliceReader::new(tlv), &mut strict).is_err() {
            if code == u8::from(AttrType::MpReachNlri) || code == u8::from(AttrType::MpUnreachNlri)
            {
                mp_bad = true;
            } else {
                other_bad = true;
            }
        }
        attrs = attrs.get(hdr + len..).unwrap_or(&[]);
    }
    if mp_bad {
        UpdateFault::MpAttribute
    } else if other_bad {
        UpdateFault::OtherAttribute
    } else {
        UpdateFault::Nlri
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::framing::parsing_context;
    use crate::bgp::packet::open::address_type;
    use crate::bgp::packet::test_support::*;

    fn v4ctx() -> UpdateCtx {
        UpdateCtx {
            local_as: 65001,
            ibgp: false,
            asn4: true,
            nh_v4: Some("192.0.2.10".parse().unwrap()),
            nh_v6: Some((
                "2001:db8::10".parse().unwrap(),
                Some("fe80::1".parse().unwrap()),
            )),
        }
    }

    #[test]
    fn updates_pack_under_4096_and_round_trip() {
        let attrs = RouteAttrs {
            med: Some(10),
            communities: vec![(65001 << 16) | 100],
            large_communities: vec![(65001, 1, 2)],
            as_path_prepend: 2,
            ..Default::default()
        };
        let mut ann: Vec<(IpNet, RouteAttrs)> = (0..3000u32)
            .map(|i| {
                let a = Ipv4Addr::from(0xc633_0000 + i); // 198.51.x.y
                (IpNet::new(a.into(), 32).unwrap(), attrs.clone())
            })
            .collect();
        ann.extend((0..1000u32).map(|i| {
            let a = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i));
            (IpNet::new(a.into(), 128).unwrap(), attrs.clone())
        }));
        let msgs = build_updates(&v4ctx(), &ann, &[]).unwrap();
        let mut n4 = 0;
        let mut n6 = 0;
        for m in &msgs {
            let b = encode(m).unwrap();
            assert!(b.len() <= MAX_MESSAGE_LEN, "{}", b.len());
            let mut c = ctx();
            let BgpMessage::Update(u) =
                BgpMessage::parse(&mut SliceReader::new(&b), &mut c).unwrap()
            else {
                panic!()
            };
            n4 += u.nlri().len();
            for a in u.path_attributes() {
                if let PathAttributeValue::MpReach(MpReach::Ipv6Unicast {
                    nlri,
                    next_hop_local,
                    ..
                }) = a.value()
                {
                    n6 += nlri.len();
                    assert!(next_hop_local.is_some());
                }
            }
        }
        assert_eq!((n4, n6), (3000, 1000));
        // 3000 /32s (5 bytes each) need 4 messages, 1000 /128s (17 bytes each) 5: tight packing.
        assert_eq!(msgs.len(), 9);
        let w: Vec<IpNet> = ann.iter().map(|(p, _)| *p).collect();
        for m in build_updates(&v4ctx(), &[], &w).unwrap() {
            assert!(encode(&m).unwrap().len() <= MAX_MESSAGE_LEN);
        }
    }

    #[test]
    fn ebgp_path_prepends_and_ibgp_has_local_pref() {
        let a = RouteAttrs {
            as_path_prepend: 2,
            local_pref: Some(200),
            ..Default::default()
        };
        let p: IpNet = "192.0.2.10/32".parse().unwrap();
        let m = build_updates(&v4ctx(), &[(p, a.clone())], &[]).unwrap();
        let BgpMessage::Update(u) = &m[0] else {
            panic!()
        };
        let path = u
            .path_attributes()
            .iter()
            .find_map(|x| match x.value() {
                PathAttributeValue::AsPath(AsPath::As4PathSegments(s)) => {
                    Some(s[0].as_numbers().to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(path, vec![65001, 65001, 65001]);
        assert!(!u
            .path_attributes()
            .iter()
            .any(|x| matches!(x.value(), PathAttributeValue::LocalPreference(_))));
        let mut c = v4ctx();
        c.ibgp = true;
        let m = build_updates(&c, &[(p, a)], &[]).unwrap();
        let BgpMessage::Update(u) = &m[0] else {
            panic!()
        };
        assert!(u.path_attributes().iter().any(
            |x| matches!(x.value(), PathAttributeValue::LocalPreference(l) if l.metric() == 200)
        ));
    }

    #[test]
    fn two_octet_peer_gets_as_trans_and_as4_path() {
        let mut c = v4ctx();
        c.asn4 = false;
        c.local_as = 4_200_000_001;
        let p: IpNet = "192.0.2.10/32".parse().unwrap();
        let m = build_updates(&c, &[(p, RouteAttrs::default())], &[]).unwrap();
        let bytes = encode(&m[0]).unwrap();
        let mut cx = parsing_context(false);
        let BgpMessage::Update(u) =
            BgpMessage::parse(&mut SliceReader::new(&bytes), &mut cx).unwrap()
        else {
            panic!()
        };
        assert!(u
            .path_attributes()
            .iter()
            .any(|x| matches!(x.value(), PathAttributeValue::As4Path(_))));
    }

    /// The path attributes of an encoded UPDATE as (flags, type code, value), read from the
    /// bytes themselves rather than through netgauze.
    fn raw_attrs(msg: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
        let body = &msg[HEADER_LEN..];
        let wlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let alen = usize::from(u16::from_be_bytes([body[2 + wlen], body[3 + wlen]]));
        let mut rest = &body[4 + wlen..4 + wlen + alen];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (flags, code) = (rest[0], rest[1]);
            let (hdr, len) = if flags & ATTR_FLAG_EXTENDED_LENGTH != 0 {
                (4, usize::from(u16::from_be_bytes([rest[2], rest[3]])))
            } else {
                (3, usize::from(rest[2]))
            };
            out.push((flags, code, rest[hdr..hdr + len].to_vec()));
            rest = &rest[hdr + len..];
        }
        out
    }

    fn ext(s: &str) -> ExtCommunity {
        s.parse().unwrap()
    }

    #[test]
    fn extended_communities_encode_as_attribute_16_and_decode_back() {
        let list = vec![
            ext("rt:65000:100"),
            ext("ro:192.0.2.1:7"),
            ext("rt:4200000001:5"),
            ext("ro:65001:4294967295"),
            ext("rt:198.51.100.9:65535"),
            ext("ro:4200000002:0"),
        ];
        let a = RouteAttrs {
            communities: vec![(65000 << 16) | 1],
            extended_communities: list.clone(),
            large_communities: vec![(65000, 1, 2)],
            ..Default::default()
        };
        for p in ["192.0.2.10/32", "2001:db8::10/128"] {
            let p: IpNet = p.parse().unwrap();
            let m = build_updates(&v4ctx(), &[(p, a.clone())], &[]).unwrap();
            assert_eq!(m.len(), 1);
            let bytes = encode(&m[0]).unwrap();
            let raw = raw_attrs(&bytes);
            let (flags, _, value) = raw
                .iter()
                .find(|(_, code, _)| *code == u8::from(AttrType::ExtendedCommunities))
                .expect("attribute 16 present");
            // Optional, transitive (RFC 4360 §2), not partial, one-octet length.
            assert_eq!(*flags, 0xC0, "{p}");
            let want: Vec<u8> = list.iter().flat_map(|c| c.to_bytes()).collect();
            assert_eq!(value, &want, "{p}");
            // Attribute codes ascend: 8 (communities) < 16 < 32 (large communities); MP_REACH
            // (14) goes first by choice.
            let codes: Vec<u8> = raw
                .iter()
                .map(|(_, c, _)| *c)
                .filter(|c| *c != u8::from(AttrType::MpReachNlri))
                .collect();
            let mut sorted = codes.clone();
            sorted.sort_unstable();
            assert_eq!(codes, sorted, "{p}");
            // netgauze reads the same communities back, in the same forms.
            let mut c = ctx();
            let BgpMessage::Update(u) =
                BgpMessage::parse(&mut SliceReader::new(&bytes), &mut c).unwrap()
            else {
                panic!()
            };
            let got: Vec<ExtendedCommunity> = u
                .path_attributes()
                .iter()
                .find_map(|x| match x.value() {
                    PathAttributeValue::ExtendedCommunities(e) => Some(e.communities().to_vec()),
                    _ => None,
                })
                .expect("netgauze decodes attribute 16");
            let mine: Vec<ExtendedCommunity> = list.iter().map(ng_ext).collect();
            assert_eq!(got, mine);
            // …and each decoded value maps back to what we configured.
            let back: Vec<ExtCommunity> = value
                .chunks(8)
                .map(|b| ExtCommunity::from_bytes(b.try_into().unwrap()).unwrap())
                .collect();
            assert_eq!(back, list);
        }
        // No extended communities, no attribute 16.
        let p: IpNet = "192.0.2.10/32".parse().unwrap();
        let m = build_updates(&v4ctx(), &[(p, RouteAttrs::default())], &[]).unwrap();
        assert!(!raw_attrs(&encode(&m[0]).unwrap())
            .iter()
            .any(|(_, code, _)| *code == u8::from(AttrType::ExtendedCommunities)));
    }

    #[test]
    fn routes_differing_only_in_extended_communities_are_separate_updates() {
        let a = RouteAttrs {
            extended_communities: vec![ext("rt:65000:1")],
            ..Default::default()
        };
        let b = RouteAttrs {
            extended_communities: vec![ext("rt:65000:2")],
            ..Default::default()
        };
        let ann = vec![
            ("192.0.2.10/32".parse().unwrap(), a),
            ("192.0.2.11/32".parse().unwrap(), b),
        ];
        assert_eq!(build_updates(&v4ctx(), &ann, &[]).unwrap().len(), 2);
    }

    /// AS_PATH (and AS4_PATH) of an eBGP UPDATE from a four-octet local AS, exact to the byte.
    #[test]
    fn four_octet_local_as_path_is_exact_for_both_kinds_of_peer() {
        let p: IpNet = "192.0.2.10/32".parse().unwrap();
        let a = RouteAttrs {
            as_path_prepend: 1,
            ..Default::default()
        };
        let asn: u32 = 4_200_000_001;
        let seg4 = |n: usize| {
            let mut v = vec![2u8, u8::try_from(n).unwrap()]; // AS_SEQUENCE
            for _ in 0..n {
                v.extend_from_slice(&asn.to_be_bytes());
            }
            v
        };
        // A four-octet peer: one AS_PATH of 4-byte numbers, no AS4_PATH.
        let mut c = v4ctx();
        c.local_as = asn;
        let raw =
            raw_attrs(&encode(&build_updates(&c, &[(p, a.clone())], &[]).unwrap()[0]).unwrap());
        let path = raw
            .iter()
            .find(|x| x.1 == u8::from(AttrType::AsPath))
            .unwrap();
        assert_eq!(path.2, seg4(2));
        assert!(!raw.iter().any(|x| x.1 == u8::from(AttrType::As4Path)));
        // A two-octet peer (RFC 6793 §4.2.2): AS_TRANS in AS_PATH, the real path in AS4_PATH
        // (optional transitive).
        c.asn4 = false;
        let raw = raw_attrs(&encode(&build_updates(&c, &[(p, a)], &[]).unwrap()[0]).unwrap());
        let path = raw
            .iter()
            .find(|x| x.1 == u8::from(AttrType::AsPath))
            .unwrap();
        let trans = AS_TRANS.to_be_bytes();
        assert_eq!(path.2, vec![2, 2, trans[0], trans[1], trans[0], trans[1]]);
        let as4 = raw
            .iter()
            .find(|x| x.1 == u8::from(AttrType::As4Path))
            .unwrap();
        assert_eq!(as4.0, 0xC0);
        assert_eq!(as4.2, seg4(2));
        // A two-octet local AS needs no AS4_PATH even towards a two-octet peer.
        c.local_as = 65001;
        let raw = raw_attrs(
            &encode(&build_updates(&c, &[(p, RouteAttrs::default())], &[]).unwrap()[0]).unwrap(),
        );
        assert!(!raw.iter().any(|x| x.1 == u8::from(AttrType::As4Path)));
    }

    #[test]
    fn end_of_rib_markers() {
        for f in [Family::Ipv4, Family::Ipv6] {
            let BgpMessage::Update(u) = end_of_rib(f).unwrap() else {
                panic!()
            };
            assert_eq!(u.end_of_rib(), Some(address_type(f)));
        }
    }
}
