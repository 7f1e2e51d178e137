//! Extended communities (RFC 4360, four-octet AS form RFC 5668): the route target and route
//! origin communities a VIP announcement can carry, their text form in the configuration and
//! their eight octets on the wire (path attribute 16, built in `packet::update`).
//!
//! Text form: `KIND:ADMINISTRATOR:VALUE`.
//! - `KIND`: `rt` (or `target`) for a route target, `ro` (or `origin`, `soo`) for a route
//!   origin; case-insensitive.
//! - `ADMINISTRATOR` chooses the form, as BIRD and ExaBGP do: an IPv4 address is the
//!   IPv4-address specific form (VALUE 0..=65535); an AS number up to 65535 the two-octet-AS
//!   specific form (VALUE 0..=4294967295); a larger AS number the four-octet-AS specific form
//!   (VALUE 0..=65535).
//!
//! `rt:65000:100`, `ro:192.0.2.1:7` and `rt:4200000001:5` are one of each form.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Type high octet of the transitive two-octet-AS specific form (RFC 4360 §3.1).
pub const TYPE_AS2: u8 = 0x00;
/// Type high octet of the transitive IPv4-address specific form (RFC 4360 §3.2).
pub const TYPE_IPV4: u8 = 0x01;
/// Type high octet of the transitive four-octet-AS specific form (RFC 5668 §2).
pub const TYPE_AS4: u8 = 0x02;
/// Sub-type of a route target, in each of the three forms.
pub const SUBTYPE_ROUTE_TARGET: u8 = 0x02;
/// Sub-type of a route origin, in each of the three forms.
pub const SUBTYPE_ROUTE_ORIGIN: u8 = 0x03;

/// Route target or route origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtKind {
    /// Route target (sub-type 0x02).
    RouteTarget,
    /// Route origin, also called site of origin (sub-type 0x03).
    RouteOrigin,
}

/// The global administrator with its local value, in one of the three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtAdmin {
    /// Two-octet AS specific: a 16-bit AS number and a 32-bit value.
    As2 { asn: u16, value: u32 },
    /// IPv4-address specific: an address and a 16-bit value.
    Ipv4 { addr: Ipv4Addr, value: u16 },
    /// Four-octet AS specific: a 32-bit AS number and a 16-bit value.
    As4 { asn: u32, value: u16 },
}

/// One extended community of the kinds the announcer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity {
    pub kind: ExtKind,
    pub admin: ExtAdmin,
}

/// An extended community that does not parse; the message quotes it and names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtCommunityError {
    #[error("extended community {0:?} is not KIND:ADMINISTRATOR:VALUE (e.g. \"rt:65000:100\")")]
    NotThreeParts(String),
    #[error("extended community {community:?}: kind {kind:?} is not rt (route target) or ro (route origin)")]
    UnknownKind { community: String, kind: String },
    #[error("extended community {community:?}: administrator {part:?} is not an AS number (0 to 4294967295) or an IPv4 address")]
    BadAdministrator { community: String, part: String },
    #[error("extended community {community:?}: value {part:?} is not a number")]
    BadValue { community: String, part: String },
    #[error("extended community {community:?}: value {value} is too large for the {form} form (at most {max})")]
    ValueTooLarge {
        community: String,
        value: u64,
        form: &'static str,
        max: u64,
    },
}

impl ExtendedCommunity {
    /// The eight octets on the wire: type, sub-type, administrator, value.
    pub fn to_bytes(&self) -> [u8; 8] {
        let sub = match self.kind {
            ExtKind::RouteTarget => SUBTYPE_ROUTE_TARGET,
            ExtKind::RouteOrigin => SUBTYPE_ROUTE_ORIGIN,
        };
        let mut b = [0u8; 8];
        b[1] = sub;
        match self.admin {
            ExtAdmin::As2 { asn, value } => {
                b[0] = TYPE_AS2;
                b[2..4].copy_from_slice(&asn.to_be_bytes());
                b[4..8].copy_from_slice(&value.to_be_bytes());
            }
            ExtAdmin::Ipv4 { addr, value } => {
                b[0] = TYPE_IPV4;
                b[2..6].copy_from_slice(&addr.octets());
                b[6..8].copy_from_slice(&value.to_be_bytes());
            }
            ExtAdmin::As4 { asn, value } => {
                b[0] = TYPE_AS4;
                b[2..6].copy_from_slice(&asn.to_be_bytes());
                b[6..8].copy_from_slice(&value.to_be_bytes());
            }
        }
        b
    }

    /// The community of these eight octets, if it is a transitive route target or route
    /// origin in one of the three forms.
    pub fn from_bytes(b: [u8; 8]) -> Option<Self> {
        let kind = match b[1] {
            SUBTYPE_ROUTE_TARGET => ExtKind::RouteTarget,
            SUBTYPE_ROUTE_ORIGIN => ExtKind::RouteOrigin,
            _ => return None,
        };
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let admin = match b[0] {
            TYPE_AS2 => ExtAdmin::As2 {
                asn: u16_at(2),
                value: u32_at(4),
            },
            TYPE_IPV4 => ExtAdmin::Ipv4 {
                addr: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                value: u16_at(6),
            },
            TYPE_AS4 => ExtAdmin::As4 {
                asn: u32_at(2),
                value: u16_at(6),
            },
            _ => return None,
        };
        Some(ExtendedCommunity { kind, admin })
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ExtKind::RouteTarget => "rt",
            ExtKind::RouteOrigin => "ro",
        };
        match self.admin {
            ExtAdmin::As2 { asn, value } => write!(f, "{kind}:{asn}:{value}"),
            ExtAdmin::Ipv4 { addr, value } => write!(f, "{kind}:{addr}:{value}"),
            ExtAdmin::As4 { asn, value } => write!(f, "{kind}:{asn}:{value}"),
        }
    }
}

impl FromStr for ExtendedCommunity {
    type Err = ExtCommunityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [kind, admin, value] = parts.as_slice() else {
            return Err(ExtCommunityError::NotThreeParts(s.to_string()));
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "rt" | "target" => ExtKind::RouteTarget,
            "ro" | "origin" | "soo" => ExtKind::RouteOrigin,
            _ => {
                return Err(ExtCommunityError::UnknownKind {
                    community: s.to_string(),
                    kind: (*kind).to_string(),
                })
            }
        };
        // Digits only: `u64::from_str` would also take a leading '+'.
        let number = |p: &str| -> Option<u64> {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            p.parse::<u64>().ok()
        };
        let value_num = number(value).ok_or_else(|| ExtCommunityError::BadValue {
            community: s.to_string(),
            part: (*value).to_string(),
        })?;
        let too_large = |form: &'static str, max: u64| ExtCommunityError::ValueTooLarge {
            community: s.to_string(),
            value: value_num,
            form,
            max,
        };
        let small = |form: &'static str| {
            u16::try_from(value_num).map_err(|_| too_large(form, u64::from(u16::MAX)))
        };
        let admin = if admin.contains('.') {
            let addr =
                admin
                    .parse::<Ipv4Addr>()
                    .map_err(|_| ExtCommunityError::BadAdministrator {
                        community: s.to_string(),
                        part: (*admin).to_string(),
                    })?;
            ExtAdmin::Ipv4 {
                addr,
                value: small("IPv4-address specific")?,
            }
        } else {
            let asn = number(admin)
                .and_then(|a| u32::try_from(a).ok())
                .ok_or_else(|| ExtCommunityError::BadAdministrator {
                    community: s.to_string(),
                    part: (*admin).to_string(),
                })?;
            match u16::try_from(asn) {
                Ok(asn) => ExtAdmin::As2 {
                    asn,
                    value: u32::try_from(value_num)
                        .map_err(|_| too_large("two-octet-AS specific", u64::from(u32::MAX)))?,
                },
                Err(_) => ExtAdmin::As4 {
                    asn,
                    value: small("four-octet-AS specific")?,
                },
            }
        };
        Ok(ExtendedCommunity { kind, admin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<ExtendedCommunity, ExtCommunityError> {
        s.parse()
    }

    #[test]
    fn the_three_forms_parse_print_and_encode() {
        let cases: [(&str, ExtendedCommunity, [u8; 8]); 3] = [
            (
                "rt:65000:100",
                ExtendedCommunity {
                    kind: ExtKind::RouteTarget,
                    admin: ExtAdmin::As2 {
                        asn: 65000,
                        value: 100,
                    },
                },
                [0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 100],
            ),
            (
                "ro:192.0.2.1:7",
                ExtendedCommunity {
                    kind: ExtKind::RouteOrigin,
                    admin: ExtAdmin::Ipv4 {
                        addr: Ipv4Addr::new(192, 0, 2, 1),
                        value: 7,
                    },
                },
                [0x01, 0x03, 192, 0, 2, 1, 0, 7],
            ),
            (
                "rt:4200000001:5",
                ExtendedCommunity {
                    kind: ExtKind::RouteTarget,
                    admin: ExtAdmin::As4 {
                        asn: 4_200_000_001,
                        value: 5,
                    },
                },
                [0x02, 0x02, 0xfa, 0x56, 0xea, 0x01, 0, 5],
            ),
        ];
        for (text, want, bytes) in cases {
            let c = p(text).unwrap();
            assert_eq!(c, want, "{text}");
            assert_eq!(c.to_string(), text);
            assert_eq!(c.to_bytes(), bytes, "{text}");
            assert_eq!(ExtendedCommunity::from_bytes(bytes), Some(c));
        }
    }

    #[test]
    fn aliases_and_range_edges() {
        assert_eq!(p("TARGET:1:2").unwrap(), p("rt:1:2").unwrap());
        assert_eq!(p("origin:1:2").unwrap(), p("ro:1:2").unwrap());
        assert_eq!(p("SoO:1:2").unwrap(), p("ro:1:2").unwrap());
        // The two-octet form carries a 32-bit value; 65536 is the first four-octet AS.
        assert_eq!(
            p("rt:65535:4294967295").unwrap().admin,
            ExtAdmin::As2 {
                asn: 65535,
                value: u32::MAX
            }
        );
        assert_eq!(
            p("rt:65536:65535").unwrap().admin,
            ExtAdmin::As4 {
                asn: 65536,
                value: 65535
            }
        );
        assert_eq!(
            p("ro:4294967295:0").unwrap().to_bytes(),
            [2, 3, 0xff, 0xff, 0xff, 0xff, 0, 0]
        );
        // Sub-types and types we do not send are not read back as ours.
        assert_eq!(
            ExtendedCommunity::from_bytes([0, 9, 0, 0, 0, 0, 0, 0]),
            None
        );
        assert_eq!(
            ExtendedCommunity::from_bytes([0x40, 2, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn every_malformed_string_is_a_named_error() {
        use ExtCommunityError as E;
        let s = |x: &str| x.to_string();
        let cases: Vec<(&str, ExtCommunityError)> = vec![
            ("", E::NotThreeParts(s(""))),
            ("rt:65000", E::NotThreeParts(s("rt:65000"))),
            ("rt:1:2:3", E::NotThreeParts(s("rt:1:2:3"))),
            ("65000:100", E::NotThreeParts(s("65000:100"))),
            (
                "xx:65000:100",
                E::UnknownKind {
                    community: s("xx:65000:100"),
                    kind: s("xx"),
                },
            ),
            (
                ":1:2",
                E::UnknownKind {
                    community: s(":1:2"),
                    kind: s(""),
                },
            ),
            (
                "rt:abc:1",
                E::BadAdministrator {
                    community: s("rt:abc:1"),
                    part: s("abc"),
                },
            ),
            (
                "rt::1",
                E::BadAdministrator {
                    community: s("rt::1"),
                    part: s(""),
                },
            ),
            (
                "rt:4294967296:1",
                E::BadAdministrator {
                    community: s("rt:4294967296:1"),
                    part: s("4294967296"),
                },
            ),
            (
                "rt:+5:1",
                E::BadAdministrator {
                    community: s("rt:+5:1"),
                    part: s("+5"),
                },
            ),
            (
                "ro:192.0.2.300:1",
                E::BadAdministrator {
                    community: s("ro:192.0.2.300:1"),
                    part: s("192.0.2.300"),
                },
            ),
            (
                "rt:65000:",
                E::BadValue {
                    community: s("rt:65000:"),
                    part: s(""),
                },
            ),
            (
                "rt:65000:-1",
                E::BadValue {
                    community: s("rt:65000:-1"),
                    part: s("-1"),
                },
            ),
            (
                "rt:65000:99999999999999999999",
                E::BadValue {
                    community: s("rt:65000:99999999999999999999"),
                    part: s("99999999999999999999"),
                },
            ),
            (
                "rt:65000:4294967296",
                E::ValueTooLarge {
                    community: s("rt:65000:4294967296"),
                    value: 4_294_967_296,
                    form: "two-octet-AS specific",
                    max: u64::from(u32::MAX),
                },
            ),
            (
                "ro:192.0.2.1:65536",
                E::ValueTooLarge {
                    community: s("ro:192.0.2.1:65536"),
                    value: 65536,
                    form: "IPv4-address specific",
                    max: 65535,
                },
            ),
            (
                "rt:4200000001:65536",
                E::ValueTooLarge {
                    community: s("rt:4200000001:65536"),
                    value: 65536,
                    form: "four-octet-AS specific",
                    max: 65535,
                },
            ),
        ];
        for (text, want) in cases {
            let e = p(text).unwrap_err();
            assert_eq!(e, want, "{text:?}");
            assert!(e.to_string().contains(&format!("{text:?}")), "{e}");
        }
        assert_eq!(
            p("rt:4200000001:65536").unwrap_err().to_string(),
            "extended community \"rt:4200000001:65536\": value 65536 is too large for the four-octet-AS specific form (at most 65535)"
        );
    }
}
