//! `ipvs-herald top` driven through tmux against a known state: a procfs-backed fake IPVS table
//! (`[reader] source = "procfs"` with its own `procfs_root`) with known services, destinations,
//! weights, connection counts and global rates, and no daemon. The test types keys with
//! `send-keys`, reads the screen with `capture-pane -p`, and checks the values, the sort order,
//! the filter, a read that hangs (shown, not fatal), and that `q` and SIGTERM end it with status 0
//! and the terminal restored. Each test has a private tmux server (`-L`), killed at the end;
//! every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ipvs-herald");
/// How long the screen may take to show what a test waits for.
const SCREEN_BOUND: Duration = Duration::from_secs(20);

/// The known state: two TCP destinations and one UDP one, global totals and rates.
const IP_VS: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C0000A0A:0050 wlc 
  -> C6336401:0050      Route   3      120        40        
  -> C6336402:0050      Masq    1      7          2         
UDP  C0000A0B:0035 rr 
  -> C6336403:0035      Tunnel  5      0          900       
";
/// Totals 8010 connections; rates 42 conn/s, 1000 packets/s in, 1,000,000 bytes/s in,
/// 20,000 bytes/s out.
const IP_VS_STATS: &str = "\
   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
    1F4A    2A3C1        0          1E8480                0

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
      2A      3E8        0            F4240             4E20
";

/// A test's directory (fake procfs, configuration) and private tmux server, removed on drop.
struct Top {
    dir: PathBuf,
    socket: String,
}

impl Top {
    /// Writes the fake state and starts a shell in a 160x40 pane of a private tmux server, then
    /// `ipvs-herald top` in it (followed by an echo of its exit status).
    fn start(tag: &str) -> Top {
        Top::start_with(tag, "")
    }

    /// [`Top::start`] with `extra` appended to the configuration (for a daemon's sections),
    /// calling `before` with the directory before `top` starts.
    fn start_with(tag: &str, extra: &str) -> Top {
        Top::start_before(tag, extra, |_| {})
    }

    fn start_before(tag: &str, extra: &str, before: impl FnOnce(&Path)) -> Top {
        herald_test_support::require(&["tmux"]);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("top-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc/net")).unwrap();
        std::fs::write(dir.join("proc/net/ip_vs"), IP_VS).unwrap();
        std::fs::write(dir.join("proc/net/ip_vs_stats"), IP_VS_STATS).unwrap();
        std::fs::write(
            dir.join("top.toml"),
            format!(
                "[reader]\nsource = \"procfs\"\nprocfs_root = \"{}\"\nkernel_hz = 250\ntimeout = \"1s\"\n\
                 {}\n[announcer]\nadmin_socket = \"{}\"\n{}",
                dir.join("proc").display(),
                format_args!(
                    "[exporter]\nlisten = \"127.0.0.1:{}\"\n[exporter.conn_table]\nenabled = false\n",
                    herald_test_support::free_port()
                ),
                dir.join("admin.sock").display(),
                extra.replace("{dir}", &dir.display().to_string()),
            ),
        )
        .unwrap();
        before(&dir);
        let top = Top {
            socket: format!("herald-top-{tag}-{}", std::process::id()),
            dir,
        };
        top.tmux(&["new-session", "-d", "-x", "160", "-y", "40", "sh"]);
        let cmd = format!(
            "{BIN} -c {} top --interval 200ms; echo TOP\"\"EXIT=$?",
            top.dir.join("top.toml").display()
        );
        top.tmux(&["send-keys", "-l", &cmd]);
        top.tmux(&["send-keys", "Enter"]);
        top
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits (bounded) until the screen satisfies `ok`, and returns it.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                start.elapsed() < SCREEN_BOUND,
                "the screen did not show {what} within {SCREEN_BOUND:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pane's process (the shell) and the tmux variable `name`.
    fn var(&self, name: &str) -> String {
        self.tmux(&["display-message", "-p", &format!("#{{{name}}}")])
            .trim()
            .to_string()
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cells of the table line naming `name` (after `->` or the protocol), from `name` on.
fn row<'a>(screen: &'a str, name: &str) -> Vec<&'a str> {
    screen
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&name))
        .map(|cells| cells[1..].to_vec())
        .unwrap_or_else(|| panic!("no table row for {name} on the screen:\n{screen}"))
}

/// Table lines naming a service or destination, in screen order.
fn order(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .filter(|l| l.starts_with("TCP") || l.starts_with("UDP") || l.starts_with("->"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c[..2].join(" ")
        })
        .collect()
}

fn table_ready(s: &str) -> bool {
    s.contains("198.51.100.3:53") && s.contains("sort:")
}

#[test]
fn shows_the_known_state_sorts_filters_and_quits() {
    let top = Top::start("main");
    let s = top.wait("the table", table_ready);
    // The screen as a test artefact.
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("top-screen.txt"),
        &s,
    )
    .unwrap();

    // Header: source and the kernel's global totals and rates.
    assert!(s.contains("source procfs"), "{s}");
    assert!(
        s.contains("Total  conns 8010  conn/s 42  pkt/s in 1000 out 0  bytes/s in 1.0M out 20.0k"),
        "{s}"
    );
    // No daemon: the groups say so, the view works.
    assert!(s.contains("unavailable: no daemon at "), "{s}");
    assert!(s.contains("admin.sock"), "{s}");
    // Destinations: forwarding method, weight, active, inactive; procfs has no per-row rates.
    assert_eq!(
        row(&s, "198.51.100.1:80")[1..7],
        ["Route", "3", "120", "40", "-", "-"]
    );
    assert_eq!(row(&s, "198.51.100.2:80")[1..5], ["Masq", "1", "7", "2"]);
    assert_eq!(
        row(&s, "198.51.100.3:53")[1..5],
        ["Tunnel", "5", "0", "900"]
    );
    // Services: scheduler and the sums of their destinations' connections.
    assert_eq!(row(&s, "192.0.10.10:80")[1..4], ["wlc", "127", "42"]);
    assert_eq!(row(&s, "192.0.10.11:53")[1..4], ["rr", "0", "900"]);
    assert!(s.contains("last read") && !s.contains("FAILED"), "{s}");

    // Default sort: connections, most first (UDP's 900 before TCP's 169), destinations too.
    let conns = [
        "UDP 192.0.10.11:53",
        "-> 198.51.100.3:53",
        "TCP 192.0.10.10:80",
        "-> 198.51.100.1:80",
        "-> 198.51.100.2:80",
    ];
    assert!(s.contains("sort: connections"), "{s}");
    assert_eq!(order(&s), conns);
    // `r` reverses.
    top.keys(&["r"]);
    let s = top.wait("the reversed order", |s| {
        order(s).first().map(String::as_str) == Some("TCP 192.0.10.10:80")
    });
    assert_eq!(
        order(&s),
        [
            "TCP 192.0.10.10:80",
            "-> 198.51.100.2:80",
            "-> 198.51.100.1:80",
            "UDP 192.0.10.11:53",
            "-> 198.51.100.3:53"
        ]
    );
    top.keys(&["r"]);
    top.wait("the order back", |s| order(s) == conns);
    // `s` cycles conn/s, bytes/s, address.
    for name in ["conn/s", "bytes/s", "address"] {
        top.keys(&["s"]);
        top.wait(&format!("sort: {name}"), |s| {
            s.contains(&format!("sort: {name} "))
        });
    }
    let s = top.screen();
    assert_eq!(
        order(&s),
        [
            "TCP 192.0.10.10:80",
            "-> 198.51.100.1:80",
            "-> 198.51.100.2:80",
            "UDP 192.0.10.11:53",
            "-> 198.51.100.3:53"
        ],
        "{s}"
    );

    // `/` + text + Enter filters on the address text.
    top.keys(&["/"]);
    top.keys(&["-l", "100.2"]);
    top.wait("the filter being typed", |s| s.contains("filter: 100.2_"));
    top.keys(&["Enter"]);
    let s = top.wait("the filtered table", |s| !s.contains("198.51.100.3:53"));
    assert_eq!(
        order(&s),
        ["TCP 192.0.10.10:80", "-> 198.51.100.2:80"],
        "{s}"
    );
    assert!(s.contains("filter: 100.2"), "{s}");
    // `/` then Esc clears it.
    top.keys(&["/"]);
    top.keys(&["Escape"]);
    let s = top.wait("the whole table again", table_ready);
    assert_eq!(order(&s).len(), 5, "{s}");

    // `?` shows the help, any key closes it.
    top.keys(&["?"]);
    top.wait("the help", |s| s.contains("reverse the order"));
    top.keys(&["x"]);
    top.wait("the help closed", |s| !s.contains("reverse the order"));

    // `q` quits with status 0, back on the shell's normal screen.
    top.keys(&["q"]);
    let s = top.wait("the exit status", |s| s.contains("TOPEXIT="));
    assert!(s.contains("TOPEXIT=0"), "{s}");
    assert!(
        !s.contains("sort:"),
        "the view is still on the screen:\n{s}"
    );
    assert_eq!(top.var("alternate_on"), "0");
    assert_eq!(top.var("pane_current_command"), "sh");
}

#[test]
fn a_hung_read_is_shown_not_fatal_and_sigterm_restores_the_terminal() {
    let top = Top::start("hang");
    top.wait("the table", table_ready);
    // A FIFO without a writer: every read of it blocks, like a wedged kernel read.
    let ip_vs = top.dir().join("proc/net/ip_vs");
    std::fs::remove_file(&ip_vs).unwrap();
    let st = Command::new("mkfifo").arg(&ip_vs).status().unwrap();
    assert!(st.success());
    let s = top.wait("the failed read", |s| s.contains("last read FAILED"));
    // The last good table stays, and the keys still work.
    assert!(s.contains("198.51.100.1:80"), "{s}");
    top.keys(&["s"]);
    top.wait("sort: conn/s", |s| s.contains("sort: conn/s "));

    // SIGTERM to top (the shell's child): exit 0, terminal restored.
    let shell: u32 = top.var("pane_pid").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid = children.split_whitespace().next().expect("top is running");
    let st = Command::new("kill").args(["-TERM", pid]).status().unwrap();
    assert!(st.success());
    let s = top.wait("the exit status", |s| s.contains("TOPEXIT="));
    assert!(s.contains("TOPEXIT=0"), "{s}");
    assert_eq!(top.var("alternate_on"), "0");
}

#[test]
fn refuses_a_non_terminal_with_status_64() {
    let out = Command::new(BIN)
        .args(["top"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("top needs a terminal"), "{err}");
}

/// The daemon's sections for [`shows_the_daemons_vip_groups`]: group `web` (the TCP service,
/// pool up: announced), group `dns` (the UDP service, drained by the maintenance file), one BGP
/// peer that never answers (the groups' phases do not depend on it).
const DAEMON: &str = r#"maintenance_file = "{dir}/maintenance"
state_file = "{dir}/state.json"
shutdown_drain_time = "0s"
shutdown_timeout = "2s"

[announcer.bgp]
router_id = "127.0.0.1"
local_as = 65001

[[announcer.bgp.peers]]
name = "rt"
address = "127.0.0.1"
port = 9
remote_as = 65000

[[announcer.vip_groups]]
name = "web"
prefixes = ["192.0.10.10/32"]
interval = "200ms"
rise = 1
vip_address = "ignore"

[[announcer.vip_groups]]
name = "dns"
prefixes = ["192.0.10.11/32"]
interval = "200ms"
rise = 1
vip_address = "ignore"
"#;

#[test]
fn shows_the_daemons_vip_groups() {
    let mut daemon = None;
    let top = Top::start_before("daemon", DAEMON, |dir| {
        std::fs::write(dir.join("maintenance"), "dns\n").unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["-c", dir.join("top.toml").to_str().unwrap(), "run"]);
        daemon = Some(
            herald_test_support::Daemon::spawn("ipvs-herald run", cmd, &dir.join("daemon.log"))
                .unwrap(),
        );
        let start = Instant::now();
        while !dir.join("admin.sock").exists() {
            assert!(
                start.elapsed() < SCREEN_BOUND,
                "the daemon did not open its admin socket within {SCREEN_BOUND:?}: {}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let s = top.wait("both groups in their phases", |s| {
        s.contains("web                  announced ") && s.contains("dns                  drained ")
    });
    // The screen as a test artefact: the README's `top` screen is this one.
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("top-screen-groups.txt"),
        &s,
    )
    .unwrap();
    assert!(s.contains("drained by maintenance_file"), "{s}");
    assert!(s.contains("TCP 192.0.10.10:80 2/2"), "{s}");
    // The table's group column names each service's group.
    assert_eq!(row(&s, "192.0.10.10:80").last(), Some(&"web"), "{s}");
    assert_eq!(row(&s, "192.0.10.11:53").last(), Some(&"dns"), "{s}");
    top.keys(&["q"]);
    let s = top.wait("the exit status", |s| s.contains("TOPEXIT="));
    assert!(s.contains("TOPEXIT=0"), "{s}");
    if let Some(d) = daemon.as_mut() {
        d.stop(Duration::from_secs(5));
    }
}

#[test]
fn a_closed_terminal_ends_top() {
    let top = Top::start("hangup");
    top.wait("the table", table_ready);
    let shell: u32 = top.var("pane_pid").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // Killing the server hangs up the pane's terminal: top must end, not spin on it.
    top.tmux(&["kill-server"]);
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie has ended; only its parent's wait is missing.
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            start.elapsed() < SCREEN_BOUND,
            "top (pid {pid}) still runs {SCREEN_BOUND:?} after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
