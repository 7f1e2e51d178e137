//! The streaming connection-table aggregator on `/proc/net/ip_vs_conn` text: every protocol and
//! line form, templates apart, malformed lines, chunk boundaries, overlong lines and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::conntable::*;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

fn data() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ip_vs_conn");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn count(
    s: &ConnTableSummary,
    proto: ConnProtocol,
    v: &str,
    vp: u16,
    d: &str,
    dp: u16,
    st: &str,
) -> u64 {
    let g = ConnGroup {
        protocol: proto,
        virtual_address: v.parse::<IpAddr>().unwrap(),
        virtual_port: vp,
        dest_address: d.parse::<IpAddr>().unwrap(),
        dest_port: dp,
        state: st.to_string(),
    };
    s.groups.get(&g).copied().unwrap_or(0)
}

#[test]
fn aggregates_every_form() {
    let s = aggregate_reader(
        &data()[..],
        DEFAULT_READ_BUFFER,
        &ConnTableLimits::default(),
    )
    .unwrap();
    assert_eq!(s.entries, 9);
    assert_eq!(s.malformed_lines, 2, "garbage line and unknown protocol");
    assert!(!s.truncated);
    use ConnProtocol::*;
    assert_eq!(
        count(&s, Tcp, "192.0.2.1", 80, "198.51.100.11", 80, "ESTABLISHED"),
        2
    );
    assert_eq!(
        count(&s, Tcp, "192.0.2.1", 80, "198.51.100.11", 80, "SYN_RECV"),
        1
    );
    assert_eq!(count(&s, Udp, "192.0.2.2", 53, "203.0.113.1", 53, "UDP"), 1);
    assert_eq!(
        count(&s, Template, "192.0.2.1", 80, "198.51.100.11", 80, "NONE"),
        2,
        "an IP template and a TCP line with client port 0"
    );
    assert_eq!(
        count(
            &s,
            Sctp,
            "2001:db8::1",
            3000,
            "2001:db8::10",
            3000,
            "COOKIE_ECHOED"
        ),
        1
    );
    assert_eq!(
        count(&s, Udp, "192.0.2.3", 5060, "198.51.100.13", 5060, "UDP"),
        1,
        "PE name/data columns"
    );
    assert_eq!(
        count(
            &s,
            Tcp,
            "192.0.2.1",
            80,
            "198.51.100.11",
            80,
            "SOME_NEW_STATE"
        ),
        1,
        "unknown state kept by name"
    );
    assert_eq!(s.groups.values().sum::<u64>(), s.entries);
}

#[test]
fn every_known_state_name_is_accepted() {
    let mut text = String::new();
    for st in KNOWN_STATES {
        text.push_str(&format!(
            "TCP C0000264 D431 C0000201 0050 C633640B 0050 {st:<11} 10\n"
        ));
    }
    let s = aggregate_reader(text.as_bytes(), 4096, &ConnTableLimits::default()).unwrap();
    assert_eq!(s.entries, KNOWN_STATES.len() as u64);
    assert_eq!(s.groups.len(), KNOWN_STATES.len());
    assert_eq!(s.malformed_lines, 0);
}

/// A reader handing out at most `step` bytes per call.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}
impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn big_table(lines: usize) -> Vec<u8> {
    let mut t =
        b"Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
            .to_vec();
    let states = ["ESTABLISHED", "SYN_RECV", "TIME_WAIT", "FIN_WAIT", "CLOSE"];
    for i in 0..lines {
        t.extend_from_slice(
            format!(
                "TCP C0{:06X} {:04X} C0000201 0050 C63364{:02X} 0050 {:<11} {:>7}\n",
                i % 0xffffff,
                1 + i % 0xfffe,
                i % 7,
                states[i % states.len()],
                i % 900
            )
            .as_bytes(),
        );
    }
    t
}

#[test]
fn chunk_boundaries_do_not_change_the_result() {
    let text = big_table(5000);
    let want =
        aggregate_reader(&text[..], DEFAULT_READ_BUFFER, &ConnTableLimits::default()).unwrap();
    assert_eq!(want.entries, 5000);
    assert_eq!(want.groups.len(), 7 * 5);
    for (step, buf) in [
        (1, 4096),
        (7, 4096),
        (4095, 4096),
        (4096, 5000),
        (100_000, 4096),
    ] {
        let got = aggregate_reader(
            Dribble { data: &text, step },
            buf,
            &ConnTableLimits::default(),
        )
        .unwrap();
        assert_eq!(got, want, "step {step} buffer {buf}");
    }
}

#[test]
fn last_line_without_newline_is_counted() {
    let s = aggregate_reader(
        &b"TCP C0000264 D431 C0000201 0050 C633640B 0050 ESTABLISHED 899"[..],
        4096,
        &ConnTableLimits::default(),
    )
    .unwrap();
    assert_eq!(s.entries, 1);
}

#[test]
fn overlong_lines_are_skipped_and_counted() {
    let mut text = big_table(3);
    text.extend(std::iter::repeat_n(b'A', 20_000));
    text.push(b'\n');
    text.extend_from_slice(&big_table(2)[80..]); // two more rows, header cut off
    for step in [1, 333, 100_000] {
        let s = aggregate_reader(
            Dribble { data: &text, step },
            4096,
            &ConnTableLimits::default(),
        )
        .unwrap();
        assert_eq!(s.entries, 5, "step {step}");
        assert_eq!(s.malformed_lines, 1, "step {step}");
    }
}

#[test]
fn entry_limit_truncates() {
    let text = big_table(1000);
    let lim = ConnTableLimits {
        max_entries: Some(100),
        max_duration: None,
    };
    let s = aggregate_reader(&text[..], 4096, &lim).unwrap();
    assert!(s.truncated);
    assert_eq!(s.entries, 100);
    assert_eq!(s.groups.values().sum::<u64>(), 100);
    // Exactly at the limit with nothing left is not truncated.
    let s = aggregate_reader(&big_table(100)[..], 4096, &lim).unwrap();
    assert!(!s.truncated);
    assert_eq!(s.entries, 100);
}

#[test]
fn time_limit_truncates() {
    let text = big_table(5000);
    let lim = ConnTableLimits {
        max_entries: None,
        max_duration: Some(Duration::ZERO),
    };
    let s = aggregate_reader(&text[..], 4096, &lim).unwrap();
    assert!(s.truncated);
    assert!(s.entries < 5000);
}

#[test]
fn memory_follows_groups_not_connections() {
    // 200k connections in 35 groups: the summary has 35 entries.
    let text = big_table(200_000);
    let s = aggregate_reader(&text[..], DEFAULT_READ_BUFFER, &ConnTableLimits::default()).unwrap();
    assert_eq!(s.entries, 200_000);
    assert_eq!(s.groups.len(), 35);
}

#[test]
fn unknown_state_names_are_bounded() {
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!(
            "TCP C0000264 D431 C0000201 0050 C633640B 0050 STATE{i} 10\n"
        ));
    }
    let s = aggregate_reader(text.as_bytes(), 4096, &ConnTableLimits::default()).unwrap();
    assert_eq!(s.entries + s.malformed_lines, 500);
    assert!(s.groups.len() <= 64, "{}", s.groups.len());
}

#[test]
fn random_bytes_never_panic() {
    let base = data();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for round in 0..3000 {
        let mut b = if round % 2 == 0 {
            base.clone()
        } else {
            Vec::new()
        };
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if b.is_empty() || x % 4 == 0 {
                b.push(x as u8);
            } else {
                let at = (x as usize >> 8) % b.len();
                b[at] = (x >> 32) as u8;
            }
        }
        let s = aggregate_reader(&b[..], 4096, &ConnTableLimits::default()).unwrap();
        assert_eq!(s.groups.values().sum::<u64>(), s.entries);
    }
}
