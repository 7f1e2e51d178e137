//! Choosing and running a reader: which network namespace, which source (netlink or procfs).

use serde::Deserialize;

/// `[reader]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderConfig {}
