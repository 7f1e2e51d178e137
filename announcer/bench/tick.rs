//! Benchmark: the user-space cost of the announcer's health checks, without the kernel.
//!
//! Every figure is for the lab's 1,000-VIP table (1,000 IPv6 TCP services, two real servers each,
//! one VIP group per service, every group due at every tick), built in memory:
//!
//! 1. `evaluate`: [`evaluate_with`] of every group against one snapshot, indexed once per tick
//!    ([`CheckInput::new`], included), ns per group;
//! 2. `evaluate + step`: the same plus [`GroupState::step`] (rise/fall, phase), ns per group;
//! 3. `snapshot clone`: copying the 1,000-service snapshot, the stand-in for building it from
//!    the kernel's replies (the netlink decoder allocates the same services and destinations);
//! 4. `procfs parse`: [`herald_shared::procfs::parse_ip_vs`] of the same table as
//!    `/proc/net/ip_vs` text (the procfs source's whole user-space read); `netlink decode`: the
//!    netlink source's attribute decoding, a real captured GET_SERVICE and two GET_DEST
//!    messages per service;
//! 5. `control loop`: the real [`ControlLoop`] (its tick: snapshot on the blocking pool, local
//!    addresses, evaluate, step, metrics, route actions) on a two-worker tokio runtime like the
//!    daemon's, fed by an in-memory source; process CPU (utime + stime from `/proc/self/stat`)
//!    per tick and per group.
//!
//! What it leaves out is the kernel: the GET_DEST dump per service and the thread and socket
//! per read (measured in the QEMU lab, `tests/lab/lab.sh e2e-bench`), so a reader adds the
//! kernel's share to these figures.
//!
//! Run: `cargo bench -p herald-announcer --bench tick [-- GROUPS [LOOP_TICKS]]` (defaults 1000
//! and 200). Bounded: every part runs a fixed number of iterations; the control loop stops
//! after LOOP_TICKS ticks or 120 s, whichever comes first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: an unwrap that fails, fails the bench

use herald_announcer::control::{Control, ControlLoop, LoopSettings};
use herald_announcer::group::GroupState;
use herald_announcer::group_config::VipGroupConfig;
use herald_announcer::health::{evaluate_with, CheckInput};
use herald_announcer::sink::{BoxFuture, LocalAddrs, RouteSink};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::*;
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::registry::Registry;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// VIP number `i` (1-based), as in the lab: 2001:db8:1::<i in hex>.
fn vip(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16)
}

fn dest(last: u16) -> Destination {
    Destination {
        forward: ForwardMethod::Masq,
        ..Destination::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, last)),
            80,
        )
    }
}

/// The lab's table: `n` services [VIP]:80, wrr, two masqueraded real servers each.
fn snapshot(n: usize) -> Snapshot {
    Snapshot {
        services: (1..=n)
            .map(|i| Service {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    address: IpAddr::V6(vip(i)),
                    port: 80,
                },
                scheduler: "wrr".into(),
                flags: ServiceFlags::default(),
                persistence_timeout: 0,
                netmask: 128,
                pe_name: None,
                stats: Stats::default(),
                destinations: vec![dest(1), dest(2)],
            })
            .collect(),
        ..Snapshot::default()
    }
}

/// The same table as `/proc/net/ip_vs` prints it.
fn procfs_text(n: usize) -> String {
    let mut t = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
    );
    for i in 1..=n {
        t.push_str(&format!(
            "TCP  [2001:0db8:0001:0000:0000:0000:0000:{i:04x}]:0050 wrr \n"
        ));
        for d in 1..=2 {
            t.push_str(&format!(
                "  -> [2001:0db8:0002:0000:0000:0000:0000:{d:04x}]:0050      Masq    1      0          0         \n"
            ));
        }
    }
    t
}

/// One group per VIP, as the lab's configuration: interval 100 ms, defaults otherwise.
/// `validate` is false only for the control-loop part, whose 10 ms interval is below the
/// configuration's 100 ms minimum.
fn groups(n: usize, interval: &str, validate: bool) -> Vec<VipGroupConfig> {
    #[derive(serde::Deserialize)]
    struct File {
        g: Vec<VipGroupConfig>,
    }
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!(
            "[[g]]\nname = \"v{i}\"\nprefixes = [\"{}/128\"]\ninterval = \"{interval}\"\nhold_down = \"0s\"\n",
            vip(i)
        ));
    }
    let f: File = toml::from_str(&text).expect("bench groups parse");
    if validate {
        for g in &f.g {
            g.validate().expect("bench group valid");
        }
    }
    f.g
}

fn local_addrs(n: usize) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = (1..=n).map(|i| IpAddr::V6(vip(i))).collect();
    v.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    v.push("127.0.0.1".parse().expect("loopback"));
    v.sort();
    v
}

/// Median of `rounds` timings of `f`, each over `iters` calls; nanoseconds per call.
fn median_ns(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct MemSource {
    snap: Snapshot,
    reads: AtomicU64,
}

impl IpvsSource for MemSource {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.snap.clone())
    }
    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Ok(ConnTableSummary::default())
    }
}

struct MemAddrs(Vec<IpAddr>);

impl LocalAddrs for MemAddrs {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, herald_announcer::sink::LocalAddrsError> {
        Ok(self.0.clone())
    }
}

struct CountingSink(AtomicU64);

impl RouteSink for CountingSink {
    fn apply<'a>(
        &'a self,
        _: &'a herald_announcer::group::RouteAction,
    ) -> BoxFuture<'a, Result<(), herald_announcer::sink::SinkError>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

/// utime and stime of this process, seconds (clock ticks of 1/100 s).
fn cpu_times() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ")".
    let tick = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n = args.next().unwrap_or(1000).max(1);
    let loop_ticks = args.next().unwrap_or(200).max(10);
    println!(
        "{n} VIP groups, {n} services x 2 real servers (build: {})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        }
    );
    let snap = snapshot(n);
    let local = local_addrs(n);
    let cfgs = groups(n, "100ms", true);
    let policies: Vec<_> = cfgs.iter().map(|g| g.policy()).collect();

    // 1. evaluate only.
    let mut pools: Vec<_> = (0..n).map(|_| Default::default()).collect::<Vec<_>>();
    let ns = median_ns(9, 10, || {
        let input = CheckInput::new(Ok(&snap), &local);
        for (p, pools) in policies.iter().zip(pools.iter_mut()) {
            let o = evaluate_with(p, &input, pools);
            assert!(o.passed, "{:?}", o.reasons);
        }
    });
    println!(
        "evaluate:           {:>10.1} us per tick, {:>8.0} ns per group",
        ns / 1e3,
        ns / n as f64
    );

    // 2. evaluate + step, with the per-check policy as the runtime builds it.
    let mut runtimes: Vec<GroupState> = cfgs
        .iter()
        .map(|c| GroupState::new(c.clone()).expect("group"))
        .collect();
    let t0 = Instant::now();
    let mut announced = 0usize;
    let ns = median_ns(9, 10, || {
        let input = CheckInput::new(Ok(&snap), &local);
        for g in runtimes.iter_mut() {
            let policy = g.config().policy();
            let mut pools = std::mem::take(&mut g.tracker_mut().pools_up);
            let o = evaluate_with(&policy, &input, &mut pools);
            g.tracker_mut().pools_up = pools;
            announced += g.step(t0, Some(o), false, Duration::ZERO).len();
        }
    });
    assert_eq!(
        announced, n,
        "every group announced once (after rise checks)"
    );
    println!(
        "evaluate + step:    {:>10.1} us per tick, {:>8.0} ns per group",
        ns / 1e3,
        ns / n as f64
    );

    // 3. The snapshot itself.
    let ns = median_ns(9, 10, || {
        let c = snap.clone();
        assert_eq!(c.services.len(), n);
    });
    println!(
        "snapshot clone:     {:>10.1} us per tick, {:>8.0} ns per service",
        ns / 1e3,
        ns / n as f64
    );

    // 4. The procfs source's parse of the same table.
    let text = procfs_text(n);
    let ns = median_ns(9, 10, || {
        let (_, s) = herald_shared::procfs::parse_ip_vs(&text, 250).expect("procfs text parses");
        assert_eq!(s.len(), n);
    });
    println!(
        "procfs parse:       {:>10.1} us per tick, {:>8.0} ns per service ({} bytes)",
        ns / 1e3,
        ns / n as f64,
        text.len()
    );

    // 4b. The netlink source's decoding: a real kernel reply per service (GET_SERVICE
    // message) and per destination (GET_DEST message), captured in the lab
    // (shared/tests/vectors), decoded as many times as the table has services and
    // destinations. Framing and syscalls are not included (genl_roundtrip has them).
    let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/vectors");
    let read = |f: &str| std::fs::read(vectors.join(f)).expect("captured netlink vector");
    let svc_msg = read("get_service-lab-ipv6-0000.bin");
    let dest_msg = read("get_dest-lab-ipv6-0000.bin");
    let attrs = |m: &[u8]| -> Vec<u8> {
        herald_shared::netlink::codec::split_genl(m)
            .expect("genl header")
            .2
            .to_vec()
    };
    let (svc_attrs, dest_attrs) = (attrs(&svc_msg), attrs(&dest_msg));
    let family = herald_shared::netlink::codec::decode_service_msg(&svc_attrs)
        .expect("captured service decodes")
        .key
        .family();
    let ns = median_ns(9, 10, || {
        for _ in 0..n {
            let mut svc = herald_shared::netlink::codec::decode_service_msg(&svc_attrs)
                .expect("captured service decodes");
            for _ in 0..2 {
                svc.destinations.push(
                    herald_shared::netlink::codec::decode_dest_msg(&dest_attrs, family)
                        .expect("captured destination decodes"),
                );
            }
            std::hint::black_box(svc);
        }
    });
    println!(
        "netlink decode:     {:>10.1} us per tick, {:>8.0} ns per service ({} + 2 x {} bytes of attributes each)",
        ns / 1e3,
        ns / n as f64,
        svc_attrs.len(),
        dest_attrs.len()
    );

    // 5. The control loop, at a 10 ms interval so that LOOP_TICKS ticks take little wall time
    // (the work per tick does not depend on the interval).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let source = Arc::new(MemSource {
        snap: snap.clone(),
        reads: AtomicU64::new(0),
    });
    let sink = Arc::new(CountingSink(AtomicU64::new(0)));
    let (ticks, cpu_user, cpu_sys, wall) = rt.block_on(async {
        let mut registry = Registry::default();
        let runtime = ControlLoop::new(
            groups(n, "10ms", false),
            source.clone(),
            sink.clone(),
            Arc::new(MemAddrs(local.clone())),
            LoopSettings {
                drain_time: Duration::from_secs(1),
                maintenance_file: None,
                state_file: None,
            },
            &mut registry,
        )
        .expect("runtime");
        let (tx, rx) = tokio::sync::mpsc::channel::<Control>(1);
        let task = tokio::spawn(runtime.run(rx));
        // Warm-up: past rise, every group announced.
        let deadline = Instant::now() + Duration::from_secs(120);
        while source.reads.load(Ordering::Relaxed) < 10 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (u0, s0) = cpu_times();
        let r0 = source.reads.load(Ordering::Relaxed);
        let t = Instant::now();
        while source.reads.load(Ordering::Relaxed) < r0 + loop_ticks as u64
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (u1, s1) = cpu_times();
        let ticks = source.reads.load(Ordering::Relaxed) - r0;
        let wall = t.elapsed();
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        (ticks, u1 - u0, s1 - s0, wall)
    });
    assert_eq!(
        sink.0.load(Ordering::Relaxed),
        n as u64,
        "every group announced once"
    );
    let per_tick = (cpu_user + cpu_sys) / ticks.max(1) as f64;
    println!(
        "control loop:       {:>10.1} us CPU per tick, {:>8.0} ns per group ({ticks} ticks in {:.2} s wall; user {:.2} s, sys {:.2} s; {:.1} ticks/s)",
        per_tick * 1e6,
        per_tick * 1e9 / n as f64,
        wall.as_secs_f64(),
        cpu_user,
        cpu_sys,
        ticks as f64 / wall.as_secs_f64()
    );
    println!(
        "at 10 ticks/s (interval 100 ms): {:.2} % of one core for the user-space part",
        per_tick * 10.0 * 100.0
    );
}
