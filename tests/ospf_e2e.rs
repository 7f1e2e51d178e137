//! OSPF end to end with the real binary: `ipvs-herald run` with `backend = "kernel"` on two
//! directors, each beside a routing daemon that redistributes the daemon's VIP into OSPF with
//! the shipped snippet (`config/bird-ospf.conf` included as it is, `config/frr-ospf.conf` applied
//! as it is; only the router id, a line the snippets mark CHANGE, is set after them, because two
//! directors cannot share one), and a router running the same daemon flavour. Three runs:
//! BIRD 2 on all three and FRR (`zebra` + `ospfd`) on all three, in address mode (the VIP on
//! `herald0` only while announced, `vip_address = "ignore"` as in
//! `config/examples/ospf-kernel.toml`); and BIRD in route mode with the VIP on `lo` all the time
//! (`vip_address = "require"`, as an IPVS director has it; not with FRR, which then never
//! redistributes it: see `config/frr-ospf.conf`).
//!
//! ```text
//!   cl 198.51.100.2 ── cl│rt│d1 ── eth0 d1 192.0.2.2  (responder "d1")
//!                        │  │d2 ── eth0 d2 192.0.2.6  (responder "d2")
//! ```
//!
//! The host kernel has no IPVS: each daemon reads a fake `/proc/net/ip_vs` the test rewrites,
//! and a bounded TCP responder thread in each director's namespace (port 80, any address)
//! answers with the director's name. The kernel here has no dummy interfaces either: `herald0`
//! is made by the test (a dummy where the kernel has them, else an `ifb` device) and the daemon
//! uses it (`create_interface = false`; the backend's own dummy creation is
//! `announcer/tests/ospf_backend.rs`'s).
//!
//! Each run proves, from the router's kernel table (`ip route show exact VIP`): an ECMP route with
//! both directors as next hops, installed by the router's OSPF daemon; traffic from `cl` (many
//! source ports, L4 multipath hash) answered by both directors; d1's pool below its threshold →
//! only d2 is left (and d1's kernel lost the VIP; all traffic goes to d2), the pool back → both
//! again; SIGTERM to d2's daemon → the VIP leaves d2's kernel before the process has exited
//! (exit status 0), then d2's next hop leaves the router (the order printed with timestamps).
//! Every wait is bounded and its failure quotes the routing daemons' and the daemons' logs.
//! Needs root; BIRD 2, FRR and busybox are installed by `tests/deps.sh` when missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::herald_world::{
    ensure_packages, ip, wait_until, write_atomic, Bird, FakeIpvs, Herald, TResult, World,
};
use herald_test_support::Frr;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const PREFIX: &str = "203.0.113.10/32";
const PORT: u16 = 80;
const ROUTER_ID: &str = "192.0.2.1";
/// Bound on the first convergence (daemons starting, adjacencies, SPF; generous: the machine
/// is shared) and on each later change reaching the router.
const SETUP: Duration = Duration::from_secs(90);
const CHANGE: Duration = Duration::from_secs(30);
/// Bound on a responder thread's life, whatever happens to the test.
const RESPONDER_LIFE: Duration = Duration::from_secs(600);

/// The routing daemon on all three, and how the directors' daemons install the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// BIRD, address mode (the VIP on `herald0` only while announced).
    Bird,
    /// FRR, address mode.
    Frr,
    /// BIRD, route mode: the VIP on `lo` all the time (as IPVS needs it local;
    /// `vip_address = "require"`) and `VIP dev lo table 100 proto 72` while announced. Not with
    /// FRR: see `config/frr-ospf.conf` (a VIP also on `lo` is never redistributed there).
    BirdRouteMode,
}

impl Flavour {
    fn bird(self) -> bool {
        self != Flavour::Frr
    }

    fn route_mode(self) -> bool {
        self == Flavour::BirdRouteMode
    }
}

/// One director: its namespace's name, router-side link address (its router id), and the
/// router's address on that link.
struct Site {
    name: &'static str,
    addr: &'static str,
    rt_addr: &'static str,
}

const SITES: [Site; 2] = [
    Site {
        name: "d1",
        addr: "192.0.2.2",
        rt_addr: "192.0.2.1",
    },
    Site {
        name: "d2",
        addr: "192.0.2.6",
        rt_addr: "192.0.2.5",
    },
];

/// A routing daemon of either flavour.
enum Routing {
    Bird(Bird),
    Frr(Frr),
}

impl Routing {
    /// Its view of OSPF and of the VIP, then its logs' last lines.
    fn diag(&self, who: &str) -> String {
        match self {
            Routing::Bird(b) => format!(
                "=== BIRD {who} ===\n{}\n{}\n{}\n{}",
                b.birdc(&["show", "protocols"]).unwrap_or_else(|e| e),
                b.birdc(&["show", "ospf", "neighbors"])
                    .unwrap_or_else(|e| e),
                b.birdc(&["show", "route", "all"]).unwrap_or_else(|e| e),
                b.logs()
            ),
            Routing::Frr(f) => format!(
                "=== FRR {who} ===\n{}\n{}\n{}",
                f.try_cmd("show ip ospf neighbor").1,
                f.try_cmd("show ip route").1,
                f.log_tails(25)
            ),
        }
    }

    /// Whether the router's daemon holds the VIP as an OSPF external route.
    fn learned_over_ospf(&self) -> TResult<bool> {
        match self {
            Routing::Bird(b) => {
                let out = b.route_all(PREFIX)?;
                Ok(out.contains("ospf4") && out.contains("OSPF-E2"))
            }
            Routing::Frr(f) => {
                let out = f
                    .cmd(&format!("show ip route {PREFIX}"))
                    .map_err(|e| e.to_string())?;
                Ok(out.contains("Known via \"ospf\""))
            }
        }
    }
}

/// One director's `ipvs-herald run`, fake IPVS table, routing daemon and responder.
struct Director {
    name: &'static str,
    ns: String,
    gateway: &'static str,
    herald: Herald,
    ipvs: FakeIpvs,
    routing: Routing,
    stop: Arc<AtomicBool>,
}

struct Lab {
    flavour: Flavour,
    rt: String,
    cl: String,
    router: Routing,
    d: Vec<Director>,
    // Last: the namespaces go (with every process left in them) after the guards above.
    w: World,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in &self.d {
            d.stop.store(true, Ordering::SeqCst);
        }
    }
}

impl Lab {
    /// Everything a failure report needs: the router's table, every routing daemon's view and
    /// log, every `ipvs-herald` log.
    fn diag(&self) -> String {
        let mut s = format!(
            "router kernel: {}\n{}",
            ip(&["-n", &self.rt, "-4", "route", "show"]).unwrap_or_else(|e| e),
            self.router.diag("router")
        );
        for d in &self.d {
            s.push_str(&d.routing.diag(d.name));
            s.push_str(&format!(
                "\n{} addresses: {}\n{} routes for the VIP: {}\n{}\n",
                d.name,
                ip(&["-n", &d.ns, "-4", "addr", "show"]).unwrap_or_else(|e| e),
                d.name,
                ip(&["-n", &d.ns, "-4", "route", "show", "table", "all", "exact", PREFIX])
                    .unwrap_or_else(|e| e),
                d.herald.logs()
            ));
        }
        s
    }

    /// Panics with `what`'s error and the whole report.
    fn ok<T>(&self, what: &str, r: TResult<T>) -> T {
        r.unwrap_or_else(|e| panic!("[{:?}] {what}: {e}\n{}", self.flavour, self.diag()))
    }

    /// The router's next hops for the VIP (sorted), and the `proto` of its kernel route.
    fn next_hops(&self) -> TResult<(Vec<String>, String)> {
        router_next_hops(&self.rt)
    }

    fn wait_next_hops(&self, what: &str, want: &[&str], timeout: Duration) -> Duration {
        let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
        let r = wait_until(what, timeout, Duration::from_millis(50), || {
            Ok(self.next_hops()?.0 == want)
        });
        self.ok(what, r)
    }

    /// `n` TCP connections from `cl` to the VIP, each from a new source port; answers counted
    /// by the text received (a director's name) or the error.
    fn traffic(&self, n: usize) -> BTreeMap<String, usize> {
        let target = SocketAddr::from((VIP, PORT));
        let cl = self.ok("client namespace", self.w.ns(&self.cl));
        let handle = cl.spawn_in(move || -> Result<_, herald_test_support::Error> {
            let mut counts = BTreeMap::new();
            for _ in 0..n {
                let answer = TcpStream::connect_timeout(&target, Duration::from_secs(2))
                    .and_then(|mut s| {
                        s.set_read_timeout(Some(Duration::from_secs(2)))?;
                        let mut text = String::new();
                        s.read_to_string(&mut text)?;
                        Ok(text)
                    })
                    .unwrap_or_else(|e| format!("error: {e}"));
                *counts.entry(answer).or_insert(0) += 1;
            }
            Ok(counts)
        });
        let r = handle
            .join()
            .map_err(|_| "the client thread panicked".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        self.ok("traffic from cl", r)
    }

    fn vip_on(&self, d: usize) -> TResult<bool> {
        vip_installed(&self.d[d].ns, self.flavour)
    }
}

/// `ip route show exact VIP` in the router: the gateways (sorted) and the route's `proto`.
fn router_next_hops(rt: &str) -> TResult<(Vec<String>, String)> {
    let out = ip(&["-n", rt, "-4", "route", "show", "exact", PREFIX])?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let mut hops: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
        .collect();
    hops.sort();
    let proto = words
        .windows(2)
        .find(|w| w[0] == "proto")
        .map(|w| w[1].to_owned())
        .unwrap_or_default();
    Ok((hops, proto))
}

/// Whether the director's daemon has the VIP installed: on `herald0` (address mode) or in
/// table 100 (route mode).
fn vip_installed(ns: &str, flavour: Flavour) -> TResult<bool> {
    if flavour.route_mode() {
        // `table all`: table 100 does not exist before the first route (`ip` then fails).
        let out = ip(&[
            "-n", ns, "-4", "route", "show", "table", "all", "exact", PREFIX,
        ])?;
        Ok(out.lines().any(|l| l.contains("table 100")))
    } else {
        Ok(ip(&["-n", ns, "-4", "addr", "show", "dev", "herald0"])?.contains(PREFIX))
    }
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// A TCP server on port 80 of every address of `ns` that answers each connection with `name`
/// and closes it; ends when `stop` is set, or after [`RESPONDER_LIFE`].
fn responder(ns: &herald_test_support::Netns, name: &'static str, stop: Arc<AtomicBool>) {
    // The thread is detached: `stop` (set when the lab is dropped) or the bound ends it.
    let _detached = ns.spawn_in(move || -> Result<u64, herald_test_support::Error> {
        let io = |what: &str, source| herald_test_support::Error::Io {
            what: format!("responder {name}: {what}"),
            source,
        };
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).map_err(|e| io("bind", e))?;
        l.set_nonblocking(true)
            .map_err(|e| io("set_nonblocking", e))?;
        let start = Instant::now();
        let mut served = 0;
        while !stop.load(Ordering::SeqCst) && start.elapsed() < RESPONDER_LIFE {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = s.write_all(name.as_bytes());
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(io("accept", e)),
            }
        }
        Ok(served)
    });
}

fn herald_config(dir: &Path, ipvs: &FakeIpvs, flavour: Flavour) -> String {
    let (mode, vip_address) = if flavour.route_mode() {
        ("route", "require")
    } else {
        ("address", "ignore")
    };
    format!(
        r#"[reader]
source = "procfs"
procfs_root = "{procfs}"
kernel_hz = 250

[exporter]
listen = "127.0.0.1:9639"

[exporter.conn_table]
enabled = false

[announcer]
backend = "kernel"
admin_socket = "{dir}/admin.sock"
maintenance_file = "{dir}/maintenance"
state_file = "{dir}/state.json"
shutdown_drain_time = "1s"
shutdown_timeout = "5s"

[announcer.kernel]
mode = "{mode}"
interface = "herald0"
create_interface = false
table = 100
route_device = "lo"

[[announcer.vip_groups]]
name = "web"
prefixes = ["{PREFIX}"]
interval = "200ms"
rise = 2
fall = 2
hold_down = "1s"
vip_address = "{vip_address}"
"#,
        procfs = ipvs.root.display(),
        dir = dir.display(),
    )
}

fn bird_router_config() -> String {
    format!(
        r#"router id {ROUTER_ID};
protocol device {{ scan time 10; }}
protocol kernel {{ ipv4 {{ import none; export where net ~ [ 203.0.113.0/24+ ]; }}; }}
protocol ospf v2 ospf4 {{
	ecmp yes;
	# Without it BIRD keeps one path of equal external LSAs from two routers (default off).
	merge external yes;
	ipv4 {{ import all; export none; }};
	area 0 {{ interface "d1", "d2" {{ type ptp; hello 1; dead 4; }}; }};
}}
"#
    )
}

fn frr_router_config() -> String {
    let mut c = String::new();
    for ifname in ["d1", "d2"] {
        c.push_str(&format!(
            "interface {ifname}\n ip ospf area 0\n ip ospf network point-to-point\n ip ospf hello-interval 1\n ip ospf dead-interval 4\nexit\n"
        ));
    }
    c.push_str(&format!("router ospf\n ospf router-id {ROUTER_ID}\nexit\n"));
    c
}

/// The shipped snippet as it is, then this director's router id (a CHANGE line of the
/// snippet; two directors with the snippet's 192.0.2.1 would be one router to OSPF).
fn director_routing(
    flavour: Flavour,
    ns: &herald_test_support::Netns,
    dir: &Path,
    addr: &str,
) -> TResult<Routing> {
    match flavour {
        Flavour::Bird | Flavour::BirdRouteMode => {
            let conf = format!(
                "include \"{}\";\nrouter id {addr};\n",
                shipped("bird-ospf.conf").display()
            );
            Ok(Routing::Bird(Bird::start(ns.name(), dir, &conf)?))
        }
        Flavour::Frr => {
            let snippet = std::fs::read_to_string(shipped("frr-ospf.conf"))
                .map_err(|e| format!("config/frr-ospf.conf: {e}"))?;
            let conf = format!(
                "{snippet}\nrouter ospf\n ospf router-id {addr}\nexit\nrouter ospf6\n ospf6 router-id {addr}\nexit\n"
            );
            Frr::start(ns, dir, "frr", &conf, &["zebra", "ospfd", "ospf6d"])
                .map(Routing::Frr)
                .map_err(|e| e.to_string())
        }
    }
}

fn setup(flavour: Flavour) -> TResult<Lab> {
    ensure_packages(&[
        "bird", "birdc", "zebra", "ospfd", "ospf6d", "vtysh", "busybox",
    ])?;
    let (name, short) = match flavour {
        Flavour::Bird => ("ospf-e2e-bird", "oeb"),
        Flavour::Frr => ("ospf-e2e-frr", "oef"),
        Flavour::BirdRouteMode => ("ospf-e2e-bird-route", "oer"),
    };
    let mut w = World::new(name, short)?;
    let rt = w.netns("rt")?;
    let cl = w.netns("cl")?;
    w.veth(&cl, "eth0", &rt, "cl")?;
    w.addr(&cl, "eth0", "198.51.100.2/24")?;
    w.addr(&rt, "cl", "198.51.100.1/24")?;
    ip(&["-n", &cl, "route", "add", "default", "via", "198.51.100.1"])?;
    // The router hashes on ports too, so one client spreads over both paths.
    w.sysctl(
        &rt,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
        ],
    )?;
    let mut nss = Vec::new();
    for s in &SITES {
        let ns = w.netns(s.name)?;
        // The snippets' uplink is eth0; the router names each link after its director.
        w.veth(&ns, "eth0", &rt, s.name)?;
        w.addr(&ns, "eth0", &format!("{}/30", s.addr))?;
        w.addr(&rt, s.name, &format!("{}/30", s.rt_addr))?;
        // Replies to the client: a director takes no routes from OSPF (the snippet's
        // `import none`).
        ip(&["-n", &ns, "route", "add", "default", "via", s.rt_addr])?;
        if ip(&["-n", &ns, "link", "add", "herald0", "type", "dummy"]).is_err() {
            ip(&["-n", &ns, "link", "add", "herald0", "type", "ifb"])?;
        }
        ip(&["-n", &ns, "link", "set", "herald0", "up"])?;
        if flavour.route_mode() {
            w.addr(&ns, "lo", PREFIX)?;
        }
        nss.push(ns);
    }
    let rdir = w.subdir("rt")?;
    let router = match flavour {
        Flavour::Bird | Flavour::BirdRouteMode => {
            Routing::Bird(Bird::start(&rt, &rdir, &bird_router_config())?)
        }
        Flavour::Frr => Routing::Frr(
            Frr::start(
                w.ns(&rt)?,
                &rdir,
                "frr",
                &frr_router_config(),
                &["zebra", "ospfd"],
            )
            .map_err(|e| e.to_string())?,
        ),
    };
    let mut d = Vec::new();
    for (s, ns) in SITES.iter().zip(nss) {
        let dir = w.subdir(s.name)?;
        let ipvs = FakeIpvs::new(dir.join("proc"))?;
        ipvs.pool(VIP, PORT, true)?;
        let stop = Arc::new(AtomicBool::new(false));
        responder(w.ns(&ns)?, s.name, stop.clone());
        let routing = director_routing(flavour, w.ns(&ns)?, &dir, s.addr)?;
        let config = dir.join("herald.toml");
        write_atomic(&config, &herald_config(&dir, &ipvs, flavour))?;
        let mut herald = Herald::new(
            &format!("ipvs-herald {}", s.name),
            &ns,
            config,
            dir.join("herald.log"),
            "127.0.0.1:9639",
        );
        herald.start()?;
        d.push(Director {
            name: s.name,
            ns,
            gateway: s.addr,
            herald,
            ipvs,
            routing,
            stop,
        });
    }
    Ok(Lab {
        flavour,
        rt,
        cl,
        router,
        d,
        w,
    })
}

/// UTC seconds since midnight (log lines and the test compare on that clock).
fn seconds_of_day(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().rem_euclid(86_400.0))
}

/// The time of day of a log line `2026-12-04T03:31:15.783938Z  INFO …`.
fn log_seconds_of_day(line: &str) -> Option<f64> {
    let time = line.get(11..)?.split('Z').next()?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn ms(t: Duration) -> String {
    format!("{:.0} ms", t.as_secs_f64() * 1000.0)
}

fn scenario(flavour: Flavour) {
    let t0 = Instant::now();
    let mut lab = setup(flavour).unwrap_or_else(|e| panic!("[{flavour:?}] set-up: {e}"));
    let (g1, g2) = (lab.d[0].gateway, lab.d[1].gateway);

    // --- An ECMP route for the VIP, learned over OSPF, both directors as next hops.
    let took = lab.wait_next_hops("the router's ECMP route via d1 and d2", &[g1, g2], SETUP);
    let (_, proto) = lab.ok("router route", lab.next_hops());
    let want_proto = if flavour.bird() { "bird" } else { "ospf" };
    let route = ip(&["-n", &lab.rt, "-4", "route", "show", "exact", PREFIX]).unwrap_or_default();
    assert_eq!(
        proto,
        want_proto,
        "[{flavour:?}] the router's route was not installed by its OSPF daemon:\n{route}\n{}",
        lab.diag()
    );
    let r = lab.router.learned_over_ospf();
    assert!(
        lab.ok("the router's daemon", r),
        "[{flavour:?}] the router's daemon does not hold the VIP as an OSPF external route\n{}",
        lab.diag()
    );
    eprintln!(
        "[{flavour:?}] ECMP route at the router {} after the daemons started ({:.1} s since set-up began):\n{route}",
        ms(took),
        t0.elapsed().as_secs_f64()
    );

    // --- Traffic through both directors.
    let counts = lab.traffic(64);
    eprintln!("[{flavour:?}] 64 connections from cl: {counts:?}");
    // Only the two names as answers (no error), each at least once: 64 flows all hashed to
    // one path has probability 2^-63.
    assert!(
        counts.len() == 2 && counts.contains_key("d1") && counts.contains_key("d2"),
        "[{flavour:?}] not every connection was answered, or not by both directors: {counts:?}\n{}",
        lab.diag()
    );

    // --- d1's pool below its threshold: d1's path leaves, d2's stays.
    let r = lab.d[0].ipvs.pool(VIP, PORT, false);
    lab.ok("d1 pool down", r);
    let took = lab.wait_next_hops("d1's path to leave the router (d2 staying)", &[g2], CHANGE);
    let r = lab.vip_on(0);
    assert!(
        !lab.ok("d1 herald0", r),
        "[{flavour:?}] d1's VIP still installed (herald0 / table 100)\n{}",
        lab.diag()
    );
    let counts = lab.traffic(16);
    eprintln!(
        "[{flavour:?}] d1 pool down: next hop via d2 only {} after the pool file changed; 16 connections: {counts:?}",
        ms(took)
    );
    assert_eq!(
        counts.get("d2").copied(),
        Some(16),
        "[{flavour:?}] with d1's pool down every connection must reach d2: {counts:?}\n{}",
        lab.diag()
    );

    // --- The pool back: both paths again.
    let r = lab.d[0].ipvs.pool(VIP, PORT, true);
    lab.ok("d1 pool up", r);
    let took = lab.wait_next_hops("d1's path to return (ECMP again)", &[g1, g2], CHANGE);
    eprintln!(
        "[{flavour:?}] d1 pool up: ECMP again {} after the pool file changed",
        ms(took)
    );

    // --- SIGTERM to d2's daemon: the VIP leaves d2's kernel before the process is gone, and
    // d2's path leaves the router. Polled together; each event is placed in the window between
    // the start and the end of the probe that first saw it (`ip` takes milliseconds).
    let sent_wall = seconds_of_day(std::time::SystemTime::now());
    let r = lab.d[1].herald.signal("TERM");
    lab.ok("SIGTERM to d2's daemon", r);
    let sent = Instant::now();
    type Window = Option<(Duration, Duration)>;
    let (mut vip_gone, mut exited, mut router_gone): (Window, Window, Window) = (None, None, None);
    let mut vip_after_exit = None;
    while sent.elapsed() < CHANGE
        && (vip_gone.is_none() || exited.is_none() || router_gone.is_none())
    {
        // The exit first, then the VIP: on the round that first sees the process gone, the
        // VIP probe runs after the exit, so a VIP that outlived the process would be seen.
        let t = sent.elapsed();
        if exited.is_none() && !lab.d[1].herald.alive() {
            exited = Some((t, sent.elapsed()));
        }
        let t = sent.elapsed();
        let gone = !vip_installed(&lab.d[1].ns, flavour).unwrap_or(true);
        if exited.is_some() && vip_after_exit.is_none() {
            vip_after_exit = Some(!gone);
        }
        if vip_gone.is_none() && gone {
            vip_gone = Some((t, sent.elapsed()));
        }
        let t = sent.elapsed();
        if router_gone.is_none()
            && router_next_hops(&lab.rt).is_ok_and(|(h, _)| h == [g1.to_owned()])
        {
            router_gone = Some((t, sent.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let show = |w: Window| {
        w.map_or("never (within the bound)".to_owned(), |(a, b)| {
            format!("{}–{}", ms(a), ms(b))
        })
    };
    // The daemon's own log, in wall-clock time since the signal: when it removed the address
    // and when it stopped.
    let log = lab.d[1].herald.log_text();
    let lines: Vec<&str> = log.lines().collect();
    let logged = |needle: &str| {
        lines
            .iter()
            .rposition(|l| l.contains(needle))
            .map(|i| (i, log_seconds_of_day(lines[i])))
    };
    let removed = logged(if flavour.route_mode() {
        "VIP route removed"
    } else {
        "VIP address removed"
    });
    let stopped = logged("ipvs_herald::daemon: stopped");
    let since = |x: Option<(usize, Option<f64>)>| {
        x.and_then(|(_, t)| t).map_or("?".to_owned(), |t| {
            format!("{:.1} ms", (t - sent_wall).rem_euclid(86_400.0) * 1000.0)
        })
    };
    eprintln!(
        "[{flavour:?}] SIGTERM to d2's daemon at 0 ms: VIP gone from d2's kernel at {}, process exited at {}, d2's next hop gone from the router at {}; d2's log: VIP removed at {}, stopped at {}",
        show(vip_gone),
        show(exited),
        show(router_gone),
        since(removed),
        since(stopped)
    );
    if vip_gone.is_none() || exited.is_none() || router_gone.is_none() {
        panic!(
            "[{flavour:?}] after SIGTERM within {CHANGE:?}: VIP gone from d2 {vip_gone:?}, exited {exited:?}, router path gone {router_gone:?}\n{}",
            lab.diag()
        );
    }
    assert_eq!(
        vip_after_exit,
        Some(false),
        "[{flavour:?}] d2's VIP was still installed once the process had exited\n{}",
        lab.diag()
    );
    match (removed, stopped) {
        (Some((r, _)), Some((s, _))) if r < s => {}
        _ => panic!(
            "[{flavour:?}] d2's log does not show the VIP removed before the daemon stopped\n{}",
            lab.diag()
        ),
    }
    let status = lab.d[1].herald.wait_exit(Duration::from_secs(1));
    let status = lab.ok("d2's exit status", status);
    assert!(
        status.success(),
        "[{flavour:?}] d2's daemon exited with {status:?}\n{}",
        lab.diag()
    );
    eprintln!(
        "[{flavour:?}] whole scenario {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn bird_on_directors_and_router() {
    scenario(Flavour::Bird);
}

#[test]
fn frr_on_directors_and_router() {
    scenario(Flavour::Frr);
}

#[test]
fn bird_route_mode_with_the_vip_on_lo() {
    scenario(Flavour::BirdRouteMode);
}
