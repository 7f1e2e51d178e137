//! Named BGP protocol numbers: message types, NOTIFICATION error codes and subcodes, capability
//! codes and path attribute types, so that code building or checking messages says what it means
//! instead of carrying bare numbers.
//!
//! Values are from the IANA "Border Gateway Protocol (BGP) Parameters" and "Capability Codes"
//! registries; each group names the RFC that defines it.

/// Header length.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// AS_TRANS (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// BGP version spoken (RFC 4271).
pub const BGP_VERSION: u8 = 4;

/// Message types (RFC 4271 §4.1, RFC 2918).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// OPEN.
    Open = 1,
    /// UPDATE.
    Update = 2,
    /// NOTIFICATION.
    Notification = 3,
    /// KEEPALIVE.
    Keepalive = 4,
    /// ROUTE-REFRESH (RFC 2918).
    RouteRefresh = 5,
}

/// OPEN optional parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpenParamType {
    /// Capabilities (RFC 5492).
    Capabilities = 2,
}

/// Capability codes (RFC 5492 and the RFC named on each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CapabilityCode {
    /// Multiprotocol extensions (RFC 4760).
    MultiProtocol = 1,
    /// Route refresh (RFC 2918).
    RouteRefresh = 2,
    /// Graceful restart (RFC 4724).
    GracefulRestart = 64,
    /// 4-octet AS numbers (RFC 6793).
    FourOctetAs = 65,
}

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// Message Header Error.
    MessageHeader = 1,
    /// OPEN Message Error.
    OpenMessage = 2,
    /// UPDATE Message Error.
    UpdateMessage = 3,
    /// Hold Timer Expired.
    HoldTimerExpired = 4,
    /// Finite State Machine Error.
    FiniteStateMachine = 5,
    /// Cease.
    Cease = 6,
    /// ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefreshMessage = 7,
}

/// Message Header Error subcodes (RFC 4271 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HeaderErrorSubcode {
    /// Unspecific.
    Unspecific = 0,
    /// Connection Not Synchronized (bad marker).
    ConnectionNotSynchronized = 1,
    /// Bad Message Length.
    BadMessageLength = 2,
    /// Bad Message Type.
    BadMessageType = 3,
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpenErrorSubcode {
    /// Unspecific.
    Unspecific = 0,
    /// Unsupported Version Number.
    UnsupportedVersionNumber = 1,
    /// Bad Peer AS.
    BadPeerAs = 2,
    /// Bad BGP Identifier.
    BadBgpIdentifier = 3,
    /// Unsupported Optional Parameter.
    UnsupportedOptionalParameter = 4,
    /// Unacceptable Hold Time.
    UnacceptableHoldTime = 6,
    /// Unsupported Capability (RFC 5492).
    UnsupportedCapability = 7,
    /// Role Mismatch (RFC 9234).
    RoleMismatch = 11,
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateErrorSubcode {
    /// Unspecific.
    Unspecific = 0,
    /// Malformed Attribute List.
    MalformedAttributeList = 1,
    /// Unrecognized Well-known Attribute.
    UnrecognizedWellKnownAttribute = 2,
    /// Missing Well-known Attribute.
    MissingWellKnownAttribute = 3,
    /// Attribute Flags Error.
    AttributeFlagsError = 4,
    /// Attribute Length Error.
    AttributeLengthError = 5,
    /// Invalid ORIGIN Attribute.
    InvalidOriginAttribute = 6,
    /// Invalid NEXT_HOP Attribute.
    InvalidNextHopAttribute = 8,
    /// Optional Attribute Error.
    OptionalAttributeError = 9,
    /// Invalid Network Field.
    InvalidNetworkField = 10,
    /// Malformed AS_PATH.
    MalformedAsPath = 11,
}

/// Finite State Machine Error subcodes (RFC 6608).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FsmErrorSubcode {
    /// Unspecified.
    Unspecific = 0,
    /// Receive Unexpected Message in OpenSent State.
    UnexpectedMessageInOpenSent = 1,
    /// Receive Unexpected Message in OpenConfirm State.
    UnexpectedMessageInOpenConfirm = 2,
    /// Receive Unexpected Message in Established State.
    UnexpectedMessageInEstablished = 3,
}

/// Cease subcodes (RFC 4486, RFC 8203/9003, RFC 8538, RFC 9384).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CeaseSubcode {
    /// Maximum Number of Prefixes Reached.
    MaximumPrefixesReached = 1,
    /// Administrative Shutdown (may carry an RFC 9003 shutdown communication).
    AdministrativeShutdown = 2,
    /// Peer De-configured.
    PeerDeconfigured = 3,
    /// Administrative Reset (may carry an RFC 9003 shutdown communication).
    AdministrativeReset = 4,
    /// Connection Rejected.
    ConnectionRejected = 5,
    /// Other Configuration Change.
    OtherConfigurationChange = 6,
    /// Connection Collision Resolution.
    ConnectionCollisionResolution = 7,
    /// Out of Resources.
    OutOfResources = 8,
    /// Hard Reset (RFC 8538).
    HardReset = 9,
    /// BFD Down (RFC 9384).
    BfdDown = 10,
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RouteRefreshErrorSubcode {
    /// Invalid Message Length.
    InvalidMessageLength = 1,
}

/// Path attribute type codes used here (RFC 4271, RFC 1997, RFC 4760, RFC 4360, RFC 6793,
/// RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AttrType {
    /// ORIGIN.
    Origin = 1,
    /// AS_PATH.
    AsPath = 2,
    /// NEXT_HOP.
    NextHop = 3,
    /// MULTI_EXIT_DISC.
    Med = 4,
    /// LOCAL_PREF.
    LocalPref = 5,
    /// COMMUNITIES (RFC 1997).
    Communities = 8,
    /// MP_REACH_NLRI (RFC 4760).
    MpReachNlri = 14,
    /// MP_UNREACH_NLRI (RFC 4760).
    MpUnreachNlri = 15,
    /// EXTENDED COMMUNITIES (RFC 4360).
    ExtendedCommunities = 16,
    /// AS4_PATH (RFC 6793).
    As4Path = 17,
    /// LARGE_COMMUNITY (RFC 8092).
    LargeCommunity = 32,
}

/// Path attribute flag: the length field is two octets (RFC 4271 §4.3).
pub const ATTR_FLAG_EXTENDED_LENGTH: u8 = 0x10;

macro_rules! into_u8 {
    ($($t:ty),*) => {$(
        impl From<$t> for u8 {
            fn from(v: $t) -> u8 {
                v as u8
            }
        }
    )*};
}

into_u8!(
    MessageType,
    OpenParamType,
    CapabilityCode,
    ErrorCode,
    HeaderErrorSubcode,
    OpenErrorSubcode,
    UpdateErrorSubcode,
    FsmErrorSubcode,
    CeaseSubcode,
    RouteRefreshErrorSubcode,
    AttrType
);

impl MessageType {
    /// The message type for a header's type octet, if it is one we know.
    pub fn from_u8(v: u8) -> Option<Self> {
        use MessageType::*;
        [Open, Update, Notification, Keepalive, RouteRefresh]
            .into_iter()
            .find(|t| *t as u8 == v)
    }
}

impl ErrorCode {
    /// The error code for a NOTIFICATION's code octet, if it is one we know.
    pub fn from_u8(v: u8) -> Option<Self> {
        use ErrorCode::*;
        [
            MessageHeader,
            OpenMessage,
            UpdateMessage,
            HoldTimerExpired,
            FiniteStateMachine,
            Cease,
            RouteRefreshMessage,
        ]
        .into_iter()
        .find(|c| *c as u8 == v)
    }

    /// The name RFC 4271 §4.5 gives this code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::MessageHeader => "Message Header Error",
            ErrorCode::OpenMessage => "OPEN Message Error",
            ErrorCode::UpdateMessage => "UPDATE Message Error",
            ErrorCode::HoldTimerExpired => "Hold Timer Expired",
            ErrorCode::FiniteStateMachine => "Finite State Machine Error",
            ErrorCode::Cease => "Cease",
            ErrorCode::RouteRefreshMessage => "ROUTE-REFRESH Message Error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_iana_registries() {
        assert_eq!(u8::from(ErrorCode::Cease), 6);
        assert_eq!(u8::from(ErrorCode::RouteRefreshMessage), 7);
        assert_eq!(u8::from(CeaseSubcode::PeerDeconfigured), 3);
        assert_eq!(u8::from(CeaseSubcode::BfdDown), 10);
        assert_eq!(u8::from(OpenErrorSubcode::UnsupportedCapability), 7);
        assert_eq!(u8::from(UpdateErrorSubcode::InvalidNetworkField), 10);
        assert_eq!(u8::from(CapabilityCode::FourOctetAs), 65);
        assert_eq!(u8::from(AttrType::MpUnreachNlri), 15);
        for v in 0..=255u8 {
            assert_eq!(
                MessageType::from_u8(v).map(u8::from),
                Some(v).filter(|v| (1..=5).contains(v))
            );
            assert_eq!(
                ErrorCode::from_u8(v).map(u8::from),
                Some(v).filter(|v| (1..=7).contains(v))
            );
        }
    }
}
