//! BGP speaker, VIP health policy and route backends.
#![deny(unsafe_code)]

use serde::Deserialize;

/// `[announcer]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}
pub mod backend;
pub mod health;
