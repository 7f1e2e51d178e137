//! One BIRD 2 in the lab's router namespace playing several routers: one passive `protocol
//! bgp` per router address (extra addresses on the router side of the veth), each towards
//! its own speaker-side address (extra addresses on the speaker side): BIRD 2.0 picks the
//! protocol of an incoming connection by the remote address only, so the speaker must bind
//! each session to a different local address (`local_address`). Used by the reconfiguration
//! tests, which need several peers whose sessions are observed independently from the router
//! side (state, "since" time to the millisecond, import counters, last error).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::lab::{ip, Lab, SPEAKER_V4};
use super::process::{run, spawn, tail, Daemon};
use super::{err, wait_until, TResult};

/// One emulated router: BIRD protocol `name` on local address `addr`.
#[derive(Debug, Clone)]
pub struct BirdPeer {
    pub name: String,
    pub addr: Ipv4Addr,
    /// The speaker's address for this session (BIRD's neighbor).
    pub speaker: Ipv4Addr,
    /// BIRD's proposed hold time.
    pub hold: u16,
    /// BIRD only waits for the speaker (`passive on`); otherwise it connects too.
    pub passive: bool,
}

/// The BIRD daemon.
#[derive(Debug)]
pub struct MultiBird {
    dir: PathBuf,
    daemon: Daemon,
}

impl MultiBird {
    /// Adds the peers' addresses to the router side (192.0.2.2 already exists) and starts
    /// BIRD with one passive protocol per peer (AS `router_as`, speaker AS `speaker_as`).
    pub fn start(lab: &Lab, peers: &[BirdPeer], router_as: u32, speaker_as: u32) -> TResult<Self> {
        let dir = lab.subdir("multibird")?;
        for p in peers {
            for (ns, a, existing) in [
                (&lab.router, p.addr, super::lab::ROUTER_V4),
                (&lab.speaker, p.speaker, SPEAKER_V4),
            ] {
                if a != existing {
                    ip(&[
                        "-n",
                        ns.name(),
                        "addr",
                        "add",
                        &format!("{a}/24"),
                        "dev",
                        "eth0",
                    ])?;
                }
            }
        }
        let mut c = format!(
            "router id {};\nlog stderr all;\ntimeformat protocol \"%s.%3f\";\nprotocol device {{}}\n",
            super::lab::ROUTER_V4
        );
        for p in peers {
            let _ = writeln!(c, "protocol bgp {} {{", p.name);
            let _ = writeln!(c, "  local {} as {router_as};", p.addr);
            let _ = writeln!(c, "  neighbor {} as {speaker_as};", p.speaker);
            let _ = writeln!(c, "  hold time {};", p.hold);
            if p.passive {
                let _ = writeln!(c, "  passive on;");
            } else {
                let _ = writeln!(c, "  connect delay time 1;\n  connect retry time 1;");
                let _ = writeln!(c, "  debug {{ states, events }};");
            }
            let _ = writeln!(c, "  error wait time 1, 2;");
            let _ = writeln!(c, "  ipv4 {{ import all; export none; }};");
            let _ = writeln!(c, "  ipv6 {{ import all; export none; }};");
            let _ = writeln!(c, "}}");
        }
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, c).map_err(|e| format!("write {}: {e}", conf.display()))?;
        let log = dir.join("bird.log");
        let mut cmd = lab.router.command("/usr/sbin/bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let daemon = spawn("bird", cmd, &log)?;
        let b = Self { dir, daemon };
        let ready = wait_until(
            "multi-peer BIRD control socket",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || {
                b.birdc(&["show", "status"])
                    .map(|o| o.contains("Daemon is up"))
            },
        );
        if let Err(e) = ready {
            return err(format!("{e}; log tail:\n{}", tail(&log, 20)));
        }
        Ok(b)
    }

    /// Runs `birdc` with `args`.
    pub fn birdc(&self, args: &[&str]) -> TResult<String> {
        let mut c = Command::new("/usr/sbin/birdc");
        c.arg("-s").arg(self.dir.join("bird.ctl")).args(args);
        run(c, Duration::from_secs(30))
    }

    fn proto_line(&self, proto: &str) -> TResult<Vec<String>> {
        let out = self.birdc(&["show", "protocols", proto])?;
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(proto))
            .ok_or_else(|| format!("birdc shows no protocol {proto}: {out}"))?;
        Ok(line.split_whitespace().map(str::to_owned).collect())
    }

    /// Whether protocol `proto` is Established.
    pub fn established(&self, proto: &str) -> TResult<bool> {
        Ok(self
            .proto_line(proto)?
            .iter()
            .any(|c| c.eq_ignore_ascii_case("established")))
    }

    /// When the protocol last changed state ("since", epoch milliseconds).
    pub fn since(&self, proto: &str) -> TResult<Since> {
        let cols = self.proto_line(proto)?;
        // name proto table state since [info]; since is "<epoch>.<ms>" (the timeformat above)
        let parsed = cols.get(4).and_then(|s| {
            let (secs, ms) = s.split_once('.')?;
            Some(secs.parse::<i64>().ok()? * 1000 + ms.parse::<i64>().ok()?)
        });
        match parsed {
            Some(ms) => Ok(Since(ms)),
            None => err(format!("no since time in {cols:?}")),
        }
    }

    /// `show protocols all <proto>`.
    pub fn details(&self, proto: &str) -> TResult<String> {
        self.birdc(&["show", "protocols", "all", proto])
    }

    /// The "Last error" line of the protocol (empty when none).
    pub fn last_error(&self, proto: &str) -> TResult<String> {
        Ok(self
            .details(proto)?
            .lines()
            .find(|l| l.trim().starts_with("Last error:"))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default())
    }

    /// The negotiated hold time shown in "Hold timer: left/total".
    pub fn hold_time(&self, proto: &str) -> TResult<Option<u32>> {
        Ok(self.details(proto)?.lines().find_map(|l| {
            let v = l.trim().strip_prefix("Hold timer:")?;
            v.trim().split('/').nth(1)?.trim().parse().ok()
        }))
    }

    /// The per-channel "Import updates:" received counter of the IPv4 channel.
    pub fn import_updates(&self, proto: &str) -> TResult<u64> {
        let d = self.details(proto)?;
        let mut in_v4 = false;
        for l in d.lines() {
            let t = l.trim();
            if t.starts_with("Channel ") {
                in_v4 = t == "Channel ipv4";
            }
            if in_v4 {
                if let Some(rest) = t.strip_prefix("Import updates:") {
                    return rest
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| format!("bad Import updates line: {t}").into());
                }
            }
        }
        err(format!("no IPv4 Import updates line for {proto}:\n{d}"))
    }

    /// Whether BIRD has `prefix` from protocol `proto`.
    pub fn has_route(&self, proto: &str, prefix: &str) -> TResult<bool> {
        let out = self.birdc(&["show", "route", "protocol", proto])?;
        Ok(out.lines().any(|l| l.starts_with(prefix)))
    }

    /// BIRD's log so far (stderr, `log stderr all`).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.daemon.log()).unwrap_or_default()
    }

    /// Sends `sig` to BIRD (SIGSTOP / SIGCONT to freeze and thaw it).
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> TResult<()> {
        Ok(self.daemon.signal(sig)?)
    }

    /// Log tail for failure reports.
    pub fn logs(&self) -> String {
        format!("--- multi-peer bird ---\n{}", tail(self.daemon.log(), 40))
    }
}

/// A protocol's "since" time. BIRD keeps it on its monotonic clock and prints it through the
/// current wall-clock offset, so one unchanged instant can print a millisecond or two apart on
/// two `birdc` calls: equality allows 50 ms, far below the 0.5 s that any reconnect takes.
#[derive(Debug, Clone, Copy)]
pub struct Since(i64);

impl PartialEq for Since {
    fn eq(&self, other: &Self) -> bool {
        (self.0 - other.0).abs() <= 50
    }
}
