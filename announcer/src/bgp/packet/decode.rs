//! Decoding a complete frame into a [`Message`]: the per-type checks netgauze does not make
//! (OPEN optional parameter framing, NOTIFICATION and ROUTE-REFRESH bodies), netgauze's parse,
//! and the mapping of every failure to the NOTIFICATION RFC 4271 §6 asks for, with RFC 7606 for
//! UPDATE attributes: errors in optional or well-known attribute *contents* are
//! treat-as-withdraw, which for a speaker that ignores received routes means "count and ignore";
//! errors that lose the NLRI framing, and malformed MP_REACH/MP_UNREACH, reset the session.

use super::consts::{
    ErrorCode, HeaderErrorSubcode, MessageType, OpenErrorSubcode, RouteRefreshErrorSubcode,
    UpdateErrorSubcode, BGP_VERSION, HEADER_LEN,
};
use super::framing::{BgpFraming, DecodeError, ErrorKind};
use super::notification::Notification;
use super::open::check_open_parameters;
use super::update::{classify_update, UpdateFault};
use netgauze_bgp_pkt::notification::BgpNotificationMessage;
use netgauze_bgp_pkt::open::BgpOpenMessage;
use netgauze_bgp_pkt::wire::deserializer::path_attribute::PathAttributeParsingError;
use netgauze_bgp_pkt::wire::deserializer::{BgpMessageParsingError, BgpParsingContext};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;

/// A received, decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// OPEN.
    Open(BgpOpenMessage),
    /// UPDATE, with the number of attribute errors ignored under RFC 7606.
    Update {
        /// Attribute errors that were treat-as-withdraw / attribute-discard.
        ignored_errors: usize,
    },
    /// NOTIFICATION (decoded here, so unknown codes are still reported faithfully).
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH for this AFI/SAFI.
    RouteRefresh {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u8,
    },
}

impl Message {
    /// Message type name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "open",
            Message::Update { .. } => "update",
            Message::Notification(_) => "notification",
            Message::Keepalive => "keepalive",
            Message::RouteRefresh { .. } => "route_refresh",
        }
    }
}

/// Decode one complete frame (as produced by [`BgpFraming`]).
pub fn decode(frame: &[u8], ctx: &mut BgpParsingContext) -> Result<Message, DecodeError> {
    let len = BgpFraming::check_header(frame)?;
    if frame.len() != len {
        return Err(DecodeError::new(
            ErrorKind::Header,
            Notification::header_error(
                HeaderErrorSubcode::BadMessageLength,
                (len as u16).to_be_bytes().to_vec(),
            ),
            format!("frame of {} bytes declares length {len}", frame.len()),
        ));
    }
    let ty = frame.get(18).copied().unwrap_or(0);
    let msg_type = MessageType::from_u8(ty);
    let body = frame.get(HEADER_LEN..).unwrap_or(&[]);
    match msg_type {
        Some(MessageType::Notification) => {
            let (Some(&code), Some(&subcode)) = (body.first(), body.get(1)) else {
                return Err(DecodeError::new(
                    ErrorKind::Header,
                    Notification::header_error(
                        HeaderErrorSubcode::BadMessageLength,
                        (len as u16).to_be_bytes().to_vec(),
                    ),
                    "NOTIFICATION too short",
                ));
            };
            return Ok(Message::Notification(Notification::new(
                code,
                subcode,
                body.get(2..).unwrap_or(&[]).to_vec(),
            )));
        }
        Some(MessageType::RouteRefresh) => {
            // RFC 2918 / 7313: AFI(2) reserved/subtype(1) SAFI(1); any other length is 7/1.
            let &[afi_hi, afi_lo, _subtype, safi] = body else {
                return Err(DecodeError::new(
                    ErrorKind::RouteRefresh,
                    Notification::route_refresh_error(
                        RouteRefreshErrorSubcode::InvalidMessageLength,
                        frame.to_vec(),
                    ),
                    format!("ROUTE-REFRESH of length {len}, expected 23"),
                ));
            };
            let afi = u16::from_be_bytes([afi_hi, afi_lo]);
            return Ok(Message::RouteRefresh { afi, safi });
        }
        Some(MessageType::Open) => check_open_parameters(body)?,
        _ => {}
    }
    let mut reader = SliceReader::new(frame);
    match BgpMessage::parse(&mut reader, ctx) {
        Ok(BgpMessage::Open(o)) => {
            ctx.reset_parsing_errors();
            Ok(Message::Open(o))
        }
        Ok(BgpMessage::Update(_)) => {
            let ignored = ctx.reset_parsing_errors();
            // RFC 7606 §3 (j)/§7.11: malformed MP_REACH / MP_UNREACH lose the NLRI: reset.
            for e in ignored.path_attr_errors() {
                if matches!(
                    e,
                    PathAttributeParsingError::MpReachErrorError(_)
                        | PathAttributeParsingError::MpUnreachErrorError(_)
                ) {
                    // RFC 4271 §6.3: a recognised optional attribute with a bad value is an
                    // Optional Attribute Error.
                    return Err(DecodeError::new(
                        ErrorKind::Update,
                        Notification::update_error(
                            UpdateErrorSubcode::OptionalAttributeError,
                            vec![],
                        ),
                        format!("malformed UPDATE: {e}"),
                    ));
                }
            }
            Ok(Message::Update {
                ignored_errors: ignored.path_attr_errors().len()
                    + ignored.non_unicast_update_nlri().len()
                    + ignored.non_unicast_withdraw_nlri().len(),
            })
        }
        Ok(BgpMessage::KeepAlive) => Ok(Message::Keepalive),
        Ok(BgpMessage::Notification(n)) => {
            Ok(Message::Notification(Notification::from_netgauze(&n)))
        }
        Ok(BgpMessage::RouteRefresh(_)) => Err(DecodeError::new(
            ErrorKind::RouteRefresh,
            Notification::route_refresh_error(
                RouteRefreshErrorSubcode::InvalidMessageLength,
                vec![],
            ),
            "unexpected ROUTE-REFRESH form",
        )),
        Err(e) if msg_type == Some(MessageType::Update) => {
            ctx.reset_parsing_errors();
            let detail = format!("malformed UPDATE: {e}");
            let n = match classify_update(body, ctx.asn4()) {
                UpdateFault::Framing => {
                    Notification::update_error(UpdateErrorSubcode::MalformedAttributeList, vec![])
                }
                UpdateFault::MpAttribute => {
                    Notification::update_error(UpdateErrorSubcode::OptionalAttributeError, vec![])
                }
                UpdateFault::Nlri => {
                    Notification::update_error(UpdateErrorSubcode::InvalidNetworkField, vec![])
                }
                // RFC 7606 treat-as-withdraw: a well-framed attribute with a bad value.
                UpdateFault::OtherAttribute => return Ok(Message::Update { ignored_errors: 1 }),
            };
            Err(DecodeError::new(ErrorKind::Update, n, detail))
        }
        Err(e) => {
            ctx.reset_parsing_errors();
            let kind = match &e {
                BgpMessageParsingError::BgpOpenMessageParsingError(_) => ErrorKind::Open,
                BgpMessageParsingError::BgpUpdateMessageParsingError(_) => ErrorKind::Update,
                BgpMessageParsingError::BgpRouteRefreshMessageParsingError(_) => {
                    ErrorKind::RouteRefresh
                }
                _ if msg_type == Some(MessageType::Open) => ErrorKind::Open,
                _ if msg_type == Some(MessageType::Update) => ErrorKind::Update,
                _ => ErrorKind::Header,
            };
            let detail = e.to_string();
            let mut n = Notification::from_netgauze(&BgpNotificationMessage::from(e));
            // RFC 4271 §6.2: the data of an unsupported-version error is the largest locally
            // supported version number (2 octets).
            let unsupported_version =
                Notification::open_error(OpenErrorSubcode::UnsupportedVersionNumber, vec![]);
            if (n.code, n.subcode) == (unsupported_version.code, unsupported_version.subcode) {
                n.data = vec![0, BGP_VERSION];
            }
            // A trailing-bytes/length inconsistency inside an UPDATE is a malformed attribute
            // list (RFC 4271 §6.3), not a header error.
            if msg_type == Some(MessageType::Update) && n.is(ErrorCode::MessageHeader) {
                n = Notification::update_error(UpdateErrorSubcode::MalformedAttributeList, vec![]);
            }
            let kind = if msg_type == Some(MessageType::Update) {
                ErrorKind::Update
            } else {
                kind
            };
            Err(DecodeError::new(kind, n, detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::config::Family;
    use crate::bgp::packet::consts::AS_TRANS;
    use crate::bgp::packet::framing::encode;
    use crate::bgp::packet::open::{build_open, check_open, LocalOpen};
    use crate::bgp::packet::test_support::*;

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

    /// An OPEN body from AS 65002 with the given optional parameters.
    fn open_body(params: &[u8]) -> Vec<u8> {
        let mut b = vec![4];
        b.extend_from_slice(&65002u16.to_be_bytes());
        b.extend_from_slice(&30u16.to_be_bytes());
        b.extend_from_slice(&[192, 0, 2, 2]);
        b.push(params.len() as u8);
        b.extend_from_slice(params);
        b
    }

    fn open_frame(params: &[u8]) -> Vec<u8> {
        let body = open_body(params);
        let mut f = hdr(19 + body.len() as u16, 1);
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn notifications_map_both_ways() {
        // Every (code, subcode) pair of the netgauze mapping tables in `notification.rs`,
        // which are keyed by the wire numbers of RFC 4271 §4.5 and its updates.
        let mut pairs = vec![(4, 0), (7, 1)];
        pairs.extend([0, 1, 2, 3].map(|s| (1, s)));
        pairs.extend([0, 1, 2, 3, 4, 6, 7, 11].map(|s| (2, s)));
        pairs.extend([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11].map(|s| (3, s)));
        pairs.extend([0, 1, 2, 3].map(|s| (5, s)));
        pairs.extend((1..=10).map(|s| (6, s)));
        for (c, s) in pairs {
            let n = Notification::new(c, s, vec![1, 2]);
            assert_eq!(Notification::from_netgauze(&n.to_netgauze()), n);
            let bytes = encode(&BgpMessage::Notification(n.to_netgauze())).unwrap();
            assert_eq!(
                decode(&bytes, &mut ctx()).unwrap(),
                Message::Notification(n)
            );
        }
        let n = Notification::admin_shutdown("maintenance ✓");
        assert_eq!(n.shutdown_message().as_deref(), Some("maintenance ✓"));
        let long = "é".repeat(200);
        let n = Notification::admin_shutdown(&long);
        assert!(n.data.len() <= 256);
        assert_eq!(usize::from(n.data[0]) + 1, n.data.len());
    }
    #[test]
    fn open_capability_overrunning_its_parameter_is_open_error_unspecific() {
        // Capabilities parameter of 6 bytes: route refresh (2, 0), then 4-octet AS (65) whose
        // length 4 overruns the 2 bytes left.
        let overrun = [2, 6, 2, 0, 65, 4, 0, 0];
        // The same capability framed right, followed by more parameters.
        let right = [2, 8, 2, 0, 65, 4, 0, 0, 0xfe, 0x02];
        let e = decode(&open_frame(&overrun), &mut ctx()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Open);
        assert_eq!(e.notification, Notification::new(2, 0, vec![]));
        assert!(
            e.detail.contains("capability 65 of length 4 overruns"),
            "{e}"
        );
        assert!(matches!(
            decode(&open_frame(&right), &mut ctx()),
            Ok(Message::Open(_))
        ));
        // A capability header cut after its code octet.
        let e = decode(&open_frame(&[2, 3, 2, 0, 65]), &mut ctx()).unwrap_err();
        assert_eq!(e.notification, Notification::new(2, 0, vec![]));
        // An empty Capabilities parameter is well-formed.
        assert!(decode(&open_frame(&[2, 0]), &mut ctx()).is_ok());
    }

    #[test]
    fn open_round_trip_and_checks() {
        let m = build_open(&local_open());
        let bytes = encode(&m).unwrap();
        let Message::Open(o) = decode(&bytes, &mut ctx()).unwrap() else {
            panic!("not an open")
        };
        assert_eq!(o.my_as(), AS_TRANS);
        assert_eq!(o.my_asn4(), 4_200_000_001);
        let p = check_open(
            &o,
            4_200_000_001,
            "192.0.2.99".parse().unwrap(),
            false,
            &[Family::Ipv6],
        )
        .unwrap();
        assert_eq!(p.families, vec![Family::Ipv6]);
        assert!(p.asn4 && p.route_refresh);
        let e = check_open(
            &o,
            65000,
            "192.0.2.99".parse().unwrap(),
            false,
            &[Family::Ipv4],
        )
        .unwrap_err();
        assert_eq!(
            e.notification,
            Notification::new(2, 2, AS_TRANS.to_be_bytes().to_vec())
        );
        // Same identifier on iBGP is rejected, on eBGP allowed (RFC 6286).
        let e = check_open(
            &o,
            4_200_000_001,
            "192.0.2.10".parse().unwrap(),
            true,
            &[Family::Ipv4],
        )
        .unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (2, 3));
        assert!(check_open(
            &o,
            4_200_000_001,
            "192.0.2.10".parse().unwrap(),
            false,
            &[Family::Ipv4]
        )
        .is_ok());
    }

    #[test]
    fn open_without_common_family_is_unsupported_capability() {
        let mut l = local_open();
        l.families = vec![Family::Ipv6];
        let bytes = encode(&build_open(&l)).unwrap();
        let Message::Open(o) = decode(&bytes, &mut ctx()).unwrap() else {
            panic!()
        };
        let e = check_open(
            &o,
            l.local_as,
            "192.0.2.1".parse().unwrap(),
            false,
            &[Family::Ipv4],
        )
        .unwrap_err();
        assert_eq!(
            e.notification,
            Notification::new(2, 7, vec![1, 4, 0, 1, 0, 1])
        );
    }

    #[test]
    fn bad_version_and_hold_time() {
        let mut bytes = encode(&build_open(&local_open())).unwrap();
        bytes[19] = 3;
        let e = decode(&bytes, &mut ctx()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Open);
        assert_eq!(e.notification, Notification::new(2, 1, vec![0, 4]));
        let mut bytes = encode(&build_open(&local_open())).unwrap();
        bytes[22] = 0;
        bytes[23] = 2;
        let e = decode(&bytes, &mut ctx()).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (2, 6));
    }
    #[test]
    fn malformed_update_mapping() {
        // Attribute length overruns the attribute list: Malformed Attribute List.
        let mut b = hdr(0, 2);
        b.extend_from_slice(&[0, 0, 0, 4, 0x40, 1, 5, 0]);
        let l = b.len() as u16;
        b[16..18].copy_from_slice(&l.to_be_bytes());
        let e = decode(&b, &mut ctx()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Update);
        assert_eq!((e.notification.code, e.notification.subcode), (3, 1));
        // Bad ORIGIN value: treat-as-withdraw, counted.
        let mut b = hdr(0, 2);
        b.extend_from_slice(&[0, 0, 0, 4, 0x40, 1, 1, 7]);
        let l = b.len() as u16;
        b[16..18].copy_from_slice(&l.to_be_bytes());
        assert_eq!(
            decode(&b, &mut ctx()).unwrap(),
            Message::Update { ignored_errors: 1 }
        );
        // Route refresh with a bad length.
        let mut b = hdr(24, 5);
        b.extend_from_slice(&[0, 1, 0, 1, 0]);
        let e = decode(&b, &mut ctx()).unwrap_err();
        assert_eq!(
            (e.kind, e.notification.code, e.notification.subcode),
            (ErrorKind::RouteRefresh, 7, 1)
        );
        let mut b = hdr(23, 5);
        b.extend_from_slice(&[0, 2, 0, 1]);
        assert_eq!(
            decode(&b, &mut ctx()).unwrap(),
            Message::RouteRefresh { afi: 2, safi: 1 }
        );
    }
}
