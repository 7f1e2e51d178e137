//! The integration tests of the `ipvs-herald` binary that a plain `cargo test` runs, in one test
//! binary with a module per file (one link instead of one per file):
//! `cargo test --test integration failsafe::` runs the tests of `failsafe.rs` only. The stages of
//! `tests/all.sh` (`faults`, `soak`, and the QEMU lab: `lab`, `lab_e2e`, `lab_exporter`) stay test
//! binaries of their own that only `--test <name>` builds.
mod herald_world;
mod lab_support;

mod check_config;
mod failsafe;
mod graceful_restart;
mod instance;
mod ipvsadm_parse;
mod ospf_e2e;
mod reload;
mod status;
mod status_page;
mod top;
