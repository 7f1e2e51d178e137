//! Prometheus metrics for IPVS and the HTTP server that serves them.
#![forbid(unsafe_code)]

use serde::Deserialize;

/// `[exporter]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}
