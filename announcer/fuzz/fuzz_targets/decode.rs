//! Fuzz target: one complete message through `msg::decode` (both AS-number widths), and every
//! OPEN that decodes through `msg::check_open`. Must never panic.
#![no_main]

use herald_announcer::bgp::msg::{self, Message};
use herald_announcer::bgp::Family;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for asn4 in [true, false] {
        let mut ctx = msg::parsing_context(asn4);
        match msg::decode(data, &mut ctx) {
            Ok(Message::Open(o)) => {
                let _ = msg::check_open(
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
                let bytes = msg::encode_notification(&e.notification).expect("NOTIFICATION encodes");
                assert!(bytes.len() <= msg::MAX_MESSAGE_LEN);
            }
        }
    }
});
