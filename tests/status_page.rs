//! The status page (`/status`) of the real daemon, loaded in headless Chromium.
//!
//! The daemon reads a procfs-backed fake IPVS table (known services, destinations, connection
//! counts and global rates) and runs the announcer with one VIP group whose name is hostile
//! markup and one BGP peer on a closed port. The test loads the page in the browser, asserts on
//! the DOM text (addresses, rates, connection counts, the group's phase, the hostile name shown
//! as text, not run), checks that the page refers to nothing outside itself, and keeps a
//! screenshot under `target/status-page/` (the one in `docs/status-page.png` comes from here).
//! A second daemon serves the page behind TLS and basic auth, as `/metrics` is.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_test_support::{free_port, require, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A VIP group name that would run script if the page did not escape it.
const HOSTILE: &str = "web<img src=x onerror=alert(1)><script>alert(2)</script>";

/// `s3cret`, bcrypt cost 4 (`crypt(3)` with `$2b$`).
const HASH: &str = "$2b$04$DBupGOeb9MvC5qR5NQgCa.IwAaLEpOmTJUWDDUtIPjm6Cgo0B1lMW";

/// The fake `/proc/net/ip_vs`: 192.0.2.10:80 with three real servers (one drained) and
/// 192.0.2.10:443 with one.
const IP_VS: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C000020A:0050 wlc
  -> C6336401:0050      Route   1      1200       3400
  -> C6336402:0050      Route   1      150        200
  -> C6336403:0050      Route   0      0          3
TCP  C000020A:01BB wlc
  -> C6336401:01BB      Route   1      7          9
";

/// The fake `/proc/net/ip_vs_stats`: 77 connections/s, 1000 packets/s in, 2 MB/s in.
const IP_VS_STATS: &str = "   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
    1C8E   2A7E51   1F4A10         2E1CF3A1         9A7EC800

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
      4D      3E8      320           1E8480           3D0900
";

struct Herald {
    dir: PathBuf,
    port: u16,
    _daemon: Daemon,
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.join("chromium"));
    }
}

/// A test directory under the target dir, fresh.
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("status-page-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("proc/net")).unwrap();
    std::fs::write(dir.join("proc/net/ip_vs"), IP_VS).unwrap();
    std::fs::write(dir.join("proc/net/ip_vs_stats"), IP_VS_STATS).unwrap();
    dir
}

/// Start the daemon in `dir` with `extra` appended to its configuration.
fn start(dir: PathBuf, extra: &str) -> Herald {
    let port = free_port();
    let config = format!(
        r#"[reader]
source = "procfs"
procfs_root = "{proc}"
kernel_hz = 250

[exporter]
listen = "127.0.0.1:{port}"
{extra}
"#,
        proc = dir.join("proc").display(),
        extra = extra.replace("{dir}", &dir.display().to_string()),
    );
    let path = dir.join("herald.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipvs-herald"));
    cmd.arg("--config").arg(&path).arg("run");
    let daemon = Daemon::spawn("ipvs-herald", cmd, &dir.join("herald.log")).unwrap();
    Herald {
        dir,
        port,
        _daemon: daemon,
    }
}

/// The announcer with two VIP groups, `web` over both services and a hostile-named one over a
/// VIP without services, and a BGP peer that never answers.
fn announcer() -> String {
    format!(
        r#"
[announcer]
admin_socket = "{{dir}}/admin.sock"
state_file = "{{dir}}/state.json"

[announcer.bgp]
router_id = "192.0.2.1"
local_as = 65000

[[announcer.bgp.peers]]
name = "edge-router"
address = "127.0.0.1"
port = {bgp}
remote_as = 65001

[[announcer.vip_groups]]
name = "web"
prefixes = ["192.0.2.10/32"]
vip_address = "ignore"
interval = "100ms"

[[announcer.vip_groups]]
name = "{HOSTILE}"
prefixes = ["192.0.2.20/32"]
vip_address = "ignore"
interval = "100ms"
"#,
        bgp = free_port(),
    )
}

impl Herald {
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/status", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("herald.log")).unwrap_or_default()
    }

    /// `curl` of `url` with `args`: the status code and the body.
    fn curl(&self, url: &str, args: &[&str]) -> (u16, String) {
        let body = self.dir.join("body");
        let (_, out, _) = bounded_status(
            Command::new("curl")
                .args(["-s", "-o"])
                .arg(&body)
                .args(["-w", "%{http_code}", "--max-time", "20"])
                .args(args)
                .arg(url),
            Duration::from_secs(30),
        );
        let code = out.trim().parse().unwrap_or(0);
        (code, std::fs::read_to_string(&body).unwrap_or_default())
    }

    /// Wait until the page answers 200.
    fn wait_up(&self, url: &str, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let (code, body) = self.curl(url, args);
            if code == 200 {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{url} answers {code}, not 200, after 30 s:\n{body}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Run headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`); its stdout.
    fn chromium(&self, url: &str, args: &[&str]) -> String {
        let profile = self.dir.join("chromium");
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        bounded(
            Command::new("/usr/bin/chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(args)
                .arg(url),
            Duration::from_secs(90),
        )
    }
}

/// Run `cmd` to completion within `within` (killed otherwise) and return its stdout; a failure
/// panics with its stderr.
fn bounded(cmd: &mut Command, within: Duration) -> String {
    let (ok, out, err) = bounded_status(cmd, within);
    assert!(ok, "{cmd:?} failed: {err}\n{out}");
    out
}

/// Run `cmd` to completion within `within` (killed otherwise): whether it succeeded, its stdout
/// and its stderr.
fn bounded_status(cmd: &mut Command, within: Duration) -> (bool, String, String) {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    // Read the pipes on threads so that a large DOM cannot fill them and stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap().unwrap_or_default();
    let err = err.join().unwrap().unwrap_or_default();
    (status.success(), out, err)
}

/// The text of an HTML document: tags dropped, the five entities decoded.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every element, attribute or CSS reference to something outside the page. Only markup and
/// style sheets are searched: text (where an escaped `src=` may be shown) is not.
fn external_references(html: &str) -> Vec<String> {
    let mut markup = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open..open + close + 1];
        markup.push_str(tag);
        rest = &rest[open + close + 1..];
        if tag.to_ascii_lowercase().starts_with("<style") {
            let end = rest
                .to_ascii_lowercase()
                .find("</style")
                .unwrap_or(rest.len());
            markup.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    let html = markup.as_str();
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for needle in [
        "src=", "<script", "<link", "<img", "<iframe", "<object", "url(", "@import", "http://",
        "https://", "//cdn",
    ] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(needle) {
            let at = from + i;
            found.push(html[at.saturating_sub(40)..(at + 60).min(html.len())].to_string());
            from = at + needle.len();
        }
    }
    // Links stay on the daemon: relative paths only.
    for part in lower.split("href=\"").skip(1) {
        if !part.starts_with('/') {
            found.push(format!("href=\"{}", &part[..part.len().min(60)]));
        }
    }
    found
}

/// The screenshot's home: `target/status-page/`.
fn artefact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn status_page_in_a_headless_browser() {
    require(&["chromium", "curl"]);
    // The reference check finds what it must.
    assert!(external_references("<p>src=x, http://x</p><a href=\"/metrics\">").is_empty());
    for bad in [
        "<img src=\"x.png\">",
        "<a href=\"https://x\">",
        "<style>b{background:url(x.png)}</style>",
        "<link rel=\"stylesheet\" href=\"/x.css\">",
    ] {
        assert!(!external_references(bad).is_empty(), "{bad}");
    }
    let herald = start(test_dir("browser"), &announcer());
    let url = herald.url("http");
    let raw = herald.wait_up(&url, &[]);

    // The hostile group name is text in the markup, never markup.
    assert!(!raw.contains("<script"), "unescaped script in:\n{raw}");
    assert!(!raw.contains("<img"), "unescaped img in:\n{raw}");
    assert!(
        raw.contains("web&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
        "the group name, escaped, is missing:\n{raw}"
    );
    let external = external_references(&raw);
    assert!(external.is_empty(), "external references: {external:#?}");
    assert!(raw.contains("<meta http-equiv=\"refresh\" content=\"5\">"));

    let dom = herald.chromium(&url, &["--dump-dom"]);
    assert!(dom.contains("<main>"), "no page in the DOM dump:\n{dom}");
    // Had the name been markup, the browser would have made elements of it.
    assert!(
        !dom.contains("<script>alert"),
        "script element in the DOM:\n{dom}"
    );
    assert!(!dom.contains("<img"), "img element in the DOM:\n{dom}");
    let external = external_references(&dom);
    assert!(external.is_empty(), "external references: {external:#?}");
    let t = text(&dom);
    // The hostile name is there, as text.
    assert!(t.contains(HOSTILE), "{HOSTILE:?} is not on the page:\n{t}");
    for want in [
        // The VIP groups with their phase, health and pools against the thresholds, the
        // peer with its state and error.
        "1/2 VIP groups announced",
        "0/1 BGP sessions established",
        "web 192.0.2.10/32 announced up",
        "2/3 down < 1 · up ≥ 1 up",
        "1/1 down < 1 · up ≥ 1 up",
        "withdrawn → announced",
        "192.0.2.20/32 withdrawn down no services",
        "edge-router 127.0.0.1 idle",
        "Connection refused",
        // Director totals from ip_vs_stats: 77 conn/s, 1000 pkt/s in, 800 out, 2 MB/s in.
        "77 connections/s",
        "1.00k / 800 packets/s in / out",
        "2.00 MB/s / 4.00 MB/s bytes/s in / out",
        // Connection counts from ip_vs, busiest first.
        "2 services",
        "4 destinations",
        "1.36k active connections",
        "3.61k inactive connections",
        "Busiest services 2 of 2",
        "tcp/192.0.2.10:80 wlc 2/3 1.35k 3.60k",
        "tcp/192.0.2.10:443 wlc 1/1 7 9",
        "Busiest destinations 4 of 4",
        "198.51.100.1:80 tcp/192.0.2.10:80 route 1 1.20k 3.40k",
        "198.51.100.3:80 tcp/192.0.2.10:80 route 0 (drained) 0 3",
        // Imbalance of :80: 198.51.100.1 has 4600/4950 of the connections for half the weight.
        "1.86×",
        "refreshes every 5 s",
    ] {
        assert!(t.contains(want), "{want:?} is not on the page:\n{t}");
    }
    // The busiest service comes first.
    assert!(t.find("tcp/192.0.2.10:80 wlc").unwrap() < t.find("tcp/192.0.2.10:443 wlc").unwrap());

    let shot = artefact_dir().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    herald.chromium(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            // On a loaded machine the capture could come before the last paint: draw every
            // stage first, and let the page settle (in virtual time, well before its reload).
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=1000",
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a screenshot ({} bytes)",
        shot.display(),
        png.len()
    );

    // Linked from the landing page; `?refresh=` sets the reload interval.
    let (code, landing) = herald.curl(&format!("http://127.0.0.1:{}/", herald.port), &[]);
    assert_eq!(code, 200);
    assert!(
        landing.contains("<a href=\"/status\">Status</a>"),
        "{landing}"
    );
    let (_, slow) = herald.curl(&format!("{url}?refresh=30"), &[]);
    assert!(slow.contains("content=\"30\""));
    let (_, still) = herald.curl(&format!("{url}?refresh=0"), &[]);
    assert!(!still.contains("http-equiv"));
}

#[test]
fn status_page_without_announcer_behind_tls_and_basic_auth() {
    require(&["curl", "openssl"]);
    let dir = test_dir("auth");
    let (crt, key) = herald_test_support::tls::self_signed(&dir, "tls", Some("IP:127.0.0.1"));
    let web = dir.join("web.toml");
    std::fs::write(
        &web,
        format!(
            "[tls_server_config]\ncert_file = {crt:?}\nkey_file = {key:?}\n\n[basic_auth_users]\nprom = {HASH:?}\n"
        ),
    )
    .unwrap();
    let herald = start(dir, &format!("web_config_file = {web:?}"));
    let url = herald.url("https");
    let ca = crt.display().to_string();
    let body = herald.wait_up(&url, &["--cacert", &ca, "-u", "prom:s3cret"]);
    let t = text(&body);
    assert!(t.contains("The announcer is not configured"), "{t}");
    assert!(t.contains("tcp/192.0.2.10:443"), "{t}");

    let (code, _) = herald.curl(&url, &["--cacert", &ca]);
    assert_eq!(code, 401, "no credentials");
    let (code, _) = herald.curl(&url, &["--cacert", &ca, "-u", "prom:wrong"]);
    assert_eq!(code, 401, "wrong password");
    let (code, _) = herald.curl(&herald.url("http"), &[]);
    assert_eq!(code, 0, "plain HTTP on the TLS port must not get a page");
}
