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
