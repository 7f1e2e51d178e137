//! The IPVS domain model and the kernel readers that fill it.
//!
//! `model` holds the plain data types that describe everything `ipvsadm` can show (services,
//! destinations, 64-bit statistics and rate estimates, timeouts, sync daemons, global totals).
//! The readers fill a [`model::Snapshot`] from the kernel; the exporter and the announcer only
//! ever see the model, never netlink or procfs.
//!
//! * [`reader`]: [`reader::ReaderConfig`] (`[reader]` config section), [`reader::ReadError`],
//!   the [`reader::IpvsSource`] trait and its real implementation [`reader::Reader`].
//! * [`netlink`]: the generic-netlink reader (pure codec + `neli` socket I/O).
//! * [`procfs`]: parsers for `/proc/net/ip_vs` and `/proc/net/ip_vs_stats` (fallback source).
//! * [`conntable`]: the streaming `/proc/net/ip_vs_conn` aggregator.
//! * [`netns`]: running work on a thread inside a network namespace, with a timeout (the reader,
//!   and the announcer's address listing and kernel route backend).
//! * [`duration`]: the serde helpers for duration strings in the configuration.
//! * [`status`]: the announcer's status as data (`status --json`, the status page, `top`).
//!
//! Errors point down: [`netns::NetnsError`] and [`netlink::NetlinkError`] belong to the modules
//! that raise them and know nothing of the reader; [`reader::ReadError`] wraps them.
#![forbid(unsafe_code)]

pub mod conntable;
pub mod duration;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod procfs;
pub mod reader;
pub mod status;
