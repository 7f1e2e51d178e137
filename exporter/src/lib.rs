//! Prometheus metrics for IPVS and the HTTP server that serves them.
//!
//! Two entry points, in the style of mini-redis: [`register`] adds the scrape-time IPVS
//! collector (and build info) to a registry the binary owns — the announcer registers its own
//! metrics into the same registry —, and [`serve`] serves that registry over HTTP(S) until a
//! shutdown future completes. [`render_snapshot`] turns a fixed [`Snapshot`] into exposition
//! text for tests and the lab; [`check_series`] checks any exposition for duplicate series and
//! empty label values. Every metric is documented in `exporter/README.md`.
//!
//! [`Snapshot`]: herald_shared::model::Snapshot
#![forbid(unsafe_code)]

pub mod collector;
pub mod config;
pub mod exposition;
pub mod families;
pub mod fixture;
pub mod http;
pub mod webconfig;

pub use collector::{with_scrape_deadline, IpvsCollector};
pub use config::{
    Config, ConfigError, ConnTableConfig, Limits, ServiceMatch, ServiceMatchError, ServiceSpec,
    ServiceSpecError,
};
pub use exposition::{
    check_series, check_snapshot, encode_registry, negotiate, parse_exposition, render_snapshot,
    Format, StaticSource,
};
pub use families::imbalance;
pub use http::{serve, ServeError};
pub use webconfig::{TlsError, WebConfigError};

use herald_shared::reader::IpvsSource;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Register the IPVS collector (read at scrape time through `source`, shaped by `cfg`) and the
/// `ipvs_herald_build_info` metric into `registry`. Register once per registry.
pub fn register(registry: &mut Registry, source: Arc<dyn IpvsSource>, cfg: &Config) {
    registry.register_collector(Box::new(IpvsCollector::new(source, cfg)));
    registry.register_collector(Box::new(collector::BuildInfo));
}
