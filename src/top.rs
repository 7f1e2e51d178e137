//! `ipvs-herald top`: a full-screen, refreshing view of the IPVS services and destinations
//! (connections, kernel rate estimates, weights, forwarding methods, schedulers) beside the VIP
//! groups' phases from the running daemon — `watch ipvsadm -Ln --rate`, readable.
//!
//! IPVS is read with the same reader and options as `dump` (configuration file, `[reader]`,
//! `--netns`, `--source`) on a thread of its own, so a slow read never freezes the screen: the
//! view keeps the last good table and shows the read's error in its status line. The daemon's
//! status comes from its admin socket on another thread; without a daemon the view still works.

use crate::config::Config;
use crate::dump::SourceArg;
use herald_shared::model::{Snapshot, SnapshotSource};
use herald_shared::reader::Reader;
use herald_shared::status::StatusReport;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{execute, terminal};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

/// Arguments of `ipvs-herald top`.
// clap prints the field docs as `--help` text: `[reader]` is a TOML section, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Time between two reads of the IPVS state (`500ms`, `2s`); the kernel folds its rate
    /// estimates about every 2 s.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Read this network namespace (a name under /run/netns or a path such as
    /// /proc/PID/ns/net) instead of the configured one.
    #[arg(long, value_name = "NETNS")]
    pub netns: Option<String>,
    /// Where to read IPVS state from (overrides [reader] source).
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub source: Option<SourceArg>,
    /// The daemon's admin socket, for the VIP groups' phases (default:
    /// `announcer.admin_socket` from the configuration). Without a daemon the groups show as
    /// unavailable.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!("{s} is not between 100ms and 1h"));
    }
    Ok(d)
}

/// `top` was started with standard output not on a terminal (exit status 64).
#[derive(Debug, thiserror::Error)]
#[error("top needs a terminal on standard output (use `ipvs-herald dump` in scripts and pipes)")]
pub struct NotATerminal;

/// Bound on one `status` request to the daemon.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the UI looks for keys and signals.
const TICK: Duration = Duration::from_millis(100);

/// What the reading threads send to the UI.
enum Update {
    Ipvs(Result<(Snapshot, Duration), String>),
    Status(Result<Groups, String>),
}

/// The VIP groups as the daemon reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// One line per group: name, phase, health, drains.
    pub rows: Vec<GroupRow>,
    /// Service label (`TCP 192.0.2.10:80`) → group name, for the table's group column.
    pub services: Vec<(String, String)>,
}

/// One VIP group's state.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub name: String,
    pub phase: String,
    pub detail: String,
}

impl Groups {
    /// From the announcer's status report.
    pub fn from_report(r: &StatusReport) -> Groups {
        let mut services = Vec::new();
        let rows = r
            .groups
            .iter()
            .map(|g| {
                let mut detail = vec![format!("health {}", g.health)];
                if !g.drained_by.is_empty() {
                    let by: Vec<&str> = g.drained_by.iter().map(|d| d.as_str()).collect();
                    detail.push(format!("drained by {}", by.join(",")));
                }
                for s in &g.services {
                    services.push((s.service.clone(), g.name.clone()));
                    detail.push(format!(
                        "{} {}/{} (down<{} up>={})",
                        s.service, s.healthy, s.configured, s.down_threshold, s.up_threshold
                    ));
                }
                detail.extend(g.reasons.iter().cloned());
                if let Some(t) = &g.last_transition {
                    detail.push(format!("last change: {} ({})", t.to.as_str(), t.reason));
                }
                GroupRow {
                    name: g.name.clone(),
                    phase: g.phase.as_str().to_string(),
                    detail: detail.join("  "),
                }
            })
            .collect();
        Groups { rows, services }
    }
}

/// Ask the daemon for its status, bounded by [`STATUS_TIMEOUT`].
fn fetch_status(rt: &tokio::runtime::Runtime, socket: &std::path::Path) -> Result<Groups, String> {
    use herald_announcer::admin::{self, Request};
    let reply = rt
        .block_on(async {
            tokio::time::timeout(STATUS_TIMEOUT, admin::request(socket, &Request::Status)).await
        })
        .map_err(|_| format!("no reply from {} within 1s", socket.display()))?
        .map_err(|e| match e {
            admin::AdminError::Connect { .. } => format!("no daemon at {}", socket.display()),
            e => e.to_string(),
        })?;
    // A daemon of another version (no report, another schema) is named as such.
    let report = reply.into_report().map_err(|e| e.to_string())?;
    Ok(Groups::from_report(&report))
}

/// The sort column, cycled by `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Active + inactive connections, most first.
    Connections,
    /// Connections per second, most first.
    ConnRate,
    /// Bytes per second in + out, most first.
    ByteRate,
    /// Service / destination address, lowest first.
    Address,
}

impl SortBy {
    fn next(self) -> SortBy {
        match self {
            SortBy::Connections => SortBy::ConnRate,
            SortBy::ConnRate => SortBy::ByteRate,
            SortBy::ByteRate => SortBy::Address,
            SortBy::Address => SortBy::Connections,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortBy::Connections => "connections",
            SortBy::ConnRate => "conn/s",
            SortBy::ByteRate => "bytes/s",
            SortBy::Address => "address",
        }
    }
}

/// One line of the table: a service or one of its destinations.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Service label (`TCP  192.0.2.1:80`) or `  -> 198.51.100.1:80`.
    pub name: String,
    pub is_service: bool,
    /// Scheduler (services) or forwarding method (destinations).
    pub method: String,
    /// Destinations only.
    pub weight: Option<i32>,
    pub active: u64,
    pub inactive: u64,
    /// `None` when the source has no per-row rates (procfs).
    pub rates: Option<[u64; 5]>,
    /// The VIP group the service belongs to, when the daemon says.
    pub group: String,
}

fn addr_port(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn sort_key(r: &TableRow, by: SortBy) -> (u64, String) {
    let rate = |i: usize| r.rates.map_or(0, |x| x[i]);
    match by {
        SortBy::Connections => (r.active + r.inactive, String::new()),
        SortBy::ConnRate => (rate(0), String::new()),
        SortBy::ByteRate => (rate(3).saturating_add(rate(4)), String::new()),
        SortBy::Address => (0, r.name.clone()),
    }
}

/// Order `a` before `b` for `by` (numbers most first, addresses lowest first), reversed when
/// asked; ties keep the address order.
fn compare(a: &TableRow, b: &TableRow, by: SortBy, reverse: bool) -> std::cmp::Ordering {
    let (ka, kb) = (sort_key(a, by), sort_key(b, by));
    let ord = kb.0.cmp(&ka.0).then_with(|| ka.1.cmp(&kb.1));
    let ord = if reverse { ord.reverse() } else { ord };
    ord.then_with(|| a.name.cmp(&b.name))
}

/// The table's lines for `snap`: services in sort order, each followed by its destinations in
/// sort order; with a filter, the services whose text matches (with all their destinations)
/// and the destinations that match (under their service).
pub fn table_rows(
    snap: &Snapshot,
    groups: Option<&Groups>,
    by: SortBy,
    reverse: bool,
    filter: &str,
) -> Vec<TableRow> {
    let per_row_stats = snap.source == SnapshotSource::Netlink;
    let filter = filter.to_lowercase();
    let rates = |s: &herald_shared::model::Stats| {
        per_row_stats.then_some([
            s.rates.conns_per_second,
            s.rates.in_packets_per_second,
            s.rates.out_packets_per_second,
            s.rates.in_bytes_per_second,
            s.rates.out_bytes_per_second,
        ])
    };
    let mut blocks: Vec<(TableRow, Vec<TableRow>)> = Vec::new();
    for s in &snap.services {
        let label = s.key.to_string();
        // The report names services as `ServiceKey`'s display does.
        let group = groups
            .and_then(|g| g.services.iter().find(|(svc, _)| *svc == label))
            .map(|(_, g)| g.clone())
            .unwrap_or_default();
        let mut dests: Vec<TableRow> = s
            .destinations
            .iter()
            .map(|d| TableRow {
                name: format!("  -> {}", addr_port(&d.address, d.port)),
                is_service: false,
                method: d.forward.ipvsadm_name().to_string(),
                weight: Some(d.weight),
                active: d.active_conns.into(),
                inactive: d.inactive_conns.into(),
                rates: rates(&d.stats),
                group: String::new(),
            })
            .collect();
        let service = TableRow {
            name: label.clone(),
            is_service: true,
            method: s.scheduler.clone(),
            weight: None,
            active: dests.iter().map(|d| d.active).sum(),
            inactive: dests.iter().map(|d| d.inactive).sum(),
            rates: rates(&s.stats),
            group,
        };
        if !filter.is_empty() && !label.to_lowercase().contains(&filter) {
            dests.retain(|d| d.name.to_lowercase().contains(&filter));
            if dests.is_empty() {
                continue;
            }
        }
        dests.sort_by(|a, b| compare(a, b, by, reverse));
        blocks.push((service, dests));
    }
    blocks.sort_by(|a, b| compare(&a.0, &b.0, by, reverse));
    blocks
        .into_iter()
        .flat_map(|(s, d)| std::iter::once(s).chain(d))
        .collect()
}

/// A rate with an SI suffix past 9999 (`12.3k`, `1.0M`), so the columns stay narrow.
fn si(v: u64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    if v < 10_000 {
        return v.to_string();
    }
    let mut f = v as f64;
    let mut u = 0;
    while f >= 1000.0 && u + 1 < UNITS.len() {
        f /= 1000.0;
        u += 1;
    }
    format!("{f:.1}{}", UNITS[u])
}

/// What the screen shows: the last data and the UI state.
struct App {
    args_interval: Duration,
    where_: String,
    snapshot: Option<Snapshot>,
    read_at: Option<SystemTime>,
    read_took: Duration,
    read_error: Option<String>,
    groups: Result<Groups, String>,
    sort: SortBy,
    reverse: bool,
    filter: String,
    editing: Option<String>,
    scroll: usize,
    help: bool,
}

impl App {
    fn rows(&self) -> Vec<TableRow> {
        match &self.snapshot {
            Some(s) => table_rows(
                s,
                self.groups.as_ref().ok(),
                self.sort,
                self.reverse,
                &self.filter,
            ),
            None => Vec::new(),
        }
    }

    /// Handle one key; `false` to quit.
    fn key(&mut self, code: KeyCode, mods: KeyModifiers, page: usize) -> bool {
        if let Some(text) = &mut self.editing {
            match code {
                KeyCode::Enter => {
                    self.filter = std::mem::take(text);
                    self.editing = None;
                    self.scroll = 0;
                }
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing = None;
                    self.scroll = 0;
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return true;
        }
        if self.help {
            self.help = false;
            return !matches!(code, KeyCode::Char('q'));
        }
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => return false,
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.scroll = 0;
            }
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('/') => self.editing = Some(self.filter.clone()),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down => self.scroll = self.scroll.saturating_add(1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(page.max(1)),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(page.max(1)),
            KeyCode::Home => self.scroll = 0,
            _ => {}
        }
        true
    }

    fn draw(&mut self, f: &mut ratatui::Frame) {
        let group_lines = match &self.groups {
            Ok(g) if g.rows.is_empty() => 1,
            Ok(g) => g.rows.len().min(8),
            Err(_) => 1,
        } as u16;
        let [head, groups, table, status] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(group_lines + 2),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(f.area());

        // Header: where, source, totals.
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let source = self
            .snapshot
            .as_ref()
            .map_or("-", |s| s.source.as_str())
            .to_string();
        let totals = match self.snapshot.as_ref().and_then(|s| s.global) {
            Some(g) => format!(
                "Total  conns {}  conn/s {}  pkt/s in {} out {}  bytes/s in {} out {}",
                g.counters.conns,
                si(g.rates.conns_per_second),
                si(g.rates.in_packets_per_second),
                si(g.rates.out_packets_per_second),
                si(g.rates.in_bytes_per_second),
                si(g.rates.out_bytes_per_second),
            ),
            None => "Total  (no /proc/net/ip_vs_stats)".to_string(),
        };
        let services = self.snapshot.as_ref().map_or(0, |s| s.services.len());
        f.render_widget(
            Paragraph::new(vec![
                Line::from(vec![
                    Span::styled("ipvs-herald top", bold),
                    Span::raw(format!(
                        "  {}  source {source}  every {}  {services} services  (? help, q quit)",
                        self.where_,
                        humantime::format_duration(self.args_interval)
                    )),
                ]),
                Line::from(totals),
            ]),
            head,
        );

        // VIP groups.
        let lines: Vec<Line> = match &self.groups {
            Ok(g) if g.rows.is_empty() => vec![Line::from("no VIP groups configured")],
            Ok(g) => g
                .rows
                .iter()
                .map(|r| {
                    Line::from(vec![
                        Span::styled(format!("{:<20} ", r.name), bold),
                        Span::raw(format!("{:<15} {}", r.phase, r.detail)),
                    ])
                })
                .collect(),
            Err(e) => vec![Line::from(format!("unavailable: {e}"))],
        };
        f.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title("VIP groups")),
            groups,
        );

        // The table.
        let rows = self.rows();
        let page = usize::from(table.height.saturating_sub(3));
        self.scroll = self.scroll.min(rows.len().saturating_sub(page.max(1)));
        let dash = |o: Option<u64>| o.map_or("-".to_string(), si);
        let body: Vec<Row> = rows
            .iter()
            .skip(self.scroll)
            .take(page)
            .map(|r| {
                let rate = |i: usize| dash(r.rates.map(|x| x[i]));
                // Numbers right-aligned, so magnitudes line up.
                let num = |t: String| Cell::from(Text::from(t).alignment(Alignment::Right));
                let row = Row::new(vec![
                    Cell::from(r.name.clone()),
                    Cell::from(r.method.clone()),
                    num(r.weight.map_or(String::new(), |w| w.to_string())),
                    num(r.active.to_string()),
                    num(r.inactive.to_string()),
                    num(rate(0)),
                    num(rate(1)),
                    num(rate(2)),
                    num(rate(3)),
                    num(rate(4)),
                    Cell::from(r.group.clone()),
                ]);
                if r.is_service {
                    row.style(bold)
                } else {
                    row
                }
            })
            .collect();
        let arrow = if self.reverse { "↑" } else { "↓" };
        let title = format!(
            "Services  sort: {} {arrow}{}  rows {}-{} of {}",
            self.sort.name(),
            if self.filter.is_empty() {
                String::new()
            } else {
                format!("  filter: {}", self.filter)
            },
            if rows.is_empty() { 0 } else { self.scroll + 1 },
            (self.scroll + page).min(rows.len()),
            rows.len()
        );
        let right = |t: &'static str| Cell::from(Text::from(t).alignment(Alignment::Right));
        let header = Row::new(vec![
            Cell::from("Service / -> Destination"),
            Cell::from("Sched/Fwd"),
            right("Weight"),
            right("ActConn"),
            right("InActConn"),
            right("Conn/s"),
            right("InPkt/s"),
            right("OutPkt/s"),
            right("InBytes/s"),
            right("OutBytes/s"),
            Cell::from("Group"),
        ])
        .style(Style::default().add_modifier(Modifier::REVERSED));
        let widths = [
            Constraint::Length(46),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Min(8),
        ];
        f.render_widget(
            Table::new(body, widths)
                .header(header)
                .block(Block::default().borders(Borders::ALL).title(title)),
            table,
        );

        // Status line: the filter being typed, or the last read.
        let line = if let Some(text) = &self.editing {
            format!("filter: {text}_   (Enter applies, Esc clears)")
        } else {
            let at = self
                .read_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_else(|| "never".into());
            let mut l = match &self.read_error {
                Some(e) => format!("last read FAILED: {e} (showing the read of {at})"),
                None => format!("last read {at} took {} ms", self.read_took.as_millis()),
            };
            if self.snapshot.as_ref().map(|s| s.source) == Some(SnapshotSource::Procfs) {
                l.push_str("  procfs: no per-service rates (-)");
            }
            l
        };
        let style = if self.read_error.is_some() {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        f.render_widget(Paragraph::new(line).style(style), status);

        if self.help {
            let area = centered(f.area(), 66, 13);
            f.render_widget(Clear, area);
            f.render_widget(
                Paragraph::new(HELP).block(Block::default().borders(Borders::ALL).title("Keys")),
                area,
            );
        }
    }
}

const HELP: &str = "\
q, Esc          quit
s               sort by the next column: connections, conn/s,
                bytes/s, address
r               reverse the order
/               filter on service/destination address text
                (Enter applies, Esc clears)
Up/Down         scroll a line
PgUp/PgDn/Home  scroll a page / to the top
?               this help (any key closes it)";

fn centered(r: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(r.width);
    let h = h.min(r.height);
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}

/// Puts the terminal back (main screen, cooked mode, cursor) — on quit, on error, on panic.
fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (the normal and the error paths).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// What waiting on the terminal found.
enum Input {
    /// Nothing within the tick.
    None,
    /// Bytes to read.
    Ready,
    /// The terminal hung up (or standard input is not one any more).
    Gone,
}

/// Wait up to `tick` for input on standard input, the terminal crossterm reads.
fn terminal_input(tick: Duration) -> std::io::Result<Input> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd as _;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(tick.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(0) => return Ok(Input::None),
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(Input::None),
        Err(e) => return Err(e.into()),
    }
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        || !stdin.is_terminal()
    {
        return Ok(Input::Gone);
    }
    Ok(Input::Ready)
}

pub fn run(cfg: &Config, args: &TopArgs) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        return Err(NotATerminal.into());
    }
    let mut rc = cfg.reader.clone();
    if let Some(ns) = &args.netns {
        rc.netns = Some(ns.clone());
    }
    if let Some(s) = args.source {
        rc.source = s.into();
    }
    let where_ = format!("netns {}", rc.netns.as_deref().unwrap_or("(own)"));
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| cfg.announcer.admin_socket.clone());
    let interval = args.interval;

    // Dropping `stop_tx` (when the UI ends) ends both threads at their next wait.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel::<Update>();
    let reader = Reader::new(rc);
    let ipvs_tx = tx.clone();
    std::thread::Builder::new()
        .name("top-ipvs".into())
        .spawn(move || loop {
            let start = Instant::now();
            let r = reader
                .snapshot_with_source()
                .map(|(s, _)| (s, start.elapsed()))
                .map_err(|e| e.to_string());
            if ipvs_tx.send(Update::Ipvs(r)).is_err() {
                return;
            }
            let wait = interval.saturating_sub(start.elapsed());
            if !matches!(
                stop_rx.recv_timeout(wait),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                return;
            }
        })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("top-status".into())
        .spawn(move || loop {
            let start = Instant::now();
            if tx.send(Update::Status(fetch_status(&rt, &socket))).is_err() {
                return;
            }
            std::thread::sleep(
                interval
                    .max(Duration::from_secs(1))
                    .saturating_sub(start.elapsed()),
            );
        })?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));

    terminal::enable_raw_mode()?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), terminal::EnterAlternateScreen)?;
    let mut term =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;

    let mut app = App {
        args_interval: interval,
        where_,
        snapshot: None,
        read_at: None,
        read_took: Duration::ZERO,
        read_error: None,
        groups: Err("asking the daemon…".into()),
        sort: SortBy::Connections,
        reverse: false,
        filter: String::new(),
        editing: None,
        scroll: 0,
        help: false,
    };
    let mut dirty = true;
    let mut size = term.size()?;
    'ui: while !stop.load(Ordering::Relaxed) {
        // Resizes are not key presses: look for them on every tick.
        let now = term.size()?;
        if now != size {
            size = now;
            dirty = true;
        }
        while let Ok(u) = rx.try_recv() {
            match u {
                Update::Ipvs(Ok((s, took))) => {
                    app.snapshot = Some(s);
                    app.read_at = Some(SystemTime::now());
                    app.read_took = took;
                    app.read_error = None;
                }
                Update::Ipvs(Err(e)) => app.read_error = Some(e),
                Update::Status(g) => app.groups = g,
            }
            dirty = true;
        }
        if dirty {
            term.draw(|f| app.draw(f))?;
            dirty = false;
        }
        // crossterm's poll spins forever on a hung-up terminal (its window closed, the tmux
        // server killed: reads return end of file), so wait for input here and hand it over only
        // while the terminal is alive.
        match terminal_input(TICK)? {
            Input::None => continue,
            Input::Gone => break,
            Input::Ready => {}
        }
        while event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let page = usize::from(term.size()?.height.saturating_sub(12));
                    if !app.key(k.code, k.modifiers, page) {
                        break 'ui;
                    }
                }
                _ => {}
            }
            dirty = true;
        }
    }
    drop(stop_tx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::model::{Destination, Protocol, Service, ServiceFlags, ServiceKey, Stats};

    fn svc(addr: &str, dests: &[(&str, u32, u64)]) -> Service {
        Service {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: addr.parse().unwrap(),
                port: 80,
            },
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            persistence_timeout: 0,
            netmask: u32::MAX,
            pe_name: None,
            stats: Stats::default(),
            destinations: dests
                .iter()
                .map(|(a, active, rate)| {
                    let mut d = Destination {
                        active_conns: *active,
                        ..Destination::new(a.parse().unwrap(), 80)
                    };
                    d.stats.rates.conns_per_second = *rate;
                    d
                })
                .collect(),
        }
    }

    fn snap() -> Snapshot {
        let mut a = svc(
            "192.0.2.1",
            &[("198.51.100.1", 5, 1), ("198.51.100.2", 50, 0)],
        );
        a.stats.rates.conns_per_second = 1;
        let mut b = svc("192.0.2.2", &[("198.51.100.3", 7, 9)]);
        b.stats.rates.conns_per_second = 9;
        Snapshot {
            services: vec![a, b],
            ..Snapshot::default()
        }
    }

    fn names(rows: &[TableRow]) -> Vec<&str> {
        rows.iter()
            .map(|r| r.name.trim_start_matches("  -> "))
            .collect()
    }

    #[test]
    fn sorts_services_and_their_destinations() {
        let s = snap();
        let by_conns = table_rows(&s, None, SortBy::Connections, false, "");
        assert_eq!(
            names(&by_conns),
            [
                "TCP 192.0.2.1:80",
                "198.51.100.2:80",
                "198.51.100.1:80",
                "TCP 192.0.2.2:80",
                "198.51.100.3:80"
            ]
        );
        assert_eq!((by_conns[0].active, by_conns[3].active), (55, 7));
        let by_rate = table_rows(&s, None, SortBy::ConnRate, false, "");
        assert_eq!(names(&by_rate)[0], "TCP 192.0.2.2:80");
        let reversed = table_rows(&s, None, SortBy::ConnRate, true, "");
        assert_eq!(names(&reversed)[0], "TCP 192.0.2.1:80");
        assert_eq!(names(&reversed)[1], "198.51.100.2:80");
    }

    #[test]
    fn filter_keeps_matching_services_or_destinations() {
        let s = snap();
        let rows = table_rows(&s, None, SortBy::Address, false, "100.3");
        assert_eq!(names(&rows), ["TCP 192.0.2.2:80", "198.51.100.3:80"]);
        let rows = table_rows(&s, None, SortBy::Address, false, "192.0.2.1");
        assert_eq!(names(&rows).len(), 3);
        assert!(table_rows(&s, None, SortBy::Address, false, "nothing").is_empty());
    }

    #[test]
    fn groups_from_a_status_report() {
        use herald_shared::status::{DrainSource, GroupPhase, GroupReport, ServiceReport};
        let report = StatusReport {
            schema: 1,
            generated_at: 0.0,
            groups: vec![GroupReport {
                name: "web".into(),
                vips: vec!["192.0.2.1/32".into()],
                phase: GroupPhase::Draining,
                health: "up".into(),
                last_transition: None,
                drained_by: vec![DrainSource::MaintenanceFile],
                reasons: Vec::new(),
                services: vec![ServiceReport {
                    service: "TCP 192.0.2.1:80".into(),
                    present: true,
                    healthy: 2,
                    configured: 3,
                    down_threshold: 1,
                    up_threshold: 2,
                    up: true,
                }],
            }],
            peers: Vec::new(),
        };
        let g = Groups::from_report(&report);
        assert_eq!(g.rows[0].phase, "draining");
        assert!(g.rows[0].detail.contains("drained by maintenance_file"));
        assert!(g.rows[0].detail.contains("TCP 192.0.2.1:80 2/3"));
        let rows = table_rows(&snap(), Some(&g), SortBy::Address, false, "");
        assert_eq!(rows[0].group, "web");
        assert_eq!(rows[3].group, "");
    }

    #[test]
    fn rates_get_si_suffixes_past_9999() {
        assert_eq!(si(42), "42");
        assert_eq!(si(9999), "9999");
        assert_eq!(si(12_345), "12.3k");
        assert_eq!(si(1_000_000), "1.0M");
    }

    #[test]
    fn procfs_rows_have_no_rates() {
        let mut s = snap();
        s.source = SnapshotSource::Procfs;
        let rows = table_rows(&s, None, SortBy::Address, false, "");
        assert!(rows.iter().all(|r| r.rates.is_none()));
    }

    #[test]
    fn keys_cycle_sort_and_edit_the_filter() {
        let mut app = App {
            args_interval: Duration::from_secs(1),
            where_: String::new(),
            snapshot: None,
            read_at: None,
            read_took: Duration::ZERO,
            read_error: None,
            groups: Err(String::new()),
            sort: SortBy::Connections,
            reverse: false,
            filter: String::new(),
            editing: None,
            scroll: 0,
            help: false,
        };
        let none = KeyModifiers::NONE;
        for want in [
            SortBy::ConnRate,
            SortBy::ByteRate,
            SortBy::Address,
            SortBy::Connections,
        ] {
            assert!(app.key(KeyCode::Char('s'), none, 10));
            assert_eq!(app.sort, want);
        }
        app.key(KeyCode::Char('/'), none, 10);
        app.key(KeyCode::Char('q'), none, 10);
        app.key(KeyCode::Enter, none, 10);
        assert_eq!(app.filter, "q");
        app.key(KeyCode::Char('/'), none, 10);
        app.key(KeyCode::Esc, none, 10);
        assert_eq!(app.filter, "");
        assert!(!app.key(KeyCode::Char('q'), none, 10));
    }
}
