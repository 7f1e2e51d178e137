//! The announcer: advertises each healthy VIP group to upstream routers, withdraws it when its
//! IPVS pool falls below its threshold, and drains it on request.
//!
//! - [`start`] is the entry point ([`service`]): it starts the announcer for a [`Config`] (the
//!   `[announcer]` section, [`config`]) and returns a [`Handle`] to reconfigure it on SIGHUP and
//!   to drain and stop it on SIGTERM.
//! - [`health`] and [`group`] are the pure policy: an IPVS snapshot in, ordered route actions
//!   out (pool thresholds with hysteresis, rise/fall, hold-down, drains).
//!   [`group::GroupState`] is one group's route state, [`health::GroupTracker`] its rise/fall.
//! - [`group_config`] is the `[[announcer.vip_groups]]` configuration.
//! - [`control`] is the control loop ([`control::ControlLoop`]) that reads IPVS on each group's
//!   interval and carries the actions out through a [`sink::RouteSink`] ([`sink`]: the BGP
//!   speaker or the kernel), with its metrics and its [`control::Heartbeat`] for the binary's
//!   watchdog.
//! - [`bgp`] is the BGP speaker: `netgauze-bgp-pkt` for the wire format and our own pure FSM
//!   (`netgauze-bgp-speaker` was evaluated and not used; the module docs say why).
//! - [`bfd`] is BFD (RFC 5880/5881) for the BGP speaker's peers: a pure FSM and packet codec.
//! - [`sink::kernel`] is the kernel route backend for OSPF (and BGP-by-routing-daemon) sites.
//! - [`admin`] is the local admin socket, the single-instance lock and the maintenance file;
//!   [`state`] keeps the admin drains across restarts; [`restart`] is the marker a stop for a
//!   graceful restart leaves for the next process; [`files`] reads operator-controlled files
//!   without blocking.
#![deny(unsafe_code)]

pub mod admin;
pub mod bfd;
pub mod bgp;
pub mod config;
pub mod control;
pub mod files;
pub mod group;
pub mod group_config;
pub mod health;
mod peer_labels;
pub mod restart;
pub mod service;
pub mod sink;
pub mod state;

pub use config::{BackendKind, Config, ConfigError, MAX_DRAIN_TIME, MAX_SHUTDOWN_TIME};
pub use service::{
    remove_kernel_routes, start, FlushError, Handle, LastGasp, ReconfigureError, StartError,
    StartOptions,
};
