//! Prometheus metrics for IPVS and the HTTP server that serves them.
//!
//! Two entry points, in the style of mini-redis: [`register`] adds the scrape-time IPVS
//! collector (and build info) to a registry the binary owns — the announcer registers its own
//! metrics into the same registry —, and [`serve`] serves that registry over HTTP(S) until a
//! shutdown future completes ([`serve_full`] adds the status page at `/status`, see
//! [`page`]). With the `testing` feature (tests, benches, examples and the lab
//! only: never in a release build), `render_snapshot` turns a fixed `Snapshot` into exposition
//! text, `check_series` checks any exposition for duplicate series and empty label values, and
//! `fixture` holds a rich snapshot. Every metric is documented in `exporter/README.md`.
#![forbid(unsafe_code)]

pub mod basic_auth;
pub mod collector;
pub mod config;
pub mod exposition;
pub mod families;
#[cfg(any(test, feature = "testing"))]
pub mod fixture;
pub mod http;
pub mod page;
pub mod webconfig;

pub use collector::{with_scrape_deadline, IpvsCollector};
pub use config::{
    Config, ConfigError, ConnTableConfig, Limits, ServiceMatch, ServiceMatchError, ServiceSpec,
    ServiceSpecError,
};
#[cfg(any(test, feature = "testing"))]
pub use exposition::oracle::{
    check_series, check_snapshot, parse_exposition, render_snapshot, SampleError, StaticSource,
};
pub use exposition::{encode_registry, negotiate, Format};
pub use families::imbalance;
pub use http::{serve, serve_full, serve_with_reload, ServeError};
pub use page::{StatusPage, StatusProvider};
pub use webconfig::{ParseError, TlsError, TlsReloader, WebConfig, WebConfigError};

use herald_shared::reader::IpvsSource;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Register the IPVS collector (read at scrape time through `source`, shaped by `cfg`) and the
/// `ipvs_herald_build_info` metric into `registry`. Register once per registry.
pub fn register(registry: &mut Registry, source: Arc<dyn IpvsSource>, cfg: &Config) {
    registry.register_collector(Box::new(IpvsCollector::new(source, cfg)));
    registry.register_collector(Box::new(collector::BuildInfo));
}
