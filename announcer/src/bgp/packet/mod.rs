//! BGP messages on the wire, on top of `netgauze-bgp-pkt`, one module per concern:
//!
//! - [`consts`]: named protocol numbers (message types, error codes and subcodes, capability
//!   and attribute codes).
//! - `notification`: the NOTIFICATION message and its constructors.
//! - `framing`: the header-checking codec, [`DecodeError`] (what to send back for a message that
//!   cannot be accepted) and [`encode`].
//! - `open`: building our OPEN and checking the peer's.
//! - `update`: building UPDATEs and classifying malformed ones (RFC 7606).
//! - `decode`: frame → [`Message`], on top of the three above.
//!
//! Each module imports only the ones listed before it (tests aside), so none imports one that
//! imports it back.
//!
//! Nothing here knows the session FSM: turning a [`DecodeError`] or a [`PeerOpen`] into an FSM
//! event is the FSM's business (`fsm.rs`).

pub mod consts;
mod decode;
mod framing;
mod notification;
mod open;
mod update;

pub use consts::{AS_TRANS, HEADER_LEN, MAX_MESSAGE_LEN};
pub use decode::{decode, Message};
pub use framing::{
    advance, encode, encode_notification, parsing_context, BgpFraming, DecodeError, EncodeError,
    ErrorKind, FramingError,
};
pub use notification::Notification;
pub use open::{afi_safi, build_open, check_open, unsupported_capabilities, LocalOpen, PeerOpen};
pub use update::{build_updates, end_of_rib, family_of_afi, BuildError, UpdateCtx};

/// Test helpers shared by the packet modules' unit tests.
#[cfg(test)]
mod test_support {
    use super::parsing_context;
    use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;

    /// A message header with this length and type.
    pub(crate) fn hdr(len: u16, ty: u8) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(ty);
        v
    }

    /// A 4-octet-AS parsing context.
    pub(crate) fn ctx() -> BgpParsingContext {
        parsing_context(true)
    }
}
