//! `ipvs-herald dump`: print one snapshot as text (like `ipvsadm -Ln`) or JSON.

use crate::config::Config;

/// Arguments of `ipvs-herald dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Print JSON (schema in docs/dump-json.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_cfg: &Config, _args: &DumpArgs) -> anyhow::Result<()> {
    anyhow::bail!("dump is not implemented yet")
}
