//! `ipvs-herald drain`, `undrain` and `status`: the client side of the daemon's admin socket.

use crate::config::Config;
use herald_announcer::admin::{self, Request, Target};
use std::path::PathBuf;
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

/// Arguments of `ipvs-herald status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Admin socket (default: `announcer.admin_socket` from the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    pub json: bool,
}

fn target(t: &TargetArgs) -> Target {
    match &t.group {
        Some(g) if !t.all => Target::Group(g.clone()),
        _ => Target::All,
    }
}

fn send(cfg: &Config, socket: Option<&PathBuf>, req: Request, json: bool) -> anyhow::Result<()> {
    let path = socket
        .cloned()
        .unwrap_or_else(|| cfg.announcer.admin_socket.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reply = rt.block_on(admin::request(&path, &req))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        println!("{}", reply.message);
        for g in &reply.groups {
            if g.reasons.is_empty() {
                println!("{:<24} {}", g.name, g.state);
            } else {
                println!("{:<24} {:<14} {}", g.name, g.state, g.reasons.join("; "));
            }
        }
    }
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
    send(cfg, args.target.socket.as_ref(), req, false)
}

pub fn undrain(cfg: &Config, args: &TargetArgs) -> anyhow::Result<()> {
    let req = Request::Undrain {
        target: target(args),
    };
    send(cfg, args.socket.as_ref(), req, false)
}

pub fn status(cfg: &Config, args: &StatusArgs) -> anyhow::Result<()> {
    send(cfg, args.socket.as_ref(), Request::Status, args.json)
}
