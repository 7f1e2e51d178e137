//! The integration tests of herald-exporter, in one test binary with a module per file (one link
//! instead of one per file): `cargo test -p herald-exporter --test integration http::` runs the
//! tests of `http.rs` only.
mod dashboards;
mod golden;
mod http;
mod prometheus_e2e;
mod promtool;
mod web_config;
