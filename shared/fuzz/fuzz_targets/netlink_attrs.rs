//! Fuzz target: the netlink framing and every generic-netlink decoder on arbitrary bytes
//! (must never panic).
#![no_main]

use herald_shared::model::AddressFamily;
use herald_shared::netlink::{codec, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a datagram of nlmsghdr-framed messages.
    for m in frame::messages(data).flatten() {
        let _ = m.error_code();
        if let Ok((_, _, attrs)) = codec::split_genl(m.payload) {
            let _ = codec::decode_service_msg(attrs);
        }
    }
    // As a whole genl payload and as a bare attribute set.
    if let Ok((_, _, attrs)) = codec::split_genl(data) {
        let _ = codec::decode_service_msg(attrs);
        let _ = codec::decode_dest_msg(attrs, AddressFamily::Inet);
        let _ = codec::decode_daemon_msg(attrs);
        let _ = codec::decode_info(attrs);
        let _ = codec::decode_config(attrs);
        let _ = codec::decode_family_id(attrs);
    }
    let _ = codec::decode_service(data);
    let _ = codec::decode_dest(data, AddressFamily::Inet6);
    let _ = codec::decode_daemon(data);
    let _ = codec::decode_stats(data, true);
    for a in codec::attrs(data).flatten() {
        let _ = codec::decode_stats(a.payload, false);
    }
});
