//! Fuzz target: the streaming /proc/net/ip_vs_conn aggregator on arbitrary bytes (must never
//! panic, and the group counts must always add up to the entries).
#![no_main]

use herald_shared::conntable::{aggregate_reader, ConnTableLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The smallest read buffer, so inputs over 4 KiB cross chunk boundaries.
    if let Ok(s) = aggregate_reader(data, 4096, &ConnTableLimits::default()) {
        assert_eq!(s.groups.values().sum::<u64>(), s.entries);
    }
});
