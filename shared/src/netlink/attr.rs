//! Generic-netlink attributes, pure: walking an attribute set, reading fixed-size, string and
//! address payloads, and appending attributes to a request. The IPVS decoders ([`super::codec`])
//! and request builders ([`super::request`]) are built on these; [`CodecError`] is the error of
//! all three (and of [`super::frame`]).
//!
//! Readers never panic: a truncated header, a length past the end of the set or a payload of
//! the wrong size is a [`CodecError`] naming the attribute.

use super::consts::NLA_TYPE_MASK;
use crate::model::AddressFamily;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A malformed or incomplete message. The text names the attribute and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

pub(super) fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

/// Length of `struct nlattr`.
pub(super) const NLA_HDRLEN: usize = 4;
/// Length of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

/// Round up to the 4-byte netlink alignment.
pub(super) fn nla_align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// One netlink attribute, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type with the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits removed.
    pub kind: u16,
    /// The payload, without header or padding.
    pub payload: &'a [u8],
}

/// Iterator over the attributes of one attribute set. Yields an error (once, then stops) at a
/// header that is truncated or whose length runs past the end of the set.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walk the attributes in `buf`.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let Some((hdr, _)) = self.rest.split_first_chunk::<NLA_HDRLEN>() else {
            self.failed = true;
            return Some(err(format!(
                "truncated attribute header: {} byte(s) left, 4 needed",
                self.rest.len()
            )));
        };
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            self.failed = true;
            return Some(err(format!(
                "attribute type {kind}: length {len} is shorter than its header"
            )));
        }
        let Some(payload) = self.rest.get(NLA_HDRLEN..len) else {
            self.failed = true;
            return Some(err(format!(
                "attribute type {kind}: length {len} runs past the end of its set ({} byte(s) left)",
                self.rest.len()
            )));
        };
        // The last attribute's padding may be missing; never index past the end.
        let advance = nla_align(len).min(self.rest.len());
        self.rest = self.rest.get(advance..).unwrap_or(&[]);
        Some(Ok(Attr { kind, payload }))
    }
}

/// Split a generic-netlink payload into (command, version, attribute bytes).
pub fn split_genl(payload: &[u8]) -> Result<(u8, u8, &[u8]), CodecError> {
    match payload {
        [cmd, version, _, _, rest @ ..] => Ok((*cmd, *version, rest)),
        _ => err(format!(
            "generic netlink message of {} byte(s) is shorter than its 4-byte header",
            payload.len()
        )),
    }
}

pub(super) fn fixed<const N: usize>(a: &Attr<'_>, what: &str) -> Result<[u8; N], CodecError> {
    <[u8; N]>::try_from(a.payload).or_else(|_| {
        err(format!(
            "{what}: payload is {} byte(s), expected {N}",
            a.payload.len()
        ))
    })
}

pub(super) fn get_u8(a: &Attr<'_>, what: &str) -> Result<u8, CodecError> {
    Ok(fixed::<1>(a, what)?[0])
}

pub(super) fn get_u16(a: &Attr<'_>, what: &str) -> Result<u16, CodecError> {
    Ok(u16::from_ne_bytes(fixed(a, what)?))
}

pub(super) fn get_be16(a: &Attr<'_>, what: &str) -> Result<u16, CodecError> {
    Ok(u16::from_be_bytes(fixed(a, what)?))
}

pub(super) fn get_u32(a: &Attr<'_>, what: &str) -> Result<u32, CodecError> {
    Ok(u32::from_ne_bytes(fixed(a, what)?))
}

/// A counter that is 32 bits in `*_ATTR_STATS` and 64 bits in `*_ATTR_STATS64`: accept both.
pub(super) fn get_uint(a: &Attr<'_>, what: &str) -> Result<u64, CodecError> {
    match a.payload.len() {
        4 => Ok(u64::from(get_u32(a, what)?)),
        8 => Ok(u64::from_ne_bytes(fixed(a, what)?)),
        n => err(format!("{what}: payload is {n} byte(s), expected 4 or 8")),
    }
}

/// A NUL-terminated (or not) string attribute.
pub(super) fn get_str(a: &Attr<'_>, what: &str) -> Result<String, CodecError> {
    let bytes = a.payload.split(|b| *b == 0).next().unwrap_or(a.payload);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => err(format!("{what}: not valid UTF-8 ({e})")),
    }
}

/// A `union nf_inet_addr` (16 bytes; IPv4 in the first 4) read according to `family`.
/// A bare 4-byte IPv4 or 16-byte IPv6 payload is accepted too.
pub(super) fn get_addr(
    a: &Attr<'_>,
    family: AddressFamily,
    what: &str,
) -> Result<IpAddr, CodecError> {
    let p = a.payload;
    match family {
        AddressFamily::Inet => match p.first_chunk::<4>() {
            Some(b) if p.len() == 4 || p.len() == 16 => Ok(IpAddr::V4(Ipv4Addr::from(*b))),
            _ => err(format!(
                "{what}: IPv4 address payload is {} byte(s), expected 4 or 16",
                p.len()
            )),
        },
        AddressFamily::Inet6 => match <[u8; 16]>::try_from(p) {
            Ok(b) => Ok(IpAddr::V6(Ipv6Addr::from(b))),
            Err(_) => err(format!(
                "{what}: IPv6 address payload is {} byte(s), expected 16",
                p.len()
            )),
        },
    }
}

/// The nested attribute set of `kind` at the top level of a message, required.
pub(super) fn nested<'a>(
    attrs_buf: &'a [u8],
    kind: u16,
    what: &str,
) -> Result<&'a [u8], CodecError> {
    for a in attrs(attrs_buf) {
        let a = a?;
        if a.kind == kind {
            return Ok(a.payload);
        }
    }
    err(format!("message has no {what} attribute"))
}

/// Append one attribute (header, payload, padding) to `out`.
pub fn put_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = NLA_HDRLEN + payload.len();
    // Attribute sets built here are tiny; saturate rather than wrap for absurd sizes.
    let len16 = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len16.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (nla_align(len) - len), 0);
}

/// A generic-netlink payload: the 4-byte header followed by `attrs`.
pub fn genl_payload(cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(GENL_HDRLEN + attrs.len());
    v.extend_from_slice(&[cmd, version, 0, 0]);
    v.extend_from_slice(attrs);
    v
}
