//! The scrape-time `Collector`: reads IPVS through an [`IpvsSource`] when the registry is
//! encoded, with single-flight so that concurrent scrapes share one kernel read.
//!
//! The collector is synchronous (prometheus-client's `Collector::encode`); the HTTP server calls
//! the registry encoder on a blocking thread and tells the collector its deadline through
//! [`with_scrape_deadline`], which bounds the connection-table pass.

use crate::config::Config;
use crate::families::{build, Built, Family, Kind, Value};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
    /// The exporter's own families, written first.
    meta: Vec<Family>,
    /// The IPVS families (the snapshot itself, encoded on demand); `None` when unreadable.
    ipvs: Option<Built>,
}

/// Scrape-time IPVS collector. Register it with [`crate::register`].
pub struct IpvsCollector {
    source: Arc<dyn IpvsSource>,
    cfg: Config,
    /// The last collection and when it finished. Holding the lock = a read is in flight. Only a
    /// weak reference is kept: the result lives while scrapes still encode it, and a large table
    /// is not held in memory between scrapes.
    last: Mutex<Option<(Instant, Weak<Collected>)>>,
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
    /// after `started` (it was in flight when this scrape arrived) and is still being encoded by
    /// another scrape is shared, otherwise a new one is made while holding the lock, so
    /// concurrent scrapes wait for it instead of reading too.
    fn collect(&self, started: Instant) -> Arc<Collected> {
        let mut guard = match self.last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((finished, c)) = guard.as_ref() {
            if *finished >= started {
                if let Some(c) = c.upgrade() {
                    return c;
                }
            }
        }
        let c = Arc::new(self.read_and_build());
        *guard = Some((Instant::now(), Arc::downgrade(&c)));
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

        let mut dropped = 0;
        let ipvs = snapshot.map(|s| {
            let built = build(s, conn.as_ref(), &self.cfg);
            dropped = built.duplicates_dropped;
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "snapshot held duplicate services or destinations; kept the first of each"
                );
            }
            built
        });
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
        Collected {
            meta: meta.into_vec(),
            ipvs,
        }
    }

    fn conn_limits(&self) -> ConnTableLimits {
        let c = &self.cfg.conn_table;
        let mut max_duration = (!c.max_duration.is_zero()).then_some(c.max_duration);
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
        for f in &c.meta {
            f.encode(&mut encoder)?;
        }
        match &c.ipvs {
            Some(b) => b.encode(&mut encoder),
            None => Ok(()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::oracle::{check_series, parse_exposition, StaticSource};
    use crate::exposition::{encode_registry, Format};
    use crate::fixture::{rich_conn_table, rich_snapshot};
    use herald_shared::model::Snapshot;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::AtomicUsize;

    fn scrape(registry: &Registry) -> String {
        let t = encode_registry(registry, Format::Prometheus).unwrap();
        check_series(&t).unwrap();
        t
    }

    fn sample(text: &str, name: &str, label: Option<(&str, &str)>) -> Option<String> {
        parse_exposition(text)
            .unwrap()
            .into_iter()
            .find(|s| {
                s.name == name
                    && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn missing_module_is_ipvs_up_0_not_an_error() {
        let mut r = Registry::default();
        crate::register(
            &mut r,
            Arc::new(StaticSource::default()),
            &Config::default(),
        );
        let t = scrape(&r);
        assert_eq!(sample(&t, "ipvs_up", None).as_deref(), Some("0"));
        assert_eq!(
            sample(
                &t,
                "ipvs_scrape_collector_success",
                Some(("collector", "ipvs"))
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &t,
                "ipvs_scrape_collector_errors_total",
                Some(("collector", "ipvs"))
            )
            .as_deref(),
            Some("1")
        );
        assert!(sample(&t, "ipvs_herald_build_info", None).is_some());
        assert!(
            !t.contains("ipvs_service_"),
            "no IPVS series when unreadable"
        );
        let t = scrape(&r);
        assert_eq!(
            sample(
                &t,
                "ipvs_scrape_collector_errors_total",
                Some(("collector", "ipvs"))
            )
            .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn readable_source_is_ipvs_up_1_with_conntable_scan_metrics() {
        let mut conn = rich_conn_table();
        conn.truncated = true;
        conn.malformed_lines = 2;
        let src = StaticSource {
            snapshot: Some(rich_snapshot()),
            conn_table: conn,
        };
        let mut r = Registry::default();
        crate::register(&mut r, Arc::new(src.clone()), &Config::default());
        let t = scrape(&r);
        assert_eq!(sample(&t, "ipvs_up", None).as_deref(), Some("1"));
        assert_eq!(
            sample(&t, "ipvs_connection_table_scan_truncated", None).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&t, "ipvs_connection_table_scan_malformed_lines", None).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, "ipvs_connection_table_scan_entries", None).as_deref(),
            Some("298")
        );
        assert_eq!(
            sample(&t, "ipvs_connection_table_scan_enabled", None).as_deref(),
            Some("1")
        );
        assert!(sample(&t, "ipvs_connection_table_connections", None).is_some());
        // Switched off: no table series, enabled 0.
        let mut cfg = Config::default();
        cfg.conn_table.enabled = false;
        let mut r = Registry::default();
        crate::register(&mut r, Arc::new(src), &cfg);
        let t = scrape(&r);
        assert_eq!(
            sample(&t, "ipvs_connection_table_scan_enabled", None).as_deref(),
            Some("0")
        );
        assert!(!t.contains("ipvs_connection_table_connections"));
        assert!(
            !t.contains("collector=\"conntable\"} 0."),
            "no conntable duration when off"
        );
    }

    /// Blocks in `snapshot()` until `arrived` reaches `want`, records the limits it was given.
    struct Gate {
        arrived: Arc<AtomicUsize>,
        want: usize,
        reads: AtomicUsize,
        limits: Mutex<Option<ConnTableLimits>>,
    }

    impl IpvsSource for Gate {
        fn snapshot(&self) -> Result<Snapshot, ReadError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let t0 = Instant::now();
            while self.arrived.load(Ordering::SeqCst) < self.want
                && t0.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(rich_snapshot())
        }
        fn conn_table(&self, limits: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
            *self.limits.lock().unwrap() = Some(*limits);
            Ok(rich_conn_table())
        }
    }

    #[test]
    fn concurrent_scrapes_share_one_read() {
        const N: usize = 8;
        let arrived = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate {
            arrived: Arc::clone(&arrived),
            want: N,
            reads: AtomicUsize::new(0),
            limits: Mutex::new(None),
        });
        let c = Arc::new(IpvsCollector::new(gate.clone(), &Config::default()));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let c = Arc::clone(&c);
                let arrived = Arc::clone(&arrived);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    arrived.fetch_add(1, Ordering::SeqCst);
                    c.collect(started)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            gate.reads.load(Ordering::SeqCst),
            1,
            "one kernel read for {N} concurrent scrapes"
        );
        assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
        drop(results);
        // Nothing is retained between scrapes.
        assert!(c
            .last
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .1
            .upgrade()
            .is_none());
        // A later scrape reads again.
        c.collect(Instant::now());
        assert_eq!(gate.reads.load(Ordering::SeqCst), 2);
        assert_eq!(c.reads(), 2);
    }

    #[test]
    fn scrape_deadline_bounds_the_connection_table_pass() {
        let gate = Arc::new(Gate {
            arrived: Arc::new(AtomicUsize::new(1)),
            want: 0,
            reads: AtomicUsize::new(0),
            limits: Mutex::new(None),
        });
        let mut cfg = Config::default();
        cfg.conn_table.max_entries = 1234;
        cfg.conn_table.max_duration = Duration::from_secs(60);
        let c = IpvsCollector::new(gate.clone(), &cfg);
        with_scrape_deadline(Instant::now() + Duration::from_secs(2), || {
            c.collect(Instant::now())
        });
        let l = gate.limits.lock().unwrap().unwrap();
        assert_eq!(l.max_entries, Some(1234));
        let d = l.max_duration.unwrap();
        assert!(
            d <= Duration::from_millis(1500) && d > Duration::from_millis(500),
            "{d:?}"
        );
        // Without a deadline the configured bound applies; 0 means none.
        c.collect(Instant::now());
        assert_eq!(
            gate.limits.lock().unwrap().unwrap().max_duration,
            Some(Duration::from_secs(60))
        );
        cfg.conn_table.max_duration = Duration::ZERO;
        cfg.conn_table.max_entries = 0;
        let c = IpvsCollector::new(gate.clone(), &cfg);
        c.collect(Instant::now());
        assert_eq!(
            *gate.limits.lock().unwrap(),
            Some(ConnTableLimits::default())
        );
    }
}
