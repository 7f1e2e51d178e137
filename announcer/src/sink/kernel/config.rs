//! The kernel backend's configuration (`[announcer.kernel]`): how VIPs are installed
//! ([`KernelMode`]), where, and the number that marks them as ours; with the checks that
//! deserialisation alone cannot make.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::KernelError;

/// Default route protocol number (and address protocol) that marks what ipvs-herald installs.
/// Not used by the kernel, iproute2, BIRD (12), FRR (11, 186–198) or keepalived (18).
pub const DEFAULT_PROTOCOL: u8 = 72;
/// Default dummy interface for `address` mode.
pub const DEFAULT_INTERFACE: &str = "herald0";
/// Default routing table for `route` mode.
pub const DEFAULT_TABLE: u32 = 100;
/// Longest interface name or label the kernel accepts (IFNAMSIZ - 1).
pub(super) const IFNAMSIZ_MAX: usize = 15;

/// How the kernel backend installs a VIP.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// VIP as an address on a dummy interface.
    #[default]
    Address,
    /// VIP as a route in a routing table.
    Route,
}

/// Configuration of the kernel backend (e.g. an `[announcer.kernel]` table). Every field has a
/// default; a typical route-mode setup:
///
/// ```toml
/// mode = "route"          # or "address" (default): VIPs on the dummy interface herald0
/// table = 100             # route mode: kernel table the routing daemon learns
/// route_device = "lo"
/// protocol = 72           # marks our routes/addresses (`ip route show proto 72`)
/// # netns = "/run/netns/lb"   # when IPVS runs in another network namespace
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// `address` (default) or `route`.
    pub mode: KernelMode,
    /// `address` mode: the interface that carries the VIPs. Default `herald0`.
    pub interface: String,
    /// `address` mode: create the interface as a dummy (and set it up) when missing.
    /// Default true.
    pub create_interface: bool,
    /// `address` mode: also set `noprefixroute` on the VIP addresses. Default false (some
    /// routing daemons do not redistribute `noprefixroute` addresses as connected routes).
    pub noprefixroute: bool,
    /// `route` mode: the routing table. Default 100.
    pub table: u32,
    /// `route` mode: the routes' output device. Default `lo`.
    pub route_device: String,
    /// Route protocol / address protocol number marking our objects. Default 72.
    pub protocol: u8,
    /// Network namespace to work in (`/run/netns/NAME`, `/proc/PID/ns/net`); default: ours.
    pub netns: Option<PathBuf>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            mode: KernelMode::Address,
            interface: DEFAULT_INTERFACE.into(),
            create_interface: true,
            noprefixroute: false,
            table: DEFAULT_TABLE,
            route_device: "lo".into(),
            protocol: DEFAULT_PROTOCOL,
            netns: None,
        }
    }
}

impl KernelConfig {
    /// Checks the configuration; the error names the bad field.
    pub fn validate(&self) -> Result<(), KernelError> {
        let bad = |m: String| Err(KernelError::Config(m));
        check_ifname("interface", &self.interface)?;
        check_ifname("route_device", &self.route_device)?;
        if self.protocol <= 4 {
            return bad(format!(
                "protocol = {} is reserved by the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, \
                 4 static); pick an unused number such as {DEFAULT_PROTOCOL}",
                self.protocol
            ));
        }
        // 253 default, 254 main and 255 local are real tables but the local table is the
        // kernel's own: never write VIP routes there.
        if self.table == 0 || self.table == 255 {
            return bad(format!(
                "table = {} is not usable (0 is unspec, 255 is the kernel's local table)",
                self.table
            ));
        }
        Ok(())
    }
}

fn check_ifname(field: &str, name: &str) -> Result<(), KernelError> {
    if name.is_empty()
        || name.len() > IFNAMSIZ_MAX
        || name == "."
        || name == ".."
        || name.contains(['/', ':', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        return Err(KernelError::Config(format!(
            "{field} = {name:?} is not a valid interface name (1–15 bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_field() {
        assert!(KernelConfig::default().validate().is_ok());
        let c = KernelConfig {
            interface: "a-very-long-interface".into(),
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("interface = \"a-very-long-interface\""));
        let c = KernelConfig {
            protocol: 2,
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("protocol = 2"));
        let c = KernelConfig {
            table: 255,
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("table = 255"));
        let c = KernelConfig {
            route_device: "eth0:1".into(),
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("route_device"));
    }

    #[test]
    fn config_parses_from_toml() {
        let c: KernelConfig = toml::from_str(
            "mode = \"route\"\ntable = 100\nroute_device = \"lo\"\nprotocol = 72\nnetns = \"/run/netns/lb\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mode, KernelMode::Route);
        assert_eq!(
            c.netns.as_deref(),
            Some(std::path::Path::new("/run/netns/lb"))
        );
        assert_eq!(c.interface, DEFAULT_INTERFACE);
        assert!(c.validate().is_ok());
        let d: KernelConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d, KernelConfig::default());
        let e = toml::from_str::<KernelConfig>("tabel = 100")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tabel`"), "{e}");
        let e = toml::from_str::<KernelConfig>("mode = \"bgp\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `bgp`"), "{e}");
    }
}
