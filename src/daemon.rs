//! `ipvs-herald run`: builds the reader, registers the exporter's (and later the announcer's)
//! metrics in one registry, serves HTTP, and handles signals: SIGHUP reloads the configuration
//! (an invalid file keeps the running one, with a log line and a metric), SIGTERM/SIGINT stop
//! gracefully within a bound.

use crate::config::{Config, LogFormat};
use anyhow::Context;
use herald_shared::reader::{IpvsSource, Reader};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// How long the HTTP server may take to finish open requests after the stop signal, on top of
/// its own drain bound.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Set up logging from `[log]` (the `IPVS_HERALD_LOG` environment variable wins).
pub fn init_tracing(cfg: &crate::config::LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("IPVS_HERALD_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => cfg.level.clone(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("bad log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Metrics about the daemon's own configuration.
#[derive(Debug, Default, Clone)]
struct ConfigMetrics {
    last_reload_ok: Gauge,
    last_reload_success: Gauge<f64, AtomicU64>,
    reloads_failed: Counter,
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

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(cfg: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    init_tracing(&cfg.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("herald-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(cfg, path))
}

async fn serve(cfg: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = ?path, "ipvs-herald starting");
    let source: Arc<dyn IpvsSource> = Arc::new(Reader::new(cfg.reader.clone()));
    probe(&source).await;

    let mut registry = Registry::default();
    herald_exporter::register(&mut registry, source.clone(), &cfg.exporter);
    let config_metrics = ConfigMetrics::register(&mut registry);

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
    let server = tokio::spawn(herald_exporter::serve(
        listener,
        Arc::new(registry),
        cfg.exporter.clone(),
        stopped,
    ));

    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut running = cfg;
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&path, &mut running, &config_metrics),
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
        }
    }

    let _ = stop_tx.send(true);
    match tokio::time::timeout(
        Duration::from_secs_f64(
            running
                .exporter
                .limits
                .shutdown_drain_seconds
                .clamp(0.0, 3600.0),
        ) + STOP_GRACE,
        server,
    )
    .await
    {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "metrics server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "metrics server task failed"),
        Err(_) => tracing::warn!("metrics server did not stop in time"),
    }
    tracing::info!("stopped");
    Ok(())
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

/// SIGHUP: load the file again; keep the running configuration when it is invalid.
fn reload(path: &Option<PathBuf>, running: &mut Config, metrics: &ConfigMetrics) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no configuration file (built-in defaults); nothing to reload");
        return;
    };
    match Config::load(Some(path)) {
        Err(e) => {
            metrics.last_reload_ok.set(0);
            metrics.reloads_failed.inc();
            tracing::error!(error = %e, "SIGHUP: configuration refused; the running configuration stays in force");
        }
        Ok(new) => {
            if new.exporter != running.exporter || new.reader != running.reader {
                tracing::warn!(
                    "SIGHUP: [exporter] and [reader] changes take effect at the next restart"
                );
            }
            *running = new;
            metrics.loaded();
            tracing::info!("SIGHUP: configuration reloaded");
        }
    }
}
