//! BGP speaker, VIP health policy and route backends.
//!
//! Today this crate holds the BGP speaker ([`bgp`]); the health policy and VIP groups that decide
//! *what* to announce are added on top of it later and drive the speaker through
//! [`bgp::SpeakerHandle::announce`] / [`bgp::SpeakerHandle::withdraw`].
#![deny(unsafe_code)]

pub mod bgp;

use serde::Deserialize;

/// `[announcer]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[announcer.bgp]`: the BGP speaker. Default: absent, which means no BGP sessions at all.
    pub bgp: Option<bgp::BgpConfig>,
}
