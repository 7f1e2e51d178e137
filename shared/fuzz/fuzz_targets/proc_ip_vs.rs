//! Fuzz target: the /proc/net/ip_vs parser on arbitrary text (must never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = herald_shared::procfs::parse_ip_vs(&text, 250);
});
