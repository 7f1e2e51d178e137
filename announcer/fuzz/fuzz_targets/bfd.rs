//! Fuzz target: one datagram through `bfd::packet::ControlPacket::decode`. Must never panic;
//! a packet that decodes re-encodes to the same 24 mandatory bytes and decodes to itself
//! (the codec's round-trip property), and feeding it to a session FSM never panics either.
#![no_main]

use herald_announcer::bfd::fsm::{Event, Fsm, Params};
use herald_announcer::bfd::packet::{ControlPacket, LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::decode(data) {
        let bytes = p.encode();
        assert_eq!(&bytes[..], &data[..LEN], "re-encoding changed the packet");
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
        let mut fsm = Fsm::new(Params::default(), 1);
        fsm.step(Event::Start, 0.5);
        fsm.step(Event::Received(p), 0.5);
        fsm.step(Event::TxTimerExpires, 0.5);
        fsm.step(Event::DetectTimerExpires, 0.5);
    }
});
