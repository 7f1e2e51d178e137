//! Network namespaces for the interop tests: a `Lab` is two fresh namespaces (the
//! speaker side and the router side) joined by one veth pair carrying documentation
//! addresses, plus a per-test working directory for configs, sockets and logs.
//!
//! Names are unique per process and test (pid + counter), so tests run in parallel.
//! Dropping a `Lab` kills whatever still runs inside its namespaces (by pid) and
//! deletes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use herald_test_support::Netns;

use super::process::run;
use super::{deps, err, TResult};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Prefix of every namespace this harness creates: `hi<pid>x<n>-spk|rtr`.
const NS_PREFIX: &str = "hi";

/// Deletes namespaces left behind by an earlier test process of this harness that was
/// killed before its `Drop`s ran (its pid no longer exists). Processes still inside
/// such a namespace were started by that run and are killed by pid first.
fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once('x') else {
            continue;
        };
        let shaped = tail
            .split_once('-')
            .is_some_and(|(n, side)| n.parse::<u32>().is_ok() && (side == "spk" || side == "rtr"));
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !shaped || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("interop: removing stale namespace {name} of dead test process {pid}");
        drop(Netns::adopt(name));
    }
}

/// Speaker-side IPv4 address on the lab link.
pub const SPEAKER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Router-side IPv4 address on the lab link.
pub const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Speaker-side IPv6 address on the lab link.
pub const SPEAKER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Router-side IPv6 address on the lab link.
pub const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Runs `ip args…`.
pub fn ip(args: &[&str]) -> TResult<String> {
    let mut c = Command::new("ip");
    c.args(args);
    run(c, Duration::from_secs(20))
}

/// Two namespaces joined by veth (`eth0` on both sides) plus a working directory.
#[derive(Debug)]
pub struct Lab {
    /// Where the announcing side (our speaker or a reference daemon) lives.
    pub speaker: Netns,
    /// Where the router under test lives.
    pub router: Netns,
    dir: PathBuf,
    /// Short unique tag, e.g. for log prefixes.
    pub tag: String,
}

impl Lab {
    /// Builds a fresh lab for test `test` (a short identifier, used in names).
    pub fn new(test: &str) -> TResult<Self> {
        deps::ensure()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            sweep_stale();
        }
        let tag = format!("{NS_PREFIX}{}x{n}", std::process::id());
        let speaker = Netns::create(&format!("{tag}-spk"))?;
        let router = Netns::create(&format!("{tag}-rtr"))?;
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            speaker.name(),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            router.name(),
        ])?;
        for (ns, v4, v6) in [
            (&speaker, SPEAKER_V4, SPEAKER_V6),
            (&router, ROUTER_V4, ROUTER_V6),
        ] {
            let n = ns.name();
            ip(&["-n", n, "addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            ip(&["-n", n, "link", "set", "eth0", "up"])?;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("interop")
            .join(format!("{test}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // FRR drops privileges to user `frr` and must create its sockets here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        Ok(Self {
            speaker,
            router,
            dir,
            tag,
        })
    }

    /// The per-test working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates (0777) and returns a subdirectory of the working directory.
    pub fn subdir(&self, name: &str) -> TResult<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {}: {e}", d.display()))?;
        Ok(d)
    }

    /// Speaker's transport address for the given family.
    pub fn speaker_addr(v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(SPEAKER_V6)
        } else {
            IpAddr::V4(SPEAKER_V4)
        }
    }

    /// Router's transport address for the given family.
    pub fn router_addr(v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(ROUTER_V6)
        } else {
            IpAddr::V4(ROUTER_V4)
        }
    }

    /// Checks that the router side answers on the link (via a TCP connect attempt is
    /// not possible before daemons run, so via the neighbour-free `ip route get`).
    pub fn check(&self) -> TResult<()> {
        let out = self
            .speaker
            .exec("ip", &["route", "get", &ROUTER_V4.to_string()])?;
        if !out.contains("eth0") {
            return err(format!("lab route to {ROUTER_V4} is not via eth0: {out}"));
        }
        Ok(())
    }
}
