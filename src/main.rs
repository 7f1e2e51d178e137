//! `ipvs-herald`: the binary. It parses the command line, loads the configuration and wires the
//! exporter and the announcer together; the work itself lives in the workspace crates.
#![forbid(unsafe_code)]

mod adminctl;
mod config;
mod daemon;
mod dump;
mod failsafe;
mod generate;
mod top;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The man-page sections after the options in `--help`.
const AFTER_HELP: &str = "\
SIGNALS:
  SIGHUP    reload the configuration: VIP groups and their route attributes change at once,
            without resetting BGP sessions; BGP peers are added, removed (Cease / Peer
            De-configured) or reset (Cease / Other Configuration Change) one by one, unchanged
            peers keep their sessions; keys that need a restart are logged and set
            ipvs_herald_config_restart_required 1; an invalid file keeps the running
            configuration (logged; ipvs_herald_config_last_reload_successful 0); the
            exporter's web config file (TLS, basic auth, headers) is read again too, and
            a file that does not load keeps the running one
  SIGTERM   drain every VIP group for announcer.shutdown_drain_time, withdraw, close the BGP
            sessions with Cease / Administrative Shutdown, stop (bounded by shutdown_timeout)
  SIGINT    the same as SIGTERM
  `ipvs-herald stop` does what SIGTERM does; `ipvs-herald stop --keep-routes` stops for a
  graceful restart (RFC 4724): no drain, no withdrawal, BGP sessions that negotiated graceful
  restart close without a NOTIFICATION, and the routers keep the routes as stale until the
  next process sends End-of-RIB (or graceful_restart.restart_time runs out)

FAULTS:
  A panic aborts the process (exit by SIGABRT) after removing kernel routes (backend
  kernel); the kernel closes the BGP sessions, so routers withdraw at once. A VIP group with
  no health verdict for max(3 x interval, 2s) (a hung IPVS read) is withdrawn; a control loop
  or async runtime silent for 15s aborts the process. Under systemd (Type=notify) the daemon
  sends READY=1, RELOADING=1, STOPPING=1, and WATCHDOG=1 only while it is alive.

EXIT STATUS:
  0    stopped on SIGTERM/SIGINT after draining and withdrawing (run); done (the other
       commands; top: quit with q/Esc or on SIGTERM/SIGINT/SIGHUP)
  75   stopped for a graceful restart (run, after `stop --keep-routes`): the systemd unit's
       RestartForceExitStatus=75 starts it again
  1    runtime failure (e.g. another instance holds the lock, the metrics server failed)
  64   bad command line or configuration file (check-config says why); `top` with standard
       output not on a terminal
  SIGABRT (shells show 134) after a fault: routes withdrawn as described under FAULTS

FILES:
  /etc/ipvs-herald/ipvs-herald.toml     the configuration the systemd unit runs with (as packaged:
                                        every key with its default and meaning)
  /usr/share/doc/ipvs-herald/examples/  all-active BGP director, OSPF site, every BGP key, BIRD and
                                        FRR snippets (config/examples/ in the source)
  /run/ipvs-herald/admin.sock           socket of drain/undrain/status (announcer.admin_socket)
  /run/ipvs-herald/admin.sock.lock      single-instance lock (holds the running daemon's PID)
  /etc/ipvs-herald/maintenance          drains the director (or the groups it lists) while present
  /var/lib/ipvs-herald/state.json       drains set with `drain`, kept across restarts (announcer.state_file)
  /var/lib/ipvs-herald/state.json.restart  left by `stop --keep-routes` for the next start

ENVIRONMENT:
  IPVS_HERALD_CONFIG   configuration file, as --config
  IPVS_HERALD_LOG      log filter, overriding [log] level (e.g. debug, herald_announcer=debug,info)

EXAMPLES:
  ipvs-herald dump --json --conns > state.json
  ipvs-herald --config /etc/ipvs-herald/ipvs-herald.toml run
  ipvs-herald drain web --time 60s && ipvs-herald status
  ipvs-herald top --interval 2s
";

/// Exit status for a bad command line or configuration (`EX_USAGE` from sysexits.h).
const EX_USAGE: u8 = 64;

/// Prometheus exporter and BGP announcer for Linux IPVS/LVS directors.
///
/// ipvs-herald reads the kernel's IPVS state (services, real servers, 64-bit counters and rates,
/// the connection table, sync daemons) over generic netlink, falling back to /proc/net/ip_vs when
/// it lacks CAP_NET_ADMIN. It serves that state as Prometheus metrics and advertises each VIP to
/// upstream routers over BGP while the VIP's IPVS pool is healthy, so that several directors can
/// carry the same VIP at once (all-active ECMP).
///
/// With no --config the built-in defaults apply; `ipvs-herald check-config` prints the effective
/// configuration. Exit status: 0 on success, 1 on a runtime failure, 64 on a bad command line or
/// configuration file, 75 after a stop for a graceful restart (`stop --keep-routes`).
#[derive(Debug, Parser)]
#[command(
    name = "ipvs-herald",
    version,
    about,
    long_about,
    max_term_width = 100,
    after_long_help = AFTER_HELP
)]
struct Cli {
    /// Configuration file (TOML). Every key is optional; /etc/ipvs-herald/ipvs-herald.toml
    /// (config/ipvs-herald.toml in the source) lists all of them with their defaults.
    #[arg(
        short,
        long,
        global = true,
        env = "IPVS_HERALD_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default when no command is given).
    Run,
    /// Print the IPVS state once, like `ipvsadm -Ln --stats --rate`, or as JSON.
    ///
    /// The JSON schema is documented in docs/dump-json.md and is stable: scripts may rely on it.
    Dump(dump::DumpArgs),
    /// Load and validate the configuration file as `run` does (the web config file with its
    /// certificates, the log filter, …), print the effective configuration, and exit; warnings go
    /// to standard error. What it refuses, `run` refuses with the same message (exit 64).
    CheckConfig,
    /// Drain a VIP group (or all): re-announce it with the draining attributes (by default the
    /// GRACEFUL_SHUTDOWN community), then withdraw it, leaving the BGP sessions up.
    Drain(adminctl::DrainArgs),
    /// Undo a drain: the group returns under its health policy.
    Undrain(adminctl::TargetArgs),
    /// Stop the running daemon: as SIGTERM (drain, withdraw, Cease), or with --keep-routes for
    /// a graceful restart (RFC 4724) that keeps the routes at the routers.
    ///
    /// --keep-routes: the BGP sessions whose peers negotiated graceful restart close without
    /// withdrawing and without a NOTIFICATION; the routers keep our routes as stale for
    /// graceful_restart.restart_time. The daemon exits with status 75, on which the systemd unit
    /// starts it again (RestartForceExitStatus=75). The new process tells the routers it
    /// restarted, checks every VIP group once, announces the healthy ones and sends End-of-RIB:
    /// the routers then drop what was not announced again. Refused (exit 1) when no session
    /// negotiated graceful restart. Use it for upgrades and restarts of the daemon itself, not
    /// for director maintenance (drain for that).
    Stop(adminctl::StopArgs),
    /// Show every VIP group (phase, health, drains, pools against thresholds) and BGP peer as
    /// the running daemon sees them.
    Status(adminctl::StatusArgs),
    /// A full-screen, refreshing view of the IPVS services and destinations (connections,
    /// rates, weights, forwarding methods, schedulers) and the VIP groups' phases.
    ///
    /// IPVS is read as `dump` reads it; the groups come from the running daemon's admin socket
    /// (the view works without a daemon). Keys: q/Esc quit, s sort column (connections,
    /// conn/s, bytes/s, address), r reverse, / filter (Enter applies, Esc clears),
    /// Up/Down/PgUp/PgDn scroll, ? help. A read longer than `[reader] timeout` is abandoned; a
    /// failed read is shown in the status line over the last good table, not fatal.
    /// Exit status: 0 on quit (q, SIGTERM, SIGINT, SIGHUP), 64 when standard output is not a
    /// terminal or the command line is bad, 1 when the terminal cannot be used.
    Top(top::TopArgs),
    /// Remove every kernel route or VIP address that a daemon with this configuration
    /// installed (`backend = "kernel"`; nothing to do for BGP, whose routes end with their
    /// sessions). For the systemd unit's ExecStopPost: kernel routes outlive a kill -9.
    Flush,
    /// Write the man pages, or a shell's completion script, into a directory (the Debian
    /// package ships both; this is for installs from source).
    Generate(generate::GenerateArgs),
}

fn main() -> ExitCode {
    failsafe::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EX_USAGE),
            };
        }
    };
    // Reads no configuration: the package build runs it, and a bad file must not stop it.
    if let Some(Command::Generate(args)) = &cli.command {
        return exit_status(generate::run(args, Cli::command()));
    }
    // `run` and `check-config` check every file the daemon opens at start; the client commands
    // only need the file's own content.
    let load = match cli.command {
        None | Some(Command::Run | Command::CheckConfig) => config::Config::load,
        Some(_) => config::Config::load_content,
    };
    let cfg = match load(cli.config.as_deref()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("ipvs-herald: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => match daemon::run(cfg, cli.config) {
            Ok(daemon::Stopped::ForRestart) => return ExitCode::from(daemon::EX_RESTART),
            r => r.map(|_| ()),
        },
        Command::Stop(args) => adminctl::stop(&cfg, &args),
        Command::Dump(args) => {
            // Warnings (procfs fallback, unknown CONFIG_HZ) go to stderr; the output stays clean.
            let quiet = config::LogConfig {
                level: "warn".to_string(),
                ..cfg.log.clone()
            };
            let _ = daemon::init_tracing(&quiet);
            dump::run(&cfg, &args)
        }
        Command::Drain(args) => adminctl::drain(&cfg, &args),
        Command::Undrain(args) => adminctl::undrain(&cfg, &args),
        Command::Status(args) => adminctl::status(&cfg, &args),
        // No tracing subscriber: log lines would tear the screen; read errors are shown in it.
        Command::Top(args) => match top::run(&cfg, &args) {
            Err(e) if e.is::<top::NotATerminal>() => {
                eprintln!("ipvs-herald: {e}");
                return ExitCode::from(EX_USAGE);
            }
            r => r,
        },
        Command::Flush => daemon::flush(&cfg),
        Command::CheckConfig => {
            for w in cfg.warnings() {
                eprintln!("ipvs-herald: warning: {w}");
            }
            println!("{cfg:#?}");
            Ok(())
        }
        Command::Generate(args) => generate::run(&args, Cli::command()),
    };
    exit_status(result)
}

fn exit_status(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipvs-herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}
