//! The announcer: advertises each healthy VIP group to upstream routers, withdraws it when its
//! IPVS pool falls below its threshold, and drains it on request.
//!
//! - [`health`] and [`group`] are the pure policy: an IPVS snapshot in, ordered route actions
//!   out (pool thresholds with hysteresis, rise/fall, hold-down, drains).
//! - [`vip`] is the `[[announcer.vip_groups]]` configuration.
//! - [`runtime`] is the control loop that reads IPVS on each group's interval and carries the
//!   actions out through a [`runtime::RouteSink`] ([`sinks`]: the BGP speaker or the kernel).
//! - [`bgp`] is the BGP speaker: `netgauze-bgp-pkt` for the wire format and our own pure FSM
//!   (`netgauze-bgp-speaker` was evaluated and not used; the module docs say why).
//! - [`backend`] holds the kernel route backend for OSPF (and BGP-by-routing-daemon) sites.
//! - [`admin`] is the local admin socket, the single-instance lock and the maintenance file;
//!   [`state`] keeps the admin drains across restarts; [`files`] reads operator-controlled files
//!   without blocking.
#![deny(unsafe_code)]

pub mod admin;
pub mod backend;
pub mod bgp;
pub mod files;
pub mod group;
pub mod health;
pub mod runtime;
pub mod sinks;
pub mod state;
pub mod vip;

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[announcer]` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[announcer.bgp]`: the BGP speaker. Default: absent, which means no BGP sessions at all.
    pub bgp: Option<bgp::BgpConfig>,
    /// Where routes go: `bgp` (default; needs `[announcer.bgp]`) or `kernel` (VIPs installed in
    /// the kernel for a local BIRD/FRR to redistribute over OSPF or BGP; see `[announcer.kernel]`).
    pub backend: BackendKind,
    /// `[announcer.kernel]`: the kernel backend (also provides the address primitives for
    /// `vip_address = "manage"` groups with the BGP backend).
    pub kernel: backend::KernelConfig,
    /// `[[announcer.vip_groups]]`: what is announced, and when. Default: none (the announcer
    /// does nothing).
    pub vip_groups: Vec<vip::VipGroupConfig>,
    /// Unix socket for `ipvs-herald drain`/`undrain`/`status`. Default
    /// `/run/ipvs-herald/admin.sock`.
    pub admin_socket: PathBuf,
    /// When this file exists the director is drained (or, if it lists group names one per line,
    /// those groups). Default `/etc/ipvs-herald/maintenance`.
    pub maintenance_file: Option<PathBuf>,
    /// Where the drains asked for over the admin socket are kept, so that they survive a
    /// restart. Default `/var/lib/ipvs-herald/state.json`.
    pub state_file: PathBuf,
    /// How long a drain announces with the draining attributes before withdrawing. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub drain_time: Duration,
    /// The drain on SIGTERM, shorter so that restarts stay quick. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_drain_time: Duration,
    /// Upper bound on the whole stop (drain + withdraw + BGP Cease), after which the daemon
    /// exits regardless. Default `15s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bgp: None,
            backend: BackendKind::Bgp,
            kernel: backend::KernelConfig::default(),
            vip_groups: Vec::new(),
            admin_socket: PathBuf::from("/run/ipvs-herald/admin.sock"),
            maintenance_file: Some(PathBuf::from("/etc/ipvs-herald/maintenance")),
            state_file: PathBuf::from("/var/lib/ipvs-herald/state.json"),
            drain_time: Duration::from_secs(30),
            shutdown_drain_time: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(15),
        }
    }
}

/// Which route backend carries the VIP groups' routes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Bgp,
    Kernel,
}

impl Config {
    /// Checks across keys; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        vip::validate_groups(&self.vip_groups)?;
        if let Some(b) = &self.bgp {
            b.validate().map_err(|e| e.to_string())?;
        }
        if self.backend == BackendKind::Bgp && self.bgp.is_none() && !self.vip_groups.is_empty() {
            return Err(
                "announcer.vip_groups are configured with backend = \"bgp\" but there is no [announcer.bgp] section"
                    .into(),
            );
        }
        self.kernel.validate().map_err(|e| e.to_string())?;
        if self.shutdown_drain_time > self.shutdown_timeout {
            return Err(
                "announcer.shutdown_drain_time must not exceed announcer.shutdown_timeout".into(),
            );
        }
        Ok(())
    }

    /// Whether the announcer has anything to do.
    pub fn is_active(&self) -> bool {
        self.bgp.is_some() || !self.vip_groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        announcer: Config,
    }

    #[test]
    fn announcer_bgp_section_parses_as_documented() {
        let f: File = toml::from_str(
            r#"
            [announcer.bgp]
            router_id = "192.0.2.10"
            local_as = 4200000001

            [[announcer.bgp.peers]]
            name = "tor-a"
            address = "192.0.2.1"
            remote_as = 65000
            md5_password = "s3cret"
            ttl_security = 1

            [[announcer.bgp.peers]]
            name = "tor-b"
            address = "2001:db8::1"
            remote_as = 65000
            ipv6_link_local_next_hop = true
            "#,
        )
        .expect("parses");
        let bgp = f.announcer.bgp.expect("bgp section");
        bgp.validate().expect("valid");
        assert_eq!(bgp.peers.len(), 2);
        assert_eq!(bgp.peers[1].ipv6_link_local_next_hop, Some(true));
        let none: File = toml::from_str("[announcer]\n").expect("empty section");
        assert!(none.announcer.bgp.is_none());
        assert!(toml::from_str::<File>(
            "[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 1\ntypo = 2\n"
        )
        .is_err());
    }
}
