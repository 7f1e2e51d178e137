//! Benchmark: cost of one generic-netlink request/reply through the reader's socket layer
//! (`GenlSocket::call`), measured on the controller family (present on every kernel): the
//! per-request overhead that a 10,000-service IPVS table pays once per service (GET_DEST).
//!
//! Run: `cargo bench -p herald-shared --bench genl_roundtrip [-- N]` (default 20000 requests),
//! or with `--profile dev` to see the debug-build cost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: an unwrap that fails, fails the bench

use herald_shared::netlink::codec;
use herald_shared::netlink::io::GenlSocket;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut s = GenlSocket::open(None).expect("generic netlink socket");
    let payload = codec::request_get_family("nlctrl");
    let t = Instant::now();
    for _ in 0..n {
        let r = s
            .call(0x10, payload.clone(), false, "ctrl_getfamily")
            .expect("controller reply");
        assert_eq!(r.len(), 1);
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{n} CTRL_CMD_GETFAMILY round trips: {:.1} ms total, {:.1} us each",
        t.elapsed().as_secs_f64() * 1e3,
        per * 1e6
    );
    // The same request as a dump of every family (multi-part reply).
    let dump = codec::genl_payload(3, 1, &[]);
    let t = Instant::now();
    let mut msgs = 0;
    for _ in 0..(n / 10).max(1) {
        msgs += s
            .call(0x10, dump.clone(), true, "ctrl_getfamily")
            .expect("dump")
            .len();
    }
    println!(
        "{} family dumps ({msgs} messages): {:.1} us per dump",
        (n / 10).max(1),
        t.elapsed().as_secs_f64() * 1e6 / (n / 10).max(1) as f64
    );
}
