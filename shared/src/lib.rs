//! The IPVS domain model and the kernel readers that fill it.
//!
//! `model` holds the plain data types that describe everything `ipvsadm` can show (services,
//! destinations, 64-bit statistics and rate estimates, timeouts, sync daemons, global totals).
//! The readers fill a [`model::Snapshot`] from the kernel; the exporter and the announcer only
//! ever see the model, never netlink or procfs.
#![forbid(unsafe_code)]

pub mod conntable;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod procfs;
pub mod reader;
