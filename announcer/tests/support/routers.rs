//! The routers under test — BIRD, FRR (zebra + bgpd) and GoBGP — each started in the
//! lab's router namespace with its own config, control socket / vty / gRPC port and
//! log in the test directory. `Router` hides the differences: session state, RIB
//! read-back (as `RouteView`s), inbound soft reset (ROUTE-REFRESH), freeze/thaw,
//! restart, and the last NOTIFICATION received.
//!
//! Each router comes in two flavours: the host's Debian 12 packages (BIRD 2.0.12, FRR 8.4,
//! GoBGP 3.10) and the newer ones (BIRD 3, FRR 10, GoBGP 3.36) in the Debian trixie root
//! that `tests/trixie-root.sh` builds. A trixie daemon and its CLI run chrooted into that
//! root in a private mount namespace (see `CHROOT_SH`); every start checks the running
//! daemon's version, so a daemon that silently came from the wrong flavour fails the test.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use nix::sys::signal::Signal;
use serde_json::Value;

use super::lab::{Lab, ROUTER_V4, SPEAKER_V4, SPEAKER_V6};
use super::process::{run, spawn, tail, Daemon};
use super::routes::{self, Rib, RouteView};
use super::{err, wait_until, TResult};

/// Which router implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bird,
    Frr,
    Gobgp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
        }
    }
}

/// Which build of the router runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The host's Debian 12 packages: BIRD 2.0.12, FRR 8.4, GoBGP 3.10.
    Host,
    /// Debian trixie's packages in the root built by `tests/trixie-root.sh`: BIRD 3
    /// (`bird3`), FRR 10, GoBGP 3.36.
    Trixie,
}

/// Environment variable naming the trixie root (the same one `tests/trixie-root.sh` reads).
pub const TRIXIE_ROOT_ENV: &str = "IPVS_HERALD_TRIXIE_ROOT";

/// Runs a command chrooted into the trixie root: `sh -euc CHROOT_SH herald-chroot ROOT DIR
/// PROGRAM ARGS…`. It runs under `unshare --mount --propagation private`, so the bind mount
/// of the test directory (at the same path inside the root, so configs, sockets and pid
/// files need no rewriting) and the /proc, /dev and /sys mounts vanish with the process;
/// nothing is left mounted in the shared root and parallel tests cannot see each other's
/// directories. Every step `exec`s, so the pid the harness holds is the daemon's own.
const CHROOT_SH: &str = r#"r="$1"; d="$2"; shift 2
mkdir -p "$r$d"
mount --bind "$d" "$r$d"
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
exec chroot "$r" "$@""#;

impl Flavour {
    /// The trixie root (`target/trixie-root` of the workspace unless `IPVS_HERALD_TRIXIE_ROOT`
    /// says otherwise), checked to be complete; `None` for the host's routers.
    pub fn root(self) -> TResult<Option<PathBuf>> {
        match self {
            Flavour::Host => Ok(None),
            Flavour::Trixie => {
                let root = std::env::var_os(TRIXIE_ROOT_ENV).map_or_else(
                    || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/trixie-root"),
                    PathBuf::from,
                );
                // The stamp is written last, so its presence means a complete build.
                if !root.join(".herald-trixie-root").is_file() {
                    return err(format!(
                        "the Debian trixie root with BIRD 3 / FRR 10 / GoBGP 3.36 is missing at {}: \
                         run `tests/trixie-root.sh` as root (tests/all.sh does), or point {TRIXIE_ROOT_ENV} at one",
                        root.display()
                    ));
                }
                Ok(Some(root.canonicalize().map_err(|e| {
                    format!("canonicalize {}: {e}", root.display())
                })?))
            }
        }
    }

    /// What the running daemon's version string must contain.
    pub fn expected_version(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Flavour::Host, Kind::Bird) => "BIRD 2.0.",
            (Flavour::Host, Kind::Frr) => "FRRouting 8.4",
            (Flavour::Host, Kind::Gobgp) => "gobgpd version 3.10.",
            (Flavour::Trixie, Kind::Bird) => "BIRD 3.",
            (Flavour::Trixie, Kind::Frr) => "FRRouting 10.",
            (Flavour::Trixie, Kind::Gobgp) => "gobgpd version 3.36.",
        }
    }

    /// Short name of the router build, for test directories and messages.
    pub fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Flavour::Host, k) => k.name(),
            (Flavour::Trixie, Kind::Bird) => "bird3",
            (Flavour::Trixie, Kind::Frr) => "frr10",
            (Flavour::Trixie, Kind::Gobgp) => "gobgp336",
        }
    }
}

/// How the router is configured towards the speaker.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub kind: Kind,
    /// Which build of the router (host or trixie root).
    pub flavour: Flavour,
    pub local_as: u32,
    /// The speaker's AS (equal to `local_as` for iBGP).
    pub peer_as: u32,
    /// Proposed hold time in seconds.
    pub hold: u16,
    pub md5: Option<String>,
    /// The session runs over IPv6 transport (to the speaker's 2001:db8::1) instead of
    /// IPv4 (192.0.2.1); both address families are carried either way.
    pub transport_v6: bool,
    /// Router only accepts connections (the speaker must connect).
    pub passive: bool,
    /// GTSM (RFC 5082) towards a directly connected speaker: send TTL 255, accept only 255.
    pub ttl_security: bool,
    /// Seconds between the protocol's start and its first connection attempt (BIRD's
    /// `connect delay time`, default 5); `None` leaves the router's default.
    pub connect_delay: Option<u16>,
    /// Graceful restart (RFC 4724) on, explicitly: BIRD `graceful restart on;`, FRR
    /// `bgp graceful-restart` (GoBGP: not supported here).
    pub graceful_restart: bool,
    /// BFD towards the speaker, 100 ms x 3 (BIRD: `protocol bfd` and `bfd on`; FRR: bfdd
    /// with a peer entry and `neighbor X bfd`).
    pub bfd: bool,
    /// The BGP session is multihop, so its BFD session is too (RFC 5883, port 4784; BIRD:
    /// `multihop 2` and the `multihop` block of `protocol bfd`; FRR: `ebgp-multihop 2` and a
    /// `multihop` bfdd peer). Not for GoBGP.
    pub bfd_multihop: bool,
    /// With `bfd` and graceful restart, FRR only: `neighbor X bfd check-control-plane-failure`
    /// (RFC 5882 §4.3.2: a BFD Down may be a control-plane restart, judged by the C bit).
    pub bfd_check_control_plane: bool,
}

impl RouterSpec {
    pub fn new(kind: Kind, local_as: u32, peer_as: u32) -> Self {
        Self {
            kind,
            flavour: Flavour::Host,
            local_as,
            peer_as,
            hold: 6,
            md5: None,
            transport_v6: false,
            passive: false,
            ttl_security: false,
            connect_delay: None,
            graceful_restart: false,
            bfd: false,
            bfd_multihop: false,
            bfd_check_control_plane: false,
        }
    }

    fn peers(&self) -> Vec<IpAddr> {
        if self.transport_v6 {
            vec![IpAddr::V6(SPEAKER_V6)]
        } else {
            vec![IpAddr::V4(SPEAKER_V4)]
        }
    }

    fn ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// Short name of the router build ("bird", "frr10", …).
    pub fn label(&self) -> &'static str {
        self.flavour.label(self.kind)
    }
}

/// A running router daemon in the lab's router namespace.
#[derive(Debug)]
pub struct Router {
    pub spec: RouterSpec,
    ns_name: String,
    dir: PathBuf,
    /// The trixie root the daemons run chrooted into; `None` for the host's routers.
    root: Option<PathBuf>,
    /// bgp daemon last (so `bgp()` is the last element).
    daemons: Vec<Daemon>,
    /// The running daemon's version string, as checked at the last start.
    version: String,
}

fn proto_name(peer: IpAddr) -> &'static str {
    if peer.is_ipv4() {
        "spk4"
    } else {
        "spk6"
    }
}

impl Router {
    /// Writes the config and starts the router, waiting until its control socket answers.
    pub fn start(lab: &Lab, spec: RouterSpec) -> TResult<Self> {
        if spec.bfd_multihop && spec.kind == Kind::Gobgp {
            return Err("bfd_multihop is configured for BIRD and FRR only, not GoBGP".into());
        }
        let dir = lab.subdir(spec.kind.name())?;
        let root = spec.flavour.root()?;
        let mut r = Self {
            spec,
            ns_name: lab.router.name().to_owned(),
            dir,
            root,
            daemons: Vec::new(),
            version: String::new(),
        };
        r.write_config()?;
        r.launch()?;
        Ok(r)
    }

    /// `program` run in the router's namespace, from the host or chrooted into the root.
    fn ns_cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns_name]);
        self.program(c, program)
    }

    /// A CLI (`birdc`, `vtysh`) that talks to the daemon over a socket in the test
    /// directory: on the host as it is, for the root chrooted in the namespace (any
    /// namespace would do; the router's is at hand).
    fn cli_cmd(&self, program: &str) -> Command {
        if self.root.is_some() {
            self.ns_cmd(program)
        } else {
            Command::new(program)
        }
    }

    /// Appends `program` to `c`, wrapped in the chroot of the root when there is one.
    fn program(&self, mut c: Command, program: &str) -> Command {
        match &self.root {
            None => {
                c.arg(program);
            }
            Some(root) => {
                c.args([
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-euc",
                    CHROOT_SH,
                    "herald-chroot",
                ])
                .arg(root)
                .arg(&self.dir)
                .arg(program);
            }
        }
        c
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn write_config(&self) -> TResult<()> {
        let s = &self.spec;
        if s.kind != Kind::Bird && s.connect_delay.is_some() {
            return err(format!(
                "{}: `connect_delay` is only implemented for BIRD",
                s.kind.name()
            ));
        }
        let (name, text) = match s.kind {
            Kind::Bird => ("bird.conf", self.bird_config()),
            Kind::Frr => {
                std::fs::write(
                    self.dir.join("zebra.conf"),
                    "hostname rtr\nlog stdout informational\n",
                )
                .map_err(|e| format!("write zebra.conf: {e}"))?;
                let mut bfdd = String::from("hostname rtr\nlog stdout informational\nbfd\n");
                if s.bfd {
                    for peer in s.peers() {
                        // A multihop peer entry needs the local address (bfdd keys multihop
                        // sessions by the address pair).
                        let multihop = if s.bfd_multihop {
                            let local = if peer.is_ipv4() {
                                IpAddr::V4(ROUTER_V4)
                            } else {
                                IpAddr::V6(super::lab::ROUTER_V6)
                            };
                            format!(" multihop local-address {local}")
                        } else {
                            String::new()
                        };
                        let _ = write!(
                            bfdd,
                            " peer {peer}{multihop}\n  receive-interval 100\n  transmit-interval 100\n  \
                             detect-multiplier 3\n !\n"
                        );
                    }
                }
                std::fs::write(self.dir.join("bfdd.conf"), bfdd)
                    .map_err(|e| format!("write bfdd.conf: {e}"))?;
                ("bgpd.conf", self.frr_config())
            }
            Kind::Gobgp => ("gobgpd.toml", self.gobgp_config()),
        };
        std::fs::write(self.dir.join(name), text).map_err(|e| format!("write {name}: {e}"))?;
        Ok(())
    }

    fn bird_config(&self) -> String {
        let s = &self.spec;
        let mut c = format!("router id {ROUTER_V4};\nprotocol device {{}}\n");
        if s.bfd {
            c.push_str(
                "protocol bfd {\n  interface \"*\" {\n    min rx interval 100 ms;\n    \
                 min tx interval 100 ms;\n    idle tx interval 1 s;\n    multiplier 3;\n  };\n  \
                 multihop {\n    min rx interval 100 ms;\n    min tx interval 100 ms;\n    \
                 idle tx interval 1 s;\n    multiplier 3;\n  };\n}\n",
            );
        }
        for peer in s.peers() {
            let local = if peer.is_ipv4() {
                IpAddr::V4(ROUTER_V4)
            } else {
                IpAddr::V6(super::lab::ROUTER_V6)
            };
            let _ = writeln!(c, "protocol bgp {} {{", proto_name(peer));
            let _ = writeln!(c, "  local {local} as {};", s.local_as);
            let _ = writeln!(c, "  neighbor {peer} as {};", s.peer_as);
            let _ = writeln!(c, "  hold time {};", s.hold);
            let _ = writeln!(c, "  connect retry time 1;\n  error wait time 1, 2;");
            if s.passive {
                let _ = writeln!(c, "  passive on;");
            }
            if let Some(pw) = &s.md5 {
                let _ = writeln!(c, "  password \"{pw}\";");
            }
            if s.ttl_security {
                let _ = writeln!(c, "  ttl security on;");
            }
            if let Some(d) = s.connect_delay {
                let _ = writeln!(c, "  connect delay time {d};");
            }
            if s.graceful_restart {
                let _ = writeln!(c, "  graceful restart on;");
            }
            if s.bfd {
                let _ = writeln!(c, "  bfd on;");
            }
            if s.bfd_multihop {
                let _ = writeln!(c, "  multihop 2;");
            }
            if s.ibgp() {
                // iBGP defaults to multihop with recursive next hops; the speaker is on-link.
                let _ = writeln!(c, "  direct;");
            }
            let _ = writeln!(c, "  ipv4 {{ import all; export none; }};");
            let _ = writeln!(c, "  ipv6 {{ import all; export none; }};");
            let _ = writeln!(c, "}}");
        }
        c
    }

    fn frr_config(&self) -> String {
        let s = &self.spec;
        let mut c =
            String::from("frr defaults traditional\nhostname rtr\nlog stdout informational\n");
        let _ = writeln!(c, "router bgp {}", s.local_as);
        let _ = writeln!(c, " bgp router-id {ROUTER_V4}");
        let _ = writeln!(c, " no bgp ebgp-requires-policy");
        // Logs every NOTIFICATION received (`last_notification` reads it back).
        let _ = writeln!(c, " bgp log-neighbor-changes");
        let _ = writeln!(c, " no bgp default ipv4-unicast");
        if s.graceful_restart {
            let _ = writeln!(c, " bgp graceful-restart");
        }
        for peer in s.peers() {
            let _ = writeln!(c, " neighbor {peer} remote-as {}", s.peer_as);
            let _ = writeln!(c, " neighbor {peer} timers 1 {}", s.hold);
            let _ = writeln!(c, " neighbor {peer} timers connect 1");
            if s.passive {
                let _ = writeln!(c, " neighbor {peer} passive");
            }
            if let Some(pw) = &s.md5 {
                let _ = writeln!(c, " neighbor {peer} password {pw}");
            }
            if s.ttl_security {
                let _ = writeln!(c, " neighbor {peer} ttl-security hops 1");
            }
            if s.bfd_multihop {
                // Not on a shared link as far as bgpd is concerned: its BFD session is multihop.
                let _ = writeln!(c, " neighbor {peer} ebgp-multihop 2");
            }
            if s.bfd {
                let _ = writeln!(c, " neighbor {peer} bfd");
            }
            if s.bfd && s.bfd_check_control_plane {
                let _ = writeln!(c, " neighbor {peer} bfd check-control-plane-failure");
            }
        }
        for af in ["ipv4", "ipv6"] {
            let _ = writeln!(c, " address-family {af} unicast");
            for peer in s.peers() {
                let _ = writeln!(c, "  neighbor {peer} activate");
            }
            let _ = writeln!(c, " exit-address-family");
        }
        c
    }

    fn gobgp_config(&self) -> String {
        let s = &self.spec;
        let mut c = format!(
            "[global.config]\n  as = {}\n  router-id = \"{ROUTER_V4}\"\n  port = 179\n",
            s.local_as
        );
        for peer in s.peers() {
            let _ = writeln!(c, "[[neighbors]]\n  [neighbors.config]");
            let _ = writeln!(
                c,
                "    neighbor-address = \"{peer}\"\n    peer-as = {}",
                s.peer_as
            );
            if let Some(pw) = &s.md5 {
                let _ = writeln!(c, "    auth-password = \"{pw}\"");
            }
            let _ = writeln!(c, "  [neighbors.timers.config]");
            let _ = writeln!(
                c,
                "    hold-time = {}\n    keepalive-interval = {}\n    connect-retry = 1\n    idle-hold-time-after-reset = 1",
                s.hold,
                (s.hold / 3).max(1)
            );
            if s.passive {
                let _ = writeln!(c, "  [neighbors.transport.config]\n    passive-mode = true");
            }
            if s.ttl_security {
                let _ = writeln!(
                    c,
                    "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = 255"
                );
            }
            for af in ["ipv4-unicast", "ipv6-unicast"] {
                let _ = writeln!(
                    c,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{af}\""
                );
            }
        }
        c
    }

    fn launch(&mut self) -> TResult<()> {
        let log = self.dir.join(format!("{}.log", self.spec.kind.name()));
        match self.spec.kind {
            Kind::Bird => {
                let mut c = self.ns_cmd("/usr/sbin/bird");
                c.args([
                    "-f",
                    "-c",
                    &self.path("bird.conf"),
                    "-s",
                    &self.path("bird.ctl"),
                    "-P",
                ])
                .arg(self.path("bird.pid"));
                self.daemons.push(spawn("bird", c, &log)?);
            }
            Kind::Frr => {
                // bgpd last: `bgp()` is the last daemon.
                let daemons: &[&str] = if self.spec.bfd {
                    &["zebra", "bfdd", "bgpd"]
                } else {
                    &["zebra", "bgpd"]
                };
                for &d in daemons {
                    let mut c = self.ns_cmd(&format!("/usr/lib/frr/{d}"));
                    // FRR 8's bfdd has a control socket of its own (a fixed default path that
                    // parallel tests would share); FRR 10's has no such option.
                    if d == "bfdd" && self.spec.flavour == Flavour::Host {
                        c.args(["--bfdctl", &self.path("bfdd.sock")]);
                    }
                    c.args(["-f", &self.path(&format!("{d}.conf"))])
                        .args(["-i", &self.path(&format!("{d}.pid"))])
                        .args(["-z", &self.path("zserv.api")])
                        .args(["--vty_socket", &self.path("")])
                        .args(["-A", "127.0.0.1", "-P", "0", "-u", "frr", "-g", "frr"]);
                    self.daemons.push(spawn(d, c, &log)?);
                    if d == "zebra" {
                        let zs = self.dir.join("zserv.api");
                        wait_until(
                            "zebra socket",
                            Duration::from_secs(10),
                            Duration::from_millis(50),
                            || Ok(zs.exists()),
                        )?;
                    }
                }
            }
            Kind::Gobgp => {
                let mut c = self.ns_cmd("/usr/bin/gobgpd");
                c.args([
                    "-f",
                    &self.path("gobgpd.toml"),
                    "--api-hosts",
                    "127.0.0.1:50051",
                    "-l",
                    "info",
                ]);
                self.daemons.push(spawn("gobgpd", c, &log)?);
            }
        }
        let res = wait_until(
            &format!("{} control socket", self.spec.kind.name()),
            Duration::from_secs(20),
            Duration::from_millis(100),
            || self.ready(),
        );
        if let Err(e) = res {
            return err(format!("{e}; log tail:\n{}", tail(&log, 20)));
        }
        self.version = self.check_version()?;
        Ok(())
    }

    /// Asks the running BGP daemon for its version and checks it against the flavour, and
    /// that its executable lies inside the root exactly when there is one: a test of the
    /// newer routers must never pass on the host's binaries, nor the other way round.
    fn check_version(&self) -> TResult<String> {
        let daemon = self.bgp()?;
        let pid = daemon.pid().ok_or("the BGP daemon has exited")?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| format!("readlink /proc/{pid}/exe: {e}"))?;
        let in_root = self.root.as_ref().is_some_and(|r| exe.starts_with(r));
        if in_root != self.root.is_some() {
            return err(format!(
                "{}: the BGP daemon runs {} but the root is {:?}",
                self.spec.label(),
                exe.display(),
                self.root
            ));
        }
        let text = match self.spec.kind {
            Kind::Bird => self.birdc(&["show", "status"])?,
            Kind::Frr => self.vtysh("show version")?,
            // gobgp's API has no version call: ask the very executable the daemon runs.
            Kind::Gobgp => {
                let mut c = Command::new(format!("/proc/{pid}/exe"));
                c.arg("--version");
                run(c, Duration::from_secs(10))?
            }
        };
        let want = self.spec.flavour.expected_version(self.spec.kind);
        match text.lines().find(|l| l.contains(want)) {
            Some(line) => Ok(line.trim().to_owned()),
            None => err(format!(
                "{}: the running daemon is not the expected build (want a version line with {want:?}); it says: {:.300}",
                self.spec.label(),
                text.trim()
            )),
        }
    }

    /// The running daemon's version line, as checked when it (re)started.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn ready(&self) -> TResult<bool> {
        match self.spec.kind {
            Kind::Bird => self
                .birdc(&["show", "status"])
                .map(|o| o.contains("Daemon is up")),
            Kind::Frr => self.vtysh("show bgp summary json").map(|_| true),
            Kind::Gobgp => self.gobgp(&["global"]).map(|o| o.contains("AS")),
        }
    }

    /// Runs `birdc -s <sock> args…`.
    pub fn birdc(&self, args: &[&str]) -> TResult<String> {
        let mut c = self.cli_cmd("/usr/sbin/birdc");
        c.arg("-s").arg(self.path("bird.ctl")).args(args);
        let out = run(c, Duration::from_secs(30))?;
        if let Some(line) = out.lines().find(|l| {
            l.starts_with("syntax error")
                || l.starts_with("No such command")
                || l.contains("Unable to connect")
        }) {
            return err(format!("birdc {args:?}: {line}"));
        }
        Ok(out)
    }

    /// Runs `vtysh --vty_socket <dir> -c cmd`.
    pub fn vtysh(&self, cmd: &str) -> TResult<String> {
        let mut c = self.cli_cmd("/usr/bin/vtysh");
        c.arg("--vty_socket").arg(self.path("")).args(["-c", cmd]);
        let out = run(c, Duration::from_secs(30))?;
        if out.starts_with('%') {
            return err(format!("vtysh {cmd:?}: {}", out.trim()));
        }
        Ok(out)
    }

    /// Runs the `gobgp` CLI against this router's API inside its namespace.
    pub fn gobgp(&self, args: &[&str]) -> TResult<String> {
        let mut c = self.ns_cmd("/usr/bin/gobgp");
        c.args(["-u", "127.0.0.1", "-p", "50051"]).args(args);
        run(c, Duration::from_secs(30))
    }

    /// The BGP daemon process.
    fn bgp(&self) -> TResult<&Daemon> {
        self.daemons
            .last()
            .ok_or_else(|| "router is not running".into())
    }

    /// SIGSTOPs the BGP daemon (it stops sending KEEPALIVEs).
    pub fn freeze(&self) -> TResult<()> {
        Ok(self.bgp()?.signal(Signal::SIGSTOP)?)
    }

    /// SIGCONTs the BGP daemon.
    pub fn thaw(&self) -> TResult<()> {
        Ok(self.bgp()?.signal(Signal::SIGCONT)?)
    }

    /// Stops every daemon (SIGTERM) and starts them again with the same config.
    pub fn restart(&mut self) -> TResult<()> {
        while let Some(mut d) = self.daemons.pop() {
            d.stop(Duration::from_secs(5));
        }
        self.launch()
    }

    /// Kills every daemon with SIGKILL, as a crash would, and starts them again.
    pub fn crash_and_restart(&mut self) -> TResult<()> {
        while let Some(mut d) = self.daemons.pop() {
            d.kill();
        }
        self.launch()
    }

    /// Whether the session to `peer` is Established.
    pub fn established(&self, peer: IpAddr) -> TResult<bool> {
        Ok(self
            .session_state(peer)?
            .eq_ignore_ascii_case("established"))
    }

    /// The router's name for its session state towards `peer`.
    pub fn session_state(&self, peer: IpAddr) -> TResult<String> {
        match self.spec.kind {
            Kind::Bird => {
                let out = self.birdc(&["show", "protocols", proto_name(peer)])?;
                let line = out
                    .lines()
                    .find(|l| l.starts_with(proto_name(peer)))
                    .ok_or_else(|| {
                        format!("birdc shows no protocol {}: {out}", proto_name(peer))
                    })?;
                // name proto table state since info…
                let cols: Vec<&str> = line.split_whitespace().collect();
                Ok(cols.get(5).copied().unwrap_or("down").to_owned())
            }
            Kind::Frr => {
                let v = self.frr_neighbor(peer)?;
                Ok(v.get("bgpState")
                    .and_then(Value::as_str)
                    .ok_or("FRR neighbor JSON without bgpState")?
                    .to_owned())
            }
            Kind::Gobgp => {
                let v = self.gobgp_neighbor(peer)?;
                let st = v
                    .pointer("/state/session_state")
                    .ok_or("gobgp neighbor JSON without state.session_state")?;
                Ok(match st {
                    Value::Number(n) if n.as_u64() == Some(6) => "established".to_owned(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
        }
    }

    fn frr_neighbor(&self, peer: IpAddr) -> TResult<Value> {
        let out = self.vtysh(&format!("show bgp neighbors {peer} json"))?;
        let v: Value = serde_json::from_str(&out).map_err(|e| format!("FRR neighbor JSON: {e}"))?;
        v.get(peer.to_string())
            .cloned()
            .ok_or_else(|| format!("FRR neighbor JSON has no entry for {peer}: {out:.300}").into())
    }

    fn gobgp_neighbor(&self, peer: IpAddr) -> TResult<Value> {
        let out = self.gobgp(&["neighbor", &peer.to_string(), "-j"])?;
        serde_json::from_str(&out)
            .map_err(|e| format!("gobgp neighbor JSON: {e}: {out:.300}").into())
    }

    /// All BGP routes of one family in the router's RIB.
    pub fn rib(&self, v6: bool) -> TResult<Rib> {
        let af = if v6 { "ipv6" } else { "ipv4" };
        match self.spec.kind {
            Kind::Bird => {
                let table = if v6 { "master6" } else { "master4" };
                routes::parse_bird(&self.birdc(&["show", "route", "all", "table", table])?)
            }
            Kind::Frr => {
                let mut rib = Rib::new();
                let table = self.vtysh(&format!("show bgp {af} unicast json"))?;
                for p in routes::parse_frr_table_prefixes(&table)? {
                    if let Some(r) = self.frr_route(p)? {
                        rib.insert(p, r);
                    }
                }
                Ok(rib)
            }
            Kind::Gobgp => routes::parse_gobgp(&self.gobgp(&["global", "rib", "-a", af, "-j"])?),
        }
    }

    fn frr_route(&self, p: IpNet) -> TResult<Option<RouteView>> {
        let af = if p.addr().is_ipv6() { "ipv6" } else { "ipv4" };
        routes::parse_frr_prefix(&self.vtysh(&format!("show bgp {af} unicast {p} json"))?)
    }

    /// Number of BGP routes of one family (cheap, for large tables).
    pub fn count(&self, v6: bool) -> TResult<usize> {
        match self.spec.kind {
            Kind::Bird => {
                let table = if v6 { "master6" } else { "master4" };
                let out = self.birdc(&["show", "route", "count", "table", table])?;
                // "20000 of 20000 routes for 20000 networks in table master4"
                let line = out
                    .lines()
                    .find(|l| l.contains(" routes for "))
                    .ok_or_else(|| format!("unexpected birdc route count output: {out}"))?;
                line.split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bad route count line {line:?}").into())
            }
            Kind::Frr => {
                let af = if v6 { "ipv6" } else { "ipv4" };
                let table = self.vtysh(&format!("show bgp {af} unicast json"))?;
                Ok(routes::parse_frr_table_prefixes(&table)?.len())
            }
            Kind::Gobgp => Ok(self.rib(v6)?.len()),
        }
    }

    /// The router's best path for exactly `p`, if it has one.
    pub fn route(&self, p: IpNet) -> TResult<Option<RouteView>> {
        let v6 = p.addr().is_ipv6();
        match self.spec.kind {
            Kind::Bird => {
                let table = if v6 { "master6" } else { "master4" };
                let out = self.birdc(&["show", "route", &p.to_string(), "all", "table", table])?;
                Ok(routes::parse_bird(&out)?.remove(&p))
            }
            Kind::Frr => self.frr_route(p),
            Kind::Gobgp => {
                let af = if v6 { "ipv6" } else { "ipv4" };
                let out = self.gobgp(&["global", "rib", "-a", af, &p.to_string(), "-j"])?;
                Ok(routes::parse_gobgp(&out)?.remove(&p))
            }
        }
    }

    /// UPDATE messages received from `peer` so far.
    pub fn updates_received(&self, peer: IpAddr) -> TResult<u64> {
        match self.spec.kind {
            Kind::Bird => {
                let out = self.birdc(&["show", "protocols", "all", proto_name(peer)])?;
                let mut total = 0u64;
                let mut found = false;
                for l in out.lines() {
                    let t = l.trim();
                    for key in ["Import updates:", "Import withdraws:"] {
                        if let Some(rest) = t.strip_prefix(key) {
                            let n = rest
                                .split_whitespace()
                                .next()
                                .and_then(|n| n.parse::<u64>().ok())
                                .ok_or_else(|| format!("bad BIRD stats line {t:?}"))?;
                            total += n;
                            found = true;
                        }
                    }
                }
                if !found {
                    return err(format!("BIRD shows no import statistics for {peer}"));
                }
                Ok(total)
            }
            Kind::Frr => self
                .frr_neighbor(peer)?
                .pointer("/messageStats/updatesRecv")
                .and_then(Value::as_u64)
                .ok_or_else(|| "FRR neighbor JSON without messageStats.updatesRecv".into()),
            Kind::Gobgp => self
                .gobgp_neighbor(peer)?
                .pointer("/state/messages/received/update")
                .and_then(Value::as_u64)
                .ok_or_else(|| "gobgp neighbor JSON without state.messages.received.update".into()),
        }
    }

    /// Asks the router to re-learn `peer`'s routes without resetting the session
    /// (inbound soft reset, which sends a ROUTE-REFRESH). Returns `false` for a router
    /// that cannot be made to send one: GoBGP's `softresetin` replays its own
    /// Adj-RIB-In instead of asking the peer.
    pub fn refresh_in(&self, peer: IpAddr) -> TResult<bool> {
        match self.spec.kind {
            // BIRD 3 split `reload` into `reload filters` (re-run the import filter on
            // what is stored) and `reload bgp` (ask the peer: ROUTE-REFRESH).
            Kind::Bird if self.spec.flavour == Flavour::Trixie => self
                .birdc(&["reload", "bgp", "in", proto_name(peer)])
                .map(|_| true),
            Kind::Bird => self
                .birdc(&["reload", "in", proto_name(peer)])
                .map(|_| true),
            Kind::Frr => {
                for af in ["ipv4", "ipv6"] {
                    self.vtysh(&format!("clear bgp {af} unicast {peer} soft in"))?;
                }
                Ok(true)
            }
            Kind::Gobgp => Ok(false),
        }
    }

    /// Route-refresh messages the router has sent to `peer` (where the router shows it).
    pub fn refresh_sent(&self, peer: IpAddr) -> TResult<Option<u64>> {
        match self.spec.kind {
            Kind::Frr => self
                .frr_neighbor(peer)?
                .pointer("/messageStats/routeRefreshSent")
                .and_then(Value::as_u64)
                .map(Some)
                .ok_or_else(|| "FRR neighbor JSON without messageStats.routeRefreshSent".into()),
            Kind::Gobgp => Ok(self
                .gobgp_neighbor(peer)?
                .pointer("/state/messages/sent/refresh")
                .and_then(Value::as_u64)),
            Kind::Bird => Ok(None),
        }
    }

    /// Text describing the last NOTIFICATION received from `peer`, as the router shows it.
    pub fn last_notification(&self, peer: IpAddr) -> TResult<String> {
        match self.spec.kind {
            Kind::Bird => {
                let out = self.birdc(&["show", "protocols", "all", proto_name(peer)])?;
                Ok(out
                    .lines()
                    .find(|l| l.trim().starts_with("Last error:"))
                    .map(|l| l.trim().to_owned())
                    .unwrap_or_default())
            }
            Kind::Frr => {
                let v = self.frr_neighbor(peer)?;
                let mut s = String::new();
                for k in [
                    "lastResetDueTo",
                    "lastNotificationReason",
                    "lastErrorCodeSubcode",
                    "lastShutdownDescription",
                ] {
                    if let Some(x) = v.get(k) {
                        let _ = write!(s, "{k}={x} ");
                    }
                }
                // The JSON only keeps the last reset's cause, and a passive FRR (8.4 and
                // 10 alike) overwrites it with "Waiting for peer OPEN" as soon as it
                // re-arms after a Cease; the log keeps the NOTIFICATION itself.
                let log = self.dir.join("frr.log");
                let text = std::fs::read_to_string(&log)
                    .map_err(|e| format!("read {}: {e}", log.display()))?;
                let needle = format!("%NOTIFICATION: received from neighbor {peer} ");
                if let Some(line) = text.lines().rev().find(|l| l.contains(&needle)) {
                    let _ = write!(s, "log: {}", line.trim());
                }
                Ok(s)
            }
            Kind::Gobgp => {
                // gobgpd logs one JSON object per line; find the last notification received.
                let log = self.dir.join("gobgp.log");
                let text = std::fs::read_to_string(&log)
                    .map_err(|e| format!("read {}: {e}", log.display()))?;
                Ok(text
                    .lines()
                    .rev()
                    .find(|l| {
                        l.contains("received notification") && l.contains(&format!("\"{peer}\""))
                    })
                    .unwrap_or_default()
                    .to_owned())
            }
        }
    }

    /// Log tail of every daemon, for failure reports.
    pub fn logs(&self) -> String {
        let log = self.dir.join(format!("{}.log", self.spec.kind.name()));
        format!(
            "--- {} ({}) ---\n{}",
            log.display(),
            self.version,
            tail(&log, 40)
        )
    }

    /// Namespace the router runs in.
    pub fn netns(&self) -> &str {
        &self.ns_name
    }
}
