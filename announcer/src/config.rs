//! The `[announcer]` section of the configuration file: the keys that are not a VIP group's
//! ([`crate::group_config`]), the BGP speaker's ([`crate::bgp::BgpConfig`]) or the kernel backend's
//! ([`crate::sink::kernel::KernelConfig`]), and the checks across them.

use crate::{bgp, group_config, sink};
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
    pub kernel: sink::kernel::KernelConfig,
    /// `[[announcer.vip_groups]]`: what is announced, and when. Default: none (the announcer
    /// does nothing).
    pub vip_groups: Vec<group_config::VipGroupConfig>,
    /// Unix socket for `ipvs-herald drain`/`undrain`/`status`. Default
    /// `/run/ipvs-herald/admin.sock`; at most 107 bytes (the kernel's limit on socket paths).
    pub admin_socket: PathBuf,
    /// When this file exists the director is drained (or, if it lists group names one per line,
    /// those groups). Default `/etc/ipvs-herald/maintenance`.
    pub maintenance_file: Option<PathBuf>,
    /// Where the drains asked for over the admin socket are kept, so that they survive a
    /// restart. Default `/var/lib/ipvs-herald/state.json`.
    pub state_file: PathBuf,
    /// How long a drain announces with the draining attributes before withdrawing. Default `30s`;
    /// at most [`MAX_DRAIN_TIME`].
    #[serde(with = "humantime_serde")]
    pub drain_time: Duration,
    /// The drain on SIGTERM, shorter so that restarts stay quick. Default `5s`; at most
    /// [`MAX_SHUTDOWN_TIME`].
    #[serde(with = "humantime_serde")]
    pub shutdown_drain_time: Duration,
    /// Upper bound on the whole stop (drain + withdraw + BGP Cease), after which the daemon
    /// exits regardless. Default `15s`; at most [`MAX_SHUTDOWN_TIME`].
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bgp: None,
            backend: BackendKind::Bgp,
            kernel: sink::kernel::KernelConfig::default(),
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

/// The longest `drain_time` (the admin socket's `drain --time` has the same bound).
pub const MAX_DRAIN_TIME: Duration = Duration::from_secs(24 * 3600);
/// The longest `shutdown_drain_time` and `shutdown_timeout`: a stop is bounded.
pub const MAX_SHUTDOWN_TIME: Duration = Duration::from_secs(3600);
/// The longest Unix socket path the kernel binds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why an `[announcer]` section is refused; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Groups(#[from] group_config::GroupConfigError),
    #[error("{0}")]
    Bgp(bgp::BgpError),
    #[error("announcer.vip_groups are configured with backend = \"bgp\" but there is no [announcer.bgp] section")]
    GroupsWithoutBgp,
    #[error("{0}")]
    Kernel(sink::kernel::KernelError),
    #[error(transparent)]
    TooLong(#[from] group_config::TooLong),
    #[error("announcer.admin_socket {path:?} is {len} bytes long; a Unix socket path has 1 to {MAX_SOCKET_PATH}")]
    AdminSocketLength { path: PathBuf, len: usize },
    #[error("announcer.shutdown_drain_time must not exceed announcer.shutdown_timeout")]
    DrainExceedsTimeout,
    #[error("announcer.kernel.netns: cannot open {}: {error}", path.display())]
    Netns {
        path: PathBuf,
        error: std::io::Error,
    },
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
    pub fn validate(&self) -> Result<(), ConfigError> {
        group_config::validate_groups(&self.vip_groups)?;
        if let Some(b) = &self.bgp {
            b.validate().map_err(ConfigError::Bgp)?;
        }
        if self.backend == BackendKind::Bgp && self.bgp.is_none() && !self.vip_groups.is_empty() {
            return Err(ConfigError::GroupsWithoutBgp);
        }
        self.kernel.validate().map_err(ConfigError::Kernel)?;
        group_config::at_most("announcer.drain_time", self.drain_time, MAX_DRAIN_TIME)?;
        group_config::at_most(
            "announcer.shutdown_drain_time",
            self.shutdown_drain_time,
            MAX_SHUTDOWN_TIME,
        )?;
        group_config::at_most(
            "announcer.shutdown_timeout",
            self.shutdown_timeout,
            MAX_SHUTDOWN_TIME,
        )?;
        let socket = self.admin_socket.as_os_str().len();
        if socket == 0 || socket > MAX_SOCKET_PATH {
            return Err(ConfigError::AdminSocketLength {
                path: self.admin_socket.clone(),
                len: socket,
            });
        }
        if self.shutdown_drain_time > self.shutdown_timeout {
            return Err(ConfigError::DrainExceedsTimeout);
        }
        Ok(())
    }

    /// What the daemon opens at start, checked without changing anything: the kernel backend's
    /// network namespace when the kernel backend or a `vip_address = "manage"` group uses it.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let uses_kernel = self.backend == BackendKind::Kernel
            || self
                .vip_groups
                .iter()
                .any(|g| g.vip_address == group_config::VipAddressMode::Manage);
        if let (true, true, Some(ns)) = (self.is_active(), uses_kernel, &self.kernel.netns) {
            std::fs::File::open(ns).map_err(|error| ConfigError::Netns {
                path: ns.clone(),
                error,
            })?;
        }
        Ok(())
    }

    /// What is valid but probably not meant, one sentence each (the daemon logs them at start,
    /// `check-config` prints them).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let (BackendKind::Bgp, Some(bgp), false) =
            (self.backend, &self.bgp, self.vip_groups.is_empty())
        {
            if bgp.peers.is_empty() {
                w.push(format!(
                    "announcer.vip_groups: {} group(s) with backend = \"bgp\" but [announcer.bgp] has no peers: nothing is announced anywhere",
                    self.vip_groups.len()
                ));
            }
        }
        w
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

    fn announcer(text: &str) -> Config {
        toml::from_str::<File>(&format!("[announcer]\n{text}"))
            .expect("parses")
            .announcer
    }

    #[test]
    fn drain_and_shutdown_durations_have_upper_bounds() {
        for (key, max, extra) in [
            ("drain_time", "1day", ""),
            ("shutdown_timeout", "1h", ""),
            ("shutdown_drain_time", "1h", "shutdown_timeout = \"1h\"\n"),
        ] {
            announcer(&format!("{extra}{key} = {max:?}\n"))
                .validate()
                .unwrap_or_else(|e| panic!("{key} = {max}: {e}"));
            let e = announcer(&format!("{extra}{key} = \"500000000000y\"\n"))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("announcer.{key} is ")) && e.contains("at most"),
                "{e}"
            );
            let e = announcer(&format!("{extra}{key} = \"{max} 1s\"\n"))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("announcer.{key}")), "{e}");
        }
    }

    #[test]
    fn admin_socket_path_must_fit_a_unix_socket() {
        let long = format!("/run/{}", "x".repeat(102));
        assert_eq!(long.len(), 107);
        announcer(&format!("admin_socket = {long:?}\n"))
            .validate()
            .unwrap();
        let e = announcer(&format!("admin_socket = \"{long}y\"\n"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("announcer.admin_socket") && e.contains("108 bytes"),
            "{e}"
        );
        assert!(announcer("admin_socket = \"\"\n").validate().is_err());
    }

    #[test]
    fn vip_groups_with_bgp_but_no_peers_warn() {
        let bgp = "[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\n";
        let group = "[[announcer.vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.10/32\"]\n";
        let peer =
            "[[announcer.bgp.peers]]\nname = \"r\"\naddress = \"192.0.2.2\"\nremote_as = 65001\n";
        let load = |t: &str| toml::from_str::<File>(t).expect("parses").announcer;
        let c = load(&format!("{bgp}{group}"));
        c.validate().unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("no peers"), "{w:?}");
        assert!(load(&format!("{bgp}{peer}{group}")).warnings().is_empty());
        assert!(
            load(bgp).warnings().is_empty(),
            "no groups: nothing to warn about"
        );
    }

    #[test]
    fn kernel_netns_is_checked_only_where_it_is_used() {
        let missing = "/nonexistent/herald-test-netns";
        let group = "[[announcer.vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.10/32\"]\n";
        let load = |t: &str| toml::from_str::<File>(t).expect("parses").announcer;
        let kernel = load(&format!(
            "[announcer]\nbackend = \"kernel\"\n[announcer.kernel]\nnetns = {missing:?}\n{group}"
        ));
        let e = kernel.check_files().unwrap_err().to_string();
        assert!(
            e.contains("announcer.kernel.netns") && e.contains(missing),
            "{e}"
        );
        // The BGP backend without managed addresses never opens it.
        let bgp = load(&format!(
            "[announcer.kernel]\nnetns = {missing:?}\n[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\n{group}"
        ));
        bgp.check_files().unwrap();
        let manage = load(&format!(
            "[announcer.kernel]\nnetns = {missing:?}\n[announcer.bgp]\nrouter_id = \"192.0.2.1\"\nlocal_as = 65000\n{group}vip_address = \"manage\"\n"
        ));
        assert!(manage.check_files().is_err());
    }
}
