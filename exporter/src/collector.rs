//! The scrape-time `Collector`: reads IPVS through an [`IpvsSource`] when the registry is
//! encoded, with single-flight so that concurrent scrapes share one kernel read.
//!
//! The collector is synchronous (prometheus-client's `Collector::encode`); the HTTP server calls
//! the registry encoder on a blocking thread and tells the collector its deadline through
//! [`with_scrape_deadline`], which bounds the connection-table pass.

use crate::config::{secs, Config};
use crate::metrics::{build, Family, Kind, Value};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Run `f` (an encoding of the registry) with a scrape deadline visible to the collector on this
/// thread. The connection-table pass stops in time for the deadline.
pub fn with_scrape_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    let prev = DEADLINE.with(|d| d.replace(Some(deadline)));
    let r = f();
    DEADLINE.with(|d| d.set(prev));
    r
}

fn current_deadline() -> Option<Instant> {
    DEADLINE.with(|d| d.get())
}

/// Result of one collection, shared by every scrape that joined it.
#[derive(Debug)]
struct Collected {
    families: Vec<Family>,
}

/// Scrape-time IPVS collector. Register it with [`crate::register`].
pub struct IpvsCollector {
    source: Arc<dyn IpvsSource>,
    cfg: Config,
    /// The last collection and when it finished. Holding the lock = a read is in flight.
    last: Mutex<Option<(Instant, Arc<Collected>)>>,
    snapshot_errors: AtomicU64,
    conntable_errors: AtomicU64,
    was_up: AtomicBool,
    reads: AtomicU64,
}

impl fmt::Debug for IpvsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpvsCollector")
            .field("reads", &self.reads.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl IpvsCollector {
    /// A collector reading `source`, shaped by `cfg`.
    pub fn new(source: Arc<dyn IpvsSource>, cfg: &Config) -> Self {
        IpvsCollector {
            source,
            cfg: cfg.clone(),
            last: Mutex::new(None),
            snapshot_errors: AtomicU64::new(0),
            conntable_errors: AtomicU64::new(0),
            was_up: AtomicBool::new(true),
            reads: AtomicU64::new(0),
        }
    }

    /// How many times the source has been read (for tests of single-flight).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The collection to answer a scrape that started at `started`: a collection that finished
    /// after `started` (it was in flight when this scrape arrived) is shared, otherwise a new one
    /// is made while holding the lock, so concurrent scrapes wait for it instead of reading too.
    fn collect(&self, started: Instant) -> Arc<Collected> {
        let mut guard = match self.last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((finished, c)) = guard.as_ref() {
            if *finished >= started {
                return Arc::clone(c);
            }
        }
        let c = Arc::new(self.read_and_build());
        *guard = Some((Instant::now(), Arc::clone(&c)));
        c
    }

    fn read_and_build(&self) -> Collected {
        let span = tracing::debug_span!("ipvs_collect");
        let _enter = span.enter();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let snap = self.source.snapshot();
        let snap_secs = t0.elapsed().as_secs_f64();
        let mut meta = MetaFamilies::new();
        meta.duration("ipvs", snap_secs);

        let snapshot = match snap {
            Ok(s) => {
                if !self.was_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("IPVS is readable again");
                }
                meta.success("ipvs", true);
                Some(s)
            }
            Err(e) => {
                self.snapshot_errors.fetch_add(1, Ordering::Relaxed);
                meta.success("ipvs", false);
                let first = self.was_up.swap(false, Ordering::Relaxed);
                if first || !matches!(e, ReadError::ModuleNotLoaded) {
                    tracing::warn!(error = %e, "cannot read IPVS state; exporting ipvs_up 0");
                } else {
                    tracing::debug!(error = %e, "cannot read IPVS state (still)");
                }
                None
            }
        };
        meta.up
            .push(Vec::new(), Value::U64(u64::from(snapshot.is_some())));

        let conn = match (&snapshot, self.cfg.conn_table.enabled) {
            (Some(_), true) => {
                let limits = self.conn_limits();
                let t1 = Instant::now();
                let r = self.source.conn_table(&limits);
                meta.duration("conntable", t1.elapsed().as_secs_f64());
                match r {
                    Ok(c) => {
                        meta.success("conntable", true);
                        meta.conn_scan(&c);
                        if c.truncated {
                            tracing::debug!(
                                entries = c.entries,
                                "connection-table pass stopped at its bound"
                            );
                        }
                        Some(c)
                    }
                    Err(e) => {
                        self.conntable_errors.fetch_add(1, Ordering::Relaxed);
                        meta.success("conntable", false);
                        tracing::warn!(error = %e, "cannot read the IPVS connection table");
                        None
                    }
                }
            }
            _ => None,
        };

        let mut families = Vec::new();
        let mut dropped = 0;
        if let Some(s) = &snapshot {
            let built = build(s, conn.as_ref(), &self.cfg);
            dropped = built.duplicates_dropped;
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "snapshot held duplicate services or destinations; kept the first of each"
                );
            }
            families = built.families;
        }
        meta.dropped.push(Vec::new(), Value::U64(dropped));
        meta.errors.push(
            vec![("collector", "ipvs".to_string())],
            Value::U64(self.snapshot_errors.load(Ordering::Relaxed)),
        );
        meta.errors.push(
            vec![("collector", "conntable".to_string())],
            Value::U64(self.conntable_errors.load(Ordering::Relaxed)),
        );
        meta.enabled.push(
            Vec::new(),
            Value::U64(u64::from(self.cfg.conn_table.enabled)),
        );
        let mut all = meta.into_vec();
        all.extend(families);
        Collected { families: all }
    }

    fn conn_limits(&self) -> ConnTableLimits {
        let c = &self.cfg.conn_table;
        let mut max_duration = (c.max_duration_seconds > 0.0).then(|| secs(c.max_duration_seconds));
        if let Some(deadline) = current_deadline() {
            // Leave a quarter of the remaining time for encoding and sending.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let budget = remaining.mul_f64(0.75).max(Duration::from_millis(1));
            max_duration = Some(max_duration.map_or(budget, |d| d.min(budget)));
        }
        ConnTableLimits {
            max_entries: (c.max_entries > 0).then_some(c.max_entries),
            max_duration,
        }
    }
}

impl Collector for IpvsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.collect(Instant::now());
        for f in &c.families {
            f.encode(&mut encoder)?;
        }
        Ok(())
    }
}

/// The exporter's own families for one collection.
struct MetaFamilies {
    up: Family,
    duration: Family,
    success: Family,
    errors: Family,
    dropped: Family,
    enabled: Family,
    scan_entries: Family,
    scan_truncated: Family,
    scan_malformed: Family,
}

impl MetaFamilies {
    fn new() -> Self {
        MetaFamilies {
            up: Family::new(
                "ipvs_up",
                "1 when the IPVS state could be read at this scrape, 0 when not (module not loaded, no permission, …; see the log).",
                Kind::Gauge,
            ),
            duration: Family::new(
                "ipvs_scrape_collector_duration",
                "Time this scrape spent in each collector (ipvs = services/destinations/globals, conntable = connection table).",
                Kind::Gauge,
            )
            .with_unit(Unit::Seconds),
            success: Family::new(
                "ipvs_scrape_collector_success",
                "1 when the collector succeeded at this scrape.",
                Kind::Gauge,
            ),
            errors: Family::new(
                "ipvs_scrape_collector_errors",
                "Failed collections per collector since the exporter started.",
                Kind::Counter,
            ),
            dropped: Family::new(
                "ipvs_scrape_duplicates_dropped",
                "Services or destinations dropped at this scrape because the kernel reported them twice.",
                Kind::Gauge,
            ),
            enabled: Family::new(
                "ipvs_connection_table_scan_enabled",
                "1 when the connection table is read at each scrape (exporter.conn_table.enabled).",
                Kind::Gauge,
            ),
            scan_entries: Family::new(
                "ipvs_connection_table_scan_entries",
                "Entries (connections and templates) read from the connection table at this scrape.",
                Kind::Gauge,
            ),
            scan_truncated: Family::new(
                "ipvs_connection_table_scan_truncated",
                "1 when the connection-table pass stopped at its entry or time bound: counts are partial.",
                Kind::Gauge,
            ),
            scan_malformed: Family::new(
                "ipvs_connection_table_scan_malformed_lines",
                "Connection-table lines that could not be parsed at this scrape (skipped).",
                Kind::Gauge,
            ),
        }
    }

    fn duration(&mut self, collector: &str, secs: f64) {
        self.duration
            .push(vec![("collector", collector.to_string())], Value::F64(secs));
    }

    fn success(&mut self, collector: &str, ok: bool) {
        self.success.push(
            vec![("collector", collector.to_string())],
            Value::U64(u64::from(ok)),
        );
    }

    fn conn_scan(&mut self, c: &ConnTableSummary) {
        self.scan_entries.push(Vec::new(), Value::U64(c.entries));
        self.scan_truncated
            .push(Vec::new(), Value::U64(u64::from(c.truncated)));
        self.scan_malformed
            .push(Vec::new(), Value::U64(c.malformed_lines));
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.up,
            self.duration,
            self.success,
            self.errors,
            self.dropped,
            self.enabled,
            self.scan_entries,
            self.scan_truncated,
            self.scan_malformed,
        ]
    }
}

/// Build information, a constant info metric: `ipvs_herald_build_info{version}`.
#[derive(Debug)]
pub(crate) struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut f = Family::new(
            "ipvs_herald_build",
            "ipvs-herald build information.",
            Kind::Info,
        );
        f.push(
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("exporter", "herald-exporter".to_string()),
            ],
            Value::U64(1),
        );
        f.encode(&mut encoder)
    }
}
