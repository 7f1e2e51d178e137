//! `check-config` and `run` agree: the built binary is given a table of bad configuration files
//! and must refuse each one in both commands with exit status 64 and the same message, `run`
//! before it binds anything; a table of good files passes `check-config` (exit 0) and `run`
//! starts with each, serves, and stops cleanly on SIGTERM.
//!
//! Each file gets its own loopback port and an admin socket in this test's own directory under
//! `CARGO_TARGET_TMPDIR`, so that a `run` that wrongly starts binds nothing shared; it is killed
//! after a bound. Certificates are made with `openssl`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_test_support::free_port;
use herald_test_support::tls::self_signed;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ipvs-herald");
/// How long a refusing `run` may take to exit (it should take milliseconds).
const REFUSE_BOUND: Duration = Duration::from_secs(20);
/// How long a good `run` may take to listen, and to stop after SIGTERM.
const START_BOUND: Duration = Duration::from_secs(20);
const STOP_BOUND: Duration = Duration::from_secs(30);

/// The test's own directory, with the TLS material every web config case refers to.
struct Fixture {
    dir: PathBuf,
    files: AtomicUsize,
}

impl Fixture {
    /// `tag` keeps the directories of tests running at once apart.
    fn new(tag: &str) -> Fixture {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("check-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "b"] {
            self_signed(&dir, name, None);
        }
        std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
        Fixture {
            dir,
            files: AtomicUsize::new(0),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A web config file with `text`, its path.
    fn web(&self, text: &str) -> PathBuf {
        self.web_as(text, "toml")
    }

    /// A web config file in node_exporter's YAML format (`.yml`), its path.
    fn web_yaml(&self, text: &str) -> PathBuf {
        self.web_as(text, "yml")
    }

    fn web_as(&self, text: &str, ext: &str) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let p = self.dir.join(format!("web-{n}.{ext}"));
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Write the configuration `text` with `@DIR@` replaced by the test directory, and with
    /// this file's own listen port and admin socket: in the case's `[exporter]` /
    /// `[announcer]` section where it has one (at `@LISTEN@` / `@ADMIN@`), else in sections
    /// appended at the end.
    fn config(&self, text: &str) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let listen = format!("127.0.0.1:{}", free_port());
        let admin = self.dir.join(format!("admin-{n}.sock"));
        let mut text = text.replace("@DIR@", &self.dir.display().to_string());
        let has = |t: &str, section: &str| t.lines().any(|l| l.trim() == section);
        if !has(&text, "[exporter]") {
            text.push_str("\n[exporter]\nlisten = \"@LISTEN@\"\n");
        }
        if !has(&text, "[announcer]") {
            text.push_str(
                "\n[announcer]\nadmin_socket = \"@ADMIN@\"\nstate_file = \"@ADMIN@.state\"\n",
            );
        }
        assert!(
            text.contains("@LISTEN@") && text.contains("@ADMIN@"),
            "case with its own section must place @LISTEN@ and @ADMIN@: {text}"
        );
        let text = text
            .replace("@LISTEN@", &listen)
            .replace("@ADMIN@", &admin.display().to_string());
        let p = self.dir.join(format!("config-{n}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn herald(config: &Path, command: &str, log_env: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config").arg(config).arg(command);
    c.env_remove("IPVS_HERALD_CONFIG").env_remove("NO_COLOR");
    match log_env {
        Some(v) => c.env("IPVS_HERALD_LOG", v),
        None => c.env_remove("IPVS_HERALD_LOG"),
    };
    c.stdin(Stdio::null());
    c
}

/// Wait for `child` until `bound`; kill it when it does not exit by then.
fn wait_bounded(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `command` to its end (killed after `bound`): exit status and standard error.
fn run_to_end(mut cmd: Command, bound: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipvs-herald");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, bound);
    let err = reader.join().unwrap();
    (status.and_then(|s| s.code()), err)
}

/// One bad configuration: its name, the file, the text the message must contain, and the
/// value of `IPVS_HERALD_LOG` (when the environment is the problem).
struct Bad {
    name: &'static str,
    text: String,
    expect: &'static str,
    log_env: Option<&'static str>,
}

fn bad(name: &'static str, text: impl Into<String>, expect: &'static str) -> Bad {
    Bad {
        name,
        text: text.into(),
        expect,
        log_env: None,
    }
}

/// bcrypt (cost 4) of "s3cret", made with the `bcrypt` crate.
const PROM_HASH: &str = "$2b$04$VVwAK4jvJ25aPIy0j4qgxuZaimOoM20djqdULCKW5CsYfKK8wcVO.";
/// bcrypt (cost 4) of "n3w".
const PROM_HASH_NEW: &str = "$2b$04$U1h4r9QBJtQ5MjVxShbEXe/ulIsFGE1enpYPdkt37dnzCMvnYiF0q";

const BGP: &str = "[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\n";
const PEER: &str = "[[announcer.bgp.peers]]\nname = \"r1\"\naddress = \"127.0.0.1\"\n\
    remote_as = 65001\nport = @PEERPORT@\nconnect_retry = { min = 0.2, max = 1.0 }\n";

fn group(name: &str, prefixes: &str, extra: &str) -> String {
    format!("[[announcer.vip_groups]]\nname = \"{name}\"\nprefixes = [{prefixes}]\n{extra}")
}

fn bad_cases(f: &Fixture) -> Vec<Bad> {
    let web = |text: &str| {
        format!(
            "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {:?}\n",
            f.web(text)
        )
    };
    let tls = |cert: &str, key: &str, extra: &str| {
        web(&format!(
            "[tls_server_config]\ncert_file = {:?}\nkey_file = {:?}\n{extra}",
            f.path(cert),
            f.path(key)
        ))
    };
    let yaml = |text: &str| {
        format!(
            "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {:?}\n",
            f.web_yaml(text)
        )
    };
    // Relative to the YAML file's directory, as in exporter-toolkit.
    let yaml_tls = |extra: &str| {
        yaml(&format!(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n{extra}"
        ))
    };
    let bgp_group = |extra: &str| format!("{BGP}{}", group("web", "\"192.0.2.10/32\"", extra));
    let announcer = |keys: &str| {
        format!("[announcer]\nadmin_socket = \"@ADMIN@\"\nstate_file = \"@ADMIN@.state\"\n{keys}")
    };
    let huge = "\"500000000000y\"";
    vec![
        // Defect 1: durations past their bounds.
        bad(
            "interval overflow",
            bgp_group(&format!("interval = {huge}\n")),
            "`interval` is ",
        ),
        bad(
            "interval past 1h",
            bgp_group("interval = \"1h 1s\"\n"),
            "at most 1h",
        ),
        bad(
            "hold_down past 1h",
            bgp_group("hold_down = \"2h\"\n"),
            "`hold_down` is ",
        ),
        bad(
            "address_linger past 10m",
            bgp_group("address_linger = \"11m\"\n"),
            "`address_linger` is ",
        ),
        bad(
            "drain_time overflow",
            announcer(&format!("drain_time = {huge}\n")),
            "announcer.drain_time is ",
        ),
        bad(
            "shutdown_timeout overflow",
            announcer(&format!("shutdown_timeout = {huge}\n")),
            "announcer.shutdown_timeout is ",
        ),
        bad(
            "shutdown_drain_time past 1h",
            announcer("shutdown_drain_time = \"2h\"\nshutdown_timeout = \"1h\"\n"),
            "announcer.shutdown_drain_time is ",
        ),
        bad(
            "reader timeout overflow",
            format!("[reader]\ntimeout = {huge}\n"),
            "reader.timeout: ",
        ),
        bad(
            "reader timeout zero",
            "[reader]\ntimeout = \"0s\"\n",
            "reader.timeout: ",
        ),
        bad(
            "request_timeout past 1h",
            "[exporter.limits]\nrequest_timeout = \"2h\"\n",
            "exporter.limits.request_timeout: ",
        ),
        bad(
            "exporter shutdown_drain overflow",
            format!("[exporter.limits]\nshutdown_drain = {huge}\n"),
            "exporter.limits.shutdown_drain: ",
        ),
        bad(
            "conn_table max_duration past 1h",
            "[exporter.conn_table]\nmax_duration = \"61m\"\n",
            "exporter.conn_table.max_duration: ",
        ),
        bad(
            "connect_retry past 1h",
            format!("{BGP}{}", PEER.replace("max = 1.0", "max = 1e300")),
            "connect_retry needs",
        ),
        bad(
            "connect_retry past 1h as a duration string",
            format!("{BGP}{}", PEER.replace("max = 1.0", "max = \"1h 1s\"")),
            "connect_retry needs",
        ),
        bad(
            "hold_time not whole seconds",
            format!("{BGP}{PEER}hold_time = \"1500ms\"\n"),
            "hold_time: \"1500ms\" is not a whole number of seconds",
        ),
        bad(
            "hold_time string below 3 s",
            format!("{BGP}{PEER}hold_time = \"2s\"\n"),
            "announcer.bgp.peers[r1].hold_time must be 0 or at least 3",
        ),
        bad(
            "hold_time not a duration",
            format!("{BGP}{PEER}hold_time = \"soon\"\n"),
            "hold_time: bad duration \"soon\"",
        ),
        bad(
            "restart_time string past 4095 s",
            format!("{BGP}{PEER}graceful_restart = {{ restart_time = \"2h\" }}\n"),
            "graceful_restart.restart_time must be at most 4095",
        ),
        // Defect 2 and 7: what run loads at start.
        bad(
            "web config missing",
            web_missing(f),
            "exporter.web_config_file: cannot read web config file",
        ),
        bad(
            "web config unknown key",
            web("bogus = 1\n"),
            "exporter.web_config_file: web config file",
        ),
        bad(
            "web config not TOML",
            web("[tls_server_config\n"),
            "exporter.web_config_file: web config file",
        ),
        bad(
            "web config bad bcrypt",
            web("[basic_auth_users]\nprom = \"plain\"\n"),
            "not a bcrypt hash",
        ),
        bad(
            "certificate missing",
            tls("missing.crt", "a.key", ""),
            "missing.crt",
        ),
        bad(
            "key missing",
            tls("a.crt", "missing.key", ""),
            "missing.key",
        ),
        bad(
            "certificate is garbage",
            tls("garbage.pem", "a.key", ""),
            "no certificate found",
        ),
        bad(
            "certificate and key mismatch",
            tls("a.crt", "b.key", ""),
            "certificate/key mismatch",
        ),
        bad(
            "client CA garbage",
            tls(
                "a.crt",
                "a.key",
                &format!(
                    "client_auth_type = \"VerifyClientCertIfGiven\"\nclient_ca_file = {:?}\n",
                    f.path("garbage.pem")
                ),
            ),
            "garbage.pem",
        ),
        bad(
            "client CA without a client auth type",
            tls(
                "a.crt",
                "a.key",
                &format!("client_ca_file = {:?}\n", f.path("b.crt")),
            ),
            "tls_server_config.client_ca_file: client CAs are configured without a client_auth_type",
        ),
        // node_exporter's YAML format: what cannot be honoured is refused by name.
        bad("YAML not YAML", yaml("tls_server_config: [\n"), "exporter.web_config_file: web config file"),
        bad("YAML unknown key", yaml("bogus: 1\n"), "unknown field `bogus`"),
        bad("YAML rate_limit", yaml("rate_limit:\n  burst: 10\n  interval: 1s\n"), "rate_limit: not supported"),
        bad("YAML http2", yaml("http_server_config:\n  http2: true\n"), "http_server_config.http2: true is not supported"),
        bad("YAML header", yaml("http_server_config:\n  headers:\n    Server: x\n"), "HTTP header \"Server\" can not be configured"),
        bad("YAML TLS10", yaml_tls("  min_version: TLS10\n"), "tls_server_config.min_version: TLS10 is not supported"),
        bad("YAML TLS11", yaml_tls("  max_version: TLS11\n"), "tls_server_config.max_version: TLS11 is not supported"),
        bad("YAML CBC suite", yaml_tls("  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"), "cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not available"),
        bad("YAML P-521", yaml_tls("  curve_preferences: [CurveP521]\n"), "curve_preferences: CurveP521 is not available"),
        bad("YAML SANs without a required certificate", yaml_tls("  client_allowed_sans: [a]\n"), "client_allowed_sans: requires client_auth_type"),
        bad("YAML client auth type", yaml_tls("  client_auth_type: Sometimes\n"), "client_auth_type: unknown value \"Sometimes\""),
        bad("YAML bad bcrypt", yaml("basic_auth_users:\n  prom: plain\n"), "basic_auth_users.prom: not a bcrypt hash"),
        bad("YAML key mismatch", yaml("tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n"), "certificate/key mismatch"),
        bad(
            "client certificates without a CA",
            tls(
                "a.crt",
                "a.key",
                "client_auth_type = \"RequireAndVerifyClientCert\"\n",
            ),
            "needs client_ca_file",
        ),
        bad(
            "log level",
            "[log]\nlevel = \"info,herald=loud\"\n",
            "log.level: bad log filter",
        ),
        Bad {
            name: "IPVS_HERALD_LOG",
            text: String::new(),
            expect: "IPVS_HERALD_LOG: bad log filter",
            log_env: Some("herald=loud"),
        },
        bad(
            "kernel netns missing",
            format!(
                "[announcer]\nadmin_socket = \"@ADMIN@\"\nstate_file = \"@ADMIN@.state\"\nbackend = \"kernel\"\n\
                 [announcer.kernel]\nnetns = \"@DIR@/no-such-netns\"\n{}",
                group("web", "\"192.0.2.10/32\"", "")
            ),
            "announcer.kernel.netns: cannot open",
        ),
        // Defect 3: one route in two groups.
        bad(
            "prefix in two groups",
            format!(
                "{BGP}{PEER}{}{}",
                group("web", "\"192.0.2.10/32\"", ""),
                group("api", "\"198.51.100.1/32\", \"192.0.2.10/32\"", "")
            ),
            "prefix 192.0.2.10/32 is in two vip groups: \"web\" (as 192.0.2.10/32) and \
             \"api\" (as 192.0.2.10/32)",
        ),
        bad(
            "route in two groups through host bits",
            format!(
                "{BGP}{PEER}{}{}",
                group("web", "\"2001:db8::10/64\"", ""),
                group("api", "\"2001:db8::11/64\"", "")
            ),
            "prefix 2001:db8::/64 is in two vip groups",
        ),
        // Defect 9.
        bad(
            "local_as AS_TRANS",
            BGP.replace("65000", "23456"),
            "announcer.bgp.local_as 23456 is AS_TRANS",
        ),
        bad(
            "local_as reserved",
            BGP.replace("65000", "4294967295"),
            "announcer.bgp.local_as 4294967295 is reserved",
        ),
        bad(
            "remote_as AS_TRANS",
            format!("{BGP}{}", PEER.replace("65001", "23456")),
            "remote_as 23456 is AS_TRANS",
        ),
        bad(
            "rise 0",
            bgp_group("rise = 0\n"),
            "`rise` must be at least 1",
        ),
        bad(
            "fall 0",
            bgp_group("fall = 0\n"),
            "`fall` must be at least 1",
        ),
        bad(
            "extended community value past its form",
            bgp_group("down = { extended_communities = [\"rt:4200000001:70000\"] }\n"),
            "[down] extended community \"rt:4200000001:70000\": value 70000 is too large for the four-octet-AS specific form (at most 65535)",
        ),
        bad(
            "extended community of an unknown kind",
            bgp_group("up = { extended_communities = [\"target:65000:1\", \"color:65000:1\"] }\n"),
            "[up] extended community \"color:65000:1\": kind \"color\" is not rt (route target) or ro (route origin)",
        ),
        // Others: types, unknown keys, numbers where strings belong, limits.
        bad(
            "wrong type",
            "[exporter.limits]\nmax_connections = \"many\"\n",
            "invalid type",
        ),
        bad("unknown key", announcer("bogus = 1\n"), "bogus"),
        bad("unknown section", "[nonsense]\nx = 1\n", "nonsense"),
        bad(
            "bare number duration",
            announcer("drain_time = 30\n"),
            "invalid type: integer `30`, expected a duration",
        ),
        bad(
            "max_connections huge",
            "[exporter.limits]\nmax_connections = 4611686018427387904\n",
            "exporter.limits.max_connections",
        ),
        bad(
            "conn_read_buffer tiny",
            "[reader]\nconn_read_buffer = 1\n",
            "reader.conn_read_buffer",
        ),
        bad(
            "admin socket path too long",
            format!(
                "[announcer]\nadmin_socket = \"/run/{}\"\n# @ADMIN@\n",
                "x".repeat(120)
            ),
            "announcer.admin_socket",
        ),
        bad(
            "local_as string",
            BGP.replace("65000", "\"AS65000\""),
            "invalid type",
        ),
    ]
}

fn web_missing(f: &Fixture) -> String {
    format!(
        "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {:?}\n",
        f.path("no-such-web.toml")
    )
}

/// Every bad file: `check-config` exits 64 naming the problem, and `run` exits 64 with the
/// same standard error, before it has bound its port or admin socket.
#[test]
fn check_config_and_run_refuse_the_same_files_with_the_same_message() {
    let f = Fixture::new("bad");
    let peer_port = free_port().to_string();
    let mut failures = Vec::new();
    for case in bad_cases(&f) {
        let path = f.config(&case.text.replace("@PEERPORT@", &peer_port));
        let text = std::fs::read_to_string(&path).unwrap();
        let admin = text
            .lines()
            .find_map(|l| l.strip_prefix("admin_socket = \""))
            .map(|s| PathBuf::from(s.trim_end_matches('"')));
        let (check, check_err) =
            run_to_end(herald(&path, "check-config", case.log_env), REFUSE_BOUND);
        let (run, run_err) = run_to_end(herald(&path, "run", case.log_env), REFUSE_BOUND);
        let mut problems = Vec::new();
        if check != Some(64) {
            problems.push(format!("check-config exited {check:?}"));
        }
        if !check_err.contains(case.expect) {
            problems.push(format!(
                "check-config said {check_err:?}, expected {:?}",
                case.expect
            ));
        }
        if run != Some(64) {
            problems.push(format!(
                "run exited {run:?} (None: still running after the bound)"
            ));
        }
        if run_err != check_err {
            problems.push(format!(
                "run said {run_err:?}, check-config said {check_err:?}"
            ));
        }
        if admin.is_some_and(|a| a.exists()) {
            problems.push("run created its admin socket".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One good file: its name, the file, and a warning `check-config` prints and `run` logs.
struct Good {
    name: &'static str,
    text: String,
    warning: Option<&'static str>,
}

fn good_cases(f: &Fixture) -> Vec<Good> {
    let good = |name, text: String| Good {
        name,
        text,
        warning: None,
    };
    let web_tls = format!(
        "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {:?}\n",
        f.web(&format!(
            "[tls_server_config]\ncert_file = {:?}\nkey_file = {:?}\nclient_auth_type = \"RequireAndVerifyClientCert\"\nclient_ca_file = {:?}\n",
            f.path("a.crt"),
            f.path("a.key"),
            f.path("b.crt")
        ))
    );
    vec![
        good("empty", String::new()),
        good(
            "every duration at its bound",
            format!(
                "[reader]\ntimeout = \"1h\"\n\
                 [exporter.limits]\nheader_read_timeout = \"1h\"\ntls_handshake_timeout = \"1h\"\n\
                 request_timeout = \"1h\"\ndefault_scrape_timeout = \"1h\"\n\
                 scrape_timeout_offset = \"1h\"\nshutdown_drain = \"1h\"\n\
                 [exporter.conn_table]\nmax_duration = \"1h\"\n\
                 [announcer]\nadmin_socket = \"@ADMIN@\"\nstate_file = \"@ADMIN@.state\"\ndrain_time = \"24h\"\n\
                 shutdown_drain_time = \"1h\"\nshutdown_timeout = \"1h\"\n{BGP}{}{}",
                PEER.replace("max = 1.0", "max = 3600.0"),
                group(
                    "web",
                    "\"192.0.2.10/32\"",
                    "interval = \"1h\"\nhold_down = \"1h\"\naddress_linger = \"10m\"\n\
                     rise = 1\nfall = 1\n"
                )
            ),
        ),
        good("TLS web config with a CA file", web_tls),
        good(
            "node_exporter's YAML web config",
            format!(
                "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {:?}\n",
                f.web_yaml(&format!(
                    "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n\
                     \x20 client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: b.crt\n\
                     \x20 client_allowed_sans: [prometheus.example]\n  min_version: TLS12\n\
                     \x20 max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n\
                     \x20 curve_preferences: [X25519]\n  prefer_server_cipher_suites: true\n\
                     http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n\
                     basic_auth_users:\n  prom: '{}'\n",
                    PROM_HASH
                ))
            ),
        ),
        good(
            "different routes that overlap",
            format!(
                "{BGP}{PEER}{}{}",
                group("net", "\"192.0.2.0/24\"", ""),
                group("host", "\"192.0.2.10/32\", \"2001:db8::10/128\"", "")
            ),
        ),
        good(
            "BGP timers as duration strings",
            format!(
                "{BGP}{}hold_time = \"1m 30s\"\nkeepalive = \"30s\"\n\
                 graceful_restart = {{ restart_time = \"1h 8m 15s\" }}\n",
                PEER.replace("min = 0.2, max = 1.0", "min = \"200ms\", max = \"1s\"")
            ),
        ),
        good(
            "ASNs next to the reserved ones",
            format!(
                "{}{}",
                BGP.replace("65000", "23457"),
                PEER.replace("65001", "4294967294")
            ),
        ),
        Good {
            name: "groups with BGP but no peers",
            text: format!("{BGP}{}", group("web", "\"192.0.2.10/32\"", "")),
            warning: Some(
                "warning: announcer.vip_groups: 1 group(s) with backend = \"bgp\" but \
                 [announcer.bgp] has no peers",
            ),
        },
    ]
}

/// Every good file passes `check-config`, and `run` starts with it (listens), then stops with
/// exit 0 on SIGTERM; the shipped files pass `check-config`.
#[test]
fn check_config_accepts_good_files_and_run_starts_with_them() {
    let f = Fixture::new("good");
    let peer_port = free_port().to_string();
    let mut failures = Vec::new();
    for case in good_cases(&f) {
        let path = f.config(&case.text.replace("@PEERPORT@", &peer_port));
        let (check, check_err) = run_to_end(herald(&path, "check-config", None), REFUSE_BOUND);
        if check != Some(0) {
            failures.push(format!(
                "{}: check-config exited {check:?}: {check_err}",
                case.name
            ));
            continue;
        }
        if let Some(w) = case.warning {
            if !check_err.contains(w) {
                failures.push(format!(
                    "{}: check-config printed {check_err:?}, expected the warning {w:?}",
                    case.name
                ));
            }
        } else if !check_err.is_empty() {
            failures.push(format!("{}: check-config printed {check_err:?}", case.name));
        }
        if let Err(e) = starts_and_stops(&path, case.warning) {
            failures.push(format!("{}: run: {e}", case.name));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut shipped = vec![root.join("ipvs-herald.toml")];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        shipped.push(e.unwrap().path());
    }
    for p in shipped {
        let (check, err) = run_to_end(herald(&p, "check-config", None), REFUSE_BOUND);
        if check != Some(0) {
            failures.push(format!(
                "{}: check-config exited {check:?}: {err}",
                p.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Start `run` on `config`, wait until it accepts connections on its listen address, SIGTERM
/// it, and expect exit 0 (and `warning` in its log).
fn starts_and_stops(config: &Path, warning: Option<&str>) -> Result<(), String> {
    let text = std::fs::read_to_string(config).unwrap();
    let listen: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .map(|s| s.trim_end_matches('"').parse().unwrap())
        .expect("the file has a listen address");
    let mut cmd = herald(config, "run", None);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut listening = false;
    while start.elapsed() < START_BOUND {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if std::net::TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            listening = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_bounded(&mut child, STOP_BOUND);
    let log = reader.join().unwrap();
    if !listening {
        return Err(format!(
            "did not listen on {listen} (exit {status:?}): {log}"
        ));
    }
    match status {
        Some(s) if s.success() => {}
        other => return Err(format!("exit {other:?} after SIGTERM: {log}")),
    }
    if let Some(w) = warning {
        let w = w.trim_start_matches("warning: ");
        if !log.contains(w) {
            return Err(format!("the warning {w:?} is not in the log: {log}"));
        }
    }
    Ok(())
}

/// A running daemon whose standard error is collected as it comes.
struct Daemon {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = herald(config, "run", None)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ipvs-herald");
        let mut stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait (bounded) until the log contains `text` `count` times.
    fn wait_log(&self, text: &str, count: usize) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < START_BOUND {
            if self.log().matches(text).count() >= count {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{text:?} not logged {count} time(s): {}",
            self.log()
        ))
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// `GET path` over plain HTTP/1.1 with `Connection: close`; the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http_get_with(addr, path, "")
}

/// `GET path` with extra header lines (`Name: value\r\n` each); the whole response.
fn http_get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// SIGHUP goes through the same gate: a reload with a duration past its bound (the control
/// loop used to panic on it) or one route in two groups is refused with the same message
/// `check-config` gives, the running configuration stays, and the daemon still stops cleanly.
#[test]
fn sighup_refuses_what_check_config_refuses() {
    let f = Fixture::new("hup");
    let peer_port = free_port().to_string();
    let good = format!(
        "{BGP}{}{}",
        PEER.replace("@PEERPORT@", &peer_port),
        group("web", "\"192.0.2.10/32\"", "interval = \"200ms\"\n")
    );
    let path = f.config(&good);
    let text = std::fs::read_to_string(&path).unwrap();
    let listen: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .map(|s| s.trim_end_matches('"').parse().unwrap())
        .unwrap();
    let d = Daemon::start(&path);
    d.wait_log("metrics server listening", 1).unwrap();
    let bad_files = [
        text.replace("interval = \"200ms\"", "interval = \"500000000000y\""),
        format!("{text}\n{}", group("api", "\"192.0.2.10/32\"", "")),
    ];
    for (i, bad) in bad_files.iter().enumerate() {
        let copy = f.path(&format!("hup-copy-{i}.toml"));
        std::fs::write(&copy, bad).unwrap();
        let (code, expected) = run_to_end(herald(&copy, "check-config", None), REFUSE_BOUND);
        assert_eq!(code, Some(64), "{expected}");
        let message = expected
            .trim()
            .trim_start_matches("ipvs-herald: ")
            .replace(&copy.display().to_string(), &path.display().to_string());
        std::fs::write(&path, bad).unwrap();
        d.signal("-HUP");
        d.wait_log("SIGHUP: configuration refused", i + 1).unwrap();
        // The log line carries the message (quoted in the error field).
        let log = d.log();
        let core = message.split_once(": ").map(|(_, m)| m).unwrap_or(&message);
        let first_words: String = core.chars().take(30).collect();
        assert!(
            log.contains(&first_words),
            "{first_words:?} not in the log: {log}"
        );
        let metrics = http_get(listen, "/metrics");
        assert!(
            metrics.contains("ipvs_herald_config_last_reload_successful 0"),
            "{metrics}"
        );
    }
    // The running configuration still works: the good file reloads, and SIGTERM stops it.
    std::fs::write(&path, &text).unwrap();
    d.signal("-HUP");
    d.wait_log("SIGHUP: configuration reloaded", 1).unwrap();
    assert!(http_get(listen, "/metrics").contains("ipvs_herald_config_last_reload_successful 1"));
    d.signal("-TERM");
    let mut d = d;
    let st = wait_bounded(&mut d.child, STOP_BOUND);
    assert!(st.is_some_and(|s| s.success()), "exit {st:?}: {}", d.log());
}

/// SIGHUP reloads node_exporter's YAML web config file: a new password is in force after the
/// signal, not before; a file that does not load is refused (as `check-config` refuses it) and
/// the running one stays.
#[test]
fn sighup_reloads_the_yaml_web_config_file() {
    let f = Fixture::new("hupweb");
    let web = f.web_yaml(&format!("basic_auth_users:\n  prom: '{PROM_HASH}'\n"));
    let path = f.config(&format!(
        "[exporter]\nlisten = \"@LISTEN@\"\nweb_config_file = {web:?}\n"
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    let listen: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .map(|s| s.trim_end_matches('"').parse().unwrap())
        .unwrap();
    // base64 of prom:s3cret and prom:n3w.
    let old = "Authorization: Basic cHJvbTpzM2NyZXQ=\r\n";
    let new = "Authorization: Basic cHJvbTpuM3c=\r\n";
    let status = |auth: &str| {
        http_get_with(listen, "/metrics", auth)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    let d = Daemon::start(&path);
    d.wait_log("metrics server listening", 1).unwrap();
    assert_eq!(status(old), "200");
    assert_eq!(status(""), "401");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prom: '{PROM_HASH_NEW}'\n"),
    )
    .unwrap();
    assert_eq!(status(new), "401", "not before the signal");
    d.signal("-HUP");
    d.wait_log("web configuration file reloaded", 1).unwrap();
    assert_eq!(status(new), "200");
    assert_eq!(status(old), "401");
    // A bad file: refused with check-config's message, the running one stays.
    std::fs::write(&web, "http_server_config:\n  http2: true\n").unwrap();
    d.signal("-HUP");
    d.wait_log("web configuration file refused on reload", 1)
        .unwrap();
    d.wait_log("SIGHUP: configuration refused", 1).unwrap();
    assert!(
        d.log()
            .contains("http_server_config.http2: true is not supported"),
        "{}",
        d.log()
    );
    assert_eq!(status(new), "200");
    d.signal("-TERM");
    let mut d = d;
    let st = wait_bounded(&mut d.child, STOP_BOUND);
    assert!(st.is_some_and(|s| s.success()), "exit {st:?}: {}", d.log());
}
