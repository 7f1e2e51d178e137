//! node_exporter's web-config YAML file served as it is: TLS with client certificates, allowed
//! SANs, cipher suites and basic auth checked with curl; certificates rotated on disk picked up
//! without a restart; the file reloaded on the reload signal; wrong-password floods bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use crate::http::{request, rich, target_dir, test_cfg, Server};
use base64::Engine;
use herald_exporter::basic_auth::VERIFY_WAIT;
use herald_exporter::{register, serve_with_reload, webconfig::TLS_RECHECK};
use herald_test_support::require;
use herald_test_support::tls::{ca_and_clients, self_signed};
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

fn fresh_dir(tag: &str) -> PathBuf {
    let dir = target_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `curl ARGS URL` in `dir`: (exit success, `-i` output with the status code last).
async fn curl(dir: &Path, args: &[&str], url: &str) -> (bool, String) {
    let (dir, url) = (dir.to_path_buf(), url.to_string());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .current_dir(&dir)
            .args(["-sS", "-i", "-m", "15", "-w", "\n%{http_code}"])
            .args(&args)
            .arg(&url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_exporter_yaml_file_is_served_with_tls_client_certs_and_basic_auth() {
    require(&["openssl", "curl"]);
    let dir = fresh_dir("nodeexp");
    self_signed(&dir, "srv", Some("IP:127.0.0.1"));
    ca_and_clients(
        &dir,
        &[
            ("prometheus", Some("DNS:prometheus.example")),
            ("intruder", Some("DNS:intruder.example")),
        ],
    );
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // Relative paths, as node_exporter's files have them: from the file's directory.
    let web = dir.join("web-config.yml");
    std::fs::write(
        &web,
        format!(
            "# node_exporter web config\n\
             tls_server_config:\n  cert_file: srv.crt\n  key_file: srv.key\n\
             \x20 client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n\
             \x20 client_allowed_sans:\n    - prometheus.example\n\
             \x20 min_version: TLS12\n  max_version: TLS13\n\
             \x20 cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n\
             \x20 curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: true\n\
             http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prom: '{hash}'\n"
        ),
    )
    .unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web);
    let srv = Server::start(rich(), cfg).await;
    let url = format!("https://127.0.0.1:{}/metrics", srv.addr.port());
    let good = [
        "--cacert",
        "srv.crt",
        "--cert",
        "prometheus.crt",
        "--key",
        "prometheus.key",
    ];
    let with = |extra: &[&'static str]| {
        let mut a = good.to_vec();
        a.extend_from_slice(extra);
        a
    };

    let (ok, out) = curl(&dir, &with(&["-u", "prom:s3cret"]), &url).await;
    assert!(
        ok && out.ends_with("\n200") && out.contains("ipvs_up 1"),
        "{out}"
    );
    let lower = out.to_ascii_lowercase();
    assert!(lower.contains("x-frame-options: deny"), "{out}");
    assert!(lower.contains("x-content-type-options: nosniff"), "{out}");
    // Basic auth on top of the client certificate.
    let (_, out) = curl(&dir, &good, &url).await;
    assert!(out.ends_with("\n401") && !out.contains("ipvs_up"), "{out}");
    let (_, out) = curl(&dir, &with(&["-u", "prom:wrong"]), &url).await;
    assert!(out.ends_with("\n401") && !out.contains("ipvs_up"), "{out}");
    // TLS 1.2 with the one suite allowed works; another suite rustls has is refused.
    let (ok, out) = curl(
        &dir,
        &with(&[
            "-u",
            "prom:s3cret",
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ]),
        &url,
    )
    .await;
    assert!(ok && out.ends_with("\n200"), "{out}");
    let (ok, out) = curl(
        &dir,
        &with(&[
            "-u",
            "prom:s3cret",
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
        ]),
        &url,
    )
    .await;
    assert!(
        !ok && !out.contains("ipvs_up"),
        "a suite not in cipher_suites: {out}"
    );
    // A certificate from the right CA with a SAN not allowed, and no certificate: no TLS.
    let (ok, out) = curl(
        &dir,
        &[
            "--cacert",
            "srv.crt",
            "--cert",
            "intruder.crt",
            "--key",
            "intruder.key",
            "-u",
            "prom:s3cret",
        ],
        &url,
    )
    .await;
    assert!(!ok && !out.contains("ipvs_up"), "SAN not allowed: {out}");
    let (ok, out) = curl(&dir, &["--cacert", "srv.crt", "-u", "prom:s3cret"], &url).await;
    assert!(
        !ok && !out.contains("ipvs_up"),
        "no client certificate: {out}"
    );
    srv.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// `RequireAnyClientCert` takes any certificate (no CA), `RequestClientCert` none too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_client_cert_policies_behave_as_in_go() {
    require(&["openssl", "curl"]);
    let dir = fresh_dir("anycert");
    self_signed(&dir, "srv", Some("IP:127.0.0.1"));
    self_signed(&dir, "stranger", None);
    for (policy, without_cert_ok) in [("RequireAnyClientCert", false), ("RequestClientCert", true)]
    {
        let web = dir.join(format!("{policy}.yaml"));
        std::fs::write(
            &web,
            format!("tls_server_config:\n  cert_file: srv.crt\n  key_file: srv.key\n  client_auth_type: {policy}\n"),
        )
        .unwrap();
        let mut cfg = test_cfg();
        cfg.web_config_file = Some(web);
        let srv = Server::start(rich(), cfg).await;
        let url = format!("https://127.0.0.1:{}/metrics", srv.addr.port());
        let (ok, out) = curl(
            &dir,
            &[
                "--cacert",
                "srv.crt",
                "--cert",
                "stranger.crt",
                "--key",
                "stranger.key",
            ],
            &url,
        )
        .await;
        assert!(
            ok && out.ends_with("\n200"),
            "{policy} with a certificate: {out}"
        );
        let (ok, out) = curl(&dir, &["--cacert", "srv.crt"], &url).await;
        assert_eq!(
            ok && out.ends_with("\n200"),
            without_cert_ok,
            "{policy} without: {out}"
        );
        srv.stop().await;
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The certificate the server presents, as PEM, read with `openssl s_client`.
async fn served_cert(port: u16) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        pem_block(&String::from_utf8_lossy(&out.stdout))
    })
    .await
    .unwrap()
}

fn pem_block(text: &str) -> String {
    let start = text.find("-----BEGIN CERTIFICATE-----");
    let end = text.find("-----END CERTIFICATE-----");
    match (start, end) {
        (Some(s), Some(e)) => text[s..e].to_string(),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_on_disk_are_served_without_a_restart() {
    require(&["openssl"]);
    let dir = fresh_dir("rotate");
    let (one_crt, one_key) = self_signed(&dir, "one", Some("IP:127.0.0.1"));
    let (two_crt, two_key) = self_signed(&dir, "two", Some("IP:127.0.0.1"));
    let (crt, key) = (dir.join("srv.crt"), dir.join("srv.key"));
    std::fs::copy(&one_crt, &crt).unwrap();
    std::fs::copy(&one_key, &key).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: srv.crt\n  key_file: srv.key\n",
    )
    .unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web);
    let srv = Server::start(rich(), cfg).await;
    let port = srv.addr.port();
    let one = pem_block(&std::fs::read_to_string(&one_crt).unwrap());
    let two = pem_block(&std::fs::read_to_string(&two_crt).unwrap());
    assert_ne!(one, two);
    assert_eq!(served_cert(port).await, one);

    // Rotate: the key first, then the certificate (as a renewal tool might).
    std::fs::copy(&two_key, &key).unwrap();
    std::fs::copy(&two_crt, &crt).unwrap();
    let start = Instant::now();
    let bound = TLS_RECHECK * 5 + Duration::from_secs(5);
    loop {
        let seen = served_cert(port).await;
        if seen == two {
            break;
        }
        assert!(
            start.elapsed() < bound,
            "the new certificate not served after {bound:?}: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broken certificate on disk keeps the last good pair in use.
    std::fs::write(&crt, "not a certificate\n").unwrap();
    tokio::time::sleep(TLS_RECHECK + Duration::from_millis(300)).await;
    for _ in 0..2 {
        assert_eq!(
            served_cert(port).await,
            two,
            "the last good certificate stays"
        );
    }
    // A certificate that does not match the key: also kept out.
    std::fs::copy(&one_crt, &crt).unwrap();
    tokio::time::sleep(TLS_RECHECK + Duration::from_millis(300)).await;
    assert_eq!(
        served_cert(port).await,
        two,
        "a mismatched pair is not taken"
    );
    srv.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

async fn status_with(addr: std::net::SocketAddr, user_pass: &str) -> u16 {
    request(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &basic(user_pass))],
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_signal_loads_the_yaml_file_again_and_keeps_it_if_bad() {
    let dir = fresh_dir("reload");
    let web = dir.join("web-config.yaml");
    let users = |pass: &str| {
        format!(
            "basic_auth_users:\n  prom: '{}'\n",
            bcrypt::hash(pass, 4).unwrap()
        )
    };
    std::fs::write(&web, users("old")).unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web.clone());
    let mut registry = Registry::default();
    register(&mut registry, rich(), &cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (reload, reload_rx) = watch::channel(());
    let task = tokio::spawn(serve_with_reload(
        listener,
        Arc::new(registry),
        cfg,
        async {
            let _ = stop_rx.await;
        },
        reload_rx,
    ));
    assert_eq!(status_with(addr, "prom:old").await, 200);

    std::fs::write(&web, users("new")).unwrap();
    // Not before the signal.
    assert_eq!(status_with(addr, "prom:new").await, 401);
    reload.send(()).unwrap();
    let start = Instant::now();
    while status_with(addr, "prom:new").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new file not loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_with(addr, "prom:old").await, 401);

    // A file that does not load: the running one stays.
    std::fs::write(
        &web,
        "basic_auth_users:\n  prom: plain\nrate_limit: {burst: 1}\n",
    )
    .unwrap();
    reload.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_with(addr, "prom:new").await, 200);
    assert_eq!(status_with(addr, "prom:old").await, 401);

    // Authentication can be turned off by a reload too.
    std::fs::write(&web, "").unwrap();
    reload.send(()).unwrap();
    let start = Instant::now();
    while request(addr, "GET", "/metrics", &[]).await.status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the empty file not loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// User + system CPU time of this process (all threads), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// 60 wrong passwords sent at once (each a different one, so that no cache helps) cost a
/// bounded amount of CPU and time; a scraper whose password was verified before still gets in
/// during the flood. Prints the figures BENCHMARKS.md quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_floods_are_bounded_and_a_known_client_still_gets_in() {
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    // What the flood would cost with one bcrypt per request, as before the bound: ten times
    // the cost of 6 (an unoptimised test build takes ~0.25 s a verification).
    let c0 = process_cpu();
    for i in 0..6 {
        assert!(!bcrypt::verify(format!("wrong{i}"), &hash).unwrap());
    }
    let unbounded = (process_cpu() - c0) * 10;

    let dir = fresh_dir("flood");
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prom: '{hash}'\n")).unwrap();
    let mut cfg = test_cfg();
    cfg.web_config_file = Some(web);
    let srv = Server::start(rich(), cfg).await;
    let addr = srv.addr;
    assert_eq!(status_with(addr, "prom:s3cret").await, 200);

    let c0 = process_cpu();
    let t0 = Instant::now();
    let flood: Vec<_> = (0..60)
        .map(|i| tokio::spawn(async move { status_with(addr, &format!("prom:wrong{i}")).await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t_known = Instant::now();
    assert_eq!(
        status_with(addr, "prom:s3cret").await,
        200,
        "the known scraper during the flood"
    );
    let known_latency = t_known.elapsed();
    let mut by_status = std::collections::BTreeMap::new();
    for t in flood {
        *by_status.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    let wall = t0.elapsed();
    let bounded = process_cpu() - c0;
    // The same wrong password 60 times: one bcrypt, the rest from the cache.
    let c0 = process_cpu();
    let same: Vec<_> = (0..60)
        .map(|_| tokio::spawn(async move { status_with(addr, "prom:same-wrong").await }))
        .collect();
    for t in same {
        let s = t.await.unwrap();
        assert!(s == 401 || s == 429, "{s}");
    }
    let repeated = process_cpu() - c0;
    eprintln!(
        "bcrypt flood (cost 10, 60 requests): one bcrypt each {unbounded:?} CPU; \
         bounded, distinct passwords {bounded:?} CPU in {wall:?} wall {by_status:?}; \
         same wrong password {repeated:?} CPU; known scraper during the flood {known_latency:?}"
    );
    assert_eq!(
        by_status
            .keys()
            .copied()
            .filter(|s| *s != 401 && *s != 429)
            .count(),
        0,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&429).copied().unwrap_or(0) > 0,
        "nothing was turned away: {by_status:?}"
    );
    // From the cache: no bcrypt, no wait for a slot (bound generous for a loaded machine).
    assert!(known_latency < VERIFY_WAIT * 4, "{known_latency:?}");
    // Each request waits at most VERIFY_WAIT for a slot, then one bcrypt.
    assert!(wall < VERIFY_WAIT + Duration::from_secs(10), "{wall:?}");
    assert!(
        bounded * 2 < unbounded,
        "bounded {bounded:?} vs one bcrypt each {unbounded:?}"
    );
    assert!(
        repeated * 4 < unbounded,
        "repeated {repeated:?} vs {unbounded:?}"
    );
    srv.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
