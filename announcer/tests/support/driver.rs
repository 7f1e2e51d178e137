//! The announcing side of an interop test. `Driver` is what a scenario needs from a
//! BGP speaker: announce/withdraw a prefix with attributes, report whether a session
//! is Established, and shut down cleanly. `GobgpDriver` implements it with a GoBGP
//! daemon in the lab's speaker namespace: it is the reference that validates the
//! harness itself, so a scenario failing with our speaker but passing with GoBGP
//! points at the speaker. Our speaker's driver lives in `herald.rs`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::lab::{Lab, SPEAKER_V4, SPEAKER_V6};
use super::process::{run, spawn, tail, Daemon};
use super::routes::{Attrs, Origin};
use super::{err, wait_until, TResult};

/// One neighbour of the announcing side.
#[derive(Debug, Clone)]
pub struct DriverPeer {
    pub address: IpAddr,
    pub remote_as: u32,
    pub hold: u16,
    pub md5: Option<String>,
    pub passive: bool,
    /// GTSM: the peer is at most this many hops away.
    pub ttl_security: Option<u8>,
}

/// Configuration of the announcing side.
#[derive(Debug, Clone)]
pub struct DriverSpec {
    pub local_as: u32,
    pub peers: Vec<DriverPeer>,
}

/// What a scenario needs from the announcing speaker.
pub trait Driver: std::fmt::Debug {
    /// Short name for messages.
    fn name(&self) -> &'static str;
    /// Announces (or re-announces with new attributes) `prefix`.
    fn announce(&mut self, prefix: IpNet, attrs: &Attrs) -> TResult<()>;
    /// Withdraws `prefix`.
    fn withdraw(&mut self, prefix: IpNet) -> TResult<()>;
    /// Whether the session to `peer` is Established.
    fn established(&self, peer: IpAddr) -> TResult<bool>;
    /// Clean shutdown: NOTIFICATION Cease / Administrative Shutdown to every peer.
    fn shutdown(&mut self) -> TResult<()>;
    /// Log tail for failure reports.
    fn logs(&self) -> String;
    /// The speaker's own description of the last error on the session to `peer`, where
    /// the speaker exposes one.
    fn last_error(&self, _peer: IpAddr) -> TResult<Option<String>> {
        Ok(None)
    }
    /// The RFC 9003 shutdown communication `shutdown` sends, if any.
    fn shutdown_message(&self) -> Option<&'static str> {
        None
    }
}

/// Waits until the driver reports `peer` Established.
pub fn wait_established(d: &dyn Driver, peer: IpAddr, timeout: Duration) -> TResult<()> {
    wait_until(
        &format!("{} session to {peer} Established (speaker side)", d.name()),
        timeout,
        Duration::from_millis(100),
        || d.established(peer),
    )
}

/// GoBGP as the announcing side.
#[derive(Debug)]
pub struct GobgpDriver {
    ns: String,
    dir: PathBuf,
    daemon: Option<Daemon>,
    local_as: u32,
    peers: Vec<IpAddr>,
}

impl GobgpDriver {
    pub fn start(lab: &Lab, spec: &DriverSpec) -> TResult<Self> {
        let dir = lab.subdir("gobgp-driver")?;
        let mut c = format!(
            "[global.config]\n  as = {}\n  router-id = \"{SPEAKER_V4}\"\n  port = 179\n",
            spec.local_as
        );
        for p in &spec.peers {
            let _ = writeln!(
                c,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
                p.address, p.remote_as
            );
            if let Some(pw) = &p.md5 {
                let _ = writeln!(c, "    auth-password = \"{pw}\"");
            }
            let _ = writeln!(
                c,
                "  [neighbors.timers.config]\n    hold-time = {}\n    keepalive-interval = {}\n    connect-retry = 1\n    idle-hold-time-after-reset = 1",
                p.hold,
                (p.hold / 3).max(1)
            );
            if p.passive {
                let _ = writeln!(c, "  [neighbors.transport.config]\n    passive-mode = true");
            }
            if let Some(hops) = p.ttl_security {
                let _ = writeln!(
                    c,
                    "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = {}",
                    256 - u16::from(hops)
                );
            }
            for af in ["ipv4-unicast", "ipv6-unicast"] {
                let _ = writeln!(
                    c,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{af}\""
                );
            }
        }
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, c).map_err(|e| format!("write {}: {e}", conf.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lab.speaker.name(), "/usr/bin/gobgpd", "-f"])
            .arg(&conf)
            .args(["--api-hosts", "127.0.0.1:50051", "-l", "info"]);
        let daemon = spawn("gobgpd (driver)", cmd, &dir.join("gobgpd.log"))?;
        let d = Self {
            ns: lab.speaker.name().to_owned(),
            dir,
            daemon: Some(daemon),
            local_as: spec.local_as,
            peers: spec.peers.iter().map(|p| p.address).collect(),
        };
        wait_until(
            "gobgpd driver API",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || d.cli(&["global"]).map(|o| o.contains("AS")),
        )?;
        Ok(d)
    }

    fn cli(&self, args: &[&str]) -> TResult<String> {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns,
            "/usr/bin/gobgp",
            "-u",
            "127.0.0.1",
            "-p",
            "50051",
        ])
        .args(args);
        run(c, Duration::from_secs(30))
    }
}

impl Driver for GobgpDriver {
    fn name(&self) -> &'static str {
        "gobgp-driver"
    }

    fn announce(&mut self, prefix: IpNet, a: &Attrs) -> TResult<()> {
        let (af, nh) = match prefix {
            IpNet::V4(_) => ("ipv4", IpAddr::V4(SPEAKER_V4)),
            IpNet::V6(_) => ("ipv6", IpAddr::V6(SPEAKER_V6)),
        };
        let mut args: Vec<String> = ["global", "rib", "add", "-a", af, &prefix.to_string()]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let origin = match a.origin {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        };
        args.extend([
            "origin".into(),
            origin.into(),
            "nexthop".into(),
            nh.to_string(),
        ]);
        if let Some(m) = a.med {
            args.extend(["med".into(), m.to_string()]);
        }
        if let Some(lp) = a.local_pref {
            args.extend(["local-pref".into(), lp.to_string()]);
        }
        if !a.communities.is_empty() {
            let s: Vec<String> = a
                .communities
                .iter()
                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                .collect();
            args.extend(["community".into(), s.join(",")]);
        }
        if !a.large_communities.is_empty() {
            let s: Vec<String> = a
                .large_communities
                .iter()
                .map(|(x, y, z)| format!("{x}:{y}:{z}"))
                .collect();
            args.extend(["large-community".into(), s.join(",")]);
        }
        if a.as_path_prepend > 0 {
            let s: Vec<String> = (0..a.as_path_prepend)
                .map(|_| self.local_as.to_string())
                .collect();
            args.extend(["aspath".into(), s.join(",")]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli(&refs).map(drop)
    }

    fn withdraw(&mut self, prefix: IpNet) -> TResult<()> {
        let af = if prefix.addr().is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        self.cli(&["global", "rib", "del", "-a", af, &prefix.to_string()])
            .map(drop)
    }

    fn established(&self, peer: IpAddr) -> TResult<bool> {
        let out = self.cli(&["neighbor", &peer.to_string(), "-j"])?;
        let v: Value =
            serde_json::from_str(&out).map_err(|e| format!("gobgp neighbor JSON: {e}"))?;
        match v.pointer("/state/session_state") {
            Some(Value::Number(n)) => Ok(n.as_u64() == Some(6)),
            Some(Value::String(s)) => Ok(s.eq_ignore_ascii_case("established")),
            _ => err(format!(
                "gobgp neighbor JSON without state.session_state: {out:.300}"
            )),
        }
    }

    fn shutdown(&mut self) -> TResult<()> {
        // gobgpd sends Cease/Administrative Shutdown when a neighbour is disabled.
        for addr in self.peers.clone() {
            self.cli(&["neighbor", &addr.to_string(), "disable"])?;
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut d) = self.daemon.take() {
            d.stop(Duration::from_secs(5));
        }
        Ok(())
    }

    fn logs(&self) -> String {
        let log = self.dir.join("gobgpd.log");
        format!("--- {} ---\n{}", log.display(), tail(&log, 30))
    }
}
