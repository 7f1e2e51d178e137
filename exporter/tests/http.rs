//! End-to-end tests of the HTTP server on loopback: endpoints, content negotiation, gzip,
//! stalled clients, scrape timeouts, concurrency bounds, basic auth, TLS and graceful drain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_exporter::fixture::{rich_conn_table, rich_snapshot};
use herald_exporter::{check_series, register, serve, Config, StaticSource};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::Snapshot;
use herald_shared::reader::{IpvsSource, ReadError};
use herald_test_support::require;
use herald_test_support::tls::{ca_and_clients, self_signed};
use prometheus_client::registry::Registry;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Guard against a hung test; not a performance goal.
const GUARD: Duration = Duration::from_secs(45);

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), herald_exporter::ServeError>>,
}

impl Server {
    pub(crate) async fn start(source: Arc<dyn IpvsSource>, cfg: Config) -> Server {
        let mut registry = Registry::default();
        register(&mut registry, source, &cfg);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::new(registry), cfg, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

pub(crate) fn rich() -> Arc<dyn IpvsSource> {
    Arc::new(StaticSource {
        snapshot: Some(rich_snapshot()),
        conn_table: rich_conn_table(),
    })
}

pub(crate) fn test_cfg() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one request with `Connection: close` and read the whole response.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    tokio::time::timeout(GUARD, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    })
    .await
    .expect("response within the guard time")
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Send `head` and read what comes back: `Some(status)`, or `None` when the server closed (or
/// reset) the connection without an answer.
async fn raw_status(addr: SocketAddr, head: &[u8]) -> Option<u16> {
    tokio::time::timeout(GUARD, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may refuse and close before it has read everything: a failed write or a
        // reset is then part of the answer, not an error of the test.
        let _ = s.write_all(head).await;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw.windows(4)
            .any(|w| w == b"\r\n\r\n")
            .then(|| parse_response(&raw).status)
    })
    .await
    .expect("answer within the guard time")
}

/// A request whose head is `size` bytes long, the padding in one header field.
fn head_of(size: usize) -> Vec<u8> {
    let start = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = size - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// The documented limit: request heads up to 64 KiB are served, larger ones refused with 431
/// (hyper's read buffer limit alone let heads of up to about 128 KiB through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_are_limited_to_64_kib() {
    assert_eq!(herald_exporter::http::MAX_REQUEST_HEAD, 64 * 1024);
    let srv = Server::start(rich(), test_cfg()).await;
    for (size, served) in [
        (63 * 1024, true),
        (64 * 1024, true),
        (64 * 1024 + 1, false),
        (65 * 1024, false),
        (100 * 1024, false),
    ] {
        let status = raw_status(srv.addr, &head_of(size)).await;
        if served {
            assert_eq!(status, Some(200), "head of {size} bytes");
        } else {
            assert!(
                matches!(status, Some(431) | None),
                "head of {size} bytes answered {status:?}, expected 431 or a closed connection"
            );
        }
    }
    // The refused clients did not hurt the server.
    assert_eq!(request(srv.addr, "GET", "/metrics", &[]).await.status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_still_gets_its_answer() {
    let srv = Server::start(rich(), test_cfg()).await;
    let addr = srv.addr;
    tokio::time::timeout(GUARD, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let r = parse_response(&raw);
        assert_eq!(r.status, 200);
        assert!(r.text().contains("ipvs_up 1"), "{}", r.text());
    })
    .await
    .expect("response within the guard time");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_as_documented() {
    let srv = Server::start(rich(), test_cfg()).await;
    let r = request(srv.addr, "GET", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("href=\"/metrics\""), "{}", r.text());
    assert_eq!(
        request(srv.addr, "GET", "/-/healthy", &[]).await.status,
        200
    );
    assert_eq!(request(srv.addr, "GET", "/-/ready", &[]).await.status, 200);
    assert_eq!(request(srv.addr, "GET", "/nope", &[]).await.status, 404);
    let r = request(srv.addr, "POST", "/metrics", &[("Content-Length", "0")]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = request(srv.addr, "HEAD", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_negotiated_and_gzipped() {
    let srv = Server::start(rich(), test_cfg()).await;
    // Prometheus text by default.
    let r = request(srv.addr, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let t = r.text();
    check_series(&t).unwrap();
    assert!(t.contains("\nipvs_up 1\n"), "{t}");
    assert!(t.contains("# TYPE ipvs_service_connections_total counter"));
    assert!(!t.contains("# EOF"));
    // OpenMetrics when Prometheus asks for it.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let r = request(srv.addr, "GET", "/metrics", &[("Accept", accept)]).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let t = r.text();
    assert!(t.ends_with("# EOF\n"));
    assert!(t.contains("# TYPE ipvs_service_connections counter"));
    check_series(&t).unwrap();
    // gzip.
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "br;q=1, gzip;q=0.8")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(r.body.as_slice())
        .read_to_string(&mut plain)
        .unwrap();
    assert!(plain.contains("\nipvs_up 1\n"));
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "gzip;q=0")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), None);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ipvs_module_is_a_200_with_ipvs_up_0() {
    let srv = Server::start(Arc::new(StaticSource::default()), test_cfg()).await;
    let r = request(srv.addr, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\nipvs_up 0\n"), "{}", r.text());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_half_requests_do_not_block_scrapes() {
    let mut cfg = test_cfg();
    cfg.limits.header_read_timeout = Duration::from_secs(5);
    let srv = Server::start(rich(), cfg).await;
    // Ten clients send half a request head and stall.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        stalled.push(s);
    }
    // A complete scrape in parallel is answered while they are all still connected.
    let r = request(srv.addr, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("ipvs_up 1"));
    let mut buf = [0u8; 1];
    for s in &mut stalled {
        // Still open and unanswered right after the parallel scrape.
        let pending = tokio::time::timeout(Duration::from_millis(10), s.read(&mut buf)).await;
        assert!(
            pending.is_err(),
            "stalled connection already answered/closed"
        );
    }
    // The server closes them after the header read timeout (guarded, not timed).
    for mut s in stalled {
        let mut rest = Vec::new();
        let r = tokio::time::timeout(GUARD, s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "stalled connection never closed by the server");
    }
    srv.stop().await;
}

/// Sleeps in `snapshot()`.
struct Slow(Duration, Arc<std::sync::atomic::AtomicUsize>);

impl Slow {
    fn new(d: Duration) -> (Arc<Slow>, Arc<std::sync::atomic::AtomicUsize>) {
        let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (Arc::new(Slow(d, Arc::clone(&entered))), entered)
    }
}

/// Wait (bounded by the guard) until the source has been entered `n` times: the scrape is then
/// certainly in flight inside the server.
async fn entered(counter: &std::sync::atomic::AtomicUsize, n: usize) {
    let t0 = std::time::Instant::now();
    while counter.load(std::sync::atomic::Ordering::SeqCst) < n {
        assert!(t0.elapsed() < GUARD, "the scrape never reached the source");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl IpvsSource for Slow {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(self.0);
        Ok(rich_snapshot())
    }
    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Ok(ConnTableSummary::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_timeout_header_is_honoured() {
    let mut cfg = test_cfg();
    cfg.limits.scrape_timeout_offset = Duration::from_millis(250);
    let srv = Server::start(Slow::new(Duration::from_secs(3)).0, cfg).await;
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1")],
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("scrape timed out after 0.750s"),
        "{}",
        r.text()
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_are_bounded() {
    let mut cfg = test_cfg();
    cfg.limits.max_concurrent_scrapes = 1;
    let (slow, count) = Slow::new(Duration::from_secs(2));
    let srv = Server::start(slow, cfg).await;
    let addr = srv.addr;
    let first = tokio::spawn(async move { request(addr, "GET", "/metrics", &[]).await });
    entered(&count, 1).await;
    let second = request(
        addr,
        "GET",
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1")],
    )
    .await;
    assert_eq!(second.status, 503);
    assert!(second.text().contains("too many concurrent scrapes"));
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    // Health is not a scrape: answered regardless.
    assert_eq!(request(addr, "GET", "/-/healthy", &[]).await.status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_scrapes_finish_and_bounds_the_drain() {
    // In-flight scrape finishes during the drain.
    let (slow, count) = Slow::new(Duration::from_millis(800));
    let srv = Server::start(slow, test_cfg()).await;
    let addr = srv.addr;
    let inflight = tokio::spawn(async move { request(addr, "GET", "/metrics", &[]).await });
    entered(&count, 1).await;
    srv.stop().await;
    assert_eq!(inflight.await.unwrap().status, 200);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );

    // A scrape longer than the drain timeout does not hold shutdown.
    let mut cfg = test_cfg();
    cfg.limits.shutdown_drain = Duration::from_millis(300);
    let (slow, count) = Slow::new(Duration::from_secs(6));
    let srv = Server::start(slow, cfg).await;
    let addr = srv.addr;
    let inflight = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw
    });
    entered(&count, 1).await;
    srv.stop().await;
    let raw = tokio::time::timeout(GUARD, inflight)
        .await
        .expect("the cut connection is closed")
        .unwrap();
    assert!(
        raw.is_empty(),
        "the slow scrape was cut at the drain bound, not answered: {}",
        String::from_utf8_lossy(&raw)
    );
}

pub(crate) fn target_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-tls");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_tls_from_the_web_config_file() {
    require(&["openssl", "curl"]);
    let dir = target_dir().join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (crt, key) = self_signed(&dir, "tls", Some("IP:127.0.0.1,DNS:localhost"));
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.join("web.toml");
    std::fs::write(
        &web,
        format!(
            "[tls_server_config]\ncert_file = {:?}\nkey_file = {:?}\n\n[basic_auth_users]\nprom = {:?}\n",
            crt, key, hash
        ),
    )
    .unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web);
    let srv = Server::start(rich(), cfg).await;
    let url = format!("https://127.0.0.1:{}/metrics", srv.addr.port());
    let curl = |user: Option<&'static str>| {
        let crt = crt.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new("curl");
            c.args([
                "-sS",
                "-m",
                "15",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(&crt);
            if let Some(u) = user {
                c.args(["-u", u]);
            }
            let out = c.arg(&url).output().unwrap();
            assert!(
                out.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let ok = curl(Some("prom:s3cret")).await.unwrap();
    assert!(ok.ends_with("\n200"), "{ok}");
    assert!(ok.contains("ipvs_up 1"));
    assert!(curl(None).await.unwrap().ends_with("\n401"));
    assert!(curl(Some("prom:wrong")).await.unwrap().ends_with("\n401"));
    // Plain HTTP to the TLS port gets no metrics.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(GUARD, s.read_to_end(&mut raw)).await;
    assert!(!String::from_utf8_lossy(&raw).contains("ipvs_up"));
    srv.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn bad_web_config_is_a_serve_error_not_a_panic() {
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(PathBuf::from("/nonexistent/web.toml"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = serve(
        listener,
        Arc::new(Registry::default()),
        cfg,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/web.toml"), "{e}");
}

/// `Config::web_config` (what loading the configuration calls) refuses what the server would:
/// a key that is not the certificate's, a CA file that does not parse, a client auth type that
/// needs a CA without one, and a missing file.
#[test]
fn web_config_problems_are_found_when_the_configuration_is_loaded() {
    require(&["openssl"]);
    let dir = target_dir().join(format!("webcheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a", "b"] {
        self_signed(&dir, name, None);
    }
    std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
    let check = |tls: String| {
        let web = dir.join("web.toml");
        std::fs::write(&web, format!("[tls_server_config]\n{tls}")).unwrap();
        let cfg = Config {
            web_config_file: Some(web),
            ..Config::default()
        };
        cfg.web_config().map(|_| ()).map_err(|e| e.to_string())
    };
    let (a_crt, a_key, b_key) = (dir.join("a.crt"), dir.join("a.key"), dir.join("b.key"));
    check(format!("cert_file = {a_crt:?}\nkey_file = {a_key:?}\n")).unwrap();
    let e = check(format!("cert_file = {a_crt:?}\nkey_file = {b_key:?}\n")).unwrap_err();
    assert!(e.contains("mismatch"), "{e}");
    let e = check(format!(
        "cert_file = {a_crt:?}\nkey_file = {a_key:?}\nclient_auth_type = \"VerifyClientCertIfGiven\"\nclient_ca_file = {:?}\n",
        dir.join("garbage.pem")
    ))
    .unwrap_err();
    assert!(
        e.contains("garbage.pem") && e.contains("no certificate"),
        "{e}"
    );
    let e = check(format!("cert_file = {a_crt:?}\nkey_file = {a_key:?}\nclient_auth_type = \"RequireAndVerifyClientCert\"\n")).unwrap_err();
    assert!(e.contains("needs client_ca_file"), "{e}");
    let missing = Config {
        web_config_file: Some(dir.join("missing.toml")),
        ..Config::default()
    };
    let e = missing.web_config().unwrap_err().to_string();
    assert!(e.contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_are_required_when_configured() {
    require(&["openssl", "curl"]);
    let dir = target_dir().join(format!("mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Server certificate (self-signed) and a client CA with one client certificate.
    self_signed(&dir, "srv", Some("IP:127.0.0.1"));
    ca_and_clients(&dir, &[("client", None)]);
    let web = dir.join("web.toml");
    std::fs::write(
        &web,
        format!(
            "[tls_server_config]\ncert_file = {:?}\nkey_file = {:?}\nclient_auth_type = \"RequireAndVerifyClientCert\"\nclient_ca_file = {:?}\nmin_version = \"TLS13\"\n",
            dir.join("srv.crt"),
            dir.join("srv.key"),
            dir.join("ca.crt")
        ),
    )
    .unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web);
    let srv = Server::start(rich(), cfg).await;
    let url = format!("https://127.0.0.1:{}/metrics", srv.addr.port());
    let run = |with_cert: bool| {
        let dir = dir.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new("curl");
            c.current_dir(&dir).args([
                "-sS",
                "-m",
                "15",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--cacert",
                "srv.crt",
            ]);
            if with_cert {
                c.args(["--cert", "client.crt", "--key", "client.key"]);
            }
            let out = c.arg(&url).output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let (ok, body) = run(true).await.unwrap();
    assert!(
        ok && body.ends_with("\n200") && body.contains("ipvs_up 1"),
        "{body}"
    );
    let (ok, body) = run(false).await.unwrap();
    assert!(
        !ok && !body.contains("ipvs_up"),
        "without a client certificate: {body}"
    );
    srv.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_errors_and_do_not_disturb_scrapes() {
    let srv = Server::start(rich(), test_cfg()).await;
    let long_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let cases: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        long_header.into_bytes(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: \xff\xfe\r\nAccept-Encoding: \xff\r\nX-Prometheus-Scrape-Timeout-Seconds: NaN\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: -5\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /metrics?x=%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\nConnection: close\r\n\r\n".to_vec(),
    ];
    for (i, req) in cases.iter().enumerate() {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // The server may close before reading everything; that is fine.
        let _ = s.write_all(req).await;
        let mut raw = Vec::new();
        let r = tokio::time::timeout(GUARD, s.read_to_end(&mut raw)).await;
        assert!(
            r.is_ok(),
            "case {i}: the server neither answered nor closed"
        );
        let head = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
        match i {
            // Unparseable or oversized: an error status or a closed connection, never metrics.
            0..=3 => assert!(
                raw.is_empty() || head.starts_with("HTTP/1.1 4") || head.starts_with("HTTP/1.1 5"),
                "case {i}: {head:?}"
            ),
            // Odd header values are ignored: defaults apply and the scrape succeeds.
            _ => assert!(head.starts_with("HTTP/1.1 200"), "case {i}: {head:?}"),
        }
        // The server still answers a normal scrape.
        let ok = request(srv.addr, "GET", "/metrics", &[]).await;
        assert_eq!(ok.status, 200, "after case {i}");
    }
    srv.stop().await;
}

/// A table large enough that its exposition (several MB) is streamed in many chunks.
fn large() -> Arc<dyn IpvsSource> {
    use herald_exporter::fixture::{addr_key, dest, service};
    use herald_shared::model::Protocol;
    let mut snap = rich_snapshot();
    for s in 0..1500u32 {
        let vip = format!("203.0.113.{}", s % 250 + 1);
        let ds = (0..10u32)
            .map(|d| dest(&format!("198.51.100.{}", d + 1), 8080, 100, d, s % 7))
            .collect();
        snap.services.push(service(
            addr_key(Protocol::Tcp, &vip, 1000 + (s / 250) as u16),
            "wrr",
            ds,
        ));
    }
    Arc::new(StaticSource {
        snapshot: Some(snap),
        conn_table: rich_conn_table(),
    })
}

/// The exposition without the lines whose values are measured (durations).
fn without_durations(t: &str) -> String {
    t.lines()
        .filter(|l| !l.starts_with("ipvs_scrape_collector_duration_seconds{"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_expositions_are_streamed_in_chunks_byte_for_byte() {
    let source = large();
    let srv = Server::start(Arc::clone(&source), test_cfg()).await;
    let mut registry = Registry::default();
    register(&mut registry, source, &test_cfg());
    let om_accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    for (format, accept) in [
        (
            herald_exporter::Format::Prometheus,
            "text/plain;version=0.0.4",
        ),
        (herald_exporter::Format::OpenMetrics, om_accept),
    ] {
        let want = herald_exporter::encode_registry(&registry, format).unwrap();
        assert!(want.len() > 1_000_000, "{} bytes only", want.len());
        // A generous scrape deadline: this checks the chunking, not the speed, and a debug build
        // on a loaded host can need more than the default 10 s for a gzipped megabyte (30 s: the request timeout).
        let r = request(
            srv.addr,
            "GET",
            "/metrics",
            &[
                ("Accept", accept),
                ("X-Prometheus-Scrape-Timeout-Seconds", "30"),
            ],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{format:?}");
        assert_eq!(r.header("content-type"), Some(format.content_type()));
        assert_eq!(without_durations(&r.text()), without_durations(&want));
        let r = request(
            srv.addr,
            "GET",
            "/metrics",
            &[
                ("Accept", accept),
                ("Accept-Encoding", "gzip"),
                ("X-Prometheus-Scrape-Timeout-Seconds", "30"),
            ],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let mut plain = String::new();
        flate2::read::GzDecoder::new(r.body.as_slice())
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(without_durations(&plain), without_durations(&want));
    }
    // HEAD: headers only.
    let r = request(srv.addr, "HEAD", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_at_the_deadline_and_frees_its_slot() {
    let mut cfg = test_cfg();
    cfg.limits.max_concurrent_scrapes = 1;
    cfg.limits.scrape_timeout_offset = Duration::ZERO;
    let srv = Server::start(large(), cfg).await;
    // A client that sends a scrape and then never reads: the encoder fills the queue and the
    // socket buffers, then waits, bounded by the 3 s scrape deadline (long enough for the
    // encoder to start on a loaded host: with 1 s the read of the large table alone could use
    // it up, and the stalled client got a 503 instead of a cut-off 200).
    let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
    stalled
        .write_all(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 3\r\n\r\n",
        )
        .await
        .unwrap();
    // The only scrape slot is free again once that deadline passed: a second scrape (which
    // waits for a slot within its own deadline, generous so that a loaded host still encodes
    // the whole table in it) gets the whole exposition.
    let t0 = std::time::Instant::now();
    let r = request(
        srv.addr,
        "GET",
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "30")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\nipvs_up 1\n"));
    assert!(r.text().contains("ipvs_destination_weight{"));
    assert!(t0.elapsed() < Duration::from_secs(30));
    // The stalled client's response was cut off: reading it now ends without the final chunk.
    let mut raw = Vec::new();
    tokio::time::timeout(GUARD, stalled.read_to_end(&mut raw))
        .await
        .expect("the server closed the stalled connection")
        .ok();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &raw[..raw.len().min(100)]
    );
    assert!(
        !raw.ends_with(b"\r\n0\r\n\r\n"),
        "a cut-off response must not look complete"
    );
    srv.stop().await;
}
