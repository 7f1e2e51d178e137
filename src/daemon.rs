//! `ipvs-herald run`: the wiring of the two halves. It builds the reader, registers the
//! exporter's metrics and starts the announcer ([`herald_announcer::start`]) into one registry,
//! serves that registry and the status page over HTTP ([`herald_exporter::serve_full`]),
//! feeds the fail-safe watchdog (`crate::failsafe`), and handles signals: SIGHUP reloads the
//! configuration ([`herald_announcer::Handle::reconfigure`]; an invalid file keeps the running
//! one, with a log line and a metric), SIGTERM/SIGINT stop gracefully within a bound
//! ([`herald_announcer::Handle::shutdown`]: drain, withdraw, close the BGP sessions), and so
//! does `ipvs-herald stop` over the admin socket; `ipvs-herald stop --keep-routes` stops for a
//! graceful restart instead ([`herald_announcer::Handle::stop_for_restart`]: the routers keep
//! our routes as stale) and the process exits with [`EX_RESTART`], which the systemd unit
//! answers by starting it again.
//!
//! What SIGHUP applies live: `[[announcer.vip_groups]]`, `[announcer.bgp]` (per-peer diff: see
//! `herald_announcer::bgp::reconfig`), `announcer.admin_socket` (rebound), and the shutdown
//! bounds; the content of `exporter.web_config_file` (reloaded by the metrics server itself,
//! keeping the running one if the new file does not load). Everything else (`[log]`, `[reader]`, `[exporter]`, `announcer.backend`,
//! `[announcer.kernel]`, `announcer.drain_time`, `announcer.maintenance_file`,
//! `announcer.state_file`, adding or removing the `[announcer.bgp]` section, enabling the
//! announcer) needs a restart: a warning names those keys and
//! `ipvs_herald_config_restart_required` is 1 until the file and the running configuration agree
//! on them again. The file is read on a blocking thread with a timeout, and only if it is a
//! regular file, so that the signal loop always hears SIGTERM.
//!
//! When the announcer is on, the single-instance lock beside the admin socket is the first thing
//! it takes: a second `ipvs-herald run` with the same configuration stops there, before it
//! touches a socket, a route or a session of the running one.

use crate::config::{Config, LogFormat};
use crate::failsafe;
use anyhow::Context;
use herald_announcer::admin;
use herald_announcer::control::FaultHooks;
use herald_announcer::BackendKind;
use herald_shared::reader::{IpvsSource, Reader};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// How long the HTTP server may take to finish open requests after the stop signal, on top of
/// its own drain bound.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Exit status after `ipvs-herald stop --keep-routes` (`EX_TEMPFAIL`): the unit's
/// `RestartForceExitStatus=` starts the daemon again.
pub const EX_RESTART: u8 = 75;

/// How `run` ended (when it did not fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Drained and withdrawn (SIGTERM, SIGINT, `ipvs-herald stop`).
    Normally,
    /// Stopped for a graceful restart, routes kept at the routers: start again within the
    /// restart time.
    ForRestart,
}

/// Set up logging from `[log]` (the `IPVS_HERALD_LOG` environment variable wins).
pub fn init_tracing(cfg: &crate::config::LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("IPVS_HERALD_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => cfg.level.clone(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("bad log filter {filter:?}"))?;
    use std::io::IsTerminal;
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Colour escapes only for a person at a terminal: not for journald, a pipe or a file, and not
/// when `NO_COLOR` is set to anything but the empty string (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Metrics about the daemon's own configuration.
#[derive(Debug, Default, Clone)]
struct ConfigMetrics {
    last_reload_ok: Gauge,
    last_reload_success: Gauge<f64, AtomicU64>,
    reloads_failed: Counter,
    restart_required: Gauge,
}

impl ConfigMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = ConfigMetrics::default();
        registry.register(
            "ipvs_herald_config_last_reload_successful",
            "1 when the last configuration (re)load succeeded, 0 when the running configuration is older than the file",
            m.last_reload_ok.clone(),
        );
        registry.register(
            "ipvs_herald_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load",
            m.last_reload_success.clone(),
        );
        registry.register(
            "ipvs_herald_config_reload_failures",
            "Configuration reloads refused because the file was invalid",
            m.reloads_failed.clone(),
        );
        registry.register(
            "ipvs_herald_config_restart_required",
            "1 while the configuration file differs from the running configuration in keys that only a restart applies (the log names them)",
            m.restart_required.clone(),
        );
        m.loaded();
        m
    }

    fn loaded(&self) {
        self.last_reload_ok.set(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_reload_success.set(now);
    }
}

/// Run the daemon until SIGTERM, SIGINT or `ipvs-herald stop`.
pub fn run(cfg: Config, path: Option<PathBuf>) -> anyhow::Result<Stopped> {
    init_tracing(&cfg.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("herald-worker")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(cfg, path));
    // A blocking task stuck in a read (a hung filesystem) must not keep the process from
    // exiting: dropping the runtime would wait for it forever.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(cfg: Config, path: Option<PathBuf>) -> anyhow::Result<Stopped> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = ?path, "ipvs-herald starting");
    cfg.warnings().iter().for_each(|w| tracing::warn!("{w}"));
    // Signals are ours before anything is bound or started: a SIGTERM that arrives while the
    // daemon starts (a test, or systemd stopping a unit it just started) is queued and handled
    // by the loop below, never the default action killing a half-started daemon.
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let source: Arc<dyn IpvsSource> = Arc::new(Reader::new(cfg.reader.clone()));
    probe(&source).await;

    let faults = FaultHooks::from_env();
    let mut registry = Registry::default();
    herald_exporter::register(&mut registry, source.clone(), &cfg.exporter);
    let config_metrics = ConfigMetrics::register(&mut registry);
    let mut announcer = if cfg.announcer.is_active() {
        let options = herald_announcer::StartOptions {
            local_netns: cfg.reader.netns.clone(),
            faults: faults.clone(),
            on_fatal: Box::new(failsafe::on_fatal),
        };
        Some(
            herald_announcer::start(
                cfg.announcer.clone(),
                source.clone(),
                &mut registry,
                options,
            )
            .await?,
        )
    } else {
        tracing::info!("no [announcer.bgp] and no VIP groups: announcer off");
        None
    };

    let listener = tokio::net::TcpListener::bind(cfg.exporter.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.exporter.listen))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut page = herald_exporter::StatusPage::new(source.clone());
    if let Some(a) = &announcer {
        let status = a.status_source();
        page = page.with_announcer(Arc::new(move || {
            let status = status.clone();
            async move {
                status
                    .status()
                    .await
                    .inspect_err(|e| tracing::debug!(error = %e, "no status for the status page"))
                    .ok()
            }
        }));
    }
    // SIGHUP also reloads the web configuration file (TLS, basic auth, headers).
    let (web_reload, web_reload_rx) = watch::channel(());
    let serve = herald_exporter::serve_full(
        listener,
        Arc::new(registry),
        cfg.exporter.clone(),
        Some(page),
        stopped,
        web_reload_rx,
    );
    let mut server = tokio::spawn(async move {
        tokio::select! {
            r = serve => r,
            _ = faults.turned_on("metrics-server-exits") => Ok(()),
        }
    });

    let mut heartbeats = vec![("the async runtime", failsafe::runtime_heartbeat())];
    if let Some(a) = &announcer {
        heartbeats.push(("the announcer's control loop", a.heartbeat()));
    }
    failsafe::spawn_watchdog(heartbeats).context("cannot start the watchdog thread")?;
    failsafe::notify(&[sd_notify::NotifyState::Ready]);
    let mut running = cfg;
    // Set when the metrics server ended by itself: the daemon must not live on without it.
    let mut server_ended = None;
    let mut stop_requests = announcer.as_mut().and_then(|a| a.take_stop_requests());
    let mut keep_routes = false;
    loop {
        tokio::select! {
            Some(keep) = async {
                match stop_requests.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                keep_routes = keep;
                tracing::info!(keep_routes, "ipvs-herald stop: stopping");
                break;
            }
            _ = hup.recv() => {
                failsafe::notify_reloading();
                reload(&path, &mut running, &config_metrics, announcer.as_mut()).await;
                let _ = web_reload.send(());
                failsafe::notify(&[sd_notify::NotifyState::Ready]);
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            r = &mut server => {
                let why = match r {
                    Ok(Ok(())) => "the metrics server stopped by itself".to_string(),
                    Ok(Err(e)) => format!("the metrics server failed: {e}"),
                    Err(e) => format!("the metrics server task failed: {e}"),
                };
                tracing::error!("{why}: stopping (drain, withdraw) and exiting with an error");
                server_ended = Some(why);
                break;
            }
        }
    }
    failsafe::notify(&[sd_notify::NotifyState::Stopping]);

    let mut stopped = Stopped::Normally;
    if let Some(a) = announcer {
        if keep_routes {
            if a.stop_for_restart().await {
                stopped = Stopped::ForRestart;
            }
        } else {
            a.shutdown().await;
        }
    }
    if let Some(why) = server_ended {
        anyhow::bail!("{why}");
    }
    let _ = stop_tx.send(true);
    match tokio::time::timeout(
        running
            .exporter
            .limits
            .shutdown_drain
            .min(Duration::from_secs(3600))
            + STOP_GRACE,
        server,
    )
    .await
    {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "metrics server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "metrics server task failed"),
        Err(_) => tracing::warn!("metrics server did not stop in time"),
    }
    match stopped {
        Stopped::Normally => tracing::info!("stopped"),
        Stopped::ForRestart => tracing::info!(
            "stopped for a graceful restart: start again within the restart time (exit status {EX_RESTART})"
        ),
    }
    Ok(stopped)
}

/// One read at start, so the log says at once whether IPVS is readable.
async fn probe(source: &Arc<dyn IpvsSource>) {
    let s = source.clone();
    match tokio::task::spawn_blocking(move || s.snapshot()).await {
        Ok(Ok(snap)) => tracing::info!(
            services = snap.services.len(),
            version = %snap.info.version_string(),
            "IPVS readable"
        ),
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            "IPVS is not readable now; metrics show ipvs_up 0 until it is"
        ),
        Err(e) => tracing::error!(error = %e, "IPVS probe task failed"),
    }
}

/// Keys of `new` that differ from the running configuration but only take effect at the next
/// start. `announcer_on`: the announcer was started.
fn restart_only_changes(running: &Config, new: &Config, announcer_on: bool) -> Vec<&'static str> {
    let mut k = Vec::new();
    if new.log != running.log {
        k.push("log");
    }
    if new.reader != running.reader {
        k.push("reader");
    }
    if new.exporter != running.exporter {
        k.push("exporter");
    }
    let (a, b) = (&running.announcer, &new.announcer);
    if !announcer_on {
        if b.is_active() {
            k.push("announcer (enabling it)");
        }
        return k;
    }
    if a.backend != b.backend {
        k.push("announcer.backend");
    }
    if a.kernel != b.kernel {
        k.push("announcer.kernel");
    }
    if a.drain_time != b.drain_time {
        k.push("announcer.drain_time");
    }
    if a.maintenance_file != b.maintenance_file {
        k.push("announcer.maintenance_file");
    }
    if a.state_file != b.state_file {
        k.push("announcer.state_file");
    }
    if a.bgp.is_some() != b.bgp.is_some() {
        k.push("announcer.bgp (adding or removing the section)");
    }
    k
}

/// How long a SIGHUP waits for the configuration file to be read and parsed.
const CONFIG_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Set while a configuration read runs on a blocking thread; one that never returns (a hung
/// filesystem) keeps it set, so that later SIGHUPs are refused instead of piling up stuck threads.
static CONFIG_READ_IN_FLIGHT: AtomicBool = AtomicBool::new(false);

/// Load the configuration at `path` on a blocking thread, waiting at most `timeout`, so that a
/// slow or hung filesystem never blocks the signal loop (SIGTERM must always be heard).
async fn load_off_the_signal_loop(path: PathBuf, timeout: Duration) -> anyhow::Result<Config> {
    load_bounded(&path.clone(), timeout, move || Config::load(Some(&path))).await
}

async fn load_bounded(
    path: &std::path::Path,
    timeout: Duration,
    load: impl FnOnce() -> Result<Config, crate::config::ConfigError> + Send + 'static,
) -> anyhow::Result<Config> {
    if CONFIG_READ_IN_FLIGHT.swap(true, Ordering::SeqCst) {
        anyhow::bail!(
            "an earlier read of {} has not returned yet (hung filesystem?)",
            path.display()
        );
    }
    /// Clears the flag when the read returns or panics, whether or not anyone still waits.
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            CONFIG_READ_IN_FLIGHT.store(false, Ordering::SeqCst);
        }
    }
    let task = tokio::task::spawn_blocking(move || {
        let _in_flight = InFlight;
        load()
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(loaded)) => Ok(loaded?),
        Ok(Err(e)) => Err(anyhow::anyhow!("configuration read task failed: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "reading {} took longer than {timeout:?}",
            path.display()
        )),
    }
}

/// SIGHUP: load the file again and apply what can be applied live; keep the running
/// configuration when the file is invalid or cannot be applied.
async fn reload(
    path: &Option<PathBuf>,
    running: &mut Config,
    metrics: &ConfigMetrics,
    announcer: Option<&mut herald_announcer::Handle>,
) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no configuration file (built-in defaults); nothing to reload");
        return;
    };
    let refuse = |e: &dyn std::fmt::Display, what: &str| {
        metrics.last_reload_ok.set(0);
        metrics.reloads_failed.inc();
        tracing::error!(error = %e, "SIGHUP: {what}; the running configuration stays in force");
    };
    let new = match load_off_the_signal_loop(path.clone(), CONFIG_READ_TIMEOUT).await {
        Ok(n) => n,
        Err(e) => return refuse(&format!("{e:#}"), "configuration refused"),
    };
    new.warnings()
        .iter()
        .for_each(|w| tracing::warn!("SIGHUP: {w}"));
    let restart = restart_only_changes(running, &new, announcer.is_some());
    if let Some(a) = announcer {
        if let Err(e) = a.reconfigure(new.announcer.clone()).await {
            let e = anyhow::Error::from(e);
            return refuse(&format!("{e:#}"), "configuration could not be applied");
        }
        // What was applied live; restart-only keys keep their running values.
        running.announcer.clone_from(a.config());
    }
    metrics.loaded();
    if restart.is_empty() {
        metrics.restart_required.set(0);
        tracing::info!("SIGHUP: configuration reloaded");
    } else {
        metrics.restart_required.set(1);
        tracing::warn!(
            keys = %restart.join(", "),
            "SIGHUP: configuration reloaded, but these keys only take effect at the next restart: {}",
            restart.join(", ")
        );
    }
}

/// `ipvs-herald flush`: remove every kernel route or VIP address a daemon with this
/// configuration installed (`backend = "kernel"`). Meant for the unit's `ExecStopPost=`, which
/// runs however the daemon ended: kernel routes, unlike BGP sessions, outlive a `kill -9`.
pub fn flush(cfg: &Config) -> anyhow::Result<()> {
    if cfg.announcer.backend != BackendKind::Kernel {
        println!("backend = \"bgp\": BGP routes end with their sessions; nothing to flush");
        return Ok(());
    }
    // Never from under a running daemon: it would announce nothing while believing otherwise.
    let _lock = admin::InstanceLock::acquire(&cfg.announcer.admin_socket)
        .context("flush is for after the daemon has stopped")?;
    let removed = herald_announcer::remove_kernel_routes(cfg.announcer.kernel.clone())?;
    if removed.is_empty() {
        println!("no kernel routes of ipvs-herald left");
    } else {
        for net in removed {
            println!("removed {net}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(std::path::Path::new("test.toml"), text).expect("valid test config")
    }

    const BASE: &str = r#"
[announcer.bgp]
router_id = "192.0.2.1"
local_as = 65000
[[announcer.bgp.peers]]
name = "a"
address = "192.0.2.2"
remote_as = 65001
"#;

    #[test]
    fn live_keys_need_no_restart_and_restart_only_keys_are_named() {
        let base = parse(BASE);
        // A new peer, another admin socket and other shutdown bounds: all live.
        let live = parse(&format!(
            "{BASE}[[announcer.bgp.peers]]\nname = \"b\"\naddress = \"192.0.2.3\"\nremote_as = 65001\n"
        ));
        assert!(restart_only_changes(&base, &live, true).is_empty());
        let mut live2 = base.clone();
        live2.announcer.admin_socket = "/tmp/x.sock".into();
        live2.announcer.shutdown_timeout = Duration::from_secs(20);
        assert!(restart_only_changes(&base, &live2, true).is_empty());
        // Restart-only keys are named.
        let mut other = base.clone();
        other.exporter.listen = "127.0.0.1:9999".parse().unwrap();
        other.log.level = "debug".into();
        other.announcer.drain_time = Duration::from_secs(1);
        other.announcer.backend = herald_announcer::BackendKind::Kernel;
        other.announcer.state_file = "/tmp/state.json".into();
        assert_eq!(
            restart_only_changes(&base, &other, true),
            [
                "log",
                "exporter",
                "announcer.backend",
                "announcer.drain_time",
                "announcer.state_file"
            ]
        );
        let mut no_bgp = base.clone();
        no_bgp.announcer.bgp = None;
        assert_eq!(
            restart_only_changes(&base, &no_bgp, true),
            ["announcer.bgp (adding or removing the section)"]
        );
        // Announcer off at start: turning it on needs a restart; staying off does not.
        let off = Config::default();
        assert_eq!(
            restart_only_changes(&off, &base, false),
            ["announcer (enabling it)"]
        );
        assert!(restart_only_changes(&off, &off, false).is_empty());
    }

    #[test]
    fn colour_only_on_a_terminal_and_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "empty NO_COLOR is unset"
        );
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new(""))));
    }

    /// A read that never returns (a hung filesystem) times out; while it is stuck, the next
    /// SIGHUP is refused at once rather than leaving a second thread stuck; once it returns,
    /// reloads work again.
    #[tokio::test]
    async fn a_stuck_configuration_read_never_holds_the_signal_loop() {
        let path = std::path::Path::new("/stuck.toml");
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let t0 = std::time::Instant::now();
        let e = load_bounded(path, Duration::from_millis(200), move || {
            let _ = release_rx.recv_timeout(Duration::from_secs(20));
            Ok(Config::default())
        })
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(e, "reading /stuck.toml took longer than 200ms");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let e = load_bounded(path, Duration::from_secs(5), || Ok(Config::default()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("has not returned yet"), "{e}");
        release_tx.send(()).unwrap();
        for _ in 0..100 {
            if !CONFIG_READ_IN_FLIGHT.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let loaded = load_bounded(path, Duration::from_secs(5), || Ok(Config::default()))
            .await
            .unwrap();
        assert_eq!(loaded, Config::default());
    }
}
