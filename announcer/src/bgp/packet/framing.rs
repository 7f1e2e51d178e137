//! Message framing: [`BgpFraming`], a tokio-util codec that validates the 19-byte header itself
//! (marker, length 19..=4096, type, per-type minimum length) *before* handing a complete frame
//! on; [`DecodeError`], a message that cannot be accepted with the NOTIFICATION it calls for; and
//! [`encode`] for writing.
//!
//! netgauze's own codec waits forever for a frame whose length field exceeds 4096 and checks the
//! marker only after buffering the claimed length, so it is not used for reading; it is used
//! through [`encode`] for writing.

use super::consts::{HeaderErrorSubcode, MessageType, HEADER_LEN, MAX_MESSAGE_LEN};
use super::notification::Notification;
use bytes::{Buf, BytesMut};
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_bgp_pkt::wire::serializer::BgpMessageWritingError;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_parse_utils::WritablePdu;
use std::collections::HashMap;

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
    pub(super) fn new(kind: ErrorKind, n: Notification, detail: impl Into<String>) -> Self {
        DecodeError {
            kind,
            notification: n,
            detail: detail.into(),
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

/// A message netgauze's serializer refuses to write (e.g. longer than the message type allows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct EncodeError(#[from] BgpMessageWritingError);

/// Encode a NOTIFICATION message.
pub fn encode_notification(n: &Notification) -> Result<Vec<u8>, EncodeError> {
    encode(&BgpMessage::Notification(n.to_netgauze()))
}

/// Encode one message.
pub fn encode(msg: &BgpMessage) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(msg.len());
    msg.write(&mut out)?;
    Ok(out)
}

/// Drop `n` bytes from the front of a buffer (helper for tests and the session).
pub fn advance(buf: &mut BytesMut, n: usize) {
    buf.advance(n.min(buf.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::test_support::*;
    use tokio_util::codec::Decoder;

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
}
