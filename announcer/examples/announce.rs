//! `announce`: a minimal driver of the BGP speaker for benchmarks and manual tests.
//!
//! ```text
//! announce --config peers.toml --count 10000 [--v6-count 10000] [--next-hop-v6 ADDR]
//! ```
//! The config file is a `BgpConfig` in TOML (`router_id`, `local_as`, `[[peers]]`…).
//! The speaker announces `--count` IPv4 /32s from 198.18.0.0/15 (RFC 2544 benchmarking
//! space) and `--v6-count` IPv6 /64s from 2001:db8:1000::/36, then obeys commands on
//! stdin, one per line: `withdraw` (withdraw everything), `announce` (announce again),
//! `status` (print peer states), `quit` or end of input (clean shutdown, exit).
//! Progress lines go to stdout as `t=<seconds since start> <event>`. Routes are handed to
//! the speaker in bulk (`announce_many` / `withdraw_many`), as the daemon does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // example code: an unwrap that fails, fails the example

use std::io::BufRead;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use herald_announcer::bgp::{BgpConfig, RouteAttrs, Speaker, SpeakerHandle};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[derive(Debug)]
struct Args {
    config: String,
    count: u32,
    v6_count: u32,
}

fn usage(msg: &str) -> ! {
    eprintln!("announce: {msg}\nusage: announce --config FILE --count N [--v6-count N]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut config = None;
    let mut count = None;
    let mut v6_count = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--config" => config = Some(val("--config")),
            "--count" => count = Some(val("--count")),
            "--v6-count" => v6_count = Some(val("--v6-count")),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let num = |s: Option<String>, name: &str| -> Option<u32> {
        s.map(|v| {
            v.parse::<u32>()
                .unwrap_or_else(|e| usage(&format!("{name} {v:?}: {e}")))
        })
    };
    let count = num(count, "--count").unwrap_or_else(|| usage("--count is required"));
    if count > 131_070 {
        usage("--count is at most 131070 (198.18.0.0/15)");
    }
    let v6_count = num(v6_count, "--v6-count").unwrap_or(count);
    if v6_count > 1 << 20 {
        usage("--v6-count is at most 1048576");
    }
    Args {
        config: config.unwrap_or_else(|| usage("--config is required")),
        count,
        v6_count,
    }
}

/// The benchmark prefix set.
fn prefixes(v4: u32, v6: u32) -> Vec<IpNet> {
    let base4 = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let mut out = Vec::with_capacity((v4 + v6) as usize);
    for i in 0..v4 {
        let a = Ipv4Addr::from(base4 + 1 + i);
        if let Ok(n) = Ipv4Net::new(a, 32) {
            out.push(IpNet::V4(n));
        }
    }
    for i in 0..v6 {
        let a = Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x1000 | (i >> 16) as u16,
            (i & 0xffff) as u16,
            0,
            0,
            0,
            0,
        );
        if let Ok(n) = Ipv6Net::new(a, 64) {
            out.push(IpNet::V6(n));
        }
    }
    out
}

fn say(start: Instant, what: &str) {
    println!("t={:.3} {what}", start.elapsed().as_secs_f64());
}

fn announce_all(h: &SpeakerHandle, set: &[IpNet]) {
    h.announce_many(set.iter().map(|p| (*p, RouteAttrs::default())));
}

fn main() {
    let start = Instant::now();
    let args = parse_args();
    let text = std::fs::read_to_string(&args.config)
        .unwrap_or_else(|e| usage(&format!("cannot read {}: {e}", args.config)));
    let cfg: BgpConfig =
        toml::from_str(&text).unwrap_or_else(|e| usage(&format!("{}: {e}", args.config)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("tokio runtime: {e}")));
    let set = prefixes(args.count, args.v6_count);
    let mut registry = prometheus_client::registry::Registry::default();
    let handle = {
        let _guard = rt.enter();
        Speaker::start(cfg, &mut registry).unwrap_or_else(|e| usage(&e.to_string()))
    };
    say(start, "started");
    announce_all(&handle, &set);
    say(start, &format!("announced {} prefixes", set.len()));
    {
        let h = handle.clone();
        rt.spawn(async move {
            let names: Vec<String> = h.peer_states().into_iter().map(|s| s.name).collect();
            for n in names {
                if h.wait_established(&n, Duration::from_secs(3600)).await {
                    say(start, &format!("established {n}"));
                }
            }
        });
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "withdraw" => {
                handle.withdraw_many(set.iter().copied());
                say(start, "withdrew all");
            }
            "announce" => {
                announce_all(&handle, &set);
                say(start, "announced all");
            }
            "status" => {
                for s in handle.peer_states() {
                    say(
                        start,
                        &format!(
                            "peer {} {:?} sent={} err={:?}",
                            s.name, s.state, s.prefixes_sent, s.last_error
                        ),
                    );
                }
            }
            "quit" => break,
            "" => {}
            other => eprintln!("announce: unknown command {other:?}"),
        }
    }
    rt.block_on(handle.shutdown("announce example exiting", Duration::from_secs(5)));
    say(start, "shut down");
}
