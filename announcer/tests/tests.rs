//! The integration tests of herald-announcer, in one test binary with a module per file (one
//! link instead of one per file): `cargo test -p herald-announcer --test integration interop::`
//! runs the tests of `interop.rs` only. `support` is the BGP interop harness (`interop.rs`,
//! `interop_attrs.rs`, `reload_interop.rs`, `graceful_restart.rs`), `ospf_support` the OSPF one
//! (`ospf.rs`, `ospf_backend.rs`).
mod ospf_support;
mod support;

mod bfd;
mod dashboard_metrics;
mod fsm_timers;
mod graceful_restart;
mod interop;
mod interop_attrs;
mod malformed;
mod ospf;
mod ospf_backend;
mod reload_interop;
mod reload_speaker;
