//! The status page at `/status`: server-rendered HTML for a person at a browser, showing the VIP
//! groups and their pools against the thresholds, the BGP sessions, the drains, and the busiest
//! services and destinations with the kernel's rate estimates and the scheduler imbalance.
//!
//! The page is one self-contained document: inline CSS, no script, no image, no external URL, so
//! it works on a director without Internet access and leaks nothing to a CDN. It reloads itself
//! with a `<meta http-equiv="refresh">` (every [`DEFAULT_REFRESH`], `?refresh=N` seconds,
//! `?refresh=0` off). It never costs more than a scrape: one IPVS read (no connection-table
//! pass), under the scrape semaphore and the scrape deadline, and tables capped at [`TOP_N`]
//! rows whatever the size of the IPVS table. Every string from configuration, peers or the
//! kernel is HTML-escaped.
//!
//! The exporter does not depend on the announcer: the binary hands it a [`StatusProvider`] that
//! answers with the announcer's [`StatusReport`] (absent when the announcer is off).

use crate::config::{Config, Target};
use crate::families::imbalance;
use herald_shared::model::{Destination, Rates, Service, Snapshot, SnapshotSource};
use herald_shared::reader::IpvsSource;
use herald_shared::status::{DrainSource, GroupPhase, GroupReport, PeerReport, StatusReport};
use std::cmp::Reverse;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Where the page is served.
pub const STATUS_PATH: &str = "/status";
/// How often the page reloads itself unless `?refresh=` says otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);
/// Rows of the busiest-services and busiest-destinations tables.
pub const TOP_N: usize = 20;
/// The longest `?refresh=`, in seconds.
const MAX_REFRESH_SECS: u64 = 3600;
/// Longest error or reason text shown, in characters: a peer's NOTIFICATION data or a kernel
/// error must not blow up the page.
const MAX_TEXT: usize = 300;

/// A boxed future, as [`StatusProvider::status`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the page gets the announcer's status from. The binary implements it over the
/// announcer's handle; `None` means the announcer did not answer (the page says so).
pub trait StatusProvider: Send + Sync {
    /// The announcer's status now.
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>>;
}

impl<F, Fut> StatusProvider for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Option<StatusReport>> + Send + 'static,
{
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>> {
        Box::pin(self())
    }
}

/// What the status page reads: the IPVS source (the one the collector reads) and, when the
/// announcer is on, its status.
#[derive(Clone)]
pub struct StatusPage {
    source: Arc<dyn IpvsSource>,
    announcer: Option<Arc<dyn StatusProvider>>,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage")
            .field("announcer", &self.announcer.is_some())
            .finish_non_exhaustive()
    }
}

impl StatusPage {
    /// A page over `source`, without an announcer (the page says it is not configured).
    pub fn new(source: Arc<dyn IpvsSource>) -> Self {
        StatusPage {
            source,
            announcer: None,
        }
    }

    /// The same page, showing the announcer's status from `provider`.
    pub fn with_announcer(mut self, provider: Arc<dyn StatusProvider>) -> Self {
        self.announcer = Some(provider);
        self
    }

    /// Build the page for one request: at most one IPVS read, under a scrape slot taken from
    /// `scrapes` and within `timeout` (the scrape timeout). `query` is the request's query
    /// string. `Err` carries the text of a 503 answer (no scrape slot free in time).
    pub(crate) async fn render(
        &self,
        cfg: &Config,
        scrapes: &Arc<Semaphore>,
        timeout: Duration,
        query: Option<&str>,
    ) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let permit =
            match tokio::time::timeout_at(deadline, Arc::clone(scrapes).acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err("too many concurrent scrapes\n".into()),
            };
        let source = Arc::clone(&self.source);
        // The permit moves into the blocking read: released when the read ends, even if this
        // request gave up on it first, so blocking threads stay bounded as for scrapes.
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let t0 = Instant::now();
            let r = source.snapshot();
            (r, t0.elapsed())
        });
        let announcer = async {
            match &self.announcer {
                None => Announcer::NotConfigured,
                Some(p) => match tokio::time::timeout_at(deadline, p.status()).await {
                    Ok(Some(r)) => Announcer::Report(r),
                    _ => Announcer::NoAnswer,
                },
            }
        };
        let (read, announcer) = tokio::join!(tokio::time::timeout_at(deadline, read), announcer);
        let ipvs = match read {
            Ok(Ok((Ok(s), took))) => Ipvs::Read(s, took),
            Ok(Ok((Err(e), _))) => Ipvs::Failed(e.to_string()),
            Ok(Err(_)) => Ipvs::Failed("the IPVS read failed".into()),
            Err(_) => Ipvs::Failed(format!(
                "reading IPVS took longer than the scrape timeout ({:.3}s)",
                timeout.as_secs_f64()
            )),
        };
        let input = Input {
            ipvs,
            announcer,
            refresh: refresh_from_query(query),
            now: now_secs(),
            cfg: cfg.clone(),
        };
        // Sorting a large table is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || render(&input))
            .await
            .map_err(|_| "cannot render the status page\n".to_string())
    }
}

/// What the announcer said.
#[derive(Debug)]
pub(crate) enum Announcer {
    /// The announcer is off (no VIP groups, no BGP).
    NotConfigured,
    /// It is on but did not answer within the scrape timeout.
    NoAnswer,
    Report(StatusReport),
}

/// What the IPVS read gave.
#[derive(Debug)]
pub(crate) enum Ipvs {
    /// The snapshot and how long reading it took.
    Read(Snapshot, Duration),
    Failed(String),
}

/// Everything one page is made of.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) ipvs: Ipvs,
    pub(crate) announcer: Announcer,
    /// `None`: the page does not reload itself.
    pub(crate) refresh: Option<Duration>,
    /// Seconds since the Unix epoch.
    pub(crate) now: f64,
    pub(crate) cfg: Config,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The reload interval a query string asks for: `refresh=N` seconds (capped at an hour), `0`
/// for none; anything else is the default.
pub(crate) fn refresh_from_query(query: Option<&str>) -> Option<Duration> {
    let asked = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("refresh="))
        .filter_map(|v| v.parse::<u64>().ok())
        .next_back();
    match asked {
        Some(0) => None,
        Some(n) => Some(Duration::from_secs(n.min(MAX_REFRESH_SECS))),
        None => Some(DEFAULT_REFRESH),
    }
}

/// HTML-escape `s` for text and for attribute values in double or single quotes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// [`escape`] of at most [`MAX_TEXT`] characters of `s`.
fn esc_short(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        escape(s)
    } else {
        let cut: String = s.chars().take(MAX_TEXT).collect();
        format!("{}…", escape(&cut))
    }
}

/// `1234567` → `1.23M`; small numbers as they are.
fn si(v: u64) -> String {
    let v = v as f64;
    for (div, unit) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v >= div {
            let x = v / div;
            return if x >= 100.0 {
                format!("{x:.0}{unit}")
            } else if x >= 10.0 {
                format!("{x:.1}{unit}")
            } else {
                format!("{x:.2}{unit}")
            };
        }
    }
    format!("{v:.0}")
}

/// Bytes per second, in bytes with SI prefixes.
fn bytes_rate(v: u64) -> String {
    let s = si(v);
    let (num, prefix) = s.split_at(s.trim_end_matches(char::is_alphabetic).len());
    // A no-break space: the unit stays with its number in a narrow column.
    format!("{num}\u{a0}{prefix}B/s")
}

/// `3725.0` → `1h 2m`.
fn span(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Seconds since the epoch as `YYYY-MM-DD hh:mm:ss UTC`.
fn utc(secs: f64) -> String {
    let t = secs.max(0.0) as i64;
    let (days, rem) = (t.div_euclid(86400), t.rem_euclid(86400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The service as the metrics' `service` label writes it (`tcp/192.0.2.10:80`, `fwmark/1`),
/// with the configured friendly name after it.
fn service_name(s: &Service, cfg: &Config) -> String {
    use herald_shared::model::ServiceKey;
    let key = match s.key {
        ServiceKey::Addr {
            protocol,
            address: std::net::IpAddr::V6(a),
            port,
        } => format!("{}/[{a}]:{port}", protocol.as_str()),
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => format!("{}/{address}:{port}", protocol.as_str()),
        ServiceKey::Fwmark { mark, family } => match family {
            herald_shared::model::AddressFamily::Inet => format!("fwmark/{mark}"),
            herald_shared::model::AddressFamily::Inet6 => format!("fwmark/{mark} (IPv6)"),
        },
    };
    match cfg
        .service_names
        .get(&crate::config::ServiceSpec(s.key))
        .filter(|n| !n.is_empty())
    {
        Some(n) => format!("{key} ({n})"),
        None => key,
    }
}

fn dest_name(d: &Destination) -> String {
    match d.address {
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", d.port),
        a => format!("{a}:{}", d.port),
    }
}

/// Sort key of "busiest": connections per second, then bytes per second, then current
/// connections (all the procfs source knows).
fn busy(r: &Rates, active: u32, inactive: u32) -> (u64, u64, u64) {
    (
        r.conns_per_second,
        r.in_bytes_per_second.saturating_add(r.out_bytes_per_second),
        u64::from(active) + u64::from(inactive),
    )
}

/// The `n` largest items by `key`, largest first, without sorting the whole table.
fn top<T, K: Ord>(mut items: Vec<T>, n: usize, key: impl Fn(&T) -> K) -> Vec<T> {
    if items.len() > n && n > 0 {
        items.select_nth_unstable_by_key(n - 1, |t| Reverse(key(t)));
        items.truncate(n);
    }
    items.sort_by_key(|t| Reverse(key(t)));
    items.truncate(n);
    items
}

const STYLE: &str = "\
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d232b;--mute:#667085;--line:#e3e6ea;--ok:#137a3a;--okbg:#dcf5e4;\
--bad:#b42318;--badbg:#fde4e1;--warn:#935f00;--warnbg:#fdf0c8;--info:#1d4f91;--infobg:#dde9fb}\
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:var(--bg);color:var(--ink)}header{background:#17202b;color:#fff;padding:14px 24px;display:flex;\
flex-wrap:wrap;align-items:baseline;gap:6px 18px}header h1{font-size:20px;margin:0}header .ver{color:#9fb0c3;\
font-weight:400;font-size:14px}header nav a{color:#cfe0f5;margin-right:12px;text-decoration:none}\
header .meta{color:#9fb0c3;margin-left:auto;font-size:13px}main{padding:16px 24px;max-width:1500px}\
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 16px}\
h2{font-size:16px;margin:0 0 10px}h2 small{color:var(--mute);font-weight:400}\
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;\
min-width:130px}.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums;background:none}.card span{color:var(--mute);\
font-size:12px}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;\
border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--mute);font-weight:600;font-size:12px;\
text-transform:uppercase;letter-spacing:.03em}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
tbody tr:nth-child(even){background:#fafbfc}code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}\
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}\
.ok{color:var(--ok);background:var(--okbg)}.bad{color:var(--bad);background:var(--badbg)}\
.warn{color:var(--warn);background:var(--warnbg)}.info{color:var(--info);background:var(--infobg)}\
.mute{color:var(--mute)}.note{color:var(--mute);font-size:12px;margin:6px 0 0}\
.err{color:var(--bad);background:var(--badbg);padding:8px 12px;border-radius:6px}\
.pools{display:grid;grid-template-columns:repeat(5,auto);gap:3px 8px;align-items:center;justify-content:start}\
.pools>*{white-space:nowrap}section{overflow-x:auto}.bar{position:relative;width:80px;height:8px;\
background:var(--line);border-radius:4px;overflow:hidden}.bar i{position:absolute;left:0;top:0;bottom:0}\
.bar i.ok{background:var(--ok)}.bar i.bad{background:var(--bad)}ul.reasons{margin:2px 0 0;padding-left:16px;\
color:var(--mute);font-size:12px}footer{color:var(--mute);font-size:12px;padding:0 24px 16px}";

/// Render the page. Pure: the same input gives the same page.
pub(crate) fn render(input: &Input) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    );
    if let Some(r) = input.refresh {
        let _ = write!(
            h,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            r.as_secs().max(1)
        );
    }
    let _ = write!(
        h,
        "<title>ipvs-herald status</title><style>{STYLE}</style></head>\n<body>\n"
    );
    let refresh = match input.refresh {
        Some(r) => format!("refreshes every {} s", r.as_secs().max(1)),
        None => "does not refresh".into(),
    };
    let _ = write!(
        h,
        "<header><h1>ipvs-herald <span class=\"ver\">{}</span></h1><nav><a href=\"/\">Home</a>\
<a href=\"{}\">Metrics</a></nav><div class=\"meta\">{} · {refresh}</div></header>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&input.cfg.metrics_path),
        utc(input.now),
    );
    let snapshot = match &input.ipvs {
        Ipvs::Read(s, _) => Some(s),
        Ipvs::Failed(_) => None,
    };
    let services: Vec<&Service> = snapshot
        .map(|s| {
            s.services
                .iter()
                .filter(|s| input.cfg.selected(Target::from(&s.key)))
                .collect()
        })
        .unwrap_or_default();
    summary(&mut h, input, &services);
    groups(&mut h, input);
    peers(&mut h, &input.announcer);
    match &input.ipvs {
        Ipvs::Read(s, _) => {
            busiest_services(&mut h, s, &services, &input.cfg);
            busiest_destinations(&mut h, s, &services, &input.cfg);
        }
        Ipvs::Failed(e) => {
            let _ = writeln!(
                h,
                "<section id=\"services\"><h2>IPVS</h2><p class=\"err\">Cannot read IPVS: {}</p></section>",
                esc_short(e)
            );
        }
    }
    let _ = write!(
        h,
        "</main>\n<footer>Rates are the kernel's estimates (about 2 s averages). \
Add <code>?refresh=N</code> to the address to reload every N seconds, <code>?refresh=0</code> to stop.</footer>\n</body></html>\n"
    );
    h
}

fn card(h: &mut String, value: &str, label: &str, class: &str) {
    let _ = write!(
        h,
        "<div class=\"card\"><b class=\"{class}\">{value}</b><span>{label}</span></div>"
    );
}

fn summary(h: &mut String, input: &Input, services: &[&Service]) {
    h.push_str("<section id=\"summary\"><h2>Director</h2><div class=\"cards\">");
    if let Announcer::Report(r) = &input.announcer {
        let up = r.groups.iter().filter(|g| g.phase.is_announced()).count();
        let class = if up == r.groups.len() { "" } else { "warn" };
        card(
            h,
            &format!("{up}/{}", r.groups.len()),
            "VIP groups announced",
            class,
        );
        if !r.peers.is_empty() {
            let est = r.peers.iter().filter(|p| p.state == "established").count();
            let class = if est == r.peers.len() { "" } else { "warn" };
            card(
                h,
                &format!("{est}/{}", r.peers.len()),
                "BGP sessions established",
                class,
            );
        }
        let drained = r.groups.iter().filter(|g| !g.drained_by.is_empty()).count();
        card(
            h,
            &drained.to_string(),
            "groups drained",
            if drained > 0 { "warn" } else { "" },
        );
    }
    if let Ipvs::Read(s, took) = &input.ipvs {
        let dests: usize = services.iter().map(|s| s.destinations.len()).sum();
        let (active, inactive) =
            services
                .iter()
                .flat_map(|s| &s.destinations)
                .fold((0u64, 0u64), |(a, i), d| {
                    (
                        a + u64::from(d.active_conns),
                        i + u64::from(d.inactive_conns),
                    )
                });
        card(h, &services.len().to_string(), "services", "");
        card(h, &dests.to_string(), "destinations", "");
        card(h, &si(active), "active connections", "");
        card(h, &si(inactive), "inactive connections", "");
        if let Some(g) = &s.global {
            let r = &g.rates;
            card(h, &si(r.conns_per_second), "connections/s", "");
            card(
                h,
                &format!(
                    "{} / {}",
                    si(r.in_packets_per_second),
                    si(r.out_packets_per_second)
                ),
                "packets/s in / out",
                "",
            );
            card(
                h,
                &format!(
                    "{} / {}",
                    bytes_rate(r.in_bytes_per_second),
                    bytes_rate(r.out_bytes_per_second)
                ),
                "bytes/s in / out",
                "",
            );
        }
        let worst = services
            .iter()
            .filter_map(|s| imbalance(&s.destinations).map(|r| (r, *s)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match worst {
            Some((r, s)) => card(
                h,
                &format!("{r:.2}×"),
                &format!("worst imbalance ({})", escape(&service_name(s, &input.cfg))),
                imbalance_class(r),
            ),
            None => card(h, "–", "imbalance (no connections)", "mute"),
        }
        let _ = write!(
            h,
            "</div><p class=\"note\">IPVS read through {} in {:.1} ms.",
            s.source.as_str(),
            took.as_secs_f64() * 1000.0
        );
        if s.source == SnapshotSource::Procfs {
            h.push_str(
                " The procfs source has no per-service or per-destination rates: those columns show –.",
            );
        }
        h.push_str("</p></section>\n");
    } else {
        h.push_str("</div></section>\n");
    }
}

/// Imbalance above 1.5 is worth a look, above 2 a problem (a destination carries twice its
/// weighted share).
fn imbalance_class(r: f64) -> &'static str {
    if r >= 2.0 {
        "bad"
    } else if r >= 1.5 {
        "warn"
    } else {
        ""
    }
}

fn phase_badge(p: GroupPhase) -> String {
    let class = match p {
        GroupPhase::Announced => "ok",
        GroupPhase::AnnouncedDown => "warn",
        GroupPhase::Draining | GroupPhase::Drained => "info",
        GroupPhase::Withdrawn => "bad",
    };
    format!("<span class=\"badge {class}\">{}</span>", p.as_str())
}

fn drain_name(d: DrainSource) -> &'static str {
    match d {
        DrainSource::Admin => "admin",
        DrainSource::MaintenanceFile => "maintenance file",
        DrainSource::Shutdown => "shutdown",
        DrainSource::CorruptState => "unreadable state file",
    }
}

fn groups(h: &mut String, input: &Input) {
    h.push_str("<section id=\"groups\"><h2>VIP groups</h2>");
    let r = match &input.announcer {
        Announcer::NotConfigured => {
            h.push_str("<p class=\"mute\">The announcer is not configured: no VIP groups, no BGP.</p></section>\n");
            return;
        }
        Announcer::NoAnswer => {
            h.push_str("<p class=\"err\">The announcer did not answer within the scrape timeout.</p></section>\n");
            return;
        }
        Announcer::Report(r) => r,
    };
    if r.groups.is_empty() {
        h.push_str("<p class=\"mute\">No VIP groups are configured.</p></section>\n");
        return;
    }
    h.push_str(
        "<table><thead><tr><th>Group</th><th>VIPs</th><th>Phase</th><th>Health</th>\
<th>Pools: healthy / configured, thresholds</th><th>Drained by</th><th>Last transition</th></tr></thead><tbody>\n",
    );
    for g in &r.groups {
        group_row(h, g, input.now);
    }
    h.push_str("</tbody></table></section>\n");
}

fn group_row(h: &mut String, g: &GroupReport, now: f64) {
    let _ = write!(h, "<tr><td><b>{}</b>", esc_short(&g.name));
    if !g.reasons.is_empty() {
        h.push_str("<ul class=\"reasons\">");
        for r in g.reasons.iter().take(10) {
            let _ = write!(h, "<li>{}</li>", esc_short(r));
        }
        h.push_str("</ul>");
    }
    let vips: Vec<String> = g.vips.iter().map(|v| esc_short(v)).collect();
    let health = match g.health.as_str() {
        "up" => "ok",
        "down" => "bad",
        _ => "mute",
    };
    let _ = write!(
        h,
        "</td><td><code>{}</code></td><td>{}</td><td><span class=\"badge {health}\">{}</span></td><td>",
        vips.join("<br>"),
        phase_badge(g.phase),
        esc_short(&g.health)
    );
    if g.services.is_empty() {
        h.push_str("<span class=\"mute\">no services</span>");
    } else {
        h.push_str("<div class=\"pools\">");
    }
    for s in &g.services {
        let class = if s.up { "ok" } else { "bad" };
        let width = if s.configured == 0 {
            0
        } else {
            (u64::from(s.healthy.min(s.configured)) * 100 / u64::from(s.configured)) as u32
        };
        let state = if !s.present {
            "<span class=\"badge bad\">not in IPVS</span>".to_string()
        } else {
            format!(
                "<span class=\"badge {class}\">{}</span>",
                if s.up { "up" } else { "down" }
            )
        };
        let _ = write!(
            h,
            "<code>{}</code><span class=\"bar\"><i class=\"{class}\" style=\"width:{width}%\"></i></span>\
<span>{}/{}</span><span class=\"mute\">down &lt; {} · up ≥ {}</span>{state}",
            esc_short(&s.service),
            s.healthy,
            s.configured,
            s.down_threshold,
            s.up_threshold,
        );
    }
    if !g.services.is_empty() {
        h.push_str("</div>");
    }
    h.push_str("</td><td>");
    if g.drained_by.is_empty() {
        h.push_str("<span class=\"mute\">–</span>");
    } else {
        let by: Vec<&str> = g.drained_by.iter().map(|d| drain_name(*d)).collect();
        let _ = write!(h, "<span class=\"badge info\">{}</span>", by.join(", "));
    }
    h.push_str("</td><td class=\"when\">");
    match &g.last_transition {
        None => h.push_str("<span class=\"mute\">none since start</span>"),
        Some(t) => {
            let _ = write!(
                h,
                "{} → {} <span class=\"mute\">{} ago</span><br><span class=\"mute\">{}</span>",
                t.from.as_str(),
                t.to.as_str(),
                span(now - t.at),
                esc_short(&t.reason)
            );
        }
    }
    h.push_str("</td></tr>\n");
}

fn peers(h: &mut String, announcer: &Announcer) {
    let Announcer::Report(r) = announcer else {
        return;
    };
    h.push_str("<section id=\"peers\"><h2>BGP sessions</h2>");
    if r.peers.is_empty() {
        h.push_str("<p class=\"mute\">No BGP peers (the kernel route backend).</p></section>\n");
        return;
    }
    h.push_str(
        "<table><thead><tr><th>Peer</th><th>Address</th><th>State</th><th class=\"n\">Uptime</th>\
<th class=\"n\">Prefixes sent</th><th>BFD</th><th>Last error</th></tr></thead><tbody>\n",
    );
    for p in &r.peers {
        peer_row(h, p);
    }
    h.push_str("</tbody></table></section>\n");
}

fn peer_row(h: &mut String, p: &PeerReport) {
    let class = if p.state == "established" {
        "ok"
    } else {
        "bad"
    };
    let _ = writeln!(
        h,
        "<tr><td><b>{}</b></td><td><code>{}</code></td><td><span class=\"badge {class}\">{}</span></td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
        esc_short(&p.name),
        esc_short(&p.address),
        esc_short(&p.state),
        p.uptime_seconds.map(span).unwrap_or_else(|| "–".into()),
        p.prefixes_sent,
        bfd_cell(p),
        p.last_error
            .as_deref()
            .map(esc_short)
            .unwrap_or_else(|| "<span class=\"mute\">–</span>".into()),
    );
}

/// The BFD column: our state and the peer's, and once the peer was heard the negotiated
/// transmit interval and detection time; the diagnostic of the last change when it says why
/// the session went down (what an operator looks for after a flap).
fn bfd_cell(p: &PeerReport) -> String {
    let Some(b) = &p.bfd_session else {
        return p
            .bfd
            .as_deref()
            .map(esc_short)
            .unwrap_or_else(|| "–".into());
    };
    let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
    let mut c = format!(
        "{} <span class=\"mute\">(peer {})</span>",
        esc_short(&b.state),
        esc_short(&b.remote_state)
    );
    if b.tx_interval_seconds > 0.0 {
        let _ = write!(
            c,
            "<br><small>tx {} · detect {}</small>",
            ms(b.tx_interval_seconds),
            ms(b.detection_time_seconds)
        );
    }
    if b.diagnostic != "none" {
        let _ = write!(c, "<br><small>{}</small>", esc_short(&b.diagnostic));
    }
    c
}

/// `v` when the snapshot carries rates, a dash otherwise.
fn rate(s: &Snapshot, v: String) -> String {
    if s.source == SnapshotSource::Procfs {
        "<span class=\"mute\">–</span>".into()
    } else {
        v
    }
}

fn busiest_services(h: &mut String, snap: &Snapshot, services: &[&Service], cfg: &Config) {
    let conns = |s: &Service| {
        s.destinations.iter().fold((0u32, 0u32), |(a, i), d| {
            (
                a.saturating_add(d.active_conns),
                i.saturating_add(d.inactive_conns),
            )
        })
    };
    let rows = top(services.to_vec(), TOP_N, |s| {
        let (a, i) = conns(s);
        busy(&s.stats.rates, a, i)
    });
    let _ = write!(
        h,
        "<section id=\"services\"><h2>Busiest services <small>{} of {}</small></h2>",
        rows.len(),
        services.len()
    );
    if rows.is_empty() {
        h.push_str("<p class=\"mute\">No IPVS services.</p></section>\n");
        return;
    }
    h.push_str(
        "<table><thead><tr><th>Service</th><th>Scheduler</th><th class=\"n\">Destinations</th>\
<th class=\"n\">Active</th><th class=\"n\">Inactive</th><th class=\"n\">Conn/s</th><th class=\"n\">Packets/s in / out</th>\
<th class=\"n\">Bytes/s in / out</th><th class=\"n\">Imbalance</th></tr></thead><tbody>\n",
    );
    for s in rows {
        let (a, i) = conns(s);
        let r = &s.stats.rates;
        let usable = s.destinations.iter().filter(|d| d.weight > 0).count();
        let imb = match imbalance(&s.destinations) {
            Some(x) => format!(
                "<span class=\"badge {}\">{x:.2}×</span>",
                imbalance_class(x)
            ),
            None => "<span class=\"mute\">–</span>".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{usable}/{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{imb}</td></tr>",
            escape(&service_name(s, cfg)),
            esc_short(&s.scheduler),
            s.destinations.len(),
            si(u64::from(a)),
            si(u64::from(i)),
            rate(snap, si(r.conns_per_second)),
            rate(
                snap,
                format!(
                    "{} / {}",
                    si(r.in_packets_per_second),
                    si(r.out_packets_per_second)
                )
            ),
            rate(
                snap,
                format!(
                    "{} / {}",
                    bytes_rate(r.in_bytes_per_second),
                    bytes_rate(r.out_bytes_per_second)
                )
            ),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn busiest_destinations(h: &mut String, snap: &Snapshot, services: &[&Service], cfg: &Config) {
    let all: Vec<(&Service, &Destination)> = services
        .iter()
        .flat_map(|s| s.destinations.iter().map(move |d| (*s, d)))
        .collect();
    let total = all.len();
    let rows = top(all, TOP_N, |(_, d)| {
        busy(&d.stats.rates, d.active_conns, d.inactive_conns)
    });
    let _ = write!(
        h,
        "<section id=\"destinations\"><h2>Busiest destinations <small>{} of {total}</small></h2>",
        rows.len()
    );
    if rows.is_empty() {
        h.push_str("<p class=\"mute\">No destinations.</p></section>\n");
        return;
    }
    h.push_str(
        "<table><thead><tr><th>Destination</th><th>Service</th><th>Forward</th><th class=\"n\">Weight</th>\
<th class=\"n\">Active</th><th class=\"n\">Inactive</th><th class=\"n\">Conn/s</th><th class=\"n\">Packets/s in / out</th>\
<th class=\"n\">Bytes/s in / out</th></tr></thead><tbody>\n",
    );
    for (s, d) in rows {
        let r = &d.stats.rates;
        let weight = if d.weight > 0 {
            d.weight.to_string()
        } else {
            format!("<span class=\"badge warn\">{} (drained)</span>", d.weight)
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td class=\"n\">{weight}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&dest_name(d)),
            escape(&service_name(s, cfg)),
            d.forward.as_str(),
            si(u64::from(d.active_conns)),
            si(u64::from(d.inactive_conns)),
            rate(snap, si(r.conns_per_second)),
            rate(
                snap,
                format!(
                    "{} / {}",
                    si(r.in_packets_per_second),
                    si(r.out_packets_per_second)
                )
            ),
            rate(
                snap,
                format!(
                    "{} / {}",
                    bytes_rate(r.in_bytes_per_second),
                    bytes_rate(r.out_bytes_per_second)
                )
            ),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use herald_shared::status::{ServiceReport, Transition};

    fn report(name: &str) -> StatusReport {
        StatusReport {
            schema: herald_shared::status::SCHEMA_VERSION,
            generated_at: 1_000.0,
            groups: vec![GroupReport {
                name: name.into(),
                vips: vec!["192.0.2.10/32".into()],
                phase: GroupPhase::Draining,
                health: "up".into(),
                last_transition: Some(Transition {
                    from: GroupPhase::Announced,
                    to: GroupPhase::Draining,
                    at: 940.0,
                    reason: "drained by <admin>".into(),
                }),
                drained_by: vec![DrainSource::Admin],
                reasons: vec!["drain & wait".into()],
                services: vec![ServiceReport {
                    service: "tcp/192.0.2.10:80".into(),
                    present: true,
                    healthy: 2,
                    configured: 3,
                    down_threshold: 1,
                    up_threshold: 2,
                    up: true,
                }],
            }],
            peers: vec![PeerReport {
                name: "r1\"><script>".into(),
                address: "192.0.2.1".into(),
                state: "established".into(),
                uptime_seconds: Some(3725.0),
                prefixes_sent: 1,
                last_error: Some("x".repeat(1000)),
                bfd: None,
                bfd_session: None,
                initial_table_held: None,
            }],
        }
    }

    fn input(announcer: Announcer, snapshot: Option<Snapshot>) -> Input {
        Input {
            ipvs: match snapshot {
                Some(s) => Ipvs::Read(s, Duration::from_millis(3)),
                None => Ipvs::Failed("module <ip_vs> not loaded".into()),
            },
            announcer,
            refresh: Some(DEFAULT_REFRESH),
            now: 1_000.0,
            cfg: Config::default(),
        }
    }

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn hostile_names_and_errors_are_escaped_and_bounded() {
        let page = render(&input(
            Announcer::Report(report("<img src=x onerror=alert(1)>")),
            None,
        ));
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("r1&quot;&gt;&lt;script&gt;"));
        assert!(page.contains("drained by &lt;admin&gt;"));
        assert!(page.contains("drain &amp; wait"));
        assert!(page.contains("Cannot read IPVS: module &lt;ip_vs&gt; not loaded"));
        // The 1000-character error is cut to MAX_TEXT.
        assert!(page.contains(&format!("{}…", "x".repeat(MAX_TEXT))));
        assert!(!page.contains(&"x".repeat(MAX_TEXT + 1)));
    }

    #[test]
    fn bfd_shows_both_states_the_timing_and_why_it_went_down() {
        use herald_shared::status::BfdReport;
        let mut r = report("web");
        r.peers[0].bfd = Some("up".into());
        r.peers[0].bfd_session = Some(BfdReport {
            state: "up".into(),
            remote_state: "up".into(),
            tx_interval_seconds: 0.3,
            detection_time_seconds: 0.9,
            diagnostic: "none".into(),
        });
        let page = render(&input(Announcer::Report(r.clone()), None));
        assert!(
            page.contains("up <span class=\"mute\">(peer up)</span><br><small>tx 300 ms · detect 900 ms</small></td>"),
            "{page}"
        );
        r.peers[0].bfd_session = Some(BfdReport {
            state: "down".into(),
            remote_state: "down".into(),
            tx_interval_seconds: 0.0,
            detection_time_seconds: 0.0,
            diagnostic: "control_detection_time_expired".into(),
        });
        let page = render(&input(Announcer::Report(r), None));
        assert!(
            page.contains("down <span class=\"mute\">(peer down)</span><br><small>control_detection_time_expired</small></td>"),
            "{page}"
        );
    }

    #[test]
    fn groups_peers_and_drains_are_shown() {
        let page = render(&input(Announcer::Report(report("web")), None));
        assert!(page.contains(">draining</span>"));
        assert!(page.contains("<span>2/3</span>"));
        assert!(page.contains("down &lt; 1 · up ≥ 2"));
        assert!(page.contains(">admin</span>"));
        assert!(page.contains("announced → draining"));
        assert!(page.contains("1m 0s ago"));
        assert!(page.contains(">established</span>"));
        assert!(page.contains("1h 2m"));
        // Draining routes are still out there.
        assert!(page.contains("1/1</b><span>VIP groups announced"), "{page}");
    }

    #[test]
    fn announcer_off_or_silent_is_said() {
        let off = render(&input(Announcer::NotConfigured, None));
        assert!(off.contains("The announcer is not configured"));
        assert!(!off.contains("BGP sessions</h2>"));
        let silent = render(&input(Announcer::NoAnswer, None));
        assert!(silent.contains("did not answer"));
    }

    #[test]
    fn tables_are_capped_and_sorted_by_rate() {
        let snap = crate::fixture::rich_snapshot();
        let mut big = snap.clone();
        let template = snap.services.first().unwrap().clone();
        big.services = (0..5000u32)
            .map(|i| {
                let mut s = template.clone();
                s.key = herald_shared::model::ServiceKey::Fwmark {
                    family: herald_shared::model::AddressFamily::Inet,
                    mark: i + 1,
                };
                s.stats.rates.conns_per_second = u64::from(i);
                s
            })
            .collect();
        let page = render(&input(Announcer::NotConfigured, Some(big)));
        assert!(page.contains("Busiest services <small>20 of 5000</small>"));
        let first = page.find("fwmark/5000<").unwrap();
        let second = page.find("fwmark/4999<").unwrap();
        assert!(first < second, "busiest first");
        assert!(!page.contains("fwmark/4980<"), "only the top 20");
        assert!(page.len() < 64 * 1024, "page of {} bytes", page.len());
    }

    #[test]
    fn rates_of_the_fixture_are_rendered() {
        let snap = crate::fixture::rich_snapshot();
        let page = render(&input(Announcer::NotConfigured, Some(snap.clone())));
        let g = &snap.global.as_ref().unwrap().rates;
        assert!(page.contains(&format!(
            "<b class=\"\">{}</b><span>connections/s",
            si(g.conns_per_second)
        )));
        assert!(page.contains("Busiest destinations"));
        assert!(
            !page.contains("http://") && !page.contains("https://") && !page.contains("<script")
        );
    }

    /// A source that counts its reads and takes `delay` for each.
    struct Counting {
        reads: std::sync::atomic::AtomicU32,
        delay: Duration,
    }

    impl IpvsSource for Counting {
        fn snapshot(&self) -> Result<Snapshot, herald_shared::reader::ReadError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(self.delay);
            Ok(crate::fixture::rich_snapshot())
        }

        fn conn_table(
            &self,
            _: &herald_shared::conntable::ConnTableLimits,
        ) -> Result<herald_shared::conntable::ConnTableSummary, herald_shared::reader::ReadError>
        {
            panic!("the status page must not read the connection table");
        }
    }

    fn counting(delay: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            reads: Default::default(),
            delay,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_read_per_load_under_a_scrape_slot_and_the_deadline() {
        let cfg = Config::default();
        let source = counting(Duration::ZERO);
        let report = report("web");
        let page = StatusPage::new(source.clone()).with_announcer(Arc::new(move || {
            let r = report.clone();
            async move { Some(r) }
        }));
        let slots = Arc::new(Semaphore::new(1));
        let html = page
            .render(&cfg, &slots, Duration::from_secs(5), Some("refresh=7"))
            .await
            .unwrap();
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(html.contains("content=\"7\""));
        assert!(html.contains(">draining</span>"));
        assert!(html.contains("Busiest services"));
        assert_eq!(slots.available_permits(), 1, "the slot is given back");

        // No slot free within the timeout: 503 text, no read.
        let busy = Arc::new(Semaphore::new(0));
        let e = page
            .render(&cfg, &busy, Duration::from_millis(50), None)
            .await
            .unwrap_err();
        assert!(e.contains("too many concurrent scrapes"));
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_read_or_a_silent_announcer_ends_at_the_deadline() {
        let source = counting(Duration::from_secs(2));
        let page = StatusPage::new(source.clone()).with_announcer(Arc::new(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            None
        }));
        let slots = Arc::new(Semaphore::new(1));
        let t0 = Instant::now();
        let html = page
            .render(&Config::default(), &slots, Duration::from_millis(200), None)
            .await
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert!(
            html.contains("longer than the scrape timeout (0.200s)"),
            "{html}"
        );
        assert!(html.contains("did not answer within the scrape timeout"));
    }

    #[test]
    fn refresh_comes_from_the_query() {
        assert_eq!(refresh_from_query(None), Some(DEFAULT_REFRESH));
        assert_eq!(
            refresh_from_query(Some("a=1&refresh=12")),
            Some(Duration::from_secs(12))
        );
        assert_eq!(refresh_from_query(Some("refresh=0")), None);
        assert_eq!(
            refresh_from_query(Some("refresh=999999")),
            Some(Duration::from_secs(MAX_REFRESH_SECS))
        );
        assert_eq!(refresh_from_query(Some("refresh=x")), Some(DEFAULT_REFRESH));
        let page = render(&Input {
            refresh: None,
            ..input(Announcer::NotConfigured, None)
        });
        assert!(!page.contains("http-equiv"));
    }

    #[test]
    fn formats() {
        assert_eq!(si(999), "999");
        assert_eq!(si(1_234), "1.23k");
        assert_eq!(si(12_345_678), "12.3M");
        assert_eq!(bytes_rate(2_000_000), "2.00\u{a0}MB/s");
        assert_eq!(bytes_rate(999), "999\u{a0}B/s");
        assert_eq!(span(59.0), "59s");
        assert_eq!(span(90_000.0), "1d 1h");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_761_600.0), "2027-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
    }
}
