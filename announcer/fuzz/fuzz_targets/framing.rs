//! Fuzz target: an arbitrary byte stream, delivered in chunks, through the `BgpFraming`
//! codec and then `packet::decode` for each frame. Must never panic, never return a frame
//! that is not exactly the declared length, and stop at the first error.
#![no_main]

use bytes::BytesMut;
use herald_announcer::bgp::packet::{self, BgpFraming};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size, so frames straddle reads in many ways.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut codec = BgpFraming;
    let mut buf = BytesMut::new();
    let mut ctx = packet::parsing_context(true);
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let declared = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
                    assert_eq!(declared, frame.len());
                    assert!(frame.len() <= packet::MAX_MESSAGE_LEN);
                    let _ = packet::decode(&frame, &mut ctx);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
