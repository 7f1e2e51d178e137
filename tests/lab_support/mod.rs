//! Support code shared by the lab harness (`tests/lab.rs`) and the parser tests
//! (`tests/ipvsadm_parse.rs`): ipvsadm text parsers, the dump loader, and the field-by-field
//! comparison of the two.
#![allow(dead_code)]

pub mod compare;
pub mod dump;
pub mod ipvsadm;
pub mod metrics;
