//! Fuzz target: one datagram through `bfd::packet::ControlPacket::decode`. Must never panic;
//! a packet that decodes re-encodes to the same 24 mandatory bytes except the Length, which
//! becomes 24 (a longer Length without the A bit is accepted, its extra bytes ignored), and
//! decodes to itself (the codec's round-trip property); feeding it to a session FSM never
//! panics either.
#![no_main]

use herald_announcer::bfd::fsm::{Event, Fsm, Params};
use herald_announcer::bfd::packet::{ControlPacket, LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::decode(data) {
        let bytes = p.encode();
        let mut want = [0u8; LEN];
        want.copy_from_slice(&data[..LEN]);
        want[3] = LEN as u8;
        assert_eq!(bytes, want, "re-encoding changed the packet");
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
        let mut fsm = Fsm::new(Params::default(), 1);
        fsm.step(Event::Start, 0.5);
        fsm.step(Event::Received(p), 0.5);
        fsm.step(Event::TxTimerExpires, 0.5);
        fsm.step(Event::DetectTimerExpires, 0.5);
    }
});
