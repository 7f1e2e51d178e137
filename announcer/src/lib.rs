//! BGP speaker, VIP health policy and route backends.
#![deny(unsafe_code)]

use serde::Deserialize;

/// `[announcer]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}
pub mod admin;
pub mod backend;
pub mod group;
pub mod health;
pub mod runtime;
pub mod vip;
