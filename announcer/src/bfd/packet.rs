//! The BFD Control packet of RFC 5880 §4.1: its fields with named codes, and a codec that is
//! independent of any session.
//!
//! [`ControlPacket::decode`] applies every check of RFC 5880 §6.8.6 that needs only the packet
//! itself (version, length, detect multiplier, Multipoint bit, discriminators); the checks that
//! need a session (which discriminator is ours, whether authentication is in use) are the
//! state machine's ([`super::fsm`]). Every malformed input is a named [`DecodeError`]; nothing
//! here panics. [`ControlPacket::encode`] is the exact inverse of `decode` on the 24 mandatory
//! bytes, but for the Length: a Length above 24 without the A bit is accepted (as BIRD and FRR
//! do; the bytes beyond 24 are ignored) and re-encodes as 24.
//!
//! # Authentication
//! Not implemented: a packet with the Authentication Present (A) bit is rejected with
//! [`DecodeError::AuthenticationUnsupported`], and we never set the bit. Single-hop BFD is
//! protected by the TTL 255 check (RFC 5881 §5, [`super::network`]); keyed SHA1 would also
//! need sequence-number state per session and key configuration, left for later.

use std::fmt;
use thiserror::Error;

/// The only protocol version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;
/// Length of a Control packet without the Authentication Section.
pub const LEN: usize = 24;
/// Smallest Length when the A bit is set (RFC 5880 §6.8.6: 26).
pub const MIN_LEN_AUTH: usize = 26;

/// Session state as carried in the Sta field (RFC 5880 §4.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// 0: AdminDown — the session is held down administratively.
    AdminDown,
    /// 1: Down.
    Down,
    /// 2: Init — we hear the remote system, it has not yet heard us.
    Init,
    /// 3: Up.
    Up,
}

impl State {
    /// All states, in wire order (for one-hot metrics).
    pub const ALL: [State; 4] = [State::AdminDown, State::Down, State::Init, State::Up];

    /// The two-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// From the two-bit wire value (higher bits are ignored).
    pub fn from_code(v: u8) -> State {
        match v & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// Lower-case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admindown",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Diagnostic codes (RFC 5880 §4.1): why the sender's session last left Up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: No Diagnostic.
    NoDiagnostic,
    /// 1: Control Detection Time Expired.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFunctionFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledSessionDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdministrativelyDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use; kept so that decode and encode stay symmetric.
    Reserved(u8),
}

impl Diag {
    /// All named codes (for metrics).
    pub const NAMED: [Diag; 9] = [
        Diag::NoDiagnostic,
        Diag::ControlDetectionTimeExpired,
        Diag::EchoFunctionFailed,
        Diag::NeighborSignaledSessionDown,
        Diag::ForwardingPlaneReset,
        Diag::PathDown,
        Diag::ConcatenatedPathDown,
        Diag::AdministrativelyDown,
        Diag::ReverseConcatenatedPathDown,
    ];

    /// The five-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Diag::NoDiagnostic => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(v) => v & 0x1f,
        }
    }

    /// From the five-bit wire value (higher bits are ignored).
    pub fn from_code(v: u8) -> Diag {
        match v & 0x1f {
            0 => Diag::NoDiagnostic,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            v => Diag::Reserved(v),
        }
    }

    /// Name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Diag::NoDiagnostic => "none",
            Diag::ControlDetectionTimeExpired => "control_detection_time_expired",
            Diag::EchoFunctionFailed => "echo_function_failed",
            Diag::NeighborSignaledSessionDown => "neighbor_signaled_session_down",
            Diag::ForwardingPlaneReset => "forwarding_plane_reset",
            Diag::PathDown => "path_down",
            Diag::ConcatenatedPathDown => "concatenated_path_down",
            Diag::AdministrativelyDown => "administratively_down",
            Diag::ReverseConcatenatedPathDown => "reverse_concatenated_path_down",
            Diag::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::Reserved(v) => write!(f, "reserved({v})"),
            d => f.write_str(d.as_str()),
        }
    }
}

/// The flag bits of the second octet (RFC 5880 §4.1), A and M excepted: a decoded packet never
/// has them (see [`DecodeError`]) and we never send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// P: Poll — a parameter change awaits confirmation.
    pub poll: bool,
    /// F: Final — the answer to a Poll.
    pub final_: bool,
    /// C: Control Plane Independent — BFD survives a control-plane restart.
    pub cpi: bool,
    /// D: Demand mode.
    pub demand: bool,
}

const BIT_P: u8 = 0x20;
const BIT_F: u8 = 0x10;
const BIT_C: u8 = 0x08;
const BIT_A: u8 = 0x04;
const BIT_D: u8 = 0x02;
const BIT_M: u8 = 0x01;

/// A BFD Control packet without an Authentication Section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    /// Diagnostic of the sender's last state change.
    pub diag: Diag,
    /// The sender's session state.
    pub state: State,
    /// P, F, C and D bits.
    pub flags: Flags,
    /// Detect Mult: the sender's detection multiplier (never 0 once decoded).
    pub detect_mult: u8,
    /// My Discriminator (never 0 once decoded).
    pub my_discr: u32,
    /// Your Discriminator: the receiver's discriminator, 0 when not yet known.
    pub your_discr: u32,
    /// Desired Min TX Interval, microseconds.
    pub desired_min_tx: u32,
    /// Required Min RX Interval, microseconds (0: send me nothing).
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval, microseconds (we never run echo: we send 0).
    pub required_min_echo_rx: u32,
}

/// Why a datagram is not a usable BFD Control packet (RFC 5880 §6.8.6, in its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than the 24-byte mandatory section.
    #[error("BFD packet too short: {0} bytes, at least 24 needed")]
    TooShort(usize),
    /// Version other than 1.
    #[error("BFD version {0} is not supported (only 1)")]
    BadVersion(u8),
    /// Length field below the minimum (24, or 26 with the A bit).
    #[error("BFD Length field {length} below the minimum {min}")]
    LengthTooSmall {
        /// The Length field.
        length: u8,
        /// The minimum for this packet.
        min: usize,
    },
    /// Length field larger than the datagram.
    #[error("BFD Length field {length} exceeds the {received} bytes received")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// Bytes in the datagram.
        received: usize,
    },
    /// Authentication Present bit set: we do not implement authentication.
    #[error("BFD authentication is not supported (A bit set)")]
    AuthenticationUnsupported,
    /// Detect Mult of zero.
    #[error("BFD Detect Mult is zero")]
    ZeroDetectMult,
    /// Multipoint bit set (reserved for point-to-multipoint, RFC 5880 §6.8.6).
    #[error("BFD Multipoint bit set")]
    Multipoint,
    /// My Discriminator of zero.
    #[error("BFD My Discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator of zero from a sender in Init or Up.
    #[error("BFD Your Discriminator is zero in state {0}")]
    ZeroYourDiscriminator(State),
    /// Poll and Final both set (RFC 5880 §6.5: a packet never carries both).
    #[error("BFD Poll and Final bits both set")]
    PollAndFinal,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

impl ControlPacket {
    /// Decode one datagram's payload.
    pub fn decode(buf: &[u8]) -> Result<ControlPacket, DecodeError> {
        let (b0, b1, mult, length) = match buf {
            [b0, b1, mult, length, ..] if buf.len() >= LEN => (*b0, *b1, *mult, *length),
            _ => return Err(DecodeError::TooShort(buf.len())),
        };
        let version = b0 >> 5;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let auth = b1 & BIT_A != 0;
        let min = if auth { MIN_LEN_AUTH } else { LEN };
        if usize::from(length) < min {
            return Err(DecodeError::LengthTooSmall { length, min });
        }
        if usize::from(length) > buf.len() {
            return Err(DecodeError::LengthExceedsPayload {
                length,
                received: buf.len(),
            });
        }
        if auth {
            return Err(DecodeError::AuthenticationUnsupported);
        }
        if mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if b1 & BIT_M != 0 {
            return Err(DecodeError::Multipoint);
        }
        let state = State::from_code(b1 >> 6);
        let flags = Flags {
            poll: b1 & BIT_P != 0,
            final_: b1 & BIT_F != 0,
            cpi: b1 & BIT_C != 0,
            demand: b1 & BIT_D != 0,
        };
        if flags.poll && flags.final_ {
            return Err(DecodeError::PollAndFinal);
        }
        let my_discr = be32(buf, 4);
        if my_discr == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let your_discr = be32(buf, 8);
        if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        Ok(ControlPacket {
            diag: Diag::from_code(b0),
            state,
            flags,
            detect_mult: mult,
            my_discr,
            your_discr,
            desired_min_tx: be32(buf, 12),
            required_min_rx: be32(buf, 16),
            required_min_echo_rx: be32(buf, 20),
        })
    }

    /// The 24 bytes on the wire.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (VERSION << 5) | self.diag.code();
        let f = &self.flags;
        b[1] = (self.state.code() << 6)
            | if f.poll { BIT_P } else { 0 }
            | if f.final_ { BIT_F } else { 0 }
            | if f.cpi { BIT_C } else { 0 }
            | if f.demand { BIT_D } else { 0 };
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt() -> ControlPacket {
        ControlPacket {
            diag: Diag::ControlDetectionTimeExpired,
            state: State::Up,
            flags: Flags {
                poll: true,
                ..Flags::default()
            },
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 0x0a0b_0c0d,
            desired_min_tx: 300_000,
            required_min_rx: 250_000,
            required_min_echo_rx: 0,
        }
    }

    /// The bytes of [`pkt`], written out by hand from the RFC 5880 §4.1 layout.
    const WIRE: [u8; 24] = [
        0x21, // version 1, diag 1
        0xe0, // state 3 (Up), P
        3, 24, // detect mult, length
        1, 2, 3, 4, // my discr
        10, 11, 12, 13, // your discr
        0x00, 0x04, 0x93, 0xe0, // 300000
        0x00, 0x03, 0xd0, 0x90, // 250000
        0, 0, 0, 0,
    ];

    #[test]
    fn encode_matches_the_rfc_layout() {
        assert_eq!(pkt().encode(), WIRE);
    }

    #[test]
    fn decode_matches_the_rfc_layout() {
        assert_eq!(ControlPacket::decode(&WIRE), Ok(pkt()));
    }

    #[test]
    fn every_flag_state_and_diag_round_trips() {
        for state in State::ALL {
            for code in 0..32u8 {
                for bits in 0..16u8 {
                    let flags = Flags {
                        poll: bits & 1 != 0,
                        final_: bits & 2 != 0 && bits & 1 == 0,
                        cpi: bits & 4 != 0,
                        demand: bits & 8 != 0,
                    };
                    let p = ControlPacket {
                        diag: Diag::from_code(code),
                        state,
                        flags,
                        ..pkt()
                    };
                    assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
                    assert_eq!(Diag::from_code(code).code(), code);
                }
            }
            assert_eq!(State::from_code(state.code()), state);
        }
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut b = WIRE.to_vec();
        b.extend_from_slice(&[0xff; 8]);
        assert_eq!(ControlPacket::decode(&b), Ok(pkt()));
        // A Length covering them too (found by the fuzzer): accepted, re-encoded as 24.
        b[3] = 32;
        assert_eq!(ControlPacket::decode(&b), Ok(pkt()));
        assert_eq!(pkt().encode()[3], 24);
    }

    fn with(f: impl FnOnce(&mut [u8; 24])) -> Result<ControlPacket, DecodeError> {
        let mut b = WIRE;
        f(&mut b);
        ControlPacket::decode(&b)
    }

    #[test]
    fn every_malformed_packet_is_a_named_error() {
        assert_eq!(ControlPacket::decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(
            ControlPacket::decode(&WIRE[..23]),
            Err(DecodeError::TooShort(23))
        );
        assert_eq!(with(|b| b[0] = 0x41), Err(DecodeError::BadVersion(2)));
        assert_eq!(with(|b| b[0] = 0x01), Err(DecodeError::BadVersion(0)));
        assert_eq!(
            with(|b| b[3] = 23),
            Err(DecodeError::LengthTooSmall {
                length: 23,
                min: 24
            })
        );
        assert_eq!(
            with(|b| b[3] = 25),
            Err(DecodeError::LengthExceedsPayload {
                length: 25,
                received: 24
            })
        );
        assert_eq!(
            with(|b| {
                b[1] |= BIT_A;
                b[3] = 24;
            }),
            Err(DecodeError::LengthTooSmall {
                length: 24,
                min: 26
            })
        );
        let mut long = WIRE.to_vec();
        long.extend_from_slice(&[1, 4, 0, 0]);
        long[1] |= BIT_A;
        long[3] = 28;
        assert_eq!(
            ControlPacket::decode(&long),
            Err(DecodeError::AuthenticationUnsupported)
        );
        assert_eq!(with(|b| b[2] = 0), Err(DecodeError::ZeroDetectMult));
        assert_eq!(with(|b| b[1] |= BIT_M), Err(DecodeError::Multipoint));
        assert_eq!(with(|b| b[1] |= BIT_F), Err(DecodeError::PollAndFinal));
        assert_eq!(
            with(|b| b[4..8].fill(0)),
            Err(DecodeError::ZeroMyDiscriminator)
        );
        assert_eq!(
            with(|b| b[8..12].fill(0)),
            Err(DecodeError::ZeroYourDiscriminator(State::Up))
        );
        assert_eq!(
            with(|b| {
                b[8..12].fill(0);
                b[1] = 2 << 6;
            }),
            Err(DecodeError::ZeroYourDiscriminator(State::Init))
        );
    }

    #[test]
    fn your_discriminator_may_be_zero_when_down() {
        for st in [State::Down, State::AdminDown] {
            let r = with(|b| {
                b[8..12].fill(0);
                b[1] = st.code() << 6;
            });
            assert_eq!(r.map(|p| (p.state, p.your_discr)), Ok((st, 0)));
        }
    }

    #[test]
    fn decode_never_panics_on_short_or_odd_input() {
        // Every prefix and every single-byte corruption of a valid packet.
        for n in 0..=WIRE.len() {
            let _ = ControlPacket::decode(&WIRE[..n]);
        }
        for i in 0..WIRE.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = WIRE;
                b[i] = v;
                if let Ok(p) = ControlPacket::decode(&b) {
                    assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
                }
            }
        }
    }
}
