//! The procfs parsers (`/proc/net/ip_vs`, `/proc/net/ip_vs_stats`) on text laid out like the
//! kernel's `ip_vs_info_seq_show` / `ip_vs_stats_show`, with bad input of every kind, and the
//! `Reader` in procfs mode over a fake procfs root.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::model::*;
use herald_shared::procfs::{parse_ip_vs, parse_ip_vs_stats};
use herald_shared::reader::{IpvsSource, ReadError, Reader, ReaderConfig, SourceKind};
use std::path::{Path, PathBuf};

/// CONFIG_HZ the fixtures were written for (persistence timeouts are in jiffies).
const HZ: u32 = 250;

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn ip_vs_every_line_form() {
    let (info, svcs) = parse_ip_vs(&data("ip_vs"), HZ).unwrap();
    assert_eq!(info.version, 0x010201);
    assert_eq!(info.conn_table_size, 4096);
    assert_eq!(svcs.len(), 5);

    let tcp = &svcs[0];
    assert_eq!(tcp.key.to_string(), "TCP 192.0.2.1:80");
    assert_eq!(tcp.scheduler, "wlc");
    assert!(tcp.flags.persistent && tcp.flags.hashed && !tcp.flags.one_packet);
    assert_eq!(tcp.persistence_timeout, 300);
    assert_eq!(tcp.netmask, 0xffff_ff00);
    assert_eq!(tcp.destinations.len(), 2);
    let d = &tcp.destinations[0];
    assert_eq!(d.address.to_string(), "198.51.100.11");
    assert_eq!((d.port, d.forward, d.weight), (80, ForwardMethod::Route, 1));
    assert_eq!((d.active_conns, d.inactive_conns), (3, 4));
    assert_eq!(tcp.destinations[1].port, 8080);
    assert_eq!(tcp.destinations[1].forward, ForwardMethod::Masq);

    let udp = &svcs[1];
    assert_eq!(udp.key.to_string(), "UDP 192.0.2.2:53");
    assert!(udp.flags.one_packet && !udp.flags.persistent);
    assert_eq!(udp.destinations[0].forward, ForwardMethod::Tunnel);
    assert_eq!(udp.destinations[0].inactive_conns, 12);

    let sctp = &svcs[2];
    assert_eq!(sctp.key.to_string(), "SCTP [2001:db8::1]:3000");
    assert_eq!(
        sctp.netmask, 64,
        "IPv6 prefix length from ntohl(host-order u32)"
    );
    assert_eq!(sctp.destinations[0].family, AddressFamily::Inet6);
    assert_eq!(sctp.destinations[0].forward, ForwardMethod::Local);

    let fwm = &svcs[3];
    assert_eq!(
        fwm.key,
        ServiceKey::Fwmark {
            family: AddressFamily::Inet,
            mark: 7
        }
    );
    assert_eq!(fwm.destinations[0].forward, ForwardMethod::Bypass);
    assert_eq!(fwm.destinations[0].weight, -2);

    assert_eq!(svcs[4].key.to_string(), "TCP [2001:db8::2]:443");
    assert!(svcs[4].destinations.is_empty());
}

#[test]
fn ip_vs_empty_table_and_plain_ipv6_prefix() {
    let text = "IP Virtual Server version 1.2.1 (size=1048576)\n\
                Prot LocalAddress:Port Scheduler Flags\n  \
                -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n";
    let (info, svcs) = parse_ip_vs(text, HZ).unwrap();
    assert_eq!(info.conn_table_size, 1 << 20);
    assert!(svcs.is_empty());
    let t = format!("{text}UDP  [2001:0db8::5]:0035 rr persistent 10 00000080\n");
    assert_eq!(parse_ip_vs(&t, HZ).unwrap().1[0].netmask, 128);
    // A fwmark service whose destinations are all IPv6 is an IPv6 fwmark service.
    let t =
        format!("{text}FWM  0000000A rr\n  -> [2001:0db8::7]:0000 Route 1 0 0\nFWM  0000000B rr\n");
    let svcs = parse_ip_vs(&t, HZ).unwrap().1;
    assert_eq!(svcs[0].key.to_string(), "FWM 10 IPv6");
    assert_eq!(svcs[1].key.to_string(), "FWM 11");
}

#[test]
fn ip_vs_bad_input_names_the_line_and_problem() {
    let head = "IP Virtual Server version 1.2.1 (size=4096)\n";
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "empty file"),
        ("IPVS something else\n", 1, "unexpected header"),
        (
            "IP Virtual Server version 1.2 (size=4096)\n",
            1,
            "version component",
        ),
        (
            "IP Virtual Server version 1.2.999 (size=4096)\n",
            1,
            "over 255",
        ),
        (
            "IP Virtual Server version 1.2.1 (size=x)\n",
            1,
            "connection table size",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse_ip_vs(text, HZ).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
    let body_cases: &[(&str, &str)] = &[
        ("ICMP  C0000201:0050 rr\n", "unknown service protocol"),
        ("TCP  C0000201 rr\n", "expected HEXADDR:HEXPORT"),
        ("TCP  C00002011:0050 rr\n", "IPv4 address"),
        ("TCP  C0000201:10000 rr\n", "port"),
        ("TCP  [2001:db8::zz]:0050 rr\n", "not an IPv6 address"),
        ("TCP  [2001:db8::1:0050 rr\n", "[IPv6]:PORT"),
        ("TCP  C0000201:0050\n", "no scheduler"),
        ("TCP  C0000201:0050 rr persistent\n", "persistence timeout"),
        ("TCP  C0000201:0050 rr persistent 300\n", "without a mask"),
        (
            "TCP  C0000201:0050 rr persistent -5 FFFFFFFF\n",
            "persistence timeout",
        ),
        ("TCP  C0000201:0050 rr weird\n", "unknown flag"),
        ("FWM\n", "without a mark"),
        ("  -> C0000201:0050 Route 1 0 0\n", "before any service"),
        (
            "TCP  C0000201:0050 rr\n  -> C0000202:0050 Teleport 1 0 0\n",
            "unknown forwarding method",
        ),
        (
            "TCP  C0000201:0050 rr\n  -> C0000202:0050 Route x 0 0\n",
            "weight",
        ),
        (
            "TCP  C0000201:0050 rr\n  -> C0000202:0050 Route 1 0\n",
            "missing inactive",
        ),
        ("TCP  C0000201:0050 rr\n  ->\n", "without an address"),
    ];
    for (body, needle) in body_cases {
        let text = format!("{head}{body}");
        let e = parse_ip_vs(&text, HZ).unwrap_err();
        assert!(e.line >= 2, "{body:?}: {e}");
        assert!(e.message.contains(needle), "{body:?}: {e}");
    }
}

#[test]
fn ip_vs_every_truncation_is_ok_or_error() {
    let full = data("ip_vs");
    for cut in 0..=full.len() {
        if let Some(prefix) = full.get(..cut) {
            let _ = parse_ip_vs(prefix, HZ);
        }
    }
}

#[test]
fn ip_vs_stats_counters_and_rates() {
    let g = parse_ip_vs_stats(&data("ip_vs_stats")).unwrap();
    assert_eq!(g.counters.conns, 5);
    assert_eq!(g.counters.in_packets, 0x64);
    assert_eq!(g.counters.in_bytes, 0x1770);
    assert_eq!(g.rates.conns_per_second, 1);
    assert_eq!(g.rates.in_bytes_per_second, 0x78);
    assert_eq!(g.rates.out_bytes_per_second, u64::MAX);
}

#[test]
fn ip_vs_stats_bad_input() {
    for (text, needle) in [
        ("", "found 0 value line"),
        (
            "       5       64        0\n",
            "expected 5 hexadecimal values",
        ),
        ("1 2 3 4 5\n", "found 1 value line"),
        ("1 2 3 4 5\n1 2 3 4 5\n1 2 3 4 5\n", "found 3 value line"),
        (
            "1 2 3 4 12345678901234567\n1 2 3 4 5\n",
            "wider than 64 bits",
        ),
    ] {
        let e = parse_ip_vs_stats(text).unwrap_err();
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn random_text_never_panics() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let alphabet = b"0123456789ABCDEFabcdef:[]-> .\nTCPUDPSCTPFWMpersistentops";
    let full = data("ip_vs");
    for round in 0..5000 {
        let mut s: Vec<u8> = if round % 2 == 0 {
            full.as_bytes().to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = alphabet[(x as usize) % alphabet.len()];
            if s.is_empty() || x % 3 == 0 {
                s.push(c);
            } else {
                let at = (x as usize >> 8) % s.len();
                s[at] = c;
            }
        }
        let text = String::from_utf8_lossy(&s);
        let _ = parse_ip_vs(&text, HZ);
        let _ = parse_ip_vs_stats(&text);
    }
}

fn fake_root(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fakeproc-{tag}"));
    let net = dir.join("net");
    std::fs::create_dir_all(&net).unwrap();
    for f in ["ip_vs", "ip_vs_stats", "ip_vs_conn"] {
        std::fs::write(net.join(f), data(f)).unwrap();
    }
    dir
}

#[test]
fn reader_in_procfs_mode_reads_a_fake_root() {
    let cfg = ReaderConfig {
        source: SourceKind::Procfs,
        procfs_root: fake_root("reader"),
        kernel_hz: Some(HZ),
        ..ReaderConfig::default()
    };
    let r = Reader::new(cfg);
    let snap = r.snapshot().unwrap();
    assert_eq!(snap.services.len(), 5);
    assert_eq!(snap.services[0].persistence_timeout, 300);
    assert_eq!(snap.global.unwrap().counters.conns, 5);
    assert!(snap.timeouts.is_none() && snap.daemons.is_empty());
    let sum = r
        .conn_table(&herald_shared::conntable::ConnTableLimits::default())
        .unwrap();
    assert_eq!(sum.entries, 9);
    assert_eq!(sum.malformed_lines, 2);
}

#[test]
fn reader_reports_missing_ipvs_as_module_not_loaded() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fakeproc-empty");
    std::fs::create_dir_all(dir.join("net")).unwrap();
    let r = Reader::new(ReaderConfig {
        source: SourceKind::Procfs,
        procfs_root: dir,
        ..ReaderConfig::default()
    });
    assert!(matches!(r.snapshot(), Err(ReadError::ModuleNotLoaded)));
    assert!(matches!(
        r.conn_table(&Default::default()),
        Err(ReadError::ModuleNotLoaded)
    ));
}

#[test]
fn reader_config_keys_and_defaults() {
    let cfg: ReaderConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, ReaderConfig::default());
    assert_eq!(cfg.conn_read_buffer, 1 << 20);
    assert_eq!(cfg.timeout, std::time::Duration::from_secs(10));
    let cfg: ReaderConfig = toml::from_str(
        "netns = \"blue\"\nsource = \"procfs\"\nprocfs_root = \"/x\"\ntimeout = \"10ms\"\nconn_read_buffer = 4096\n",
    )
    .unwrap();
    assert_eq!(cfg.source, SourceKind::Procfs);
    assert_eq!(cfg.netns.as_deref(), Some("blue"));
    assert!(toml::from_str::<ReaderConfig>("bogus = 1").is_err());
    let cfg: ReaderConfig = toml::from_str("kernel_hz = 1000").unwrap();
    assert_eq!(cfg.kernel_hz, Some(1000));
    // No osrelease under a fake root: unknown.
    assert_eq!(
        herald_shared::procfs::kernel_hz(Path::new("/nonexistent")),
        None
    );
    assert!(toml::from_str::<ReaderConfig>("source = \"kernel\"").is_err());
}
