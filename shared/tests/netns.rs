//! Network-namespace handling on the real kernel: reads run on a thread inside the namespace,
//! procfs is read through /proc/thread-self, and the netlink reader reports a missing IPVS
//! module as such. Needs root and iproute2 (`ip`); creates and removes its own namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::netlink::NetlinkError;
use herald_shared::netns::{run_in_netns, NetnsError};
use herald_shared::reader::{IpvsSource, ReadError, Reader, ReaderConfig, SourceKind};
use herald_test_support::Netns;
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

fn make_ns(tag: &str) -> Netns {
    Netns::create(&format!("herald-rd-{tag}-{}", std::process::id()))
        .unwrap_or_else(|e| panic!("a network namespace (needs root): {e}"))
}

#[test]
fn work_runs_inside_the_namespace_and_procfs_follows_the_thread() {
    let ns = make_ns("dev");
    let host_if = format!("hrd{}a", std::process::id() % 100_000);
    let ns_if = format!("hrd{}b", std::process::id() % 100_000);
    ip(&[
        "link",
        "add",
        &host_if,
        "type",
        "veth",
        "peer",
        "name",
        &ns_if,
        "netns",
        ns.name(),
    ]);
    let read_dev = || {
        std::fs::read_to_string("/proc/thread-self/net/dev").map_err(|source| ReadError::Io {
            path: "/proc/thread-self/net/dev".into(),
            source,
        })
    };
    let inside = run_in_netns(Some(ns.name()), Duration::from_secs(10), read_dev).unwrap();
    assert!(inside.contains(&ns_if), "{inside}");
    assert!(!inside.contains(&host_if), "{inside}");
    // By path as well as by name.
    let by_path = ns.path().display().to_string();
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
    let r = r.snapshot();
    if let Err(e) = &r {
        assert!(
            e.to_string().starts_with(
                "cannot enter network namespace herald-no-such-ns: cannot open /run/netns/herald-no-such-ns: "
            ),
            "{e}"
        );
    }
    match r {
        Err(ReadError::Netns(NetnsError::Open { netns, path, .. })) => {
            assert_eq!(netns, "herald-no-such-ns");
            assert_eq!(path, std::path::Path::new("/run/netns/herald-no-such-ns"));
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
            netns: Some(ns.name().to_owned()),
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
        Ok::<(), ReadError>(())
    });
    assert!(
        matches!(r, Err(ReadError::Netns(NetnsError::Timeout { .. }))),
        "{r:?}"
    );
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
    assert!(matches!(r, Err(NetlinkError::ModuleNotLoaded)), "{r:?}");
    let bytes = std::fs::read(dir.join("ctrl_getfamily-0000.bin")).unwrap();
    let (_, _, attrs) = herald_shared::netlink::codec::split_genl(&bytes).unwrap();
    assert_eq!(
        herald_shared::netlink::codec::decode_family_id(attrs).unwrap(),
        0x10
    );
}

#[test]
fn genl_multipart_dump_with_the_kernel() {
    // CTRL_CMD_GETFAMILY with NLM_F_DUMP lists every family in several messages ending with
    // NLMSG_DONE: the same path as the IPVS service/destination/daemon dumps.
    use herald_shared::netlink::codec;
    let mut s = herald_shared::netlink::io::GenlSocket::open(None).unwrap();
    let payload = codec::genl_payload(3, 1, &[]);
    let replies = s
        .call(0x10, payload.clone(), true, "ctrl_getfamily")
        .unwrap();
    assert!(replies.len() > 1, "only {} families", replies.len());
    let mut names = Vec::new();
    for r in &replies {
        let (_, _, attrs) = codec::split_genl(r).unwrap();
        for a in codec::attrs(attrs) {
            let a = a.unwrap();
            if a.kind == 2 {
                names.push(
                    String::from_utf8_lossy(a.payload)
                        .trim_end_matches('\0')
                        .to_string(),
                );
            }
        }
    }
    assert!(names.iter().any(|n| n == "nlctrl"), "{names:?}");
    assert_eq!(names.len(), replies.len());
    // The socket is reusable after a dump (sequence numbers advance, nothing left over).
    let again = s.call(0x10, payload, true, "ctrl_getfamily").unwrap();
    assert_eq!(again.len(), replies.len());
    assert_eq!(s.resolve_family("nlctrl").unwrap(), 0x10);
}

/// Run as an unprivileged user by `permission_denied_is_typed` (ignored when run directly).
#[test]
#[ignore = "helper: run unprivileged by permission_denied_is_typed"]
fn unprivileged_helper() {
    if std::env::var_os("HERALD_UNPRIV_HELPER").is_none() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_ne!(uid, 0, "helper must not run as root");
    // ETHTOOL_MSG_LINKINFO_SET (3) needs CAP_NET_ADMIN: the kernel answers EPERM before it
    // looks at the attributes, exactly like the IPVS commands (GENL_ADMIN_PERM).
    let mut s = herald_shared::netlink::io::GenlSocket::open(None).unwrap();
    let id = s.resolve_family("ethtool").expect("ethtool genl family");
    let r = s.call(
        id,
        herald_shared::netlink::codec::genl_payload(3, 1, &[]),
        false,
        "ethtool_linkinfo_set",
    );
    match r {
        Err(e @ NetlinkError::PermissionDenied) => {
            assert!(e.to_string().contains("CAP_NET_ADMIN"));
            println!("HELPER-OK");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn permission_denied_is_typed() {
    let exe = std::env::current_exe().unwrap();
    // The test binary must be reachable by `nobody`.
    let copy = std::env::temp_dir().join(format!("herald-unpriv-{}", std::process::id()));
    std::fs::copy(&exe, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test's fork may briefly hold the copy open for writing (ETXTBSY): retry.
    let mut out = None;
    for _ in 0..50 {
        let o = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&copy)
            .args([
                "--exact",
                "netns::unprivileged_helper",
                "--ignored",
                "--nocapture",
            ])
            .env("HERALD_UNPRIV_HELPER", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run setpriv (util-linux): {e}"));
        let busy = String::from_utf8_lossy(&o.stderr).contains("Text file busy");
        out = Some(o);
        if !busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = out.expect("at least one attempt");
    let _ = std::fs::remove_file(&copy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("HELPER-OK"),
        "helper failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
