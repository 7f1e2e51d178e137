//! The NOTIFICATION message (RFC 4271 §4.5): its code, subcode and data, constructors named
//! after the errors it reports, the RFC 9003 shutdown communication, a readable description for
//! logs and metrics, and the mapping to and from netgauze's typed form used for sending.

use super::consts::{
    CeaseSubcode, ErrorCode, FsmErrorSubcode, HeaderErrorSubcode, OpenErrorSubcode,
    RouteRefreshErrorSubcode, UpdateErrorSubcode, HEADER_LEN, MAX_MESSAGE_LEN,
};
use netgauze_bgp_pkt::notification::{
    BgpNotificationMessage, CeaseError, FiniteStateMachineError, HoldTimerExpiredError,
    MessageHeaderError, OpenMessageError, RouteRefreshError, UpdateMessageError,
};

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
