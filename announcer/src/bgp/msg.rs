//! BGP messages on the wire, on top of `netgauze-bgp-pkt`.
//!
//! - [`BgpFraming`]: a tokio-util codec that validates the 19-byte header itself (marker,
//!   length 19..=4096, type, per-type minimum length) *before* handing a complete frame to
//!   netgauze. netgauze's own codec waits forever for a frame whose length field exceeds 4096
//!   and checks the marker only after buffering the claimed length, so it is not used for
//!   reading; it is used through [`encode`] for writing.
//! - [`decode`]: frame → [`Message`]; every failure is a [`DecodeError`] carrying the
//!   NOTIFICATION to send (RFC 4271 §6, RFC 7606 for UPDATE attributes: errors in optional or
//!   well-known attribute *contents* are treat-as-withdraw, which for a speaker that ignores
//!   received routes means "count and ignore"; errors that lose the NLRI framing, and malformed
//!   MP_REACH/MP_UNREACH, reset the session).
//! - OPEN building and checking, UPDATE building with NLRI packing under 4096 bytes.

use super::config::Family;
use super::consts::{
    AttrType, CapabilityCode, CeaseSubcode, ErrorCode, FsmErrorSubcode, HeaderErrorSubcode,
    MessageType, OpenErrorSubcode, OpenParamType, RouteRefreshErrorSubcode, UpdateErrorSubcode,
    ATTR_FLAG_EXTENDED_LENGTH, BGP_VERSION,
};
use super::fsm::{Event, OpenParams};
use super::rib::{Origin, RouteAttrs};
use bytes::{Buf, BytesMut};
use ipnet::IpNet;
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartAddressFamily, GracefulRestartCapability,
    MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::community::{Community, LargeCommunity};
use netgauze_bgp_pkt::nlri::{Ipv4Unicast, Ipv4UnicastAddress, Ipv6Unicast, Ipv6UnicastAddress};
use netgauze_bgp_pkt::notification::{
    BgpNotificationMessage, CeaseError, FiniteStateMachineError, HoldTimerExpiredError,
    MessageHeaderError, OpenMessageError, RouteRefreshError, UpdateMessageError,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::path_attribute::{
    As2PathSegment, As4Path, As4PathSegment, AsPath, AsPathSegmentType, Communities,
    LargeCommunities, LocalPreference, MpReach, MpUnreach, MultiExitDiscriminator, NextHop,
    Origin as NgOrigin, PathAttribute, PathAttributeValue,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::wire::deserializer::path_attribute::PathAttributeParsingError;
use netgauze_bgp_pkt::wire::deserializer::{BgpMessageParsingError, BgpParsingContext};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use netgauze_parse_utils::WritablePdu;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Header length.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// AS_TRANS (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// A NOTIFICATION: error code, subcode and data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code (RFC 4271 §4.5).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data field.
    pub data: Vec<u8>,
}

impl Notification {
    /// A NOTIFICATION with these values.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A NOTIFICATION with a named code and a raw subcode.
    fn with(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Self {
        Notification::new(code.into(), subcode, data)
    }

    /// Message Header Error with this subcode and data.
    pub fn header_error(sub: HeaderErrorSubcode, data: Vec<u8>) -> Self {
        Notification::with(ErrorCode::MessageHeader, sub.into(), data)
    }

    /// OPEN Message Error with this subcode and data.
    pub fn open_error(sub: OpenErrorSubcode, data: Vec<u8>) -> Self {
        Notification::with(ErrorCode::OpenMessage, sub.into(), data)
    }

    /// UPDATE Message Error with this subcode and data.
    pub fn update_error(sub: UpdateErrorSubcode, data: Vec<u8>) -> Self {
        Notification::with(ErrorCode::UpdateMessage, sub.into(), data)
    }

    /// Hold Timer Expired (no subcode, no data).
    pub fn hold_timer_expired() -> Self {
        Notification::with(ErrorCode::HoldTimerExpired, 0, vec![])
    }

    /// Finite State Machine Error with this subcode (RFC 6608), no data.
    pub fn fsm_error(sub: FsmErrorSubcode) -> Self {
        Notification::with(ErrorCode::FiniteStateMachine, sub.into(), vec![])
    }

    /// Cease with this subcode and no data.
    pub fn cease(sub: CeaseSubcode) -> Self {
        Notification::with(ErrorCode::Cease, sub.into(), vec![])
    }

    /// ROUTE-REFRESH Message Error with this subcode and data (RFC 7313).
    pub fn route_refresh_error(sub: RouteRefreshErrorSubcode, data: Vec<u8>) -> Self {
        Notification::with(ErrorCode::RouteRefreshMessage, sub.into(), data)
    }

    /// Whether this is the given code (any subcode).
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == u8::from(code)
    }

    /// Cease / Administrative Shutdown with an RFC 9003 shutdown communication (UTF-8, at most
    /// 255 bytes; longer messages are cut at a character boundary).
    pub fn admin_shutdown(message: &str) -> Self {
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification::with(
            ErrorCode::Cease,
            CeaseSubcode::AdministrativeShutdown.into(),
            data,
        )
    }

    /// RFC 9003 shutdown communication, when this is a Cease/Administrative Shutdown or Reset
    /// carrying one.
    pub fn shutdown_message(&self) -> Option<String> {
        let shutdown = [
            u8::from(CeaseSubcode::AdministrativeShutdown),
            u8::from(CeaseSubcode::AdministrativeReset),
        ];
        if !self.is(ErrorCode::Cease) || !shutdown.contains(&self.subcode) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let msg = rest.get(..usize::from(len))?;
        Some(String::from_utf8_lossy(msg).into_owned())
    }

    /// Human-readable name of the code/subcode.
    pub fn describe(&self) -> String {
        let code = ErrorCode::from_u8(self.code).map_or("unknown error code", ErrorCode::name);
        match self.shutdown_message() {
            Some(m) => format!("{code} ({}/{}): {m:?}", self.code, self.subcode),
            None => format!("{code} ({}/{})", self.code, self.subcode),
        }
    }

    /// The netgauze message for sending (unknown code/subcode pairs map to the code's
    /// "unspecific" subcode).
    pub fn to_netgauze(&self) -> BgpNotificationMessage {
        use BgpNotificationMessage as N;
        // Keep the whole message within 4096 bytes (header 19 + code + subcode).
        let keep = self.data.len().min(MAX_MESSAGE_LEN - HEADER_LEN - 2);
        let value: Box<[u8]> = self.data.get(..keep).unwrap_or(&[]).into();
        match (self.code, self.subcode) {
            (1, 1) => {
                N::MessageHeaderError(MessageHeaderError::ConnectionNotSynchronized { value })
            }
            (1, 2) => N::MessageHeaderError(MessageHeaderError::BadMessageLength { value }),
            (1, 3) => N::MessageHeaderError(MessageHeaderError::BadMessageType { value }),
            (1, _) => N::MessageHeaderError(MessageHeaderError::Unspecific { value }),
            (2, 1) => N::OpenMessageError(OpenMessageError::UnsupportedVersionNumber { value }),
            (2, 2) => N::OpenMessageError(OpenMessageError::BadPeerAs { value }),
            (2, 3) => N::OpenMessageError(OpenMessageError::BadBgpIdentifier { value }),
            (2, 4) => N::OpenMessageError(OpenMessageError::UnsupportedOptionalParameter { value }),
            (2, 6) => N::OpenMessageError(OpenMessageError::UnacceptableHoldTime { value }),
            (2, 7) => N::OpenMessageError(OpenMessageError::UnsupportedCapability { value }),
            (2, 11) => N::OpenMessageError(OpenMessageError::RoleMismatch { value }),
            (2, _) => N::OpenMessageError(OpenMessageError::Unspecific { value }),
            (3, 1) => N::UpdateMessageError(UpdateMessageError::MalformedAttributeList { value }),
            (3, 2) => {
                N::UpdateMessageError(UpdateMessageError::UnrecognizedWellKnownAttribute { value })
            }
            (3, 3) => {
                N::UpdateMessageError(UpdateMessageError::MissingWellKnownAttribute { value })
            }
            (3, 4) => N::UpdateMessageError(UpdateMessageError::AttributeFlagsError { value }),
            (3, 5) => N::UpdateMessageError(UpdateMessageError::AttributeLengthError { value }),
            (3, 6) => N::UpdateMessageError(UpdateMessageError::InvalidOriginAttribute { value }),
            (3, 8) => N::UpdateMessageError(UpdateMessageError::InvalidNextHopAttribute { value }),
            (3, 9) => N::UpdateMessageError(UpdateMessageError::OptionalAttributeError { value }),
            (3, 10) => N::UpdateMessageError(UpdateMessageError::InvalidNetworkField { value }),
            (3, 11) => N::UpdateMessageError(UpdateMessageError::MalformedAsPath { value }),
            (3, _) => N::UpdateMessageError(UpdateMessageError::Unspecific { value }),
            (4, sub_code) => {
                N::HoldTimerExpiredError(HoldTimerExpiredError::Unspecific { sub_code, value })
            }
            (5, 1) => N::FiniteStateMachineError(
                FiniteStateMachineError::ReceiveUnexpectedMessageInOpenSentState { value },
            ),
            (5, 2) => N::FiniteStateMachineError(
                FiniteStateMachineError::ReceiveUnexpectedMessageInOpenConfirmState { value },
            ),
            (5, 3) => N::FiniteStateMachineError(
                FiniteStateMachineError::ReceiveUnexpectedMessageInEstablishedState { value },
            ),
            (5, _) => N::FiniteStateMachineError(FiniteStateMachineError::Unspecific { value }),
            (6, 1) => N::CeaseError(CeaseError::MaximumNumberOfPrefixesReached { value }),
            (6, 3) => N::CeaseError(CeaseError::PeerDeConfigured { value }),
            (6, 4) => N::CeaseError(CeaseError::AdministrativeReset { value }),
            (6, 5) => N::CeaseError(CeaseError::ConnectionRejected { value }),
            (6, 6) => N::CeaseError(CeaseError::OtherConfigurationChange { value }),
            (6, 7) => N::CeaseError(CeaseError::ConnectionCollisionResolution { value }),
            (6, 8) => N::CeaseError(CeaseError::OutOfResources { value }),
            (6, 9) => N::CeaseError(CeaseError::HardReset { value }),
            (6, 10) => N::CeaseError(CeaseError::BfdDown { value }),
            (7, _) => N::RouteRefreshError(RouteRefreshError::InvalidMessageLength { value }),
            // Cease / Administrative Shutdown and anything unknown.
            _ => N::CeaseError(CeaseError::AdministrativeShutdown { value }),
        }
    }

    /// From a netgauze NOTIFICATION (used to map netgauze's parse errors).
    pub fn from_netgauze(n: &BgpNotificationMessage) -> Self {
        use BgpNotificationMessage as N;
        let (code, sub, v): (u8, u8, &[u8]) = match n {
            N::MessageHeaderError(e) => match e {
                MessageHeaderError::Unspecific { value } => (1, 0, value),
                MessageHeaderError::ConnectionNotSynchronized { value } => (1, 1, value),
                MessageHeaderError::BadMessageLength { value } => (1, 2, value),
                MessageHeaderError::BadMessageType { value } => (1, 3, value),
            },
            N::OpenMessageError(e) => match e {
                OpenMessageError::Unspecific { value } => (2, 0, value),
                OpenMessageError::UnsupportedVersionNumber { value } => (2, 1, value),
                OpenMessageError::BadPeerAs { value } => (2, 2, value),
                OpenMessageError::BadBgpIdentifier { value } => (2, 3, value),
                OpenMessageError::UnsupportedOptionalParameter { value } => (2, 4, value),
                OpenMessageError::UnacceptableHoldTime { value } => (2, 6, value),
                OpenMessageError::UnsupportedCapability { value } => (2, 7, value),
                OpenMessageError::RoleMismatch { value } => (2, 11, value),
            },
            N::UpdateMessageError(e) => match e {
                UpdateMessageError::Unspecific { value } => (3, 0, value),
                UpdateMessageError::MalformedAttributeList { value } => (3, 1, value),
                UpdateMessageError::UnrecognizedWellKnownAttribute { value } => (3, 2, value),
                UpdateMessageError::MissingWellKnownAttribute { value } => (3, 3, value),
                UpdateMessageError::AttributeFlagsError { value } => (3, 4, value),
                UpdateMessageError::AttributeLengthError { value } => (3, 5, value),
                UpdateMessageError::InvalidOriginAttribute { value } => (3, 6, value),
                UpdateMessageError::InvalidNextHopAttribute { value } => (3, 8, value),
                UpdateMessageError::OptionalAttributeError { value } => (3, 9, value),
                UpdateMessageError::InvalidNetworkField { value } => (3, 10, value),
                UpdateMessageError::MalformedAsPath { value } => (3, 11, value),
            },
            N::HoldTimerExpiredError(HoldTimerExpiredError::Unspecific { sub_code, value }) => {
                (4, *sub_code, value)
            }
            N::FiniteStateMachineError(e) => match e {
                FiniteStateMachineError::Unspecific { value } => (5, 0, value),
                FiniteStateMachineError::ReceiveUnexpectedMessageInOpenSentState { value } => {
                    (5, 1, value)
                }
                FiniteStateMachineError::ReceiveUnexpectedMessageInOpenConfirmState { value } => {
                    (5, 2, value)
                }
                FiniteStateMachineError::ReceiveUnexpectedMessageInEstablishedState { value } => {
                    (5, 3, value)
                }
            },
            N::CeaseError(e) => match e {
                CeaseError::MaximumNumberOfPrefixesReached { value } => (6, 1, value),
                CeaseError::AdministrativeShutdown { value } => (6, 2, value),
                CeaseError::PeerDeConfigured { value } => (6, 3, value),
                CeaseError::AdministrativeReset { value } => (6, 4, value),
                CeaseError::ConnectionRejected { value } => (6, 5, value),
                CeaseError::OtherConfigurationChange { value } => (6, 6, value),
                CeaseError::ConnectionCollisionResolution { value } => (6, 7, value),
                CeaseError::OutOfResources { value } => (6, 8, value),
                CeaseError::HardReset { value } => (6, 9, value),
                CeaseError::BfdDown { value } => (6, 10, value),
            },
            N::RouteRefreshError(RouteRefreshError::InvalidMessageLength { value }) => {
                (7, 1, value)
            }
        };
        Notification::new(code, sub, v.to_vec())
    }
}

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

/// Which RFC 4271 event a decoding failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Message header (event 21).
    Header,
    /// OPEN (event 22).
    Open,
    /// UPDATE (event 28).
    Update,
    /// ROUTE-REFRESH (RFC 7313).
    RouteRefresh,
}

/// A message that cannot be accepted, with the NOTIFICATION it calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} (sending {})", notification.describe())]
pub struct DecodeError {
    /// Where the problem is.
    pub kind: ErrorKind,
    /// What to send.
    pub notification: Notification,
    /// What was wrong, for logs.
    pub detail: String,
}

impl DecodeError {
    fn new(kind: ErrorKind, n: Notification, detail: impl Into<String>) -> Self {
        DecodeError {
            kind,
            notification: n,
            detail: detail.into(),
        }
    }
}

impl From<DecodeError> for Event {
    fn from(e: DecodeError) -> Event {
        match e.kind {
            ErrorKind::Header => Event::BgpHeaderErr(e.notification),
            ErrorKind::Open => Event::BgpOpenMsgErr(e.notification),
            ErrorKind::Update => Event::UpdateMsgErr(e.notification),
            ErrorKind::RouteRefresh => Event::RouteRefreshMsgErr(e.notification),
        }
    }
}

/// Framing codec: splits the byte stream into complete, header-checked frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct BgpFraming;

impl BgpFraming {
    /// Check the header at the start of `buf` (needs ≥ 19 bytes); returns the message length.
    pub fn check_header(hdr: &[u8]) -> Result<usize, DecodeError> {
        let (Some(marker), Some(len), Some(&ty)) = (hdr.get(..16), hdr.get(16..18), hdr.get(18))
        else {
            return Err(DecodeError::new(
                ErrorKind::Header,
                Notification::header_error(HeaderErrorSubcode::Unspecific, vec![]),
                "truncated header",
            ));
        };
        if marker.iter().any(|&b| b != 0xff) {
            return Err(DecodeError::new(
                ErrorKind::Header,
                Notification::header_error(HeaderErrorSubcode::ConnectionNotSynchronized, vec![]),
                "marker is not all ones",
            ));
        }
        let length = u16::from_be_bytes([len[0], len[1]]);
        let bad_len = |what: &str| {
            Err(DecodeError::new(
                ErrorKind::Header,
                Notification::header_error(
                    HeaderErrorSubcode::BadMessageLength,
                    length.to_be_bytes().to_vec(),
                ),
                format!("bad message length {length}{what}"),
            ))
        };
        let l = usize::from(length);
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&l) {
            return bad_len("");
        }
        let ok = match MessageType::from_u8(ty) {
            Some(MessageType::Open) => l >= 29,
            Some(MessageType::Update) => l >= 23,
            Some(MessageType::Notification) => l >= 21,
            Some(MessageType::Keepalive) => l == 19,
            // Checked by decode with RFC 7313 semantics.
            Some(MessageType::RouteRefresh) => true,
            None => {
                return Err(DecodeError::new(
                    ErrorKind::Header,
                    Notification::header_error(HeaderErrorSubcode::BadMessageType, vec![ty]),
                    format!("bad message type {ty}"),
                ))
            }
        };
        if !ok {
            return bad_len(&format!(" for message type {ty}"));
        }
        Ok(l)
    }
}

/// Reading failed: the connection broke, or the peer sent a bad header.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// I/O error on the socket.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// Bad message header.
    #[error("{0}")]
    Bad(#[from] DecodeError),
}

impl FramingError {
    /// The header error, if that is what this is.
    pub fn decode_error(&self) -> Option<&DecodeError> {
        match self {
            FramingError::Bad(d) => Some(d),
            FramingError::Io(_) => None,
        }
    }
}

impl tokio_util::codec::Decoder for BgpFraming {
    type Item = BytesMut;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        let Some(hdr) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = Self::check_header(hdr)?;
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        Ok(Some(buf.split_to(len)))
    }
}

/// Parsing context for a session: `asn4` when both sides advertised 4-octet AS numbers.
pub fn parsing_context(asn4: bool) -> BgpParsingContext {
    // Lenient on non-unicast NLRI and malformed capabilities (ignored), and on path attribute
    // contents (RFC 7606 treat-as-withdraw: collected, counted, ignored).
    BgpParsingContext::new(
        asn4,
        HashMap::new(),
        HashMap::new(),
        false,
        false,
        false,
        false,
    )
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

/// The framing of an OPEN's optional parameters and of the capabilities inside each
/// Capabilities parameter: every length must stay inside what contains it.
///
/// The parser skips a capability it cannot read (RFC 5492: unknown capabilities are ignored), and
/// after one whose length overruns its parameter it would read the following bytes as
/// capabilities of their own. A malformed recognised optional parameter is an OPEN Message Error
/// with subcode 0, Unspecific (RFC 4271 §6.2). Shorter bodies, a parameter list longer than the
/// body, and the extended parameter format of RFC 9072 are left to the parser, which answers
/// them already.
fn check_open_parameters(body: &[u8]) -> Result<(), DecodeError> {
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

/// Where an UPDATE that failed to parse is broken (RFC 7606 §3–§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateFault {
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
fn classify_update(body: &[u8], asn4: bool) -> UpdateFault {
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

/// Encode a NOTIFICATION message.
pub fn encode_notification(n: &Notification) -> Result<Vec<u8>, String> {
    encode(&BgpMessage::Notification(n.to_netgauze()))
}

/// Encode one message.
pub fn encode(msg: &BgpMessage) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(msg.len());
    msg.write(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn address_type(f: Family) -> AddressType {
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
            .map(|f| GracefulRestartAddressFamily::new(false, address_type(*f)))
            .collect();
        caps.push(BgpCapability::GracefulRestartCapability(
            GracefulRestartCapability::new(false, false, t.min(4095), afs),
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
}

impl PeerOpen {
    /// FSM input for this OPEN.
    pub fn params(&self) -> OpenParams {
        OpenParams {
            peer_hold_time: self.hold_time,
        }
    }
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
    Ok(PeerOpen {
        asn,
        hold_time: h,
        bgp_id: id,
        asn4,
        families,
        route_refresh,
    })
}

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

fn attr(
    optional: bool,
    transitive: bool,
    value_len: usize,
    v: PathAttributeValue,
) -> Result<PathAttribute, String> {
    PathAttribute::from(optional, transitive, false, value_len > 255, v)
        .map_err(|(v, e)| format!("cannot build path attribute {v:?}: {e:?}"))
}

fn as_segments(path: &[u32]) -> Vec<Vec<u32>> {
    path.chunks(255).map(|c| c.to_vec()).collect()
}

/// Path attributes (without MP_REACH and NEXT_HOP) for one attribute set.
fn common_attrs(ctx: &UpdateCtx, a: &RouteAttrs) -> Result<Vec<PathAttribute>, String> {
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

fn mp_reach_v6(nh: (Ipv6Addr, Option<Ipv6Addr>), ps: &[IpNet]) -> Result<PathAttribute, String> {
    let v = PathAttributeValue::MpReach(MpReach::Ipv6Unicast {
        next_hop_global: nh.0,
        next_hop_local: nh.1,
        nlri: v6_nlri(ps).into(),
    });
    PathAttribute::from(true, false, false, true, v)
        .map_err(|(v, e)| format!("cannot build MP_REACH {v:?}: {e:?}"))
}

fn mp_unreach_v6(ps: &[IpNet]) -> Result<PathAttribute, String> {
    let v = PathAttributeValue::MpUnreach(MpUnreach::Ipv6Unicast {
        nlri: v6_nlri(ps).into(),
    });
    PathAttribute::from(true, false, false, true, v)
        .map_err(|(v, e)| format!("cannot build MP_UNREACH {v:?}: {e:?}"))
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
) -> Result<Vec<BgpMessage>, String> {
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
pub fn end_of_rib(f: Family) -> Result<BgpMessage, String> {
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

/// Drop `n` bytes from the front of a buffer (helper for tests and the session).
pub fn advance(buf: &mut BytesMut, n: usize) {
    buf.advance(n.min(buf.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::Decoder;

    fn hdr(len: u16, ty: u8) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(ty);
        v
    }

    fn ctx() -> BgpParsingContext {
        parsing_context(true)
    }

    fn local_open() -> LocalOpen {
        LocalOpen {
            local_as: 4_200_000_001,
            router_id: "192.0.2.10".parse().unwrap(),
            hold_time: 90,
            families: vec![Family::Ipv4, Family::Ipv6],
            graceful_restart: Some(120),
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
    fn framing_checks_header_before_buffering() {
        let mut f = BgpFraming;
        let mut b = BytesMut::from(&hdr(19, 4)[..18]);
        assert_eq!(f.decode(&mut b).unwrap(), None);
        let mut bad = hdr(19, 4);
        bad[3] = 0;
        let mut err = |b: &[u8]| {
            f.decode(&mut BytesMut::from(b))
                .unwrap_err()
                .decode_error()
                .expect("header error")
                .notification
                .clone()
        };
        assert_eq!(err(&bad), Notification::new(1, 1, vec![]));
        assert_eq!(
            err(&hdr(5000, 2)),
            Notification::new(1, 2, 5000u16.to_be_bytes().to_vec())
        );
        assert_eq!(err(&hdr(18, 2)).subcode, 2);
        assert_eq!(err(&hdr(20, 4)).subcode, 2);
        assert_eq!(err(&hdr(19, 9)), Notification::new(1, 3, vec![9]));
        // Two keepalives in one buffer come out one by one.
        let mut two = BytesMut::from(&[hdr(19, 4), hdr(19, 4)].concat()[..]);
        assert!(f.decode(&mut two).unwrap().is_some());
        assert!(f.decode(&mut two).unwrap().is_some());
        assert!(f.decode(&mut two).unwrap().is_none());
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

    #[test]
    fn end_of_rib_markers() {
        for f in [Family::Ipv4, Family::Ipv6] {
            let BgpMessage::Update(u) = end_of_rib(f).unwrap() else {
                panic!()
            };
            assert_eq!(u.end_of_rib(), Some(address_type(f)));
        }
    }

    #[test]
    fn notifications_map_both_ways() {
        for (c, s) in [
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 1),
            (2, 2),
            (2, 3),
            (2, 4),
            (2, 6),
            (2, 7),
            (3, 1),
            (3, 11),
            (4, 0),
            (5, 1),
            (5, 2),
            (5, 3),
            (6, 2),
            (6, 4),
            (7, 1),
        ] {
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
