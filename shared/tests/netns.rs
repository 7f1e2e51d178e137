//! Network-namespace handling on the real kernel: reads run on a thread inside the namespace,
//! procfs is read through /proc/thread-self, and the netlink reader reports a missing IPVS
//! module as such. Needs root and iproute2 (`ip`); creates and removes its own namespace.

use herald_shared::netns::run_in_netns;
use herald_shared::reader::{IpvsSource, ReadError, Reader, ReaderConfig, SourceKind};
use std::process::Command;
use std::time::Duration;

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (install iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn make_ns(tag: &str) -> Ns {
    let name = format!("herald-rd-{tag}-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    ip(&["netns", "add", &name]);
    Ns(name)
}

#[test]
fn work_runs_inside_the_namespace_and_procfs_follows_the_thread() {
    let ns = make_ns("dev");
    let host_if = format!("hrd{}a", std::process::id() % 100_000);
    let ns_if = format!("hrd{}b", std::process::id() % 100_000);
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &ns.0,
    ]);
    let read_dev = || {
        std::fs::read_to_string("/proc/thread-self/net/dev").map_err(|source| ReadError::Io {
            path: "/proc/thread-self/net/dev".into(),
            source,
        })
    };
    let inside = run_in_netns(Some(&ns.0), Duration::from_secs(10), read_dev).unwrap();
    assert!(inside.contains(&ns_if), "{inside}");
    assert!(!inside.contains(&host_if), "{inside}");
    // By path as well as by name.
    let by_path = format!("/run/netns/{}", ns.0);
    let inside2 = run_in_netns(Some(&by_path), Duration::from_secs(10), read_dev).unwrap();
    assert!(inside2.contains(&ns_if));
    // The calling thread never moved.
    let outside = run_in_netns(None, Duration::from_secs(10), read_dev).unwrap();
    assert!(
        outside.contains(&host_if) && !outside.contains(&ns_if),
        "{outside}"
    );
}

#[test]
fn missing_namespace_is_a_netns_error() {
    let r = Reader::new(ReaderConfig {
        netns: Some("herald-no-such-ns".into()),
        ..ReaderConfig::default()
    });
    match r.snapshot() {
        Err(ReadError::Netns { netns, reason }) => {
            assert_eq!(netns, "herald-no-such-ns");
            assert!(reason.contains("/run/netns/herald-no-such-ns"), "{reason}");
        }
        other => panic!("expected a netns error, got {other:?}"),
    }
}

#[test]
fn netlink_without_ipvs_is_module_not_loaded() {
    // A fresh namespace on a kernel without ip_vs: the family cannot be resolved. (With IPVS
    // loaded the same call must succeed and show no services.)
    let ns = make_ns("nl");
    let have_ipvs = std::path::Path::new("/proc/net/ip_vs").exists();
    for source in [SourceKind::Netlink, SourceKind::Auto] {
        let r = Reader::new(ReaderConfig {
            netns: Some(ns.0.clone()),
            source,
            ..ReaderConfig::default()
        });
        match (have_ipvs, r.snapshot()) {
            (false, Err(ReadError::ModuleNotLoaded)) => {}
            (true, Ok(s)) => assert!(s.services.is_empty()),
            (h, other) => panic!("ipvs loaded: {h}, source {source:?}: {other:?}"),
        }
        let e = r.conn_table(&Default::default());
        assert!(
            have_ipvs || matches!(e, Err(ReadError::ModuleNotLoaded)),
            "{e:?}"
        );
    }
}

#[test]
fn slow_work_times_out() {
    let r = run_in_netns(None, Duration::from_millis(50), || {
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    });
    assert!(matches!(r, Err(ReadError::Timeout(_))), "{r:?}");
}

#[test]
fn genl_socket_round_trip_with_the_kernel() {
    // The controller family always exists: resolving it exercises send, receive, sequence
    // matching and reply decoding against the real kernel, and capture writes the reply.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-nlctrl");
    let _ = std::fs::remove_dir_all(&dir);
    let cap = herald_shared::netlink::Capture::new(&dir).unwrap();
    let mut s = herald_shared::netlink::io::GenlSocket::open(Some(cap)).unwrap();
    assert_eq!(s.resolve_family("nlctrl").unwrap(), 0x10);
    let r = s.resolve_family("nosuchfam");
    assert!(matches!(r, Err(ReadError::ModuleNotLoaded)), "{r:?}");
    let bytes = std::fs::read(dir.join("ctrl_getfamily-0000.bin")).unwrap();
    let (_, _, attrs) = herald_shared::netlink::codec::split_genl(&bytes).unwrap();
    assert_eq!(
        herald_shared::netlink::codec::decode_family_id(attrs).unwrap(),
        0x10
    );
}
