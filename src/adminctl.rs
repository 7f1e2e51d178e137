//! `ipvs-herald drain`, `undrain`, `stop` and `status`: the client side of the daemon's admin
//! socket.

use crate::config::Config;
use herald_announcer::admin::{self, Request, Target};
use herald_shared::status::StatusReport;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to drain or undrain.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// VIP group name (as in `[[announcer.vip_groups]]`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub group: Option<String>,
    /// Every VIP group of this director.
    #[arg(long)]
    pub all: bool,
    /// Admin socket (default: `announcer.admin_socket` from the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Arguments of `ipvs-herald drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to announce with the draining attributes before withdrawing (`30s`, `2m`).
    /// Default: `announcer.drain_time`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub time: Option<Duration>,
}

/// Arguments of `ipvs-herald stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Stop for a graceful restart: keep the routes at the routers (RFC 4724) instead of
    /// draining and withdrawing.
    #[arg(long)]
    pub keep_routes: bool,
    /// Admin socket (default: `announcer.admin_socket` from the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

pub fn stop(cfg: &Config, args: &StopArgs) -> anyhow::Result<()> {
    let req = Request::Stop {
        keep_routes: args.keep_routes,
    };
    send(cfg, args.socket.as_ref(), req)
}

/// Arguments of `ipvs-herald status`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Phases of a VIP group (the same names in the logs and in ipvs_herald_vip_group_phase):
  withdrawn       not announced: the pool is down (or not yet up)
  announced_down  announced with the down attributes (down_action = \"announce\")
  announced       announced with the up attributes
  draining        announced with the draining attributes until the drain time is over
  drained         withdrawn until undrained
Drained by: admin (ipvs-herald drain), maintenance_file, shutdown, corrupt_state.
The JSON schema of --json is in docs/status-json.md.
Exit status: 0 with a report, 1 when the daemon cannot be reached, does not answer within 3 s,
or runs another version of ipvs-herald, 64 on a bad command line or configuration.")]
pub struct StatusArgs {
    /// Admin socket (default: `announcer.admin_socket` from the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the status report as JSON (schema: docs/status-json.md).
    #[arg(long)]
    pub json: bool,
}

fn target(t: &TargetArgs) -> Target {
    match &t.group {
        Some(g) if !t.all => Target::Group(g.clone()),
        _ => Target::All,
    }
}

/// The admin socket: `--socket`, else `announcer.admin_socket`.
fn socket_path(cfg: &Config, socket: Option<&PathBuf>) -> PathBuf {
    socket
        .cloned()
        .unwrap_or_else(|| cfg.announcer.admin_socket.clone())
}

fn ask(path: &Path, req: &Request) -> anyhow::Result<admin::Reply> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(admin::request(path, req))?)
}

fn send(cfg: &Config, socket: Option<&PathBuf>, req: Request) -> anyhow::Result<()> {
    let reply = ask(&socket_path(cfg, socket), &req)?;
    println!("{}", reply.message);
    if reply.ok {
        Ok(())
    } else {
        anyhow::bail!("the daemon refused: {}", reply.message)
    }
}

pub fn drain(cfg: &Config, args: &DrainArgs) -> anyhow::Result<()> {
    let req = Request::Drain {
        target: target(&args.target),
        drain_time: args.time,
    };
    send(cfg, args.target.socket.as_ref(), req)
}

pub fn undrain(cfg: &Config, args: &TargetArgs) -> anyhow::Result<()> {
    let req = Request::Undrain {
        target: target(args),
    };
    send(cfg, args.socket.as_ref(), req)
}

pub fn status(cfg: &Config, args: &StatusArgs) -> anyhow::Result<()> {
    let reply = ask(&socket_path(cfg, args.socket.as_ref()), &Request::Status)?;
    let report = reply.into_report()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// `report` as tables: the VIP groups, each with its services, reasons and last transition
/// beneath it (indented), then the BGP peers. A group's line starts with its name and its
/// phase is the second column, for `grep` and `awk`.
pub fn render(report: &StatusReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let name_width = report
        .groups
        .iter()
        .map(|g| g.name.len())
        .chain([9])
        .max()
        .unwrap_or(9);
    let _ = writeln!(
        out,
        "{:<name_width$}  {:<14}  {:<7}  {:<20}  VIPS",
        "VIP GROUP", "PHASE", "HEALTH", "DRAINED BY"
    );
    for g in &report.groups {
        let drained = if g.drained_by.is_empty() {
            "-".to_string()
        } else {
            g.drained_by
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = writeln!(
            out,
            "{:<name_width$}  {:<14}  {:<7}  {:<20}  {}",
            g.name,
            g.phase.as_str(),
            g.health,
            drained,
            g.vips.join(" ")
        );
        if let Some(t) = &g.last_transition {
            let _ = writeln!(
                out,
                "    last transition: {} -> {}, {} ago: {}",
                t.from.as_str(),
                t.to.as_str(),
                ago(report.generated_at - t.at),
                t.reason
            );
        }
        for r in &g.reasons {
            let _ = writeln!(out, "    reason: {r}");
        }
        if !g.services.is_empty() {
            let w = g
                .services
                .iter()
                .map(|s| s.service.len())
                .chain([7])
                .max()
                .unwrap_or(7);
            let _ = writeln!(
                out,
                "    {:<w$}  {:>7}  {:>10}  {:>4}  {:>2}  POOL",
                "SERVICE", "HEALTHY", "CONFIGURED", "DOWN", "UP"
            );
            for s in &g.services {
                let pool = match (s.present, s.up) {
                    (false, _) => "missing",
                    (true, true) => "up",
                    (true, false) => "down",
                };
                let _ = writeln!(
                    out,
                    "    {:<w$}  {:>7}  {:>10}  {:>4}  {:>2}  {pool}",
                    s.service, s.healthy, s.configured, s.down_threshold, s.up_threshold
                );
            }
        }
    }
    if !report.peers.is_empty() {
        let w = report
            .peers
            .iter()
            .map(|p| p.name.len())
            .chain([8])
            .max()
            .unwrap_or(8);
        let aw = report
            .peers
            .iter()
            .map(|p| p.address.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<w$}  {:<aw$}  {:<11}  {:>8}  {:>8}  {:<4}  LAST ERROR",
            "BGP PEER", "ADDRESS", "STATE", "UPTIME", "PREFIXES", "BFD"
        );
        for p in &report.peers {
            let _ = writeln!(
                out,
                "{:<w$}  {:<aw$}  {:<11}  {:>8}  {:>8}  {:<4}  {}",
                p.name,
                p.address,
                p.state,
                p.uptime_seconds.map(ago).unwrap_or_else(|| "-".into()),
                p.prefixes_sent,
                p.bfd.as_deref().unwrap_or("-"),
                p.last_error.as_deref().unwrap_or("-")
            );
            if let Some(b) = &p.bfd_session {
                let _ = writeln!(
                    out,
                    "    bfd: {} (peer {}), tx {}, detect {}, diagnostic {}",
                    b.state,
                    b.remote_state,
                    millis(b.tx_interval_seconds),
                    millis(b.detection_time_seconds),
                    b.diagnostic
                );
            }
            match p.initial_table_held.as_deref() {
                Some("first_health_decision") => {
                    let _ = writeln!(
                        out,
                        "    graceful restart: routes and End-of-RIB wait for the first health decision"
                    );
                }
                Some("bfd_up") => {
                    let _ = writeln!(out, "    routes and End-of-RIB wait for BFD Up");
                }
                Some(other) => {
                    let _ = writeln!(out, "    routes and End-of-RIB held: {other}");
                }
                None => {}
            }
        }
    }
    out
}

/// A BFD interval: `300ms`, `-` before one was negotiated.
fn millis(seconds: f64) -> String {
    if seconds.is_finite() && seconds > 0.0 {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    } else {
        "-".into()
    }
}

/// A duration in seconds the way `ps` and `uptime` show one: `42s`, `5m03s`, `2h04m`, `3d02h`.
fn ago(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::status::*;

    #[test]
    fn render_lists_groups_services_and_peers() {
        let report = StatusReport {
            schema: SCHEMA_VERSION,
            generated_at: 1000.0,
            groups: vec![GroupReport {
                name: "web".into(),
                vips: vec!["192.0.2.10/32".into()],
                phase: GroupPhase::Drained,
                health: "up".into(),
                last_transition: Some(Transition {
                    from: GroupPhase::Draining,
                    to: GroupPhase::Drained,
                    at: 1000.0 - 125.0,
                    reason: "drain time over".into(),
                }),
                drained_by: vec![DrainSource::Admin, DrainSource::MaintenanceFile],
                reasons: vec!["drained by `ipvs-herald drain web`".into()],
                services: vec![ServiceReport {
                    service: "TCP 192.0.2.10:80".into(),
                    present: true,
                    healthy: 1,
                    configured: 3,
                    down_threshold: 2,
                    up_threshold: 3,
                    up: false,
                }],
            }],
            peers: vec![PeerReport {
                name: "tor-a".into(),
                address: "192.0.2.1".into(),
                state: "established".into(),
                uptime_seconds: Some(7300.0),
                prefixes_sent: 2,
                last_error: None,
                bfd: None,
                bfd_session: None,
                initial_table_held: None,
            }],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        let web: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            web,
            [
                "web",
                "drained",
                "up",
                "admin,maintenance_file",
                "192.0.2.10/32"
            ],
            "{text}"
        );
        assert_eq!(
            lines[2],
            "    last transition: draining -> drained, 2m05s ago: drain time over"
        );
        assert_eq!(lines[3], "    reason: drained by `ipvs-herald drain web`");
        let service: Vec<&str> = lines[5].split_whitespace().collect();
        assert_eq!(
            service,
            ["TCP", "192.0.2.10:80", "1", "3", "2", "3", "down"],
            "{text}"
        );
        let peer = lines.iter().find(|l| l.starts_with("tor-a ")).unwrap();
        let peer: Vec<&str> = peer.split_whitespace().collect();
        assert_eq!(
            peer,
            ["tor-a", "192.0.2.1", "established", "2h01m", "2", "-", "-"],
            "{text}"
        );
    }

    #[test]
    fn render_shows_bfd_and_a_held_initial_table() {
        let peer = |name: &str| PeerReport {
            name: name.into(),
            address: "192.0.2.1".into(),
            state: "established".into(),
            uptime_seconds: Some(5.0),
            prefixes_sent: 0,
            last_error: None,
            bfd: None,
            bfd_session: None,
            initial_table_held: None,
        };
        let report = StatusReport {
            schema: SCHEMA_VERSION,
            generated_at: 1000.0,
            groups: vec![],
            peers: vec![
                PeerReport {
                    bfd: Some("up".into()),
                    bfd_session: Some(BfdReport {
                        state: "up".into(),
                        remote_state: "up".into(),
                        tx_interval_seconds: 0.3,
                        detection_time_seconds: 0.9,
                        diagnostic: "none".into(),
                    }),
                    initial_table_held: Some("first_health_decision".into()),
                    ..peer("tor-a")
                },
                PeerReport {
                    bfd: Some("down".into()),
                    bfd_session: Some(BfdReport {
                        state: "down".into(),
                        remote_state: "down".into(),
                        tx_interval_seconds: 0.0,
                        detection_time_seconds: 0.0,
                        diagnostic: "control_detection_time_expired".into(),
                    }),
                    initial_table_held: Some("bfd_up".into()),
                    ..peer("tor-b")
                },
                peer("tor-c"),
            ],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        let at = |name: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(&format!("{name} ")))
                .unwrap()
        };
        let a = at("tor-a");
        let cols: Vec<&str> = lines[a].split_whitespace().collect();
        assert_eq!(cols[5], "up", "{text}");
        assert_eq!(
            lines[a + 1],
            "    bfd: up (peer up), tx 300ms, detect 900ms, diagnostic none"
        );
        assert_eq!(
            lines[a + 2],
            "    graceful restart: routes and End-of-RIB wait for the first health decision"
        );
        let b = at("tor-b");
        assert_eq!(
            lines[b + 1],
            "    bfd: down (peer down), tx -, detect -, diagnostic control_detection_time_expired"
        );
        assert_eq!(lines[b + 2], "    routes and End-of-RIB wait for BFD Up");
        let c = at("tor-c");
        assert_eq!(c, lines.len() - 1, "no detail lines without BFD:\n{text}");
    }
}
