//! Support code shared by the lab harnesses (`tests/lab*.rs`) and the parser tests
//! (`tests/ipvsadm_parse.rs`): ipvsadm text parsers, the dump loader, and the field-by-field
//! comparison of the two, booting the VM (`vm`) and querying a real Prometheus (`prom`).
#![allow(dead_code)]

pub mod compare;
pub mod dump;
pub mod ipvsadm;
pub mod metrics;
pub mod prom;
pub mod vm;
