//! BGP speaker, VIP health policy and route backends.
//!
//! Today this crate holds the BGP speaker ([`bgp`]); the health policy and VIP groups that decide
//! *what* to announce are added on top of it later and drive the speaker through
//! [`bgp::SpeakerHandle::announce`] / [`bgp::SpeakerHandle::withdraw`].
//!
//! The speaker uses `netgauze-bgp-pkt` for the wire format and its own pure FSM for sessions
//! (`netgauze-bgp-speaker` was evaluated and not used); the [`bgp`] module docs say why.
#![deny(unsafe_code)]

pub mod admin;
pub mod backend;
pub mod bgp;
pub mod group;
pub mod health;
pub mod runtime;
pub mod vip;

use serde::Deserialize;

/// `[announcer]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[announcer.bgp]`: the BGP speaker. Default: absent, which means no BGP sessions at all.
    pub bgp: Option<bgp::BgpConfig>,
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
