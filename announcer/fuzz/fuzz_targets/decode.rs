//! Fuzz target: one complete message through `packet::decode` (both AS-number widths), and every
//! OPEN that decodes through `packet::check_open`. Must never panic.
#![no_main]

use herald_announcer::bgp::packet::{self, Message};
use herald_announcer::bgp::Family;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for asn4 in [true, false] {
        let mut ctx = packet::parsing_context(asn4);
        match packet::decode(data, &mut ctx) {
            Ok(Message::Open(o)) => {
                let _ = packet::check_open(
                    &o,
                    65001,
                    std::net::Ipv4Addr::new(192, 0, 2, 1),
                    asn4,
                    &[Family::Ipv4, Family::Ipv6],
                );
            }
            Ok(_) => {}
            Err(e) => {
                // Every error carries a NOTIFICATION that can be encoded.
                let bytes = packet::encode_notification(&e.notification).expect("NOTIFICATION encodes");
                assert!(bytes.len() <= packet::MAX_MESSAGE_LEN);
            }
        }
    }
});
